//! Executes a StaticSite plan's [`Action`]s in order through the S3 and CloudFront adapters,
//! stopping at the first failure. Object transfers inside one action run with bounded
//! concurrency ([`TRANSFER_CONCURRENCY`]); the versions they write are kept in the report (the
//! manifest written after them names them) and told to the S3 inventory, so observe never
//! HEADs a version this controller wrote. Every action is safe to repeat after a crash: the
//! plan is made again from what is live, so what was written is not written again.
//!
//! Archive content is read again from the archive's observed version into a [`SpillDir`]
//! holding only the keys to upload, and each upload streams from that file: memory never holds
//! the site. Prefix objects are downloaded into the same kind of directory (the adapter copies
//! only within a bucket).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use futures::StreamExt as _;
use stagehand_crds::StaticSiteSpec;

use super::build::{ArchiveFormat, ArchiveLimits, SpillDir, read_archive_async};
use super::cache::SiteCache;
use super::error::StaticSiteError;
use super::manifest::{SERVED_KEY, manifest_key};
use super::metadata::ObjectMetadata;
use super::observe::distribution_comment;
use super::observed::{ContentOrigin, DistributionConfig, Observed, SourceState};
use super::plan::{Action, BucketSetting, Copy, Transfer, reason};
use crate::aws::AwsError;
use crate::aws::cloudfront::{
    CloudFront, DistributionInfo, DistributionSettings, InvalidationInfo, SiteDistribution,
};
use crate::aws::s3::{
    self, BucketCreated, ObjectCopy, ObjectHead, ObjectRef, ObjectUpload, PublicAccessBlock, S3,
    UploadBody, WriteResult,
};
use crate::aws::tags::{self, Ownership};
use crate::inventory::{ArtifactKey, Inventory};

/// Uploads and copies in flight at once: enough to hide S3's per-request latency, few enough
/// to stay far below its per-prefix request rate and to keep open files bounded.
pub const TRANSFER_CONCURRENCY: usize = 16;

/// Who acts, where, with which shared state.
#[derive(Debug)]
pub struct Actor<'a> {
    pub inventory: &'a Inventory,
    pub cache: &'a SiteCache,
    pub spec: &'a StaticSiteSpec,
    /// What the plan was made from (the source build's files and where they come from).
    pub observed: &'a Observed,
    /// `stagehand.dev/owner` value of the site.
    pub owner: &'a str,
    pub cluster_id: &'a str,
    /// Where archive content is spilled while it uploads.
    pub scratch: &'a Path,
    pub limits: ArchiveLimits,
}

/// What the executed actions did.
#[derive(Debug, Default)]
pub struct ActReport {
    /// The actions that succeeded, in order.
    pub done: Vec<Action>,
    /// Key → the version this round wrote for it.
    pub written: HashMap<String, String>,
    /// The manifest version written this round.
    pub manifest_version: Option<String>,
    /// The invalidation created this round.
    pub invalidation: Option<InvalidationInfo>,
    /// The distribution as created or updated this round.
    pub distribution: Option<DistributionInfo>,
    /// The action that failed (nothing after it ran).
    pub failure: Option<(Action, StaticSiteError)>,
}

impl Actor<'_> {
    /// Runs `actions` in order, stopping at the first failure; calls `on_start` before each.
    pub async fn execute_reporting(
        &self,
        actions: &[Action],
        mut on_start: impl FnMut(&Action),
    ) -> ActReport {
        let mut report = ActReport::default();
        for action in actions {
            on_start(action);
            match self.run(action, &mut report).await {
                Ok(()) => report.done.push(action.clone()),
                Err(error) => {
                    tracing::warn!(%action, %error, "action failed");
                    report.failure = Some((action.clone(), error));
                    break;
                }
            }
        }
        report
    }

    fn s3(&self) -> S3 {
        self.inventory.aws().s3(&self.spec.region)
    }

    fn cloudfront(&self) -> CloudFront {
        self.inventory.aws().cloudfront(&self.spec.region)
    }

    /// An OAC was created or deleted (or may have been, when the call failed): the shared
    /// listing is read again by the next round.
    fn access_controls_written(&self) {
        self.inventory
            .cloudfront(&self.spec.region)
            .access_controls_written();
    }

    fn bucket(&self) -> &str {
        &self.spec.bucket.name
    }

    async fn run(&self, action: &Action, report: &mut ActReport) -> Result<(), StaticSiteError> {
        let failed = |source: AwsError| StaticSiteError::Action {
            action: action.to_string(),
            source: Box::new(source),
        };
        let s3 = self.s3();
        let cloudfront = self.cloudfront();
        match action {
            Action::CreateBucket { bucket, tags } => self.create_bucket(bucket, tags).await,
            Action::ClaimBucket { bucket, tags } | Action::AdoptBucket { bucket, tags } => {
                let mut all = s3.get_bucket_tags(bucket).await.map_err(failed)?;
                all.extend(tags.clone());
                s3.put_bucket_tags(bucket, &all).await.map_err(failed)
            }
            Action::ConfigureBucket { bucket, settings } => {
                for setting in settings {
                    configure(&s3, bucket, *setting).await.map_err(failed)?;
                }
                Ok(())
            }
            Action::CreateOriginAccessControl { name } => {
                let created = cloudfront
                    .create_origin_access_control(
                        name,
                        "Stagehand: CloudFront reads the site bucket",
                    )
                    .await;
                self.access_controls_written();
                created.map(drop).map_err(failed)
            }
            Action::PutBucketPolicy { bucket, policy } => s3
                .put_bucket_policy(bucket, &policy.to_string())
                .await
                .map_err(failed),
            Action::CreateDistribution {
                caller_reference,
                config,
                tags,
            } => {
                let settings = self.distribution_settings(config, caller_reference);
                let created = cloudfront
                    .create_distribution(&settings, tags)
                    .await
                    .map_err(failed)?;
                report.distribution = Some(created.distribution);
                Ok(())
            }
            Action::AdoptDistribution { arn, tags } => {
                cloudfront.tag_distribution(arn, tags).await.map_err(failed)
            }
            Action::UpdateDistribution {
                id,
                if_match,
                config,
            } => {
                let settings = self.distribution_settings(config, "");
                let updated = cloudfront
                    .update_distribution(id, if_match, &settings)
                    .await
                    .map_err(failed)?;
                report.distribution = Some(updated);
                Ok(())
            }
            Action::HashSourceObjects { bucket, keys } => {
                self.hash_source_objects(bucket, keys).await.map_err(failed)
            }
            Action::UploadObjects { objects } => self.upload(action, objects, report).await,
            Action::UpdateMetadata { objects } | Action::RestoreVersions { objects } => {
                self.copy(action, objects, report).await
            }
            Action::WriteManifest { manifest } => {
                let manifest = manifest
                    .resolve(&report.written)
                    .map_err(|message| inconsistent(action, message))?;
                let key = manifest_key(&manifest.revision);
                let written = s3
                    .put_bytes(self.bucket(), &key, manifest.to_json(), json_metadata())
                    .await
                    .map_err(failed)?;
                let version = written_version(action, &key, &written)?;
                self.cache.remember_manifest(
                    self.bucket(),
                    &key,
                    &version,
                    std::sync::Arc::new(manifest),
                );
                report.manifest_version = Some(version);
                Ok(())
            }
            Action::DeleteObjects { keys } | Action::DeleteManifests { keys } => {
                let refs: Vec<ObjectRef> = keys.iter().map(ObjectRef::latest).collect();
                self.delete(action, &refs).await
            }
            Action::PruneVersions { versions } | Action::EmptyBucket { versions, .. } => {
                let refs: Vec<ObjectRef> = versions
                    .iter()
                    .map(|(key, version)| ObjectRef::version(key, version))
                    .collect();
                self.delete(action, &refs).await
            }
            Action::Invalidate {
                distribution_id,
                caller_reference,
                paths,
            } => {
                let created = cloudfront
                    .create_invalidation(distribution_id, caller_reference, paths)
                    .await
                    .map_err(failed)?;
                report.invalidation = Some(created);
                Ok(())
            }
            Action::RecordServed { served } => {
                let served = served
                    .resolve(report.manifest_version.as_deref())
                    .map_err(|message| inconsistent(action, message))?;
                s3.put_bytes(self.bucket(), SERVED_KEY, served.to_json(), json_metadata())
                    .await
                    .map(drop)
                    .map_err(failed)
            }
            Action::DeleteBucket { bucket } => {
                s3.delete_bucket(bucket).await.map_err(failed)?;
                self.cache.forget_bucket(bucket);
                Ok(())
            }
            Action::DeleteDistribution { id, if_match } => cloudfront
                .delete_distribution(id, if_match)
                .await
                .map(drop)
                .map_err(failed),
            Action::DeleteOriginAccessControl { id } => {
                let deleted = cloudfront.delete_origin_access_control(id).await;
                self.access_controls_written();
                deleted.map(drop).map_err(failed)
            }
        }
    }

    /// Creates the bucket with every setting the site depends on (the plan sends this only
    /// once status carries the intent record, so a crash before the tagging leaves a bucket the
    /// next round knows as the site's). A bucket that already exists in this account — a retry
    /// whose first answer was lost, or a bucket someone made since observe looked — is tagged
    /// and configured only when it is ours or untagged and empty (the plan's claim rule).
    async fn create_bucket(
        &self,
        bucket: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), StaticSiteError> {
        let s3 = self.s3();
        let failed = |source: AwsError| StaticSiteError::Action {
            action: format!("create bucket {bucket}"),
            source: Box::new(source),
        };
        if s3.create_bucket(bucket).await.map_err(failed)? == BucketCreated::AlreadyOwned {
            let existing = s3.get_bucket_tags(bucket).await.map_err(failed)?;
            match tags::ownership(&existing, self.owner, self.cluster_id) {
                Ownership::Ours => {}
                Ownership::OtherOwner(other) => {
                    return Err(StaticSiteError::Stalled {
                        reason: reason::OWNERSHIP_CONFLICT,
                        message: format!("bucket {bucket} is owned by {other}"),
                    });
                }
                Ownership::Untagged => {
                    if !s3.is_empty(bucket).await.map_err(failed)? {
                        return Err(StaticSiteError::Stalled {
                            reason: reason::ADOPTION_REQUIRED,
                            message: format!(
                                "bucket {bucket} already exists without a {} tag and holds objects this site never wrote; set spec.adopt: true to let this site manage it",
                                tags::OWNER_TAG
                            ),
                        });
                    }
                }
            }
        }
        s3.put_bucket_tags(bucket, tags).await.map_err(failed)?;
        for setting in [
            BucketSetting::Versioning,
            BucketSetting::BlockPublicAccess,
            BucketSetting::OwnerEnforced,
            BucketSetting::DefaultEncryption,
        ] {
            configure(&s3, bucket, setting).await.map_err(failed)?;
        }
        Ok(())
    }

    /// CloudFront's settings for the site's distribution configuration.
    fn distribution_settings(
        &self,
        config: &DistributionConfig,
        caller_reference: &str,
    ) -> DistributionSettings {
        let mut settings = DistributionSettings::for_site(&SiteDistribution {
            caller_reference: caller_reference.to_owned(),
            comment: distribution_comment(self.owner),
            bucket: self.bucket().to_owned(),
            bucket_region: self.spec.region.clone(),
            origin_access_control_id: config.origin_access_control_id.clone().unwrap_or_default(),
            default_root_object: config.default_root_object.clone(),
            aliases: config.aliases.iter().cloned().collect(),
            spa_fallback: config.spa_fallback,
        });
        settings.enabled = config.enabled;
        settings
    }

    /// Streams each prefix object once; the S3 inventory keeps the hash by its ETag.
    async fn hash_source_objects(&self, bucket: &str, keys: &[String]) -> Result<(), AwsError> {
        let inventory = self.inventory.s3(&self.spec.region);
        for key in keys {
            if let Some((source_key, e_tag)) = self.source_object(key) {
                let artifact = ArtifactKey {
                    bucket: bucket.to_owned(),
                    key: source_key,
                    version_id: None,
                    e_tag,
                };
                inventory.hash_object(artifact).await?;
            }
        }
        Ok(())
    }

    /// The source object (key, ETag) of a site key of a prefix build.
    fn source_object(&self, key: &str) -> Option<(String, Option<String>)> {
        let SourceState::Read(build) = &*self.observed.source else {
            return None;
        };
        let file = build.files.iter().find(|f| f.key == key)?;
        match &file.origin {
            ContentOrigin::SourceObject { key, e_tag, .. } => Some((key.clone(), e_tag.clone())),
            ContentOrigin::ArchiveEntry => None,
        }
    }

    /// Uploads `objects`, their content spilled to disk first (from the archive, or
    /// downloaded from the source prefix).
    async fn upload(
        &self,
        action: &Action,
        objects: &[Transfer],
        report: &mut ActReport,
    ) -> Result<(), StaticSiteError> {
        let spill = self.spill(action, objects).await?;
        let s3 = self.s3();
        let bucket = self.bucket();
        // By index: a closure over `&Transfer` would be generic over its lifetime, and such a
        // future is not `Send` for every lifetime, which the reconciler's future must be.
        let pending = (0..objects.len()).map(|i| {
            let object = &objects[i];
            put_one(&s3, bucket, action, object, spill.path(&object.key))
        });
        let results = bounded(pending).await;
        let written = results
            .into_iter()
            .map(|r| r.map(|(o, w)| (o.key.as_str(), o.sha256, o.size, &o.metadata, w)));
        self.record_writes(action, written, report)
    }

    /// Copies of stored versions onto their keys, with the planned metadata.
    async fn copy(
        &self,
        action: &Action,
        objects: &[Copy],
        report: &mut ActReport,
    ) -> Result<(), StaticSiteError> {
        let s3 = self.s3();
        let bucket = self.bucket();
        let pending = (0..objects.len()).map(|i| copy_one(&s3, bucket, action, &objects[i]));
        let results = bounded(pending).await;
        let written = results
            .into_iter()
            .map(|r| r.map(|(o, w)| (o.key.as_str(), o.sha256, o.size, &o.metadata, w)));
        self.record_writes(action, written, report)
    }

    /// Keeps every version written (also when another transfer of the action failed: those
    /// are live now) and tells the S3 inventory what each holds; returns the first failure.
    fn record_writes<'o>(
        &self,
        action: &Action,
        results: impl Iterator<
            Item = Result<
                (
                    &'o str,
                    s3::Sha256Digest,
                    u64,
                    &'o ObjectMetadata,
                    WriteResult,
                ),
                StaticSiteError,
            >,
        >,
        report: &mut ActReport,
    ) -> Result<(), StaticSiteError> {
        let inventory = self.inventory.s3(&self.spec.region);
        let mut first_failure = None;
        for result in results {
            let (key, sha256, size, metadata, written) = match result {
                Ok(done) => done,
                Err(error) => {
                    first_failure.get_or_insert(error);
                    continue;
                }
            };
            match written_version(action, key, &written) {
                Ok(version) => {
                    inventory.object_version_written(
                        self.bucket(),
                        key,
                        ObjectHead {
                            e_tag: written.e_tag.clone(),
                            version_id: Some(version.clone()),
                            checksum_sha256: Some(sha256.to_base64()),
                            size: i64::try_from(size).ok(),
                            last_modified: None,
                            content_type: Some(metadata.content_type.clone()),
                            cache_control: metadata.cache_control.clone(),
                        },
                    );
                    report.written.insert(key.to_owned(), version);
                }
                Err(error) => {
                    first_failure.get_or_insert(error);
                }
            }
        }
        first_failure.map_or(Ok(()), Err)
    }

    /// The content of `objects` on disk: the archive read again (its observed version) keeping
    /// only these keys, or each prefix object downloaded.
    async fn spill(&self, action: &Action, objects: &[Transfer]) -> Result<Spill, StaticSiteError> {
        let SourceState::Read(build) = &*self.observed.source else {
            return Err(inconsistent(
                action,
                "the source build was not read".to_owned(),
            ));
        };
        let scratch =
            |source: std::io::Error| inconsistent(action, format!("scratch directory: {source}"));
        let from_archive = objects
            .iter()
            .any(|o| o.origin == ContentOrigin::ArchiveEntry);
        if !from_archive {
            return self.download(action, objects).await;
        }
        let location = &build.location;
        let format = ArchiveFormat::of_key(&location.key)
            .ok_or_else(|| inconsistent(action, format!("{} is not an archive", location.key)))?;
        let stream = self
            .s3()
            .get_object_stream(
                &location.bucket,
                &location.key,
                location.version_id.as_deref(),
            )
            .await
            .map_err(|source| StaticSiteError::Action {
                action: action.to_string(),
                source: Box::new(source),
            })?
            .ok_or_else(|| inconsistent(action, format!("the archive {} is gone", location.key)))?;
        let sink = SpillDir::new_in(self.scratch)
            .map_err(scratch)?
            .only(objects.iter().map(|o| o.key.clone()));
        let (read, sink) = read_archive_async(stream.body, format, self.limits, sink)
            .await
            .map_err(|source| StaticSiteError::Build {
                archive: format!("s3://{}/{}", location.bucket, location.key),
                source,
            })?;
        let hashes: HashMap<&str, s3::Sha256Digest> = read
            .entries
            .iter()
            .map(|e| (e.key.as_str(), e.sha256))
            .collect();
        if let Some(changed) = objects
            .iter()
            .find(|o| hashes.get(o.key.as_str()) != Some(&o.sha256))
        {
            return Err(inconsistent(
                action,
                format!(
                    "archive entry {:?} changed since it was checked",
                    changed.key
                ),
            ));
        }
        Ok(Spill::Archive(sink))
    }

    /// Downloads prefix objects into a scratch directory.
    async fn download(
        &self,
        action: &Action,
        objects: &[Transfer],
    ) -> Result<Spill, StaticSiteError> {
        let scratch =
            |source: std::io::Error| inconsistent(action, format!("scratch directory: {source}"));
        let dir = tempfile::Builder::new()
            .prefix("stagehand-source-")
            .tempdir_in(self.scratch)
            .map_err(scratch)?;
        let mut files = HashMap::new();
        let s3 = self.s3();
        for (index, object) in objects.iter().enumerate() {
            let ContentOrigin::SourceObject { bucket, key, .. } = &object.origin else {
                continue;
            };
            let Some(mut stream) = s3
                .get_object_stream(bucket, key, None)
                .await
                .map_err(|source| transfer_failed(action, key, source))?
            else {
                return Err(inconsistent(
                    action,
                    format!("source object {key:?} is gone"),
                ));
            };
            let path = dir.path().join(index.to_string());
            let mut file = tokio::fs::File::create(&path).await.map_err(scratch)?;
            tokio::io::copy_buf(&mut stream.body, &mut file)
                .await
                .map_err(scratch)?;
            files.insert(object.key.clone(), path);
        }
        Ok(Spill::Downloaded { _dir: dir, files })
    }

    async fn delete(&self, action: &Action, refs: &[ObjectRef]) -> Result<(), StaticSiteError> {
        let failures = self
            .s3()
            .delete_objects(self.bucket(), refs)
            .await
            .map_err(|source| StaticSiteError::Action {
                action: action.to_string(),
                source: Box::new(source),
            })?;
        match failures.first() {
            None => Ok(()),
            Some(first) => Err(inconsistent(
                action,
                format!(
                    "{} key(s) not deleted, first {:?}: {}",
                    failures.len(),
                    first.key,
                    first.code.as_deref().unwrap_or("unknown error")
                ),
            )),
        }
    }
}

/// Content on disk, removed when dropped.
enum Spill {
    Archive(SpillDir),
    Downloaded {
        _dir: tempfile::TempDir,
        files: HashMap<String, PathBuf>,
    },
}

impl Spill {
    fn path(&self, key: &str) -> Option<PathBuf> {
        match self {
            Self::Archive(dir) => dir.path(key).map(Path::to_path_buf),
            Self::Downloaded { files, .. } => files.get(key).cloned(),
        }
    }
}

/// Runs `pending` at most [`TRANSFER_CONCURRENCY`] at a time; every result, in completion
/// order. Each future is made only when a slot frees up, so what is held does not grow with
/// the number of transfers (making all of them first cost ≈ 0.5 KB an object: 2.5 MB of a
/// 5,000-object first deploy, measured by `bench_site`).
async fn bounded<F: std::future::Future>(pending: impl Iterator<Item = F>) -> Vec<F::Output> {
    futures::stream::iter(pending)
        .buffer_unordered(TRANSFER_CONCURRENCY)
        .collect()
        .await
}

/// One upload of a file's content.
async fn put_one<'o>(
    s3: &S3,
    bucket: &str,
    action: &Action,
    object: &'o Transfer,
    path: Option<PathBuf>,
) -> Result<(&'o Transfer, WriteResult), StaticSiteError> {
    let Some(path) = path else {
        return Err(inconsistent(
            action,
            format!("no content was read for {:?}", object.key),
        ));
    };
    let upload = ObjectUpload {
        key: object.key.clone(),
        sha256: object.sha256,
        metadata: s3_metadata(&object.metadata),
        body: UploadBody::File(path),
    };
    let written = s3
        .put_object(bucket, &upload)
        .await
        .map_err(|source| transfer_failed(action, &object.key, source))?;
    Ok((object, written))
}

/// One copy of a stored version onto its key, with the planned metadata.
async fn copy_one<'o>(
    s3: &S3,
    bucket: &str,
    action: &Action,
    object: &'o Copy,
) -> Result<(&'o Copy, WriteResult), StaticSiteError> {
    let copy = ObjectCopy {
        key: object.key.clone(),
        source: ObjectRef::version(&object.key, &object.from_version_id),
        metadata: Some(s3_metadata(&object.metadata)),
    };
    let written = s3
        .copy_object(bucket, &copy)
        .await
        .map_err(|source| transfer_failed(action, &object.key, source))?;
    Ok((object, written))
}

/// Turns one bucket setting on.
async fn configure(s3: &S3, bucket: &str, setting: BucketSetting) -> Result<(), AwsError> {
    match setting {
        BucketSetting::Versioning => s3.enable_versioning(bucket).await,
        BucketSetting::BlockPublicAccess => {
            s3.put_public_access_block(bucket, PublicAccessBlock::ALL)
                .await
        }
        BucketSetting::OwnerEnforced => s3.enforce_bucket_owner(bucket).await,
        BucketSetting::DefaultEncryption => s3.encrypt_by_default(bucket).await,
        BucketSetting::EventBridgeNotifications => {
            s3.set_eventbridge_notifications(bucket, true).await
        }
    }
}

fn s3_metadata(metadata: &ObjectMetadata) -> s3::ObjectMetadata {
    s3::ObjectMetadata {
        content_type: Some(metadata.content_type.clone()),
        cache_control: metadata.cache_control.clone(),
    }
}

fn json_metadata() -> s3::ObjectMetadata {
    s3::ObjectMetadata {
        content_type: Some("application/json".to_owned()),
        cache_control: Some("no-store".to_owned()),
    }
}

/// The version a write made: a versioned bucket always names one.
fn written_version(
    action: &Action,
    key: &str,
    written: &WriteResult,
) -> Result<String, StaticSiteError> {
    written
        .version_id
        .clone()
        .ok_or_else(|| inconsistent(action, format!("S3 returned no version id for {key:?}")))
}

fn inconsistent(action: &Action, message: String) -> StaticSiteError {
    StaticSiteError::Inconsistent {
        action: action.facts().kind.to_owned(),
        message,
    }
}

fn transfer_failed(action: &Action, key: &str, source: AwsError) -> StaticSiteError {
    StaticSiteError::Action {
        action: format!("{}: {key}", action.facts().kind),
        source: Box::new(source),
    }
}
