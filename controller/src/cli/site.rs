//! The StaticSite side of `stagehand plan` and `stagehand apply`: the controller's own round
//! ([`crate::static_site::round::round`]) without a cluster. `plan` runs a round that writes
//! nothing (it downloads and checks the archive, and hashes prefix objects S3 has no checksum
//! for: reads only) and lists every key it would upload, copy, restore or delete and every path
//! it would invalidate; `apply` runs rounds until the site is Ready or stalls, paced as the
//! controller's requeue paces them.
//!
//! No status is kept between runs: each run finds the site's distribution again through its
//! `CallerReference` and comment, and its revisions through the records in the bucket, exactly
//! as the controller does after a restart.

use std::time::Instant;

use jiff::Timestamp;
use kube::ResourceExt;
use stagehand_crds::{StaticSite, StaticSiteStatus};

use super::plan::{HASH_ROUNDS, RoundView, Rounds, Session, converge, plan_verdict};
use super::report::{ObjectReport, Printer, conclude};
use super::site_report::SiteReport;
use super::{exit, one_line};
use crate::aws::s3::Sha256Digest;
use crate::base::{ActGate, Classify, ErrorClass, may_act};
use crate::inventory::Inventory;
use crate::runtime::round::owner_of;
use crate::static_site::StaticSiteError;
use crate::static_site::build::ArchiveLimits;
use crate::static_site::cache::SiteCache;
use crate::static_site::round::{Round, RoundOptions, round};

/// What one site's rounds share: the builds and manifests already read, and where archive
/// content is spilled while it uploads (the system's temporary directory, as for `run`).
struct SiteState {
    cache: SiteCache,
    scratch: std::path::PathBuf,
}

impl SiteState {
    fn new() -> Self {
        Self {
            cache: SiteCache::new(),
            scratch: std::env::temp_dir(),
        }
    }

    /// The options of a round run by the CLI: never a refresh (every object gets a fresh
    /// inventory), the clock, and `dry_run` for `plan`.
    fn options<'a>(
        &'a self,
        session: &'a Session,
        gate: ActGate,
        dry_run: bool,
    ) -> RoundOptions<'a> {
        RoundOptions {
            cluster_id: &session.cluster_id,
            gate,
            refresh: false,
            now: Timestamp::now(),
            dry_run,
            cache: &self.cache,
            scratch: &self.scratch,
            limits: ArchiveLimits::default(),
        }
    }
}

/// The site as the rounds see it. A distribution's `CallerReference` derives from
/// `metadata.uid`, which only the API server assigns: a manifest exported from a cluster keeps
/// its uid (so `apply` finds the distribution that cluster's controller created), any other
/// gets a stable one derived from the owner, so that every run finds the distribution the first
/// created and two sites never share a reference.
fn with_uid(site: &StaticSite) -> StaticSite {
    let mut site = site.clone();
    if site.metadata.uid.as_deref().is_none_or(str::is_empty) {
        let digest = Sha256Digest::of(owner_of(&site).as_bytes()).to_hex();
        site.metadata.uid = Some(format!("cli-{}", &digest[..32]));
    }
    site
}

/// The report of `site` before any round, the site with its uid, and its gate.
fn start(site: &StaticSite) -> (SiteReport, StaticSite, ActGate) {
    let mut report = SiteReport::new(site, &owner_of(site));
    let gate = may_act(site.annotations(), site.spec.lifecycle.management);
    report.gate = gate;
    (report, with_uid(site), gate)
}

/// `stagehand plan` for one site: what one round would do, nothing written.
pub(super) async fn plan_site(session: &Session, site: &StaticSite) -> SiteReport {
    let (mut report, site, gate) = start(site);
    if gate == ActGate::Paused {
        report.settle(exit::IN_SYNC, "Paused", None);
        return report;
    }
    let inventory = session.inventory();
    let state = SiteState::new();
    let mut rounds = 0;
    let result = loop {
        rounds += 1;
        let result = round(
            &inventory,
            &site,
            None,
            state.options(session, gate, true),
            |_| {},
        )
        .await;
        // A round that hashed prefix objects is planned again with the hashes.
        match &result {
            Ok(round) if !round.report.done.is_empty() && rounds <= HASH_ROUNDS => {}
            _ => break result,
        }
    };
    match result {
        Ok(round) => {
            let plan = &round.plan;
            let failure = round
                .report
                .failure
                .as_ref()
                .map(|(action, error)| format!("{action}: {}", one_line(error)));
            let verdict = plan_verdict(
                plan.stalled.is_some(),
                !plan.actions.is_empty() || !plan.waits.is_empty() || !plan.drift.is_empty(),
            );
            conclude(&mut report, failure.map_or(Ok(verdict), Err));
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

/// A StaticSite's rounds for `apply`.
struct SiteRounds<'a> {
    session: &'a Session,
    site: StaticSite,
    gate: ActGate,
    inventory: Inventory,
    state: SiteState,
    status: Option<StaticSiteStatus>,
    report: SiteReport,
}

impl SiteRounds<'_> {
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

    fn stalled(&mut self, error: &StaticSiteError) -> RoundView {
        self.report.set_stall(error);
        RoundView::stalled()
    }
}

impl Rounds for SiteRounds<'_> {
    async fn next(&mut self, printer: &Printer) -> Result<RoundView, String> {
        self.report.rounds += 1;
        let result = round(
            &self.inventory,
            &self.site,
            self.status.as_ref(),
            self.state.options(self.session, self.gate, false),
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

/// `stagehand apply` for one site: rounds until Ready, a stall, or the deadline.
pub(super) async fn apply_site(
    session: &Session,
    site: &StaticSite,
    deadline: Instant,
    printer: &Printer,
) -> SiteReport {
    let (mut report, site, gate) = start(site);
    if gate == ActGate::Paused {
        report.settle(exit::NOT_READY, "Paused", None);
        return report;
    }
    printer.progress(&format!("StaticSite {}: applying", report.id()));
    let mut rounds = SiteRounds {
        session,
        site,
        gate,
        inventory: session.inventory(),
        state: SiteState::new(),
        status: None,
        report,
    };
    let outcome = converge(&mut rounds, gate, deadline, printer).await;
    conclude(&mut rounds.report, outcome);
    rounds.report
}
