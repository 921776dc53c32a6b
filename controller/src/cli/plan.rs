//! `stagehand plan` (observe + plan, never act) and `stagehand apply` (reconcile rounds until
//! settled), per object of the manifest, with the controller's own functions. LambdaStages are
//! handled here, SpotFleets in [`super::fleet`], StaticSites in [`super::site`]; all share the
//! [`Session`] and `apply`'s round loop ([`converge`]).

use std::time::{Duration, Instant};

use kube::ResourceExt;
use stagehand_crds::{LambdaStage, LambdaStageStatus};

use super::manifest::Document;
use super::report::{Printer, StageReport, conclude};
use super::{ApplyArgs, PlanArgs, exit, one_line};
use crate::aws::{AwsMetrics, AwsProvider};
use crate::base::plan::{Wait, requeue_after_seconds};
use crate::base::{ActGate, may_act};
use crate::inventory::Inventory;
use crate::lambda_stage::round::{ActScope, Round, RoundOptions, round};
use crate::probe::TcpProber;
use crate::runtime::round::{AFTER_ACTIONS, owner_of};

/// At most this many hashing rounds before a plan is printed (one per artifact suffices).
pub(super) const HASH_ROUNDS: usize = 3;
/// `apply`: a failed action or observation is retried after this (doubling) delay...
const RETRY_BASE: Duration = Duration::from_secs(2);
/// ... at most this many times in a row before `apply` gives up with exit code 1.
const MAX_CONSECUTIVE_FAILURES: u32 = 5;

/// What both commands share: the AWS adapters, the health prober and the settings they came
/// from.
pub(super) struct Session {
    aws: AwsProvider,
    pub(super) cluster_id: String,
    pub(super) prober: TcpProber,
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
            prober: TcpProber::new(settings.probe.probe_settings()),
            cluster_id: settings.cluster_id,
        })
    }

    /// A fresh inventory per object: each is planned against AWS as it is now.
    pub(super) fn inventory(&self) -> Inventory {
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
    let documents = match super::manifest::read_documents(&args.file) {
        Ok(documents) => documents,
        Err(error) => return printer.fatal(&error.to_string()),
    };
    let session = match Session::start(&args.aws).await {
        Ok(session) => session,
        Err(error) => return printer.fatal(&error),
    };
    for document in &documents {
        match document {
            Document::LambdaStage(stage) => printer.report(plan_stage(&session, stage).await),
            Document::SpotFleet(fleet) => {
                printer
                    .report(super::fleet::plan_fleet(&session, fleet, args.show_user_data).await);
            }
            Document::StaticSite(site) => {
                printer.report(super::site::plan_site(&session, site).await);
            }
        }
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
    conclude(
        &mut report,
        Ok(plan_verdict(
            plan.stalled.is_some(),
            !plan.actions.is_empty() || !plan.waits.is_empty() || !plan.drift.is_empty(),
        )),
    );
    report.set_plan(&plan, &status);
    report
}

/// What `plan` says of an object: stalled, changes pending, or in sync.
pub(super) fn plan_verdict(stalled: bool, pending: bool) -> (u8, &'static str) {
    if stalled {
        (exit::NOT_READY, "Stalled")
    } else if pending {
        (exit::CHANGES_PENDING, "ChangesPending")
    } else {
        (exit::IN_SYNC, "InSync")
    }
}

/// `stagehand apply -f`.
pub async fn apply(args: &ApplyArgs) -> u8 {
    let mut printer = Printer::new(args.plan.output);
    let documents = match super::manifest::read_documents(&args.plan.file) {
        Ok(documents) => documents,
        Err(error) => return printer.fatal(&error.to_string()),
    };
    let session = match Session::start(&args.plan.aws).await {
        Ok(session) => session,
        Err(error) => return printer.fatal(&error),
    };
    let deadline = Instant::now() + args.timeout;
    for document in &documents {
        match document {
            Document::LambdaStage(stage) => {
                let report = apply_stage(&session, stage, deadline, &printer).await;
                printer.report(report);
            }
            Document::SpotFleet(fleet) => {
                let report = super::fleet::apply_fleet(
                    &session,
                    fleet,
                    deadline,
                    &printer,
                    args.plan.show_user_data,
                )
                .await;
                printer.report(report);
            }
            Document::StaticSite(site) => {
                let report = super::site::apply_site(&session, site, deadline, &printer).await;
                printer.report(report);
            }
        }
    }
    printer.finish_apply()
}

/// What `apply` needs to know of one round, whatever the kind.
#[derive(Debug, Default)]
pub(super) struct RoundView {
    /// The action that failed, with why.
    pub failure: Option<String>,
    pub stalled: bool,
    /// Some action ran.
    pub acted: bool,
    /// What AWS is still doing.
    pub waits: Vec<Wait>,
    /// The plan found drift (under ObserveOnly it stays).
    pub drift: bool,
}

impl RoundView {
    /// A round that ran: the action that failed (its kind, and why) if any, whether it is
    /// stalled, whether some action ran, the waits, whether drift was found.
    pub(super) fn after(
        failure: Option<(&str, &dyn std::error::Error)>,
        stalled: bool,
        acted: bool,
        waits: &[Wait],
        drift: bool,
    ) -> Self {
        Self {
            failure: failure.map(|(kind, error)| format!("{kind} failed: {}", one_line(error))),
            stalled,
            acted,
            waits: waits.to_vec(),
            drift,
        }
    }

    /// A round that refused to run for a reason only a human can fix.
    pub(super) fn stalled() -> Self {
        Self {
            stalled: true,
            ..Self::default()
        }
    }
}

/// One object's rounds, as `apply` runs them.
pub(super) trait Rounds {
    /// Runs the next round, printing each action as it starts; what it came to, or why it could
    /// not run at all (AWS could not be read).
    async fn next(&mut self, printer: &Printer) -> Result<RoundView, String>;
}

/// Runs rounds until the object settles: the exit code and result, or the error `apply` gave up
/// on (too many failures in a row, or the deadline).
pub(super) async fn converge(
    rounds: &mut impl Rounds,
    gate: ActGate,
    deadline: Instant,
    printer: &Printer,
) -> Result<(u8, &'static str), String> {
    let mut failures = 0_u32;
    loop {
        let error = match rounds.next(printer).await {
            Ok(view) => match view.failure {
                Some(failure) => failure,
                None => match next_step(&view, gate, deadline) {
                    Step::Done(exit_code, result) => return Ok((exit_code, result)),
                    Step::LookAgain(wait) => {
                        failures = 0;
                        // The wait actually taken: right after actions it is shorter than
                        // what the plan asks for while waiting on AWS.
                        for w in &view.waits {
                            printer.progress(&format!(
                                "  waiting for {} ({}), looking again in {}s",
                                w.subject,
                                w.reason,
                                wait.as_secs()
                            ));
                        }
                        // The product's pacing between rounds (Lambda allows one update per
                        // function at a time; CloudFormation takes minutes; instances take
                        // a while to prove healthy), as the controller's requeue does.
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                },
            },
            Err(error) => error,
        };
        failures += 1;
        match retry_after(failures, deadline) {
            Some(delay) => {
                printer.progress(&format!("  {error}; retrying in {}s", delay.as_secs()));
                tokio::time::sleep(delay).await;
            }
            None => return Err(error),
        }
    }
}

/// A LambdaStage's rounds for `apply`.
struct StageRounds<'a> {
    session: &'a Session,
    stage: &'a LambdaStage,
    gate: ActGate,
    inventory: Inventory,
    status: Option<LambdaStageStatus>,
    report: StageReport,
}

impl Rounds for StageRounds<'_> {
    async fn next(&mut self, printer: &Printer) -> Result<RoundView, String> {
        self.report.rounds += 1;
        let round = round(
            &self.inventory,
            self.stage,
            self.status.as_ref(),
            self.session.options(self.gate, ActScope::Gated),
            |action| printer.progress(&format!("  → {}: {action}", action.kind())),
        )
        .await
        .map_err(|error| format!("cannot observe AWS: {}", one_line(&error)))?;
        self.report
            .applied
            .extend(round.report.done.iter().cloned());
        self.report.set_plan(&round.plan, &round.status);
        self.status = Some(round.status.clone());
        let failure = round.report.failure.as_ref();
        Ok(RoundView::after(
            failure.map(|(action, error)| (action.kind(), error as &dyn std::error::Error)),
            round.plan.stalled.is_some(),
            !round.report.done.is_empty(),
            &round.plan.waits,
            !round.plan.drift.is_empty(),
        ))
    }
}

async fn apply_stage(
    session: &Session,
    stage: &LambdaStage,
    deadline: Instant,
    printer: &Printer,
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
    let mut rounds = StageRounds {
        session,
        stage,
        gate,
        inventory: session.inventory(),
        status: None,
        report,
    };
    let outcome = converge(&mut rounds, gate, deadline, printer).await;
    conclude(&mut rounds.report, outcome);
    rounds.report
}

/// What `apply` does after a round that did not fail.
enum Step {
    /// Stop with this exit code and result.
    Done(u8, &'static str),
    /// Run another round after this wait.
    LookAgain(Duration),
}

fn next_step(view: &RoundView, gate: ActGate, deadline: Instant) -> Step {
    if view.stalled {
        return Step::Done(exit::NOT_READY, "Stalled");
    }
    let wait = if view.acted {
        Some(AFTER_ACTIONS)
    } else {
        requeue_after_seconds(&view.waits).map(Duration::from_secs)
    };
    let Some(wait) = wait else {
        return if gate == ActGate::ObserveOnly && view.drift {
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
