//! What the S3 adapter returns and takes: plain data, no SDK types, so that the pure plans can
//! read it (and compare a bucket's settings with the desired ones to show drift).

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::pin::Pin;

use bytes::Bytes;
use sha2::{Digest, Sha256};

/// A SHA-256 digest; Lambda and S3 show it base64, people and build tools hex.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
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

impl From<[u8; 32]> for Sha256Digest {
    fn from(bytes: [u8; 32]) -> Self {
        Self(bytes)
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

/// The SHA-256 of a whole object from S3's base64 `ChecksumSHA256`. Multipart uploads store a
/// checksum of part checksums (`...-N`), which is not the object's hash: `None` then.
fn whole_object_sha256(checksum: Option<&str>) -> Option<Sha256Digest> {
    checksum
        .filter(|c| !c.contains('-'))
        .and_then(Sha256Digest::from_base64)
}

/// An object's identity, checksum and the metadata a site serves with it, from a HEAD (or the
/// headers of a GET).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObjectHead {
    pub e_tag: Option<String>,
    pub version_id: Option<String>,
    /// S3's base64 `ChecksumSHA256` of the whole object, when it was uploaded with one.
    pub checksum_sha256: Option<String>,
    pub size: Option<i64>,
    pub last_modified: Option<jiff::Timestamp>,
    pub content_type: Option<String>,
    pub cache_control: Option<String>,
}

impl ObjectHead {
    /// The SHA-256 S3 stored for the whole object.
    pub fn sha256(&self) -> Option<Sha256Digest> {
        whole_object_sha256(self.checksum_sha256.as_deref())
    }
}

/// A listed object (latest version, `ListObjectsV2`): no version id and no checksum value,
/// only which checksum algorithms the object has.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObjectSummary {
    pub key: String,
    pub e_tag: Option<String>,
    pub size: Option<i64>,
    pub last_modified: Option<jiff::Timestamp>,
    /// e.g. `["SHA256"]`: whether a HEAD would return a `ChecksumSHA256`.
    pub checksum_algorithms: Vec<String>,
}

/// One page of a listing and where the next one starts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObjectPage {
    pub objects: Vec<ObjectSummary>,
    /// The continuation token of the next page; `None` on the last page.
    pub next: Option<String>,
}

/// One version of an object, or a delete marker (`ListObjectVersions`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObjectVersion {
    pub key: String,
    pub version_id: Option<String>,
    pub is_latest: bool,
    pub e_tag: Option<String>,
    pub size: Option<i64>,
    pub last_modified: Option<jiff::Timestamp>,
    /// A delete marker, not content.
    pub delete_marker: bool,
}

impl ObjectVersion {
    /// The object as it is served now: the latest version, not a delete marker.
    pub fn is_current(&self) -> bool {
        self.is_latest && !self.delete_marker
    }

    /// The reference to delete exactly this version.
    pub fn to_ref(&self) -> ObjectRef {
        ObjectRef {
            key: self.key.clone(),
            version_id: self.version_id.clone(),
        }
    }
}

/// Where a version listing continues.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VersionMarker {
    pub key_marker: Option<String>,
    pub version_id_marker: Option<String>,
}

/// One page of versions and delete markers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VersionPage {
    pub versions: Vec<ObjectVersion>,
    pub next: Option<VersionMarker>,
}

/// A key, and optionally one version of it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectRef {
    pub key: String,
    pub version_id: Option<String>,
}

impl ObjectRef {
    pub fn latest(key: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            version_id: None,
        }
    }

    pub fn version(key: impl Into<String>, version_id: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            version_id: Some(version_id.into()),
        }
    }
}

/// The headers a site's object is served with.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObjectMetadata {
    pub content_type: Option<String>,
    pub cache_control: Option<String>,
}

/// Where an upload's bytes come from. A file is streamed from disk, never read into memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UploadBody {
    File(PathBuf),
    Bytes(Bytes),
}

/// One object to upload with the SHA-256 of its content: S3 verifies it and stores it as the
/// object's `ChecksumSHA256`, which is how later syncs compare content without downloading.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectUpload {
    pub key: String,
    pub sha256: Sha256Digest,
    pub metadata: ObjectMetadata,
    pub body: UploadBody,
}

/// What a write (`PutObject`, `CopyObject`) made.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriteResult {
    pub e_tag: Option<String>,
    /// The new version (buckets with versioning on).
    pub version_id: Option<String>,
    pub checksum_sha256: Option<String>,
}

impl WriteResult {
    pub fn sha256(&self) -> Option<Sha256Digest> {
        whole_object_sha256(self.checksum_sha256.as_deref())
    }
}

/// A copy of an object onto a key of the same bucket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectCopy {
    pub key: String,
    /// The key and version copied from; the same key for a metadata change or a rollback.
    pub source: ObjectRef,
    /// `Some`: replace the metadata (a new `Cache-Control` or content type without a
    /// re-upload); `None`: keep the source's (a rollback restores the version as it was).
    pub metadata: Option<ObjectMetadata>,
}

/// An object's body as it downloads, with its headers. Read it to the end; it is never held in
/// memory as a whole.
pub struct ObjectStream {
    pub head: ObjectHead,
    /// A read error is the transport failing mid-body (`std::io::ErrorKind::Other`).
    pub body: Pin<Box<dyn tokio::io::AsyncBufRead + Send>>,
}

impl fmt::Debug for ObjectStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectStream")
            .field("head", &self.head)
            .finish_non_exhaustive()
    }
}

/// A small object read whole (a revision manifest).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SmallObject {
    pub head: ObjectHead,
    pub body: Bytes,
}

/// A key (and optional version) that could not be deleted, as S3 reported it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeleteFailure {
    pub key: String,
    pub version_id: Option<String>,
    pub code: Option<String>,
    pub message: Option<String>,
}

/// What emptying a bucket did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EmptiedBucket {
    /// Versions and delete markers removed.
    pub deleted: usize,
    pub failures: Vec<DeleteFailure>,
}

/// A bucket that exists and the caller may use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BucketHead {
    /// The bucket's region (`x-amz-bucket-region`), when S3 says.
    pub region: Option<String>,
}

/// What `CreateBucket` found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BucketCreated {
    Created,
    /// The bucket already exists in this account (a retry after a crash): not an error, but
    /// the caller must check its tags before trusting it.
    AlreadyOwned,
}

/// The four Block Public Access switches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PublicAccessBlock {
    pub block_public_acls: bool,
    pub ignore_public_acls: bool,
    pub block_public_policy: bool,
    pub restrict_public_buckets: bool,
}

impl PublicAccessBlock {
    /// All four on: what a private site bucket needs.
    pub const ALL: Self = Self {
        block_public_acls: true,
        ignore_public_acls: true,
        block_public_policy: true,
        restrict_public_buckets: true,
    };

    pub fn is_all(&self) -> bool {
        *self == Self::ALL
    }
}

/// The versioning state (`None` on a bucket that never had versioning).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Versioning {
    Enabled,
    Suspended,
}

/// A bucket's settings as S3 reports them, each `None` when not configured: compared with the
/// desired settings they show drift (someone turned Block Public Access off, replaced the
/// policy, ...).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BucketSettings {
    pub versioning: Option<Versioning>,
    pub public_access_block: Option<PublicAccessBlock>,
    /// `BucketOwnerEnforced`, `BucketOwnerPreferred` or `ObjectWriter`.
    pub object_ownership: Option<String>,
    /// The default encryption algorithm: `AES256` (SSE-S3), `aws:kms`, ...
    pub default_encryption: Option<String>,
    pub tags: BTreeMap<String, String>,
    /// The bucket policy document, as stored.
    pub policy: Option<String>,
    /// Whether S3 sends the bucket's events to EventBridge.
    pub eventbridge_notifications: bool,
}
