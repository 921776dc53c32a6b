//! One LambdaStage round — observe → plan → act → next status — written once. The reconciler,
//! `stagehand plan`/`apply`, the benchmark and the tests all run exactly this; what differs
//! between them is only where the status goes and when the next round comes.

use std::collections::BTreeSet;

use jiff::Timestamp;
use kube::Resource;
use stagehand_crds::{LambdaStage, LambdaStageStatus};
use tokio::time::Instant;

use super::act::{ActReport, Actor};
use super::error::LambdaStageError;
use super::mapping_owners;
use super::observe::{observe, reread_functions};
use super::observed::Observed;
use super::plan::{Action, Plan, PlanContext, plan};
use super::status::{StatusInputs, next_status};
use crate::aws::AwsError;
use crate::base::{ActGate, ReconcileOutcome};
use crate::inventory::{Inventory, Listings};
use crate::runtime::round::{owner_of, refresh_for_round, spec_changed};

/// Which of the planned actions a round runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActScope {
    /// Every action, when the gate lets Stagehand act (the reconciler, `stagehand apply`).
    Gated,
    /// Only the actions that read (hashing an artifact S3 has no checksum for): without the
    /// hash the plan cannot tell whether code drifted (`stagehand plan`).
    ReadsOnly,
}

/// How one round is run.
#[derive(Clone, Copy, Debug)]
pub struct RoundOptions<'a> {
    /// `stagehand.dev/cluster` value of this controller.
    pub cluster_id: &'a str,
    pub gate: ActGate,
    pub scope: ActScope,
    /// A `stagehand.dev/refresh` value not acted on yet: list AWS afresh, as for a spec change.
    pub refresh: bool,
}

/// What one round saw, decided, did, and the status that follows.
#[derive(Debug)]
pub struct Round {
    pub observed: Observed,
    pub plan: Plan,
    pub report: ActReport,
    pub outcome: ReconcileOutcome,
    pub status: LambdaStageStatus,
}

/// Runs one round for `stage`, whose status is `status` (what the cluster keeps; `stagehand
/// apply` keeps it in memory between rounds), calling `on_start` before each action. Fails only
/// when AWS could not be read; a failed action is in the round's report.
pub async fn round(
    inventory: &Inventory,
    stage: &LambdaStage,
    status: Option<&LambdaStageStatus>,
    options: RoundOptions<'_>,
    on_start: impl FnMut(&Action),
) -> Result<Round, LambdaStageError> {
    // A spec change is acted on with a fresh view of AWS (a build or layer version published
    // just before it is seen), not with listings up to the max age old.
    refresh_for_round(
        inventory,
        &stage.spec.region,
        &[Listings::Lambda, Listings::S3],
        options.refresh,
        spec_changed(stage, status),
    );
    let (observed, plan) = observe_and_plan(inventory, stage, status, &options)
        .await
        .map_err(|source| LambdaStageError::Observe { source })?;
    let actions: Vec<Action> = match options.scope {
        ActScope::Gated if options.gate.may_act() => plan.actions.clone(),
        ActScope::Gated => Vec::new(),
        ActScope::ReadsOnly => plan
            .actions
            .iter()
            .filter(|action| matches!(action, Action::HashArtifact { .. }))
            .cloned()
            .collect(),
    };
    let report = if actions.is_empty() {
        ActReport::default()
    } else {
        Actor {
            aws: inventory.aws(),
            spec: &stage.spec,
            owner: &owner_of(stage),
            cluster_id: options.cluster_id,
            inventory,
        }
        .execute_reporting(&actions, on_start)
        .await
    };
    let outcome = match &report.failure {
        Some((_, error)) => ReconcileOutcome::from_error(error),
        None => plan.outcome(),
    };
    let status = next_status(&StatusInputs {
        previous: status,
        spec: &stage.spec,
        observed: &observed,
        plan: &plan,
        report: &report,
        outcome: &outcome,
        generation: stage.meta().generation,
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

/// Observes and plans; plans again with ownership read afresh when the first plan would write
/// to a function whose tags came from an earlier round.
async fn observe_and_plan(
    inventory: &Inventory,
    stage: &LambdaStage,
    status: Option<&LambdaStageStatus>,
    options: &RoundOptions<'_>,
) -> Result<(Observed, Plan), AwsError> {
    let spec = &stage.spec;
    let owner = owner_of(stage);
    let round_start = Instant::now();
    let mut observed = observe(inventory, spec, status, Timestamp::now()).await?;
    observed.mappings_tagged_ours = mapping_owners::mappings_tagged_ours(
        &inventory.aws().lambda(&spec.region),
        &observed,
        status,
        &owner,
        options.cluster_id,
    )
    .await?;
    let context = PlanContext {
        owner,
        cluster_id: options.cluster_id.to_owned(),
        generation: stage.meta().generation.unwrap_or_default(),
        gate: options.gate,
    };
    let mut plan = plan(spec, &context, &observed);
    // Never write to a function on the strength of ownership tags read before this round
    // (the inventory keeps them up to an hour): read the functions about to be changed again,
    // and plan again with what AWS says now. Costs nothing when nothing is to be changed.
    let lambda = inventory.lambda(&spec.region);
    let unverified: BTreeSet<String> = plan
        .actions
        .iter()
        .filter_map(Action::function)
        .filter(|name| {
            observed
                .functions
                .iter()
                .find(|f| f.name == *name)
                .and_then(|f| f.deployed.as_ref())
                .is_some_and(|d| !lambda.tags_read_since(&d.info.arn, round_start))
        })
        .map(str::to_owned)
        .collect();
    if !unverified.is_empty() {
        reread_functions(inventory, spec, &mut observed, &unverified).await?;
        plan = super::plan::plan(spec, &context, &observed);
    }
    Ok((observed, plan))
}
