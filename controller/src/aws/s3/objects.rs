//! Objects and their versions: uploads that carry their SHA-256, copies in place, downloads
//! (streamed, or bounded for small documents), listings and batched deletes.
//!
//! Listings: `ListObjectsV2` gives each current object's key, size, ETag, modification time
//! and checksum *algorithm* — not its version id nor its checksum value. `ListObjectVersions`
//! gives every version (id, is-latest, size, ETag) and delete marker; the current objects are
//! its latest non-marker entries, so a sync that needs version ids lists versions.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    ChecksumAlgorithm, ChecksumMode, Delete, MetadataDirective, ObjectIdentifier,
};
use bytes::Bytes;
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt as _;

use super::types::{
    DeleteFailure, EmptiedBucket, ObjectCopy, ObjectHead, ObjectMetadata, ObjectPage, ObjectRef,
    ObjectStream, ObjectSummary, ObjectUpload, ObjectVersion, Sha256Digest, SmallObject,
    UploadBody, VersionMarker, VersionPage, WriteResult,
};
use super::{DELETE_BATCH, S3, body_error, copy_source, invalid_input, object_name, timestamp};
use crate::aws::{AwsError, ErrorKind, Service};

/// `MaxKeys` of a listing page: S3's maximum.
const LIST_PAGE: i32 = 1000;

/// The most listing pages [`S3::empty_bucket`] deletes in one call (10 million versions): a
/// writer that never stops must not keep it running forever.
const EMPTY_MAX_PAGES: usize = 10_000;

/// Reads an [`ObjectHead`] from the headers of a HEAD or GET output (same getters, different
/// types).
macro_rules! object_head {
    ($output:expr) => {{
        let o = $output;
        ObjectHead {
            e_tag: o.e_tag().map(str::to_owned),
            version_id: o.version_id().map(str::to_owned),
            checksum_sha256: o.checksum_sha256().map(str::to_owned),
            size: o.content_length(),
            last_modified: timestamp(o.last_modified()),
            content_type: o.content_type().map(str::to_owned),
            cache_control: o.cache_control().map(str::to_owned),
        }
    }};
}

impl S3 {
    /// HEAD with checksums requested; `None` when the object (or version) does not exist.
    pub async fn head_object(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<Option<ObjectHead>, AwsError> {
        let name = object_name(bucket, key);
        let request = self
            .client
            .head_object()
            .bucket(bucket)
            .key(key)
            .set_version_id(version_id.map(str::to_owned))
            .checksum_mode(ChecksumMode::Enabled)
            .send();
        let output = self
            .caller
            .call_optional("HeadObject", Some(&name), request)
            .await?;
        Ok(output.map(|o| object_head!(&o)))
    }

    /// The object's body as a stream (an archive of a build); `None` when it does not exist.
    pub async fn get_object_stream(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<Option<ObjectStream>, AwsError> {
        let name = object_name(bucket, key);
        let request = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .set_version_id(version_id.map(str::to_owned))
            .checksum_mode(ChecksumMode::Enabled)
            .send();
        let Some(output) = self
            .caller
            .call_optional("GetObject", Some(&name), request)
            .await?
        else {
            return Ok(None);
        };
        let head = object_head!(&output);
        Ok(Some(ObjectStream {
            head,
            body: Box::pin(output.body.into_async_read()),
        }))
    }

    /// A small object read whole (a revision manifest), refused when larger than `max_bytes`
    /// (by its `Content-Length`, and again while reading); `None` when it does not exist.
    pub async fn get_small_object(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        max_bytes: usize,
    ) -> Result<Option<SmallObject>, AwsError> {
        let Some(mut stream) = self.get_object_stream(bucket, key, version_id).await? else {
            return Ok(None);
        };
        let name = object_name(bucket, key);
        let too_large = |size: u64| {
            AwsError::invalid_request(
                Service::S3,
                "GetObject",
                Some(name.clone()),
                format!("the object has {size} bytes, more than the {max_bytes} allowed"),
            )
        };
        let limit = u64::try_from(max_bytes).unwrap_or(u64::MAX);
        if let Some(size) = stream.head.size.and_then(|s| u64::try_from(s).ok())
            && size > limit
        {
            return Err(too_large(size));
        }
        let mut body = Vec::new();
        // One byte more than allowed tells a body longer than its header said.
        (&mut stream.body)
            .take(limit.saturating_add(1))
            .read_to_end(&mut body)
            .await
            .map_err(|err| body_error("GetObject", &name, &err))?;
        if body.len() > max_bytes {
            return Err(too_large(u64::try_from(body.len()).unwrap_or(u64::MAX)));
        }
        Ok(Some(SmallObject {
            head: stream.head,
            body: Bytes::from(body),
        }))
    }

    /// Downloads the object and hashes it as it streams (constant memory).
    pub async fn sha256_of_object(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<Sha256Digest, AwsError> {
        let name = object_name(bucket, key);
        let request = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .set_version_id(version_id.map(str::to_owned))
            .send();
        let output = self.caller.call("GetObject", Some(&name), request).await?;
        let mut body: ByteStream = output.body;
        let mut hasher = Sha256::new();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|err| body_error("GetObject", &name, &err))?;
            hasher.update(&chunk);
        }
        Ok(Sha256Digest::from(<[u8; 32]>::from(hasher.finalize())))
    }

    /// One page of current objects under `prefix`, from `continuation` (`None`: the first).
    pub async fn list_objects_from(
        &self,
        bucket: &str,
        prefix: Option<&str>,
        continuation: Option<String>,
        max_keys: i32,
    ) -> Result<ObjectPage, AwsError> {
        let request = self
            .client
            .list_objects_v2()
            .bucket(bucket)
            .set_prefix(prefix.map(str::to_owned))
            .set_continuation_token(continuation)
            .max_keys(max_keys)
            .send();
        let page = self
            .caller
            .call("ListObjectsV2", Some(bucket), request)
            .await?;
        let objects = page
            .contents()
            .iter()
            .filter_map(|o| {
                Some(ObjectSummary {
                    key: o.key()?.to_owned(),
                    e_tag: o.e_tag().map(str::to_owned),
                    size: o.size(),
                    last_modified: timestamp(o.last_modified()),
                    checksum_algorithms: o
                        .checksum_algorithm()
                        .iter()
                        .map(|a| a.as_str().to_owned())
                        .collect(),
                })
            })
            .collect();
        let next = page
            .next_continuation_token()
            .filter(|next| page.is_truncated() == Some(true) && !next.is_empty())
            .map(str::to_owned);
        Ok(ObjectPage { objects, next })
    }

    /// Every current object under `prefix` (all pages).
    pub async fn list_objects(
        &self,
        bucket: &str,
        prefix: Option<&str>,
    ) -> Result<Vec<ObjectSummary>, AwsError> {
        let mut objects = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .list_objects_from(bucket, prefix, token, LIST_PAGE)
                .await?;
            objects.extend(page.objects);
            match page.next {
                Some(next) => token = Some(next),
                None => return Ok(objects),
            }
        }
    }

    /// The first page (up to `max_keys`) of objects under `prefix`, and whether more follow.
    pub async fn list_objects_page(
        &self,
        bucket: &str,
        prefix: &str,
        max_keys: i32,
    ) -> Result<(Vec<ObjectSummary>, bool), AwsError> {
        let page = self
            .list_objects_from(bucket, Some(prefix), None, max_keys)
            .await?;
        Ok((page.objects, page.next.is_some()))
    }

    /// Whether the bucket holds no object version and no delete marker (one page of one key):
    /// an untagged bucket that holds anything was written by someone else.
    pub async fn is_empty(&self, bucket: &str) -> Result<bool, AwsError> {
        let page = self
            .list_object_versions_from(bucket, None, VersionMarker::default(), 1)
            .await?;
        Ok(page.versions.is_empty())
    }

    /// One page of versions and delete markers under `prefix`, from `marker`.
    pub async fn list_object_versions_from(
        &self,
        bucket: &str,
        prefix: Option<&str>,
        marker: VersionMarker,
        max_keys: i32,
    ) -> Result<VersionPage, AwsError> {
        let request = self
            .client
            .list_object_versions()
            .bucket(bucket)
            .set_prefix(prefix.map(str::to_owned))
            .set_key_marker(marker.key_marker)
            .set_version_id_marker(marker.version_id_marker)
            .max_keys(max_keys)
            .send();
        let page = self
            .caller
            .call("ListObjectVersions", Some(bucket), request)
            .await?;
        let mut versions: Vec<ObjectVersion> = page
            .versions()
            .iter()
            .filter_map(|v| {
                Some(ObjectVersion {
                    key: v.key()?.to_owned(),
                    version_id: v.version_id().map(str::to_owned),
                    is_latest: v.is_latest().unwrap_or(false),
                    e_tag: v.e_tag().map(str::to_owned),
                    size: v.size(),
                    last_modified: timestamp(v.last_modified()),
                    delete_marker: false,
                })
            })
            .collect();
        versions.extend(page.delete_markers().iter().filter_map(|m| {
            Some(ObjectVersion {
                key: m.key()?.to_owned(),
                version_id: m.version_id().map(str::to_owned),
                is_latest: m.is_latest().unwrap_or(false),
                last_modified: timestamp(m.last_modified()),
                delete_marker: true,
                ..ObjectVersion::default()
            })
        }));
        let next = (page.is_truncated() == Some(true))
            .then(|| VersionMarker {
                key_marker: page.next_key_marker().map(str::to_owned),
                version_id_marker: page.next_version_id_marker().map(str::to_owned),
            })
            .filter(|m| m.key_marker.is_some());
        Ok(VersionPage { versions, next })
    }

    /// Every version and delete marker under `prefix` (all pages).
    pub async fn list_object_versions(
        &self,
        bucket: &str,
        prefix: Option<&str>,
    ) -> Result<Vec<ObjectVersion>, AwsError> {
        let mut versions = Vec::new();
        let mut marker = VersionMarker::default();
        loop {
            let page = self
                .list_object_versions_from(bucket, prefix, marker, LIST_PAGE)
                .await?;
            versions.extend(page.versions);
            match page.next {
                Some(next) => marker = next,
                None => return Ok(versions),
            }
        }
    }

    /// Uploads one object with its SHA-256 as `x-amz-checksum-sha256` (S3 refuses a body that
    /// does not match: `BadDigest`), its content type and cache control.
    pub async fn put_object(
        &self,
        bucket: &str,
        upload: &ObjectUpload,
    ) -> Result<WriteResult, AwsError> {
        let name = object_name(bucket, &upload.key);
        let body = match &upload.body {
            UploadBody::Bytes(bytes) => ByteStream::from(bytes.clone()),
            UploadBody::File(path) => ByteStream::from_path(path).await.map_err(|err| {
                AwsError::invalid_request(
                    Service::S3,
                    "PutObject",
                    Some(name.clone()),
                    format!("reading {} failed: {err}", path.display()),
                )
            })?,
        };
        let request = self
            .client
            .put_object()
            .bucket(bucket)
            .key(&upload.key)
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .checksum_sha256(upload.sha256.to_base64())
            .set_content_type(upload.metadata.content_type.clone())
            .set_cache_control(upload.metadata.cache_control.clone())
            .body(body)
            .send();
        let o = self.caller.call("PutObject", Some(&name), request).await?;
        Ok(WriteResult {
            e_tag: o.e_tag().map(str::to_owned),
            version_id: o.version_id().map(str::to_owned),
            checksum_sha256: o.checksum_sha256().map(str::to_owned),
        })
    }

    /// Uploads `body` (in memory: a manifest, a test artifact), hashing it first.
    pub async fn put_bytes(
        &self,
        bucket: &str,
        key: &str,
        body: impl Into<Bytes>,
        metadata: ObjectMetadata,
    ) -> Result<WriteResult, AwsError> {
        let body: Bytes = body.into();
        let upload = ObjectUpload {
            key: key.to_owned(),
            sha256: Sha256Digest::of(&body),
            metadata,
            body: UploadBody::Bytes(body),
        };
        self.put_object(bucket, &upload).await
    }

    /// Copies within the bucket: a metadata change in place (`metadata: Some`, directive
    /// `REPLACE`) or a version restored as the latest (`source.version_id`). Content is not
    /// re-uploaded, and SHA-256 is asked for explicitly so the copy keeps a `ChecksumSHA256`.
    pub async fn copy_object(
        &self,
        bucket: &str,
        copy: &ObjectCopy,
    ) -> Result<WriteResult, AwsError> {
        let name = object_name(bucket, &copy.key);
        let mut request = self
            .client
            .copy_object()
            .bucket(bucket)
            .key(&copy.key)
            .copy_source(copy_source(bucket, &copy.source))
            .checksum_algorithm(ChecksumAlgorithm::Sha256);
        if let Some(metadata) = &copy.metadata {
            request = request
                .metadata_directive(MetadataDirective::Replace)
                .set_content_type(metadata.content_type.clone())
                .set_cache_control(metadata.cache_control.clone());
        }
        let o = self
            .caller
            .call("CopyObject", Some(&name), request.send())
            .await?;
        let result = o.copy_object_result();
        Ok(WriteResult {
            e_tag: result.and_then(|r| r.e_tag()).map(str::to_owned),
            version_id: o.version_id().map(str::to_owned),
            checksum_sha256: result.and_then(|r| r.checksum_sha256()).map(str::to_owned),
        })
    }

    /// Makes `source_version_id` of `key` the latest version again, exactly as it was (content
    /// and metadata); returns the new version id.
    pub async fn restore_version(
        &self,
        bucket: &str,
        key: &str,
        source_version_id: &str,
    ) -> Result<Option<String>, AwsError> {
        let copy = ObjectCopy {
            key: key.to_owned(),
            source: ObjectRef::version(key, source_version_id),
            metadata: None,
        };
        Ok(self.copy_object(bucket, &copy).await?.version_id)
    }

    /// Deletes keys or versions in batches of 1000; the ones S3 could not delete come back as
    /// data (a version-less key on a versioned bucket gets a delete marker).
    pub async fn delete_objects(
        &self,
        bucket: &str,
        objects: &[ObjectRef],
    ) -> Result<Vec<DeleteFailure>, AwsError> {
        let mut failures = Vec::new();
        for batch in objects.chunks(DELETE_BATCH) {
            let identifiers = batch
                .iter()
                .map(|o| {
                    ObjectIdentifier::builder()
                        .key(&o.key)
                        .set_version_id(o.version_id.clone())
                        .build()
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(|err| invalid_input("DeleteObjects", bucket, &err))?;
            let delete = Delete::builder()
                .set_objects(Some(identifiers))
                .quiet(true)
                .build()
                .map_err(|err| invalid_input("DeleteObjects", bucket, &err))?;
            let request = self
                .client
                .delete_objects()
                .bucket(bucket)
                .delete(delete)
                .send();
            let o = self
                .caller
                .call("DeleteObjects", Some(bucket), request)
                .await?;
            failures.extend(delete_failures(o.errors()));
        }
        Ok(failures)
    }

    /// Deletes every version and delete marker, a listing page at a time (memory stays one
    /// page whatever the bucket holds). Stops at the first page with refusals and returns them.
    pub async fn empty_bucket(&self, bucket: &str) -> Result<EmptiedBucket, AwsError> {
        let mut emptied = EmptiedBucket::default();
        for _ in 0..EMPTY_MAX_PAGES {
            // Always the first page: what was deleted is gone from the listing.
            let page = self
                .list_object_versions_from(bucket, None, VersionMarker::default(), LIST_PAGE)
                .await?;
            if page.versions.is_empty() {
                return Ok(emptied);
            }
            let refs: Vec<ObjectRef> = page.versions.iter().map(ObjectVersion::to_ref).collect();
            let failures = self.delete_objects(bucket, &refs).await?;
            emptied.deleted += refs.len() - failures.len();
            if !failures.is_empty() {
                emptied.failures = failures;
                return Ok(emptied);
            }
        }
        Err(AwsError {
            service: Service::S3,
            operation: "DeleteObjects",
            resource: Some(bucket.to_owned()),
            kind: ErrorKind::Conflict,
            code: None,
            message: format!(
                "still not empty after deleting {} versions: something keeps writing",
                emptied.deleted
            ),
            http_status: None,
            request_id: None,
        })
    }
}

/// The per-key errors of a `DeleteObjects` answer, as data.
pub(super) fn delete_failures(errors: &[aws_sdk_s3::types::Error]) -> Vec<DeleteFailure> {
    errors
        .iter()
        .map(|e| DeleteFailure {
            key: e.key().unwrap_or_default().to_owned(),
            version_id: e.version_id().map(str::to_owned),
            code: e.code().map(str::to_owned),
            message: e.message().map(str::to_owned),
        })
        .collect()
}
