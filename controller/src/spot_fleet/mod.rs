//! `SpotFleet`: immutable spot instances launched from one spec.
//!
//! The reconcile has the shape every kind shares: observe → plan → act → report, run as one
//! [`round`](round::round).
//! - `cloud_init`: `files`, `services` and `userData` rendered into one deterministic document,
//!   checked against EC2's 16 KB limit;
//! - `spec_hash`: the versioned hash of what defines an instance, and `desired()` (render, then
//!   hash) — the one way to the hash the plan compares and a launch tags;
//! - `observe`: the fleet's instances from the shared EC2 inventory, status checks and the TCP
//!   port (through the runtime's [`crate::probe::TcpProber`]) while they prove health, the
//!   grace period decided against the clock, unavailable offerings;
//! - `observed`: the plain data observe gathers, clock-dependent facts precomputed;
//! - `plan/`: `plan(spec, context, observed) -> Plan` with its tables and a multi-round
//!   simulator;
//! - `act`: one function per action (launch template version per spec hash, `CreateFleet`,
//!   terminate, tag, delete unused template versions), telling the inventory what it wrote;
//!   before a launch it looks up the spec's image and security groups (a missing one stalls);
//! - `status`: the status written after every round (pure);
//! - this module: the [`SpotFleetReconciler`] (gate, events, metrics, status write, requeue,
//!   verified teardown on deletion).
//!
//! `interruptionQueue` is polled by the AWS event feed (`crate::feed`), which records the
//! notices observe reads and asks for a reconcile at once.

mod act;
pub mod cloud_init;
mod error;
mod observe;
pub mod observed;
pub mod plan;
pub mod round;
pub mod spec_hash;
mod status;

pub use self::error::SpotFleetError;

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use kube::runtime::controller::Action as Requeue;
use kube::{Resource, ResourceExt};
use stagehand_crds::{DeletionPolicy, SpotFleet};

use self::plan::{Action, TerminateReason};
use self::round::{Round, RoundOptions, round};
use crate::aws::tags::{self, OWNER_TAG, Ownership};
use crate::base::{ActGate, may_act};
use crate::feed::EventQueue;
use crate::runtime::fleet_metrics::FleetSnapshot;
use crate::runtime::requeue::resync_action;
use crate::runtime::round::{
    RefreshTracker, RoundEnd, fail_early, owner_of, paused_status, requeue_after, write_status,
};
use crate::runtime::{Context, Reconciler, effective_deletion_policy};

/// The kind label of metrics.
const KIND: &str = "SpotFleet";

/// The SpotFleet reconciler. EC2 is read through the `Context`'s inventory, shared with every
/// other fleet of the region.
#[derive(Debug, Default)]
pub struct SpotFleetReconciler {
    refreshes: RefreshTracker,
}

impl SpotFleetReconciler {
    pub fn new() -> Self {
        Self::default()
    }
}

/// Metrics of one round: the drift found, the actions done, and the fleet's own (instances by
/// state, capacity, replacements by reason, launch errors by AWS code).
fn record_metrics(ctx: &Context, fleet: &SpotFleet, round: &Round) {
    for drift in &round.plan.drift {
        ctx.metrics.record_drift(KIND, drift.field.as_str());
    }
    for action in &round.report.done {
        ctx.metrics.record_action(KIND, action.facts().metric_label);
    }
    let label = fleet_label(fleet);
    let metrics = &ctx.metrics.fleet;
    metrics.set(
        &label,
        &FleetSnapshot {
            states: status::fleet_states(&round.observed, &round.plan),
            desired_capacity: i64::from(round.plan.desired_capacity),
            ready_capacity: i64::from(round.plan.ready_capacity),
        },
    );
    for action in &round.report.done {
        if let Action::Terminate {
            ids,
            reason: TerminateReason::Replaced(reason),
        } = action
        {
            metrics.record_replacements(&label, reason.as_str(), ids.len());
        }
    }
    for code in &round.report.launch_errors {
        metrics.record_launch_error(&label, code);
    }
}

/// The `fleet` label of the fleet metrics: `<namespace>/<name>`.
fn fleet_label(fleet: &SpotFleet) -> String {
    format!(
        "{}/{}",
        fleet.namespace().unwrap_or_default(),
        fleet.name_any()
    )
}

/// An Event and `stagehand_spot_interruptions_total{fleet}` for every interruption warning the
/// round saw for the first time (status counts them).
async fn report_interruptions(ctx: &Context, fleet: &SpotFleet, round: &Round) {
    let before = fleet.status.as_ref().map_or(0, |s| s.interruptions);
    let new = round.status.interruptions.saturating_sub(before);
    if new <= 0 {
        return;
    }
    let name = format!(
        "{}/{}",
        fleet.namespace().unwrap_or_default(),
        fleet.name_any()
    );
    ctx.metrics
        .spot_interruptions_total
        .with_label_values(&[name.as_str()])
        .inc_by(u64::try_from(new).unwrap_or(0));
    let ids: Vec<&str> = round
        .observed
        .interruption_notices
        .iter()
        .map(String::as_str)
        .collect();
    ctx.events()
        .action(
            fleet,
            "SpotInterruption",
            "Interrupt",
            &format!(
                "spot interruption warning for {}: replacing it before EC2 takes it",
                ids.join(", ")
            ),
        )
        .await;
}

impl Reconciler<SpotFleet> for SpotFleetReconciler {
    type Error = SpotFleetError;

    /// `interruptionQueue`, in the fleet's region: the event feed polls it while a fleet names
    /// it and records what it hears about the fleet's instances for observe.
    fn event_queues(&self, fleet: &SpotFleet) -> Vec<EventQueue> {
        fleet
            .spec
            .interruption_queue
            .iter()
            .map(|queue| EventQueue::new(&fleet.spec.region, queue))
            .collect()
    }

    async fn apply(
        &self,
        fleet: Arc<SpotFleet>,
        ctx: Arc<Context>,
    ) -> Result<Requeue, SpotFleetError> {
        let spec = &fleet.spec;
        let gate = may_act(fleet.annotations(), spec.lifecycle.management);
        if gate == ActGate::Paused {
            let status = paused_status(
                fleet.status.as_ref(),
                fleet.meta().generation,
                Timestamp::now(),
            );
            write_status(&ctx, fleet.as_ref(), &status).await?;
            return Ok(Requeue::await_change());
        }
        let options = RoundOptions {
            cluster_id: &ctx.settings.cluster_id,
            gate,
            refresh: self.refreshes.requested(fleet.as_ref()),
            prober: &ctx.prober,
            now: Timestamp::now(),
            dry_run: false,
        };
        let round = match round(
            &ctx.inventory,
            &fleet,
            fleet.status.as_ref(),
            options,
            |_| {},
        )
        .await
        {
            Ok(round) => round,
            Err(error) => {
                return Err(fail_early(&ctx, fleet.as_ref(), fleet.status.as_ref(), error).await);
            }
        };
        record_metrics(&ctx, &fleet, &round);
        report_interruptions(&ctx, &fleet, &round).await;
        for action in &round.report.done {
            let facts = action.facts();
            ctx.events()
                .action(
                    fleet.as_ref(),
                    facts.event_reason,
                    facts.event_verb,
                    &action.to_string(),
                )
                .await;
        }
        write_status(&ctx, fleet.as_ref(), &round.status).await?;

        if let Some((action, error)) = round.report.failure {
            ctx.events()
                .failure(fleet.as_ref(), action.facts().event_verb, &error)
                .await;
            return Err(error);
        }
        if let Some(stall) = &round.plan.stalled
            && gate.may_act()
        {
            let error = SpotFleetError::Stalled {
                reason: stall.reason,
                message: stall.message.clone(),
            };
            ctx.events()
                .failure(fleet.as_ref(), "Reconcile", &error)
                .await;
        }
        let end = RoundEnd {
            acted: !round.report.done.is_empty(),
            stalled: round.plan.stalled.is_some(),
            wait: round.plan.requeue_after_seconds().map(Duration::from_secs),
        };
        Ok(requeue_after(end, || {
            resync_action(
                &spec.lifecycle,
                ctx.settings.default_resync,
                &mut rand::rng(),
            )
        }))
    }

    /// With policy `Delete` (the default: the fleet launched its instances), every instance
    /// tagged for this fleet is terminated and the object keeps its finalizer (the cleanup
    /// fails with `TeardownPending`) until `DescribeInstances` lists none of them as live or
    /// shutting down; then the launch template goes. With `Retain`, or under `ObserveOnly`
    /// (which never writes to EC2), they are left running, and an Event says so.
    async fn cleanup(
        &self,
        fleet: Arc<SpotFleet>,
        ctx: Arc<Context>,
    ) -> Result<Requeue, SpotFleetError> {
        let spec = &fleet.spec;
        let gate = may_act(fleet.annotations(), spec.lifecycle.management);
        if gate == ActGate::Paused {
            return Err(SpotFleetError::Paused);
        }
        self.refreshes.forget(fleet.as_ref());
        let owner = owner_of(fleet.as_ref());
        let policy = effective_deletion_policy(spec.lifecycle.deletion_policy, true);
        // ObserveOnly never writes to EC2, deletion included: the instances stay, as with
        // Retain.
        let retained = if gate == ActGate::ObserveOnly {
            Some("management ObserveOnly")
        } else if policy == DeletionPolicy::Retain {
            Some("deletionPolicy Retain")
        } else {
            None
        };
        if let Some(why) = retained {
            ctx.metrics.forget_fleet(&fleet_label(&fleet));
            ctx.events()
                .action(
                    fleet.as_ref(),
                    "InstancesRetained",
                    "Delete",
                    &format!("{why}: the fleet's instances and launch template are left in EC2"),
                )
                .await;
            return Ok(Requeue::await_change());
        }
        terminate_every_instance(&ctx, &fleet, &owner).await?;
        delete_launch_templates(&ctx, &fleet, &owner).await?;
        ctx.metrics.forget_fleet(&fleet_label(&fleet));
        Ok(Requeue::await_change())
    }
}

/// Deletion: terminates every live instance carrying the fleet's owner tag, and fails (keeping
/// the finalizer) until a fresh `DescribeInstances` lists none of them, not even shutting down.
async fn terminate_every_instance(
    ctx: &Context,
    fleet: &SpotFleet,
    owner: &str,
) -> Result<(), SpotFleetError> {
    let spec = &fleet.spec;
    let cluster = ctx.settings.cluster_id.as_str();
    let ec2 = ctx.aws.ec2(&spec.region);
    let observe = |source| SpotFleetError::Observe { source };
    // Read afresh, not from the shared listing: the finalizer goes only on what EC2 says
    // now.
    let instances: Vec<_> = ec2
        .describe_instances_by_tag(OWNER_TAG, owner)
        .await
        .map_err(observe)?
        .into_iter()
        .filter(|i| tags::ownership(&i.tags, owner, cluster) == Ownership::Ours)
        .filter(|i| !i.is_terminated())
        .collect();
    if !instances.is_empty() {
        let live: Vec<String> = instances
            .iter()
            .filter(|i| !i.is_terminating())
            .map(|i| i.id.clone())
            .collect();
        if !live.is_empty() {
            ec2.terminate_instances(&live)
                .await
                .map_err(|source| SpotFleetError::Action {
                    action: format!("terminate {}", live.join(", ")),
                    source,
                })?;
            ctx.inventory.ec2(&spec.region).instances_written(owner);
            ctx.events()
                .action(
                    fleet,
                    "InstancesTerminated",
                    "TerminateInstances",
                    &format!("terminating {} (fleet deleted)", live.join(", ")),
                )
                .await;
            ctx.metrics.record_action(KIND, "terminate");
        }
        // An error keeps the finalizer: the runtime retries with its backoff and removes the
        // finalizer only once a cleanup returns Ok, after EC2 listed none of them.
        return Err(SpotFleetError::TeardownPending {
            ids: instances.iter().map(|i| i.id.clone()).collect(),
        });
    }
    Ok(())
}

/// Deletion, once no instance is left: the fleet's launch templates go too.
async fn delete_launch_templates(
    ctx: &Context,
    fleet: &SpotFleet,
    owner: &str,
) -> Result<(), SpotFleetError> {
    let spec = &fleet.spec;
    let cluster = ctx.settings.cluster_id.as_str();
    let ec2 = ctx.aws.ec2(&spec.region);
    let observe = |source| SpotFleetError::Observe { source };
    // A fleet of the same name created later must not launch from a remembered template.
    ctx.inventory
        .ec2(&spec.region)
        .launch()
        .forget_template(owner);
    let templates = ec2
        .launch_templates_with_tag(OWNER_TAG, owner)
        .await
        .map_err(observe)?;
    for template in templates
        .iter()
        .filter(|t| tags::ownership(&t.tags, owner, cluster) == Ownership::Ours)
    {
        ec2.delete_launch_template(&template.id)
            .await
            .map_err(|source| SpotFleetError::Action {
                action: format!("delete launch template {}", template.name),
                source,
            })?;
        ctx.events()
            .action(
                fleet,
                "LaunchTemplateDeleted",
                "DeleteLaunchTemplate",
                &format!("deleted launch template {}", template.name),
            )
            .await;
        ctx.metrics.record_action(KIND, "template_delete");
    }
    Ok(())
}
