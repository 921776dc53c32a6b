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
//! - [`lambda`], [`s3`], [`sqs`], [`ec2`], [`cloudfront`]: one inventory per service and region.
//!
//! Every write a kind makes marks what it changed, so the next reconcile reads it back instead
//! of trusting a listing; what others change is seen within `max_age` (`--inventory-max-age`),
//! or — the region-wide Lambda listings while the event feed covering the region is healthy and
//! announces those changes itself — within the feed backstop ([`ListingAge`]).
//! A spec change (or `stagehand.dev/refresh`) asks for the listings its kind reads to have been
//! read after the change was noticed, or at most [`DEFAULT_FRESH_FLOOR`] ago
//! ([`Inventory::refresh`]): fresh enough for the change, shared by a burst of them.

pub mod cached;
pub mod cloudfront;
pub mod ec2;
pub mod function_listing;
pub mod lambda;
pub mod launch;
pub mod s3;
pub mod sqs;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

pub use self::cloudfront::CloudFrontInventory;
pub use self::ec2::{Ec2Inventory, Offering};
pub use self::lambda::{KnownFunction, LambdaInventory};
pub use self::s3::{ArtifactKey, S3Inventory};
pub use self::sqs::{EventFeed, SqsInventory};
use crate::aws::AwsProvider;

/// The region-wide listings a round reads, which its spec change or refresh reads afresh
/// ([`Inventory::refresh`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listings {
    /// Functions, event-source mappings, layers' latest versions and aliases.
    Lambda,
    /// Object listings (artifact keys).
    S3,
    /// Instances and their status.
    Ec2,
    /// CloudFront's origin access controls.
    CloudFront,
}

/// How long identities that rarely change are trusted: ownership tags read for an unchanged
/// function revision (tags are not part of a revision, so a hand-edited owner tag is noticed
/// within this time, or at once when the function changes), queue URLs and ARNs, and the
/// published versions of an unchanged code hash.
pub const IDENTITY_RECHECK: Duration = Duration::from_secs(3600);

/// What nobody read for this long is dropped by [`Inventory::sweep`]: past every time-to-live
/// but the identity-keyed ones, and at least 12 resyncs of the default interval.
pub const SWEEP_UNUSED: Duration = IDENTITY_RECHECK;

/// How often [`Inventory::sweep_until`] sweeps.
pub const SWEEP_EVERY: Duration = Duration::from_secs(600);

/// Listings younger than this count as fresh when a spec change asks for a fresh view: a GitOps
/// sync touching hundreds of objects costs one listing per second, not one per object.
pub const DEFAULT_FRESH_FLOOR: Duration = Duration::from_secs(1);

/// How old a region-wide listing may be while the event feed covering its region is healthy
/// (`--feed-backstop-max-age`): ten minutes, the longest `--inventory-max-age` allows, so a
/// change the feed failed to announce (an event lost, a write CloudTrail does not record) is
/// found no later than by a controller polling at its slowest. At 10,000 functions a listing is
/// 200 `ListFunctions` pages: every 30 s that is 45% of Lambda's 15 calls/s, every 10 minutes
/// 2%. Longer would save little more and leave a lost event unseen for longer.
pub const DEFAULT_FEED_BACKSTOP: Duration = Duration::from_secs(600);

/// How old a region-wide listing may be now, decided at each use: `max_age`, or the feed
/// backstop while the controller-wide queue covering the region is healthy
/// ([`EventFeed::listing_age`]). Cheap to clone.
#[derive(Clone, Debug)]
pub struct ListingAge {
    max_age: Duration,
    backstop: Duration,
    /// The SQS inventory holding the health of the queue covering the region, and the queue.
    feed: Option<(Arc<SqsInventory>, String)>,
}

impl ListingAge {
    /// Always `max_age` (no event feed).
    pub fn fixed(max_age: Duration) -> Self {
        Self {
            max_age,
            backstop: max_age,
            feed: None,
        }
    }

    /// The age to trust a listing for at this moment.
    pub fn now(&self) -> Duration {
        match &self.feed {
            None => self.max_age,
            Some((sqs, queue)) => sqs
                .feed_health(queue)
                .listing_age(self.max_age, self.backstop),
        }
    }
}

/// Every service's inventory of one region.
#[derive(Debug)]
struct RegionInventory {
    lambda: Arc<LambdaInventory>,
    s3: Arc<S3Inventory>,
    sqs: Arc<SqsInventory>,
    ec2: Arc<Ec2Inventory>,
    cloudfront: Arc<CloudFrontInventory>,
}

/// The inventories of every region, made on first use. Cheap to clone (clones share them).
#[derive(Clone, Debug)]
pub struct Inventory {
    aws: AwsProvider,
    max_age: Duration,
    fresh_floor: Duration,
    /// `--feed-backstop-max-age`: see [`ListingAge`].
    feed_backstop: Duration,
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
            feed_backstop: DEFAULT_FEED_BACKSTOP,
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

    /// How old region-wide listings may be while the feed covering their region is healthy
    /// (default [`DEFAULT_FEED_BACKSTOP`]; anything up to `max_age`: never stretched). Set it
    /// before cloning.
    #[must_use]
    pub fn with_feed_backstop(mut self, backstop: Duration) -> Self {
        self.feed_backstop = backstop;
        self
    }

    /// The controller-wide event queue (`--event-queue`, a name or an ARN). Set it before
    /// cloning.
    #[must_use]
    pub fn with_event_queue(mut self, queue: Option<String>) -> Self {
        self.event_queue = queue.filter(|q| !q.is_empty());
        self
    }

    /// Whether a controller-wide event queue (`--event-queue`) is configured.
    pub fn has_event_queue(&self) -> bool {
        self.event_queue.is_some()
    }

    /// The controller-wide event queue objects of `region` rely on: (its region, name or
    /// ARN). `None` without one, and for an ARN of another region: EventBridge delivers a
    /// region's events to a queue in that region, so an ARN's queue hears nothing of `region`
    /// and its heartbeat would vouch for events that never come (objects there poll as without
    /// a feed). A name stands for the queue of that name in every region.
    pub fn event_queue(&self, region: &str) -> Option<(String, String)> {
        let queue = self.event_queue.as_deref()?;
        (sqs::event_queue_region(queue, region) == region)
            .then(|| (region.to_owned(), queue.to_owned()))
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
                let sqs = Arc::new(SqsInventory::new(self.aws.sqs(region), self.max_age));
                // The queue covering a region is in that region (see `event_queue`).
                let listing_age = ListingAge {
                    max_age: self.max_age,
                    backstop: self.feed_backstop,
                    feed: self
                        .event_queue(region)
                        .map(|(_, queue)| (sqs.clone(), queue)),
                };
                Arc::new(RegionInventory {
                    lambda: Arc::new(
                        LambdaInventory::new(self.aws.lambda(region), self.max_age)
                            .with_listing_age(listing_age),
                    ),
                    s3: Arc::new(S3Inventory::new(self.aws.s3(region), self.max_age)),
                    sqs,
                    ec2: Arc::new(Ec2Inventory::new(self.aws.ec2(region), self.max_age)),
                    cloudfront: Arc::new(CloudFrontInventory::new(
                        self.aws.cloudfront(region),
                        self.max_age,
                    )),
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

    pub fn cloudfront(&self, region: &str) -> Arc<CloudFrontInventory> {
        self.region(region).cloudfront.clone()
    }

    /// What a spec change or a `stagehand.dev/refresh` asks for: forgets the `listings` of
    /// `region` (those the kind's round reads: a fleet's spec change does not relist the
    /// region's functions) read before the change was `noticed` (when the watch event that
    /// brought it arrived; `None`: now), and in any case those [`Inventory::fresh_floor`] or
    /// older. A listing read after the event already shows AWS as it was when the change was
    /// made, so a burst of new objects — a GitOps sync, or every object of a controller that
    /// just started — costs one listing, not one per floor while they wait their turn: at
    /// 18,000 functions a listing is 360 pages, and relisting every second starved the first
    /// rounds (docs/benchmarks.md, "10,000 objects").
    pub fn refresh(&self, region: &str, noticed: Option<Instant>, listings: &[Listings]) {
        let since_noticed = noticed.map_or(Duration::ZERO, |at| at.elapsed());
        let age = self.fresh_floor.max(since_noticed);
        let inventories = self.region(region);
        for listing in listings {
            match listing {
                Listings::Lambda => inventories.lambda.forget_older_than(age),
                Listings::S3 => inventories.s3.forget_older_than(age),
                Listings::Ec2 => inventories.ec2.forget_older_than(age),
                Listings::CloudFront => inventories.cloudfront.forget_older_than(age),
            }
        }
    }

    /// Drops, in every region, what nobody read for [`SWEEP_UNUSED`] (see [`Cached::sweep`]);
    /// how many values went.
    pub fn sweep(&self) -> usize {
        let regions: Vec<_> = self
            .regions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        regions
            .iter()
            .map(|region| {
                region.lambda.sweep(SWEEP_UNUSED)
                    + region.s3.sweep(SWEEP_UNUSED)
                    + region.ec2.sweep(SWEEP_UNUSED)
                    + region.sqs.sweep(SWEEP_UNUSED)
            })
            .sum()
    }

    /// Sweeps every [`SWEEP_EVERY`] until `stop` resolves.
    pub async fn sweep_until(&self, stop: impl Future<Output = ()>) {
        let sweeping = async {
            let mut every = tokio::time::interval(SWEEP_EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            every.tick().await;
            loop {
                every.tick().await;
                let dropped = self.sweep();
                tracing::debug!(dropped, "inventory swept of values nobody read for an hour");
            }
        };
        tokio::select! {
            () = stop => {}
            () = sweeping => {}
        }
    }

    /// Forgets every listing of `region`: the next reconcile lists again. What is keyed by
    /// identity stays (tags per function revision, heads per ETag, versions per code hash,
    /// queue URLs and ARNs).
    pub fn forget(&self, region: &str) {
        let inventories = self.region(region);
        inventories.lambda.forget_older_than(Duration::ZERO);
        inventories.s3.forget_older_than(Duration::ZERO);
        inventories.ec2.forget_older_than(Duration::ZERO);
        inventories.cloudfront.forget_older_than(Duration::ZERO);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use aws_config::{BehaviorVersion, Region, SdkConfig};

    use super::*;
    use crate::aws::{AwsMetrics, AwsSettings};

    const ALL: &[Listings] = &[
        Listings::Lambda,
        Listings::S3,
        Listings::Ec2,
        Listings::CloudFront,
    ];

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
    async fn a_sweep_drops_what_no_round_asked_for_in_an_hour_in_every_region() {
        use crate::aws::s3::Sha256Digest;
        use crate::inventory::s3::ArtifactKey;
        let inventory = Inventory::new(provider(), Duration::from_secs(30));
        let build = |region: &str, n: u32| {
            let key = ArtifactKey {
                bucket: format!("{region}-artifacts"),
                key: format!("api/build-{n}.zip"),
                version_id: None,
                e_tag: Some(format!("\"{n}\"")),
            };
            inventory
                .s3(region)
                .remember_sha256(key.clone(), Sha256Digest::of(key.key.as_bytes()));
            key
        };
        // Ten builds deployed one after another in each of two regions; only the last is read
        // again (at every resync of its stage).
        let mut current = Vec::new();
        for region in ["eu-west-1", "us-east-1"] {
            for n in 0..9 {
                build(region, n);
            }
            current.push((region, build(region, 9)));
            // A fleet that launched once, then was deleted: its record of the write expires.
            inventory
                .ec2(region)
                .instances_written("shop/SpotFleet/preview-42");
        }
        for _ in 0..6 {
            tokio::time::advance(SWEEP_UNUSED / 5).await;
            for (region, key) in &current {
                assert!(inventory.s3(region).known_sha256(key).is_some());
            }
        }
        assert_eq!(
            inventory.sweep(),
            20,
            "the nine old builds of each region and the deleted fleet's write"
        );
        for (region, key) in &current {
            assert!(inventory.s3(region).known_sha256(key).is_some(), "{region}");
        }
        assert_eq!(inventory.sweep(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn the_sweep_runs_every_ten_minutes_until_stopped() {
        let inventory = Inventory::new(provider(), Duration::from_secs(30));
        let s3 = inventory.s3("r");
        let key = crate::inventory::s3::ArtifactKey {
            bucket: "b".into(),
            key: "old.zip".into(),
            version_id: None,
            e_tag: None,
        };
        s3.remember_sha256(key.clone(), crate::aws::s3::Sha256Digest::of(b"old"));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let sweeping = tokio::spawn({
            let inventory = inventory.clone();
            async move {
                inventory
                    .sweep_until(async { stopped.await.unwrap_or(()) })
                    .await;
            }
        });
        tokio::time::sleep(SWEEP_UNUSED + SWEEP_EVERY + Duration::from_secs(1)).await;
        assert!(s3.known_sha256(&key).is_none(), "swept by the loop");
        let _ = stop.send(());
        assert!(sweeping.await.is_ok(), "stops when told");
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
        inventory.refresh("r", None, ALL);
        assert!(listed(), "half a second old: fresh enough");
        tokio::time::advance(Duration::from_millis(500)).await;
        inventory.refresh("r", None, ALL);
        assert!(!listed(), "a second old: listed again");
        // A zero floor: every refresh lists again.
        let eager =
            Inventory::new(provider(), Duration::from_secs(30)).with_fresh_floor(Duration::ZERO);
        eager.lambda("r").remember_layer("deps", None);
        eager.refresh("r", None, ALL);
        assert!(!eager.lambda("r").cached_layer("deps"));
    }

    #[test]
    fn a_queue_arn_covers_its_own_region_only() {
        let arn = "arn:aws:sqs:eu-west-1:123456789012:events";
        let inventory =
            Inventory::new(provider(), Duration::from_secs(30)).with_event_queue(Some(arn.into()));
        assert_eq!(
            inventory.event_queue("eu-west-1"),
            Some(("eu-west-1".to_owned(), arn.to_owned()))
        );
        assert_eq!(inventory.event_queue("us-east-1"), None);
        assert_eq!(inventory.event_feed("us-east-1"), EventFeed::NotConfigured);
        let named = Inventory::new(provider(), Duration::from_secs(30))
            .with_event_queue(Some("events".into()));
        assert_eq!(
            named.event_queue("us-east-1"),
            Some(("us-east-1".to_owned(), "events".to_owned()))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn listings_follow_the_health_of_the_queue_covering_their_region() {
        let (max_age, backstop) = (Duration::from_secs(30), Duration::from_secs(600));
        let inventory = Inventory::new(provider(), max_age)
            .with_feed_backstop(backstop)
            .with_event_queue(Some("arn:aws:sqs:eu-west-1:123456789012:events".into()));
        let covered = inventory.lambda("eu-west-1");
        let elsewhere = inventory.lambda("us-east-1");
        assert_eq!(covered.listing_age(), max_age, "not polled yet");
        let sqs = inventory.sqs("eu-west-1");
        let arn = "arn:aws:sqs:eu-west-1:123456789012:events";
        sqs.feed_polled(arn, sqs::QueueFeed::Polling);
        sqs.feed_heard(arn);
        assert_eq!(covered.listing_age(), backstop, "healthy");
        assert_eq!(elsewhere.listing_age(), max_age, "not covered by the ARN");
        tokio::time::advance(sqs::FEED_SILENCE_LIMIT).await;
        assert_eq!(covered.listing_age(), max_age, "silent: back at once");
        assert_eq!(
            Inventory::new(provider(), max_age)
                .lambda("eu-west-1")
                .listing_age(),
            max_age,
            "no feed"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_refresh_keeps_listings_read_after_the_change_was_noticed() {
        let inventory = Inventory::new(provider(), Duration::from_secs(30));
        let lambda = inventory.lambda("r");
        let noticed = Instant::now();
        tokio::time::advance(Duration::from_secs(5)).await;
        lambda.remember_layer("deps", None);
        tokio::time::advance(Duration::from_secs(20)).await;
        inventory.refresh("r", Some(noticed), ALL);
        assert!(
            lambda.cached_layer("deps"),
            "read after the change was noticed: fresh enough, however long the wait"
        );
        inventory.refresh("r", Some(Instant::now()), ALL);
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
        inventory.refresh("r", None, ALL);
        assert!(ec2.cached_instances(), "half a second old: fresh enough");
        tokio::time::advance(Duration::from_millis(500)).await;
        inventory.refresh("r", None, ALL);
        assert!(!ec2.cached_instances(), "a second old: listed again");
        ec2.remember_instances(Vec::new());
        inventory.forget("r");
        assert!(!ec2.cached_instances());
    }

    #[tokio::test(start_paused = true)]
    async fn a_refresh_forgets_only_the_listings_named() {
        let inventory = Inventory::new(provider(), Duration::from_secs(30));
        let (lambda, ec2) = (inventory.lambda("r"), inventory.ec2("r"));
        lambda.remember_layer("deps", None);
        ec2.remember_instances(Vec::new());
        tokio::time::advance(Duration::from_secs(2)).await;
        inventory.refresh("r", None, &[Listings::Ec2]);
        assert!(
            !ec2.cached_instances(),
            "a fleet's spec change lists instances again"
        );
        assert!(
            lambda.cached_layer("deps"),
            "and leaves the region's Lambda listings to their own age"
        );
    }
}
