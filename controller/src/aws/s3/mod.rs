//! S3: artifact checksums for LambdaStage; buckets, objects and versions for StaticSite.
//!
//! - `bucket.rs`: a site's private bucket (created in its region; versioning, Block Public
//!   Access, owner-enforced ownership, SSE-S3, tags, the CloudFront-only policy from
//!   `policy.rs`, EventBridge notifications), each setting read back as a plain fact, so drift
//!   shows.
//! - `objects.rs`: uploads carrying their SHA-256 (S3 verifies it and keeps it as
//!   `ChecksumSHA256`, the content identity every later sync compares), copies in place
//!   (metadata changes, rollbacks from a version id), streamed and bounded downloads, listings
//!   of current objects and of versions, batched deletes, emptying a bucket.
//! - `types.rs`: the plain data they take and return.
//!
//! The desired code hash of a function is the artifact's own SHA-256: S3's `ChecksumSHA256`
//! when the object has one (a HEAD, no download), else a streamed hash of the body (never held
//! in memory).

use aws_sdk_s3::Client;
use aws_smithy_types::DateTime;

pub use self::policy::{
    CLOUDFRONT_READ_SID, PolicyError, cloudfront_read_policy, grants_cloudfront,
};
pub use self::types::*;
use super::call::Caller;
use super::{AwsError, ErrorKind, Service};

mod bucket;
mod objects;
mod policy;
mod types;

#[cfg(test)]
mod tests;

/// S3's batch delete limit.
const DELETE_BATCH: usize = 1000;

fn timestamp(t: Option<&DateTime>) -> Option<jiff::Timestamp> {
    t.and_then(super::smithy_time)
}

/// `s3://bucket/key` for messages and metrics context.
fn object_name(bucket: &str, key: &str) -> String {
    format!("s3://{bucket}/{key}")
}

/// Percent-encodes a key for `x-amz-copy-source` (unreserved characters and `/` kept).
fn encode_key(key: &str) -> String {
    use std::fmt::Write as _;
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

/// `x-amz-copy-source` for a key (and version) of `bucket`.
fn copy_source(bucket: &str, source: &ObjectRef) -> String {
    let key = encode_key(&source.key);
    match &source.version_id {
        Some(version) => format!("{bucket}/{key}?versionId={version}"),
        None => format!("{bucket}/{key}"),
    }
}

/// A request Stagehand could not build (an SDK builder refused its input).
fn invalid_input(operation: &'static str, bucket: &str, err: &dyn std::error::Error) -> AwsError {
    AwsError::invalid_request(
        Service::S3,
        operation,
        Some(bucket.to_owned()),
        err.to_string(),
    )
}

/// A body that failed after the response started: the transport, retried by the caller.
fn body_error(operation: &'static str, name: &str, err: &dyn std::fmt::Display) -> AwsError {
    AwsError {
        service: Service::S3,
        operation,
        resource: Some(name.to_owned()),
        kind: ErrorKind::Transport,
        code: None,
        message: format!("reading the object body failed: {err}"),
        http_status: None,
        request_id: None,
    }
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

    /// The region this adapter's buckets are created in.
    pub fn region(&self) -> &str {
        self.caller.region()
    }
}
