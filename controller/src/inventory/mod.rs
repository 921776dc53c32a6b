//! The shared picture of AWS that every reconcile reads from, whatever its kind: built once per
//! region and service, held in the runtime's `Context` (and by `stagehand plan`/`apply` and the
//! benchmark), so every object of a region shares one listing and one rate budget.
//!
//! Reading each resource of each object on every resync does not scale: AWS's control-plane
//! quotas are per account and region and shared with every other tool (Lambda: 15 calls/s for
//! all of its control-plane APIs together). So observe reads through these inventories, which
//! read through the adapters in [`crate::aws`]: data flows downward, never back.
//!
//! - [`cached`]: the one primitive (time-to-live, single flight, invalidate on our own write,
//!   forget on demand).
//! - [`lambda`], [`s3`], [`sqs`], [`ec2`]: one inventory per service and region.
//!
//! Every write a kind makes marks what it changed, so the next reconcile reads it back instead
//! of trusting a listing; what others change is seen within `max_age` (`--inventory-max-age`).
//! A spec change (or `stagehand.dev/refresh`) asks for listings at most
//! [`DEFAULT_FRESH_FLOOR`] old ([`Inventory::refresh`]): fresh enough for the change, shared by
//! a burst of them.

pub mod cached;
pub mod ec2;
pub mod lambda;
pub mod launch;
pub mod s3;
pub mod sqs;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

pub use self::ec2::{Ec2Inventory, Offering};
pub use self::lambda::{KnownFunction, LambdaInventory};
pub use self::s3::{ArtifactKey, S3Inventory};
pub use self::sqs::{EventFeed, SqsInventory};
use crate::aws::AwsProvider;

/// How long identities that rarely change are trusted: ownership tags read for an unchanged
/// function revision (tags are not part of a revision, so a hand-edited owner tag is noticed
/// within this time, or at once when the function changes), queue URLs and ARNs, and the
/// published versions of an unchanged code hash.
pub const IDENTITY_RECHECK: Duration = Duration::from_secs(3600);

/// Listings younger than this count as fresh when a spec change asks for a fresh view: a GitOps
/// sync touching hundreds of objects costs one listing per second, not one per object.
pub const DEFAULT_FRESH_FLOOR: Duration = Duration::from_secs(1);

/// Every service's inventory of one region.
#[derive(Debug)]
struct RegionInventory {
    lambda: Arc<LambdaInventory>,
    s3: Arc<S3Inventory>,
    sqs: Arc<SqsInventory>,
    ec2: Arc<Ec2Inventory>,
}

/// The inventories of every region, made on first use. Cheap to clone (clones share them).
#[derive(Clone, Debug)]
pub struct Inventory {
    aws: AwsProvider,
    max_age: Duration,
    fresh_floor: Duration,
    /// `--event-queue`: the controller-wide queue LambdaStages and StaticSites rely on.
    event_queue: Option<String>,
    regions: Arc<Mutex<HashMap<String, Arc<RegionInventory>>>>,
}

impl Inventory {
    /// Listings younger than `max_age` are reused; `Duration::ZERO` reads AWS every time.
    pub fn new(aws: AwsProvider, max_age: Duration) -> Self {
        Self {
            aws,
            max_age,
            fresh_floor: DEFAULT_FRESH_FLOOR,
            event_queue: None,
            regions: Arc::default(),
        }
    }

    /// Another [`Inventory::fresh_floor`] (default [`DEFAULT_FRESH_FLOOR`]; zero: every refresh
    /// lists again). Set it before cloning.
    #[must_use]
    pub fn with_fresh_floor(mut self, floor: Duration) -> Self {
        self.fresh_floor = floor;
        self
    }

    /// The controller-wide event queue (`--event-queue`, a name or an ARN). Set it before
    /// cloning.
    #[must_use]
    pub fn with_event_queue(mut self, queue: Option<String>) -> Self {
        self.event_queue = queue.filter(|q| !q.is_empty());
        self
    }

    /// The controller-wide event queue objects of `region` rely on: (its region, name or ARN).
    /// Whether a controller-wide event queue (`--event-queue`) is configured.
    pub fn has_event_queue(&self) -> bool {
        self.event_queue.is_some()
    }

    pub fn event_queue(&self, region: &str) -> Option<(String, String)> {
        let queue = self.event_queue.as_deref()?;
        Some((
            sqs::event_queue_region(queue, region).to_owned(),
            queue.to_owned(),
        ))
    }

    /// How the controller-wide event queue of `region` stands (see [`EventFeed`]).
    pub fn event_feed(&self, region: &str) -> EventFeed {
        match self.event_queue(region) {
            None => EventFeed::NotConfigured,
            Some((queue_region, queue)) => self.sqs(&queue_region).feed_health(&queue),
        }
    }

    pub fn max_age(&self) -> Duration {
        self.max_age
    }

    /// How old a listing may be and still count as fresh for [`Inventory::refresh`].
    pub fn fresh_floor(&self) -> Duration {
        self.fresh_floor
    }

    /// The adapters the inventories read through (for the reads they do not cache).
    pub fn aws(&self) -> &AwsProvider {
        &self.aws
    }

    fn region(&self, region: &str) -> Arc<RegionInventory> {
        let mut regions = self.regions.lock().unwrap_or_else(PoisonError::into_inner);
        regions
            .entry(region.to_owned())
            .or_insert_with(|| {
                Arc::new(RegionInventory {
                    lambda: Arc::new(LambdaInventory::new(self.aws.lambda(region), self.max_age)),
                    s3: Arc::new(S3Inventory::new(self.aws.s3(region), self.max_age)),
                    sqs: Arc::new(SqsInventory::new(self.aws.sqs(region), self.max_age)),
                    ec2: Arc::new(Ec2Inventory::new(self.aws.ec2(region), self.max_age)),
                })
            })
            .clone()
    }

    pub fn lambda(&self, region: &str) -> Arc<LambdaInventory> {
        self.region(region).lambda.clone()
    }

    pub fn s3(&self, region: &str) -> Arc<S3Inventory> {
        self.region(region).s3.clone()
    }

    pub fn sqs(&self, region: &str) -> Arc<SqsInventory> {
        self.region(region).sqs.clone()
    }

    pub fn ec2(&self, region: &str) -> Arc<Ec2Inventory> {
        self.region(region).ec2.clone()
    }

    /// What a spec change or a `stagehand.dev/refresh` asks for: forgets the listings of
    /// `region` read before the change was `noticed` (when the watch event that brought it
    /// arrived; `None`: now), and in any case those [`Inventory::fresh_floor`] or older. A
    /// listing read after the event already shows AWS as it was when the change was made, so a
    /// burst of new objects — a GitOps sync, or every object of a controller that just started
    /// — costs one listing, not one per floor while they wait their turn: at 18,000 functions a
    /// listing is 360 pages, and relisting every second starved the first rounds
    /// (docs/benchmarks.md, "10,000 objects").
    pub fn refresh(&self, region: &str, noticed: Option<Instant>) {
        let since_noticed = noticed.map_or(Duration::ZERO, |at| at.elapsed());
        self.forget_older_than(region, self.fresh_floor.max(since_noticed));
    }

    /// Forgets every listing of `region`: the next reconcile lists again. What is keyed by
    /// identity stays (tags per function revision, heads per ETag, versions per code hash,
    /// queue URLs and ARNs).
    pub fn forget(&self, region: &str) {
        self.forget_older_than(region, Duration::ZERO);
    }

    fn forget_older_than(&self, region: &str, age: Duration) {
        let inventories = self.region(region);
        inventories.lambda.forget_older_than(age);
        inventories.s3.forget_older_than(age);
        inventories.ec2.forget_older_than(age);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use aws_config::{BehaviorVersion, Region, SdkConfig};

    use super::*;
    use crate::aws::{AwsMetrics, AwsSettings};

    /// Adapters that are never called (nothing here reaches AWS).
    pub(crate) fn provider() -> AwsProvider {
        let sdk = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("r"))
            .build();
        let metrics =
            AwsMetrics::register(&prometheus::Registry::new()).unwrap_or_else(|e| panic!("{e}"));
        AwsProvider::new(sdk, metrics, AwsSettings::default())
    }

    #[test]
    fn one_inventory_per_region_and_service_shared_by_clones() {
        let inventory = Inventory::new(provider(), Duration::from_secs(30));
        let clone = inventory.clone();
        assert!(Arc::ptr_eq(&inventory.lambda("a"), &clone.lambda("a")));
        assert!(!Arc::ptr_eq(&inventory.lambda("a"), &inventory.lambda("b")));
        assert!(Arc::ptr_eq(&inventory.s3("a"), &clone.s3("a")));
        assert!(Arc::ptr_eq(&inventory.sqs("a"), &clone.sqs("a")));
        assert!(Arc::ptr_eq(&inventory.ec2("a"), &clone.ec2("a")));
        assert!(!Arc::ptr_eq(&inventory.ec2("a"), &inventory.ec2("b")));
    }

    #[tokio::test(start_paused = true)]
    async fn a_refresh_keeps_listings_younger_than_the_floor() {
        let inventory = Inventory::new(provider(), Duration::from_secs(30));
        let lambda = inventory.lambda("r");
        let listed = || {
            // The layer cache answers without calling AWS while its entry is trusted.
            lambda.cached_layer("deps")
        };
        lambda.remember_layer("deps", None);
        tokio::time::advance(Duration::from_millis(500)).await;
        inventory.refresh("r", None);
        assert!(listed(), "half a second old: fresh enough");
        tokio::time::advance(Duration::from_millis(500)).await;
        inventory.refresh("r", None);
        assert!(!listed(), "a second old: listed again");
        // A zero floor: every refresh lists again.
        let eager =
            Inventory::new(provider(), Duration::from_secs(30)).with_fresh_floor(Duration::ZERO);
        eager.lambda("r").remember_layer("deps", None);
        eager.refresh("r", None);
        assert!(!eager.lambda("r").cached_layer("deps"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_refresh_keeps_listings_read_after_the_change_was_noticed() {
        let inventory = Inventory::new(provider(), Duration::from_secs(30));
        let lambda = inventory.lambda("r");
        let noticed = Instant::now();
        tokio::time::advance(Duration::from_secs(5)).await;
        lambda.remember_layer("deps", None);
        tokio::time::advance(Duration::from_secs(20)).await;
        inventory.refresh("r", Some(noticed));
        assert!(
            lambda.cached_layer("deps"),
            "read after the change was noticed: fresh enough, however long the wait"
        );
        inventory.refresh("r", Some(Instant::now()));
        assert!(
            !lambda.cached_layer("deps"),
            "read before a change noticed now: listed again"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_refresh_covers_the_instance_listing() {
        let inventory = Inventory::new(provider(), Duration::from_secs(30));
        let ec2 = inventory.ec2("r");
        ec2.remember_instances(Vec::new());
        tokio::time::advance(Duration::from_millis(500)).await;
        inventory.refresh("r", None);
        assert!(ec2.cached_instances(), "half a second old: fresh enough");
        tokio::time::advance(Duration::from_millis(500)).await;
        inventory.refresh("r", None);
        assert!(!ec2.cached_instances(), "a second old: listed again");
        ec2.remember_instances(Vec::new());
        inventory.forget("r");
        assert!(!ec2.cached_instances());
    }
}
