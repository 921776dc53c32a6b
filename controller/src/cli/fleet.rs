//! The SpotFleet side of `stagehand plan` and `stagehand apply`: the controller's own round
//! ([`crate::spot_fleet::round::round`]) without a cluster. `plan` runs one round that reads
//! EC2 (and probes `healthCheck.tcpPort`) and runs no action; `apply` runs rounds until the
//! fleet is Ready or stalls, paced as the controller's requeue paces them. A round that fails
//! for a reason only a human can fix (user data too large, a probe the loopback guard refused)
//! is reported as a stall, not retried.

use std::time::Instant;

use jiff::Timestamp;
use kube::ResourceExt;
use stagehand_crds::{SpotFleet, SpotFleetStatus};

use super::fleet_report::FleetReport;
use super::plan::{RoundView, Rounds, Session, converge, plan_verdict};
use super::report::{ObjectReport, Printer, conclude};
use super::{exit, one_line};
use crate::base::{ActGate, Classify, ErrorClass, may_act};
use crate::inventory::Inventory;
use crate::runtime::round::owner_of;
use crate::spot_fleet::SpotFleetError;
use crate::spot_fleet::round::{Round, RoundOptions, round};

/// The options of a round run by the CLI: never a refresh (every object gets a fresh
/// inventory), the clock, and `dry_run` for `plan`.
fn options(session: &Session, gate: ActGate, dry_run: bool) -> RoundOptions<'_> {
    RoundOptions {
        cluster_id: &session.cluster_id,
        gate,
        refresh: false,
        prober: &session.prober,
        now: Timestamp::now(),
        dry_run,
    }
}

/// The report of `fleet` before any round, and its gate.
fn start(fleet: &SpotFleet, show_user_data: bool) -> (FleetReport, ActGate) {
    let mut report = FleetReport::new(fleet, &owner_of(fleet), show_user_data);
    let gate = may_act(fleet.annotations(), fleet.spec.lifecycle.management);
    report.gate = gate;
    (report, gate)
}

/// `stagehand plan` for one fleet: what one round would do, nothing done.
pub(super) async fn plan_fleet(
    session: &Session,
    fleet: &SpotFleet,
    show_user_data: bool,
) -> FleetReport {
    let (mut report, gate) = start(fleet, show_user_data);
    if gate == ActGate::Paused {
        report.settle(exit::IN_SYNC, "Paused", None);
        return report;
    }
    let inventory = session.inventory();
    match round(
        &inventory,
        fleet,
        None,
        options(session, gate, true),
        |_| {},
    )
    .await
    {
        Ok(round) => {
            let plan = &round.plan;
            conclude(
                &mut report,
                Ok(plan_verdict(
                    plan.stalled.is_some(),
                    !plan.actions.is_empty() || !plan.waits.is_empty() || !plan.drift.is_empty(),
                )),
            );
            report.set_round(&round);
        }
        Err(error) if error.class() == ErrorClass::Stalled => report.set_stall(&error),
        Err(error) => conclude(
            &mut report,
            Err(format!("cannot observe AWS: {}", one_line(&error))),
        ),
    }
    report
}

/// A SpotFleet's rounds for `apply`.
struct FleetRounds<'a> {
    session: &'a Session,
    fleet: &'a SpotFleet,
    gate: ActGate,
    inventory: Inventory,
    status: Option<SpotFleetStatus>,
    report: FleetReport,
}

impl FleetRounds<'_> {
    fn took(&mut self, round: &Round) -> RoundView {
        self.report
            .applied
            .extend(round.report.done.iter().cloned());
        self.report.set_round(round);
        self.status = Some(round.status.clone());
        let failure = round.report.failure.as_ref();
        RoundView::after(
            failure.map(|(action, error)| (action.facts().kind, error as &dyn std::error::Error)),
            round.plan.stalled.is_some(),
            !round.report.done.is_empty(),
            &round.plan.waits,
            !round.plan.drift.is_empty(),
        )
    }

    fn stalled(&mut self, error: &SpotFleetError) -> RoundView {
        self.report.set_stall(error);
        RoundView::stalled()
    }
}

impl Rounds for FleetRounds<'_> {
    async fn next(&mut self, printer: &Printer) -> Result<RoundView, String> {
        self.report.rounds += 1;
        let result = round(
            &self.inventory,
            self.fleet,
            self.status.as_ref(),
            options(self.session, self.gate, false),
            |action| printer.progress(&format!("  → {}: {action}", action.facts().kind)),
        )
        .await;
        match result {
            Ok(round) => Ok(self.took(&round)),
            Err(error) if error.class() == ErrorClass::Stalled => Ok(self.stalled(&error)),
            Err(error) => Err(format!("cannot observe AWS: {}", one_line(&error))),
        }
    }
}

/// `stagehand apply` for one fleet: rounds until Ready, a stall, or the deadline.
pub(super) async fn apply_fleet(
    session: &Session,
    fleet: &SpotFleet,
    deadline: Instant,
    printer: &Printer,
    show_user_data: bool,
) -> FleetReport {
    let (mut report, gate) = start(fleet, show_user_data);
    if gate == ActGate::Paused {
        report.settle(exit::NOT_READY, "Paused", None);
        return report;
    }
    printer.progress(&format!("SpotFleet {}: applying", report.id()));
    let mut rounds = FleetRounds {
        session,
        fleet,
        gate,
        inventory: session.inventory(),
        status: None,
        report,
    };
    let outcome = converge(&mut rounds, gate, deadline, printer).await;
    conclude(&mut rounds.report, outcome);
    rounds.report
}
