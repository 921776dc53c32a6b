//! Reads what a site's plan needs from AWS: the bucket's settings, the OAC, the distribution
//! and its ETag, the source build, the served record, the stored manifests and the bucket's
//! object versions.
//!
//! What a no-change resync costs (measured against moto through the counting proxy, see the
//! e2e `static_site_round`): `HeadBucket`, the seven setting reads of `bucket_settings`,
//! `GetDistribution` and `ListTagsForResource`, `HeadObject` of the
//! archive, `GetObject` of `.stagehand/served.json` and **one paged `ListObjectVersions`** of
//! the bucket — never a call per object. The choice: the version listing names every key's
//! current version (and every older one, which pruning needs anyway), and a current version a
//! stored manifest records is exactly what that manifest says (object versions are immutable,
//! metadata included). Only a version no manifest records — a hand edit, an upload cut short by
//! a crash — is HEADed, once (the S3 inventory keeps version heads). The archive is read (and
//! checked) only when its version or ETag changed, manifests only once per version: both are
//! in the [`SiteCache`]. The site's OAC comes from the account's listing, which the shared
//! inventory reads once per max age for every site of the region
//! ([`crate::inventory::CloudFrontInventory`]), not per round.

use std::collections::BTreeMap;
use std::sync::Arc;

use stagehand_crds::StaticSiteSpec;
use stagehand_crds::static_site::StaticSiteStatus;

use super::build::{
    ArchiveFormat, ArchiveLimits, Discard, EntryName, normalise, read_archive_async,
};
use super::cache::{ArchiveVersion, SiteCache};
use super::error::StaticSiteError;
use super::manifest::{
    Manifest, ManifestSource, SERVED_KEY, Served, manifest_key, revision_of_key,
};
use super::metadata::{DEFAULT_CONTENT_TYPE, ObjectMetadata};
use super::observed::{
    ContentOrigin, DistributionConfig, LiveObject, ObjectFacts, Observed, ObservedBucket,
    ObservedDistribution, ObservedInvalidation, ObservedOac, ServedRevision, SourceBuild,
    SourceFile, SourceState, StoredManifest,
};
use super::plan::{PENDING_BUCKET, distribution_caller_reference, oac_name};
use crate::aws::AwsError;
use crate::aws::cloudfront::{CloudFront, DistributionInfo, ErrorResponse};
use crate::aws::s3::{ObjectVersion, S3, Versioning};
use crate::aws::tags::OWNER_TAG;
use crate::base::{Classify, ErrorClass, intent};
use crate::inventory::{ArtifactKey, EventFeed, Inventory};

/// The largest record read from `.stagehand/` (a manifest of 100,000 keys is about 25 MB).
const MAX_RECORD_BYTES: usize = 64 << 20;

/// Where Stagehand's own records live; no build may write there.
const RECORDS_PREFIX: &str = ".stagehand/";

/// The comment of a distribution Stagehand creates: listings show comments, not tags or caller
/// references, so it is how a distribution created just before a crash is found again.
pub fn distribution_comment(owner: &str) -> String {
    format!("{OWNER_TAG}={owner}")
}

/// What observe reads with.
#[derive(Clone, Copy, Debug)]
pub struct Observer<'a> {
    pub inventory: &'a Inventory,
    pub cache: &'a SiteCache,
    pub status: Option<&'a StaticSiteStatus>,
    /// `stagehand.dev/owner` value of the site.
    pub owner: &'a str,
    /// `metadata.uid`: the distribution's `CallerReference` derives from it.
    pub uid: &'a str,
    pub limits: ArchiveLimits,
    /// Deletion does not read the source build.
    pub read_source: bool,
}

impl Observer<'_> {
    fn s3(&self, spec: &StaticSiteSpec) -> S3 {
        self.inventory.aws().s3(&spec.region)
    }

    fn cloudfront(&self, spec: &StaticSiteSpec) -> CloudFront {
        self.inventory.aws().cloudfront(&spec.region)
    }
}

/// Observes one site.
pub async fn observe(
    observer: &Observer<'_>,
    spec: &StaticSiteSpec,
) -> Result<Observed, StaticSiteError> {
    let aws = |source: AwsError| StaticSiteError::Observe { source };
    let s3 = observer.s3(spec);
    let bucket = observe_bucket(&s3, &spec.bucket.name).await.map_err(aws)?;
    let cloudfront = observer.cloudfront(spec);
    let origin_access_control = observer
        .inventory
        .cloudfront(&spec.region)
        .origin_access_control(&oac_name(observer.owner))
        .await
        .map_err(aws)?
        .map(|o| ObservedOac {
            id: o.id,
            name: o.name,
        });
    let distribution = observe_distribution(observer, spec, &cloudfront)
        .await
        .map_err(aws)?;
    let invalidation = observe_invalidation(observer, &cloudfront, distribution.as_ref())
        .await
        .map_err(aws)?;
    let event_feed = observer.inventory.event_feed(&spec.region);
    let source_without_events = if event_feed == EventFeed::NotConfigured || !observer.read_source {
        Vec::new()
    } else {
        observer
            .inventory
            .s3(&spec.region)
            .buckets_without_events([spec.source.bucket.as_str()])
            .await
    };
    let pending_create = observer.status.and_then(|s| s.pending_create.clone());
    let mut observed = Observed {
        bucket,
        origin_access_control,
        distribution,
        invalidation,
        event_feed,
        source_without_events,
        pending_create,
        ..Observed::default()
    };
    let claimable = spec.lifecycle.adopt
        || intent::records(
            observed.pending_create.as_ref(),
            PENDING_BUCKET,
            &spec.bucket.name,
        );
    if observed
        .bucket
        .as_ref()
        .is_some_and(|b| content_is_ours(b, observer.owner, claimable))
    {
        observe_content(observer, spec, &s3, &mut observed).await?;
    }
    // After the content: an archive this process has not read yet may be known from the
    // manifest status names for it.
    if observer.read_source && spec.rollback_to.is_none() {
        observed.source = observe_source(observer, spec, &mut observed).await?;
    }
    Ok(observed)
}

/// Whether the bucket's objects are the site's to read: the bucket is tagged as its own, or
/// untagged and `claimable` (to be adopted, or named by the site's intent record: the plan
/// needs its version listing to tell an empty bucket the site created from a stranger's).
/// Another owner's bucket, or an untagged one neither adopted nor recorded, stalls the site
/// whatever it holds, and reading it would cost a HEAD per object that no manifest of this
/// site records (all of them) every round until someone steps in.
fn content_is_ours(bucket: &ObservedBucket, owner: &str, claimable: bool) -> bool {
    match bucket.tags.get(OWNER_TAG).filter(|o| !o.is_empty()) {
        Some(tagged) => tagged == owner,
        None => claimable,
    }
}

/// The bucket's settings; `None` when it does not exist.
async fn observe_bucket(s3: &S3, name: &str) -> Result<Option<ObservedBucket>, AwsError> {
    if s3.head_bucket(name).await?.is_none() {
        return Ok(None);
    }
    let settings = s3.bucket_settings(name).await?;
    Ok(Some(ObservedBucket {
        tags: settings.tags,
        versioning_enabled: settings.versioning == Some(Versioning::Enabled),
        public_access_blocked: settings.public_access_block.is_some_and(|p| p.is_all()),
        owner_enforced: settings.object_ownership.as_deref() == Some("BucketOwnerEnforced"),
        encrypted: settings.default_encryption.is_some(),
        // A policy that is not JSON is compared as absent: the site's policy replaces it.
        policy: settings.policy.and_then(|p| serde_json::from_str(&p).ok()),
        eventbridge_notifications: settings.eventbridge_notifications,
    }))
}

/// `distribution.id`'s distribution, else the one status recorded, else (a first round, or a
/// crash before the status write) the one created with the site's `CallerReference`.
async fn observe_distribution(
    observer: &Observer<'_>,
    spec: &StaticSiteSpec,
    cloudfront: &CloudFront,
) -> Result<Option<ObservedDistribution>, AwsError> {
    let recorded = observer
        .status
        .and_then(|s| s.distribution.as_ref())
        .map(|d| d.id.clone());
    let id = spec.distribution.id.clone().or(recorded);
    let mut found = match &id {
        Some(id) => cloudfront.get_distribution(id).await?,
        None => None,
    };
    if found.is_none() && spec.distribution.id.is_none() {
        found = cloudfront
            .find_distribution(
                &distribution_caller_reference(observer.uid),
                &distribution_comment(observer.owner),
            )
            .await?;
    }
    let Some(info) = found else {
        return Ok(None);
    };
    let tags = cloudfront.distribution_tags(&info.arn).await?;
    Ok(Some(observed_distribution(info, tags)))
}

/// CloudFront's view of a distribution as the plan reads it.
fn observed_distribution(
    info: DistributionInfo,
    tags: BTreeMap<String, String>,
) -> ObservedDistribution {
    let settings = info.settings;
    let spa_fallback = !settings.error_responses.is_empty()
        && settings.error_responses == ErrorResponse::spa_fallback(&settings.default_root_object);
    ObservedDistribution {
        id: info.id,
        arn: info.arn,
        domain_name: info.domain_name,
        status: info.status,
        e_tag: info.e_tag.unwrap_or_default(),
        tags,
        config: DistributionConfig {
            origin_domain_name: settings.origin.domain_name,
            origin_access_control_id: settings.origin.origin_access_control_id,
            default_root_object: settings.default_root_object,
            redirect_to_https: settings.viewer_protocol_policy == "redirect-to-https",
            compress: settings.compress,
            aliases: settings.aliases.into_iter().collect(),
            spa_fallback,
            enabled: settings.enabled,
        },
    }
}

/// The last invalidation status recorded, as CloudFront reports it now (read only while it
/// was not completed).
async fn observe_invalidation(
    observer: &Observer<'_>,
    cloudfront: &CloudFront,
    distribution: Option<&ObservedDistribution>,
) -> Result<Option<ObservedInvalidation>, AwsError> {
    let Some(last) = observer.status.and_then(|s| s.last_invalidation.as_ref()) else {
        return Ok(None);
    };
    let recorded = ObservedInvalidation {
        id: last.id.clone(),
        status: last.status.clone().unwrap_or_default(),
    };
    if recorded.is_completed() {
        return Ok(Some(recorded));
    }
    let Some(distribution) = distribution else {
        return Ok(None);
    };
    Ok(cloudfront
        .get_invalidation(&distribution.id, &last.id)
        .await?
        .map(|i| ObservedInvalidation {
            id: i.id,
            status: i.status,
        }))
}

/// The build to deploy: the archive (read only when it changed; the cache's build is shared,
/// never copied) or the prefix.
async fn observe_source(
    observer: &Observer<'_>,
    spec: &StaticSiteSpec,
    observed: &mut Observed,
) -> Result<Arc<SourceState>, StaticSiteError> {
    let source = &spec.source;
    match (&source.archive, &source.prefix) {
        (Some(key), _) => observe_archive(observer, spec, observed, &source.bucket, key).await,
        (None, Some(prefix)) => observe_prefix(observer, spec, &source.bucket, prefix)
            .await
            .map(Arc::new)
            .map_err(|source| StaticSiteError::Observe { source }),
        (None, None) => Ok(Arc::new(SourceState::Missing {
            location: format!("s3://{}", source.bucket),
        })),
    }
}

/// The archive's checked build, from the cache while its version and ETag are unchanged. A
/// refused archive is remembered too: it is not downloaded again until it is replaced.
async fn observe_archive(
    observer: &Observer<'_>,
    spec: &StaticSiteSpec,
    observed: &mut Observed,
    bucket: &str,
    key: &str,
) -> Result<Arc<SourceState>, StaticSiteError> {
    let aws = |source: AwsError| StaticSiteError::Observe { source };
    let location = format!("s3://{bucket}/{key}");
    let s3 = observer.s3(spec);
    let Some(head) = s3.head_object(bucket, key, None).await.map_err(aws)? else {
        return Ok(Arc::new(SourceState::Missing { location }));
    };
    let version = ArchiveVersion {
        version_id: head.version_id.clone(),
        e_tag: head.e_tag.clone(),
    };
    observed.source_archive = Some(version.clone());
    if let Some(known) = observer.cache.build(bucket, key, &version) {
        return Ok(known);
    }
    if let Some(build) = recorded_build(observer.status, observed, bucket, key, &version) {
        let state = Arc::new(SourceState::Read(build));
        observer
            .cache
            .remember_build(bucket, key, version, Arc::clone(&state));
        return Ok(state);
    }
    let Some(format) = ArchiveFormat::of_key(key) else {
        return Ok(Arc::new(SourceState::Refused {
            reason: "UnsupportedArchive",
            message: format!("{location}: only .zip, .tar.gz and .tgz archives are read"),
        }));
    };
    let Some(stream) = s3
        .get_object_stream(bucket, key, head.version_id.as_deref())
        .await
        .map_err(aws)?
    else {
        return Ok(Arc::new(SourceState::Missing { location }));
    };
    let state = match read_archive_async(stream.body, format, observer.limits, Discard).await {
        Ok((build, _)) => SourceState::Read(SourceBuild {
            location: ManifestSource {
                bucket: bucket.to_owned(),
                key: key.to_owned(),
                version_id: head.version_id.clone(),
                sha256: head.sha256().map(|d| d.to_hex()),
            },
            files: build
                .entries
                .into_iter()
                .map(|e| SourceFile {
                    key: e.key,
                    size: e.size,
                    sha256: Some(e.sha256),
                    origin: ContentOrigin::ArchiveEntry,
                })
                .collect(),
        }),
        Err(error) if error.class() == ErrorClass::Stalled => SourceState::Refused {
            reason: error.reason(),
            message: format!("source archive {location}: {error}"),
        },
        Err(source) => {
            return Err(StaticSiteError::Build {
                archive: location,
                source,
            });
        }
    };
    let state = Arc::new(state);
    observer
        .cache
        .remember_build(bucket, key, version, Arc::clone(&state));
    Ok(state)
}

/// The objects under `prefix`, keyed by their name below it. The SHA-256 of each is S3's
/// checksum when it has one (a HEAD, kept per ETag by the S3 inventory), else a hash streamed
/// once before (`HashSourceObjects`), else unknown (`None`: the plan hashes it first).
async fn observe_prefix(
    observer: &Observer<'_>,
    spec: &StaticSiteSpec,
    bucket: &str,
    prefix: &str,
) -> Result<SourceState, AwsError> {
    let s3 = observer.s3(spec);
    let listed = match s3.list_objects(bucket, Some(prefix)).await {
        Ok(listed) => listed,
        // The source bucket itself is missing: a stall that names it (re-checked at the
        // resync interval, when CI may have created it), not an AWS error retried in a loop.
        Err(error) if error.is_not_found() => {
            return Ok(SourceState::Missing {
                location: format!("bucket {bucket}"),
            });
        }
        Err(error) => return Err(error),
    };
    let location = format!("s3://{bucket}/{prefix}");
    let mut files = Vec::new();
    let mut with_checksum = Vec::new();
    for object in listed {
        let raw = object.key.strip_prefix(prefix).unwrap_or(&object.key);
        let key = match normalise(raw.as_bytes()) {
            Ok(EntryName::File(key)) => key,
            Ok(EntryName::Directory) => continue,
            Err(rule) => {
                return Ok(SourceState::Refused {
                    reason: "UnsafeEntryName",
                    message: format!("source object {:?} refused: {rule}", object.key),
                });
            }
        };
        if object.checksum_algorithms.iter().any(|a| a == "SHA256") {
            with_checksum.push(object.key.clone());
        }
        let artifact = ArtifactKey {
            bucket: bucket.to_owned(),
            key: object.key.clone(),
            version_id: None,
            e_tag: object.e_tag.clone(),
        };
        files.push(SourceFile {
            key,
            size: object.size.and_then(|s| u64::try_from(s).ok()).unwrap_or(0),
            sha256: observer.inventory.s3(&spec.region).known_sha256(&artifact),
            origin: ContentOrigin::SourceObject {
                bucket: bucket.to_owned(),
                key: object.key,
                e_tag: object.e_tag,
            },
        });
    }
    if files.is_empty() {
        return Ok(SourceState::Missing { location });
    }
    let heads = observer
        .inventory
        .s3(&spec.region)
        .object_heads(bucket, &with_checksum)
        .await?;
    for file in &mut files {
        if let ContentOrigin::SourceObject { key, .. } = &file.origin
            && let Some(Some(head)) = heads.get(key)
            && let Some(sha256) = head.sha256()
        {
            file.sha256 = Some(sha256);
        }
    }
    files.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(SourceState::Read(SourceBuild {
        location: ManifestSource {
            bucket: bucket.to_owned(),
            key: prefix.to_owned(),
            version_id: None,
            sha256: None,
        },
        files,
    }))
}

/// The build of an archive read by an earlier process: status names the revision built from
/// exactly this archive version and ETag, and that revision's stored manifest lists its files
/// (every file of a build is in its revision, with its size and SHA-256). `None` when status
/// names another archive version or the revision's manifest is no longer stored: read it.
fn recorded_build(
    status: Option<&StaticSiteStatus>,
    observed: &Observed,
    bucket: &str,
    key: &str,
    version: &ArchiveVersion,
) -> Option<SourceBuild> {
    let recorded = status?
        .source_archive
        .as_ref()
        .filter(|r| r.object == version.of(bucket, key))?;
    let stored = observed.manifest(&recorded.revision)?;
    let manifest = &stored.manifest;
    let files = manifest
        .objects
        .iter()
        .map(|(key, object)| {
            Some(SourceFile {
                key: key.clone(),
                size: object.size,
                sha256: Some(object.digest()?),
                origin: ContentOrigin::ArchiveEntry,
            })
        })
        .collect::<Option<Vec<_>>>()?;
    Some(SourceBuild {
        location: manifest.source.clone(),
        files,
    })
}

/// The served record, the stored manifests, the live objects and every version, from one
/// paged `ListObjectVersions` plus reads of records not seen before.
async fn observe_content(
    observer: &Observer<'_>,
    spec: &StaticSiteSpec,
    s3: &S3,
    observed: &mut Observed,
) -> Result<(), StaticSiteError> {
    let aws = |source: AwsError| StaticSiteError::Observe { source };
    let bucket = spec.bucket.name.as_str();
    let versions = s3.list_object_versions(bucket, None).await.map_err(aws)?;
    for version in versions.iter().filter(|v| v.is_current()) {
        if revision_of_key(&version.key).is_some() {
            let version_id = version_id(version);
            let manifest = read_manifest(observer, s3, bucket, &version.key, &version_id).await?;
            observed.manifests.push(StoredManifest {
                manifest,
                version_id,
            });
        }
    }
    observed.served = read_served(observer, s3, bucket).await?;
    forget_unlisted_manifests(observer.cache, bucket, observed);
    for version in versions.iter().filter(|v| v.is_current()) {
        if version.key.starts_with(RECORDS_PREFIX) {
            continue;
        }
        let version_id = version_id(version);
        let facts = if recorded(observed, &version.key, &version_id) {
            None
        } else {
            unrecorded_facts(observer, spec, &version.key, &version_id).await?
        };
        observed.live.insert(
            version.key.clone(),
            LiveObject {
                version_id,
                size: version
                    .size
                    .and_then(|s| u64::try_from(s).ok())
                    .unwrap_or(0),
                facts,
            },
        );
    }
    observed.versions = Some(versions);
    Ok(())
}

/// Drops cached manifests of `bucket` that are neither current nor served any more (replaced
/// by a rewrite, or deleted with their revision): only what this round read stays.
fn forget_unlisted_manifests(cache: &SiteCache, bucket: &str, observed: &Observed) {
    let served = observed.served.as_ref().map(|s| {
        (
            manifest_key(&s.record.revision),
            &s.record.manifest_version_id,
        )
    });
    cache.retain_manifests(bucket, |key, version| {
        observed
            .manifests
            .iter()
            .any(|m| m.version_id == version && manifest_key(&m.manifest.revision) == key)
            || served
                .as_ref()
                .is_some_and(|(k, v)| k == key && *v == version)
    });
}

/// A version's id; `null` is what S3 calls the version of an object written while versioning
/// was off.
fn version_id(version: &ObjectVersion) -> String {
    version
        .version_id
        .clone()
        .unwrap_or_else(|| "null".to_owned())
}

/// Whether a stored manifest (or the served one) records this version of `key`.
fn recorded(observed: &Observed, key: &str, version_id: &str) -> bool {
    observed
        .served
        .iter()
        .map(|s| &s.manifest)
        .chain(observed.manifests.iter().map(|m| &m.manifest))
        .any(|m| {
            m.objects
                .get(key)
                .is_some_and(|o| o.version_id == version_id)
        })
}

/// What an unrecorded version holds: a HEAD, once per version.
async fn unrecorded_facts(
    observer: &Observer<'_>,
    spec: &StaticSiteSpec,
    key: &str,
    version_id: &str,
) -> Result<Option<ObjectFacts>, StaticSiteError> {
    let head = observer
        .inventory
        .s3(&spec.region)
        .object_version_head(&spec.bucket.name, key, version_id)
        .await
        .map_err(|source| StaticSiteError::Observe { source })?;
    Ok(head.map(|head| ObjectFacts {
        sha256: head.sha256(),
        metadata: ObjectMetadata {
            content_type: head
                .content_type
                .clone()
                .unwrap_or_else(|| DEFAULT_CONTENT_TYPE.to_owned()),
            cache_control: head.cache_control.clone(),
        },
    }))
}

/// A manifest at a version: from the cache, else read and parsed (strictly) once.
async fn read_manifest(
    observer: &Observer<'_>,
    s3: &S3,
    bucket: &str,
    key: &str,
    version_id: &str,
) -> Result<Arc<Manifest>, StaticSiteError> {
    if let Some(known) = observer.cache.manifest(bucket, key, version_id) {
        return Ok(known);
    }
    let object = s3
        .get_small_object(bucket, key, Some(version_id), MAX_RECORD_BYTES)
        .await
        .map_err(|source| StaticSiteError::Observe { source })?;
    let Some(object) = object else {
        return Err(StaticSiteError::Inconsistent {
            action: "observe".to_owned(),
            message: format!("{key} version {version_id} was listed but cannot be read"),
        });
    };
    let manifest = Arc::new(Manifest::parse(key, &object.body)?);
    observer
        .cache
        .remember_manifest(bucket, key, version_id, Arc::clone(&manifest));
    Ok(manifest)
}

/// `.stagehand/served.json` and the manifest version it names. A record whose manifest version
/// is gone (deleted by hand) is treated as absent: the site is deployed again.
async fn read_served(
    observer: &Observer<'_>,
    s3: &S3,
    bucket: &str,
) -> Result<Option<ServedRevision>, StaticSiteError> {
    let object = s3
        .get_small_object(bucket, SERVED_KEY, None, MAX_RECORD_BYTES)
        .await
        .map_err(|source| StaticSiteError::Observe { source })?;
    let Some(object) = object else {
        return Ok(None);
    };
    let record = Served::parse(&object.body)?;
    let key = manifest_key(&record.revision);
    match read_manifest(observer, s3, bucket, &key, &record.manifest_version_id).await {
        Ok(manifest) => Ok(Some(ServedRevision { record, manifest })),
        Err(StaticSiteError::Inconsistent { message, .. }) => {
            tracing::warn!(%bucket, %message, "the served revision's manifest is gone; deploying again");
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use stagehand_crds::static_site::SourceArchiveStatus;

    use super::*;
    use crate::aws::s3::Sha256Digest;
    use crate::static_site::manifest::ManifestObject;

    fn status(e_tag: &str) -> StaticSiteStatus {
        StaticSiteStatus {
            source_archive: Some(SourceArchiveStatus {
                object: version(e_tag).of("builds", "site.zip"),
                revision: "sha-1".into(),
            }),
            ..StaticSiteStatus::default()
        }
    }

    fn stored(revision: &str) -> Observed {
        let manifest = Manifest {
            format: 1,
            revision: revision.into(),
            created_at: "2026-12-01T10:00:00Z".into(),
            source: ManifestSource {
                bucket: "builds".into(),
                key: "site.zip".into(),
                version_id: None,
                sha256: None,
            },
            objects: BTreeMap::from([(
                "index.html".into(),
                ManifestObject {
                    version_id: "ver-1".into(),
                    sha256: Sha256Digest::of(b"<html>").to_hex(),
                    size: 6,
                    content_type: "text/html".into(),
                    cache_control: None,
                },
            )]),
        };
        Observed {
            manifests: vec![StoredManifest {
                manifest: Arc::new(manifest),
                version_id: "m-1".into(),
            }],
            ..Observed::default()
        }
    }

    fn version(e_tag: &str) -> ArchiveVersion {
        ArchiveVersion {
            version_id: None,
            e_tag: Some(e_tag.into()),
        }
    }

    #[test]
    fn an_unchanged_archive_is_known_from_the_revision_status_names() {
        let build = recorded_build(
            Some(&status("\"e1\"")),
            &stored("sha-1"),
            "builds",
            "site.zip",
            &version("\"e1\""),
        )
        .unwrap();
        assert_eq!(build.files.len(), 1);
        assert_eq!(build.files[0].key, "index.html");
        assert_eq!(build.files[0].size, 6);
        assert_eq!(build.files[0].sha256, Some(Sha256Digest::of(b"<html>")));
        assert_eq!(build.files[0].origin, ContentOrigin::ArchiveEntry);
    }

    #[test]
    fn a_changed_archive_or_a_revision_no_longer_stored_is_read_again() {
        let changed = recorded_build(
            Some(&status("\"e1\"")),
            &stored("sha-1"),
            "builds",
            "site.zip",
            &version("\"e2\""),
        );
        assert_eq!(changed, None);
        let pruned = recorded_build(
            Some(&status("\"e1\"")),
            &stored("sha-2"),
            "builds",
            "site.zip",
            &version("\"e1\""),
        );
        assert_eq!(pruned, None);
        let other_key = recorded_build(
            Some(&status("\"e1\"")),
            &stored("sha-1"),
            "builds",
            "other.zip",
            &version("\"e1\""),
        );
        assert_eq!(other_key, None);
    }
}
