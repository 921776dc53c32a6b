//! The revision to serve, and how each of its keys gets there.
//!
//! The desired revision is `rollbackTo`'s stored manifest, or else the source build with the
//! spec's metadata rules. Every key is compared by content (SHA-256) and metadata with the live
//! object — never by size or time — and gets one verdict ([`key_verdict`]):
//! in sync (nothing), metadata only (a copy in place), or content (a restore from a version
//! that already holds it — a kept revision's, or `rollbackTo`'s — else an upload).

use std::collections::BTreeMap;

use super::action::{
    Action, Copy, PlannedManifest, PlannedObject, PlannedServed, Transfer, VersionRef,
};
use super::{DriftField, Planner, reason};
use crate::aws::s3::Sha256Digest;
use crate::static_site::manifest::{Manifest, ManifestObject, ManifestSource, content_revision};
use crate::static_site::metadata::ObjectMetadata;
use crate::static_site::observed::{ContentOrigin, LiveObject, ObjectFacts, SourceState};

/// The revision the site is to serve.
pub(super) struct DesiredRevision {
    pub revision: String,
    pub created_at: String,
    pub source: ManifestSource,
    pub objects: BTreeMap<String, DesiredObject>,
    /// Set while `rollbackTo` is in effect.
    pub rolled_back_from: Option<String>,
}

/// One key of the desired revision.
pub(super) struct DesiredObject {
    pub sha256: Sha256Digest,
    pub size: u64,
    pub metadata: ObjectMetadata,
    pub origin: Origin,
}

/// Where the content can come from.
pub(super) enum Origin {
    /// The build.
    Source(ContentOrigin),
    /// A stored version (rollback).
    Version(String),
}

/// This round's transfers, by kind.
#[derive(Default)]
struct Transfers {
    uploads: Vec<Transfer>,
    updates: Vec<Copy>,
    restores: Vec<Copy>,
}

/// What one key needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyVerdict {
    /// The live object holds the content with the metadata.
    InSync,
    /// The content is live, the metadata is not: copy in place.
    MetadataOnly,
    /// The content is not live (missing, different, or not known): restore or upload.
    Content,
}

/// The verdict for a key whose wanted content is `sha256` with `metadata`, given what the live
/// object holds (`None`: no live object, or nothing known about it).
pub fn key_verdict(
    sha256: &Sha256Digest,
    metadata: &ObjectMetadata,
    live: Option<&ObjectFacts>,
) -> KeyVerdict {
    match live {
        Some(facts) if facts.sha256.as_ref() == Some(sha256) => {
            if facts.metadata == *metadata {
                KeyVerdict::InSync
            } else {
                KeyVerdict::MetadataOnly
            }
        }
        _ => KeyVerdict::Content,
    }
}

/// The facts a manifest records for one of its objects.
fn facts_in(object: &ManifestObject) -> ObjectFacts {
    ObjectFacts {
        sha256: object.digest(),
        metadata: ObjectMetadata {
            content_type: object.content_type.clone(),
            cache_control: object.cache_control.clone(),
        },
    }
}

/// Whether `stored` records exactly `objects` (content and metadata; versions aside).
fn same_content(stored: &Manifest, objects: &BTreeMap<String, DesiredObject>) -> bool {
    stored.objects.len() == objects.len()
        && objects.iter().all(|(key, want)| {
            stored.objects.get(key).is_some_and(|o| {
                o.digest() == Some(want.sha256)
                    && o.size == want.size
                    && facts_in(o).metadata == want.metadata
            })
        })
}

/// Whether `stored` records `planned` exactly, versions included.
fn manifest_matches(stored: &Manifest, planned: &BTreeMap<String, PlannedObject>) -> bool {
    stored.objects.len() == planned.len()
        && planned.iter().all(|(key, p)| {
            stored.objects.get(key).is_some_and(|o| {
                p.version == VersionRef::Known(o.version_id.clone())
                    && o.digest() == Some(p.sha256)
                    && o.size == p.size
                    && facts_in(o).metadata == p.metadata
            })
        })
}

impl Planner<'_> {
    /// The revision to serve; `None` (with a stall or a hash to wait for) when it is not known.
    pub(super) fn desired_revision(&mut self) -> Option<DesiredRevision> {
        if let Some(target) = self.spec.rollback_to.clone() {
            return self.rollback_revision(&target);
        }
        let build = match &*self.observed.source {
            SourceState::NotRead => return None,
            SourceState::Missing { location } => {
                let message = format!("the source {location} does not exist or is empty");
                self.stall(reason::SOURCE_NOT_FOUND, message);
                return None;
            }
            SourceState::Refused { reason, message } => {
                self.stall(reason, message.clone());
                return None;
            }
            SourceState::Read(build) => build,
        };
        let unhashed: Vec<String> = build
            .files
            .iter()
            .filter(|f| f.sha256.is_none())
            .map(|f| f.key.clone())
            .collect();
        if !unhashed.is_empty() {
            self.hash_pending = true;
            self.act(Action::HashSourceObjects {
                bucket: self.spec.source.bucket.clone(),
                keys: unhashed,
            });
            return None;
        }
        let objects: BTreeMap<String, DesiredObject> = build
            .files
            .iter()
            .filter_map(|f| {
                let object = DesiredObject {
                    sha256: f.sha256?,
                    size: f.size,
                    metadata: self.rules.for_key(&f.key),
                    origin: Origin::Source(f.origin.clone()),
                };
                Some((f.key.clone(), object))
            })
            .collect();
        let revision = self.spec.revision.clone().unwrap_or_else(|| {
            content_revision(objects.iter().map(|(key, o)| {
                (
                    key.as_str(),
                    &o.sha256,
                    o.metadata.content_type.as_str(),
                    o.metadata.cache_control.as_deref(),
                )
            }))
        });
        let stored = self.observed.manifest(&revision);
        if let Some(stored) = stored
            && !same_content(&stored.manifest, &objects)
        {
            self.stall(
                reason::REVISION_REUSED,
                format!("revision {revision} is already stored with other content; give this build a new spec.revision"),
            );
            return None;
        }
        Some(DesiredRevision {
            created_at: stored.map_or_else(
                || self.context.now.clone(),
                |s| s.manifest.created_at.clone(),
            ),
            revision,
            source: build.location.clone(),
            objects,
            rolled_back_from: None,
        })
    }

    /// `rollbackTo`'s stored manifest, with the revision it replaces.
    fn rollback_revision(&mut self, target: &str) -> Option<DesiredRevision> {
        let Some(stored) = self.observed.manifest(target) else {
            self.stall(
                reason::REVISION_NOT_FOUND,
                format!("rollbackTo: revision {target} has no manifest in the bucket (only kept revisions can be restored)"),
            );
            return None;
        };
        let objects = stored
            .manifest
            .objects
            .iter()
            .filter_map(|(key, o)| {
                let object = DesiredObject {
                    sha256: o.digest()?,
                    size: o.size,
                    metadata: facts_in(o).metadata,
                    origin: Origin::Version(o.version_id.clone()),
                };
                Some((key.clone(), object))
            })
            .collect();
        let rolled_back_from = match self.observed.served.as_ref().map(|s| &s.record) {
            Some(served) if served.revision != target => Some(served.revision.clone()),
            Some(served) => served.rolled_back_from.clone(),
            None => None,
        };
        Some(DesiredRevision {
            revision: target.to_owned(),
            created_at: stored.manifest.created_at.clone(),
            source: stored.manifest.source.clone(),
            objects,
            rolled_back_from,
        })
    }

    /// What the live object of `key` holds: what observe or act found out, else what a stored
    /// manifest records for its version.
    fn live_facts(&self, key: &str, live: &LiveObject) -> Option<ObjectFacts> {
        if let Some(facts) = &live.facts {
            return Some(facts.clone());
        }
        let served = self.observed.served.as_ref().map(|s| &s.manifest);
        served
            .into_iter()
            .chain(self.observed.manifests.iter().map(|m| &m.manifest))
            .filter_map(|m| m.objects.get(key))
            .find(|o| o.version_id == live.version_id)
            .map(facts_in)
    }

    /// A stored version of `key` that holds `sha256` and still exists (a version deleted by
    /// hand cannot be copied back): restoring it is a server-side copy.
    fn version_holding(&self, key: &str, sha256: &Sha256Digest) -> Option<String> {
        let served = self.observed.served.as_ref().map(|s| &s.manifest);
        served
            .into_iter()
            .chain(self.observed.manifests.iter().map(|m| &m.manifest))
            .filter_map(|m| m.objects.get(key))
            .find(|o| {
                o.digest().as_ref() == Some(sha256) && self.observed.has_version(key, &o.version_id)
            })
            .map(|o| o.version_id.clone())
    }

    /// Every key's verdict, then the manifest, deletions, invalidation and served record.
    pub(super) fn plan_content(&mut self, desired: &DesiredRevision) {
        self.plan.revision = Some(desired.revision.clone());
        self.plan
            .rolled_back_from
            .clone_from(&desired.rolled_back_from);
        let mut transfers = Transfers::default();
        let planned: BTreeMap<String, PlannedObject> = desired
            .objects
            .iter()
            .map(|(key, want)| (key.clone(), self.sync_key(key, want, &mut transfers)))
            .collect();
        self.record_sync(transfers);
        let manifest_version = self.plan_manifest(desired, &planned);
        let removed = self.delete_removed(desired);
        self.plan_served(desired, manifest_version, &planned, &removed);
    }

    /// How `key` gets its wanted content: the version that holds it once this round is done.
    fn sync_key(
        &mut self,
        key: &str,
        want: &DesiredObject,
        transfers: &mut Transfers,
    ) -> PlannedObject {
        let live = self.observed.live.get(key);
        let facts = live.and_then(|l| self.live_facts(key, l));
        let verdict = key_verdict(&want.sha256, &want.metadata, facts.as_ref());
        let copy = |from_version_id: String| Copy {
            key: key.to_owned(),
            from_version_id,
            sha256: want.sha256,
            size: want.size,
            metadata: want.metadata.clone(),
        };
        let version = match (verdict, live) {
            (KeyVerdict::InSync, Some(live)) => VersionRef::Known(live.version_id.clone()),
            (KeyVerdict::MetadataOnly, Some(live)) => {
                transfers.updates.push(copy(live.version_id.clone()));
                VersionRef::WrittenThisRound
            }
            _ => {
                // A version that holds the content is restored (a server-side copy); only
                // content no version holds is uploaded.
                let from = match &want.origin {
                    Origin::Version(version) => Ok(version.clone()),
                    Origin::Source(origin) => self.version_holding(key, &want.sha256).ok_or(origin),
                };
                match from {
                    Ok(version) => transfers.restores.push(copy(version)),
                    Err(origin) => transfers.uploads.push(Transfer {
                        key: key.to_owned(),
                        sha256: want.sha256,
                        size: want.size,
                        metadata: want.metadata.clone(),
                        origin: origin.clone(),
                    }),
                }
                VersionRef::WrittenThisRound
            }
        };
        if verdict != KeyVerdict::InSync {
            let detail = match verdict {
                KeyVerdict::MetadataOnly => "metadata differs",
                _ if live.is_none() => "missing",
                _ => "content differs",
            };
            self.drift(DriftField::Content, key, detail.to_owned());
        }
        PlannedObject {
            version,
            sha256: want.sha256,
            size: want.size,
            metadata: want.metadata.clone(),
        }
    }

    /// Deletes the live keys the revision does not have (after its manifest: the caller's
    /// order). Returns them.
    fn delete_removed(&mut self, desired: &DesiredRevision) -> Vec<String> {
        let removed: Vec<String> = self
            .observed
            .live
            .keys()
            .filter(|key| !desired.objects.contains_key(*key))
            .cloned()
            .collect();
        for key in &removed {
            self.drift(DriftField::Content, key, "not in the revision".to_owned());
        }
        if !removed.is_empty() {
            self.plan.sync.deleted = removed.len();
            self.act(Action::DeleteObjects {
                keys: removed.clone(),
            });
        }
        removed
    }

    /// The invalidation and the served record, unless the record already names this revision
    /// with this manifest version.
    fn plan_served(
        &mut self,
        desired: &DesiredRevision,
        manifest_version: VersionRef,
        planned: &BTreeMap<String, PlannedObject>,
        removed: &[String],
    ) {
        let previous = self.observed.served.as_ref().map(|s| &s.record);
        let served = PlannedServed {
            revision: desired.revision.clone(),
            manifest_version,
            sequence: previous.map_or(0, |s| s.sequence) + 1,
            rolled_back_from: desired.rolled_back_from.clone(),
        };
        let served_current = previous.is_some_and(|s| {
            s.revision == served.revision
                && served.manifest_version == VersionRef::Known(s.manifest_version_id.clone())
                && s.rolled_back_from == served.rolled_back_from
        });
        if !served_current || !removed.is_empty() {
            self.plan_invalidation(&served, planned, removed);
        }
        if !served_current {
            let detail = format!(
                "serving {}",
                previous.map_or("nothing", |s| s.revision.as_str())
            );
            self.drift(DriftField::Revision, &desired.revision, detail);
            self.act(Action::RecordServed { served });
        }
    }

    /// The transfers, as actions and as the sync summary.
    fn record_sync(&mut self, transfers: Transfers) {
        let Transfers {
            uploads,
            updates,
            restores,
        } = transfers;
        self.plan.sync.uploaded = uploads.len();
        self.plan.sync.uploaded_bytes = uploads.iter().map(|t| t.size).sum();
        self.plan.sync.metadata_updated = updates.len();
        self.plan.sync.restored = restores.len();
        if !uploads.is_empty() {
            self.act(Action::UploadObjects { objects: uploads });
        }
        if !updates.is_empty() {
            self.act(Action::UpdateMetadata { objects: updates });
        }
        if !restores.is_empty() {
            self.act(Action::RestoreVersions { objects: restores });
        }
    }

    /// Writes the revision's manifest unless the stored one records exactly what is live.
    fn plan_manifest(
        &mut self,
        desired: &DesiredRevision,
        planned: &BTreeMap<String, PlannedObject>,
    ) -> VersionRef {
        if let Some(stored) = self.observed.manifest(&desired.revision)
            && manifest_matches(&stored.manifest, planned)
        {
            return VersionRef::Known(stored.version_id.clone());
        }
        self.act(Action::WriteManifest {
            manifest: PlannedManifest {
                revision: desired.revision.clone(),
                created_at: desired.created_at.clone(),
                source: desired.source.clone(),
                objects: planned.clone(),
            },
        });
        VersionRef::WrittenThisRound
    }
}
