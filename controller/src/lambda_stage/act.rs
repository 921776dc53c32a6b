//! Executes a plan's [`Action`]s in order through the AWS adapters, stopping at the first
//! failure. Each action is safe to repeat after a crash: observe looked before every create,
//! adoption tags are written before any other change, a code update is verified against the
//! hash the plan expected, and a version is published only if `$LATEST` still has that hash.

use std::collections::BTreeMap;

use stagehand_crds::lambda_stage::Capability;
use stagehand_crds::{LambdaStageSpec, S3ObjectRef};

use super::error::LambdaStageError;
use super::plan::{Action, AliasRouting, Written};
use super::stack::{TEMPLATE_FINGERPRINT_TAG, change_set_name, template_fingerprint};
use crate::aws::cloudformation::{ChangeSetKind, ChangeSetRequest, CloudFormation};
use crate::aws::lambda::{
    AliasTarget, CodeSource, ConfigUpdate, EventSourceMapping, Lambda, MappingSettings,
    PublishedVersion, VERSION_DESCRIPTION,
};
use crate::aws::tags;
use crate::aws::{AwsError, AwsProvider, ErrorKind};
use crate::inventory::{ArtifactKey, Inventory};

/// Who acts, where, with which shared state.
#[derive(Debug)]
pub struct Actor<'a> {
    pub aws: &'a AwsProvider,
    pub spec: &'a LambdaStageSpec,
    /// `stagehand.dev/owner` value of the object.
    pub owner: &'a str,
    pub cluster_id: &'a str,
    /// The shared inventory: told what each action changed, so the next reconcile reads it
    /// back instead of trusting a listing taken before.
    pub inventory: &'a Inventory,
}

/// What the executed actions produced that status must remember.
#[derive(Debug, Default)]
pub struct ActReport {
    /// The actions that succeeded, in order.
    pub done: Vec<Action>,
    /// Mappings created, by (Lambda function name, queue as the spec names it).
    pub created_mappings: BTreeMap<(String, String), EventSourceMapping>,
    /// Versions published, by function name.
    pub published: Vec<(String, PublishedVersion)>,
    /// A Create change set was made: the stack is Stagehand's.
    pub stack_created: bool,
    /// The action that failed (nothing after it ran).
    pub failure: Option<(Action, LambdaStageError)>,
}

impl Actor<'_> {
    /// Runs `actions` in order, stopping at the first failure; calls `on_start` before each
    /// action runs.
    pub async fn execute_reporting(
        &self,
        actions: &[Action],
        mut on_start: impl FnMut(&Action),
    ) -> ActReport {
        let mut report = ActReport::default();
        for action in actions {
            on_start(action);
            let result = self.run(action, &mut report).await;
            // Also after a failure: a write that timed out may still have happened.
            self.mark_written(action);
            match result {
                Ok(()) => report.done.push(action.clone()),
                Err(error) => {
                    report.failure = Some((action.clone(), error));
                    break;
                }
            }
        }
        report
    }

    /// One action, by the step named after it; a failed AWS call is reported with the action
    /// it was part of.
    async fn run(&self, action: &Action, report: &mut ActReport) -> Result<(), LambdaStageError> {
        let step = match action {
            Action::HashArtifact { artifact, e_tag } => {
                self.hash_artifact(artifact, e_tag.as_deref()).await
            }
            Action::CreateChangeSet {
                stack_name,
                change_set_name,
                kind,
            } => {
                self.create_change_set(stack_name, change_set_name, *kind, report)
                    .await
            }
            Action::ExecuteChangeSet {
                stack_name,
                change_set_name,
            } => self.execute_change_set(stack_name, change_set_name).await,
            Action::DeleteFailedStack { stack_name } => self.delete_failed_stack(stack_name).await,
            Action::TagFunction { arn, tags, .. } => self.tag_function(arn, tags).await,
            Action::UpdateFunctionCode {
                function,
                source,
                expected_code_sha256,
            } => {
                self.update_function_code(function, source, expected_code_sha256.as_deref())
                    .await
            }
            Action::UpdateFunctionConfiguration { function, change } => {
                self.update_function_configuration(function, change).await
            }
            Action::PublishVersion {
                function,
                expected_code_sha256,
            } => {
                self.publish_version(function, expected_code_sha256, report)
                    .await
            }
            Action::CreateAlias {
                function,
                alias,
                routing,
            } => self.create_alias(function, alias, routing).await,
            Action::UpdateAlias {
                function,
                alias,
                routing,
            } => self.update_alias(function, alias, routing).await,
            Action::RollBackAlias {
                function,
                alias,
                to_version,
                ..
            } => self.roll_back_alias(function, alias, to_version).await,
            Action::DeleteVersion { function, version } => {
                self.delete_version(function, version).await
            }
            Action::CreateMapping {
                function,
                queue,
                event_source_arn,
                settings,
            } => {
                self.create_mapping(function, queue, event_source_arn, settings, report)
                    .await
            }
            Action::UpdateMapping { uuid, settings, .. } => {
                self.update_mapping(uuid, settings).await
            }
        };
        step.map_err(|error| match error {
            StepError::Aws(source) => LambdaStageError::Action {
                action: action.to_string(),
                source,
            },
            StepError::Own(error) => error,
        })
    }

    fn region(&self) -> &str {
        self.spec.region.as_str()
    }

    fn lambda(&self) -> Lambda {
        self.aws.lambda(self.region())
    }

    fn cloudformation(&self) -> CloudFormation {
        self.aws.cloudformation(self.region())
    }

    async fn hash_artifact(
        &self,
        artifact: &S3ObjectRef,
        e_tag: Option<&str>,
    ) -> Result<(), StepError> {
        self.inventory
            .s3(self.region())
            .hash_object(ArtifactKey {
                bucket: artifact.bucket.clone(),
                key: artifact.key.clone(),
                version_id: artifact.version_id.clone(),
                e_tag: e_tag.map(str::to_owned),
            })
            .await?;
        Ok(())
    }

    /// The stack is tagged, through the change set, with the stage's ownership and the
    /// fingerprint of the template it is being updated from: observe compares that fingerprint
    /// to know the desired template is applied.
    async fn create_change_set(
        &self,
        stack_name: &str,
        name: &str,
        kind: ChangeSetKind,
        report: &mut ActReport,
    ) -> Result<(), StepError> {
        let Some(infrastructure) = &self.spec.infrastructure else {
            return Ok(());
        };
        let fingerprint = template_fingerprint(infrastructure);
        debug_assert_eq!(name, change_set_name(&fingerprint));
        let mut stack_tags = tags::ownership_tags(self.owner, self.cluster_id);
        stack_tags.insert(TEMPLATE_FINGERPRINT_TAG.to_owned(), fingerprint);
        let template = &infrastructure.template;
        let region = self.region();
        let mut template_url = format!(
            "https://{}.s3.{region}.amazonaws.com/{}",
            template.bucket, template.key
        );
        if let Some(version) = &template.version_id {
            template_url.push_str("?versionId=");
            template_url.push_str(version);
        }
        let cloudformation = self.cloudformation();
        // A failed or obsolete change set of the same name is in the way: remove it
        // (a stack being created has none yet).
        if kind == ChangeSetKind::Update {
            cloudformation.delete_change_set(stack_name, name).await?;
        }
        cloudformation
            .create_change_set(&ChangeSetRequest {
                stack_name: stack_name.to_owned(),
                change_set_name: name.to_owned(),
                kind,
                template_url,
                parameters: infrastructure.parameters.clone(),
                capabilities: infrastructure
                    .capabilities
                    .iter()
                    .map(|c| capability_name(*c).to_owned())
                    .collect(),
                tags: stack_tags,
            })
            .await?;
        if kind == ChangeSetKind::Create {
            report.stack_created = true;
        }
        Ok(())
    }

    async fn execute_change_set(
        &self,
        stack_name: &str,
        change_set_name: &str,
    ) -> Result<(), StepError> {
        self.cloudformation()
            .execute_change_set(stack_name, change_set_name)
            .await?;
        Ok(())
    }

    async fn delete_failed_stack(&self, stack_name: &str) -> Result<(), StepError> {
        self.cloudformation().delete_stack(stack_name).await?;
        Ok(())
    }

    async fn tag_function(
        &self,
        arn: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), StepError> {
        self.lambda().tag_resource(arn, tags).await?;
        Ok(())
    }

    /// Lambda must report the hash the plan expected: otherwise the object changed between
    /// the check and the deploy.
    async fn update_function_code(
        &self,
        function: &str,
        source: &CodeSource,
        expected_code_sha256: Option<&str>,
    ) -> Result<(), StepError> {
        let updated = self
            .lambda()
            .update_function_code(function, source, None)
            .await?;
        if let Some(expected) = expected_code_sha256
            && updated.code_sha256.as_deref() != Some(expected)
        {
            return Err(StepError::Own(LambdaStageError::CodeVerificationFailed {
                function: function.to_owned(),
                expected: expected.to_owned(),
                deployed: updated.code_sha256.unwrap_or_default(),
            }));
        }
        Ok(())
    }

    async fn update_function_configuration(
        &self,
        function: &str,
        change: &ConfigUpdate,
    ) -> Result<(), StepError> {
        self.lambda()
            .update_function_configuration(function, change)
            .await?;
        Ok(())
    }

    /// Lambda refuses to publish unless `$LATEST` still has the hash the plan checked.
    async fn publish_version(
        &self,
        function: &str,
        expected_code_sha256: &str,
        report: &mut ActReport,
    ) -> Result<(), StepError> {
        let version = self
            .lambda()
            .publish_version(
                function,
                Some(expected_code_sha256),
                Some(VERSION_DESCRIPTION),
            )
            .await?;
        report.published.push((function.to_owned(), version));
        Ok(())
    }

    async fn create_alias(
        &self,
        function: &str,
        alias: &str,
        routing: &AliasRouting,
    ) -> Result<(), StepError> {
        self.lambda()
            .create_alias(function, alias, &alias_target(routing))
            .await?;
        Ok(())
    }

    async fn update_alias(
        &self,
        function: &str,
        alias: &str,
        routing: &AliasRouting,
    ) -> Result<(), StepError> {
        self.lambda()
            .update_alias(function, alias, &alias_target(routing), None)
            .await?;
        Ok(())
    }

    async fn roll_back_alias(
        &self,
        function: &str,
        alias: &str,
        to_version: &str,
    ) -> Result<(), StepError> {
        let target = alias_target(&AliasRouting {
            function_version: to_version.to_owned(),
            canary: None,
        });
        self.lambda()
            .update_alias(function, alias, &target, None)
            .await?;
        Ok(())
    }

    async fn delete_version(&self, function: &str, version: &str) -> Result<(), StepError> {
        match self.lambda().delete_version(function, version).await {
            // Still used by something Stagehand does not manage (another alias, a mapping on
            // that version): kept, and tried again at a later resync.
            Err(error) if error.kind == ErrorKind::Conflict => {
                tracing::info!(%function, %version, "version kept: {error}");
            }
            result => result?,
        }
        Ok(())
    }

    /// Tagged by the create call itself, so a mapping created just before a crash is still
    /// known as the stage's.
    async fn create_mapping(
        &self,
        function: &str,
        queue: &str,
        event_source_arn: &str,
        settings: &MappingSettings,
        report: &mut ActReport,
    ) -> Result<(), StepError> {
        let created = self
            .lambda()
            .create_event_source_mapping(
                function,
                event_source_arn,
                settings,
                &tags::ownership_tags(self.owner, self.cluster_id),
            )
            .await?;
        report
            .created_mappings
            .insert((function.to_owned(), queue.to_owned()), created);
        Ok(())
    }

    async fn update_mapping(
        &self,
        uuid: &str,
        settings: &MappingSettings,
    ) -> Result<(), StepError> {
        self.lambda()
            .update_event_source_mapping(uuid, settings)
            .await?;
        Ok(())
    }
}

/// Why an action's step failed: an AWS call (`run` says which action it was part of), or the
/// step's own finding.
enum StepError {
    Aws(AwsError),
    Own(LambdaStageError),
}

impl From<AwsError> for StepError {
    fn from(error: AwsError) -> Self {
        Self::Aws(error)
    }
}

impl Actor<'_> {
    /// Tells the inventory what `action` changed.
    fn mark_written(&self, action: &Action) {
        let lambda = self.inventory.lambda(&self.spec.region);
        match action.written() {
            Written::Nothing => {}
            Written::StackFunctions => lambda.functions_changed(),
            Written::Function(function) => lambda.function_written(function),
            Written::Versions(function) => lambda.versions_written(function),
            Written::Alias(function) => lambda.alias_written(function),
            Written::Mappings => lambda.mappings_written(),
        }
    }
}

fn alias_target(routing: &AliasRouting) -> AliasTarget {
    AliasTarget {
        function_version: routing.function_version.clone(),
        routing_weights: routing
            .canary
            .iter()
            .map(|c| (c.version.clone(), f64::from(c.weight_percent) / 100.0))
            .collect(),
    }
}

const fn capability_name(capability: Capability) -> &'static str {
    match capability {
        Capability::Iam => "CAPABILITY_IAM",
        Capability::NamedIam => "CAPABILITY_NAMED_IAM",
        Capability::AutoExpand => "CAPABILITY_AUTO_EXPAND",
    }
}
