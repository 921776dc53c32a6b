//! Every reason Stagehand changes a LambdaStage in AWS, and in which order.
//!
//! `plan(spec, context, observed)` is pure: no I/O, no clock, no randomness. It compares the
//! spec with [`Observed`] through small named predicates, each comparing one desired thing with
//! one observed thing and nothing else, and returns the ordered [`Action`]s, the [`Drift`] it
//! found, what to wait for, and the domain conditions. The predicates live with their concern:
//! `ownership.rs`, `stack.rs`, `function.rs` (code, configuration, layers), `alias.rs`
//! (versions, canary, rollback), `mappings.rs`, `validation.rs`; `conditions.rs` sums them up.
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

use std::collections::BTreeSet;

use stagehand_crds::LambdaStageSpec;
use stagehand_crds::condition::{CODE_IN_SYNC, VALIDATED};
use stagehand_crds::lambda_stage::ValidationStatus;

use self::conditions::set_condition;
use super::observed::Observed;
use crate::base::conditions::{ConditionStatus, DesiredCondition, ReconcileOutcome};
use crate::base::gates::ActGate;
pub use crate::base::plan::{Stall, Wait};
use crate::base::plan::{outcome, requeue_after_seconds};

mod action;
mod alias;
mod conditions;
mod function;
mod mappings;
mod ownership;
pub mod reason;
mod stack;
mod validation;

pub use self::action::{Action, ActionFacts, Written};
pub use self::alias::{
    AliasRouting, CanaryRoute, alias_routes, canary_requeue_seconds, rollback_target,
    rolled_back_build,
};
pub use self::function::{
    MAX_LAYERS, code_drifted, desired_layers, environment_drifted, image_drifted, layers_drifted,
    pin_mismatched,
};
pub use self::mappings::{keep_mapping, mapping_changes};
pub use self::stack::{StackPhase, stack_phase};
pub use self::validation::backlog_exceeded;

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
        requeue_after_seconds(&self.waits)
    }

    /// The condition of `type_` in this plan.
    pub fn condition(&self, type_: &str) -> Option<&DesiredCondition> {
        self.conditions.iter().find(|c| c.type_ == type_)
    }

    /// What the kstatus conditions say about this plan, before any action ran.
    pub fn outcome(&self) -> ReconcileOutcome {
        outcome(
            self.gate,
            self.stalled.as_ref(),
            self.drift.iter().map(|d| d.field.as_str()),
            &self.actions,
            &self.waits,
            || format!("{} functions in sync", self.functions.len()),
        )
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

/// One plan in the making: its inputs, the plan so far, and what one concern finds for
/// another (the domain conditions sum up what the others found).
struct Planner<'a> {
    spec: &'a LambdaStageSpec,
    context: &'a PlanContext,
    observed: &'a Observed,
    plan: Plan,
    /// Artifacts (bucket, key, version) already to be hashed: functions sharing one wait for
    /// one hash.
    artifacts_to_hash: BTreeSet<(String, String, Option<String>)>,
    /// Functions whose layers differ from the declared ones.
    layers_drifted: Vec<String>,
    /// Some artifact's hash is not known yet.
    code_hash_pending: bool,
    /// What planning found wrong with declared mappings.
    mapping_problems: Vec<String>,
    /// Functions whose alias stays on a good version after a rollback, described.
    rollbacks_in_effect: Vec<String>,
}

impl Planner<'_> {
    /// Why nothing can be done until a human or a spec change intervenes.
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

    /// The plan as it stands after every concern had its say: a stall, a rollback in effect or
    /// a failed validation of a deployed stage stops it; an artifact being hashed, or a gate that
    /// does not let Stagehand act, leaves no other action.
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
}

#[cfg(test)]
mod tests;
