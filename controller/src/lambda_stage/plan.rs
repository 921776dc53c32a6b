//! Every reason Stagehand changes a LambdaStage in AWS, and in which order.
//!
//! `plan(spec, context, observed)` is pure: no I/O, no clock, no randomness. It compares the
//! spec with [`Observed`] through small named predicates (`code_drifted`, `layers_drifted`,
//! `environment_drifted`, `mapping_changes`, `stack_phase`, ...) and returns the ordered
//! [`Action`]s, the [`Drift`] it found, what to wait for, and the domain conditions.
//!
//! Rules that shape the order:
//! - A stall stops everything: an ownership conflict, a missing adoption, an artifact that does
//!   not match its pin, a failed stack — the plan then has no actions at all, so nothing is
//!   changed on the strength of a spec that cannot be honoured.
//! - The stack comes first. While it is being created, updated or replaced, its functions are
//!   left alone (CloudFormation may be writing them too); drift is still reported.
//! - One Lambda write per function per round: Lambda rejects a second update while
//!   `LastUpdateStatus` is `InProgress`, and blocking a worker to wait is not an option. So a
//!   function gets its code first, its configuration (layers, environment, runtime, ...) on a
//!   later round, then a published version, then the alias. Tagging (adoption) comes before all
//!   of them, and does not count as an update.
//! - Mappings come after the functions; a mapping is updated in place and never created twice.
//! - While an artifact is being hashed, nothing else is done: its hash may not match its pin,
//!   and nothing is changed on the strength of an artifact that may be refused.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use stagehand_crds::LambdaStageSpec;
use stagehand_crds::S3ObjectRef;
use stagehand_crds::condition::{CODE_IN_SYNC, LAYERS_ATTACHED, MAPPINGS_HEALTHY, VALIDATED};
use stagehand_crds::lambda_stage::{
    AliasSpec, CodeSource, EventSourceMapping as MappingSpec, FunctionSpec, HttpCheckResult,
    PublishedVersion as StatusVersion, QueueBacklog, RollbackCompletePolicy, ValidationStatus,
    VersionRollback,
};

use super::observed::{
    DeclaredAs, DeployedFunction, MappingKey, Observed, ObservedArtifact, ObservedFunction,
    ObservedStack,
};
use crate::aws::cloudformation::{ChangeSetInfo, ChangeSetKind};
use crate::aws::lambda::{
    self, Alias, CodeSource as CodeLocation, ConfigUpdate, EventSourceMapping, MappingSettings,
    PublishedVersion,
};
use crate::aws::s3::Sha256Digest;
use crate::aws::tags::{self, Ownership};
use crate::base::conditions::{ConditionStatus, DesiredCondition, ReconcileOutcome};
use crate::base::duration::parse_go_duration;
use crate::base::gates::ActGate;

#[cfg(test)]
mod tests;

/// Lambda attaches at most this many layers to a function.
pub const MAX_LAYERS: usize = 5;

/// How long to wait before looking again, per thing being waited for.
pub mod requeue {
    /// A stack operation or change set computation (minutes, typically).
    pub const STACK_SECONDS: u64 = 15;
    /// A function update (seconds, typically).
    pub const FUNCTION_UPDATE_SECONDS: u64 = 5;
    /// A mapping between states (`Creating`, `Updating`).
    pub const MAPPING_SECONDS: u64 = 10;
    /// A canary waiting for its promotion time.
    pub const CANARY_SECONDS: u64 = 30;
}

/// Condition and stall reasons: CamelCase, a fixed set (they are metric labels too).
pub mod reason {
    pub const OWNERSHIP_CONFLICT: &str = "OwnershipConflict";
    pub const ADOPTION_REQUIRED: &str = "AdoptionRequired";
    pub const ARTIFACT_MISMATCH: &str = "ArtifactMismatch";
    pub const ARTIFACT_NOT_FOUND: &str = "ArtifactNotFound";
    pub const INVALID_PIN: &str = "InvalidSha256Pin";
    pub const PACKAGE_TYPE_MISMATCH: &str = "PackageTypeMismatch";
    pub const LAYER_NOT_FOUND: &str = "LayerNotFound";
    pub const TOO_MANY_LAYERS: &str = "TooManyLayers";
    pub const FUNCTION_NOT_FOUND: &str = "FunctionNotFound";
    pub const QUEUE_NOT_FOUND: &str = "QueueNotFound";
    pub const MAPPING_FUNCTION_NOT_FOUND: &str = "MappingFunctionNotFound";
    pub const STACK_ROLLBACK_COMPLETE: &str = "StackRollbackComplete";
    pub const STACK_UPDATE_ROLLBACK_FAILED: &str = "StackUpdateRollbackFailed";
    pub const STACK_FAILED: &str = "StackFailed";
    pub const CHANGE_SET_FAILED: &str = "ChangeSetFailed";
    pub const ROLLBACK_VERSION_UNKNOWN: &str = "RollbackVersionUnknown";
    pub const VALIDATION_FAILED: &str = "ValidationFailed";
    pub const VALIDATION_PASSED: &str = "ValidationPassed";
    pub const CODE_DRIFT: &str = "CodeDrift";
    pub const CODE_MATCHES: &str = "CodeMatchesArtifact";
    pub const ARTIFACT_HASH_PENDING: &str = "ArtifactHashPending";
    pub const NO_CODE_DECLARED: &str = "NoCodeDeclared";
    pub const LAYERS_DRIFTED: &str = "LayersDrifted";
    pub const LAYERS_ATTACHED: &str = "LayersAttached";
    pub const NO_LAYERS_DECLARED: &str = "NoLayersDeclared";
    pub const MAPPINGS_DRIFTED: &str = "MappingsDrifted";
    pub const MAPPINGS_HEALTHY: &str = "MappingsHealthy";
    pub const NO_MAPPINGS_DECLARED: &str = "NoMappingsDeclared";
    pub const APPLYING: &str = "Applying";
    pub const STACK_IN_PROGRESS: &str = "StackInProgress";
    pub const CHANGE_SET_PENDING: &str = "ChangeSetPending";
    pub const FUNCTION_UPDATE_IN_PROGRESS: &str = "FunctionUpdateInProgress";
    pub const MAPPING_TRANSITIONING: &str = "MappingTransitioning";
    pub const CANARY_RUNNING: &str = "CanaryRunning";
    /// `alias.rollbackOnValidationFailure` moved the alias back to a good version.
    pub const ROLLED_BACK: &str = "RolledBack";
}

/// Who is planning, for what, and whether acting is allowed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanContext {
    /// `stagehand.dev/owner` value of this object (`<namespace>/LambdaStage/<name>`).
    pub owner: String,
    /// `stagehand.dev/cluster` value of this controller.
    pub cluster_id: String,
    /// `metadata.generation` the plan is for (conditions carry it).
    pub generation: i64,
    /// Act, ObserveOnly or Paused.
    pub gate: ActGate,
}

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

/// Where an alias sends traffic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AliasRouting {
    /// The primary version.
    pub function_version: String,
    /// A weighted canary beside it.
    pub canary: Option<CanaryRoute>,
}

impl AliasRouting {
    fn single(version: impl Into<String>) -> Self {
        Self {
            function_version: version.into(),
            canary: None,
        }
    }
}

impl fmt::Display for AliasRouting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.canary {
            None => write!(f, "version {}", self.function_version),
            Some(c) => write!(
                f,
                "version {} with {}% to version {}",
                self.function_version, c.weight_percent, c.version
            ),
        }
    }
}

/// A share of an alias's traffic routed to a newer version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CanaryRoute {
    pub version: String,
    pub weight_percent: i32,
}

/// Something that differs between the spec and AWS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Drift {
    pub field: DriftField,
    /// The function, mapping or stack concerned.
    pub subject: String,
    /// Deployed vs desired, for humans.
    pub detail: String,
}

/// What drifted: the `field` label of `stagehand_drift_detected_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum DriftField {
    Code,
    Layers,
    Environment,
    Configuration,
    Mapping,
    Stack,
    Alias,
    Ownership,
}

impl DriftField {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Code => "code",
            Self::Layers => "layers",
            Self::Environment => "environment",
            Self::Configuration => "configuration",
            Self::Mapping => "mapping",
            Self::Stack => "stack",
            Self::Alias => "alias",
            Self::Ownership => "ownership",
        }
    }
}

/// Something AWS is still doing; look again after `requeue_after_seconds`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wait {
    pub reason: &'static str,
    pub subject: String,
    pub requeue_after_seconds: u64,
}

/// Why nothing is done until a human or a spec change intervenes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stall {
    pub reason: &'static str,
    pub message: String,
}

/// Per-function hashes for status (`status.functions`, `functionsInSync`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FunctionSummary {
    pub name: String,
    /// Deployed `CodeSha256` (base64), or the image digest.
    pub deployed_code_sha256: Option<String>,
    /// Desired hash in the same form; `None` when unknown (hash pending) or not managed.
    pub desired_code_sha256: Option<String>,
    pub code_in_sync: bool,
}

/// The decision for one reconcile.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// What to do, in order. Empty when stalled, waiting on everything, or not allowed to act.
    pub actions: Vec<Action>,
    /// What differs between the spec and AWS (reported in every mode).
    pub drift: Vec<Drift>,
    /// `CodeInSync`, `LayersAttached`, `MappingsHealthy`, `Validated`.
    pub conditions: Vec<DesiredCondition>,
    /// What AWS is still doing.
    pub waits: Vec<Wait>,
    /// Set when a human or a spec change is needed.
    pub stalled: Option<Stall>,
    pub functions: Vec<FunctionSummary>,
    pub validation: ValidationStatus,
    pub gate: ActGate,
}

impl Plan {
    /// How soon to look again while waiting on AWS; `None` when nothing is awaited.
    pub fn requeue_after_seconds(&self) -> Option<u64> {
        self.waits.iter().map(|w| w.requeue_after_seconds).min()
    }

    /// The condition of `type_` in this plan.
    pub fn condition(&self, type_: &str) -> Option<&DesiredCondition> {
        self.conditions.iter().find(|c| c.type_ == type_)
    }

    /// What the kstatus conditions say about this plan, before any action ran.
    pub fn outcome(&self) -> ReconcileOutcome {
        match self.gate {
            ActGate::Paused => return ReconcileOutcome::Paused,
            ActGate::ObserveOnly => {
                let mut fields: Vec<&str> = self.drift.iter().map(|d| d.field.as_str()).collect();
                fields.sort_unstable();
                fields.dedup();
                if let Some(stall) = &self.stalled {
                    return ReconcileOutcome::ObserveOnlyDrift {
                        fields: fields.into_iter().map(str::to_owned).collect(),
                        message: format!("ObserveOnly: {}", stall.message),
                    };
                }
                if !fields.is_empty() {
                    return ReconcileOutcome::ObserveOnlyDrift {
                        fields: fields.into_iter().map(str::to_owned).collect(),
                        message: String::new(),
                    };
                }
            }
            ActGate::Act => {}
        }
        if let Some(stall) = &self.stalled {
            return ReconcileOutcome::Stalled {
                reason: stall.reason.to_owned(),
                message: stall.message.clone(),
            };
        }
        if !self.actions.is_empty() {
            let described: Vec<String> = self.actions.iter().map(ToString::to_string).collect();
            return ReconcileOutcome::Progressing {
                reason: reason::APPLYING.to_owned(),
                message: described.join("; "),
            };
        }
        if let Some(wait) = self.waits.first() {
            return ReconcileOutcome::Progressing {
                reason: wait.reason.to_owned(),
                message: format!("waiting: {} ({})", wait.subject, wait.reason),
            };
        }
        ReconcileOutcome::Converged {
            message: format!("{} functions in sync", self.functions.len()),
        }
    }
}

/// Decides what to do for one LambdaStage. Pure.
pub fn plan(spec: &LambdaStageSpec, context: &PlanContext, observed: &Observed) -> Plan {
    let mut planner = Planner {
        spec,
        context,
        observed,
        plan: Plan {
            actions: Vec::new(),
            drift: Vec::new(),
            conditions: Vec::new(),
            waits: Vec::new(),
            stalled: None,
            functions: Vec::new(),
            validation: ValidationStatus::default(),
            gate: context.gate,
        },
        artifacts_to_hash: BTreeSet::new(),
        layers_drifted: Vec::new(),
        code_hash_pending: false,
        mapping_problems: Vec::new(),
        rollbacks_in_effect: Vec::new(),
    };
    planner.check_ownership();
    let resolved_layers = planner.resolve_layers();
    let stack_settled = planner.plan_stack();
    let validation_passed = planner.validate();
    for function in &observed.functions {
        planner.plan_function(function, &resolved_layers, stack_settled, validation_passed);
    }
    planner.plan_mappings(stack_settled);
    planner.finish(validation_passed)
}

struct Planner<'a> {
    spec: &'a LambdaStageSpec,
    context: &'a PlanContext,
    observed: &'a Observed,
    plan: Plan,
    artifacts_to_hash: BTreeSet<(String, String, Option<String>)>,
    layers_drifted: Vec<String>,
    code_hash_pending: bool,
    mapping_problems: Vec<String>,
    /// Functions whose alias stays on a good version after a rollback, described.
    rollbacks_in_effect: Vec<String>,
}

/// The layers the spec declares, resolved, plus the previously declared ones to detach.
#[derive(Debug, Default)]
struct ResolvedLayers {
    /// Layer version ARNs to attach, in spec order.
    attach: Vec<String>,
    /// Layers (ARN without version, or name) declared before and no longer: detach them.
    detach: Vec<String>,
}

/// The code a function should run.
#[derive(Clone, Debug, PartialEq, Eq)]
enum DesiredCode {
    /// The spec declares no code for the function: code is not managed.
    Unmanaged,
    /// A zip with a known hash, deployed from exactly the object version that was checked.
    Zip {
        source: CodeLocation,
        sha256: Sha256Digest,
    },
    /// A container image pinned by digest.
    Image { uri: String, digest: String },
    /// The artifact's hash is unknown until it is streamed once.
    NeedsHash {
        artifact: S3ObjectRef,
        e_tag: Option<String>,
    },
}

impl Planner<'_> {
    fn stall(&mut self, reason: &'static str, message: String) {
        // The first stall is the one reported: checks run from the most fundamental (who owns
        // what) to the most specific.
        if self.plan.stalled.is_none() {
            self.plan.stalled = Some(Stall { reason, message });
        }
    }

    fn wait(&mut self, reason: &'static str, subject: impl Into<String>, seconds: u64) {
        self.plan.waits.push(Wait {
            reason,
            subject: subject.into(),
            requeue_after_seconds: seconds,
        });
    }

    fn drift(&mut self, field: DriftField, subject: &str, detail: String) {
        self.plan.drift.push(Drift {
            field,
            subject: subject.to_owned(),
            detail,
        });
    }

    fn act(&mut self, action: Action) {
        self.plan.actions.push(action);
    }

    /// Functions and the stack must be ours, or adoptable.
    fn check_ownership(&mut self) {
        let owner = self.context.owner.as_str();
        let cluster = self.context.cluster_id.as_str();
        if let Some(stack) = self.observed.stack.as_ref().and_then(|s| s.stack.as_ref()) {
            let what = format!("stack {}", stack.name);
            self.check_owner_of(&what, tags::ownership(&stack.tags, owner, cluster));
        }
        for function in &self.observed.functions {
            if let Some(deployed) = &function.deployed {
                let what = format!("function {}", function.name);
                let ownership = tags::ownership(&deployed.tags, owner, cluster);
                if ownership == Ownership::Untagged && self.in_own_stack(function) {
                    // Created by the stage's own stack: ours, tagged before it is modified.
                    continue;
                }
                self.check_owner_of(&what, ownership);
            }
        }
    }

    /// The function is a resource of the stage's stack (however the spec selects it: `fromStack`,
    /// `functionSelector.stackResources`, by name or by prefix) and that stack carries this
    /// stage's ownership tags: the stage created it through its stack, so it is the stage's own
    /// without `adopt`. (Real CloudFormation propagates the stack's tags to its functions;
    /// emulators and stacks tagged after creation do not.)
    fn in_own_stack(&self, function: &ObservedFunction) -> bool {
        self.observed.stack.as_ref().is_some_and(|observed| {
            observed.function_names.contains(&function.name)
                && observed.stack.as_ref().is_some_and(|stack| {
                    tags::ownership(&stack.tags, &self.context.owner, &self.context.cluster_id)
                        == Ownership::Ours
                })
        })
    }

    fn check_owner_of(&mut self, what: &str, ownership: Ownership) {
        match ownership {
            Ownership::OtherOwner(other) => {
                self.drift(DriftField::Ownership, what, format!("owned by {other}"));
                self.stall(
                    reason::OWNERSHIP_CONFLICT,
                    format!("{what} is owned by {other}; Stagehand never changes another owner's resources"),
                );
            }
            Ownership::Untagged if !self.spec.lifecycle.adopt => {
                self.drift(
                    DriftField::Ownership,
                    what,
                    "not tagged as owned by this stage".to_owned(),
                );
                self.stall(
                    reason::ADOPTION_REQUIRED,
                    format!("{what} exists without a {} tag; set spec.adopt: true to let this stage manage it", tags::OWNER_TAG),
                );
            }
            // Ours, or adoptable: an untagged function is tagged before it is modified.
            Ownership::Ours | Ownership::Untagged => {}
        }
    }

    fn resolve_layers(&mut self) -> ResolvedLayers {
        let mut resolved = ResolvedLayers::default();
        for layer in &self.spec.layers {
            match self.observed.layer_versions.get(&layer.name) {
                Some(arn) => resolved.attach.push(arn.clone()),
                None => self.stall(
                    reason::LAYER_NOT_FOUND,
                    format!("layer {} has no version {}", layer.name, layer.version),
                ),
            }
        }
        let still_declared: Vec<&str> = resolved
            .attach
            .iter()
            .map(|arn| lambda::layer_arn_without_version(arn))
            .collect();
        resolved.detach = self
            .observed
            .previous
            .declared_layers
            .iter()
            .filter(|previous| !still_declared.iter().any(|arn| same_layer(arn, previous)))
            .cloned()
            .collect();
        resolved
    }

    /// Plans the stack; returns whether it is settled (functions may be changed this round).
    fn plan_stack(&mut self) -> bool {
        let Some(infrastructure) = &self.spec.infrastructure else {
            return true;
        };
        let default_stack = ObservedStack::default();
        let observed = self.observed.stack.as_ref().unwrap_or(&default_stack);
        let stack_name = infrastructure.stack_name.clone();
        let Some(stack) = &observed.stack else {
            self.drift(DriftField::Stack, &stack_name, "does not exist".to_owned());
            return self.plan_change_set(&stack_name, observed, ChangeSetKind::Create);
        };
        let stack_reason = stack
            .status_reason
            .clone()
            .unwrap_or_else(|| "no reason given".to_owned());
        match stack_phase(&stack.status) {
            StackPhase::AwaitingCreateChangeSet => {
                self.plan_change_set(&stack_name, observed, ChangeSetKind::Create)
            }
            StackPhase::InProgress => {
                self.wait(
                    reason::STACK_IN_PROGRESS,
                    format!("stack {stack_name} {}", stack.status),
                    requeue::STACK_SECONDS,
                );
                false
            }
            StackPhase::RollbackComplete => {
                match infrastructure.on_rollback_complete {
                    RollbackCompletePolicy::Recreate => {
                        self.drift(DriftField::Stack, &stack_name, "ROLLBACK_COMPLETE: to be recreated".to_owned());
                        self.act(Action::DeleteFailedStack { stack_name });
                    }
                    RollbackCompletePolicy::Stall => self.stall(
                        reason::STACK_ROLLBACK_COMPLETE,
                        format!("stack {stack_name} is ROLLBACK_COMPLETE ({stack_reason}); delete it or set onRollbackComplete: Recreate"),
                    ),
                }
                false
            }
            StackPhase::UpdateRollbackFailed => {
                self.stall(
                    reason::STACK_UPDATE_ROLLBACK_FAILED,
                    format!("stack {stack_name} is UPDATE_ROLLBACK_FAILED: {stack_reason}"),
                );
                false
            }
            StackPhase::Failed => {
                self.stall(
                    reason::STACK_FAILED,
                    format!("stack {stack_name} is {}: {stack_reason}", stack.status),
                );
                false
            }
            StackPhase::Stable if observed.desired_template_applied => true,
            StackPhase::Stable => {
                self.plan_change_set(&stack_name, observed, ChangeSetKind::Update)
            }
        }
    }

    /// Drives the desired change set; returns whether the stack is settled (empty change set).
    fn plan_change_set(
        &mut self,
        stack_name: &str,
        observed: &ObservedStack,
        kind: ChangeSetKind,
    ) -> bool {
        let change_set_name = observed.change_set_name.clone();
        let subject = format!("change set {change_set_name} of stack {stack_name}");
        match observed.change_set.as_ref().map(change_set_phase) {
            None | Some(ChangeSetPhase::Replace) => {
                if kind == ChangeSetKind::Update {
                    self.drift(
                        DriftField::Stack,
                        stack_name,
                        "template or parameters changed".to_owned(),
                    );
                }
                self.act(Action::CreateChangeSet {
                    stack_name: stack_name.to_owned(),
                    change_set_name,
                    kind,
                });
                false
            }
            Some(ChangeSetPhase::Empty) => true,
            Some(ChangeSetPhase::Computing | ChangeSetPhase::Executing) => {
                self.wait(reason::CHANGE_SET_PENDING, subject, requeue::STACK_SECONDS);
                false
            }
            Some(ChangeSetPhase::Ready) => {
                self.act(Action::ExecuteChangeSet {
                    stack_name: stack_name.to_owned(),
                    change_set_name,
                });
                false
            }
            Some(ChangeSetPhase::Failed(why)) => {
                self.stall(
                    reason::CHANGE_SET_FAILED,
                    format!("{subject} failed: {why}"),
                );
                false
            }
        }
    }

    /// Post-deploy validation against what was observed; fills `plan.validation`.
    fn validate(&mut self) -> bool {
        let validation = self.spec.validation.clone().unwrap_or_default();
        // Without a validation block the mapping check still applies (its default is on).
        let check_mappings = self
            .spec
            .validation
            .as_ref()
            .is_none_or(|v| v.mappings_enabled);
        let mut status = ValidationStatus::default();
        for function in &self.observed.functions {
            let Some(deployed) = &function.deployed else {
                continue;
            };
            let declared = declared_environment(self.spec, spec_entry(self.spec, function));
            for key in &validation.required_environment {
                if !declared.contains_key(key) && !deployed.info.environment.contains_key(key) {
                    status
                        .missing_environment
                        .push(format!("{}: {key}", function.name));
                }
            }
        }
        if check_mappings {
            for mapping in &self.spec.event_source_mappings {
                if let Some(problem) = self.mapping_health_problem(mapping) {
                    status.unhealthy_mappings.push(problem);
                }
            }
        }
        for check in &validation.queues {
            let backlog = match self.observed.queues.get(&check.queue) {
                Some(queue) => {
                    let visible = i64::try_from(queue.visible).unwrap_or(i64::MAX);
                    let in_flight = i64::try_from(queue.in_flight).unwrap_or(i64::MAX);
                    QueueBacklog {
                        queue: check.queue.clone(),
                        visible,
                        in_flight,
                        ok: !backlog_exceeded(
                            visible,
                            in_flight,
                            check.max_visible,
                            check.max_in_flight,
                        ),
                    }
                }
                None => QueueBacklog {
                    queue: check.queue.clone(),
                    ok: false,
                    ..QueueBacklog::default()
                },
            };
            status.queues.push(backlog);
        }
        for check in &validation.http {
            let outcome = self.observed.http_checks.get(&check.name);
            let received = outcome.and_then(|o| o.status);
            let error = match outcome {
                None => Some("not run".to_owned()),
                Some(o) if o.error.is_some() => o.error.clone(),
                Some(_) if received != Some(check.expected_status) => Some(format!(
                    "expected {}, got {}",
                    check.expected_status,
                    received.map_or_else(|| "nothing".to_owned(), |s| s.to_string())
                )),
                Some(_) => None,
            };
            status.http.push(HttpCheckResult {
                name: check.name.clone(),
                status: received,
                ok: error.is_none(),
                error,
            });
        }
        let passed = status.missing_environment.is_empty()
            && status.unhealthy_mappings.is_empty()
            && status.queues.iter().all(|q| q.ok)
            && status.http.iter().all(|h| h.ok);
        let queues_found: BTreeSet<String> = validation
            .queues
            .iter()
            .filter(|check| self.observed.queues.contains_key(&check.queue))
            .map(|check| check.queue.clone())
            .collect();
        let message = validation_message(&status, &validation, &queues_found);
        self.plan.conditions.push(condition(
            VALIDATED,
            passed,
            if passed {
                reason::VALIDATION_PASSED
            } else {
                reason::VALIDATION_FAILED
            },
            message,
        ));
        self.plan.validation = status;
        passed
    }

    /// Why a declared mapping is not healthy (missing, disabled, in between), if it is not.
    fn mapping_health_problem(&self, mapping: &MappingSpec) -> Option<String> {
        let name = format!("{} → {}", mapping.queue, mapping.function);
        let Some(existing) = self.find_mappings(mapping) else {
            return Some(format!("{name}: missing"));
        };
        let Some(kept) = keep_mapping(existing, self.recorded_uuid(mapping)) else {
            return Some(format!("{name}: missing"));
        };
        match kept.enabled() {
            Some(enabled) if enabled == mapping.enabled => None,
            Some(_) if !mapping.enabled => None,
            _ => Some(format!(
                "{name}: {}",
                kept.state.as_deref().unwrap_or("state unknown")
            )),
        }
    }

    fn recorded_uuid(&self, mapping: &MappingSpec) -> Option<&str> {
        self.observed
            .previous
            .mapping_uuids
            .get(&(mapping.function.clone(), mapping.queue.clone()))
            .map(String::as_str)
    }

    /// The mappings found for a declared mapping; `None` when its function or queue is unknown.
    fn find_mappings(&self, mapping: &MappingSpec) -> Option<&[EventSourceMapping]> {
        let function = resolve_mapping_function(&self.observed.functions, &mapping.function)?;
        let queue = self.observed.queues.get(&mapping.queue)?;
        let key = MappingKey::new(&function.name, &queue.arn);
        Some(
            self.observed
                .mappings
                .get(&key)
                .map_or(&[][..], Vec::as_slice),
        )
    }

    fn desired_code(&mut self, function: &ObservedFunction) -> DesiredCode {
        let entry = spec_entry(self.spec, function);
        let Some(source) = entry
            .and_then(|e| e.code.as_ref())
            .or(self.spec.code.as_ref())
        else {
            return DesiredCode::Unmanaged;
        };
        match desired_code_of(source, &self.observed.artifacts) {
            Ok(code) => code,
            Err(stall) => {
                self.stall(stall.reason, stall.message);
                DesiredCode::Unmanaged
            }
        }
    }

    fn plan_function(
        &mut self,
        function: &ObservedFunction,
        layers: &ResolvedLayers,
        stack_settled: bool,
        validation_passed: bool,
    ) {
        let Some(deployed) = &function.deployed else {
            // While the stack is being created or updated, its functions may not exist yet.
            if stack_settled {
                self.stall(
                    reason::FUNCTION_NOT_FOUND,
                    format!("function {} does not exist", function.name),
                );
            }
            return;
        };
        let name = function.name.as_str();
        let code = self.desired_code(function);
        let code_drift = self.report_code(function, deployed, &code);
        let change = self.configuration_change(function, deployed, layers);
        if !stack_settled {
            return;
        }
        if deployed.info.update_in_progress() {
            self.wait(
                reason::FUNCTION_UPDATE_IN_PROGRESS,
                format!("function {name}"),
                requeue::FUNCTION_UPDATE_SECONDS,
            );
            return;
        }
        let ownership = tags::ownership(
            &deployed.tags,
            &self.context.owner,
            &self.context.cluster_id,
        );
        if ownership == Ownership::Untagged
            && (self.spec.lifecycle.adopt || self.in_own_stack(function))
        {
            self.act(Action::TagFunction {
                function: name.to_owned(),
                arn: deployed.info.arn.clone(),
                tags: tags::missing_ownership_tags(
                    &deployed.tags,
                    &self.context.owner,
                    &self.context.cluster_id,
                ),
            });
        }
        match code {
            DesiredCode::NeedsHash { artifact, e_tag } => {
                let key = (
                    artifact.bucket.clone(),
                    artifact.key.clone(),
                    artifact.version_id.clone(),
                );
                if self.artifacts_to_hash.insert(key) {
                    self.act(Action::HashArtifact { artifact, e_tag });
                }
                return;
            }
            DesiredCode::Zip { source, sha256 } if code_drift => {
                self.act(Action::UpdateFunctionCode {
                    function: name.to_owned(),
                    source,
                    expected_code_sha256: Some(sha256.to_base64()),
                });
                return;
            }
            DesiredCode::Image { uri, .. } if code_drift => {
                self.act(Action::UpdateFunctionCode {
                    function: name.to_owned(),
                    source: CodeLocation::Image { uri },
                    expected_code_sha256: None,
                });
                return;
            }
            _ => {}
        }
        if !change.is_empty() {
            self.act(Action::UpdateFunctionConfiguration {
                function: name.to_owned(),
                change,
            });
            return;
        }
        if let Some(alias) = &self.spec.alias {
            self.plan_alias(function, deployed, alias, validation_passed);
        }
    }

    /// Records code drift and the function's summary; returns whether the code must change.
    fn report_code(
        &mut self,
        function: &ObservedFunction,
        deployed: &DeployedFunction,
        code: &DesiredCode,
    ) -> bool {
        let name = function.name.as_str();
        let (deployed_hash, desired_hash, drifted) = match code {
            DesiredCode::Unmanaged => (deployed.info.code_sha256.clone(), None, false),
            DesiredCode::NeedsHash { .. } => {
                self.code_hash_pending = true;
                (deployed.info.code_sha256.clone(), None, false)
            }
            DesiredCode::Zip { sha256, .. } => {
                if deployed.info.is_image() {
                    self.stall(
                        reason::PACKAGE_TYPE_MISMATCH,
                        format!(
                            "function {name} is an image function but the spec gives a zip in S3"
                        ),
                    );
                }
                let drifted = code_drifted(deployed.info.code_sha256.as_deref(), *sha256);
                (
                    deployed.info.code_sha256.clone(),
                    Some(sha256.to_base64()),
                    drifted,
                )
            }
            DesiredCode::Image { digest, .. } => {
                if !deployed.info.is_image() {
                    self.stall(
                        reason::PACKAGE_TYPE_MISMATCH,
                        format!("function {name} is a zip function but the spec gives an image"),
                    );
                }
                let drifted = image_drifted(deployed.image_digest.as_deref(), digest);
                (deployed.image_digest.clone(), Some(digest.clone()), drifted)
            }
        };
        if drifted {
            self.drift(
                DriftField::Code,
                name,
                format!(
                    "deployed {}, desired {}",
                    deployed_hash.as_deref().unwrap_or("nothing"),
                    desired_hash.as_deref().unwrap_or("unknown")
                ),
            );
        }
        self.plan.functions.push(FunctionSummary {
            name: name.to_owned(),
            deployed_code_sha256: deployed_hash,
            code_in_sync: desired_hash.is_some() && !drifted,
            desired_code_sha256: desired_hash,
        });
        drifted
    }

    /// The configuration fields that differ (layers, environment, runtime, handler, memory,
    /// timeout), with drift recorded for each.
    fn configuration_change(
        &mut self,
        function: &ObservedFunction,
        deployed: &DeployedFunction,
        layers: &ResolvedLayers,
    ) -> ConfigUpdate {
        let name = function.name.as_str();
        let info = &deployed.info;
        let entry = spec_entry(self.spec, function);
        let mut change = ConfigUpdate::default();

        // Lambda has no layers for image functions.
        if !info.is_image() {
            let wanted = desired_layers(&info.layers, &layers.attach, &layers.detach);
            if wanted.len() > MAX_LAYERS {
                self.stall(
                    reason::TOO_MANY_LAYERS,
                    format!(
                        "function {name} would have {} layers (Lambda allows {MAX_LAYERS})",
                        wanted.len()
                    ),
                );
            }
            if layers_drifted(&info.layers, &wanted) {
                self.drift(
                    DriftField::Layers,
                    name,
                    format!("{} → {}", layer_names(&info.layers), layer_names(&wanted)),
                );
                self.layers_drifted.push(name.to_owned());
                change.layers = Some(wanted);
            }
        }

        let declared = declared_environment(self.spec, entry);
        let drifted_keys = environment_drifted(&info.environment, &declared);
        if !drifted_keys.is_empty() {
            self.drift(
                DriftField::Environment,
                name,
                format!("{} differ", drifted_keys.join(", ")),
            );
            change.environment = Some(lambda::merged_environment(&info.environment, &declared));
        }

        if let Some(entry) = entry {
            if !info.is_image() {
                change.runtime = differing(entry.runtime.as_ref(), info.runtime.as_ref());
                change.handler = differing(entry.handler.as_ref(), info.handler.as_ref());
            }
            change.memory_mb = differing(entry.memory_mb.as_ref(), info.memory_mb.as_ref());
            change.timeout_seconds = differing(
                entry.timeout_seconds.as_ref(),
                info.timeout_seconds.as_ref(),
            );
            let fields: Vec<&str> = [
                ("runtime", change.runtime.is_some()),
                ("handler", change.handler.is_some()),
                ("memory", change.memory_mb.is_some()),
                ("timeout", change.timeout_seconds.is_some()),
            ]
            .into_iter()
            .filter_map(|(field, changed)| changed.then_some(field))
            .collect();
            if !fields.is_empty() {
                self.drift(
                    DriftField::Configuration,
                    name,
                    format!("{} differ", fields.join(", ")),
                );
            }
        }
        change
    }

    /// Publish, point the alias, run the canary, or roll back. Called once the function's code
    /// and configuration match.
    fn plan_alias(
        &mut self,
        function: &ObservedFunction,
        deployed: &DeployedFunction,
        alias: &AliasSpec,
        validation_passed: bool,
    ) {
        let name = function.name.as_str();
        let routing = if let Some(version) = alias.rollback_to {
            let version = version.to_string();
            let known = self
                .observed
                .previous
                .versions
                .iter()
                .any(|v| v.function_name == name && v.version == version);
            if !known {
                self.stall(
                    reason::ROLLBACK_VERSION_UNKNOWN,
                    format!("alias.rollbackTo {version}: no version {version} of {name} in status.versions"),
                );
                return;
            }
            AliasRouting::single(version)
        } else if alias.publish_versions {
            let Some(code_sha256) = deployed.info.code_sha256.as_deref() else {
                return;
            };
            let Some(newest) = newest_version_with_code(&deployed.published_versions, code_sha256)
            else {
                self.act(Action::PublishVersion {
                    function: name.to_owned(),
                    expected_code_sha256: code_sha256.to_owned(),
                });
                return;
            };
            let Some(routing) = self.routing_for_newest(
                name,
                deployed,
                alias,
                newest,
                code_sha256,
                validation_passed,
            ) else {
                return;
            };
            routing
        } else {
            AliasRouting::single("$LATEST")
        };
        match &deployed.alias {
            None => self.act(Action::CreateAlias {
                function: name.to_owned(),
                alias: alias.name.clone(),
                routing,
            }),
            Some(current) if !alias_routes(current, &routing) => {
                self.drift(
                    DriftField::Alias,
                    name,
                    format!(
                        "{} points at version {}, wanted {routing}",
                        alias.name, current.function_version
                    ),
                );
                self.act(Action::UpdateAlias {
                    function: name.to_owned(),
                    alias: alias.name.clone(),
                    routing,
                });
            }
            Some(_) => {
                if alias.publish_versions {
                    self.prune_versions(name, deployed, alias, &routing);
                }
            }
        }
    }

    /// Versions Stagehand published (recognised by their description) beyond the newest
    /// `alias.keepVersions`, oldest first, except any the alias routes to, `rollbackTo`, and the
    /// newest validated one (what `rollbackOnValidationFailure` goes back to). Planned only once
    /// the alias points where it should. Versions published by others are never deleted.
    fn prune_versions(
        &mut self,
        name: &str,
        deployed: &DeployedFunction,
        alias: &AliasSpec,
        routing: &AliasRouting,
    ) {
        let mut ours: Vec<(u64, &str)> = deployed
            .published_versions
            .iter()
            .filter(|v| v.published_by_stagehand())
            .filter_map(|v| {
                v.version
                    .parse::<u64>()
                    .ok()
                    .map(|n| (n, v.version.as_str()))
            })
            .collect();
        ours.sort_unstable_by_key(|(n, _)| std::cmp::Reverse(*n));
        let keep = usize::try_from(alias.keep_versions).unwrap_or(1).max(1);
        let mut kept: BTreeSet<String> = ours
            .iter()
            .take(keep)
            .map(|(_, v)| (*v).to_owned())
            .collect();
        kept.insert(routing.function_version.clone());
        kept.extend(routing.canary.iter().map(|c| c.version.clone()));
        if let Some(current) = &deployed.alias {
            kept.insert(current.function_version.clone());
            kept.extend(current.routing_weights.keys().cloned());
        }
        kept.extend(alias.rollback_to.map(|v| v.to_string()));
        let newest_validated = self
            .observed
            .previous
            .versions
            .iter()
            .filter(|v| v.function_name == name && v.validated)
            .filter_map(|v| v.version.parse::<u64>().ok())
            .max();
        kept.extend(newest_validated.map(|v| v.to_string()));
        for (_, version) in ours.iter().rev() {
            if !kept.contains(*version) {
                self.act(Action::DeleteVersion {
                    function: name.to_owned(),
                    version: (*version).to_owned(),
                });
            }
        }
    }

    /// Where the alias should point when `newest` is the newest version of the deployed code
    /// (`code_sha256`); `None` when this round rolls the alias back instead (planned here).
    fn routing_for_newest(
        &mut self,
        name: &str,
        deployed: &DeployedFunction,
        alias: &AliasSpec,
        newest: &str,
        code_sha256: &str,
        validation_passed: bool,
    ) -> Option<AliasRouting> {
        if alias.rollback_on_validation_failure {
            let versions = &self.observed.previous.versions;
            if let Some((rejected, rollback)) = rolled_back_build(versions, name, code_sha256) {
                // Stay on the good version whatever validation says now: moving forward to
                // the same build again would flap.
                self.rollbacks_in_effect.push(format!(
                    "alias {} of {name} rolled back from version {} to version {}: {}",
                    alias.name, rejected.version, rollback.to_version, rollback.reason
                ));
                return Some(AliasRouting::single(rollback.to_version.clone()));
            }
            if !validation_passed
                && let Some(current) = &deployed.alias
                && let Some(to_version) =
                    rollback_target(current, newest, code_sha256, name, versions)
            {
                let reason = self
                    .plan
                    .condition(VALIDATED)
                    .map(|c| c.message.clone())
                    .unwrap_or_default();
                self.drift(
                    DriftField::Alias,
                    name,
                    format!("validation failed on version {newest}: back to version {to_version}"),
                );
                self.act(Action::RollBackAlias {
                    function: name.to_owned(),
                    alias: alias.name.clone(),
                    from_version: newest.to_owned(),
                    from_code_sha256: code_sha256.to_owned(),
                    to_version,
                    reason,
                });
                return None;
            }
        }
        Some(self.routing_with_canary(
            name,
            deployed.alias.as_ref(),
            alias,
            newest,
            validation_passed,
        ))
    }

    /// Where the alias should point when `new_version` holds the desired code.
    fn routing_with_canary(
        &mut self,
        name: &str,
        current: Option<&Alias>,
        alias: &AliasSpec,
        new_version: &str,
        validation_passed: bool,
    ) -> AliasRouting {
        let promoted = AliasRouting::single(new_version);
        let (Some(canary), Some(current)) = (&alias.canary, current) else {
            // No canary, or a first deploy (nothing to compare the new version with).
            return promoted;
        };
        if current.function_version == new_version {
            return promoted;
        }
        let running = AliasRouting {
            function_version: current.function_version.clone(),
            canary: Some(CanaryRoute {
                version: new_version.to_owned(),
                weight_percent: canary.weight,
            }),
        };
        if !alias_routes(current, &running) {
            return running;
        }
        if self.observed.canary_promotion_due && validation_passed {
            return promoted;
        }
        self.wait(
            reason::CANARY_RUNNING,
            format!("canary of {name} version {new_version}"),
            canary_requeue_seconds(&canary.promote_after),
        );
        running
    }

    fn plan_mappings(&mut self, stack_settled: bool) {
        for mapping in &self.spec.event_source_mappings {
            let subject = format!("{} → {}", mapping.queue, mapping.function);
            let Some(function) =
                resolve_mapping_function(&self.observed.functions, &mapping.function)
            else {
                if stack_settled {
                    self.stall(
                        reason::MAPPING_FUNCTION_NOT_FOUND,
                        format!(
                            "mapping {subject}: {} is not a selected function",
                            mapping.function
                        ),
                    );
                }
                continue;
            };
            let Some(queue) = self.observed.queues.get(&mapping.queue) else {
                if stack_settled {
                    self.stall(
                        reason::QUEUE_NOT_FOUND,
                        format!("mapping {subject}: queue {} does not exist", mapping.queue),
                    );
                }
                continue;
            };
            let key = MappingKey::new(&function.name, &queue.arn);
            let found = self
                .observed
                .mappings
                .get(&key)
                .map_or(&[][..], Vec::as_slice);
            let Some(kept) = keep_mapping(found, self.recorded_uuid(mapping)) else {
                self.drift(DriftField::Mapping, &subject, "missing".to_owned());
                self.mapping_problems.push(format!("{subject}: missing"));
                if stack_settled {
                    self.act(Action::CreateMapping {
                        function: function.name.clone(),
                        queue: mapping.queue.clone(),
                        event_source_arn: queue.arn.clone(),
                        settings: MappingSettings {
                            batch_size: Some(mapping.batch_size),
                            batching_window_seconds: mapping.maximum_batching_window_seconds,
                            enabled: Some(mapping.enabled),
                            max_concurrency: mapping.maximum_concurrency,
                        },
                    });
                }
                continue;
            };
            if found.len() > 1 {
                let others: Vec<&str> = found
                    .iter()
                    .filter(|m| m.uuid != kept.uuid)
                    .map(|m| m.uuid.as_str())
                    .collect();
                self.drift(
                    DriftField::Mapping,
                    &subject,
                    format!(
                        "duplicates of {}: {} (left alone; delete them by hand)",
                        kept.uuid,
                        others.join(", ")
                    ),
                );
                self.mapping_problems
                    .push(format!("{subject}: {} duplicates", others.len()));
            }
            let Some(settings) = mapping_changes(mapping, kept) else {
                self.wait(
                    reason::MAPPING_TRANSITIONING,
                    format!(
                        "mapping {} {}",
                        kept.uuid,
                        kept.state.as_deref().unwrap_or("")
                    ),
                    requeue::MAPPING_SECONDS,
                );
                continue;
            };
            if settings == MappingSettings::default() {
                continue;
            }
            self.drift(
                DriftField::Mapping,
                &subject,
                describe_mapping_change(&settings),
            );
            self.mapping_problems
                .push(format!("{subject}: {}", describe_mapping_change(&settings)));
            if stack_settled {
                self.act(Action::UpdateMapping {
                    function: function.name.clone(),
                    queue: mapping.queue.clone(),
                    uuid: kept.uuid.clone(),
                    settings,
                });
            }
        }
    }

    fn finish(mut self, validation_passed: bool) -> Plan {
        self.push_domain_conditions();
        if let Some(stall) = &self.plan.stalled {
            // Nothing at all is changed on the strength of a spec that cannot be honoured.
            self.plan.actions.clear();
            if stall.reason == reason::ARTIFACT_MISMATCH {
                set_condition(
                    &mut self.plan.conditions,
                    CODE_IN_SYNC,
                    ConditionStatus::False,
                    reason::ARTIFACT_MISMATCH,
                    &stall.message,
                );
            }
        } else if !self.rollbacks_in_effect.is_empty()
            && self.plan.actions.is_empty()
            && self.plan.waits.is_empty()
        {
            // The stage serves an older build than the spec's: a human decides what next.
            let message = format!(
                "{}; deploy a new build, or set alias.rollbackOnValidationFailure: false to try this one again",
                self.rollbacks_in_effect.join("; ")
            );
            self.stall(reason::ROLLED_BACK, message);
        } else if !validation_passed && self.plan.actions.is_empty() && self.plan.waits.is_empty() {
            // Failed validation stalls only a deployed stage: mid-deploy failures are expected.
            let message = self
                .plan
                .condition(VALIDATED)
                .map(|c| c.message.clone())
                .unwrap_or_default();
            self.stall(reason::VALIDATION_FAILED, message);
        }
        // An artifact being hashed may turn out not to match its pin: nothing else is changed
        // (tags, configuration, mappings) until every hash is known and checked.
        if self
            .plan
            .actions
            .iter()
            .any(|a| matches!(a, Action::HashArtifact { .. }))
        {
            self.plan
                .actions
                .retain(|a| matches!(a, Action::HashArtifact { .. }));
        }
        if !self.context.gate.may_act() {
            self.plan.actions.clear();
            self.plan.waits.clear();
        }
        self.plan
    }

    fn push_domain_conditions(&mut self) {
        let summaries = &self.plan.functions;
        let managed: Vec<&FunctionSummary> = summaries
            .iter()
            .filter(|f| f.desired_code_sha256.is_some())
            .collect();
        let code = if self.code_hash_pending {
            (
                ConditionStatus::Unknown,
                reason::ARTIFACT_HASH_PENDING,
                "an artifact without an S3 checksum is being hashed".to_owned(),
            )
        } else if managed.is_empty() {
            (
                ConditionStatus::True,
                reason::NO_CODE_DECLARED,
                "no function declares code".to_owned(),
            )
        } else {
            let differing: Vec<&str> = managed
                .iter()
                .filter(|f| !f.code_in_sync)
                .map(|f| f.name.as_str())
                .collect();
            if differing.is_empty() {
                (
                    ConditionStatus::True,
                    reason::CODE_MATCHES,
                    format!(
                        "{}/{} functions run the desired code",
                        managed.len(),
                        managed.len()
                    ),
                )
            } else {
                (
                    ConditionStatus::False,
                    reason::CODE_DRIFT,
                    format!(
                        "{}/{} functions differ from the desired code: {}",
                        differing.len(),
                        managed.len(),
                        differing.join(", ")
                    ),
                )
            }
        };
        let layers =
            if self.spec.layers.is_empty() && self.observed.previous.declared_layers.is_empty() {
                (
                    ConditionStatus::True,
                    reason::NO_LAYERS_DECLARED,
                    String::new(),
                )
            } else if self.layers_drifted.is_empty() {
                (
                    ConditionStatus::True,
                    reason::LAYERS_ATTACHED,
                    "declared layers attached to every function".to_owned(),
                )
            } else {
                (
                    ConditionStatus::False,
                    reason::LAYERS_DRIFTED,
                    format!("layers differ on {}", self.layers_drifted.join(", ")),
                )
            };
        let mut mapping_problems = self.mapping_problems.clone();
        mapping_problems.extend(self.plan.validation.unhealthy_mappings.iter().cloned());
        mapping_problems.sort();
        mapping_problems.dedup();
        let mappings = if self.spec.event_source_mappings.is_empty() {
            (
                ConditionStatus::True,
                reason::NO_MAPPINGS_DECLARED,
                String::new(),
            )
        } else if mapping_problems.is_empty() {
            (
                ConditionStatus::True,
                reason::MAPPINGS_HEALTHY,
                format!(
                    "{} mappings present and as declared",
                    self.spec.event_source_mappings.len()
                ),
            )
        } else {
            (
                ConditionStatus::False,
                reason::MAPPINGS_DRIFTED,
                mapping_problems.join("; "),
            )
        };
        // Validated was pushed by `validate`; keep the documented order.
        let validated = self.plan.conditions.drain(..).collect::<Vec<_>>();
        for (type_, (status, reason, message)) in [
            (CODE_IN_SYNC, code),
            (LAYERS_ATTACHED, layers),
            (MAPPINGS_HEALTHY, mappings),
        ] {
            self.plan.conditions.push(DesiredCondition {
                type_,
                status,
                reason: reason.to_owned(),
                message,
            });
        }
        self.plan.conditions.extend(validated);
    }
}

fn condition(type_: &'static str, ok: bool, reason: &str, message: String) -> DesiredCondition {
    DesiredCondition {
        type_,
        status: ConditionStatus::from(ok),
        reason: reason.to_owned(),
        message,
    }
}

fn set_condition(
    conditions: &mut [DesiredCondition],
    type_: &str,
    status: ConditionStatus,
    reason: &str,
    message: &str,
) {
    if let Some(existing) = conditions.iter_mut().find(|c| c.type_ == type_) {
        existing.status = status;
        reason.clone_into(&mut existing.reason);
        message.clone_into(&mut existing.message);
    }
}

// ---------------------------------------------------------------------------------------------
// Predicates: each compares one desired thing with one observed thing, and nothing else.
// ---------------------------------------------------------------------------------------------

/// The deployed zip's `CodeSha256` (base64) is not the desired hash. A missing or unreadable
/// deployed hash counts as drift: deploying the known artifact is always safe.
pub fn code_drifted(deployed_code_sha256: Option<&str>, desired: Sha256Digest) -> bool {
    deployed_code_sha256.and_then(Sha256Digest::parse) != Some(desired)
}

/// The deployed image digest is not the one in the spec's `uri@sha256:...`.
pub fn image_drifted(deployed_digest: Option<&str>, desired_digest: &str) -> bool {
    !deployed_digest.is_some_and(|d| d.eq_ignore_ascii_case(desired_digest))
}

/// A pinned hash (hex or base64) denotes different bytes than the artifact's checksum.
pub fn pin_mismatched(pin: Sha256Digest, artifact_sha256: Sha256Digest) -> bool {
    pin != artifact_sha256
}

/// The attached layers are not the desired list (order matters: Lambda applies them in order).
pub fn layers_drifted(deployed: &[String], desired: &[String]) -> bool {
    deployed != desired
}

/// The declared environment keys whose deployed value differs (or that are missing). Keys the
/// spec does not declare are none of Stagehand's business.
pub fn environment_drifted(
    deployed: &BTreeMap<String, String>,
    declared: &BTreeMap<String, String>,
) -> Vec<String> {
    declared
        .iter()
        .filter(|(key, value)| deployed.get(*key) != Some(*value))
        .map(|(key, _)| key.clone())
        .collect()
}

/// A queue's backlog is over its limits.
pub fn backlog_exceeded(
    visible: i64,
    in_flight: i64,
    max_visible: i64,
    max_in_flight: i64,
) -> bool {
    visible > max_visible || in_flight > max_in_flight
}

/// The settings of `existing` that differ from the spec (all `None`: nothing to change);
/// `None` when the mapping is between states and must not be touched yet.
pub fn mapping_changes(
    declared: &MappingSpec,
    existing: &EventSourceMapping,
) -> Option<MappingSettings> {
    let enabled = existing.enabled()?;
    Some(MappingSettings {
        batch_size: differing(Some(&declared.batch_size), existing.batch_size.as_ref()),
        batching_window_seconds: differing(
            declared.maximum_batching_window_seconds.as_ref(),
            existing.batching_window_seconds.as_ref(),
        ),
        enabled: (enabled != declared.enabled).then_some(declared.enabled),
        max_concurrency: differing(
            declared.maximum_concurrency.as_ref(),
            existing.max_concurrency.as_ref(),
        ),
    })
}

/// The mapping to keep among those found for one (function, queue): the UUID status recorded
/// when it is still there, else the lowest UUID (the adapter's choice too), so the answer is
/// stable across reconciles and restarts. Never `None` when any exists.
pub fn keep_mapping<'m>(
    found: &'m [EventSourceMapping],
    recorded_uuid: Option<&str>,
) -> Option<&'m EventSourceMapping> {
    recorded_uuid
        .and_then(|uuid| found.iter().find(|m| m.uuid == uuid))
        .or_else(|| found.iter().min_by(|a, b| a.uuid.cmp(&b.uuid)))
}

/// The rollback in effect for a function whose code is `code_sha256`: a version of that code
/// the alias was rolled back from (`status.versions[].rolledBack`), with where it went.
pub fn rolled_back_build<'v>(
    versions: &'v [StatusVersion],
    function: &str,
    code_sha256: &str,
) -> Option<(&'v StatusVersion, &'v VersionRollback)> {
    versions
        .iter()
        .filter(|v| v.function_name == function && v.code_sha256 == code_sha256)
        .find_map(|v| v.rolled_back.as_ref().map(|r| (v, r)))
}

/// Where `alias.rollbackOnValidationFailure` sends the alias when validation fails, if
/// anywhere: while a canary of `newest` runs, its stable (primary) version; while the alias
/// sends all traffic to `newest`, the newest validated version older than it whose code
/// differs. `None` while the alias is elsewhere (mid-deploy, or already rolled back): only the
/// newest build is ever rolled back, so rollbacks never cascade.
pub fn rollback_target(
    current: &Alias,
    newest: &str,
    newest_code_sha256: &str,
    function: &str,
    versions: &[StatusVersion],
) -> Option<String> {
    if current.function_version != newest {
        let canary_of_newest =
            current.routing_weights.len() == 1 && current.routing_weights.contains_key(newest);
        return canary_of_newest.then(|| current.function_version.clone());
    }
    if !current.routing_weights.is_empty() {
        return None;
    }
    let newest_number = newest.parse::<u64>().ok()?;
    versions
        .iter()
        .filter(|v| {
            v.function_name == function && v.validated && v.code_sha256 != newest_code_sha256
        })
        .filter_map(|v| v.version.parse::<u64>().ok().map(|n| (n, v)))
        .filter(|(n, _)| *n < newest_number)
        .max_by_key(|(n, _)| *n)
        .map(|(_, v)| v.version.clone())
}

/// How soon to look at a running canary again: after `promoteAfter` when that is shorter
/// than [`requeue::CANARY_SECONDS`] (a 3s canary is not left running for 30s), never sooner
/// than a second.
pub fn canary_requeue_seconds(promote_after: &str) -> u64 {
    parse_go_duration(promote_after).map_or(requeue::CANARY_SECONDS, |d| {
        d.as_secs().clamp(1, requeue::CANARY_SECONDS)
    })
}

/// Whether the alias routes exactly as `routing` says.
pub fn alias_routes(alias: &Alias, routing: &AliasRouting) -> bool {
    if alias.function_version != routing.function_version {
        return false;
    }
    match &routing.canary {
        None => alias.routing_weights.is_empty(),
        Some(canary) => {
            alias.routing_weights.len() == 1
                && alias
                    .routing_weights
                    .get(&canary.version)
                    .is_some_and(|w| (w - f64::from(canary.weight_percent) / 100.0).abs() < 0.005)
        }
    }
}

/// Where a stack is in its lifecycle, as far as the plan cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StackPhase {
    /// `REVIEW_IN_PROGRESS`: a Create change set exists (or must), nothing was executed yet.
    AwaitingCreateChangeSet,
    /// Any other `*_IN_PROGRESS`: wait.
    InProgress,
    /// A failed creation was rolled back; the stack can only be deleted.
    RollbackComplete,
    /// An update failed and so did its rollback: a human must continue the rollback.
    UpdateRollbackFailed,
    /// Another `*_FAILED` state.
    Failed,
    /// `*_COMPLETE`: updatable.
    Stable,
}

/// The phase of a stack status.
pub fn stack_phase(status: &str) -> StackPhase {
    match status {
        "REVIEW_IN_PROGRESS" => StackPhase::AwaitingCreateChangeSet,
        "ROLLBACK_COMPLETE" => StackPhase::RollbackComplete,
        "UPDATE_ROLLBACK_FAILED" => StackPhase::UpdateRollbackFailed,
        s if s.ends_with("_IN_PROGRESS") => StackPhase::InProgress,
        s if s.ends_with("_FAILED") => StackPhase::Failed,
        _ => StackPhase::Stable,
    }
}

/// Where the desired change set is.
#[derive(Clone, Debug, PartialEq, Eq)]
enum ChangeSetPhase {
    /// Nothing to change: success.
    Empty,
    /// CloudFormation is computing it.
    Computing,
    /// Computed and executable.
    Ready,
    /// Being executed (the stack status says so too).
    Executing,
    /// Obsolete or failed to execute: create it again.
    Replace,
    /// Creation failed for a reason other than "no changes".
    Failed(String),
}

fn change_set_phase(change_set: &ChangeSetInfo) -> ChangeSetPhase {
    if change_set.is_empty() {
        return ChangeSetPhase::Empty;
    }
    if change_set.pending() {
        return ChangeSetPhase::Computing;
    }
    if change_set.status == "FAILED" {
        return ChangeSetPhase::Failed(
            change_set
                .status_reason
                .clone()
                .unwrap_or_else(|| "no reason given".to_owned()),
        );
    }
    match change_set.execution_status.as_deref() {
        Some("AVAILABLE") => ChangeSetPhase::Ready,
        Some("OBSOLETE" | "EXECUTE_FAILED") => ChangeSetPhase::Replace,
        _ => ChangeSetPhase::Executing,
    }
}

// ---------------------------------------------------------------------------------------------
// Desired state.
// ---------------------------------------------------------------------------------------------

/// The desired code of a code source, or why nothing may be deployed.
fn desired_code_of(
    source: &CodeSource,
    artifacts: &[ObservedArtifact],
) -> Result<DesiredCode, Stall> {
    if let Some(uri) = &source.image {
        let digest = lambda::image_digest(uri).unwrap_or_default().to_owned();
        return Ok(DesiredCode::Image {
            uri: uri.clone(),
            digest,
        });
    }
    let Some(s3) = &source.s3 else {
        return Ok(DesiredCode::Unmanaged);
    };
    let location = format!("s3://{}/{}", s3.bucket, s3.key);
    let pin = match source.sha256.as_deref() {
        None => None,
        Some(text) => Some(Sha256Digest::parse(text).ok_or_else(|| Stall {
            reason: reason::INVALID_PIN,
            message: format!(
                "code.sha256 {text:?} for {location} is neither 64 hex nor 44 base64 characters"
            ),
        })?),
    };
    let head = artifacts
        .iter()
        .find(|a| a.source == *s3)
        .and_then(|a| a.head.as_ref().map(|head| (a, head)));
    let Some((artifact, head)) = head else {
        return Err(Stall {
            reason: reason::ARTIFACT_NOT_FOUND,
            message: format!("artifact {location} does not exist"),
        });
    };
    // Deploy exactly the object version whose hash was checked, not whatever is current when
    // Lambda fetches it.
    let version_id = s3.version_id.clone().or_else(|| head.version_id.clone());
    let Some(artifact_sha256) = artifact.sha256() else {
        return Ok(DesiredCode::NeedsHash {
            artifact: S3ObjectRef {
                version_id,
                ..s3.clone()
            },
            e_tag: head.e_tag.clone(),
        });
    };
    if let Some(pin) = pin
        && pin_mismatched(pin, artifact_sha256)
    {
        return Err(Stall {
            reason: reason::ARTIFACT_MISMATCH,
            message: format!(
                "artifact {location} has sha256 {artifact_sha256} but code.sha256 pins {pin}: nothing deployed (upload the pinned build or change the pin)"
            ),
        });
    }
    Ok(DesiredCode::Zip {
        source: CodeLocation::S3 {
            bucket: s3.bucket.clone(),
            key: s3.key.clone(),
            version_id,
        },
        sha256: artifact_sha256,
    })
}

/// The `spec.functions` entry that declares `function`, if any.
fn spec_entry<'s>(
    spec: &'s LambdaStageSpec,
    function: &ObservedFunction,
) -> Option<&'s FunctionSpec> {
    let declared_as = function.declared_as.as_ref()?;
    spec.functions.iter().find(|entry| match declared_as {
        DeclaredAs::Name(name) => entry.name.as_ref() == Some(name),
        DeclaredAs::FromStack(id) => entry.from_stack.as_ref() == Some(id),
    })
}

/// The stage's environment with the function's own declarations over it.
fn declared_environment(
    spec: &LambdaStageSpec,
    entry: Option<&FunctionSpec>,
) -> BTreeMap<String, String> {
    let mut declared = spec.environment.clone();
    if let Some(entry) = entry {
        declared.extend(
            entry
                .environment
                .iter()
                .map(|(k, v)| (k.clone(), v.clone())),
        );
    }
    declared
}

/// The layers a function should have: the deployed list without layers the spec dropped, with
/// each declared layer version in place of an older version of it (or appended). Layers the spec
/// never declared keep their place.
pub fn desired_layers(deployed: &[String], attach: &[String], detach: &[String]) -> Vec<String> {
    let mut layers: Vec<String> = deployed
        .iter()
        .filter(|arn| {
            !detach
                .iter()
                .any(|dropped| same_layer(lambda::layer_arn_without_version(arn), dropped))
        })
        .cloned()
        .collect();
    for arn in attach {
        layers = lambda::with_layer(&layers, arn);
    }
    layers
}

/// Whether a layer ARN without version is `layer` (given as such an ARN or as a bare name).
fn same_layer(layer_arn: &str, layer: &str) -> bool {
    layer_arn == layer
        || layer_arn
            .rsplit_once(":layer:")
            .is_some_and(|(_, name)| name == layer)
}

/// The function a mapping names: a Lambda name, a `spec.functions` name or a `fromStack` id.
fn resolve_mapping_function<'o>(
    functions: &'o [ObservedFunction],
    reference: &str,
) -> Option<&'o ObservedFunction> {
    functions
        .iter()
        .filter(|f| f.deployed.is_some())
        .find(|f| {
            f.name == reference
                || matches!(&f.declared_as, Some(DeclaredAs::FromStack(id) | DeclaredAs::Name(id)) if id == reference)
        })
}

/// The newest published version whose code is `code_sha256`.
fn newest_version_with_code<'v>(
    versions: &'v [PublishedVersion],
    code_sha256: &str,
) -> Option<&'v str> {
    versions
        .iter()
        .filter(|v| v.code_sha256.as_deref() == Some(code_sha256))
        .filter_map(|v| {
            v.version
                .parse::<u64>()
                .ok()
                .map(|n| (n, v.version.as_str()))
        })
        .max_by_key(|(n, _)| *n)
        .map(|(_, version)| version)
}

/// `Some(declared)` when declared and different from deployed.
fn differing<T: Clone + PartialEq>(declared: Option<&T>, deployed: Option<&T>) -> Option<T> {
    declared.filter(|d| Some(*d) != deployed).cloned()
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

fn describe_mapping_change(settings: &MappingSettings) -> String {
    let mut parts = Vec::new();
    if let Some(enabled) = settings.enabled {
        parts.push(if enabled {
            "enable".to_owned()
        } else {
            "disable".to_owned()
        });
    }
    if let Some(size) = settings.batch_size {
        parts.push(format!("batch size {size}"));
    }
    if let Some(window) = settings.batching_window_seconds {
        parts.push(format!("batching window {window}s"));
    }
    if let Some(concurrency) = settings.max_concurrency {
        parts.push(format!("max concurrency {concurrency}"));
    }
    parts.join(", ")
}

/// `name:version` of each layer ARN, for messages.
fn layer_names(layers: &[String]) -> String {
    let names: Vec<&str> = layers
        .iter()
        .map(|arn| {
            arn.rsplit_once(":layer:")
                .map_or(arn.as_str(), |(_, rest)| rest)
        })
        .collect();
    format!("[{}]", names.join(", "))
}

fn validation_message(
    status: &ValidationStatus,
    validation: &stagehand_crds::lambda_stage::ValidationSpec,
    queues_found: &BTreeSet<String>,
) -> String {
    let mut problems = Vec::new();
    if !status.missing_environment.is_empty() {
        problems.push(format!(
            "missing environment: {}",
            status.missing_environment.join(", ")
        ));
    }
    if !status.unhealthy_mappings.is_empty() {
        problems.push(format!(
            "mappings: {}",
            status.unhealthy_mappings.join(", ")
        ));
    }
    for (backlog, check) in status.queues.iter().zip(&validation.queues) {
        if !backlog.ok && !queues_found.contains(&backlog.queue) {
            problems.push(format!("queue {}: not found", backlog.queue));
        } else if !backlog.ok {
            problems.push(format!(
                "queue {}: {} visible (max {}), {} in flight (max {})",
                backlog.queue,
                backlog.visible,
                check.max_visible,
                backlog.in_flight,
                check.max_in_flight
            ));
        }
    }
    for http in status.http.iter().filter(|h| !h.ok) {
        problems.push(format!(
            "http {}: {}",
            http.name,
            http.error.as_deref().unwrap_or("failed")
        ));
    }
    if problems.is_empty() {
        "all checks passed".to_owned()
    } else {
        problems.join("; ")
    }
}
