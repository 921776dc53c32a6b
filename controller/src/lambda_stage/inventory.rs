//! The shared picture of each region's Lambda account that every LambdaStage reconcile reads
//! from (DESIGN.md, "observe through a shared per-account/region inventory").
//!
//! AWS gives each account and region 15 calls/s for *all* Lambda control-plane APIs together,
//! shared with every other tool. Reading each function of each stage on every resync does not
//! scale, so observe reads through this inventory instead:
//!
//! - **Functions**: one paged `ListFunctions` per region (50 per page) serves every stage of
//!   the region for `max_age` (`--inventory-max-age`). A function is read on its own
//!   (`GetFunction`: configuration, tags and image in one call, on the separate 100/s quota)
//!   only when the listing cannot be trusted for it: Stagehand just wrote to it, an update is
//!   in progress, the listing does not have it, its ownership tags were not read for this
//!   revision or for [`IDENTITY_RECHECK`], or it is an image function whose digest is unknown.
//! - **Event-source mappings**: one paged region-wide `ListEventSourceMappings` (100 per page)
//!   for `max_age`, dropped after every mapping Stagehand creates or changes.
//! - **Layers**: `ListLayerVersions` per layer name for `max_age`.
//! - **Queues**: name → URL and ARN for [`IDENTITY_RECHECK`] (backlog is never cached:
//!   validation reads it every reconcile).
//! - **Artifacts**: one `ListObjectsV2` page per bucket and common key prefix of a stage's
//!   artifacts for `max_age`; an object whose ETag is unchanged since its last `HeadObject` is
//!   not HEADed again, and a pinned object version is HEADed once.
//! - **Published versions** per function and code hash, and aliases for `max_age`, dropped
//!   after Stagehand publishes or moves an alias.
//!
//! Every write the act step makes marks what it changed, so the next reconcile reads it back
//! instead of trusting the listing; what others change is seen within `max_age`. A spec change
//! (or `stagehand.dev/refresh`) asks for listings at most [`DEFAULT_FRESH_FLOOR`] old
//! ([`Inventory::refresh`]): fresh enough for the change, shared by a burst of them. Refreshes are
//! single-flight: reconciles that need the same listing at once wait for one call.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use super::observe::HashCache;
use crate::aws::AwsError;
use crate::aws::lambda::{
    Alias, EventSourceMapping, FunctionDetails, FunctionInfo, Lambda, LayerVersion,
    PublishedVersion,
};
use crate::aws::s3::{ObjectHead, S3};
use crate::aws::sqs::{QueueRef, Sqs};

/// How long identities that rarely change are trusted: ownership tags read for an unchanged
/// function revision (tags are not part of a revision, so a hand-edited owner tag is noticed
/// within this time, or at once when the function changes), queue URLs and ARNs, and the
/// published versions of an unchanged code hash.
pub const IDENTITY_RECHECK: Duration = Duration::from_secs(3600);

/// Listings younger than this count as fresh when a spec change asks for a fresh view.
pub const DEFAULT_FRESH_FLOOR: Duration = Duration::from_secs(1);

/// How many keys one artifact listing reads (one `ListObjectsV2` page).
const ARTIFACT_PAGE: i32 = 1000;

/// What is known about one function beyond the listing.
#[derive(Clone, Debug, Default)]
struct FunctionExtras {
    /// Tags, and the revision and time they were read at.
    tags: Option<(Option<String>, Instant, BTreeMap<String, String>)>,
    /// The image digest for (revision, code hash).
    image: Option<(Option<String>, Option<String>, Option<String>)>,
}

#[derive(Debug)]
struct FunctionListing {
    at: Instant,
    by_name: BTreeMap<String, FunctionInfo>,
}

/// One `ListObjectsV2` page: when, ETag by key, whether it held every key under the prefix.
#[derive(Clone, Debug)]
struct ObjectListing {
    at: Instant,
    e_tags: BTreeMap<String, Option<String>>,
    complete: bool,
}

#[derive(Debug, Default)]
struct RegionState {
    functions: Option<FunctionListing>,
    /// Functions to read on their own before they are trusted again (written to by Stagehand).
    dirty: std::collections::BTreeSet<String>,
    mappings: Option<(Instant, Vec<EventSourceMapping>)>,
    layers: HashMap<String, (Instant, Option<LayerVersion>)>,
    queues: HashMap<String, (Instant, Option<(String, String)>)>,
    /// (bucket, prefix) → one page of objects under the prefix.
    listings: HashMap<(String, String), ObjectListing>,
    /// (bucket, key, pinned version) → the last HEAD.
    heads: HashMap<(String, String, Option<String>), ObjectHead>,
    /// function name → code hash the versions were listed for, time, versions.
    versions: HashMap<String, (Option<String>, Instant, Vec<PublishedVersion>)>,
    /// (function, alias) → time, alias.
    aliases: HashMap<(String, String), (Instant, Option<Alias>)>,
}

/// A function as the inventory knows it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct KnownFunction {
    pub info: FunctionInfo,
    pub tags: BTreeMap<String, String>,
    /// `sha256:<hex>` of the deployed image (image functions).
    pub image_digest: Option<String>,
}

/// The per-region inventory shared by every reconcile of one controller (and one
/// `stagehand plan`/`apply` run).
#[derive(Debug)]
pub struct Inventory {
    max_age: Duration,
    fresh_floor: Duration,
    hashes: HashCache,
    regions: Mutex<HashMap<String, RegionState>>,
    extras: Mutex<HashMap<String, FunctionExtras>>,
    refreshing: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Default for Inventory {
    fn default() -> Self {
        Self::new(Duration::ZERO)
    }
}

/// Lock a mutex whose data stays consistent even if a holder panicked (every update is a
/// single insert or replace).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Inventory {
    /// Listings younger than `max_age` are reused; `Duration::ZERO` reads AWS every time.
    pub fn new(max_age: Duration) -> Self {
        Self {
            max_age,
            fresh_floor: DEFAULT_FRESH_FLOOR,
            hashes: HashCache::default(),
            regions: Mutex::new(HashMap::new()),
            extras: Mutex::new(HashMap::new()),
            refreshing: Mutex::new(HashMap::new()),
        }
    }

    pub fn max_age(&self) -> Duration {
        self.max_age
    }

    /// SHA-256 of artifacts S3 has no checksum for (never expire: keyed by content identity).
    pub fn hashes(&self) -> &HashCache {
        &self.hashes
    }

    fn fresh(&self, at: Instant) -> bool {
        at.elapsed() < self.max_age
    }

    fn region<R>(&self, region: &str, f: impl FnOnce(&mut RegionState) -> R) -> R {
        let mut regions = lock(&self.regions);
        f(regions.entry(region.to_owned()).or_default())
    }

    /// The single-flight lock of one listing.
    fn flight(&self, what: String) -> Arc<tokio::sync::Mutex<()>> {
        lock(&self.refreshing).entry(what).or_default().clone()
    }

    // ---- functions ----

    /// Makes sure the region's function listing is younger than `max_age` (one paged
    /// `ListFunctions` when not), and returns the listed names.
    pub async fn function_names(
        &self,
        lambda: &Lambda,
        region: &str,
    ) -> Result<Vec<String>, AwsError> {
        let names = |state: &RegionState| {
            state
                .functions
                .as_ref()
                .filter(|listing| self.fresh(listing.at))
                .map(|listing| listing.by_name.keys().cloned().collect::<Vec<_>>())
        };
        if let Some(found) = self.region(region, |s| names(s)) {
            return Ok(found);
        }
        let flight = self.flight(format!("{region}/functions"));
        let _guard = flight.lock().await;
        if let Some(found) = self.region(region, |s| names(s)) {
            return Ok(found);
        }
        let listed = lambda.list_functions().await?;
        let by_name: BTreeMap<String, FunctionInfo> =
            listed.into_iter().map(|f| (f.name.clone(), f)).collect();
        let found = by_name.keys().cloned().collect();
        self.region(region, |state| {
            // Functions written since the listing started may be listed with their old state:
            // they stay dirty and are read on their own.
            state.functions = Some(FunctionListing {
                at: Instant::now(),
                by_name,
            });
        });
        Ok(found)
    }

    /// The function `name` (listed, or read on its own when the listing cannot be trusted for
    /// it); `None` when it does not exist. Call [`Inventory::function_names`] first.
    pub async fn function(
        &self,
        lambda: &Lambda,
        region: &str,
        name: &str,
    ) -> Result<Option<KnownFunction>, AwsError> {
        let listed = self.region(region, |state| {
            let dirty = state.dirty.contains(name);
            let info = state
                .functions
                .as_ref()
                .and_then(|l| l.by_name.get(name).cloned());
            (dirty, info)
        });
        if let (false, Some(info)) = listed
            && !info.update_in_progress()
            && let Some(known) = self.known(&info)
        {
            return Ok(Some(known));
        }
        let details = lambda.get_function(name).await?;
        Ok(self.read_back(region, name, details))
    }

    /// What the listing plus the extras say, when they are enough: tags read for this revision
    /// within [`IDENTITY_RECHECK`], and the image digest for this revision.
    fn known(&self, info: &FunctionInfo) -> Option<KnownFunction> {
        let extras = lock(&self.extras);
        let extra = extras.get(&info.arn)?;
        let (revision, at, tags) = extra.tags.as_ref()?;
        if *revision != info.revision_id || at.elapsed() >= IDENTITY_RECHECK {
            return None;
        }
        let image_digest = if info.is_image() {
            let (revision, code, digest) = extra.image.as_ref()?;
            if *revision != info.revision_id || *code != info.code_sha256 {
                return None;
            }
            digest.clone()
        } else {
            None
        };
        Some(KnownFunction {
            info: info.clone(),
            tags: tags.clone(),
            image_digest,
        })
    }

    /// Records a function read on its own (`GetFunction`).
    fn read_back(
        &self,
        region: &str,
        name: &str,
        details: Option<FunctionDetails>,
    ) -> Option<KnownFunction> {
        let Some(details) = details else {
            self.region(region, |state| {
                state.dirty.remove(name);
                if let Some(listing) = state.functions.as_mut() {
                    listing.by_name.remove(name);
                }
            });
            return None;
        };
        let info = details.function.clone();
        let image_digest = details.image_digest().map(str::to_owned);
        lock(&self.extras).insert(
            info.arn.clone(),
            FunctionExtras {
                tags: Some((
                    info.revision_id.clone(),
                    Instant::now(),
                    details.tags.clone(),
                )),
                image: Some((
                    info.revision_id.clone(),
                    info.code_sha256.clone(),
                    image_digest.clone(),
                )),
            },
        );
        self.region(region, |state| {
            // Still updating: read it on its own again next time, whatever a listing says.
            if info.update_in_progress() {
                state.dirty.insert(name.to_owned());
            } else {
                state.dirty.remove(name);
            }
            if let Some(listing) = state.functions.as_mut() {
                listing.by_name.insert(name.to_owned(), info.clone());
            }
        });
        Some(KnownFunction {
            info,
            tags: details.tags,
            image_digest,
        })
    }

    /// Whether the tags of the function `arn` were read at or after `since`.
    pub fn tags_read_since(&self, arn: &str, since: Instant) -> bool {
        lock(&self.extras)
            .get(arn)
            .and_then(|extra| extra.tags.as_ref())
            .is_some_and(|(_, at, _)| *at >= since)
    }

    /// Stagehand changed the function (code, configuration, tags): read it back next time.
    pub fn function_written(&self, region: &str, name: &str) {
        self.region(region, |state| {
            state.dirty.insert(name.to_owned());
        });
    }

    /// Something else may have changed many functions at once (a CloudFormation stack update):
    /// list the region again next time.
    pub fn functions_changed(&self, region: &str) {
        self.region(region, |state| {
            state.functions = None;
            state.mappings = None;
        });
    }

    /// Forgets every listing of `region`: the next reconcile lists again. What is keyed by
    /// identity stays (tags per function revision, HEADs per ETag, versions per code hash,
    /// queue URLs and ARNs).
    pub fn forget(&self, region: &str) {
        self.forget_older_than(region, Duration::ZERO);
    }

    /// What a spec change or a `stagehand.dev/refresh` asks for: forgets the listings of
    /// `region` taken more than [`Inventory::fresh_floor`] ago. A burst of spec changes (a
    /// GitOps sync touching hundreds of stages) then costs one listing per floor, not one per
    /// stage, while each change still sees AWS as it was at most that long before.
    pub fn refresh(&self, region: &str) {
        self.forget_older_than(region, self.fresh_floor);
    }

    /// How old a listing may be and still count as fresh for [`Inventory::refresh`].
    pub fn fresh_floor(&self) -> Duration {
        self.fresh_floor
    }

    /// [`Inventory::new`] with another [`Inventory::fresh_floor`] (default
    /// [`DEFAULT_FRESH_FLOOR`]; zero: every refresh lists again).
    #[must_use]
    pub fn with_fresh_floor(mut self, floor: Duration) -> Self {
        self.fresh_floor = floor;
        self
    }

    fn forget_older_than(&self, region: &str, age: Duration) {
        let stale = |at: &Instant| at.elapsed() >= age;
        self.region(region, |state| {
            if state.functions.as_ref().is_some_and(|l| stale(&l.at)) {
                state.functions = None;
            }
            if state.mappings.as_ref().is_some_and(|(at, _)| stale(at)) {
                state.mappings = None;
            }
            state.layers.retain(|_, (at, _)| !stale(at));
            state.listings.retain(|_, listing| !stale(&listing.at));
            state.aliases.retain(|_, (at, _)| !stale(at));
        });
    }

    // ---- mappings ----

    /// Every mapping of the region (one region-wide listing for `max_age`).
    pub async fn mappings(
        &self,
        lambda: &Lambda,
        region: &str,
    ) -> Result<Vec<EventSourceMapping>, AwsError> {
        let cached = |state: &RegionState| {
            state
                .mappings
                .as_ref()
                .filter(|(at, _)| self.fresh(*at))
                .map(|(_, all)| all.clone())
        };
        if let Some(found) = self.region(region, |s| cached(s)) {
            return Ok(found);
        }
        let flight = self.flight(format!("{region}/mappings"));
        let _guard = flight.lock().await;
        if let Some(found) = self.region(region, |s| cached(s)) {
            return Ok(found);
        }
        let all = lambda.list_all_event_source_mappings().await?;
        self.region(region, |state| {
            state.mappings = Some((Instant::now(), all.clone()));
        });
        Ok(all)
    }

    /// Stagehand created or changed a mapping: list again next time.
    pub fn mappings_written(&self, region: &str) {
        self.region(region, |state| state.mappings = None);
    }

    // ---- layers ----

    /// The newest version of a layer (`ListLayerVersions` once per `max_age`).
    pub async fn latest_layer_version(
        &self,
        lambda: &Lambda,
        region: &str,
        layer: &str,
    ) -> Result<Option<LayerVersion>, AwsError> {
        let cached = self.region(region, |state| {
            state
                .layers
                .get(layer)
                .filter(|(at, _)| self.fresh(*at))
                .map(|(_, v)| v.clone())
        });
        if let Some(found) = cached {
            return Ok(found);
        }
        let latest = lambda.latest_layer_version(layer).await?;
        self.region(region, |state| {
            state
                .layers
                .insert(layer.to_owned(), (Instant::now(), latest.clone()));
        });
        Ok(latest)
    }

    // ---- queues ----

    /// A queue's URL and ARN (`GetQueueUrl` + `GetQueueAttributes` once per
    /// [`IDENTITY_RECHECK`]: a queue's URL and ARN follow from its name; a deleted queue is
    /// forgotten as soon as a backlog read misses it).
    pub async fn queue(
        &self,
        sqs: &Sqs,
        region: &str,
        name_or_arn: &str,
    ) -> Result<Option<(String, String)>, AwsError> {
        let cached = self.region(region, |state| {
            state
                .queues
                .get(name_or_arn)
                .filter(|(at, found)| {
                    // A missing queue may be created any time: looked up again after max_age.
                    let trusted = if found.is_some() {
                        IDENTITY_RECHECK
                    } else {
                        self.max_age
                    };
                    at.elapsed() < trusted
                })
                .map(|(_, q)| q.clone())
        });
        if let Some(found) = cached {
            return Ok(found);
        }
        let resolved = match sqs.queue_url(&QueueRef::parse(name_or_arn)).await? {
            Some(url) => sqs
                .queue_attributes(&url)
                .await?
                .map(|info| (info.url, info.arn)),
            None => None,
        };
        self.region(region, |state| {
            state
                .queues
                .insert(name_or_arn.to_owned(), (Instant::now(), resolved.clone()));
        });
        Ok(resolved)
    }

    /// The queue no longer answers at its cached URL.
    pub fn queue_gone(&self, region: &str, name_or_arn: &str) {
        self.region(region, |state| {
            state.queues.remove(name_or_arn);
        });
    }

    // ---- artifacts ----

    /// HEADs of `keys` (unpinned objects in one bucket): one listing of their common prefix
    /// tells which changed since their last HEAD; only those (and any the listing does not
    /// show) are HEADed.
    pub async fn object_heads(
        &self,
        s3: &S3,
        region: &str,
        bucket: &str,
        keys: &[String],
    ) -> Result<BTreeMap<String, Option<ObjectHead>>, AwsError> {
        let prefix = common_prefix(keys);
        let listing_key = (bucket.to_owned(), prefix.clone());
        let cached = self.region(region, |state| {
            state
                .listings
                .get(&listing_key)
                .filter(|listing| self.fresh(listing.at))
                .cloned()
        });
        let listing = if let Some(listing) = cached {
            listing
        } else {
            let (objects, truncated) = s3.list_objects_page(bucket, &prefix, ARTIFACT_PAGE).await?;
            let listing = ObjectListing {
                at: Instant::now(),
                e_tags: objects.into_iter().map(|o| (o.key, o.e_tag)).collect(),
                complete: !truncated,
            };
            self.region(region, |state| {
                state.listings.insert(listing_key.clone(), listing.clone());
            });
            listing
        };
        let mut heads = BTreeMap::new();
        for key in keys {
            let head_key = (bucket.to_owned(), key.clone(), None);
            let listed = listing.e_tags.get(key);
            if listed.is_none() && listing.complete {
                heads.insert(key.clone(), None);
                continue;
            }
            let known = self.region(region, |state| state.heads.get(&head_key).cloned());
            if let (Some(known), Some(listed_etag)) = (known, listed)
                && known.e_tag == *listed_etag
            {
                heads.insert(key.clone(), Some(known));
                continue;
            }
            let head = s3.head_object(bucket, key, None).await?;
            self.region(region, |state| match &head {
                Some(head) => {
                    state.heads.insert(head_key, head.clone());
                }
                None => {
                    state.heads.remove(&head_key);
                }
            });
            heads.insert(key.clone(), head);
        }
        Ok(heads)
    }

    /// HEAD of a pinned object version: versions never change, so once is enough.
    pub async fn object_version_head(
        &self,
        s3: &S3,
        region: &str,
        bucket: &str,
        key: &str,
        version_id: &str,
    ) -> Result<Option<ObjectHead>, AwsError> {
        let head_key = (
            bucket.to_owned(),
            key.to_owned(),
            Some(version_id.to_owned()),
        );
        if let Some(known) = self.region(region, |state| state.heads.get(&head_key).cloned()) {
            return Ok(Some(known));
        }
        let head = s3.head_object(bucket, key, Some(version_id)).await?;
        if let Some(head) = &head {
            self.region(region, |state| {
                state.heads.insert(head_key, head.clone());
            });
        }
        Ok(head)
    }

    // ---- versions and aliases ----

    /// Published versions of `function` (not `$LATEST`), listed again when its code changed,
    /// after Stagehand published one, or after [`IDENTITY_RECHECK`].
    pub async fn published_versions(
        &self,
        lambda: &Lambda,
        region: &str,
        function: &FunctionInfo,
    ) -> Result<Vec<PublishedVersion>, AwsError> {
        let cached = self.region(region, |state| {
            state
                .versions
                .get(&function.name)
                .filter(|(code, at, _)| {
                    *code == function.code_sha256 && at.elapsed() < IDENTITY_RECHECK
                })
                .map(|(_, _, versions)| versions.clone())
        });
        if let Some(found) = cached {
            return Ok(found);
        }
        let versions: Vec<PublishedVersion> = lambda
            .list_versions(&function.name)
            .await?
            .into_iter()
            .filter_map(|v| {
                let version = v.version.filter(|n| n != "$LATEST")?;
                Some(PublishedVersion {
                    version,
                    arn: v.arn,
                    code_sha256: v.code_sha256,
                    description: v.description,
                })
            })
            .collect();
        self.region(region, |state| {
            state.versions.insert(
                function.name.clone(),
                (
                    function.code_sha256.clone(),
                    Instant::now(),
                    versions.clone(),
                ),
            );
        });
        Ok(versions)
    }

    /// The alias `alias` of `function` (`GetAlias` once per `max_age`).
    pub async fn alias(
        &self,
        lambda: &Lambda,
        region: &str,
        function: &str,
        alias: &str,
    ) -> Result<Option<Alias>, AwsError> {
        let key = (function.to_owned(), alias.to_owned());
        let cached = self.region(region, |state| {
            state
                .aliases
                .get(&key)
                .filter(|(at, _)| self.fresh(*at))
                .map(|(_, a)| a.clone())
        });
        if let Some(found) = cached {
            return Ok(found);
        }
        let current = lambda.get_alias(function, alias).await?;
        self.region(region, |state| {
            state.aliases.insert(key, (Instant::now(), current.clone()));
        });
        Ok(current)
    }

    /// Stagehand published a version of `function`: list its versions again next time.
    pub fn versions_written(&self, region: &str, function: &str) {
        self.region(region, |state| {
            state.versions.remove(function);
        });
    }

    /// Stagehand created or moved an alias of `function`: read it again next time.
    pub fn alias_written(&self, region: &str, function: &str) {
        self.region(region, |state| {
            state.aliases.retain(|(f, _), _| f != function);
        });
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

/// The function name in a function ARN (`arn:aws:lambda:<region>:<account>:function:<name>`),
/// with the qualifier, if any, kept (`name:alias`).
pub fn function_name_of_arn(arn: &str) -> &str {
    arn.split_once(":function:").map_or(arn, |(_, name)| name)
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
    fn function_names_from_arns() {
        assert_eq!(
            function_name_of_arn("arn:aws:lambda:eu-west-1:123456789012:function:shop-api"),
            "shop-api"
        );
        assert_eq!(
            function_name_of_arn("arn:aws:lambda:eu-west-1:123456789012:function:shop-api:live"),
            "shop-api:live"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn listings_expire_after_max_age() {
        let inventory = Inventory::new(Duration::from_secs(30));
        inventory.region("r", |state| {
            state.layers.insert("deps".into(), (Instant::now(), None));
        });
        let fresh = |inv: &Inventory| {
            inv.region("r", |s| {
                s.layers.get("deps").is_some_and(|(at, _)| inv.fresh(*at))
            })
        };
        assert!(fresh(&inventory));
        tokio::time::advance(Duration::from_secs(29)).await;
        assert!(fresh(&inventory));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(!fresh(&inventory));
        // Zero: nothing is ever reused.
        let never = Inventory::new(Duration::ZERO);
        never.region("r", |state| {
            state.layers.insert("deps".into(), (Instant::now(), None));
        });
        assert!(!fresh(&never));
    }

    #[tokio::test(start_paused = true)]
    async fn a_refresh_keeps_listings_younger_than_the_floor() {
        let inventory = Inventory::new(Duration::from_secs(30));
        let listed = |inv: &Inventory| inv.region("r", |s| s.layers.contains_key("deps"));
        inventory.region("r", |state| {
            state.layers.insert("deps".into(), (Instant::now(), None));
        });
        tokio::time::advance(Duration::from_millis(500)).await;
        inventory.refresh("r");
        assert!(listed(&inventory), "half a second old: fresh enough");
        tokio::time::advance(Duration::from_millis(500)).await;
        inventory.refresh("r");
        assert!(!listed(&inventory), "a second old: listed again");
        // A zero floor: every refresh lists again.
        let eager = Inventory::new(Duration::from_secs(30)).with_fresh_floor(Duration::ZERO);
        eager.region("r", |state| {
            state.layers.insert("deps".into(), (Instant::now(), None));
        });
        eager.refresh("r");
        assert!(!listed(&eager));
    }

    #[test]
    fn written_functions_are_read_back() {
        let inventory = Inventory::new(Duration::from_secs(30));
        let info = FunctionInfo {
            name: "f".into(),
            arn: "arn:aws:lambda:r:1:function:f".into(),
            revision_id: Some("r1".into()),
            ..FunctionInfo::default()
        };
        // No tags read yet: not known from the listing alone.
        assert_eq!(inventory.known(&info), None);
        let known = inventory.read_back(
            "r",
            "f",
            Some(FunctionDetails {
                function: info.clone(),
                tags: BTreeMap::from([("team".into(), "shop".into())]),
                ..FunctionDetails::default()
            }),
        );
        assert_eq!(
            known.as_ref().map(|k| k.tags.len()),
            Some(1),
            "tags come with GetFunction"
        );
        assert_eq!(inventory.known(&info), known);
        // Another revision (someone changed the function): tags are read again.
        let changed = FunctionInfo {
            revision_id: Some("r2".into()),
            ..info.clone()
        };
        assert_eq!(inventory.known(&changed), None);
        inventory.function_written("r", "f");
        assert!(inventory.region("r", |s| s.dirty.contains("f")));
        inventory.read_back("r", "f", None);
        assert!(!inventory.region("r", |s| s.dirty.contains("f")));
        // A read that says "update in progress" keeps the function read on its own until one
        // says it is done, whatever a listing taken meanwhile says.
        let updating = FunctionInfo {
            last_update_status: Some("InProgress".into()),
            ..info.clone()
        };
        let details = |function: FunctionInfo| FunctionDetails {
            function,
            ..FunctionDetails::default()
        };
        inventory.read_back("r", "f", Some(details(updating)));
        assert!(inventory.region("r", |s| s.dirty.contains("f")));
        inventory.read_back("r", "f", Some(details(info)));
        assert!(!inventory.region("r", |s| s.dirty.contains("f")));
    }
}
