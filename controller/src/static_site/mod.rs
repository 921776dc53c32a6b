//! `StaticSite`: a built site in a versioned, private S3 bucket behind CloudFront.
//!
//! The reconcile has the shape every kind shares: observe → plan → act → report, run as one
//! [`round`](round::round).
//! - `build`: the source archive read as a stream and checked (names, links, duplicates,
//!   bombs), each file's key, size and SHA-256;
//! - `metadata`: `Content-Type` and `Cache-Control` of every key, rules compiled once per spec;
//! - `manifest`: the revision manifest stored in the bucket, the served-revision record, and
//!   the derived revision label;
//! - `cache`: the builds and manifests rounds have already read;
//! - `observe`: the bucket, OAC, distribution, source, records and one version listing;
//! - `observed`: the plain data observe gathers;
//! - `plan/`: `plan(spec, context, desired, observed) -> Plan`, pure, with its tables, and
//!   `teardown` for deletion;
//! - `act`: one function per action; transfers with bounded concurrency;
//! - `status`: the status written after every round (pure);
//! - this module: the [`StaticSiteReconciler`] (gate, events, metrics, status write, requeue,
//!   deletion as rounds of `plan::teardown`).

pub mod act;
pub mod build;
pub mod cache;
pub mod error;
pub mod manifest;
pub mod metadata;
pub mod observe;
pub mod observed;
pub mod plan;
pub mod round;
pub(crate) mod status;

pub use self::error::StaticSiteError;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use kube::runtime::controller::Action as Requeue;
use kube::{Resource, ResourceExt};
use stagehand_crds::{DeletionPolicy, StaticSite};

use self::build::ArchiveLimits;
use self::cache::SiteCache;
use self::plan::{Action, TeardownScope};
use self::round::{Round, RoundOptions, round, teardown_round};
use crate::base::{ActGate, may_act};
use crate::feed::{FeedInterest, Watched};
use crate::runtime::requeue::resync_action;
use crate::runtime::round::{
    RefreshTracker, RoundEnd, fail_early, paused_status, requeue_after, write_status,
};
use crate::runtime::{Context, Reconciler, effective_deletion_policy};

/// The kind label of metrics.
const KIND: &str = "StaticSite";

/// The StaticSite reconciler. S3 and CloudFront are read through the `Context`'s inventory;
/// builds and manifests already read are kept in its [`SiteCache`].
#[derive(Debug)]
pub struct StaticSiteReconciler {
    refreshes: RefreshTracker,
    cache: SiteCache,
    /// Where archive content is spilled while it uploads (the system's temporary directory).
    scratch: PathBuf,
    limits: ArchiveLimits,
}

impl Default for StaticSiteReconciler {
    fn default() -> Self {
        Self {
            refreshes: RefreshTracker::default(),
            cache: SiteCache::new(),
            scratch: std::env::temp_dir(),
            limits: ArchiveLimits::default(),
        }
    }
}

impl StaticSiteReconciler {
    pub fn new() -> Self {
        Self::default()
    }

    fn options<'a>(&'a self, ctx: &'a Context, gate: ActGate, refresh: bool) -> RoundOptions<'a> {
        RoundOptions {
            cluster_id: &ctx.settings.cluster_id,
            gate,
            refresh,
            now: Timestamp::now(),
            dry_run: false,
            cache: &self.cache,
            scratch: &self.scratch,
            limits: self.limits,
        }
    }
}

/// The `site` label of the site metrics: `<namespace>/<name>`.
fn site_label(site: &StaticSite) -> String {
    format!(
        "{}/{}",
        site.namespace().unwrap_or_default(),
        site.name_any()
    )
}

/// Metrics of one round: drift, actions, and the site's own (uploads, invalidation paths,
/// rollbacks, sync duration, served revision).
fn record_metrics(ctx: &Context, site: &StaticSite, round: &Round, started: Instant) {
    for drift in &round.plan.drift {
        ctx.metrics.record_drift(KIND, drift.field.as_str());
    }
    let label = site_label(site);
    let metrics = &ctx.metrics.site;
    let mut synced = false;
    for action in &round.report.done {
        ctx.metrics.record_action(KIND, action.facts().metric_label);
        match action {
            Action::UploadObjects { objects } => {
                let bytes = objects.iter().map(|o| o.size).sum();
                metrics.record_uploads(&label, objects.len(), bytes);
            }
            Action::Invalidate { paths, .. } => metrics.record_invalidation(&label, paths.len()),
            Action::RecordServed { served } => {
                synced = true;
                if served.rolled_back_from.is_some()
                    && site.status.as_ref().and_then(|s| s.revision.as_ref())
                        != Some(&served.revision)
                {
                    metrics.record_rollback(&label);
                }
            }
            _ => {}
        }
    }
    if synced {
        metrics
            .sync_duration_seconds
            .observe(started.elapsed().as_secs_f64());
    }
    metrics.record_last_invalidation(&label, round.status.last_invalidation.as_ref());
    let before = site.status.as_ref().and_then(|s| s.revision.clone());
    if before != round.status.revision {
        if let Some(old) = &before {
            let _ = ctx
                .metrics
                .site_revision_info
                .remove_label_values(&[label.as_str(), old.as_str()]);
        }
        if let Some(new) = &round.status.revision {
            ctx.metrics
                .site_revision_info
                .with_label_values(&[label.as_str(), new.as_str()])
                .set(1);
        }
    }
}

/// An Event per action done.
async fn report_actions(ctx: &Context, site: &StaticSite, done: &[Action]) {
    for action in done {
        let facts = action.facts();
        ctx.events()
            .action(
                site,
                facts.event_reason,
                facts.event_verb,
                &action.to_string(),
            )
            .await;
    }
}

impl Reconciler<StaticSite> for StaticSiteReconciler {
    type Error = StaticSiteError;

    /// A site relies on the controller-wide event queue (owned by the feed, issue 15): a new
    /// source archive or an object under the source prefix, a write to its bucket's
    /// configuration or to its distribution reconciles it at once.
    fn feed_interest(&self, site: &StaticSite) -> Option<FeedInterest> {
        let spec = &site.spec;
        let source = &spec.source;
        let mut watches = vec![Watched::Bucket(spec.bucket.name.clone())];
        if let Some(archive) = &source.archive {
            watches.push(Watched::S3Object {
                bucket: source.bucket.clone(),
                key: archive.clone(),
            });
        }
        if let Some(prefix) = &source.prefix {
            watches.push(Watched::S3Prefix {
                bucket: source.bucket.clone(),
                prefix: prefix.clone(),
            });
        }
        let distribution = spec.distribution.id.clone().or_else(|| {
            site.status
                .as_ref()
                .and_then(|s| s.distribution.as_ref())
                .map(|d| d.id.clone())
        });
        watches.extend(distribution.map(Watched::Distribution));
        Some(FeedInterest {
            region: spec.region.clone(),
            watches,
        })
    }

    async fn apply(
        &self,
        site: Arc<StaticSite>,
        ctx: Arc<Context>,
    ) -> Result<Requeue, StaticSiteError> {
        let spec = &site.spec;
        let gate = may_act(site.annotations(), spec.lifecycle.management);
        if gate == ActGate::Paused {
            let status = paused_status(
                site.status.as_ref(),
                site.meta().generation,
                Timestamp::now(),
            );
            write_status(&ctx, site.as_ref(), &status).await?;
            return Ok(Requeue::await_change());
        }
        let started = Instant::now();
        let options = self.options(&ctx, gate, self.refreshes.requested(site.as_ref()));
        let round = match round(&ctx.inventory, &site, site.status.as_ref(), options, |_| {}).await
        {
            Ok(round) => round,
            Err(error) => {
                return Err(fail_early(&ctx, site.as_ref(), site.status.as_ref(), error).await);
            }
        };
        record_metrics(&ctx, &site, &round, started);
        report_actions(&ctx, &site, &round.report.done).await;
        write_status(&ctx, site.as_ref(), &round.status).await?;

        if let Some((action, error)) = round.report.failure {
            ctx.events()
                .failure(site.as_ref(), action.facts().event_verb, &error)
                .await;
            return Err(error);
        }
        if let Some(stall) = &round.plan.stalled
            && gate.may_act()
        {
            let error = StaticSiteError::Stalled {
                reason: stall.reason,
                message: stall.message.clone(),
            };
            ctx.events()
                .failure(site.as_ref(), "Reconcile", &error)
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

    /// Deletion as rounds of `plan::teardown`: with `Delete` (the default for what the site
    /// created) the distribution is disabled, awaited, deleted with its OAC, and the bucket
    /// emptied of every version and deleted; the finalizer stays (`TeardownPending`, retried
    /// with the runtime's backoff, never a blocking loop) until a round plans nothing and waits
    /// on nothing. `Retain`, or `ObserveOnly` (which never writes), leaves both, with an Event.
    async fn cleanup(
        &self,
        site: Arc<StaticSite>,
        ctx: Arc<Context>,
    ) -> Result<Requeue, StaticSiteError> {
        let spec = &site.spec;
        let gate = may_act(site.annotations(), spec.lifecycle.management);
        if gate == ActGate::Paused {
            return Err(StaticSiteError::Paused);
        }
        self.refreshes.forget(site.as_ref());
        ctx.metrics.forget_site(&site_label(&site));
        let policy = spec.lifecycle.deletion_policy;
        let scope = TeardownScope {
            bucket: effective_deletion_policy(policy, spec.bucket.create) == DeletionPolicy::Delete,
            distribution: effective_deletion_policy(policy, spec.distribution.create)
                == DeletionPolicy::Delete,
        };
        let retained = if gate == ActGate::ObserveOnly {
            Some("management ObserveOnly")
        } else if !scope.bucket && !scope.distribution {
            Some("deletionPolicy Retain")
        } else {
            None
        };
        if let Some(why) = retained {
            ctx.events()
                .action(
                    site.as_ref(),
                    "SiteRetained",
                    "Delete",
                    &format!("{why}: the site's bucket and distribution are left in AWS"),
                )
                .await;
            return Ok(Requeue::await_change());
        }
        let options = self.options(&ctx, gate, true);
        let (plan, report) = teardown_round(&ctx.inventory, &site, scope, options, |_| {}).await?;
        for action in &report.done {
            ctx.metrics.record_action(KIND, action.facts().metric_label);
        }
        report_actions(&ctx, &site, &report.done).await;
        if let Some((action, error)) = report.failure {
            ctx.events()
                .failure(site.as_ref(), action.facts().event_verb, &error)
                .await;
            return Err(error);
        }
        if plan.actions.is_empty() && plan.waits.is_empty() {
            if let Some(revision) = site.status.as_ref().and_then(|s| s.revision.as_ref()) {
                let label = site_label(&site);
                let _ = ctx
                    .metrics
                    .site_revision_info
                    .remove_label_values(&[label.as_str(), revision.as_str()]);
            }
            return Ok(Requeue::await_change());
        }
        let pending: Vec<String> = plan
            .actions
            .iter()
            .map(ToString::to_string)
            .chain(
                plan.waits
                    .iter()
                    .map(|w| format!("{} ({})", w.subject, w.reason)),
            )
            .collect();
        Err(StaticSiteError::TeardownPending {
            pending: pending.join("; "),
        })
    }
}
