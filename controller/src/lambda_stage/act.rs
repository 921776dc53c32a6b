//! Executes a plan's [`Action`]s in order through the AWS adapters, stopping at the first
//! failure. Each action is safe to repeat after a crash: observe looked before every create,
//! adoption tags are written before any other change, a code update is verified against the
//! hash the plan expected, and a version is published only if `$LATEST` still has that hash.

use std::collections::BTreeMap;

use stagehand_crds::LambdaStageSpec;
use stagehand_crds::lambda_stage::Capability;

use super::error::LambdaStageError;
use super::plan::{Action, AliasRouting};
use super::stack::{TEMPLATE_FINGERPRINT_TAG, change_set_name, template_fingerprint};
use crate::aws::AwsProvider;
use crate::aws::ErrorKind;
use crate::aws::cloudformation::{ChangeSetKind, ChangeSetRequest};
use crate::aws::lambda::{AliasTarget, EventSourceMapping, PublishedVersion, VERSION_DESCRIPTION};
use crate::aws::tags;
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
    /// Runs `actions` in order; stops at the first failure.
    pub async fn execute(&self, actions: &[Action]) -> ActReport {
        self.execute_reporting(actions, |_| {}).await
    }

    /// [`Actor::execute`], calling `on_start` before each action runs.
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

    async fn run(&self, action: &Action, report: &mut ActReport) -> Result<(), LambdaStageError> {
        let region = self.spec.region.as_str();
        let failed = |source| LambdaStageError::Action {
            action: action.to_string(),
            source,
        };
        match action {
            Action::HashArtifact { artifact, e_tag } => {
                self.inventory
                    .s3(region)
                    .hash_object(ArtifactKey {
                        bucket: artifact.bucket.clone(),
                        key: artifact.key.clone(),
                        version_id: artifact.version_id.clone(),
                        e_tag: e_tag.clone(),
                    })
                    .await
                    .map_err(failed)?;
            }
            Action::CreateChangeSet {
                stack_name,
                change_set_name: name,
                kind,
            } => {
                let Some(infrastructure) = &self.spec.infrastructure else {
                    return Ok(());
                };
                let fingerprint = template_fingerprint(infrastructure);
                debug_assert_eq!(*name, change_set_name(&fingerprint));
                let mut stack_tags = tags::ownership_tags(self.owner, self.cluster_id);
                stack_tags.insert(TEMPLATE_FINGERPRINT_TAG.to_owned(), fingerprint);
                let template = &infrastructure.template;
                let mut template_url = format!(
                    "https://{}.s3.{region}.amazonaws.com/{}",
                    template.bucket, template.key
                );
                if let Some(version) = &template.version_id {
                    template_url.push_str("?versionId=");
                    template_url.push_str(version);
                }
                let cloudformation = self.aws.cloudformation(region);
                // A failed or obsolete change set of the same name is in the way: remove it
                // (a stack being created has none yet).
                if *kind == ChangeSetKind::Update {
                    cloudformation
                        .delete_change_set(stack_name, name)
                        .await
                        .map_err(failed)?;
                }
                cloudformation
                    .create_change_set(&ChangeSetRequest {
                        stack_name: stack_name.clone(),
                        change_set_name: name.clone(),
                        kind: *kind,
                        template_url,
                        parameters: infrastructure.parameters.clone(),
                        capabilities: infrastructure
                            .capabilities
                            .iter()
                            .map(|c| capability_name(*c).to_owned())
                            .collect(),
                        tags: stack_tags,
                    })
                    .await
                    .map_err(failed)?;
                if *kind == ChangeSetKind::Create {
                    report.stack_created = true;
                }
            }
            Action::ExecuteChangeSet {
                stack_name,
                change_set_name,
            } => {
                self.aws
                    .cloudformation(region)
                    .execute_change_set(stack_name, change_set_name)
                    .await
                    .map_err(failed)?;
            }
            Action::DeleteFailedStack { stack_name } => {
                self.aws
                    .cloudformation(region)
                    .delete_stack(stack_name)
                    .await
                    .map_err(failed)?;
            }
            Action::TagFunction { arn, tags, .. } => {
                self.aws
                    .lambda(region)
                    .tag_resource(arn, tags)
                    .await
                    .map_err(failed)?;
            }
            Action::UpdateFunctionCode {
                function,
                source,
                expected_code_sha256,
            } => {
                let updated = self
                    .aws
                    .lambda(region)
                    .update_function_code(function, source, None)
                    .await
                    .map_err(failed)?;
                if let Some(expected) = expected_code_sha256
                    && updated.code_sha256.as_deref() != Some(expected.as_str())
                {
                    return Err(LambdaStageError::CodeVerificationFailed {
                        function: function.clone(),
                        expected: expected.clone(),
                        deployed: updated.code_sha256.unwrap_or_default(),
                    });
                }
            }
            Action::UpdateFunctionConfiguration { function, change } => {
                self.aws
                    .lambda(region)
                    .update_function_configuration(function, change)
                    .await
                    .map_err(failed)?;
            }
            Action::PublishVersion {
                function,
                expected_code_sha256,
            } => {
                let version = self
                    .aws
                    .lambda(region)
                    .publish_version(
                        function,
                        Some(expected_code_sha256),
                        Some(VERSION_DESCRIPTION),
                    )
                    .await
                    .map_err(failed)?;
                report.published.push((function.clone(), version));
            }
            Action::CreateAlias {
                function,
                alias,
                routing,
            } => {
                self.aws
                    .lambda(region)
                    .create_alias(function, alias, &alias_target(routing))
                    .await
                    .map_err(failed)?;
            }
            Action::UpdateAlias {
                function,
                alias,
                routing,
            } => {
                self.aws
                    .lambda(region)
                    .update_alias(function, alias, &alias_target(routing), None)
                    .await
                    .map_err(failed)?;
            }
            Action::RollBackAlias {
                function,
                alias,
                to_version,
                ..
            } => {
                let target = alias_target(&AliasRouting {
                    function_version: to_version.clone(),
                    canary: None,
                });
                self.aws
                    .lambda(region)
                    .update_alias(function, alias, &target, None)
                    .await
                    .map_err(failed)?;
            }
            Action::DeleteVersion { function, version } => {
                match self
                    .aws
                    .lambda(region)
                    .delete_version(function, version)
                    .await
                {
                    // Still used by something Stagehand does not manage (another alias, a
                    // mapping on that version): kept, and tried again at a later resync.
                    Err(error) if error.kind == ErrorKind::Conflict => {
                        tracing::info!(%function, %version, "version kept: {error}");
                    }
                    result => result.map_err(failed)?,
                }
            }
            Action::CreateMapping {
                function,
                queue,
                event_source_arn,
                settings,
            } => {
                let created = self
                    .aws
                    .lambda(region)
                    .create_event_source_mapping(
                        function,
                        event_source_arn,
                        settings,
                        &tags::ownership_tags(self.owner, self.cluster_id),
                    )
                    .await
                    .map_err(failed)?;
                report
                    .created_mappings
                    .insert((function.clone(), queue.clone()), created);
            }
            Action::UpdateMapping { uuid, settings, .. } => {
                self.aws
                    .lambda(region)
                    .update_event_source_mapping(uuid, settings)
                    .await
                    .map_err(failed)?;
            }
        }
        Ok(())
    }
}

impl Actor<'_> {
    /// Tells the inventory what `action` changed.
    fn mark_written(&self, action: &Action) {
        let lambda = self.inventory.lambda(&self.spec.region);
        match action {
            Action::HashArtifact { .. } | Action::CreateChangeSet { .. } => {}
            Action::ExecuteChangeSet { .. } | Action::DeleteFailedStack { .. } => {
                lambda.functions_changed();
            }
            Action::TagFunction { function, .. }
            | Action::UpdateFunctionCode { function, .. }
            | Action::UpdateFunctionConfiguration { function, .. } => {
                lambda.function_written(function);
            }
            Action::PublishVersion { function, .. } | Action::DeleteVersion { function, .. } => {
                lambda.versions_written(function);
            }
            Action::CreateAlias { function, .. }
            | Action::UpdateAlias { function, .. }
            | Action::RollBackAlias { function, .. } => {
                lambda.alias_written(function);
            }
            Action::CreateMapping { .. } | Action::UpdateMapping { .. } => {
                lambda.mappings_written();
            }
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
