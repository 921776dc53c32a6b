//! `StaticSite`: a built site in a versioned, private S3 bucket behind CloudFront.
//!
//! This module holds the decision core; the reconcile round (observe, act, status, the
//! reconciler) is wired on top of it the way `lambda_stage/` and `spot_fleet/` are:
//! - `build`: the source archive read as a stream and checked (names, links, duplicates,
//!   bombs), each file's key, size and SHA-256;
//! - `metadata`: `Content-Type` and `Cache-Control` of every key, rules compiled once per spec;
//! - `manifest`: the revision manifest stored in the bucket, the served-revision record, and
//!   the derived revision label;
//! - `observed`: the plain data observe gathers;
//! - `plan/`: `plan(spec, context, desired, observed) -> Plan`, pure, with its tables;
//! - `error`: the kind's error enum.

pub mod build;
pub mod error;
pub mod manifest;
pub mod metadata;
pub mod observed;
pub mod plan;

pub use self::error::StaticSiteError;
