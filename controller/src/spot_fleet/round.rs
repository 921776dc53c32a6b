//! One SpotFleet round — observe → plan → act → next status — written once. The reconciler and
//! the tests run exactly this; what differs between them is only where the status goes and
//! when the next round comes.

use jiff::Timestamp;
use kube::Resource;
use stagehand_crds::{SpotFleet, SpotFleetStatus};

use super::act::{ActReport, Actor};
use super::error::SpotFleetError;
use super::observe::{Observer, adoption_name, observe};
use super::observed::{Observed, TcpCheck};
use super::plan::{Action, Plan, PlanContext, plan};
use super::spec_hash::{SPEC_HASH_VERSION, desired};
use super::status::{StatusInputs, next_status};
use crate::base::{ActGate, ReconcileOutcome};
use crate::inventory::{Inventory, Listings};
use crate::probe::TcpProber;
use crate::runtime::round::{owner_of, refresh_for_round, spec_changed};

/// How one round is run.
#[derive(Clone, Copy, Debug)]
pub struct RoundOptions<'a> {
    /// `stagehand.dev/cluster` value of this controller.
    pub cluster_id: &'a str,
    pub gate: ActGate,
    /// A `stagehand.dev/refresh` value not acted on yet: list EC2 afresh, as for a spec change.
    pub refresh: bool,
    /// Dials `healthCheck.tcpPort` (shared: its record of dials covers every fleet).
    pub prober: &'a TcpProber,
    /// When the round runs: the reconciler passes the clock; tests move it past a grace period
    /// instead of waiting for it.
    pub now: Timestamp,
    /// Plan without acting (`stagehand plan`): the plan keeps the actions the gate allows,
    /// none is run.
    pub dry_run: bool,
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
/// action. Fails only when the spec cannot be acted on (user data too large), EC2 could not be
/// read, or the TCP health check may not dial the instances (loopback-only); a failed action is
/// in the round's report.
pub async fn round(
    inventory: &Inventory,
    fleet: &SpotFleet,
    status: Option<&SpotFleetStatus>,
    options: RoundOptions<'_>,
    on_start: impl FnMut(&Action),
) -> Result<Round, SpotFleetError> {
    let spec = &fleet.spec;
    let desired = desired(spec)?;
    let name = adoption_name(fleet);
    // A spec change is acted on with a fresh view of EC2, not a listing up to the max age old;
    // and `adopt` may just have been set, so unowned instances are looked for again.
    if refresh_for_round(
        inventory,
        &spec.region,
        &[Listings::Ec2],
        options.refresh,
        spec_changed(fleet, status),
    ) {
        inventory.ec2(&spec.region).look_for_unowned(&name);
    }
    let owner = owner_of(fleet);
    let observer = Observer {
        inventory,
        prober: options.prober,
        status,
        generation: fleet.meta().generation,
        name: &name,
    };
    let observed = observe(observer, spec, &owner, options.now)
        .await
        .map_err(|source| SpotFleetError::Observe { source })?;
    let undialled = undialled(&observed);
    if !undialled.is_empty() {
        return Err(SpotFleetError::ProbeNotAllowed { targets: undialled });
    }
    let context = PlanContext {
        owner: owner.clone(),
        cluster_id: options.cluster_id.to_owned(),
        generation: fleet.meta().generation.unwrap_or_default(),
        gate: options.gate,
        desired_hash: desired.hash.clone(),
        hash_version: SPEC_HASH_VERSION.to_owned(),
    };
    let plan = plan(spec, &context, &observed);
    let report = if options.gate.may_act() && !options.dry_run && !plan.actions.is_empty() {
        Actor {
            inventory,
            spec,
            desired: &desired,
            owner: &owner,
            cluster_id: options.cluster_id,
            now: options.now,
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
        now: options.now,
    });
    Ok(Round {
        observed,
        plan,
        report,
        outcome,
        status,
    })
}

/// Instances the TCP check may not dial (outside loopback while the controller runs
/// loopback-only), with their addresses. They cannot be judged: the round plans nothing on
/// their account and reports the fleet stalled. Replacing them instead would only launch more
/// instances that cannot be dialled either.
fn undialled(observed: &Observed) -> Vec<String> {
    observed
        .instances
        .iter()
        .filter(|i| i.tcp == TcpCheck::NotAllowed)
        .map(|i| format!("{} at {}", i.id, i.private_ip.as_deref().unwrap_or("?")))
        .collect()
}
