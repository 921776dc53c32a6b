//! One region's Lambda functions, event-source mappings, layers, published versions and
//! aliases, as every reconcile of the region reads them.
//!
//! AWS gives each account and region 15 calls/s for *all* Lambda control-plane APIs together,
//! shared with every other tool; `GetFunction` has its own 100/s. So:
//!
//! - **Functions**: one paged `ListFunctions` (50 per page) serves every stage for the listing
//!   age ([`ListingAge`]: `max_age`, or the feed backstop while the event feed announces what a
//!   new listing would find). A
//!   function is read on its own (`GetFunction`: configuration, tags and image digest in one
//!   call) only when the listing cannot be trusted for it: Stagehand just wrote to it, an
//!   update is in progress, the listing does not have it, or its ownership tags were not read
//!   for its current revision within [`IDENTITY_RECHECK`].
//! - **Event-source mappings**: one paged region-wide `ListEventSourceMappings` (100 per page)
//!   for the listing age, dropped after every mapping Stagehand creates or changes, and when
//!   the feed announces a mapping written by someone else.
//! - **Layers**: `ListLayerVersions` per layer name for the listing age, dropped when the feed
//!   announces a version published or deleted.
//! - **Published versions** per function and code hash for [`IDENTITY_RECHECK`], and **aliases**
//!   for `max_age`, dropped after Stagehand publishes, deletes or moves one.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use super::cached::Cached;
use super::function_listing::{FunctionListing, FunctionListingBuilder};
use super::{IDENTITY_RECHECK, ListingAge};
use crate::aws::AwsError;
use crate::aws::lambda::{
    Alias, EventSourceMapping, FunctionDetails, FunctionInfo, Lambda, LayerVersion,
    PublishedVersion,
};
use crate::aws::tags::{CLUSTER_TAG, OWNER_TAG};

/// A function as the inventory knows it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct KnownFunction {
    pub info: FunctionInfo,
    /// Its ownership tags (`stagehand.dev/owner`, `stagehand.dev/cluster`): the only tags a
    /// stage reads, so the only ones kept (a function's other tags are not Stagehand's).
    pub tags: BTreeMap<String, String>,
    /// `sha256:<hex>` of the deployed image (image functions).
    pub image_digest: Option<String>,
}

/// What one `GetFunction` said beyond the listing, valid for the revision and code it read.
/// One of these per function of the region, so only what a stage reads is kept, each string
/// at its length: ≈ 0.3 KiB per function with its key, against ≈ 0.55 KiB as a tag map and
/// full strings (docs/benchmarks.md, "10,000 objects converged").
#[derive(Clone, Debug)]
struct FunctionIdentity {
    revision_id: Option<Box<str>>,
    /// Image functions only: the code hash the digest was read with.
    code_sha256: Option<Box<str>>,
    image_digest: Option<Box<str>>,
    /// The ownership tags' values: the only tags a stage reads (a function's other tags are
    /// not Stagehand's).
    owner: Option<Box<str>>,
    cluster: Option<Box<str>>,
}

impl FunctionIdentity {
    fn new(
        info: &FunctionInfo,
        tags: &BTreeMap<String, String>,
        image_digest: Option<&str>,
    ) -> Self {
        let boxed = |value: Option<&String>| value.map(|value| value.as_str().into());
        Self {
            revision_id: boxed(info.revision_id.as_ref()),
            code_sha256: boxed(info.code_sha256.as_ref().filter(|_| info.is_image())),
            image_digest: image_digest.map(Into::into),
            owner: boxed(tags.get(OWNER_TAG)),
            cluster: boxed(tags.get(CLUSTER_TAG)),
        }
    }

    /// The ownership tags, as `GetFunction` gave them.
    fn tags(&self) -> BTreeMap<String, String> {
        [(OWNER_TAG, &self.owner), (CLUSTER_TAG, &self.cluster)]
            .into_iter()
            .filter_map(|(key, value)| Some((key.to_owned(), value.as_deref()?.to_owned())))
            .collect()
    }
}

/// The Lambda inventory of one region.
#[derive(Debug)]
pub struct LambdaInventory {
    lambda: Lambda,
    /// How old the region-wide listings (functions, mappings, layers) may be at each use.
    listing_age: ListingAge,
    functions: Cached<(), Arc<FunctionListing>>,
    /// Functions to read on their own before the listing is trusted for them again.
    dirty: Mutex<BTreeSet<String>>,
    /// By function ARN; the time is when the tags were read.
    identities: Cached<String, FunctionIdentity>,
    mappings: Cached<(), Arc<Vec<EventSourceMapping>>>,
    layers: Cached<String, Option<LayerVersion>>,
    /// By (function, code hash the versions were listed for).
    versions: Cached<(String, Option<String>), Vec<PublishedVersion>>,
    /// By (function, alias).
    aliases: Cached<(String, String), Option<Alias>>,
}

impl LambdaInventory {
    /// Listings younger than `max_age` are reused.
    pub fn new(lambda: Lambda, max_age: Duration) -> Self {
        Self {
            lambda,
            listing_age: ListingAge::fixed(max_age),
            functions: Cached::new(max_age),
            dirty: Mutex::default(),
            identities: Cached::new(IDENTITY_RECHECK),
            mappings: Cached::new(max_age),
            layers: Cached::new(max_age),
            versions: Cached::new(IDENTITY_RECHECK),
            aliases: Cached::new(max_age),
        }
    }

    /// Region-wide listings trusted for `age` (decided at each use) instead of `max_age`.
    #[must_use]
    pub fn with_listing_age(mut self, age: ListingAge) -> Self {
        self.listing_age = age;
        self
    }

    /// How old the region-wide listings may be now.
    pub fn listing_age(&self) -> Duration {
        self.listing_age.now()
    }

    fn dirty(&self) -> std::sync::MutexGuard<'_, BTreeSet<String>> {
        // Every update is a single insert or removal: consistent even after a panic.
        self.dirty.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The region's listing of functions, younger than the listing age (one paged
    /// `ListFunctions` when there is none), shared rather than copied: every stage's round asks for it, and a
    /// copy of its names per round was O(functions) per object — at 18,000 functions ≈ 1.5 MB
    /// allocated and freed by each of 9,000 stages at every resync.
    async fn listing(&self) -> Result<Arc<FunctionListing>, AwsError> {
        self.functions
            .get_or_load_within(&(), self.listing_age(), || async {
                let mut listing = FunctionListingBuilder::default();
                self.lambda.list_functions_into(&mut listing).await?;
                // Functions written while the listing ran may be listed with their old state:
                // they stay dirty and are read on their own.
                Ok::<_, AwsError>(Arc::new(listing.build()))
            })
            .await
    }

    /// Makes sure a listing younger than the listing age is there, for [`LambdaInventory::function`].
    pub async fn ensure_listed(&self) -> Result<(), AwsError> {
        self.listing().await.map(drop)
    }

    /// The names of the listed functions that start with `prefix`, in name order (a range of
    /// the sorted listing: nothing else is visited or copied). Ensures the listing like
    /// [`LambdaInventory::ensure_listed`].
    pub async fn function_names_with_prefix(&self, prefix: &str) -> Result<Vec<String>, AwsError> {
        Ok(self.listing().await?.names_with_prefix(prefix))
    }

    /// The function `name` (listed, or read on its own when the listing cannot be trusted for
    /// it); `None` when it does not exist. Call [`LambdaInventory::ensure_listed`] first.
    pub async fn function(&self, name: &str) -> Result<Option<KnownFunction>, AwsError> {
        let dirty = self.dirty().contains(name);
        let listed = self
            .functions
            .peek_any_age(&(), |listing| listing.get(name))
            .flatten();
        if !dirty
            && let Some(info) = listed
            && !info.update_in_progress()
            && let Some(known) = self.known(&info)
        {
            return Ok(Some(known));
        }
        let details = self.lambda.get_function(name).await?;
        Ok(self.read_back(name, details))
    }

    /// The listed function with what an earlier `GetFunction` said of this revision, when that
    /// is enough: tags read within [`IDENTITY_RECHECK`], and the image digest of this code.
    fn known(&self, info: &FunctionInfo) -> Option<KnownFunction> {
        let identity = self.identities.get(&info.arn)?;
        if identity.revision_id.as_deref() != info.revision_id.as_deref() {
            return None;
        }
        if info.is_image() && identity.code_sha256.as_deref() != info.code_sha256.as_deref() {
            return None;
        }
        Some(KnownFunction {
            info: info.clone(),
            tags: identity.tags(),
            image_digest: identity
                .image_digest
                .filter(|_| info.is_image())
                .map(Into::into),
        })
    }

    /// Records a function read on its own (`GetFunction`).
    fn read_back(&self, name: &str, details: Option<FunctionDetails>) -> Option<KnownFunction> {
        let Some(details) = details else {
            self.dirty().remove(name);
            self.functions.update(&(), |listing| {
                Arc::make_mut(listing).remove(name);
            });
            return None;
        };
        let info = details.function.clone();
        let image_digest = details.image_digest().map(str::to_owned);
        let tags: BTreeMap<String, String> = details
            .tags
            .into_iter()
            .filter(|(key, _)| key == OWNER_TAG || key == CLUSTER_TAG)
            .collect();
        self.identities.insert(
            info.arn.clone(),
            FunctionIdentity::new(&info, &tags, image_digest.as_deref()),
        );
        // Still updating: read it on its own again next time, whatever a listing says.
        if info.update_in_progress() {
            self.dirty().insert(name.to_owned());
        } else {
            self.dirty().remove(name);
        }
        self.functions.update(&(), |listing| {
            Arc::make_mut(listing).insert(info.clone());
        });
        Some(KnownFunction {
            info,
            tags,
            image_digest,
        })
    }

    /// Whether the tags of the function `arn` were read at or after `since`.
    pub fn tags_read_since(&self, arn: &str, since: Instant) -> bool {
        self.identities
            .read_at(&arn.to_owned())
            .is_some_and(|at| at >= since)
    }

    /// Stagehand changed the function (code, configuration, tags): read it back next time.
    pub fn function_written(&self, name: &str) {
        self.dirty().insert(name.to_owned());
    }

    /// Something else may have changed many functions and mappings at once (a CloudFormation
    /// stack update): list them again next time.
    pub fn functions_changed(&self) {
        self.functions.invalidate(&());
        self.mappings.invalidate(&());
    }

    /// Every mapping of the region (one region-wide listing for the listing age).
    pub async fn mappings(&self) -> Result<Arc<Vec<EventSourceMapping>>, AwsError> {
        self.mappings
            .get_or_load_within(&(), self.listing_age(), || async {
                Ok(Arc::new(
                    self.lambda.list_all_event_source_mappings().await?,
                ))
            })
            .await
    }

    /// Stagehand created or changed a mapping: list again next time.
    pub fn mappings_written(&self) {
        self.mappings.invalidate(&());
    }

    /// The newest version of a layer (`ListLayerVersions` once per listing age).
    pub async fn latest_layer_version(
        &self,
        layer: &str,
    ) -> Result<Option<LayerVersion>, AwsError> {
        self.layers
            .get_or_load_within(&layer.to_owned(), self.listing_age(), || {
                self.lambda.latest_layer_version(layer)
            })
            .await
    }

    /// Someone published or deleted a version of `layer` (a CloudTrail event; a name or ARN):
    /// list it again next time, however a spec names it.
    pub fn layer_changed_elsewhere(&self, layer: &str) {
        let name = layer_name(layer);
        self.layers
            .invalidate_where(|cached| layer_name(cached) == name);
    }

    /// Published versions of `function` (not `$LATEST`), listed again when its code changed,
    /// after Stagehand published or deleted one, or after [`IDENTITY_RECHECK`].
    pub async fn published_versions(
        &self,
        function: &FunctionInfo,
    ) -> Result<Vec<PublishedVersion>, AwsError> {
        let key = (function.name.clone(), function.code_sha256.clone());
        if let Some(found) = self.versions.get(&key) {
            return Ok(found);
        }
        // Versions listed for an older build are of no use any more.
        self.versions
            .invalidate_where(|(name, code)| *name == function.name && *code != key.1);
        self.versions
            .get_or_load(&key, || async {
                let listed = self.lambda.list_versions(&function.name).await?;
                Ok(listed
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
                    .collect())
            })
            .await
    }

    /// Stagehand published or deleted a version of `function`: list its versions again next
    /// time.
    pub fn versions_written(&self, function: &str) {
        self.versions.invalidate_where(|(name, _)| name == function);
    }

    /// The alias `alias` of `function` (`GetAlias` once per `max_age`).
    pub async fn alias(&self, function: &str, alias: &str) -> Result<Option<Alias>, AwsError> {
        self.aliases
            .get_or_load(&(function.to_owned(), alias.to_owned()), || {
                self.lambda.get_alias(function, alias)
            })
            .await
    }

    /// The alias `alias` of `function`, trusted for `age` instead of `max_age`: the cadence of
    /// a drift-only read while the event feed would announce a change (see
    /// `lambda_stage::observe`). An `age` below `max_age` is `max_age`.
    pub async fn alias_within(
        &self,
        function: &str,
        alias: &str,
        age: Duration,
    ) -> Result<Option<Alias>, AwsError> {
        let key = (function.to_owned(), alias.to_owned());
        if let Some(found) = self.aliases.get_younger_than(&key, age) {
            return Ok(found);
        }
        self.aliases
            .get_or_load(&key, || self.lambda.get_alias(function, alias))
            .await
    }

    /// Someone else changed `function` (a CloudTrail event): its configuration, tags and
    /// aliases are read on their own next time, whatever the listing says.
    pub fn function_changed_elsewhere(&self, function: &str) {
        self.function_written(function);
        self.alias_written(function);
    }

    /// The function of the mapping `uuid`, from the region-wide listing.
    pub async fn mapping_function(&self, uuid: &str) -> Result<Option<String>, AwsError> {
        Ok(self
            .mappings()
            .await?
            .iter()
            .find(|m| m.uuid == uuid)
            .and_then(|m| m.function_arn.as_deref())
            .map(|arn| crate::aws::lambda::function_name_of_arn(arn).to_owned()))
    }

    /// Stagehand created or moved an alias of `function`: read it again next time.
    pub fn alias_written(&self, function: &str) {
        self.aliases.invalidate_where(|(f, _)| f == function);
    }

    /// Drops the listings read `age` or longer ago; what is keyed by identity stays (tags per
    /// function revision, versions per code hash).
    pub fn forget_older_than(&self, age: Duration) {
        self.functions.forget_older_than(age);
        self.mappings.forget_older_than(age);
        self.layers.forget_older_than(age);
        self.aliases.forget_older_than(age);
    }

    /// Drops what nobody read for `unused` among what is kept per function, version, alias
    /// and layer (see [`Cached::sweep`]); all of it can be read from AWS again.
    pub fn sweep(&self, unused: Duration) -> usize {
        self.identities.sweep(unused)
            + self.versions.sweep(unused)
            + self.aliases.sweep(unused)
            + self.layers.sweep(unused)
    }
}

/// A layer's name from what names it: a name, or a layer (version) ARN
/// (`arn:aws:lambda:<region>:<account>:layer:<name>[:<version>]`).
pub fn layer_name(reference: &str) -> &str {
    reference
        .split_once(":layer:")
        .map_or(reference, |(_, rest)| {
            rest.split(':').next().unwrap_or(rest)
        })
}

#[cfg(test)]
impl LambdaInventory {
    pub(crate) fn remember_layer(&self, layer: &str, latest: Option<LayerVersion>) {
        self.layers.insert(layer.to_owned(), latest);
    }

    pub(crate) fn cached_layer(&self, layer: &str) -> bool {
        self.layers.get(&layer.to_owned()).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::tests::provider;

    fn inventory() -> LambdaInventory {
        LambdaInventory::new(provider().lambda("r"), Duration::from_secs(30))
    }

    #[tokio::test]
    async fn a_prefix_selects_a_range_of_the_shared_listing() {
        let inventory = inventory();
        let listed = [
            "shop-api-dev",
            "shop-api-dev-chat",
            "shop-api-prod",
            "shop-web",
            "shop",
        ];
        inventory.functions.insert(
            (),
            Arc::new(FunctionListing::new(
                listed
                    .iter()
                    .map(|name| FunctionInfo {
                        name: (*name).to_owned(),
                        ..FunctionInfo::default()
                    })
                    .collect(),
            )),
        );
        // Listed within max age: no call (the provider points nowhere).
        let names = inventory
            .function_names_with_prefix("shop-api-")
            .await
            .unwrap();
        assert_eq!(
            names,
            ["shop-api-dev", "shop-api-dev-chat", "shop-api-prod"]
        );
        assert!(
            inventory
                .function_names_with_prefix("web")
                .await
                .unwrap()
                .is_empty()
        );
        inventory.ensure_listed().await.unwrap();
    }

    #[test]
    fn a_layer_event_drops_the_layer_however_it_is_named() {
        let inventory = inventory();
        let arn = "arn:aws:lambda:r:123456789012:layer:deps";
        inventory.remember_layer("deps", None);
        inventory.remember_layer(arn, None);
        inventory.remember_layer("other", None);
        inventory.layer_changed_elsewhere(&format!("{arn}:7"));
        assert!(!inventory.cached_layer("deps"));
        assert!(!inventory.cached_layer(arn));
        assert!(inventory.cached_layer("other"));
        assert_eq!(layer_name("deps"), "deps");
    }

    #[test]
    fn written_functions_are_read_back() {
        let inventory = inventory();
        let info = FunctionInfo {
            name: "f".into(),
            arn: "arn:aws:lambda:r:1:function:f".into(),
            revision_id: Some("r1".into()),
            ..FunctionInfo::default()
        };
        // No tags read yet: not known from the listing alone.
        assert_eq!(inventory.known(&info), None);
        let known = inventory.read_back(
            "f",
            Some(FunctionDetails {
                function: info.clone(),
                tags: BTreeMap::from([
                    ("team".into(), "shop".into()),
                    (OWNER_TAG.into(), "shop/LambdaStage/dev".into()),
                ]),
                ..FunctionDetails::default()
            }),
        );
        assert_eq!(
            known.as_ref().map(|k| k.tags.clone()),
            Some(BTreeMap::from([(
                OWNER_TAG.to_owned(),
                "shop/LambdaStage/dev".to_owned()
            )])),
            "ownership tags come with GetFunction; no other tag is kept"
        );
        assert_eq!(inventory.known(&info), known);
        // Another revision (someone changed the function): tags are read again.
        let changed = FunctionInfo {
            revision_id: Some("r2".into()),
            ..info.clone()
        };
        assert_eq!(inventory.known(&changed), None);
        inventory.function_written("f");
        assert!(inventory.dirty().contains("f"));
        inventory.read_back("f", None);
        assert!(!inventory.dirty().contains("f"));
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
        inventory.read_back("f", Some(details(updating)));
        assert!(inventory.dirty().contains("f"));
        inventory.read_back("f", Some(details(info)));
        assert!(!inventory.dirty().contains("f"));
    }

    #[tokio::test(start_paused = true)]
    async fn ownership_tags_are_trusted_for_an_hour() {
        let inventory = inventory();
        let info = FunctionInfo {
            name: "f".into(),
            arn: "arn:aws:lambda:r:1:function:f".into(),
            revision_id: Some("r1".into()),
            ..FunctionInfo::default()
        };
        let since = Instant::now();
        inventory.read_back(
            "f",
            Some(FunctionDetails {
                function: info.clone(),
                ..FunctionDetails::default()
            }),
        );
        assert!(inventory.tags_read_since(&info.arn, since));
        assert!(inventory.known(&info).is_some());
        tokio::time::advance(IDENTITY_RECHECK).await;
        assert!(inventory.known(&info).is_none(), "read again after an hour");
        assert!(!inventory.tags_read_since(&info.arn, since));
    }
}
