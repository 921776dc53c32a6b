//! One SpotFleet round — observe → plan → act → next status — written once. The reconciler and
//! the tests run exactly this; what differs between them is only where the status goes and
//! when the next round comes.

use jiff::Timestamp;
use kube::Resource;
use stagehand_crds::{SpotFleet, SpotFleetStatus};

use super::act::{ActReport, Actor};
use super::error::SpotFleetError;
use super::observe::observe;
use super::observed::Observed;
use super::plan::{Action, Plan, PlanContext, plan};
use super::spec_hash::{SPEC_HASH_VERSION, desired};
use super::status::{StatusInputs, next_status};
use crate::base::{ActGate, ReconcileOutcome};
use crate::inventory::Inventory;
use crate::runtime::round::{owner_of, spec_changed};

/// How one round is run.
#[derive(Clone, Copy, Debug)]
pub struct RoundOptions<'a> {
    /// `stagehand.dev/cluster` value of this controller.
    pub cluster_id: &'a str,
    pub gate: ActGate,
    /// A `stagehand.dev/refresh` value not acted on yet: list EC2 afresh, as for a spec change.
    pub refresh: bool,
}

/// What one round saw, decided, did, and the status that follows.
#[derive(Debug)]
pub struct Round {
    pub observed: Observed,
    pub plan: Plan,
    pub report: ActReport,
    pub outcome: ReconcileOutcome,
    pub status: SpotFleetStatus,
}

/// Runs one round for `fleet`, whose status is `status`, calling `on_start` before each
/// action. Fails only when the spec cannot be acted on (user data too large, a TCP health
/// check, which this build does not run) or EC2 could not be read; a failed action is in the
/// round's report.
pub async fn round(
    inventory: &Inventory,
    fleet: &SpotFleet,
    status: Option<&SpotFleetStatus>,
    options: RoundOptions<'_>,
    on_start: impl FnMut(&Action),
) -> Result<Round, SpotFleetError> {
    let spec = &fleet.spec;
    if spec.health_check.tcp_port.is_some() {
        return Err(SpotFleetError::Unsupported("healthCheck.tcpPort"));
    }
    let desired = desired(spec)?;
    if options.refresh || spec_changed(fleet, status) {
        // A spec change is acted on with a fresh view of EC2, not a listing up to the max age
        // old.
        inventory.refresh(&spec.region);
    }
    let owner = owner_of(fleet);
    let observed = observe(inventory, spec, &owner, status, Timestamp::now())
        .await
        .map_err(|source| SpotFleetError::Observe { source })?;
    let context = PlanContext {
        owner: owner.clone(),
        cluster_id: options.cluster_id.to_owned(),
        generation: fleet.meta().generation.unwrap_or_default(),
        gate: options.gate,
        desired_hash: desired.hash.clone(),
        hash_version: SPEC_HASH_VERSION.to_owned(),
    };
    let plan = plan(spec, &context, &observed);
    let report = if options.gate.may_act() && !plan.actions.is_empty() {
        Actor {
            inventory,
            spec,
            desired: &desired,
            owner: &owner,
            cluster_id: options.cluster_id,
        }
        .execute_reporting(&plan.actions, on_start)
        .await
    } else {
        ActReport::default()
    };
    let outcome = match &report.failure {
        Some((_, error)) => ReconcileOutcome::from_error(error),
        None => plan.outcome(),
    };
    let status = next_status(&StatusInputs {
        previous: status,
        observed: &observed,
        plan: &plan,
        report: &report,
        outcome: &outcome,
        spec_hash: &desired.hash,
        generation: fleet.meta().generation,
        now: Timestamp::now(),
    });
    Ok(Round {
        observed,
        plan,
        report,
        outcome,
        status,
    })
}
