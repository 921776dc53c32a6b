//! What `keepRevisions` lets go, only in a round with nothing else to do.
//!
//! Kept: the newest `keepRevisions` manifests by `createdAt`, plus — whatever their age — the
//! served revision, `rollbackTo`'s and the revision being deployed. Other manifests are
//! deleted. An object version is pruned only when it is not current and no kept manifest, nor
//! the served record's manifest version, references it; a current version (what the site
//! serves, or a delete marker hiding a removed key) is never pruned.

use std::collections::BTreeSet;

use super::Planner;
use super::action::Action;
use crate::static_site::manifest::manifest_key;
use crate::static_site::observed::{Observed, StoredVersion};

/// S3's `DeleteObjects` takes at most 1,000 keys.
pub const PRUNE_BATCH: usize = 1000;

/// The revisions kept: the newest `keep` by `createdAt` and the ones named in `always`.
pub fn kept_revisions<'a>(
    observed: &'a Observed,
    keep: usize,
    always: impl IntoIterator<Item = &'a str>,
) -> BTreeSet<&'a str> {
    let mut by_age: Vec<(&str, &str)> = observed
        .manifests
        .iter()
        .map(|m| (m.manifest.created_at.as_str(), m.manifest.revision.as_str()))
        .collect();
    by_age.sort_unstable_by(|a, b| b.cmp(a));
    by_age
        .into_iter()
        .take(keep)
        .map(|(_, revision)| revision)
        .chain(always)
        .collect()
}

/// Every (key, version) the kept manifests and the served record reference, manifest objects
/// included.
fn referenced<'a>(observed: &'a Observed, kept: &BTreeSet<&str>) -> BTreeSet<(String, &'a str)> {
    let mut refs = BTreeSet::new();
    for stored in &observed.manifests {
        if kept.contains(stored.manifest.revision.as_str()) {
            refs.insert((
                manifest_key(&stored.manifest.revision),
                stored.version_id.as_str(),
            ));
            for (key, object) in &stored.manifest.objects {
                refs.insert((key.clone(), object.version_id.as_str()));
            }
        }
    }
    if let Some(served) = &observed.served {
        refs.insert((
            manifest_key(&served.record.revision),
            served.record.manifest_version_id.as_str(),
        ));
        for (key, object) in &served.manifest.objects {
            refs.insert((key.clone(), object.version_id.as_str()));
        }
    }
    refs
}

/// Versions that nothing kept references and that are not current.
fn prunable<'a>(
    versions: &'a [StoredVersion],
    refs: &BTreeSet<(String, &str)>,
) -> Vec<&'a StoredVersion> {
    versions
        .iter()
        .filter(|v| !v.is_latest)
        .filter(|v| !refs.contains(&(v.key.clone(), v.version_id.as_str())))
        .collect()
}

impl Planner<'_> {
    pub(super) fn plan_pruning(&mut self) {
        if !self.plan.actions.is_empty() || self.plan.stalled.is_some() || self.hash_pending {
            return;
        }
        let keep = usize::try_from(self.spec.keep_revisions)
            .unwrap_or(1)
            .max(1);
        let served = self
            .observed
            .served
            .as_ref()
            .map(|s| s.record.revision.as_str());
        let always = served
            .into_iter()
            .chain(self.spec.rollback_to.as_deref())
            .chain(self.plan.revision.as_deref());
        let kept = kept_revisions(self.observed, keep, always);
        let mut dropped: Vec<String> = self
            .observed
            .manifests
            .iter()
            .filter(|m| !kept.contains(m.manifest.revision.as_str()))
            .map(|m| manifest_key(&m.manifest.revision))
            .collect();
        dropped.sort();
        let refs = referenced(self.observed, &kept);
        let batches: Vec<Vec<(String, String)>> = match &self.observed.versions {
            Some(versions) => prunable(versions, &refs)
                .chunks(PRUNE_BATCH)
                .map(|chunk| {
                    chunk
                        .iter()
                        .map(|v| (v.key.clone(), v.version_id.clone()))
                        .collect()
                })
                .collect(),
            None => Vec::new(),
        };
        if !dropped.is_empty() {
            self.act(Action::DeleteManifests { keys: dropped });
        }
        for versions in batches {
            self.act(Action::PruneVersions { versions });
        }
    }
}
