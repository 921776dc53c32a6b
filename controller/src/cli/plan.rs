//! `stagehand plan` (observe + plan, never act) and `stagehand apply` (reconcile rounds until
//! settled), per LambdaStage of the manifest, with the controller's own functions.

use std::time::{Duration, Instant};

use jiff::Timestamp;
use kube::ResourceExt;
use stagehand_crds::{LambdaStage, LambdaStageStatus};

use super::report::{Printer, StageReport};
use super::{ApplyArgs, PlanArgs, exit};
use crate::aws::AwsProvider;
use crate::lambda_stage::act::ActReport;
use crate::lambda_stage::inventory::Inventory;
use crate::lambda_stage::observed::Observed;
use crate::lambda_stage::plan::{Action, Plan};
use crate::lambda_stage::status::{StatusInputs, next_status};
use crate::lambda_stage::{act, observe_and_plan, round_outcome};
use crate::runtime::Metrics;
use crate::runtime::gates::{ActGate, may_act};

/// At most this many hashing rounds before a plan is printed (one per artifact suffices).
const HASH_ROUNDS: usize = 3;
/// `apply`: after actions ran, look again this soon (as the controller does).
const AFTER_ACTIONS: Duration = Duration::from_secs(1);
/// `apply`: a failed action or observation is retried after this (doubling) delay...
const RETRY_BASE: Duration = Duration::from_secs(2);
/// ... at most this many times in a row before `apply` gives up with exit code 1.
const MAX_CONSECUTIVE_FAILURES: u32 = 5;

/// What both commands share: the AWS adapters and the settings they came from.
struct Session {
    aws: AwsProvider,
    cluster_id: String,
}

impl Session {
    async fn start(args: &super::AwsArgs) -> Result<Self, String> {
        let settings = args.settings();
        let sdk = crate::runtime::context::aws_sdk_config(&settings)
            .await
            .map_err(|e| {
                let mut message = e.to_string();
                if let Some(hint) = e.hint() {
                    message.push('\n');
                    message.push_str(hint);
                }
                message
            })?;
        let metrics = Metrics::new().map_err(|e| format!("cannot set up metrics: {e}"))?;
        Ok(Self {
            aws: AwsProvider::new(sdk, metrics, settings.aws_settings()),
            cluster_id: settings.cluster_id,
        })
    }

    /// One observe → plan round, the hashing of artifacts S3 has no checksum for included:
    /// hashing only reads (GetObject), and without the hash the plan cannot tell whether code
    /// drifted. Nothing is written.
    async fn observe_and_plan(
        &self,
        stage: &LambdaStage,
        status: Option<&LambdaStageStatus>,
        inventory: &Inventory,
        gate: ActGate,
    ) -> Result<(Observed, Plan), String> {
        let mut round = 0;
        loop {
            let (observed, plan) =
                observe_and_plan(&self.aws, stage, status, inventory, &self.cluster_id, gate)
                    .await
                    .map_err(|e| format!("cannot observe AWS: {}", one_line(&e)))?;
            let hashing: Vec<Action> = plan
                .actions
                .iter()
                .filter(|a| matches!(a, Action::HashArtifact { .. }))
                .cloned()
                .collect();
            round += 1;
            if hashing.is_empty() || round > HASH_ROUNDS {
                return Ok((observed, plan));
            }
            let report = act(
                &self.aws,
                stage,
                &hashing,
                &self.cluster_id,
                inventory,
                |_| {},
            )
            .await;
            if let Some((action, error)) = report.failure {
                return Err(format!("{action}: {}", one_line(&error)));
            }
        }
    }
}

/// `stagehand plan -f`.
pub async fn plan(args: &PlanArgs) -> u8 {
    let mut printer = Printer::new(args.output);
    let stages = match super::manifest::read_stages(&args.file) {
        Ok(stages) => stages,
        Err(error) => return printer.fatal(&error.to_string()),
    };
    let session = match Session::start(&args.aws).await {
        Ok(session) => session,
        Err(error) => return printer.fatal(&error),
    };
    for stage in &stages {
        let report = plan_stage(&session, stage).await;
        printer.stage(report);
    }
    printer.finish_plan()
}

async fn plan_stage(session: &Session, stage: &LambdaStage) -> StageReport {
    let mut report = StageReport::new(stage, &owner(stage));
    let gate = may_act(stage.annotations(), stage.spec.lifecycle.management);
    report.gate = gate;
    if gate == ActGate::Paused {
        report.exit_code = exit::IN_SYNC;
        report.result = "Paused";
        return report;
    }
    let inventory = Inventory::default();
    let (observed, plan) = match session
        .observe_and_plan(stage, None, &inventory, gate)
        .await
    {
        Ok(round) => round,
        Err(error) => return report.failed(error),
    };
    let status = status_of(stage, None, &observed, &plan, &ActReport::default());
    let (exit_code, result) = if plan.stalled.is_some() {
        (exit::NOT_READY, "Stalled")
    } else if !plan.actions.is_empty() || !plan.waits.is_empty() || !plan.drift.is_empty() {
        (exit::CHANGES_PENDING, "ChangesPending")
    } else {
        (exit::IN_SYNC, "InSync")
    };
    report.exit_code = exit_code;
    report.result = result;
    report.set_plan(&plan, &status);
    report
}

/// `stagehand apply -f`.
pub async fn apply(args: &ApplyArgs) -> u8 {
    let mut printer = Printer::new(args.plan.output);
    let stages = match super::manifest::read_stages(&args.plan.file) {
        Ok(stages) => stages,
        Err(error) => return printer.fatal(&error.to_string()),
    };
    let session = match Session::start(&args.plan.aws).await {
        Ok(session) => session,
        Err(error) => return printer.fatal(&error),
    };
    let deadline = Instant::now() + args.timeout;
    for stage in &stages {
        let report = apply_stage(&session, stage, deadline, &mut printer).await;
        printer.stage(report);
    }
    printer.finish_apply()
}

async fn apply_stage(
    session: &Session,
    stage: &LambdaStage,
    deadline: Instant,
    printer: &mut Printer,
) -> StageReport {
    let mut report = StageReport::new(stage, &owner(stage));
    let gate = may_act(stage.annotations(), stage.spec.lifecycle.management);
    report.gate = gate;
    if gate == ActGate::Paused {
        report.exit_code = exit::NOT_READY;
        report.result = "Paused";
        return report;
    }
    printer.progress(&format!("LambdaStage {}: applying", report.id()));
    let inventory = Inventory::default();
    let mut status: Option<LambdaStageStatus> = None;
    let mut failures = 0_u32;
    loop {
        report.rounds += 1;
        let round = session
            .observe_and_plan(stage, status.as_ref(), &inventory, gate)
            .await;
        let (observed, plan) = match round {
            Ok(round) => round,
            Err(error) => {
                failures += 1;
                match retry_after(failures, deadline) {
                    Some(delay) => {
                        printer.progress(&format!("  {error}; retrying in {}s", delay.as_secs()));
                        tokio::time::sleep(delay).await;
                        continue;
                    }
                    None => return report.failed(error),
                }
            }
        };
        let done = act(
            &session.aws,
            stage,
            &plan.actions,
            &session.cluster_id,
            &inventory,
            |action| printer.progress(&format!("  → {}: {action}", action.kind())),
        )
        .await;
        let next = status_of(stage, status.as_ref(), &observed, &plan, &done);
        report.applied.extend(done.done.iter().cloned());
        report.set_plan(&plan, &next);
        status = Some(next);

        if let Some((action, error)) = &done.failure {
            failures += 1;
            let message = format!("{} failed: {}", action.kind(), one_line(error));
            match retry_after(failures, deadline) {
                Some(delay) => {
                    printer.progress(&format!("  {message}; retrying in {}s", delay.as_secs()));
                    tokio::time::sleep(delay).await;
                    continue;
                }
                None => return report.failed(message),
            }
        }
        failures = 0;
        if plan.stalled.is_some() {
            report.exit_code = exit::NOT_READY;
            report.result = "Stalled";
            return report;
        }
        let wait = if done.done.is_empty() {
            plan.requeue_after_seconds().map(Duration::from_secs)
        } else {
            Some(AFTER_ACTIONS)
        };
        let Some(wait) = wait else {
            if gate == ActGate::ObserveOnly && !plan.drift.is_empty() {
                report.exit_code = exit::NOT_READY;
                report.result = "ObserveOnlyDrift";
            } else {
                report.exit_code = exit::IN_SYNC;
                report.result = "Ready";
            }
            return report;
        };
        if Instant::now() + wait > deadline {
            report.exit_code = exit::TIMED_OUT;
            report.result = "TimedOut";
            return report;
        }
        for w in &plan.waits {
            printer.progress(&format!(
                "  waiting for {} ({}), looking again in {}s",
                w.subject, w.reason, w.requeue_after_seconds
            ));
        }
        // The product's pacing between rounds (Lambda allows one update per function at a
        // time; CloudFormation takes minutes), as the controller's requeue does.
        tokio::time::sleep(wait).await;
    }
}

/// The delay before retry number `failures`, or `None` when giving up (too many failures in a
/// row, or past the deadline).
fn retry_after(failures: u32, deadline: Instant) -> Option<Duration> {
    if failures >= MAX_CONSECUTIVE_FAILURES {
        return None;
    }
    let delay = RETRY_BASE.saturating_mul(1 << failures.saturating_sub(1).min(4));
    (Instant::now() + delay <= deadline).then_some(delay)
}

fn owner(stage: &LambdaStage) -> String {
    crate::lambda_stage::owner_of(stage)
}

fn status_of(
    stage: &LambdaStage,
    previous: Option<&LambdaStageStatus>,
    observed: &Observed,
    plan: &Plan,
    report: &ActReport,
) -> LambdaStageStatus {
    next_status(&StatusInputs {
        previous,
        spec: &stage.spec,
        observed,
        plan,
        report,
        outcome: &round_outcome(plan, report),
        generation: stage.metadata.generation,
        now: Timestamp::now(),
    })
}

/// An error and its causes on one line.
fn one_line(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !text.is_empty() && !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message.replace('\n', " ")
}
