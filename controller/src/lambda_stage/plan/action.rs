//! The changes a plan asks for. What is known about each kind of change — its name, metric
//! label, Event, the function it changes, what the inventory must read again — is one row of
//! [`Action::facts`]; only its message (`Display`) is written apart.

use std::collections::BTreeMap;
use std::fmt;

use stagehand_crds::S3ObjectRef;

use super::alias::AliasRouting;
use crate::aws::cloudformation::ChangeSetKind;
use crate::aws::lambda::{CodeSource as CodeLocation, ConfigUpdate, MappingSettings};

/// One change to make in AWS. Variant names are what operators read in Events and logs.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Stream the artifact once and cache its SHA-256: S3 has no checksum for it and the desired
    /// hash (follow mode) or the pin check depends on it.
    HashArtifact {
        artifact: S3ObjectRef,
        e_tag: Option<String>,
    },
    /// Create the change set for the desired template and parameters (`Create` for a new
    /// stack, `Update` otherwise).
    CreateChangeSet {
        stack_name: String,
        change_set_name: String,
        kind: ChangeSetKind,
    },
    /// Execute a change set CloudFormation has computed.
    ExecuteChangeSet {
        stack_name: String,
        change_set_name: String,
    },
    /// Delete a stack left in `ROLLBACK_COMPLETE` (it cannot be updated); it is created again
    /// on a later round (`onRollbackComplete: Recreate`).
    DeleteFailedStack { stack_name: String },
    /// Write the ownership tags on an untagged function: one adopted (`adopt: true`), or one
    /// the stage's own stack created.
    TagFunction {
        function: String,
        arn: String,
        tags: BTreeMap<String, String>,
    },
    /// Point the function at new code; `expected_code_sha256` (base64, zip only) is what Lambda
    /// must report afterwards.
    UpdateFunctionCode {
        function: String,
        source: CodeLocation,
        expected_code_sha256: Option<String>,
    },
    /// Change only the configuration fields that differ (layers and environment as complete
    /// values, since Lambda replaces them).
    UpdateFunctionConfiguration {
        function: String,
        change: ConfigUpdate,
    },
    /// Publish `$LATEST` as a version, refused by Lambda unless its code has this hash.
    PublishVersion {
        function: String,
        expected_code_sha256: String,
    },
    CreateAlias {
        function: String,
        alias: String,
        routing: AliasRouting,
    },
    UpdateAlias {
        function: String,
        alias: String,
        routing: AliasRouting,
    },
    /// `alias.rollbackOnValidationFailure`: send all of the alias's traffic back to
    /// `to_version` because validation failed while it served `from_version` (whose code is
    /// `from_code_sha256`). Status remembers it, so the alias is not moved forward again to
    /// the same build.
    RollBackAlias {
        function: String,
        alias: String,
        from_version: String,
        from_code_sha256: String,
        to_version: String,
        /// The failed checks (the `Validated` message).
        reason: String,
    },
    /// Delete a version Stagehand published that is older than the newest `alias.keepVersions`
    /// and that neither the alias, a canary, `rollbackTo` nor a rollback target needs.
    DeleteVersion { function: String, version: String },
    /// Create the mapping: none exists for this function and queue.
    CreateMapping {
        function: String,
        queue: String,
        event_source_arn: String,
        settings: MappingSettings,
    },
    /// Change an existing mapping in place (its UUID stays).
    UpdateMapping {
        function: String,
        queue: String,
        uuid: String,
        settings: MappingSettings,
    },
}

/// Everything known about one kind of action besides its message: gathered in
/// [`Action::facts`] so that a new variant is described in one place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ActionFacts<'a> {
    /// The variant name, as operators read it (`UpdateFunctionCode`).
    pub kind: &'static str,
    /// The `action` label of `stagehand_actions_total`.
    pub metric_label: &'static str,
    /// The reason of the Kubernetes Event reporting it (`CodeUpdated`).
    pub event_reason: &'static str,
    /// The action of that Event: the AWS call made (`UpdateFunctionCode`).
    pub event_verb: &'static str,
    /// The Lambda function the action changes, if it changes one.
    pub function: Option<&'a str>,
    /// What the inventory must read again instead of trusting a listing taken before.
    pub written: Written<'a>,
}

/// What an action changed in AWS, as far as the inventory's listings are concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Written<'a> {
    /// Nothing listed: an artifact's hash, a change set not yet executed.
    Nothing,
    /// The functions of the stack, whichever they are: CloudFormation writes them.
    StackFunctions,
    /// The function's code, configuration or tags.
    Function(&'a str),
    /// The function's published versions.
    Versions(&'a str),
    /// The function's alias.
    Alias(&'a str),
    /// The region's event-source mappings.
    Mappings,
}

impl Action {
    /// The facts of this action, one row per variant.
    pub const fn facts(&self) -> ActionFacts<'_> {
        match self {
            Self::HashArtifact { .. } => ActionFacts {
                kind: "HashArtifact",
                metric_label: "artifact_hash",
                event_reason: "ArtifactHashed",
                event_verb: "GetObject",
                function: None,
                written: Written::Nothing,
            },
            Self::CreateChangeSet { .. } => ActionFacts {
                kind: "CreateChangeSet",
                metric_label: "stack_change_set",
                event_reason: "ChangeSetCreated",
                event_verb: "CreateChangeSet",
                function: None,
                written: Written::Nothing,
            },
            Self::ExecuteChangeSet { .. } => ActionFacts {
                kind: "ExecuteChangeSet",
                metric_label: "stack_update",
                event_reason: "StackUpdating",
                event_verb: "ExecuteChangeSet",
                function: None,
                written: Written::StackFunctions,
            },
            Self::DeleteFailedStack { .. } => ActionFacts {
                kind: "DeleteFailedStack",
                metric_label: "stack_delete",
                event_reason: "StackDeleting",
                event_verb: "DeleteStack",
                function: None,
                written: Written::StackFunctions,
            },
            Self::TagFunction { function, .. } => ActionFacts {
                kind: "TagFunction",
                metric_label: "adopt",
                event_reason: "FunctionAdopted",
                event_verb: "TagResource",
                function: Some(function.as_str()),
                written: Written::Function(function.as_str()),
            },
            Self::UpdateFunctionCode { function, .. } => ActionFacts {
                kind: "UpdateFunctionCode",
                metric_label: "code_update",
                event_reason: "CodeUpdated",
                event_verb: "UpdateFunctionCode",
                function: Some(function.as_str()),
                written: Written::Function(function.as_str()),
            },
            Self::UpdateFunctionConfiguration { function, .. } => ActionFacts {
                kind: "UpdateFunctionConfiguration",
                metric_label: "configuration_update",
                event_reason: "ConfigurationUpdated",
                event_verb: "UpdateFunctionConfiguration",
                function: Some(function.as_str()),
                written: Written::Function(function.as_str()),
            },
            Self::PublishVersion { function, .. } => ActionFacts {
                kind: "PublishVersion",
                metric_label: "version_publish",
                event_reason: "VersionPublished",
                event_verb: "PublishVersion",
                function: Some(function.as_str()),
                written: Written::Versions(function.as_str()),
            },
            Self::CreateAlias { function, .. } => ActionFacts {
                kind: "CreateAlias",
                metric_label: "alias_update",
                event_reason: "AliasCreated",
                event_verb: "CreateAlias",
                function: Some(function.as_str()),
                written: Written::Alias(function.as_str()),
            },
            Self::UpdateAlias { function, .. } => ActionFacts {
                kind: "UpdateAlias",
                metric_label: "alias_update",
                event_reason: "AliasUpdated",
                event_verb: "UpdateAlias",
                function: Some(function.as_str()),
                written: Written::Alias(function.as_str()),
            },
            Self::RollBackAlias { function, .. } => ActionFacts {
                kind: "RollBackAlias",
                metric_label: "alias_rollback",
                event_reason: "AliasRolledBack",
                event_verb: "UpdateAlias",
                function: Some(function.as_str()),
                written: Written::Alias(function.as_str()),
            },
            Self::DeleteVersion { function, .. } => ActionFacts {
                kind: "DeleteVersion",
                metric_label: "version_delete",
                event_reason: "VersionDeleted",
                event_verb: "DeleteFunction",
                function: Some(function.as_str()),
                written: Written::Versions(function.as_str()),
            },
            Self::CreateMapping { function, .. } => ActionFacts {
                kind: "CreateMapping",
                metric_label: "mapping_create",
                event_reason: "MappingCreated",
                event_verb: "CreateEventSourceMapping",
                function: Some(function.as_str()),
                written: Written::Mappings,
            },
            Self::UpdateMapping { function, .. } => ActionFacts {
                kind: "UpdateMapping",
                metric_label: "mapping_update",
                event_reason: "MappingUpdated",
                event_verb: "UpdateEventSourceMapping",
                function: Some(function.as_str()),
                written: Written::Mappings,
            },
        }
    }

    /// The variant name, as operators read it (`UpdateFunctionCode`).
    pub const fn kind(&self) -> &'static str {
        self.facts().kind
    }

    /// The Lambda function the action changes, if it changes one.
    pub const fn function(&self) -> Option<&str> {
        self.facts().function
    }

    /// The `action` label of `stagehand_actions_total`.
    pub const fn metric_label(&self) -> &'static str {
        self.facts().metric_label
    }

    /// The reason and action of the Kubernetes Event reporting it.
    pub const fn event(&self) -> (&'static str, &'static str) {
        let facts = self.facts();
        (facts.event_reason, facts.event_verb)
    }

    /// What the inventory must read again after it, whether it succeeded or not.
    pub const fn written(&self) -> Written<'_> {
        self.facts().written
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::HashArtifact { artifact, .. } => {
                write!(
                    f,
                    "hash s3://{}/{} (S3 has no SHA-256 for it)",
                    artifact.bucket, artifact.key
                )
            }
            Self::CreateChangeSet {
                stack_name,
                change_set_name,
                kind,
            } => {
                write!(
                    f,
                    "create {kind:?} change set {change_set_name} for stack {stack_name}"
                )
            }
            Self::ExecuteChangeSet {
                stack_name,
                change_set_name,
            } => {
                write!(
                    f,
                    "execute change set {change_set_name} on stack {stack_name}"
                )
            }
            Self::DeleteFailedStack { stack_name } => {
                write!(
                    f,
                    "delete stack {stack_name} (ROLLBACK_COMPLETE) to create it again"
                )
            }
            Self::TagFunction { function, .. } => {
                write!(
                    f,
                    "tag function {function} as this stage's (ownership tags)"
                )
            }
            Self::UpdateFunctionCode {
                function,
                source,
                expected_code_sha256,
            } => {
                let target = match source {
                    CodeLocation::S3 { bucket, key, .. } => format!("s3://{bucket}/{key}"),
                    CodeLocation::Image { uri } => uri.clone(),
                };
                match expected_code_sha256 {
                    Some(sha) => write!(f, "update code of {function} to {target} (sha256 {sha})"),
                    None => write!(f, "update code of {function} to {target}"),
                }
            }
            Self::UpdateFunctionConfiguration { function, change } => {
                write!(
                    f,
                    "update configuration of {function}: {}",
                    changed_fields(change).join(", ")
                )
            }
            Self::PublishVersion {
                function,
                expected_code_sha256,
            } => {
                write!(
                    f,
                    "publish a version of {function} (sha256 {expected_code_sha256})"
                )
            }
            Self::CreateAlias {
                function,
                alias,
                routing,
            } => {
                write!(f, "create alias {function}:{alias} → {routing}")
            }
            Self::UpdateAlias {
                function,
                alias,
                routing,
            } => {
                write!(f, "point alias {function}:{alias} at {routing}")
            }
            Self::RollBackAlias {
                function,
                alias,
                from_version,
                to_version,
                reason,
                ..
            } => {
                write!(
                    f,
                    "roll alias {function}:{alias} back from version {from_version} to version {to_version} (validation failed: {reason})"
                )
            }
            Self::DeleteVersion { function, version } => {
                write!(
                    f,
                    "delete version {version} of {function} (beyond alias.keepVersions)"
                )
            }
            Self::CreateMapping {
                function, queue, ..
            } => {
                write!(f, "create mapping {queue} → {function}")
            }
            Self::UpdateMapping {
                function,
                queue,
                uuid,
                ..
            } => {
                write!(f, "update mapping {uuid} ({queue} → {function})")
            }
        }
    }
}

/// The fields a configuration update sets, for its message.
fn changed_fields(change: &ConfigUpdate) -> Vec<&'static str> {
    [
        ("layers", change.layers.is_some()),
        ("environment", change.environment.is_some()),
        ("runtime", change.runtime.is_some()),
        ("handler", change.handler.is_some()),
        ("memory", change.memory_mb.is_some()),
        ("timeout", change.timeout_seconds.is_some()),
    ]
    .into_iter()
    .filter_map(|(field, changed)| changed.then_some(field))
    .collect()
}
