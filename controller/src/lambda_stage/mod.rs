//! `LambdaStage`: keeps a stage's Lambda functions at exactly the declared code, layers,
//! environment, event-source mappings and alias (issue 6, DESIGN.md "LambdaStage").
//!
//! The reconcile has the shape every kind shares: observe → plan → act → report.
//! - [`observe`]: the only reads of AWS, gathering [`observed::Observed`] as plain data.
//! - [`plan`]: the pure decision — `plan(spec, context, observed) -> Plan`: no I/O, no clock,
//!   no randomness. Every reason Stagehand acts on a LambdaStage is a named predicate there.
//! - [`act`]: executes the plan's actions in order, stopping at the first failure.
//! - [`status`]: the status written after every reconcile (pure).
//! - this module: the [`Reconciler`] wiring (gate, events, metrics, status write, requeue,
//!   cleanup on deletion).

pub mod act;
pub mod error;
pub mod http_check;
pub mod inventory;
pub mod mapping_owners;
pub mod observe;
pub mod observed;
pub mod plan;
pub mod status;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use jiff::Timestamp;
use kube::api::Api;
use kube::runtime::controller::Action as Requeue;
use kube::{Resource, ResourceExt};
use stagehand_crds::{DeletionPolicy, LambdaStage, LambdaStageStatus, REFRESH_ANNOTATION};

use self::act::{ActReport, Actor};
pub use self::error::LambdaStageError;
use self::inventory::Inventory;
use self::observe::observe;
use self::observed::Observed;
use self::plan::{Action, Plan, PlanContext, plan};
use self::status::{StatusInputs, next_status, paused_status};
use crate::aws::{AwsError, AwsProvider, tags};
use crate::runtime::conditions::ReconcileOutcome;
use crate::runtime::gates::{ActGate, may_act};
use crate::runtime::requeue::resync_action;
use crate::runtime::status::apply_status;
use crate::runtime::{Context, Reconciler, effective_deletion_policy};

/// The kind label of metrics.
const KIND: &str = "LambdaStage";

/// After actions ran, look again this soon: the next round checks what they did and takes the
/// next step (Lambda allows one update per function at a time).
const AFTER_ACTIONS: Duration = Duration::from_secs(1);

/// The LambdaStage reconciler. Keeps the [`Inventory`] (AWS listings, artifact hashes) shared
/// by every reconcile, made on the first one with `--inventory-max-age`.
#[derive(Debug, Default)]
pub struct LambdaStageReconciler {
    inventory: OnceLock<Arc<Inventory>>,
    /// The `stagehand.dev/refresh` value last acted on, per object.
    refreshes: Mutex<HashMap<String, String>>,
}

impl LambdaStageReconciler {
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether `stage` carries a `stagehand.dev/refresh` value not acted on yet (recorded as
    /// acted on). After a restart every value counts as new: the inventory is new too.
    fn refresh_requested(&self, stage: &LambdaStage) -> bool {
        let Some(value) = stage.annotations().get(REFRESH_ANNOTATION) else {
            return false;
        };
        let key = format!(
            "{}/{}",
            stage.namespace().unwrap_or_default(),
            stage.name_any()
        );
        let mut seen = self
            .refreshes
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if seen.get(&key) == Some(value) {
            return false;
        }
        seen.insert(key, value.clone());
        true
    }
}

/// `<namespace>/LambdaStage/<name>`: the owner tag value of a stage.
pub fn owner_of(stage: &LambdaStage) -> String {
    tags::owner_tag_value(
        &stage.namespace().unwrap_or_default(),
        KIND,
        &stage.name_any(),
    )
}

/// Observe and plan one round for `stage`, whose status is `status` (what the cluster keeps;
/// `stagehand apply` keeps it in memory between rounds). Shared by the reconciler and the
/// `plan`/`apply` commands, so both decide exactly alike.
pub async fn observe_and_plan(
    aws: &AwsProvider,
    stage: &LambdaStage,
    status: Option<&LambdaStageStatus>,
    inventory: &Inventory,
    cluster_id: &str,
    gate: ActGate,
) -> Result<(Observed, Plan), AwsError> {
    let spec = &stage.spec;
    if spec_changed(stage, status) {
        // A spec change is acted on with a fresh view of AWS (a build or layer version
        // published just before it is seen), not with listings up to the max age old.
        inventory.refresh(&spec.region);
    }
    let owner = owner_of(stage);
    let round_start = tokio::time::Instant::now();
    let mut observed = observe(aws, spec, status, inventory, Timestamp::now()).await?;
    observed.mappings_tagged_ours = mapping_owners::mappings_tagged_ours(
        &aws.lambda(&spec.region),
        &observed,
        status,
        &owner,
        cluster_id,
    )
    .await?;
    let context = PlanContext {
        owner,
        cluster_id: cluster_id.to_owned(),
        generation: stage.meta().generation.unwrap_or_default(),
        gate,
    };
    let mut plan = plan(spec, &context, &observed);
    // Never write to a function on the strength of ownership tags read before this round
    // (the inventory keeps them up to an hour): read the functions about to be changed again,
    // and plan again with what AWS says now. Costs nothing when nothing is to be changed.
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
                .is_some_and(|d| !inventory.tags_read_since(&d.info.arn, round_start))
        })
        .map(str::to_owned)
        .collect();
    if !unverified.is_empty() {
        observe::reread_functions(aws, spec, inventory, &mut observed, &unverified).await?;
        plan = self::plan::plan(spec, &context, &observed);
    }
    Ok((observed, plan))
}

/// The object's generation has not been reconciled yet (new object or spec change).
fn spec_changed(stage: &LambdaStage, status: Option<&LambdaStageStatus>) -> bool {
    status.and_then(|s| s.common.observed_generation) != stage.meta().generation
}

/// Runs `actions` (a plan's) in order, stopping at the first failure, calling `on_start` before
/// each one.
pub async fn act(
    aws: &AwsProvider,
    stage: &LambdaStage,
    actions: &[Action],
    cluster_id: &str,
    inventory: &Inventory,
    on_start: impl FnMut(&Action),
) -> ActReport {
    if actions.is_empty() {
        return ActReport::default();
    }
    Actor {
        aws,
        spec: &stage.spec,
        owner: &owner_of(stage),
        cluster_id,
        inventory,
    }
    .execute_reporting(actions, on_start)
    .await
}

/// The kstatus outcome of a round: the failed action's error, else what the plan says.
pub fn round_outcome(plan: &Plan, report: &ActReport) -> ReconcileOutcome {
    match &report.failure {
        Some((_, error)) => ReconcileOutcome::from_error(error),
        None => plan.outcome(),
    }
}

fn stage_api(ctx: &Context, stage: &LambdaStage) -> Api<LambdaStage> {
    Api::namespaced(ctx.client.clone(), &stage.namespace().unwrap_or_default())
}

impl LambdaStageReconciler {
    /// Writes the status; on a write failure the reconcile fails (and is retried).
    async fn write_status(
        ctx: &Context,
        stage: &LambdaStage,
        status: &LambdaStageStatus,
    ) -> Result<(), LambdaStageError> {
        // Plain data always serializes; were it not to, the write is refused as "not an object".
        let value = serde_json::to_value(status).unwrap_or(serde_json::Value::Null);
        apply_status(&stage_api(ctx, stage), stage, value).await?;
        Ok(())
    }

    /// Reports a failure before anything was planned: status with the error, a Warning.
    async fn fail_early(
        ctx: &Context,
        stage: &LambdaStage,
        error: LambdaStageError,
    ) -> Result<Requeue, LambdaStageError> {
        let previous = stage.status.as_ref();
        let mut status = previous.cloned().unwrap_or_default();
        status.common = crate::runtime::status::next_common_status(
            previous.map(|p| &p.common),
            &ReconcileOutcome::from_error(&error),
            stage.meta().generation,
            Timestamp::now(),
        );
        Self::write_status(ctx, stage, &status).await?;
        ctx.events().failure(stage, "Observe", &error).await;
        Err(error)
    }

    fn record_metrics(ctx: &Context, stage: &LambdaStage, plan: &Plan, report: &ActReport) {
        for drift in &plan.drift {
            ctx.metrics.record_drift(KIND, drift.field.as_str());
        }
        for action in &report.done {
            ctx.metrics.record_action(KIND, action.metric_label());
        }
        let stage_label = format!(
            "{}/{}",
            stage.namespace().unwrap_or_default(),
            stage.name_any()
        );
        for queue in &plan.validation.queues {
            for (kind, value) in [("visible", queue.visible), ("in_flight", queue.in_flight)] {
                ctx.metrics
                    .queue_backlog_messages
                    .with_label_values(&[stage_label.as_str(), queue.queue.as_str(), kind])
                    .set(value);
            }
        }
    }
}

impl Reconciler<LambdaStage> for LambdaStageReconciler {
    type Error = LambdaStageError;

    async fn apply(
        &self,
        stage: Arc<LambdaStage>,
        ctx: Arc<Context>,
    ) -> Result<Requeue, LambdaStageError> {
        let spec = &stage.spec;
        let generation = stage.meta().generation;
        let gate = may_act(stage.annotations(), spec.lifecycle.management);
        let resync = || {
            resync_action(
                &spec.lifecycle,
                ctx.settings.default_resync,
                &mut rand::rng(),
            )
        };
        if gate == ActGate::Paused {
            let status = paused_status(stage.status.as_ref(), generation, Timestamp::now());
            Self::write_status(&ctx, &stage, &status).await?;
            return Ok(Requeue::await_change());
        }

        let inventory = self
            .inventory
            .get_or_init(|| Arc::new(Inventory::new(ctx.settings.inventory_max_age)));
        if self.refresh_requested(&stage) {
            inventory.refresh(&spec.region);
        }
        let (observed, plan) = match observe_and_plan(
            &ctx.aws,
            &stage,
            stage.status.as_ref(),
            inventory,
            &ctx.settings.cluster_id,
            gate,
        )
        .await
        {
            Ok(round) => round,
            Err(source) => {
                return Self::fail_early(&ctx, &stage, LambdaStageError::Observe { source }).await;
            }
        };

        let report = if gate.may_act() {
            act(
                &ctx.aws,
                &stage,
                &plan.actions,
                &ctx.settings.cluster_id,
                inventory,
                |_| {},
            )
            .await
        } else {
            ActReport::default()
        };
        Self::record_metrics(&ctx, &stage, &plan, &report);
        for action in &report.done {
            let (reason, verb) = action.event();
            ctx.events()
                .action(stage.as_ref(), reason, verb, &action.to_string())
                .await;
        }

        let outcome = round_outcome(&plan, &report);
        let status = next_status(&StatusInputs {
            previous: stage.status.as_ref(),
            spec,
            observed: &observed,
            plan: &plan,
            report: &report,
            outcome: &outcome,
            generation,
            now: Timestamp::now(),
        });
        Self::write_status(&ctx, &stage, &status).await?;

        if let Some((action, error)) = report.failure {
            ctx.events()
                .failure(stage.as_ref(), action.event().1, &error)
                .await;
            return Err(error);
        }
        if let Some(stall) = &plan.stalled {
            // Most stalls are fixed in AWS (the pinned build uploaded, a stack repaired, a
            // backlog drained), not in the spec: look again at the resync interval instead of
            // waiting for a spec change that may never come.
            let error = LambdaStageError::Stalled {
                reason: stall.reason,
                message: stall.message.clone(),
            };
            if gate.may_act() {
                ctx.events()
                    .failure(stage.as_ref(), "Reconcile", &error)
                    .await;
            }
            return Ok(resync());
        }
        if !report.done.is_empty() {
            return Ok(Requeue::requeue(AFTER_ACTIONS));
        }
        match plan.requeue_after_seconds() {
            Some(seconds) => Ok(Requeue::requeue(Duration::from_secs(seconds))),
            None => Ok(resync()),
        }
    }

    async fn cleanup(
        &self,
        stage: Arc<LambdaStage>,
        ctx: Arc<Context>,
    ) -> Result<Requeue, LambdaStageError> {
        let spec = &stage.spec;
        if may_act(stage.annotations(), spec.lifecycle.management) == ActGate::Paused {
            return Err(LambdaStageError::Paused);
        }
        self.refreshes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&format!(
                "{}/{}",
                stage.namespace().unwrap_or_default(),
                stage.name_any()
            ));
        let status = stage.status.clone().unwrap_or_default();
        let stack_created = status
            .stack
            .as_ref()
            .is_some_and(|s| s.created_by_stagehand);
        // Without a policy: what Stagehand created goes, what it adopted stays.
        let policy = effective_deletion_policy(
            spec.lifecycle.deletion_policy,
            !spec.lifecycle.adopt || stack_created,
        );
        if policy == DeletionPolicy::Retain {
            return Ok(Requeue::await_change());
        }
        let lambda = ctx.aws.lambda(&spec.region);
        let doomed = mapping_owners::mappings_to_delete(
            &lambda,
            &status,
            &owner_of(&stage),
            &ctx.settings.cluster_id,
        )
        .await
        .map_err(|source| LambdaStageError::Observe { source })?;
        for (uuid, mapping) in doomed {
            lambda
                .delete_event_source_mapping(&uuid)
                .await
                .map_err(|source| LambdaStageError::Action {
                    action: format!(
                        "delete mapping {uuid} ({} → {})",
                        mapping.queue, mapping.function
                    ),
                    source,
                })?;
            ctx.events()
                .action(
                    stage.as_ref(),
                    "MappingDeleted",
                    "DeleteEventSourceMapping",
                    &format!(
                        "deleted mapping {uuid} ({} → {})",
                        mapping.queue, mapping.function
                    ),
                )
                .await;
            ctx.metrics.record_action(KIND, "mapping_delete");
        }
        if let (Some(stack), true) = (&status.stack, stack_created) {
            ctx.aws
                .cloudformation(&spec.region)
                .delete_stack(&stack.name)
                .await
                .map_err(|source| LambdaStageError::Action {
                    action: format!("delete stack {}", stack.name),
                    source,
                })?;
            ctx.events()
                .action(
                    stage.as_ref(),
                    "StackDeleting",
                    "DeleteStack",
                    &format!("deleting stack {}", stack.name),
                )
                .await;
            ctx.metrics.record_action(KIND, "stack_delete");
        }
        Ok(Requeue::await_change())
    }
}
