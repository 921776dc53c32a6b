//! The status a StaticSite round writes: the served revision (and what a rollback replaced),
//! the revisions kept with their object counts and bytes, what the last deploy changed, the
//! last invalidation, the distribution, and the conditions. Pure: the caller passes the clock.
//! Nothing in it changes while the site is converged, so a stable site makes no watch traffic.

use jiff::Timestamp;
use stagehand_crds::CommonStatus;
use stagehand_crds::static_site::{
    DistributionStatus, InvalidationStatus, RevisionStatus, SourceArchiveStatus, StaticSiteStatus,
    SyncStatus,
};

use super::act::ActReport;
use super::manifest::{Manifest, manifest_key};
use super::observed::{Observed, SourceState};
use super::plan::{Action, Plan};
use crate::base::conditions::{ReconcileOutcome, set_condition};
use crate::runtime::round::KindStatus;
use crate::runtime::status::{FeedUse, next_common_status, set_event_feed_condition};

/// What a site gets from a healthy event feed (`EventFeedReady`'s message): its reads do not
/// slow down, changes to what it watches reconcile it at once.
pub const FEED_USE: FeedUse = FeedUse {
    holding: "source",
    while_healthy: "changes to its source, bucket and distribution reconcile it at once; drift is still read at every resync",
};

impl KindStatus for StaticSiteStatus {
    fn common(&self) -> &CommonStatus {
        &self.common
    }

    fn common_mut(&mut self) -> &mut CommonStatus {
        &mut self.common
    }
}

/// Everything a status is built from.
#[derive(Debug)]
pub struct StatusInputs<'a> {
    pub previous: Option<&'a StaticSiteStatus>,
    pub observed: &'a Observed,
    pub plan: &'a Plan,
    pub report: &'a ActReport,
    pub outcome: &'a ReconcileOutcome,
    /// Whether the distribution is one Stagehand creates (`distribution.create`).
    pub distribution_created: bool,
    pub generation: Option<i64>,
    pub now: Timestamp,
}

/// The next status.
pub fn next_status(inputs: &StatusInputs<'_>) -> StaticSiteStatus {
    let StatusInputs {
        previous,
        observed,
        plan,
        report,
        outcome,
        distribution_created,
        generation,
        now,
    } = *inputs;
    let mut common = next_common_status(previous.map(|p| &p.common), outcome, generation, now);
    for condition in &plan.conditions {
        set_condition(
            &mut common.conditions,
            condition.type_,
            condition.status,
            &condition.reason,
            &condition.message,
            generation,
            now,
        );
    }
    set_event_feed_condition(
        &mut common.conditions,
        &observed.event_feed,
        &observed.source_without_events,
        FEED_USE,
        generation,
        now,
    );
    let served_now = report.done.iter().find_map(|a| match a {
        Action::RecordServed { served } => Some(served),
        _ => None,
    });
    let (revision, rolled_back_from) = match served_now {
        Some(served) => (
            Some(served.revision.clone()),
            served.rolled_back_from.clone(),
        ),
        None => match &observed.served {
            Some(served) => (
                Some(served.record.revision.clone()),
                served.record.rolled_back_from.clone(),
            ),
            None => (None, None),
        },
    };
    StaticSiteStatus {
        common,
        revision,
        rolled_back_from,
        distribution: distribution_status(observed, report, distribution_created),
        revisions: revisions(observed, report),
        last_invalidation: last_invalidation(previous, observed, report),
        last_sync: last_sync(previous, plan, report),
        source_archive: source_archive(previous, observed, plan),
        pending_create: if report.done.iter().any(Action::tags_bucket) {
            None
        } else {
            plan.pending_create.clone()
        },
    }
}

/// The archive read this round and the revision built from it, once that revision is stored
/// (a later round); otherwise what status said, while the archive is unchanged.
fn source_archive(
    previous: Option<&StaticSiteStatus>,
    observed: &Observed,
    plan: &Plan,
) -> Option<SourceArchiveStatus> {
    let SourceState::Read(build) = &*observed.source else {
        return previous.and_then(|p| p.source_archive.clone());
    };
    let version = observed.source_archive.as_ref()?;
    let revision = plan.revision.as_ref()?;
    observed.manifest(revision)?;
    Some(SourceArchiveStatus {
        object: version.of(&build.location.bucket, &build.location.key),
        revision: revision.clone(),
    })
}

/// The distribution as this round left it.
fn distribution_status(
    observed: &Observed,
    report: &ActReport,
    created_by_stagehand: bool,
) -> Option<DistributionStatus> {
    if let Some(info) = &report.distribution {
        return Some(DistributionStatus {
            id: info.id.clone(),
            domain_name: Some(info.domain_name.clone()),
            status: Some(info.status.clone()),
            created_by_stagehand,
        });
    }
    if let Some(d) = &observed.distribution {
        return Some(DistributionStatus {
            id: d.id.clone(),
            domain_name: Some(d.domain_name.clone()),
            status: Some(d.status.clone()),
            created_by_stagehand,
        });
    }
    None
}

/// The stored revisions after this round, newest first: the manifests observed (less those
/// deleted this round), with the manifest written this round in place of its older version.
fn revisions(observed: &Observed, report: &ActReport) -> Vec<RevisionStatus> {
    let deleted: Vec<&String> = report
        .done
        .iter()
        .filter_map(|a| match a {
            Action::DeleteManifests { keys } => Some(keys.iter()),
            _ => None,
        })
        .flatten()
        .collect();
    let written = report.done.iter().find_map(|a| match a {
        Action::WriteManifest { manifest } => manifest.resolve(&report.written).ok(),
        _ => None,
    });
    let mut manifests: Vec<&Manifest> = observed
        .manifests
        .iter()
        .map(|m| &*m.manifest)
        .filter(|m| written.as_ref().is_none_or(|w| w.revision != m.revision))
        .chain(written.as_ref())
        .filter(|m| !deleted.contains(&&manifest_key(&m.revision)))
        .collect();
    manifests.sort_by(|a, b| {
        b.created_at
            .cmp(&a.created_at)
            .then(a.revision.cmp(&b.revision))
    });
    manifests
        .into_iter()
        .map(|m| RevisionStatus {
            revision: m.revision.clone(),
            manifest_key: manifest_key(&m.revision),
            objects: i64::try_from(m.objects.len()).unwrap_or(i64::MAX),
            bytes: i64::try_from(m.total_bytes()).unwrap_or(i64::MAX),
            deployed_at: Some(m.created_at.clone()),
        })
        .collect()
}

/// The invalidation created this round, else the last one as CloudFront reports it now.
fn last_invalidation(
    previous: Option<&StaticSiteStatus>,
    observed: &Observed,
    report: &ActReport,
) -> Option<InvalidationStatus> {
    if let Some(created) = &report.invalidation {
        return Some(InvalidationStatus {
            id: created.id.clone(),
            paths: i64::try_from(created.paths.len()).unwrap_or(i64::MAX),
            status: Some(created.status.clone()),
        });
    }
    let previous = previous.and_then(|p| p.last_invalidation.clone())?;
    Some(match &observed.invalidation {
        Some(now) if now.id == previous.id => InvalidationStatus {
            status: Some(now.status.clone()),
            ..previous
        },
        _ => previous,
    })
}

/// What the last round that changed content did; kept as it was by rounds that changed none.
fn last_sync(
    previous: Option<&StaticSiteStatus>,
    plan: &Plan,
    report: &ActReport,
) -> Option<SyncStatus> {
    let synced = report.failure.is_none()
        && report.done.iter().any(|a| {
            matches!(
                a,
                Action::UploadObjects { .. }
                    | Action::UpdateMetadata { .. }
                    | Action::RestoreVersions { .. }
                    | Action::DeleteObjects { .. }
            )
        });
    if !synced {
        return previous.and_then(|p| p.last_sync.clone());
    }
    let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
    Some(SyncStatus {
        uploaded: count(plan.sync.uploaded),
        uploaded_bytes: i64::try_from(plan.sync.uploaded_bytes).unwrap_or(i64::MAX),
        metadata_updated: count(plan.sync.metadata_updated),
        restored: count(plan.sync.restored),
        deleted: count(plan.sync.deleted),
    })
}
