//! Every reason Stagehand launches, terminates or re-tags a SpotFleet's instances, and in which
//! order.
//!
//! `plan(spec, context, observed)` is pure: no I/O, no clock, no randomness. It judges every
//! instance of the fleet through small named predicates (`replacement.rs`: each compares one
//! desired thing with one observed thing), then lets the strategy decide what to launch and
//! what to terminate this round (`surge.rs`, `recreate.rs`; which instances go first on a
//! scale-down is `capacity.rs`'s), and sums up `CapacityReady` (`conditions.rs`).
//!
//! Rules that shape every plan:
//! - Instances are never patched. Out of date means replaced: launch a new one, terminate the
//!   old one, in the order the strategy says.
//! - A stall stops everything: an instance owned by another object, or an untagged one without
//!   `adopt` — the plan then has no actions at all.
//! - Only live instances (pending, running, stopping, stopped) count against `capacity` and
//!   `capacity + maxSurge`: a shutting-down instance is already going.
//! - The gate (`ObserveOnly`, paused) removes every action and wait; drift is still reported.
//! - Launch template versions no live instance uses are deleted last (`prune.rs`).

use std::collections::BTreeMap;

use stagehand_crds::SpotFleetSpec;
use stagehand_crds::spot_fleet::ReplacementStrategy;

use super::observed::{InstanceState, Observed, ObservedInstance, Offering};
use super::spec_hash::spec_hash_tags;
use crate::aws::ec2::SPEC_REFUSAL_RECHECK;
use crate::base::conditions::{DesiredCondition, ReconcileOutcome};
use crate::base::gates::ActGate;
pub use crate::base::plan::{Stall, Wait};
use crate::base::plan::{outcome, requeue_after_seconds};

mod action;
mod capacity;
mod conditions;
mod ownership;
mod prune;
pub mod reason;
mod recreate;
mod replacement;
mod surge;

pub use self::action::{Action, ActionFacts, LaunchReason, TerminateReason, Written};
pub use self::capacity::removal_order;
pub use self::prune::unused_versions;
pub use self::replacement::{
    HandEdit, Judge, ReplacementReason, are_security_groups_edited, hand_edit, is_gone, is_healthy,
    is_image_edited, is_instance_profile_edited, is_instance_type_edited, is_spec_hash_drifted,
    is_stopped, is_subnet_edited, is_unhealthy_past_grace, needs_restamp, replacement_reason,
};

/// How long to wait before looking again, per thing being waited for.
pub mod requeue {
    /// A new instance proving health (EC2 status checks take a minute or two).
    pub const HEALTH_SECONDS: u64 = 15;
    /// Terminated instances leaving `shutting-down` (typically under a minute).
    pub const TERMINATION_SECONDS: u64 = 10;
    /// Capacity still short after a launch (EC2 may find spot capacity a little later).
    pub const CAPACITY_SECONDS: u64 = 30;
}

/// Who is planning, for what, and whether acting is allowed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanContext {
    /// `stagehand.dev/owner` value of this object (`<namespace>/SpotFleet/<name>`).
    pub owner: String,
    /// `stagehand.dev/cluster` value of this controller.
    pub cluster_id: String,
    /// `metadata.generation` the plan is for (conditions carry it).
    pub generation: i64,
    /// Act, ObserveOnly or Paused.
    pub gate: ActGate,
    /// The spec hash of the spec (over its rendered user data).
    pub desired_hash: String,
    /// The hash scheme's version (`SPEC_HASH_VERSION`).
    pub hash_version: String,
}

/// Where the fleet stands, as status shows it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Phase {
    /// Capacity instances, all in date and healthy.
    #[default]
    Stable,
    /// Launching to reach capacity.
    Launching,
    /// In-date instances still proving health.
    WaitingForHealth,
    /// Surge: replacing out-of-date instances.
    Replacing,
    /// Recreate: terminating every out-of-date instance.
    Terminating,
    /// Recreate: waiting until no terminated instance is listed as shutting down any more.
    WaitingForTermination,
    /// More in-date instances than capacity.
    ScalingDown,
}

impl Phase {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Stable => "Stable",
            Self::Launching => "Launching",
            Self::WaitingForHealth => "WaitingForHealth",
            Self::Replacing => "Replacing",
            Self::Terminating => "Terminating",
            Self::WaitingForTermination => "WaitingForTermination",
            Self::ScalingDown => "ScalingDown",
        }
    }
}

/// Something that differs between the spec and EC2.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Drift {
    pub field: DriftField,
    /// The instance concerned, or `fleet`.
    pub subject: String,
    /// For humans.
    pub detail: String,
}

/// What drifted: the `field` label of `stagehand_drift_detected_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum DriftField {
    Ownership,
    SpecHash,
    SpecHashVersion,
    HandEdit,
    State,
    Health,
    Interruption,
    Capacity,
}

impl DriftField {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Ownership => "ownership",
            Self::SpecHash => "spec_hash",
            Self::SpecHashVersion => "spec_hash_version",
            Self::HandEdit => "hand_edit",
            Self::State => "state",
            Self::Health => "health",
            Self::Interruption => "interruption",
            Self::Capacity => "capacity",
        }
    }

    fn of(reason: ReplacementReason) -> Self {
        match reason {
            ReplacementReason::InterruptionNotice | ReplacementReason::RebalanceRecommendation => {
                Self::Interruption
            }
            ReplacementReason::Stopped => Self::State,
            ReplacementReason::HandEdited(_) => Self::HandEdit,
            ReplacementReason::SpecHashDrifted => Self::SpecHash,
            ReplacementReason::UnhealthyPastGrace => Self::Health,
        }
    }
}

/// The plan's verdict on one live instance of the fleet, for status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceVerdict {
    pub id: String,
    pub healthy: bool,
    /// Why it is being replaced; `None` when in date.
    pub replacement: Option<ReplacementReason>,
}

/// The decision for one reconcile.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// What to do, in order. Empty when stalled, waiting on everything, or not allowed to act.
    pub actions: Vec<Action>,
    /// What differs between the spec and EC2 (reported in every mode).
    pub drift: Vec<Drift>,
    /// `CapacityReady`.
    pub conditions: Vec<DesiredCondition>,
    /// What EC2 is still doing.
    pub waits: Vec<Wait>,
    /// Set when a human or a spec change is needed.
    pub stalled: Option<Stall>,
    pub phase: Phase,
    /// Every live instance of the fleet, judged.
    pub instances: Vec<InstanceVerdict>,
    /// `spec.capacity`.
    pub desired_capacity: i32,
    /// Live, in-date, healthy instances.
    pub ready_capacity: i32,
    pub gate: ActGate,
}

impl Plan {
    /// How soon to look again while waiting on EC2; `None` when nothing is awaited.
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
            || {
                format!(
                    "{}/{} instances ready",
                    self.ready_capacity, self.desired_capacity
                )
            },
        )
    }
}

/// Decides what to do for one SpotFleet. Pure.
pub fn plan(spec: &SpotFleetSpec, context: &PlanContext, observed: &Observed) -> Plan {
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
            phase: Phase::Stable,
            instances: Vec::new(),
            desired_capacity: spec.capacity,
            ready_capacity: 0,
            gate: context.gate,
        },
        members: Vec::new(),
        gone: Vec::new(),
        judged: Vec::new(),
    };
    planner.check_ownership();
    planner.judge();
    planner.restamp();
    match spec.replacement.strategy {
        ReplacementStrategy::Surge => planner.plan_surge(),
        ReplacementStrategy::Recreate => planner.plan_recreate(),
    }
    planner.prune();
    planner.finish()
}

/// One live instance of the fleet, judged once for every concern.
#[derive(Clone, Copy, Debug)]
struct Judged<'a> {
    instance: &'a ObservedInstance,
    healthy: bool,
    reason: Option<ReplacementReason>,
}

/// One plan in the making: its inputs, the plan so far, and the fleet as judged.
struct Planner<'a> {
    spec: &'a SpotFleetSpec,
    context: &'a PlanContext,
    observed: &'a Observed,
    plan: Plan,
    /// Live instances of the fleet: ours, and those being adopted.
    members: Vec<&'a ObservedInstance>,
    /// The fleet's instances shutting down or terminated.
    gone: Vec<&'a ObservedInstance>,
    /// `members`, judged.
    judged: Vec<Judged<'a>>,
}

impl<'a> Planner<'a> {
    /// Why nothing can be done until a human or a spec change intervenes.
    fn stall(&mut self, reason: &'static str, message: String) {
        // The first stall is the one reported.
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

    /// `spec.capacity` as a count (the schema keeps it within 0..=1000).
    fn capacity(&self) -> usize {
        usize::try_from(self.spec.capacity).unwrap_or(0)
    }

    /// Every live instance of the fleet: healthy or not, and why it is replaced, if it is.
    fn judge(&mut self) {
        let judge = Judge {
            spec: self.spec,
            desired_hash: &self.context.desired_hash,
            hash_version: &self.context.hash_version,
            interrupted: false,
            rebalance: false,
        };
        for instance in self.members.clone() {
            let judge = Judge {
                interrupted: self.observed.interruption_notices.contains(&instance.id),
                rebalance: self
                    .observed
                    .rebalance_recommendations
                    .contains(&instance.id),
                ..judge
            };
            let reason = replacement_reason(&judge, instance);
            if let Some(reason) = reason {
                self.drift(
                    DriftField::of(reason),
                    &instance.id,
                    format!("replaced: {}", reason.as_str()),
                );
            }
            self.judged.push(Judged {
                instance,
                healthy: is_healthy(&self.spec.health_check, instance),
                reason,
            });
        }
        let in_date = self.judged.iter().filter(|j| j.reason.is_none()).count();
        if in_date != self.capacity() {
            self.drift(
                DriftField::Capacity,
                "fleet",
                format!(
                    "{in_date} in-date instances, capacity {}",
                    self.spec.capacity
                ),
            );
        }
    }

    /// Instances tagged under another hash version and otherwise in date get the current tags.
    fn restamp(&mut self) {
        let version = self.context.hash_version.as_str();
        let ids: Vec<String> = self
            .judged
            .iter()
            .filter(|j| j.reason.is_none() && needs_restamp(j.instance, version))
            .map(|j| j.instance.id.clone())
            .collect();
        if ids.is_empty() {
            return;
        }
        for id in &ids {
            self.drift(
                DriftField::SpecHashVersion,
                id,
                format!("tagged under another spec hash version than {version}"),
            );
        }
        let tags = spec_hash_tags(&self.context.desired_hash);
        self.act(Action::Restamp { ids, tags });
    }

    /// Terminates these instances, one action per reason.
    fn terminate(&mut self, picked: Vec<(&'a ObservedInstance, TerminateReason)>) {
        let mut by_reason: BTreeMap<TerminateReason, Vec<String>> = BTreeMap::new();
        for (instance, reason) in picked {
            by_reason
                .entry(reason)
                .or_default()
                .push(instance.id.clone());
        }
        for (reason, ids) in by_reason {
            self.act(Action::Terminate { ids, reason });
        }
    }

    /// Launches `count` instances, avoiding the offerings found without capacity, unless a
    /// backoff after failed launches is running.
    fn launch(&mut self, count: usize, reason: LaunchReason) {
        if count == 0 {
            return;
        }
        if self.every_offering_unavailable() {
            self.wait(
                reason::WAITING_FOR_CAPACITY,
                format!("{count} launch(es): every instance type is out of spot capacity in every zone of the spec"),
                requeue::CAPACITY_SECONDS,
            );
            return;
        }
        if let Some(refusal) = self
            .observed
            .spec_refusal
            .as_ref()
            .filter(|r| r.spec_hash == self.context.desired_hash)
        {
            self.stall(
                reason::LAUNCH_SPEC_REFUSED,
                format!(
                    "EC2 refused spec.{}: {}: {} (fix the spec: it is launched at once when it \
                     changes, and tried again as it is every {} minutes)",
                    refusal.field,
                    refusal.code,
                    refusal.message,
                    SPEC_REFUSAL_RECHECK.as_secs() / 60
                ),
            );
            return;
        }
        if let Some(seconds) = self.observed.launch_backoff_seconds {
            self.wait(
                reason::LAUNCH_BACKOFF,
                format!("{count} launch(es) after recent failures"),
                seconds,
            );
            return;
        }
        let avoid = self
            .observed
            .unavailable_offerings
            .iter()
            .filter(|o| self.spec.instance_types.contains(&o.instance_type))
            .cloned()
            .collect();
        self.act(Action::Launch {
            count: u32::try_from(count).unwrap_or(u32::MAX),
            avoid,
            reason,
        });
    }

    /// Every instance type × zone of the spec was recently found without capacity. Unknown
    /// zones (a subnet observe did not place) count as available: only a certain failure is
    /// not tried.
    fn every_offering_unavailable(&self) -> bool {
        let unavailable = &self.observed.unavailable_offerings;
        !unavailable.is_empty()
            && self.spec.subnet_ids.iter().all(|subnet| {
                self.observed.subnet_zones.get(subnet).is_some_and(|zone| {
                    self.spec.instance_types.iter().all(|instance_type| {
                        unavailable.contains(&Offering {
                            instance_type: instance_type.clone(),
                            zone: zone.clone(),
                        })
                    })
                })
            })
    }

    /// The fleet's instances still shutting down.
    fn shutting_down(&self) -> Vec<&'a ObservedInstance> {
        self.gone
            .iter()
            .copied()
            .filter(|i| i.state == InstanceState::ShuttingDown)
            .collect()
    }

    /// The plan as it stands after every concern had its say: a stall, or a gate that does not
    /// let Stagehand act, leaves no action.
    fn finish(mut self) -> Plan {
        self.plan.instances = self
            .judged
            .iter()
            .map(|j| InstanceVerdict {
                id: j.instance.id.clone(),
                healthy: j.healthy,
                replacement: j.reason,
            })
            .collect();
        let ready = self
            .judged
            .iter()
            .filter(|j| j.healthy && j.reason.is_none())
            .count();
        self.plan.ready_capacity = i32::try_from(ready).unwrap_or(i32::MAX);
        self.push_capacity_condition();
        if self.plan.stalled.is_some() {
            // Nothing at all is changed on the strength of a fleet whose ownership is in doubt.
            self.plan.actions.clear();
            self.plan.waits.clear();
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
