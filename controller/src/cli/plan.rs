//! `stagehand plan` (observe + plan, never act) and `stagehand apply` (reconcile rounds until
//! settled), per LambdaStage of the manifest, with the controller's own functions.

use std::time::{Duration, Instant};

use kube::ResourceExt;
use stagehand_crds::{LambdaStage, LambdaStageStatus};

use super::report::{Printer, StageReport};
use super::{ApplyArgs, PlanArgs, exit, one_line};
use crate::aws::{AwsMetrics, AwsProvider};
use crate::base::{ActGate, may_act};
use crate::inventory::Inventory;
use crate::lambda_stage::round::{ActScope, Round, RoundOptions, round};
use crate::runtime::round::{AFTER_ACTIONS, owner_of};

/// At most this many hashing rounds before a plan is printed (one per artifact suffices).
const HASH_ROUNDS: usize = 3;
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
        let metrics = AwsMetrics::register(&prometheus::Registry::new())
            .map_err(|e| format!("cannot set up metrics: {e}"))?;
        Ok(Self {
            aws: AwsProvider::new(sdk, metrics, settings.aws_settings()),
            cluster_id: settings.cluster_id,
        })
    }

    /// A fresh inventory per stage: each stage is planned against AWS as it is now.
    fn inventory(&self) -> Inventory {
        Inventory::new(self.aws.clone(), Duration::ZERO)
    }

    fn options(&self, gate: ActGate, scope: ActScope) -> RoundOptions<'_> {
        RoundOptions {
            cluster_id: &self.cluster_id,
            gate,
            scope,
            refresh: false,
        }
    }

    /// One round that writes nothing, the hashing of artifacts S3 has no checksum for included
    /// (hashing only reads, and without the hash the plan cannot tell whether code drifted).
    async fn plan_round(&self, stage: &LambdaStage, gate: ActGate) -> Result<Round, String> {
        let inventory = self.inventory();
        let mut rounds = 0;
        loop {
            rounds += 1;
            let round = round(
                &inventory,
                stage,
                None,
                self.options(gate, ActScope::ReadsOnly),
                |_| {},
            )
            .await
            .map_err(|e| format!("cannot observe AWS: {}", one_line(&e)))?;
            if let Some((action, error)) = &round.report.failure {
                return Err(format!("{action}: {}", one_line(error)));
            }
            if round.report.done.is_empty() || rounds > HASH_ROUNDS {
                return Ok(round);
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
    let mut report = StageReport::new(stage, &owner_of(stage));
    let gate = may_act(stage.annotations(), stage.spec.lifecycle.management);
    report.gate = gate;
    if gate == ActGate::Paused {
        report.exit_code = exit::IN_SYNC;
        report.result = "Paused";
        return report;
    }
    let Round { plan, status, .. } = match session.plan_round(stage, gate).await {
        Ok(round) => round,
        Err(error) => return report.failed(error),
    };
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
    let mut report = StageReport::new(stage, &owner_of(stage));
    let gate = may_act(stage.annotations(), stage.spec.lifecycle.management);
    report.gate = gate;
    if gate == ActGate::Paused {
        report.exit_code = exit::NOT_READY;
        report.result = "Paused";
        return report;
    }
    printer.progress(&format!("LambdaStage {}: applying", report.id()));
    let inventory = session.inventory();
    let mut status: Option<LambdaStageStatus> = None;
    let mut failures = 0_u32;
    loop {
        report.rounds += 1;
        let round = round(
            &inventory,
            stage,
            status.as_ref(),
            session.options(gate, ActScope::Gated),
            |action| printer.progress(&format!("  → {}: {action}", action.kind())),
        )
        .await;
        let error = match round {
            Ok(round) => {
                report.applied.extend(round.report.done.iter().cloned());
                report.set_plan(&round.plan, &round.status);
                status = Some(round.status.clone());
                match &round.report.failure {
                    Some((action, error)) => {
                        format!("{} failed: {}", action.kind(), one_line(error))
                    }
                    None => match next_step(&round, gate, deadline) {
                        Step::Done(exit_code, result) => {
                            report.exit_code = exit_code;
                            report.result = result;
                            return report;
                        }
                        Step::LookAgain(wait) => {
                            failures = 0;
                            for w in &round.plan.waits {
                                printer.progress(&format!(
                                    "  waiting for {} ({}), looking again in {}s",
                                    w.subject, w.reason, w.requeue_after_seconds
                                ));
                            }
                            // The product's pacing between rounds (Lambda allows one update
                            // per function at a time; CloudFormation takes minutes), as the
                            // controller's requeue does.
                            tokio::time::sleep(wait).await;
                            continue;
                        }
                    },
                }
            }
            Err(error) => format!("cannot observe AWS: {}", one_line(&error)),
        };
        failures += 1;
        match retry_after(failures, deadline) {
            Some(delay) => {
                printer.progress(&format!("  {error}; retrying in {}s", delay.as_secs()));
                tokio::time::sleep(delay).await;
            }
            None => return report.failed(error),
        }
    }
}

/// What `apply` does after a round that did not fail.
enum Step {
    /// Stop with this exit code and result.
    Done(u8, &'static str),
    /// Run another round after this wait.
    LookAgain(Duration),
}

fn next_step(round: &Round, gate: ActGate, deadline: Instant) -> Step {
    if round.plan.stalled.is_some() {
        return Step::Done(exit::NOT_READY, "Stalled");
    }
    let wait = if round.report.done.is_empty() {
        round.plan.requeue_after_seconds().map(Duration::from_secs)
    } else {
        Some(AFTER_ACTIONS)
    };
    let Some(wait) = wait else {
        return if gate == ActGate::ObserveOnly && !round.plan.drift.is_empty() {
            Step::Done(exit::NOT_READY, "ObserveOnlyDrift")
        } else {
            Step::Done(exit::IN_SYNC, "Ready")
        };
    };
    if Instant::now() + wait > deadline {
        return Step::Done(exit::TIMED_OUT, "TimedOut");
    }
    Step::LookAgain(wait)
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
