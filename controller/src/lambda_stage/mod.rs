//! `LambdaStage`: keeps a stage's Lambda functions at exactly the declared code, layers,
//! environment, event-source mappings and alias.
//!
//! The reconcile has the shape every kind shares: observe → plan → act → report, run as one
//! [`round`](round::round).
//! - [`observe`]: the only reads of AWS, through the shared inventory, gathering
//!   [`observed::Observed`] as plain data.
//! - [`plan`]: the pure decision — `plan(spec, context, observed) -> Plan`: no I/O, no clock,
//!   no randomness. Every reason Stagehand acts on a LambdaStage is a named predicate there.
//! - [`act`]: executes the plan's actions in order, stopping at the first failure.
//! - [`status`]: the status written after every round (pure).
//! - [`round`]: the four steps, written once for the reconciler, the CLI, the benchmark and
//!   the tests.
//! - this module: the [`Reconciler`] wiring (gate, events, metrics, status write, requeue,
//!   cleanup on deletion).

mod act;
mod error;
mod http_check;
mod mapping_owners;
mod observe;
mod observed;
pub mod plan;
pub mod round;
mod stack;
pub(crate) mod status;

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use kube::runtime::controller::Action as Requeue;
use kube::{Resource, ResourceExt};
use stagehand_crds::{CommonStatus, DeletionPolicy, LambdaStage, LambdaStageStatus};

pub use self::error::LambdaStageError;
use self::round::{ActScope, Round, RoundOptions, round};
use crate::base::{ActGate, may_act};
use crate::feed::{FeedInterest, Watched};
use crate::inventory::lambda::layer_name;
use crate::runtime::controller::object_key;
use crate::runtime::requeue::resync_action;
use crate::runtime::round::{
    KindStatus, RefreshTracker, RoundEnd, fail_early, owner_of, paused_status, requeue_after,
    write_status,
};
use crate::runtime::series::ObjectSeries;
use crate::runtime::{Context, Reconciler, effective_deletion_policy};

/// The kind label of metrics.
const KIND: &str = "LambdaStage";

/// The LambdaStage reconciler. AWS is read through the `Context`'s inventory, shared with
/// every other kind.
#[derive(Debug, Default)]
pub struct LambdaStageReconciler {
    refreshes: RefreshTracker,
    /// Each stage's `stagehand_queue_backlog_messages` series, removed when a queue is no
    /// longer measured or the stage goes.
    backlog: ObjectSeries,
}

impl LambdaStageReconciler {
    pub fn new() -> Self {
        Self::default()
    }
}

impl KindStatus for LambdaStageStatus {
    fn common(&self) -> &CommonStatus {
        &self.common
    }

    fn common_mut(&mut self) -> &mut CommonStatus {
        &mut self.common
    }
}

/// Metrics of one round: the drift found, the actions done, the backlog validation measured.
fn record_metrics(ctx: &Context, backlog: &ObjectSeries, stage: &LambdaStage, round: &Round) {
    for drift in &round.plan.drift {
        ctx.metrics.record_drift(KIND, drift.field.as_str());
    }
    for action in &round.report.done {
        ctx.metrics.record_action(KIND, action.metric_label());
    }
    let mut series = Vec::new();
    for queue in &round.plan.validation.queues {
        for (kind, value) in [("visible", queue.visible), ("in_flight", queue.in_flight)] {
            series.push((vec![queue.queue.as_str(), kind], value));
        }
    }
    backlog.set(
        &ctx.metrics.queue_backlog_messages,
        &object_key(stage),
        &series,
    );
}

impl Reconciler<LambdaStage> for LambdaStageReconciler {
    type Error = LambdaStageError;

    /// A stage relies on the controller-wide event queue: a new build under one of its artifact
    /// keys, a function created or deleted under its selector's prefix and a new version of one
    /// of its layers reconcile it at once (CloudTrail writes to its functions find it by owner
    /// tag).
    fn feed_interest(&self, stage: &LambdaStage) -> Option<FeedInterest> {
        let spec = &stage.spec;
        let mut watches: Vec<Watched> = spec
            .functions
            .iter()
            .filter_map(|f| f.code.as_ref())
            .chain(spec.code.as_ref())
            .filter_map(|code| code.s3.as_ref())
            .map(|s3| Watched::S3Object {
                bucket: s3.bucket.clone(),
                key: s3.key.clone(),
            })
            .chain(
                spec.function_selector
                    .as_ref()
                    .and_then(|selector| selector.name_prefix.clone())
                    .map(Watched::FunctionPrefix),
            )
            .chain(
                spec.layers
                    .iter()
                    .map(|layer| Watched::Layer(layer_name(&layer.name).to_owned())),
            )
            .collect();
        watches.sort();
        watches.dedup();
        Some(FeedInterest {
            region: spec.region.clone(),
            watches,
        })
    }

    async fn apply(
        &self,
        stage: Arc<LambdaStage>,
        ctx: Arc<Context>,
    ) -> Result<Requeue, LambdaStageError> {
        let spec = &stage.spec;
        let gate = may_act(stage.annotations(), spec.lifecycle.management);
        if gate == ActGate::Paused {
            let status = paused_status(
                stage.status.as_ref(),
                stage.meta().generation,
                Timestamp::now(),
            );
            write_status(&ctx, stage.as_ref(), &status).await?;
            return Ok(Requeue::await_change());
        }
        let options = RoundOptions {
            cluster_id: &ctx.settings.cluster_id,
            gate,
            scope: ActScope::Gated,
            refresh: self.refreshes.requested(stage.as_ref()),
        };
        let round = match round(
            &ctx.inventory,
            &stage,
            stage.status.as_ref(),
            options,
            |_| {},
        )
        .await
        {
            Ok(round) => round,
            Err(error) => {
                return Err(fail_early(&ctx, stage.as_ref(), stage.status.as_ref(), error).await);
            }
        };
        record_metrics(&ctx, &self.backlog, &stage, &round);
        for action in &round.report.done {
            let (reason, verb) = action.event();
            ctx.events()
                .action(stage.as_ref(), reason, verb, &action.to_string())
                .await;
        }
        write_status(&ctx, stage.as_ref(), &round.status).await?;

        if let Some((action, error)) = round.report.failure {
            ctx.events()
                .failure(stage.as_ref(), action.event().1, &error)
                .await;
            return Err(error);
        }
        if let Some(stall) = &round.plan.stalled
            && gate.may_act()
        {
            let error = LambdaStageError::Stalled {
                reason: stall.reason,
                message: stall.message.clone(),
            };
            ctx.events()
                .failure(stage.as_ref(), "Reconcile", &error)
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

    async fn cleanup(
        &self,
        stage: Arc<LambdaStage>,
        ctx: Arc<Context>,
    ) -> Result<Requeue, LambdaStageError> {
        let spec = &stage.spec;
        if may_act(stage.annotations(), spec.lifecycle.management) == ActGate::Paused {
            return Err(LambdaStageError::Paused);
        }
        self.refreshes.forget(stage.as_ref());
        self.backlog.forget(
            &ctx.metrics.queue_backlog_messages,
            &object_key(stage.as_ref()),
        );
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
            &owner_of(stage.as_ref()),
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
