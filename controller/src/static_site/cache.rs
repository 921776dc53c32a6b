//! What a site's rounds remember between them, so a no-change resync reads neither the archive
//! nor any manifest again: the checked build of each source archive (by the archive's version
//! and ETag: a new upload is read again, an unchanged one never), and parsed manifests by their
//! object version (versions are immutable). Held by the reconciler (and by `stagehand plan`,
//! the tests), one per process, shared by every site.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::manifest::Manifest;
use super::observed::SourceState;

/// The identity of one archive's content: its object version and ETag.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ArchiveVersion {
    pub version_id: Option<String>,
    pub e_tag: Option<String>,
}

impl ArchiveVersion {
    /// The archive at `bucket`/`key` in this version, as status records it.
    pub fn of(&self, bucket: &str, key: &str) -> stagehand_crds::S3ObjectIdentity {
        stagehand_crds::S3ObjectIdentity {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            version_id: self.version_id.clone(),
            e_tag: self.e_tag.clone(),
        }
    }
}

/// A checked archive location's last read: what it was read at and what reading it gave.
type KnownBuild = (ArchiveVersion, Arc<SourceState>);

/// The rounds' memory. Cheap to share by reference.
#[derive(Debug, Default)]
pub struct SiteCache {
    /// By (bucket, key): the last archive read there and what reading it gave (a checked
    /// build, or the refusal). One entry per archive location, replaced when it changes, so
    /// memory follows the number of sites, not of deploys.
    builds: Mutex<HashMap<(String, String), KnownBuild>>,
    /// By (bucket, key, version id).
    manifests: Mutex<HashMap<(String, String, String), Arc<Manifest>>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every update is one insert: consistent even after a panic elsewhere.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl SiteCache {
    pub fn new() -> Self {
        Self::default()
    }

    /// What reading the archive at `bucket`/`key` gave, if it was read at `version`.
    pub fn build(
        &self,
        bucket: &str,
        key: &str,
        version: &ArchiveVersion,
    ) -> Option<Arc<SourceState>> {
        let builds = lock(&self.builds);
        let (known, state) = builds.get(&(bucket.to_owned(), key.to_owned()))?;
        (known == version).then(|| Arc::clone(state))
    }

    pub fn remember_build(
        &self,
        bucket: &str,
        key: &str,
        version: ArchiveVersion,
        state: Arc<SourceState>,
    ) {
        lock(&self.builds).insert((bucket.to_owned(), key.to_owned()), (version, state));
    }

    /// A manifest read before at this version.
    pub fn manifest(&self, bucket: &str, key: &str, version_id: &str) -> Option<Arc<Manifest>> {
        lock(&self.manifests)
            .get(&(bucket.to_owned(), key.to_owned(), version_id.to_owned()))
            .cloned()
    }

    pub fn remember_manifest(
        &self,
        bucket: &str,
        key: &str,
        version_id: &str,
        manifest: Arc<Manifest>,
    ) {
        lock(&self.manifests).insert(
            (bucket.to_owned(), key.to_owned(), version_id.to_owned()),
            manifest,
        );
    }

    /// Keeps only the manifests of `bucket` that `keep(key, version_id)` wants: the ones a
    /// round just found current or served. Without this every manifest version ever read
    /// stays for the life of the process — a site of 50,000 keys deploying ten times a day
    /// would grow by ≈ 100 MB a day.
    pub fn retain_manifests(&self, bucket: &str, keep: impl Fn(&str, &str) -> bool) {
        lock(&self.manifests).retain(|(b, key, version), _| b != bucket || keep(key, version));
    }

    /// How many parsed manifests are held, of every bucket.
    pub fn manifest_count(&self) -> usize {
        lock(&self.manifests).len()
    }

    /// The bucket is gone (deleted with the site): forget its manifests.
    pub fn forget_bucket(&self, bucket: &str) {
        lock(&self.manifests).retain(|(b, _, _), _| b != bucket);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::static_site::manifest::{FORMAT, ManifestSource};

    fn manifest(revision: &str) -> Arc<Manifest> {
        Arc::new(Manifest {
            format: FORMAT,
            revision: revision.to_owned(),
            created_at: "2026-12-01T00:00:00Z".to_owned(),
            source: ManifestSource::default(),
            objects: std::collections::BTreeMap::new(),
        })
    }

    #[test]
    fn retaining_drops_only_the_unwanted_manifests_of_that_bucket() {
        let cache = SiteCache::new();
        cache.remember_manifest("a", "r1.json", "v1", manifest("r1"));
        cache.remember_manifest("a", "r1.json", "v2", manifest("r1"));
        cache.remember_manifest("a", "r2.json", "v3", manifest("r2"));
        cache.remember_manifest("b", "r1.json", "v1", manifest("r1"));
        cache.retain_manifests("a", |key, version| key == "r1.json" && version == "v2");
        assert_eq!(cache.manifest_count(), 2);
        assert!(cache.manifest("a", "r1.json", "v2").is_some());
        assert!(cache.manifest("a", "r1.json", "v1").is_none());
        assert!(cache.manifest("a", "r2.json", "v3").is_none());
        assert!(
            cache.manifest("b", "r1.json", "v1").is_some(),
            "another bucket's"
        );
    }
}
