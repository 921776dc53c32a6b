//! `StaticSite`: a built site in a versioned S3 bucket behind CloudFront. Only changed objects are
//! uploaded and invalidated; every revision's manifest is kept so a rollback restores the exact
//! object versions.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{CommonStatus, Lifecycle, PendingCreate, S3ObjectIdentity};

/// A static site served from S3 through CloudFront, with exact revisions and rollback.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[expect(
    clippy::duplicated_attributes,
    reason = "false positive: each kube(printcolumn(...)) repeats keys such as `type_ = \"string\"`"
)]
#[kube(
    group = "stagehand.dev",
    version = "v1alpha1",
    kind = "StaticSite",
    namespaced,
    status = "StaticSiteStatus",
    shortname = "ss",
    shortname = "site",
    category = "stagehand",
    doc = "A static site in a versioned S3 bucket behind CloudFront: only changed objects are uploaded and invalidated, and any kept revision can be restored exactly.",
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Reason",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].reason"
    ),
    printcolumn(name = "Revision", type_ = "string", json_path = ".status.revision"),
    printcolumn(
        name = "Distribution",
        type_ = "string",
        json_path = ".status.distribution.domainName"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "!has(self.rollbackTo) || !has(self.revision) || self.rollbackTo != self.revision",
     "message": "rollbackTo names the revision to restore; it cannot equal spec.revision"}
]))]
pub struct StaticSiteSpec {
    /// AWS region of the bucket. Immutable.
    #[schemars(regex(pattern = crate::common::REGION_PATTERN))]
    #[schemars(extend("x-kubernetes-validations" = [{"rule": "self == oldSelf", "message": "region is immutable"}]))]
    pub region: String,

    /// Adoption, deletion policy, management mode and resync interval.
    #[serde(flatten)]
    pub lifecycle: Lifecycle,

    /// The bucket serving the site. Versioning is always enabled: revisions are object versions.
    pub bucket: BucketSpec,

    /// Where the built site (`dist/`) comes from.
    pub source: SiteSource,

    /// The CloudFront distribution in front of the bucket.
    pub distribution: DistributionSpec,

    /// `Cache-Control` values by glob, first match wins (e.g. `assets/**` →
    /// `public, max-age=31536000, immutable`; `**/*.html` → `no-cache`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50))]
    pub cache_control: Vec<CacheControlRule>,

    /// Which paths are invalidated after a deploy.
    #[serde(default)]
    pub invalidation: InvalidationSpec,

    /// A label for this deploy (e.g. the git sha). Unset: derived from the source's checksum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$"))]
    pub revision: Option<String>,

    /// Restore this kept revision exactly (object versions from its manifest). Remove the field
    /// to deploy `source` again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$"))]
    pub rollback_to: Option<String>,

    /// How many revisions (manifests and the object versions they reference) are kept.
    #[serde(default = "default_keep_revisions")]
    #[schemars(range(min = 1, max = 100))]
    pub keep_revisions: i32,
}

fn default_keep_revisions() -> i32 {
    10
}

/// The site bucket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BucketSpec {
    /// Bucket name. Immutable.
    #[schemars(regex(pattern = r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$"))]
    #[schemars(extend("x-kubernetes-validations" = [{"rule": "self == oldSelf", "message": "bucket.name is immutable"}]))]
    pub name: String,
    /// Create the bucket when it does not exist (otherwise it must exist, tagged or adopted).
    #[serde(default)]
    pub create: bool,
}

/// Where the built site comes from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "has(self.prefix) != has(self.archive)", "message": "set exactly one of source.prefix and source.archive"},
    {"rule": "!has(self.archive) || self.archive.endsWith('.zip') || self.archive.endsWith('.tar.gz') || self.archive.endsWith('.tgz')",
     "message": "source.archive must be a .zip, .tar.gz or .tgz file"}
]))]
pub struct SiteSource {
    /// Bucket holding the build output.
    #[schemars(regex(pattern = r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$"))]
    pub bucket: String,
    /// A prefix whose objects are the site (`builds/1234/dist/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024))]
    pub prefix: Option<String>,
    /// An archive key (`builds/1234/dist.zip`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024))]
    pub archive: Option<String>,
}

/// The CloudFront distribution.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "has(self.id) != self.create", "message": "set exactly one of distribution.id (existing) and distribution.create: true"}
]))]
pub struct DistributionSpec {
    /// An existing distribution's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^E[A-Z0-9]{8,20}$"))]
    pub id: Option<String>,
    /// Create a distribution for the bucket.
    #[serde(default)]
    pub create: bool,
    /// Object served for `/`.
    #[serde(default = "default_root_object")]
    pub default_root_object: String,
    /// Serve `/<defaultRootObject>` with status 200 for unknown paths (single-page apps).
    #[serde(default)]
    pub spa_fallback: bool,
    /// Alternate domain names (CNAMEs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    pub aliases: Vec<String>,
}

fn default_root_object() -> String {
    "index.html".to_owned()
}

/// A Cache-Control rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CacheControlRule {
    /// Glob over object keys (`*` within a path segment, `**` across segments).
    #[schemars(length(min = 1, max = 256))]
    pub pattern: String,
    /// The `Cache-Control` header value.
    #[schemars(length(min = 1, max = 256))]
    pub value: String,
}

/// Invalidation policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InvalidationSpec {
    /// `Changed` invalidates only changed and removed paths; `All` always invalidates `/*`.
    #[serde(default)]
    pub mode: InvalidationMode,
    /// With `Changed`, invalidate `/*` instead when more than this many paths changed.
    #[serde(default = "default_all_threshold")]
    #[schemars(range(min = 1, max = 3000))]
    pub all_threshold: i32,
    /// Wait for the invalidation to complete before reporting Ready.
    #[serde(default = "default_true")]
    pub wait: bool,
}

impl Default for InvalidationSpec {
    fn default() -> Self {
        Self {
            mode: InvalidationMode::default(),
            all_threshold: default_all_threshold(),
            wait: true,
        }
    }
}

fn default_all_threshold() -> i32 {
    15
}

fn default_true() -> bool {
    true
}

/// Invalidation mode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum InvalidationMode {
    /// Invalidate only changed paths.
    #[default]
    Changed,
    /// Invalidate everything.
    All,
}

/// What Stagehand last observed and did for a StaticSite.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StaticSiteStatus {
    /// observedGeneration, conditions and message.
    #[serde(flatten)]
    pub common: CommonStatus,
    /// The revision currently served.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// Set while `rollbackTo` is in effect: the revision it replaced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rolled_back_from: Option<String>,
    /// The distribution.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distribution: Option<DistributionStatus>,
    /// Kept revisions, newest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub revisions: Vec<RevisionStatus>,
    /// The last invalidation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_invalidation: Option<InvalidationStatus>,
    /// What the last deploy, rollback or repair changed in the bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync: Option<SyncStatus>,
    /// The source archive as last read, and the stored revision that holds exactly its files:
    /// a restarted controller takes the build from that revision's manifest instead of
    /// downloading and unpacking the archive again, as long as the archive's version and ETag
    /// are unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_archive: Option<SourceArchiveStatus>,
    /// Set while the site's bucket is being created and not yet tagged as the site's: written
    /// before `CreateBucket` is sent, so that a bucket left untagged by a crash between
    /// `CreateBucket` and `PutBucketTagging` is known as the site's own (see
    /// docs/architecture.md, "Found again after a crash").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_create: Option<PendingCreate>,
}

/// A source archive and the revision built from it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SourceArchiveStatus {
    /// The archive object as it was read.
    #[serde(flatten)]
    pub object: S3ObjectIdentity,
    /// The revision whose manifest lists the archive's files.
    pub revision: String,
}

/// What one deploy, rollback or repair changed in the bucket.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncStatus {
    /// Objects uploaded (new or changed content).
    pub uploaded: i64,
    /// Bytes uploaded.
    pub uploaded_bytes: i64,
    /// Objects copied in place for a metadata-only change (no upload).
    pub metadata_updated: i64,
    /// Objects restored from a stored version (rollback, hand-edit repair).
    pub restored: i64,
    /// Objects deleted (not in the revision).
    pub deleted: i64,
}

/// Observed distribution.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DistributionStatus {
    /// Distribution id.
    pub id: String,
    /// `dxxxx.cloudfront.net`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain_name: Option<String>,
    /// `InProgress` or `Deployed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Whether Stagehand created it.
    #[serde(default)]
    pub created_by_stagehand: bool,
}

/// A kept revision.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RevisionStatus {
    /// Revision label.
    pub revision: String,
    /// Key of the revision's manifest in the bucket.
    pub manifest_key: String,
    /// Number of objects.
    pub objects: i64,
    /// Total bytes of the objects.
    #[serde(default)]
    pub bytes: i64,
    /// When it was deployed (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployed_at: Option<String>,
}

/// An invalidation.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InvalidationStatus {
    /// Invalidation id.
    pub id: String,
    /// Number of paths.
    pub paths: i64,
    /// `InProgress` or `Completed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}
