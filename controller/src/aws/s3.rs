//! S3: artifact checksums for LambdaStage, objects and versions for StaticSite.
//!
//! The desired code hash of a function is the artifact's own SHA-256: S3's `ChecksumSHA256`
//! when the object has one (a HEAD, no download), else a streamed hash of the body (never held
//! in memory).

use std::fmt;

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumMode, Delete, ObjectIdentifier};
use aws_smithy_types::DateTime;
use sha2::{Digest, Sha256};

use super::call::Caller;
use super::{AwsError, ErrorKind, Service};

/// A SHA-256 digest; Lambda and S3 show it base64, people and build tools hex.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sha256Digest([u8; 32]);

impl Sha256Digest {
    pub fn of(bytes: &[u8]) -> Self {
        Self(Sha256::digest(bytes).into())
    }

    /// From 64 hex digits (either case).
    pub fn from_hex(hex: &str) -> Option<Self> {
        let hex = hex.as_bytes();
        if hex.len() != 64 {
            return None;
        }
        let mut out = [0_u8; 32];
        for (byte, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
            let high = char::from(pair[0]).to_digit(16)?;
            let low = char::from(pair[1]).to_digit(16)?;
            *byte = u8::try_from(high * 16 + low).ok()?;
        }
        Some(Self(out))
    }

    /// From standard base64 (44 characters, as `CodeSha256` and `ChecksumSHA256`).
    pub fn from_base64(b64: &str) -> Option<Self> {
        let bytes = aws_smithy_types::base64::decode(b64).ok()?;
        <[u8; 32]>::try_from(bytes.as_slice()).ok().map(Self)
    }

    /// Hex or base64, whichever `text` is (a pin in a spec may be either).
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        let text = text.strip_prefix("sha256:").unwrap_or(text);
        Self::from_hex(text).or_else(|| Self::from_base64(text))
    }

    pub fn to_hex(&self) -> String {
        use fmt::Write as _;
        self.0.iter().fold(String::with_capacity(64), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
    }

    pub fn to_base64(&self) -> String {
        aws_smithy_types::base64::encode(self.0)
    }
}

impl fmt::Debug for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha256Digest({})", self.to_hex())
    }
}

impl fmt::Display for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// An object's identity and checksum, from a HEAD.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectHead {
    pub e_tag: Option<String>,
    pub version_id: Option<String>,
    /// S3's base64 `ChecksumSHA256` of the whole object, when it was uploaded with one.
    pub checksum_sha256: Option<String>,
    pub size: Option<i64>,
    pub last_modified: Option<jiff::Timestamp>,
}

impl ObjectHead {
    /// The SHA-256 S3 stored for the whole object. Multipart uploads store a checksum of part
    /// checksums (`...-N`), which is not the object's hash: `None` then.
    pub fn sha256(&self) -> Option<Sha256Digest> {
        self.checksum_sha256
            .as_deref()
            .filter(|c| !c.contains('-'))
            .and_then(Sha256Digest::from_base64)
    }
}

/// A listed object (latest version).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectSummary {
    pub key: String,
    pub e_tag: Option<String>,
    pub size: Option<i64>,
    pub last_modified: Option<jiff::Timestamp>,
}

/// One version of an object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectVersion {
    pub key: String,
    pub version_id: Option<String>,
    pub is_latest: bool,
    pub e_tag: Option<String>,
    pub size: Option<i64>,
    /// A delete marker, not content.
    pub delete_marker: bool,
}

/// What `put_object` wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PutResult {
    pub e_tag: Option<String>,
    pub version_id: Option<String>,
    pub checksum_sha256: Option<String>,
}

/// A key (and optional version) that could not be deleted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeleteFailure {
    pub key: String,
    pub version_id: Option<String>,
    pub code: Option<String>,
    pub message: Option<String>,
}

/// S3's batch delete limit.
const DELETE_BATCH: usize = 1000;

fn timestamp(t: Option<&DateTime>) -> Option<jiff::Timestamp> {
    t.and_then(|t| {
        let nanos = i32::try_from(t.subsec_nanos()).ok()?;
        jiff::Timestamp::new(t.secs(), nanos).ok()
    })
}

/// `bucket/key` for messages and metrics context.
fn object_name(bucket: &str, key: &str) -> String {
    format!("s3://{bucket}/{key}")
}

/// Percent-encodes a key for `x-amz-copy-source` (unreserved characters and `/` kept).
fn encode_key(key: &str) -> String {
    use fmt::Write as _;
    key.bytes()
        .fold(String::with_capacity(key.len()), |mut s, b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
                s.push(char::from(b));
            } else {
                let _ = write!(s, "%{b:02X}");
            }
            s
        })
}

/// The S3 adapter of one region.
#[derive(Clone, Debug)]
pub struct S3 {
    client: Client,
    caller: Caller,
}

impl S3 {
    pub(crate) fn new(client: Client, caller: Caller) -> Self {
        Self { client, caller }
    }

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
        Ok(output.map(|o| ObjectHead {
            e_tag: o.e_tag().map(str::to_owned),
            version_id: o.version_id().map(str::to_owned),
            checksum_sha256: o.checksum_sha256().map(str::to_owned),
            size: o.content_length(),
            last_modified: timestamp(o.last_modified()),
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
            let chunk = chunk.map_err(|err| AwsError {
                service: Service::S3,
                operation: "GetObject",
                resource: Some(name.clone()),
                kind: ErrorKind::Transport,
                code: None,
                message: format!("reading the object body failed: {err}"),
                http_status: None,
                request_id: None,
            })?;
            hasher.update(&chunk);
        }
        Ok(Sha256Digest(hasher.finalize().into()))
    }

    /// Every object under `prefix` (all pages).
    pub async fn list_objects(
        &self,
        bucket: &str,
        prefix: Option<&str>,
    ) -> Result<Vec<ObjectSummary>, AwsError> {
        let mut objects = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let request = self
                .client
                .list_objects_v2()
                .bucket(bucket)
                .set_prefix(prefix.map(str::to_owned))
                .set_continuation_token(token.take())
                .send();
            let page = self
                .caller
                .call("ListObjectsV2", Some(bucket), request)
                .await?;
            objects.extend(page.contents().iter().filter_map(|o| {
                Some(ObjectSummary {
                    key: o.key()?.to_owned(),
                    e_tag: o.e_tag().map(str::to_owned),
                    size: o.size(),
                    last_modified: timestamp(o.last_modified()),
                })
            }));
            match page.next_continuation_token() {
                Some(next) if page.is_truncated() == Some(true) && !next.is_empty() => {
                    token = Some(next.to_owned());
                }
                _ => return Ok(objects),
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
        let request = self
            .client
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
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
                })
            })
            .collect();
        Ok((objects, page.is_truncated() == Some(true)))
    }

    /// Every version and delete marker under `prefix` (all pages).
    pub async fn list_object_versions(
        &self,
        bucket: &str,
        prefix: Option<&str>,
    ) -> Result<Vec<ObjectVersion>, AwsError> {
        let mut versions = Vec::new();
        let mut key_marker: Option<String> = None;
        let mut version_marker: Option<String> = None;
        loop {
            let request = self
                .client
                .list_object_versions()
                .bucket(bucket)
                .set_prefix(prefix.map(str::to_owned))
                .set_key_marker(key_marker.take())
                .set_version_id_marker(version_marker.take())
                .send();
            let page = self
                .caller
                .call("ListObjectVersions", Some(bucket), request)
                .await?;
            versions.extend(page.versions().iter().filter_map(|v| {
                Some(ObjectVersion {
                    key: v.key()?.to_owned(),
                    version_id: v.version_id().map(str::to_owned),
                    is_latest: v.is_latest().unwrap_or(false),
                    e_tag: v.e_tag().map(str::to_owned),
                    size: v.size(),
                    delete_marker: false,
                })
            }));
            versions.extend(page.delete_markers().iter().filter_map(|m| {
                Some(ObjectVersion {
                    key: m.key()?.to_owned(),
                    version_id: m.version_id().map(str::to_owned),
                    is_latest: m.is_latest().unwrap_or(false),
                    e_tag: None,
                    size: None,
                    delete_marker: true,
                })
            }));
            if page.is_truncated() != Some(true) {
                return Ok(versions);
            }
            key_marker = page.next_key_marker().map(str::to_owned);
            version_marker = page.next_version_id_marker().map(str::to_owned);
            if key_marker.is_none() {
                return Ok(versions);
            }
        }
    }

    /// Uploads `body` with its SHA-256 (S3 verifies it and stores it as `ChecksumSHA256`).
    pub async fn put_object(
        &self,
        bucket: &str,
        key: &str,
        body: Vec<u8>,
        content_type: Option<&str>,
        cache_control: Option<&str>,
    ) -> Result<PutResult, AwsError> {
        let name = object_name(bucket, key);
        let checksum = Sha256Digest::of(&body).to_base64();
        let request = self
            .client
            .put_object()
            .bucket(bucket)
            .key(key)
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .checksum_sha256(checksum)
            .set_content_type(content_type.map(str::to_owned))
            .set_cache_control(cache_control.map(str::to_owned))
            .body(ByteStream::from(body))
            .send();
        let o = self.caller.call("PutObject", Some(&name), request).await?;
        Ok(PutResult {
            e_tag: o.e_tag().map(str::to_owned),
            version_id: o.version_id().map(str::to_owned),
            checksum_sha256: o.checksum_sha256().map(str::to_owned),
        })
    }

    /// Makes `source_version_id` of `key` the latest version again (a rollback); returns the
    /// new version id.
    pub async fn restore_version(
        &self,
        bucket: &str,
        key: &str,
        source_version_id: &str,
    ) -> Result<Option<String>, AwsError> {
        let name = object_name(bucket, key);
        let source = format!(
            "{bucket}/{key}?versionId={source_version_id}",
            key = encode_key(key)
        );
        let request = self
            .client
            .copy_object()
            .bucket(bucket)
            .key(key)
            .copy_source(source)
            .send();
        let o = self.caller.call("CopyObject", Some(&name), request).await?;
        Ok(o.version_id().map(str::to_owned))
    }

    /// Deletes keys (optionally specific versions) in batches of 1000; returns the ones S3
    /// could not delete.
    pub async fn delete_objects(
        &self,
        bucket: &str,
        objects: &[(String, Option<String>)],
    ) -> Result<Vec<DeleteFailure>, AwsError> {
        let mut failures = Vec::new();
        for batch in objects.chunks(DELETE_BATCH) {
            let identifiers = batch
                .iter()
                .map(|(key, version_id)| {
                    ObjectIdentifier::builder()
                        .key(key)
                        .set_version_id(version_id.clone())
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
            failures.extend(o.errors().iter().map(|e| DeleteFailure {
                key: e.key().unwrap_or_default().to_owned(),
                version_id: e.version_id().map(str::to_owned),
                code: e.code().map(str::to_owned),
                message: e.message().map(str::to_owned),
            }));
        }
        Ok(failures)
    }
}

fn invalid_input(operation: &'static str, bucket: &str, err: &dyn std::error::Error) -> AwsError {
    AwsError::invalid_request(
        Service::S3,
        operation,
        Some(bucket.to_owned()),
        err.to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    // sha256("hello\n")
    const HEX: &str = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03";
    const B64: &str = "WJG1tSLV3whtD/CxEPvZ0hu0/HFjrzTQgoai6Eb2vgM=";

    #[test]
    fn digest_round_trips_between_hex_and_base64() {
        let digest = Sha256Digest::of(b"hello\n");
        assert_eq!(digest.to_hex(), HEX);
        assert_eq!(digest.to_base64(), B64);
        assert_eq!(Sha256Digest::from_hex(HEX), Some(digest));
        assert_eq!(Sha256Digest::from_hex(&HEX.to_uppercase()), Some(digest));
        assert_eq!(Sha256Digest::from_base64(B64), Some(digest));
        assert_eq!(Sha256Digest::parse(HEX), Some(digest));
        assert_eq!(Sha256Digest::parse(B64), Some(digest));
        assert_eq!(Sha256Digest::parse(&format!("sha256:{HEX}")), Some(digest));
    }

    #[test]
    fn malformed_digests_are_rejected() {
        assert_eq!(Sha256Digest::from_hex(&HEX[1..]), None);
        assert_eq!(Sha256Digest::from_hex(&HEX.replace('5', "g")), None);
        assert_eq!(Sha256Digest::from_base64("aGVsbG8="), None); // 5 bytes
        assert_eq!(Sha256Digest::parse("not a hash"), None);
    }

    #[test]
    fn multipart_checksums_are_not_object_hashes() {
        let head = |checksum: &str| ObjectHead {
            e_tag: None,
            version_id: None,
            checksum_sha256: Some(checksum.to_owned()),
            size: None,
            last_modified: None,
        };
        assert!(head(B64).sha256().is_some());
        assert!(head(&format!("{B64}-3")).sha256().is_none());
    }

    #[test]
    fn copy_source_keys_are_percent_encoded() {
        assert_eq!(encode_key("site/a b+c.html"), "site/a%20b%2Bc.html");
        assert_eq!(encode_key("x/é"), "x/%C3%A9");
    }
}
