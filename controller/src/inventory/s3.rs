//! One region's S3 objects as reconciles read them: listings of key prefixes, object heads and
//! the SHA-256 of objects S3 has no checksum for.
//!
//! - **Listings**: one `ListObjectsV2` page per bucket and key prefix for `max_age`; an object
//!   whose ETag is unchanged since its last `HeadObject` is not HEADed again.
//! - **Pinned object versions** never change: HEADed once.
//! - **Hashes**: streamed once per bucket/key/version/ETag (the content's identity) and kept.

use std::collections::BTreeMap;
use std::time::Duration;

use super::IDENTITY_RECHECK;
use super::cached::{Cached, NEVER};
use crate::aws::AwsError;
use crate::aws::s3::{ObjectHead, S3, Sha256Digest};

/// How many keys one listing reads (one `ListObjectsV2` page).
const LISTING_PAGE: i32 = 1000;

/// The version id S3 gives objects written while the bucket's versioning was off.
const NULL_VERSION: &str = "null";

/// Identity of one S3 object's content: a streamed hash is valid for exactly this.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ArtifactKey {
    pub bucket: String,
    pub key: String,
    pub version_id: Option<String>,
    pub e_tag: Option<String>,
}

impl From<ArtifactKey> for stagehand_crds::S3ObjectIdentity {
    fn from(key: ArtifactKey) -> Self {
        Self {
            bucket: key.bucket,
            key: key.key,
            version_id: key.version_id,
            e_tag: key.e_tag,
        }
    }
}

/// One `ListObjectsV2` page: ETag by key, and whether it held every key under the prefix.
#[derive(Clone, Debug)]
struct ObjectListing {
    /// Sorted by key (S3 lists in key order), shrunk to its length: most listings are of one
    /// stage's artifact prefix and hold one key, where a `BTreeMap` node is ~0.5 KiB.
    e_tags: Box<[(String, Option<String>)]>,
    complete: bool,
}

impl ObjectListing {
    fn new(objects: Vec<crate::aws::s3::ObjectSummary>, complete: bool) -> Self {
        let mut e_tags: Vec<_> = objects.into_iter().map(|o| (o.key, o.e_tag)).collect();
        e_tags.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        Self {
            e_tags: e_tags.into_boxed_slice(),
            complete,
        }
    }

    /// The listed ETag of `key` (`Some(None)`: listed without one).
    fn e_tag(&self, key: &str) -> Option<&Option<String>> {
        self.e_tags
            .binary_search_by(|(listed, _)| listed.as_str().cmp(key))
            .ok()
            .map(|i| &self.e_tags[i].1)
    }
}

/// The S3 inventory of one region.
#[derive(Debug)]
pub struct S3Inventory {
    s3: S3,
    /// By (bucket, prefix).
    listings: Cached<(String, String), ObjectListing>,
    /// By (bucket, key, pinned version): the last HEAD (checked against the listed ETag, or
    /// of a version that cannot change).
    heads: Cached<(String, String, Option<String>), ObjectHead>,
    hashes: Cached<ArtifactKey, Sha256Digest>,
    /// By bucket: whether S3 sends its events to EventBridge (a setting, rarely changed).
    eventbridge: Cached<String, bool>,
}

impl S3Inventory {
    /// Listings younger than `max_age` are reused.
    pub fn new(s3: S3, max_age: Duration) -> Self {
        Self {
            s3,
            listings: Cached::new(max_age),
            heads: Cached::new(NEVER),
            hashes: Cached::new(NEVER),
            eventbridge: Cached::new(IDENTITY_RECHECK),
        }
    }

    /// Whether S3 sends `bucket`'s events to EventBridge, so a new artifact there is announced
    /// (`GetBucketNotificationConfiguration` once per [`IDENTITY_RECHECK`]).
    pub async fn sends_events(&self, bucket: &str) -> Result<bool, AwsError> {
        self.eventbridge
            .get_or_load(&bucket.to_owned(), || {
                self.s3.eventbridge_notifications(bucket)
            })
            .await
    }

    /// Those of `buckets` that send no events to EventBridge, for an `EventFeedReady` message.
    /// A bucket whose setting cannot be read is left out (logged): not knowing is no reason to
    /// fail a round, and the condition then says nothing about that bucket.
    pub async fn buckets_without_events<'a>(
        &self,
        buckets: impl IntoIterator<Item = &'a str>,
    ) -> Vec<String> {
        let mut silent = Vec::new();
        for bucket in buckets {
            match self.sends_events(bucket).await {
                Ok(true) => {}
                Ok(false) => silent.push(bucket.to_owned()),
                Err(error) => {
                    tracing::debug!(bucket, %error, "whether the bucket sends events to EventBridge is unknown");
                }
            }
        }
        silent
    }

    /// HEADs of `keys` (unpinned objects in one bucket): one listing of their common prefix
    /// tells which changed since their last HEAD; only those (and any the listing does not
    /// show) are HEADed.
    pub async fn object_heads(
        &self,
        bucket: &str,
        keys: &[String],
    ) -> Result<BTreeMap<String, Option<ObjectHead>>, AwsError> {
        let prefix = common_prefix(keys);
        let listing = self
            .listings
            .get_or_load(&(bucket.to_owned(), prefix.clone()), || async {
                let (objects, truncated) = self
                    .s3
                    .list_objects_page(bucket, &prefix, LISTING_PAGE)
                    .await?;
                Ok::<_, AwsError>(ObjectListing::new(objects, !truncated))
            })
            .await?;
        let mut heads = BTreeMap::new();
        for key in keys {
            let head_key = (bucket.to_owned(), key.clone(), None);
            let listed = listing.e_tag(key);
            if listed.is_none() && listing.complete {
                heads.insert(key.clone(), None);
                continue;
            }
            if let (Some(known), Some(listed_etag)) = (self.heads.get(&head_key), listed)
                && known.e_tag == *listed_etag
            {
                heads.insert(key.clone(), Some(known));
                continue;
            }
            let head = self.s3.head_object(bucket, key, None).await?;
            match &head {
                Some(head) => self.heads.insert(head_key, head.clone()),
                None => self.heads.invalidate(&head_key),
            }
            heads.insert(key.clone(), head);
        }
        Ok(heads)
    }

    /// HEAD of a pinned object version: versions never change, so once is enough.
    pub async fn object_version_head(
        &self,
        bucket: &str,
        key: &str,
        version_id: &str,
    ) -> Result<Option<ObjectHead>, AwsError> {
        let head_key = (
            bucket.to_owned(),
            key.to_owned(),
            Some(version_id.to_owned()),
        );
        if let Some(known) = self.heads.get(&head_key) {
            return Ok(Some(known));
        }
        // `null` names the version of an object written while versioning was off (an adopted
        // bucket's). moto refuses `versionId=null` while the bucket is unversioned (400; AWS
        // accepts it), so the current object — which the caller's listing named as that
        // version — is read instead, and trusted only while it still is that version. It is
        // not kept: until versioning is on, a write replaces the `null` version in place.
        let asked = (version_id != NULL_VERSION).then_some(version_id);
        let head = self.s3.head_object(bucket, key, asked).await?.filter(|h| {
            asked.is_some() || h.version_id.as_deref().is_none_or(|v| v == NULL_VERSION)
        });
        if let Some(head) = &head
            && asked.is_some()
        {
            self.heads.insert(head_key, head.clone());
        }
        Ok(head)
    }

    /// A version this controller just wrote, with what it holds: a later
    /// [`S3Inventory::object_version_head`] of it needs no HEAD (versions never change).
    pub fn object_version_written(&self, bucket: &str, key: &str, head: ObjectHead) {
        if let Some(version_id) = head.version_id.clone() {
            self.heads
                .insert((bucket.to_owned(), key.to_owned(), Some(version_id)), head);
        }
    }

    /// The SHA-256 of this content, if it was streamed before.
    pub fn known_sha256(&self, artifact: &ArtifactKey) -> Option<Sha256Digest> {
        self.hashes.get(artifact)
    }

    /// Keeps a SHA-256 known from elsewhere for exactly this content (a hash an object's status
    /// recorded when this or an earlier process streamed it).
    pub fn remember_sha256(&self, artifact: ArtifactKey, sha256: Sha256Digest) {
        self.hashes.insert(artifact, sha256);
    }

    /// Streams the object `artifact` names and keeps its SHA-256 for every later reconcile.
    pub async fn hash_object(&self, artifact: ArtifactKey) -> Result<Sha256Digest, AwsError> {
        let sha256 = self
            .s3
            .sha256_of_object(
                &artifact.bucket,
                &artifact.key,
                artifact.version_id.as_deref(),
            )
            .await?;
        self.hashes.insert(artifact, sha256);
        Ok(sha256)
    }

    /// S3 says `bucket`/`key` was just written or deleted (the event feed): every listing that
    /// covers the key is read again next time, whatever its age, so the change is seen at once.
    pub fn object_changed(&self, bucket: &str, key: &str) {
        self.listings
            .invalidate_where(|(b, prefix)| b == bucket && key.starts_with(prefix.as_str()));
    }

    /// Drops the listings read `age` or longer ago (heads and hashes are keyed by identity).
    pub fn forget_older_than(&self, age: Duration) {
        self.listings.forget_older_than(age);
    }

    /// Drops what nobody read for `unused`: listings by prefix, heads by key and hashes by
    /// content, whose keys change with every build (see [`Cached::sweep`]). A hash dropped is
    /// streamed again only if its object is asked for again, and an object's status gives it
    /// back first ([`S3Inventory::remember_sha256`]).
    pub fn sweep(&self, unused: Duration) -> usize {
        self.listings.sweep(unused)
            + self.heads.sweep(unused)
            + self.hashes.sweep(unused)
            + self.eventbridge.sweep(unused)
    }
}

/// The longest common prefix of `keys` (cut at a character boundary).
pub fn common_prefix(keys: &[String]) -> String {
    let Some(first) = keys.first() else {
        return String::new();
    };
    let mut end = first.len();
    for key in &keys[1..] {
        end = first
            .char_indices()
            .zip(key.chars())
            .take_while(|((_, a), b)| a == b)
            .last()
            .map_or(0, |((i, a), _)| i + a.len_utf8())
            .min(end);
    }
    first[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(list: &[&str]) -> Vec<String> {
        list.iter().map(|k| (*k).to_owned()).collect()
    }

    #[test]
    fn common_prefix_of_artifact_keys() {
        assert_eq!(common_prefix(&keys(&[])), "");
        assert_eq!(common_prefix(&keys(&["a/b.zip"])), "a/b.zip");
        assert_eq!(
            common_prefix(&keys(&["s01/fn00.zip", "s01/fn01.zip", "s01/fn09.zip"])),
            "s01/fn0"
        );
        assert_eq!(common_prefix(&keys(&["app/x", "lib/y"])), "");
        assert_eq!(common_prefix(&keys(&["é/a", "é/b"])), "é/");
        assert_eq!(common_prefix(&keys(&["ab", "a"])), "a");
    }

    #[test]
    fn a_listing_finds_each_key_s_etag_whatever_order_it_was_listed_in() {
        let summary = |key: &str, e_tag: Option<&str>| crate::aws::s3::ObjectSummary {
            key: key.to_owned(),
            e_tag: e_tag.map(str::to_owned),
            ..Default::default()
        };
        let listing = ObjectListing::new(
            vec![
                summary("s01/fn09.zip", Some("\"9\"")),
                summary("s01/fn00.zip", Some("\"0\"")),
                summary("s01/fn01.zip", None),
            ],
            true,
        );
        assert_eq!(
            listing.e_tag("s01/fn00.zip"),
            Some(&Some("\"0\"".to_owned()))
        );
        assert_eq!(
            listing.e_tag("s01/fn09.zip"),
            Some(&Some("\"9\"".to_owned()))
        );
        assert_eq!(
            listing.e_tag("s01/fn01.zip"),
            Some(&None),
            "listed without an ETag"
        );
        assert_eq!(listing.e_tag("s01/fn02.zip"), None, "not listed");
    }
}
