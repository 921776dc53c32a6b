//! The changes a plan asks for, as operators read them in Events, logs and `stagehand plan`.

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

impl Action {
    /// The variant name, as operators read it (`UpdateFunctionCode`).
    pub const fn kind(&self) -> &'static str {
        match self {
            Self::HashArtifact { .. } => "HashArtifact",
            Self::CreateChangeSet { .. } => "CreateChangeSet",
            Self::ExecuteChangeSet { .. } => "ExecuteChangeSet",
            Self::DeleteFailedStack { .. } => "DeleteFailedStack",
            Self::TagFunction { .. } => "TagFunction",
            Self::UpdateFunctionCode { .. } => "UpdateFunctionCode",
            Self::UpdateFunctionConfiguration { .. } => "UpdateFunctionConfiguration",
            Self::PublishVersion { .. } => "PublishVersion",
            Self::CreateAlias { .. } => "CreateAlias",
            Self::UpdateAlias { .. } => "UpdateAlias",
            Self::RollBackAlias { .. } => "RollBackAlias",
            Self::DeleteVersion { .. } => "DeleteVersion",
            Self::CreateMapping { .. } => "CreateMapping",
            Self::UpdateMapping { .. } => "UpdateMapping",
        }
    }

    /// The Lambda function the action changes, if it changes one.
    pub fn function(&self) -> Option<&str> {
        match self {
            Self::HashArtifact { .. }
            | Self::CreateChangeSet { .. }
            | Self::ExecuteChangeSet { .. }
            | Self::DeleteFailedStack { .. } => None,
            Self::TagFunction { function, .. }
            | Self::UpdateFunctionCode { function, .. }
            | Self::UpdateFunctionConfiguration { function, .. }
            | Self::PublishVersion { function, .. }
            | Self::CreateAlias { function, .. }
            | Self::UpdateAlias { function, .. }
            | Self::RollBackAlias { function, .. }
            | Self::DeleteVersion { function, .. }
            | Self::CreateMapping { function, .. }
            | Self::UpdateMapping { function, .. } => Some(function),
        }
    }

    /// The `action` label of `stagehand_actions_total`.
    pub const fn metric_label(&self) -> &'static str {
        match self {
            Self::HashArtifact { .. } => "artifact_hash",
            Self::CreateChangeSet { .. } => "stack_change_set",
            Self::ExecuteChangeSet { .. } => "stack_update",
            Self::DeleteFailedStack { .. } => "stack_delete",
            Self::TagFunction { .. } => "adopt",
            Self::UpdateFunctionCode { .. } => "code_update",
            Self::UpdateFunctionConfiguration { .. } => "configuration_update",
            Self::PublishVersion { .. } => "version_publish",
            Self::CreateAlias { .. } | Self::UpdateAlias { .. } => "alias_update",
            Self::RollBackAlias { .. } => "alias_rollback",
            Self::DeleteVersion { .. } => "version_delete",
            Self::CreateMapping { .. } => "mapping_create",
            Self::UpdateMapping { .. } => "mapping_update",
        }
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
