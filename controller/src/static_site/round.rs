//! One StaticSite round — observe → plan → act → next status — written once. The reconciler and
//! the tests run exactly this; what differs between them is only where the status goes and
//! when the next round comes. Deletion runs [`teardown_round`]: the same observe and act, with
//! `plan::teardown` deciding.

use std::path::Path;

use jiff::Timestamp;
use kube::Resource;
use stagehand_crds::{StaticSite, StaticSiteStatus};

use super::act::{ActReport, Actor};
use super::build::ArchiveLimits;
use super::cache::SiteCache;
use super::error::StaticSiteError;
use super::metadata::MetadataRules;
use super::observe::{Observer, observe};
use super::observed::Observed;
use super::plan::{Action, Plan, PlanContext, TeardownScope, plan, teardown};
use super::status::{StatusInputs, next_status};
use crate::base::{ActGate, ReconcileOutcome};
use crate::inventory::{Inventory, Listings};
use crate::runtime::queue_clock::noticed_at;
use crate::runtime::round::{owner_of, refresh_for_round, spec_changed};

/// How one round is run.
#[derive(Clone, Copy, Debug)]
pub struct RoundOptions<'a> {
    /// `stagehand.dev/cluster` value of this controller.
    pub cluster_id: &'a str,
    pub gate: ActGate,
    /// A `stagehand.dev/refresh` value not acted on yet: read AWS afresh, as for a spec change.
    pub refresh: bool,
    /// When the round runs (a new manifest's `createdAt`).
    pub now: Timestamp,
    /// Plan without writing (`stagehand plan`): only actions that merely read AWS run (the
    /// hashing of prefix objects, without which the plan cannot tell what changed).
    pub dry_run: bool,
    /// Builds and manifests already read (shared by every site of the process).
    pub cache: &'a SiteCache,
    /// Where archive content is spilled while it uploads.
    pub scratch: &'a Path,
    pub limits: ArchiveLimits,
}

/// What one round saw, decided, did, and the status that follows.
#[derive(Debug)]
pub struct Round {
    pub observed: Observed,
    pub plan: Plan,
    pub report: ActReport,
    pub outcome: ReconcileOutcome,
    pub status: StaticSiteStatus,
}

/// Runs one round for `site`, whose status is `status`, calling `on_start` before each action.
/// Fails only when a `cacheControl` rule does not compile, AWS could not be read, or a record
/// under `.stagehand/` cannot be trusted; a failed action is in the round's report.
pub async fn round(
    inventory: &Inventory,
    site: &StaticSite,
    status: Option<&StaticSiteStatus>,
    options: RoundOptions<'_>,
    on_start: impl FnMut(&Action),
) -> Result<Round, StaticSiteError> {
    let spec = &site.spec;
    let rules = MetadataRules::compile(&spec.cache_control)?;
    refresh_for_round(
        inventory,
        &spec.region,
        &[Listings::S3, Listings::CloudFront],
        options.refresh,
        spec_changed(site, status),
    );
    let (observed, context) = observe_site(inventory, site, status, options, true).await?;
    let plan = plan(spec, &context, &rules, &observed);
    let report = act(inventory, site, &observed, &plan, options, on_start).await;
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
        distribution_created: spec.distribution.create,
        generation: site.meta().generation,
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

/// One round of deleting `site`: what `plan::teardown` decides for `scope`, acted on. The
/// site is gone from AWS (as far as `scope` goes) when the plan has no action and no wait.
pub async fn teardown_round(
    inventory: &Inventory,
    site: &StaticSite,
    scope: TeardownScope,
    options: RoundOptions<'_>,
    on_start: impl FnMut(&Action),
) -> Result<(Plan, ActReport), StaticSiteError> {
    inventory.refresh(
        &site.spec.region,
        noticed_at(),
        &[Listings::S3, Listings::CloudFront],
    );
    let (observed, context) =
        observe_site(inventory, site, site.status.as_ref(), options, false).await?;
    let plan = teardown(&site.spec, &context, scope, &observed);
    let report = act(inventory, site, &observed, &plan, options, on_start).await;
    Ok((plan, report))
}

/// Observes the site and says who plans for it.
async fn observe_site(
    inventory: &Inventory,
    site: &StaticSite,
    status: Option<&StaticSiteStatus>,
    options: RoundOptions<'_>,
    read_source: bool,
) -> Result<(Observed, PlanContext), StaticSiteError> {
    let owner = owner_of(site);
    let uid = site.meta().uid.clone().unwrap_or_default();
    let observer = Observer {
        inventory,
        cache: options.cache,
        status,
        owner: &owner,
        uid: &uid,
        limits: options.limits,
        read_source,
    };
    let observed = observe(&observer, &site.spec).await?;
    let context = PlanContext {
        owner: owner.clone(),
        cluster_id: options.cluster_id.to_owned(),
        uid,
        generation: site.meta().generation.unwrap_or_default(),
        gate: options.gate,
        now: options.now.to_string(),
    };
    Ok((observed, context))
}

/// Runs the plan's actions unless the gate forbids it or the intent record must reach status
/// first; in a dry run only those that merely read.
async fn act(
    inventory: &Inventory,
    site: &StaticSite,
    observed: &Observed,
    plan: &Plan,
    options: RoundOptions<'_>,
    on_start: impl FnMut(&Action),
) -> ActReport {
    if plan.record_first && !options.dry_run {
        // The intent record goes to status first (this round's status write): nothing runs
        // before the API server has it.
        return ActReport::default();
    }
    let reads: Vec<Action>;
    let actions = if options.dry_run {
        reads = plan
            .actions
            .iter()
            .filter(|a| a.only_reads())
            .cloned()
            .collect();
        &reads
    } else {
        &plan.actions
    };
    if !options.gate.may_act() || actions.is_empty() {
        return ActReport::default();
    }
    let owner = owner_of(site);
    Actor {
        inventory,
        cache: options.cache,
        spec: &site.spec,
        observed,
        owner: &owner,
        cluster_id: options.cluster_id,
        scratch: options.scratch,
        limits: options.limits,
    }
    .execute_reporting(actions, on_start)
    .await
}
