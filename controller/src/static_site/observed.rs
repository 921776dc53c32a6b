//! What observe gathers for one site: plain data the plan reads.
//!
//! Per-object facts are the expensive part (a HEAD each), so observe learns them only where
//! nothing else says them: a live object whose version a stored manifest records is exactly
//! what that manifest says (object versions are immutable, metadata included), and what act
//! wrote is remembered by the inventory. Only versions nobody recorded — a hand edit, an upload
//! cut short by a crash — are HEADed, and `facts` carries the answer.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use stagehand_crds::PendingCreate;

use super::cache::ArchiveVersion;
use super::manifest::{Manifest, ManifestSource, Served};
use super::metadata::ObjectMetadata;
use crate::aws::s3::{ObjectVersion, Sha256Digest};
use crate::inventory::EventFeed;

/// The site as observed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Observed {
    /// `None`: the bucket does not exist.
    pub bucket: Option<ObservedBucket>,
    /// The site's Origin Access Control, found by its name (OACs carry no tags).
    pub origin_access_control: Option<ObservedOac>,
    /// The distribution: `distribution.id`'s, or the one created for the site (found by its
    /// comment and `CallerReference`, so one created just before a crash is found again).
    pub distribution: Option<ObservedDistribution>,
    /// The build to deploy; shared with the cache, which keeps the checked build of an
    /// unchanged archive between rounds (50,000 files are ≈ 10 MB).
    pub source: Arc<SourceState>,
    /// The source archive's version and ETag as HEAD showed them this round (`None` for a
    /// prefix, or when the source was not read).
    pub source_archive: Option<ArchiveVersion>,
    /// `.stagehand/served.json` and the manifest version it points to.
    pub served: Option<ServedRevision>,
    /// The current version of every manifest in the bucket, read (they are immutable per
    /// version, so observe caches them by version id).
    pub manifests: Vec<StoredManifest>,
    /// The current object of every key outside `.stagehand/` (keys whose latest version is a
    /// delete marker are absent).
    pub live: BTreeMap<String, LiveObject>,
    /// Every version of the bucket (`ListObjectVersions`: objects and delete markers), listed
    /// only when pruning may be due or the bucket is being emptied (`None` otherwise).
    pub versions: Option<Vec<ObjectVersion>>,
    /// The last invalidation Stagehand created (from status), as CloudFront reports it now.
    pub invalidation: Option<ObservedInvalidation>,
    /// How the controller-wide event feed stands for the site's region.
    pub event_feed: EventFeed,
    /// The source bucket, when the feed is configured and the bucket sends no events to
    /// EventBridge: a new build there is seen at the resync, not within seconds.
    pub source_without_events: Vec<String>,
    /// The intent record status carries (`status.pendingCreate`): the bucket the site was
    /// about to create when its last status was written (`base::intent`).
    pub pending_create: Option<PendingCreate>,
}

impl Observed {
    /// Whether the controller-wide event feed (`--event-queue`) is configured for the site's
    /// region, healthy or not.
    pub fn has_event_feed(&self) -> bool {
        self.event_feed != EventFeed::NotConfigured
    }

    /// Whether `key` still has version `version_id`: a manifest may name a version deleted by
    /// hand since. Unknown (the versions were not listed) counts as present. S3 lists keys in
    /// byte order, so a binary search finds the key's run of versions.
    pub fn has_version(&self, key: &str, version_id: &str) -> bool {
        let Some(versions) = &self.versions else {
            return true;
        };
        let start = versions.partition_point(|v| v.key.as_str() < key);
        versions[start..]
            .iter()
            .take_while(|v| v.key == key)
            .any(|v| v.version_id.as_deref().unwrap_or("null") == version_id)
    }

    /// The stored manifest of `revision`.
    pub fn manifest(&self, revision: &str) -> Option<&StoredManifest> {
        self.manifests
            .iter()
            .find(|m| m.manifest.revision == revision)
    }
}

/// The bucket's settings that the site depends on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObservedBucket {
    pub tags: BTreeMap<String, String>,
    /// Versioning `Enabled` (revisions are object versions).
    pub versioning_enabled: bool,
    /// All four Block Public Access settings on.
    pub public_access_blocked: bool,
    /// Object Ownership `BucketOwnerEnforced` (ACLs disabled).
    pub owner_enforced: bool,
    /// Default encryption configured.
    pub encrypted: bool,
    /// The bucket policy document, when there is one.
    pub policy: Option<serde_json::Value>,
    /// S3 sends the bucket's events to EventBridge.
    pub eventbridge_notifications: bool,
}

/// An Origin Access Control.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObservedOac {
    pub id: String,
    pub name: String,
}

/// A distribution and the parts of its configuration the site defines.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObservedDistribution {
    pub id: String,
    pub arn: String,
    pub domain_name: String,
    /// `InProgress` or `Deployed`.
    pub status: String,
    /// For `If-Match` on updates.
    pub e_tag: String,
    pub tags: BTreeMap<String, String>,
    pub config: DistributionConfig,
}

impl ObservedDistribution {
    pub fn is_deployed(&self) -> bool {
        self.status.eq_ignore_ascii_case("Deployed")
    }
}

/// What the site defines of a distribution's configuration; the adapter maps it to and from
/// CloudFront's full `DistributionConfig`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DistributionConfig {
    /// The default origin's domain (the bucket's regional domain).
    pub origin_domain_name: String,
    /// The OAC attached to that origin.
    pub origin_access_control_id: Option<String>,
    pub default_root_object: String,
    /// Viewer protocol policy `redirect-to-https`.
    pub redirect_to_https: bool,
    /// Compression on the default cache behaviour.
    pub compress: bool,
    pub aliases: BTreeSet<String>,
    /// Custom error responses for 403 and 404 that serve `/<root object>` with 200.
    pub spa_fallback: bool,
    pub enabled: bool,
}

/// The build to deploy, as observe found it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum SourceState {
    /// Not read this round: `rollbackTo` is set, so the source is not what is deployed.
    #[default]
    NotRead,
    /// Read and checked.
    Read(SourceBuild),
    /// The archive or prefix does not exist (or holds nothing).
    Missing { location: String },
    /// The archive was refused (a hostile or broken build): the reason and the message that
    /// names the entry and the rule.
    Refused {
        reason: &'static str,
        message: String,
    },
}

/// A checked build.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SourceBuild {
    /// The archive or prefix it came from.
    pub location: ManifestSource,
    /// Sorted by key.
    pub files: Vec<SourceFile>,
}

/// One file of a build.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceFile {
    /// The object key in the site bucket.
    pub key: String,
    pub size: u64,
    /// `None`: a prefix object S3 has no SHA-256 checksum for, not hashed yet.
    pub sha256: Option<Sha256Digest>,
    pub origin: ContentOrigin,
}

/// Where a file's bytes are read from when it is uploaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ContentOrigin {
    /// The archive's entry of the same key (act reads the archive again, keeping only what
    /// it uploads).
    ArchiveEntry,
    /// An object of the source prefix (copied server-side, never downloaded), listed with
    /// this ETag.
    SourceObject {
        bucket: String,
        key: String,
        e_tag: Option<String>,
    },
}

/// The served-revision record and the manifest version it names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServedRevision {
    pub record: Served,
    /// Shared with the [`SiteCache`](super::cache::SiteCache): a manifest of 50,000 keys is
    /// ≈ 10 MB parsed, and every round reads every kept one.
    pub manifest: Arc<Manifest>,
}

/// A manifest as stored (its object's current version).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredManifest {
    /// Shared with the cache, as [`ServedRevision::manifest`].
    pub manifest: Arc<Manifest>,
    /// The manifest object's version id.
    pub version_id: String,
}

/// The current object of a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveObject {
    pub version_id: String,
    pub size: u64,
    /// What its version holds, when observe had to find out (a HEAD) or act remembered it;
    /// `None` when a stored manifest records the version (the plan reads it there).
    pub facts: Option<ObjectFacts>,
}

/// What an object version holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectFacts {
    /// `None` when S3 has no whole-object SHA-256 for it (uploaded without, or multipart).
    pub sha256: Option<Sha256Digest>,
    pub metadata: ObjectMetadata,
}

/// An invalidation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedInvalidation {
    pub id: String,
    /// `InProgress` or `Completed` (moto: `COMPLETED`).
    pub status: String,
}

impl ObservedInvalidation {
    pub fn is_completed(&self) -> bool {
        self.status.eq_ignore_ascii_case("Completed")
    }
}
