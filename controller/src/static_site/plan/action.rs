//! The changes a plan asks for. What is known about each kind of change — its name, metric
//! label, Event, what the inventory must read again — is one row of [`Action::facts`]; only its
//! message (`Display`) is written apart.
//!
//! Object transfers are batched (one action uploads every changed key, act runs them with
//! bounded concurrency): a deploy of 5,000 files is a handful of actions and Events, not 5,000.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use crate::aws::s3::Sha256Digest;
use crate::static_site::manifest::{FORMAT, Manifest, ManifestObject, ManifestSource, Served};
use crate::static_site::metadata::ObjectMetadata;
use crate::static_site::observed::{ContentOrigin, DistributionConfig};

/// One change to make in AWS. Variant names are what operators read in Events and logs.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Create the bucket with versioning, Block Public Access, `BucketOwnerEnforced`, default
    /// encryption and the ownership tags.
    CreateBucket {
        bucket: String,
        tags: BTreeMap<String, String>,
    },
    /// Write the ownership tags on the untagged bucket the site created before a crash (its
    /// intent record, `status.pendingCreate`, names it and it holds nothing): no `adopt`.
    ClaimBucket {
        bucket: String,
        tags: BTreeMap<String, String>,
    },
    /// Write the ownership tags on an untagged bucket (`adopt: true`).
    AdoptBucket {
        bucket: String,
        tags: BTreeMap<String, String>,
    },
    /// Turn on the settings the site depends on that the bucket lacks.
    ConfigureBucket {
        bucket: String,
        settings: Vec<BucketSetting>,
    },
    /// Create the site's Origin Access Control (sigv4, always sign).
    CreateOriginAccessControl { name: String },
    /// The bucket policy: the site's statement (reads by this distribution only) replaces any
    /// earlier one of ours and every public statement; other statements are kept.
    PutBucketPolicy {
        bucket: String,
        policy: serde_json::Value,
    },
    /// Create the distribution; the `CallerReference` derives from the object's uid, so a
    /// retry after a crash returns the same distribution instead of a second one.
    CreateDistribution {
        caller_reference: String,
        config: DistributionConfig,
        tags: BTreeMap<String, String>,
    },
    /// Write the ownership tags on an untagged distribution (`adopt: true`).
    AdoptDistribution {
        arn: String,
        tags: BTreeMap<String, String>,
    },
    /// Update the distribution's configuration, `If-Match` its ETag.
    UpdateDistribution {
        id: String,
        if_match: String,
        config: DistributionConfig,
    },
    /// Stream these prefix objects once and remember their SHA-256 (S3 has no checksum for
    /// them): what changed is known only by content.
    HashSourceObjects { bucket: String, keys: Vec<String> },
    /// Put new or changed content, with its SHA-256 as the S3 checksum.
    UploadObjects { objects: Vec<Transfer> },
    /// Copy keys onto themselves with new metadata: the content is already there.
    UpdateMetadata { objects: Vec<Copy> },
    /// Copy an older version of each key over its current one: a rollback, or the repair of
    /// a key edited or deleted by hand, or content a kept revision already holds.
    RestoreVersions { objects: Vec<Copy> },
    /// Write the revision's manifest: every key and the version holding it.
    WriteManifest { manifest: PlannedManifest },
    /// Delete keys the deployed revision does not have (a delete marker each: the versions
    /// stay, for rollback). Always after the revision's manifest is written.
    DeleteObjects { keys: Vec<String> },
    /// Invalidate the paths whose content changed.
    Invalidate {
        distribution_id: String,
        caller_reference: String,
        paths: Vec<String>,
    },
    /// Write `.stagehand/served.json`: the site now serves this revision.
    RecordServed { served: PlannedServed },
    /// Delete manifests of revisions no longer kept (`keepRevisions`).
    DeleteManifests { keys: Vec<String> },
    /// Delete object versions no kept manifest references, at most 1,000 (one
    /// `DeleteObjects` call).
    PruneVersions { versions: Vec<(String, String)> },
    /// Deletion: delete every version and delete marker of the bucket, at most 1,000 a call.
    EmptyBucket {
        bucket: String,
        versions: Vec<(String, String)>,
    },
    /// Deletion: delete the emptied bucket.
    DeleteBucket { bucket: String },
    /// Deletion: delete the disabled, deployed distribution, `If-Match` its ETag.
    DeleteDistribution { id: String, if_match: String },
    /// Deletion: delete the site's OAC once no distribution uses it.
    DeleteOriginAccessControl { id: String },
}

/// A bucket setting the site depends on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum BucketSetting {
    Versioning,
    BlockPublicAccess,
    OwnerEnforced,
    DefaultEncryption,
    /// Only while the controller-wide event feed is configured: the bucket's object events
    /// then reach the feed, so a hand upload or delete is repaired within seconds.
    EventBridgeNotifications,
}

impl BucketSetting {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Versioning => "versioning",
            Self::BlockPublicAccess => "block public access",
            Self::OwnerEnforced => "bucket owner enforced",
            Self::DefaultEncryption => "default encryption",
            Self::EventBridgeNotifications => "EventBridge notifications",
        }
    }
}

/// One upload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transfer {
    pub key: String,
    pub sha256: Sha256Digest,
    pub size: u64,
    pub metadata: ObjectMetadata,
    pub origin: ContentOrigin,
}

/// One copy of a version onto its key's current object, with `metadata` replacing the old.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Copy {
    pub key: String,
    pub from_version_id: String,
    pub sha256: Sha256Digest,
    pub size: u64,
    pub metadata: ObjectMetadata,
}

/// An object version the plan cannot name yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VersionRef {
    /// Known.
    Known(String),
    /// The version an earlier action of the same round writes (act fills it in from its
    /// results; the round stops before this action if that write failed).
    WrittenThisRound,
}

/// A manifest whose versions may be written by this round.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedManifest {
    pub revision: String,
    pub created_at: String,
    pub source: ManifestSource,
    pub objects: BTreeMap<String, PlannedObject>,
}

/// One key of a planned manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedObject {
    pub version: VersionRef,
    pub sha256: Sha256Digest,
    pub size: u64,
    pub metadata: ObjectMetadata,
}

impl PlannedManifest {
    /// The manifest to write, given the versions this round wrote (key → version id).
    pub fn resolve(&self, written: &HashMap<String, String>) -> Result<Manifest, String> {
        let mut objects = BTreeMap::new();
        for (key, planned) in &self.objects {
            let version_id = match &planned.version {
                VersionRef::Known(id) => id.clone(),
                VersionRef::WrittenThisRound => written
                    .get(key)
                    .cloned()
                    .ok_or_else(|| format!("no version was written for {key:?} this round"))?,
            };
            objects.insert(
                key.clone(),
                ManifestObject {
                    version_id,
                    sha256: planned.sha256.to_hex(),
                    size: planned.size,
                    content_type: planned.metadata.content_type.clone(),
                    cache_control: planned.metadata.cache_control.clone(),
                },
            );
        }
        Ok(Manifest {
            format: FORMAT,
            revision: self.revision.clone(),
            created_at: self.created_at.clone(),
            source: self.source.clone(),
            objects,
        })
    }
}

/// A served record whose manifest version may be written by this round.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedServed {
    pub revision: String,
    pub manifest_version: VersionRef,
    pub sequence: u64,
    pub rolled_back_from: Option<String>,
}

impl PlannedServed {
    /// The record to write, given the manifest version this round wrote, if any.
    pub fn resolve(&self, written_manifest_version: Option<&str>) -> Result<Served, String> {
        let manifest_version_id = match &self.manifest_version {
            VersionRef::Known(id) => id.clone(),
            VersionRef::WrittenThisRound => written_manifest_version
                .map(str::to_owned)
                .ok_or_else(|| format!("no manifest was written for {}", self.revision))?,
        };
        Ok(Served {
            format: FORMAT,
            revision: self.revision.clone(),
            manifest_version_id,
            sequence: self.sequence,
            rolled_back_from: self.rolled_back_from.clone(),
        })
    }
}

/// Everything known about one kind of action besides its message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ActionFacts {
    /// The variant name, as operators read it.
    pub kind: &'static str,
    /// The `action` label of `stagehand_actions_total`.
    pub metric_label: &'static str,
    /// The reason of the Kubernetes Event reporting it.
    pub event_reason: &'static str,
    /// The action of that Event: the AWS call made.
    pub event_verb: &'static str,
    /// What the inventory must read again instead of trusting a listing taken before.
    pub written: Written,
}

/// What an action changed, as far as the inventory's listings are concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Written {
    /// Nothing listed (a hash, an invalidation).
    Nothing,
    /// The bucket's settings, tags or policy.
    Bucket,
    /// The bucket's objects (listing and versions).
    Objects,
    /// The site's OAC or distribution.
    Distribution,
}

impl Action {
    /// The facts of this action, one row per variant.
    pub const fn facts(&self) -> ActionFacts {
        use Written::{Bucket, Distribution, Nothing, Objects};
        let (kind, metric_label, event_reason, event_verb, written) = match self {
            Self::CreateBucket { .. } => (
                "CreateBucket",
                "bucket_create",
                "BucketCreated",
                "CreateBucket",
                Bucket,
            ),
            Self::ClaimBucket { .. } => (
                "ClaimBucket",
                "bucket_claim",
                "BucketClaimed",
                "PutBucketTagging",
                Bucket,
            ),
            Self::AdoptBucket { .. } => (
                "AdoptBucket",
                "adopt",
                "BucketAdopted",
                "PutBucketTagging",
                Bucket,
            ),
            Self::ConfigureBucket { .. } => (
                "ConfigureBucket",
                "bucket_configure",
                "BucketConfigured",
                "PutBucketVersioning",
                Bucket,
            ),
            Self::CreateOriginAccessControl { .. } => (
                "CreateOriginAccessControl",
                "oac_create",
                "OriginAccessControlCreated",
                "CreateOriginAccessControl",
                Distribution,
            ),
            Self::PutBucketPolicy { .. } => (
                "PutBucketPolicy",
                "bucket_policy",
                "BucketPolicyWritten",
                "PutBucketPolicy",
                Bucket,
            ),
            Self::CreateDistribution { .. } => (
                "CreateDistribution",
                "distribution_create",
                "DistributionCreated",
                "CreateDistributionWithTags",
                Distribution,
            ),
            Self::AdoptDistribution { .. } => (
                "AdoptDistribution",
                "adopt",
                "DistributionAdopted",
                "TagResource",
                Distribution,
            ),
            Self::UpdateDistribution { .. } => (
                "UpdateDistribution",
                "distribution_update",
                "DistributionUpdated",
                "UpdateDistribution",
                Distribution,
            ),
            Self::HashSourceObjects { .. } => (
                "HashSourceObjects",
                "source_hash",
                "SourceHashed",
                "GetObject",
                Nothing,
            ),
            Self::UploadObjects { .. } => (
                "UploadObjects",
                "object_upload",
                "ObjectsUploaded",
                "PutObject",
                Objects,
            ),
            Self::UpdateMetadata { .. } => (
                "UpdateMetadata",
                "object_metadata",
                "MetadataUpdated",
                "CopyObject",
                Objects,
            ),
            Self::RestoreVersions { .. } => (
                "RestoreVersions",
                "object_restore",
                "VersionsRestored",
                "CopyObject",
                Objects,
            ),
            Self::WriteManifest { .. } => (
                "WriteManifest",
                "manifest_write",
                "ManifestWritten",
                "PutObject",
                Objects,
            ),
            Self::DeleteObjects { .. } => (
                "DeleteObjects",
                "object_delete",
                "ObjectsDeleted",
                "DeleteObjects",
                Objects,
            ),
            Self::Invalidate { .. } => (
                "Invalidate",
                "invalidation",
                "InvalidationCreated",
                "CreateInvalidation",
                Nothing,
            ),
            Self::RecordServed { .. } => (
                "RecordServed",
                "revision_record",
                "RevisionServed",
                "PutObject",
                Objects,
            ),
            Self::DeleteManifests { .. } => (
                "DeleteManifests",
                "manifest_delete",
                "RevisionsPruned",
                "DeleteObjects",
                Objects,
            ),
            Self::PruneVersions { .. } => (
                "PruneVersions",
                "version_prune",
                "VersionsPruned",
                "DeleteObjects",
                Objects,
            ),
            Self::EmptyBucket { .. } => (
                "EmptyBucket",
                "bucket_empty",
                "BucketEmptied",
                "DeleteObjects",
                Objects,
            ),
            Self::DeleteBucket { .. } => (
                "DeleteBucket",
                "bucket_delete",
                "BucketDeleted",
                "DeleteBucket",
                Bucket,
            ),
            Self::DeleteDistribution { .. } => (
                "DeleteDistribution",
                "distribution_delete",
                "DistributionDeleted",
                "DeleteDistribution",
                Distribution,
            ),
            Self::DeleteOriginAccessControl { .. } => (
                "DeleteOriginAccessControl",
                "oac_delete",
                "OriginAccessControlDeleted",
                "DeleteOriginAccessControl",
                Distribution,
            ),
        };
        ActionFacts {
            kind,
            metric_label,
            event_reason,
            event_verb,
            written,
        }
    }

    /// Whether this action only reads AWS (it streams prefix objects to hash them): `stagehand
    /// plan` runs it, since without the hashes it cannot say what would change.
    pub const fn only_reads(&self) -> bool {
        matches!(self, Self::HashSourceObjects { .. })
    }

    /// Whether the bucket carries the site's ownership tags once this action is done: the
    /// intent record (`status.pendingCreate`) has served its purpose.
    pub const fn tags_bucket(&self) -> bool {
        matches!(
            self,
            Self::CreateBucket { .. } | Self::ClaimBucket { .. } | Self::AdoptBucket { .. }
        )
    }

    /// Whether this action changes the site's objects (the content sync).
    pub const fn is_content(&self) -> bool {
        matches!(
            self,
            Self::HashSourceObjects { .. }
                | Self::UploadObjects { .. }
                | Self::UpdateMetadata { .. }
                | Self::RestoreVersions { .. }
                | Self::WriteManifest { .. }
                | Self::DeleteObjects { .. }
                | Self::Invalidate { .. }
                | Self::RecordServed { .. }
        )
    }
}

/// At most three keys, then how many more.
fn some_keys<'a>(keys: impl ExactSizeIterator<Item = &'a str>) -> String {
    let total = keys.len();
    let shown: Vec<&str> = keys.take(3).collect();
    if total > shown.len() {
        format!("{} and {} more", shown.join(", "), total - shown.len())
    } else {
        shown.join(", ")
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::CreateBucket { bucket, .. } => write!(f, "create bucket {bucket}"),
            Self::ClaimBucket { bucket, .. } => write!(
                f,
                "tag bucket {bucket}, which this site created (status.pendingCreate)"
            ),
            Self::AdoptBucket { bucket, .. } => write!(f, "adopt bucket {bucket}"),
            Self::ConfigureBucket { bucket, settings } => {
                let names: Vec<&str> = settings.iter().map(|s| s.as_str()).collect();
                write!(f, "turn on {} for bucket {bucket}", names.join(", "))
            }
            Self::CreateOriginAccessControl { name } => {
                write!(f, "create origin access control {name}")
            }
            Self::PutBucketPolicy { bucket, .. } => {
                write!(
                    f,
                    "write the policy of bucket {bucket} (reads by the distribution only)"
                )
            }
            Self::CreateDistribution { .. } => f.write_str("create the distribution"),
            Self::AdoptDistribution { arn, .. } => write!(f, "adopt distribution {arn}"),
            Self::UpdateDistribution { id, .. } => write!(f, "update distribution {id}"),
            Self::HashSourceObjects { keys, .. } => write!(
                f,
                "hash {} source object(s): {}",
                keys.len(),
                some_keys(keys.iter().map(String::as_str))
            ),
            Self::UploadObjects { objects } => write!(
                f,
                "upload {} object(s), {} bytes: {}",
                objects.len(),
                objects.iter().map(|o| o.size).sum::<u64>(),
                some_keys(objects.iter().map(|o| o.key.as_str()))
            ),
            Self::UpdateMetadata { objects } => write!(
                f,
                "update the metadata of {} object(s): {}",
                objects.len(),
                some_keys(objects.iter().map(|o| o.key.as_str()))
            ),
            Self::RestoreVersions { objects } => write!(
                f,
                "restore {} object version(s): {}",
                objects.len(),
                some_keys(objects.iter().map(|o| o.key.as_str()))
            ),
            Self::WriteManifest { manifest } => write!(
                f,
                "write the manifest of revision {} ({} objects)",
                manifest.revision,
                manifest.objects.len()
            ),
            Self::DeleteObjects { keys } => write!(
                f,
                "delete {} removed object(s): {}",
                keys.len(),
                some_keys(keys.iter().map(String::as_str))
            ),
            Self::Invalidate { paths, .. } => write!(
                f,
                "invalidate {} path(s): {}",
                paths.len(),
                some_keys(paths.iter().map(String::as_str))
            ),
            Self::RecordServed { served } => {
                write!(f, "record revision {} as served", served.revision)
            }
            Self::DeleteManifests { keys } => write!(
                f,
                "delete {} manifest(s) no longer kept: {}",
                keys.len(),
                some_keys(keys.iter().map(String::as_str))
            ),
            Self::PruneVersions { versions } => {
                write!(f, "prune {} unreferenced object version(s)", versions.len())
            }
            Self::EmptyBucket { bucket, versions } => {
                write!(
                    f,
                    "delete {} version(s) from bucket {bucket}",
                    versions.len()
                )
            }
            Self::DeleteBucket { bucket } => write!(f, "delete bucket {bucket}"),
            Self::DeleteDistribution { id, .. } => write!(f, "delete distribution {id}"),
            Self::DeleteOriginAccessControl { id } => {
                write!(f, "delete origin access control {id}")
            }
        }
    }
}
