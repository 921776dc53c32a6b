//! One region's EC2 instances carrying Stagehand's owner tag, and the spot offerings that just
//! failed to launch, as every fleet of the region reads them.
//!
//! EC2's request limits are per account and region, shared with every other tool, and
//! `DescribeInstances` is among the most used calls there is. So:
//!
//! - **Instances**: one paged `DescribeInstances` filtered by the owner tag *key* (up to 1000
//!   instances a page) serves every fleet of the region for `max_age`; each fleet picks its own
//!   by the tag's value. Terminated instances are kept in the listing (EC2 describes them for
//!   about an hour): that is how a fleet learns someone else terminated one.
//! - **Read back after a write**: after a fleet launches, terminates or tags instances, its
//!   next round reads its own instances by the owner tag's *value* (one filtered
//!   `DescribeInstances`), until a region listing read after the write serves it again. The
//!   shared listing is kept for every other fleet: dropping it at each write made 500 fleets
//!   relist the region after each other's launches (534 listings in 13 minutes of a
//!   10,000-object run, each page up to 1000 instances parsed at once).
//! - **Launched, not yet listed**: EC2's API is eventually consistent: an instance
//!   `CreateFleet` just returned may be missing from `DescribeInstances` for a while. A fleet
//!   that trusted such a listing would see a shortfall and launch again, so what Stagehand
//!   launched is added to its owner's instances, as `pending`, until the listing shows it or
//!   [`LAUNCH_VISIBILITY_GRACE`] has passed.
//! - **Unavailable offerings**: (instance type, availability zone) → the AWS error code of a
//!   launch that failed there for lack of capacity, for [`UNAVAILABLE_OFFERING_TTL`], so the
//!   next launch of any fleet leaves that pool out instead of failing on it again.
//! - **Owners by instance** ([`Ec2Inventory::owner_of`]): the same listing read the other way,
//!   for the event feed, which learns an instance id and must find the object that owns it.
//! - **Unowned instances named for a fleet** ([`Ec2Inventory::unowned_named`]): what `adopt`
//!   may take over, which the owner-tag listing cannot show. EC2 cannot filter on a tag being
//!   absent, so this is a listing of its own, filtered by the fleet's exact `Name`, read only
//!   when it can matter: after a spec change or refresh, after a controller start, while the
//!   last look found some, and at most every [`UNOWNED_RECHECK`] otherwise. A steady fleet
//!   costs nothing more per round.
//! - **Notices**: spot interruption warnings and rebalance recommendations the event feed
//!   received, by instance, for [`NOTICE_TTL`] or until the instance is terminated; each
//!   fleet's observe reads those of its own instances.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::cached::Cached;
use super::launch::LaunchCache;
use crate::aws::AwsError;
use crate::aws::ec2::{Ec2, FleetInstance, FleetLaunchError, InstanceHealth, InstanceInfo};
use crate::aws::tags::OWNER_TAG;

/// How long a spot pool that refused a launch for lack of capacity is left out. Spot capacity
/// comes back on a scale of minutes, not seconds: retried sooner, the same dead pool fails the
/// same way and the fleet loops on it; left out for much longer, a fleet restricted to few
/// pools stays short of capacity that has returned. Five minutes also outlasts a reconcile's
/// longest backoff, so one retry cycle never meets the same refusal twice.
pub const UNAVAILABLE_OFFERING_TTL: Duration = Duration::from_secs(5 * 60);

/// How long an instance Stagehand launched counts as its owner's while `DescribeInstances`
/// does not show it yet. EC2's listings usually catch up within seconds; two minutes covers a
/// slow region with a wide margin, and is short enough that an instance EC2 never really
/// started is not counted as capacity for long.
pub const LAUNCH_VISIBILITY_GRACE: Duration = Duration::from_secs(2 * 60);

/// How long a notice about an instance is kept. A spot interruption warning comes two minutes
/// before EC2 takes the instance; ten minutes covers the replacement launch, its health checks
/// and the retirement of the old one with a wide margin, and lets a notice for an instance
/// that somehow survived lapse instead of marking it forever (the EventBridge retry window for
/// one event is far shorter). A rebalance recommendation or a scheduled change that lapses
/// before the replacement is done is repeated by AWS or leads to a warning later.
pub const NOTICE_TTL: Duration = Duration::from_secs(10 * 60);

/// How long a look that found no unowned instance named for a fleet is trusted. Such an instance
/// appears only by a human act (a hand launch, a migration from a script), which usually comes
/// with a spec change (`adopt: true`) that looks again at once; an hour bounds how long one
/// launched next to a steady fleet goes unreported, at one `DescribeInstances` per fleet per
/// hour (100 fleets: one call every 36 s), instead of one per fleet every round.
pub const UNOWNED_RECHECK: Duration = Duration::from_secs(60 * 60);

/// What AWS announced about an instance.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Notices {
    /// A spot interruption warning: EC2 takes the instance in about two minutes.
    pub interruption: bool,
    /// A rebalance recommendation (or a scheduled change): replace it early.
    pub rebalance: bool,
}

/// The kinds of notice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Notice {
    Interruption,
    Rebalance,
}

/// An instance type in an availability zone: the unit EC2 has spot capacity for or not.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Offering {
    pub instance_type: String,
    pub availability_zone: String,
}

impl Offering {
    pub fn new(instance_type: &str, availability_zone: &str) -> Self {
        Self {
            instance_type: instance_type.to_owned(),
            availability_zone: availability_zone.to_owned(),
        }
    }
}

/// The EC2 inventory of one region.
#[derive(Debug)]
pub struct Ec2Inventory {
    ec2: Ec2,
    /// Every instance carrying the owner tag key, whoever it names.
    instances: Cached<(), Arc<Vec<InstanceInfo>>>,
    /// How long a listing is trusted.
    max_age: Duration,
    /// By owner: when that owner's fleet last wrote its instances, for `max_age` (by then any
    /// region listing read before the write has expired too).
    written: Cached<String, ()>,
    /// By owner: its instances read by the owner tag's value after its last write.
    own: Cached<String, Arc<Vec<InstanceInfo>>>,
    /// By offering: the AWS error code of the launch that failed there.
    unavailable: Cached<Offering, String>,
    /// By instance id: what Stagehand launched, as it would be listed.
    launched: Cached<String, InstanceInfo>,
    /// By owner: the errors of that fleet's last launch, while they say something about the
    /// offerings (as long as those are left out).
    launch_errors: Cached<String, Vec<FleetLaunchError>>,
    /// Subnet zones and launch templates, which a launch needs and which almost never change.
    launch: LaunchCache,
    /// By instance id: what the event feed heard about it.
    notices: Cached<String, Notices>,
    /// The region's instances with an impaired status check, as old as the listing may be.
    impaired: Cached<(), Arc<Vec<InstanceHealth>>>,
    /// By `Name`: a look for unowned instances so named found none, within [`UNOWNED_RECHECK`].
    none_unowned: Cached<String, ()>,
}

impl Ec2Inventory {
    /// Listings younger than `max_age` are reused.
    pub fn new(ec2: Ec2, max_age: Duration) -> Self {
        Self {
            instances: Cached::new(max_age),
            max_age,
            written: Cached::new(max_age),
            own: Cached::new(max_age),
            unavailable: Cached::new(UNAVAILABLE_OFFERING_TTL),
            launched: Cached::new(LAUNCH_VISIBILITY_GRACE),
            launch_errors: Cached::new(UNAVAILABLE_OFFERING_TTL),
            launch: LaunchCache::new(ec2.clone()),
            ec2,
            notices: Cached::new(NOTICE_TTL),
            impaired: Cached::new(max_age),
            none_unowned: Cached::new(UNOWNED_RECHECK),
        }
    }

    /// The region's instances whose instance or system status check is impaired, from a
    /// listing younger than `max_age` (two filtered `DescribeInstanceStatus` calls when there
    /// is none): how a fleet sees an instance that was healthy go bad, without asking EC2 about
    /// every instance every round.
    pub async fn impaired_instances(&self) -> Result<Arc<Vec<InstanceHealth>>, AwsError> {
        self.impaired
            .get_or_load(&(), || async {
                Ok(Arc::new(self.ec2.impaired_instances().await?))
            })
            .await
    }

    /// Every instance of the region that carries the owner tag (whatever owner it names), from
    /// a listing younger than `max_age` (one paged `DescribeInstances` when there is none).
    pub async fn instances(&self) -> Result<Arc<Vec<InstanceInfo>>, AwsError> {
        self.instances
            .get_or_load(&(), || async {
                Ok(Arc::new(
                    self.ec2.describe_instances_with_tag_key(OWNER_TAG).await?,
                ))
            })
            .await
    }

    /// The instances whose owner tag is `owner` (`<namespace>/<Kind>/<name>`), terminated ones
    /// included, from the shared listing — or, when `owner` wrote its instances after that
    /// listing was read, from a read of its own (see [`Ec2Inventory::instances_written`]); plus
    /// those Stagehand launched for `owner` that neither shows yet (as `pending`).
    pub async fn instances_of(&self, owner: &str) -> Result<Vec<InstanceInfo>, AwsError> {
        let key = owner.to_owned();
        let written_at = self.written.read_at(&key);
        let after_write = |read_at: Instant| written_at.is_none_or(|w| read_at > w);
        let shared = if written_at.is_none() {
            Some(self.instances().await?)
        } else if self.instances.read_at(&()).is_none_or(after_write) {
            // No listing, or one read after the write: the shared one serves, unless this
            // caller waited for a load that began before the write.
            let shared = self.instances().await?;
            self.instances
                .read_at(&())
                .is_some_and(after_write)
                .then_some(shared)
        } else {
            None
        };
        let listing = if let Some(listing) = shared {
            listing
        } else {
            // Only a read of its own that began after the write will do.
            let since_write = written_at.map_or(Duration::ZERO, |w| w.elapsed());
            self.own
                .get_or_load_within(&key, since_write.min(self.max_age), || async {
                    Ok(Arc::new(
                        self.ec2.describe_instances_by_tag(OWNER_TAG, owner).await?,
                    ))
                })
                .await?
        };
        let mut owned = owned_by(&listing, owner);
        self.launched.drop_expired();
        let mut unlisted: Vec<InstanceInfo> = self
            .launched
            .trusted_entries()
            .into_iter()
            .filter(|(id, launched)| {
                launched.tag(OWNER_TAG) == Some(owner) && !listing.iter().any(|i| i.id == *id)
            })
            .map(|(_, launched)| launched)
            .collect();
        unlisted.sort_by(|a, b| a.id.cmp(&b.id));
        owned.extend(unlisted);
        Ok(owned)
    }

    /// The pending and running instances whose `Name` tag is `name` and that carry no owner
    /// tag: what a fleet so named may adopt. Empty without a call when a look within
    /// [`UNOWNED_RECHECK`] found none (see [`Ec2Inventory::look_for_unowned`]); otherwise one
    /// filtered `DescribeInstances`, whose answer is remembered only when it is empty, so that
    /// a fleet with something to adopt or report keeps looking until it is gone.
    pub async fn unowned_named(&self, name: &str) -> Result<Vec<InstanceInfo>, AwsError> {
        if !self.must_look_for_unowned(name) {
            return Ok(Vec::new());
        }
        let found = unowned(self.ec2.describe_live_instances_named(name).await?);
        if found.is_empty() {
            self.none_unowned.insert(name.to_owned(), ());
        }
        Ok(found)
    }

    /// No look within [`UNOWNED_RECHECK`] found that no unowned instance is named `name`.
    fn must_look_for_unowned(&self, name: &str) -> bool {
        self.none_unowned.get(&name.to_owned()).is_none()
    }

    /// The next [`Ec2Inventory::unowned_named`] for `name` reads EC2: the fleet's spec changed
    /// (`adopt` may just have been set) or a refresh was asked for.
    pub fn look_for_unowned(&self, name: &str) {
        self.none_unowned.invalidate(&name.to_owned());
    }

    /// Subnet zones and launch templates of the region's fleets.
    pub fn launch(&self) -> &LaunchCache {
        &self.launch
    }

    /// The owner tag value of instance `id`, from the shared listing (read when there is none)
    /// or what Stagehand launched and the listing does not show yet; `None` when neither knows
    /// it (not ours, or launched by us so recently that only a fresh listing would show it).
    pub async fn owner_of(&self, id: &str) -> Result<Option<String>, AwsError> {
        let listing = self.instances().await?;
        if let Some(owner) = listing
            .iter()
            .find(|i| i.id == id)
            .and_then(|i| i.tag(OWNER_TAG))
        {
            return Ok(Some(owner.to_owned()));
        }
        Ok(self
            .launched
            .peek(&id.to_owned(), |i| i.tag(OWNER_TAG).map(str::to_owned))
            .flatten())
    }

    /// Records that AWS announced `notice` about instance `id`.
    pub fn notice(&self, id: &str, notice: Notice) {
        let mut notices = self.notices(id);
        match notice {
            Notice::Interruption => notices.interruption = true,
            Notice::Rebalance => notices.rebalance = true,
        }
        self.notices.insert(id.to_owned(), notices);
    }

    /// What AWS announced about instance `id` within [`NOTICE_TTL`] (nothing once it is
    /// terminated, see [`Ec2Inventory::instance_gone`]).
    pub fn notices(&self, id: &str) -> Notices {
        self.notices.get(&id.to_owned()).unwrap_or_default()
    }

    /// Instance `id` was terminated: its notices have done their work.
    pub fn instance_gone(&self, id: &str) {
        self.notices.invalidate(&id.to_owned());
        self.notices.drop_expired();
    }

    /// Stagehand launched or terminated instances: list again next time.
    /// `owner`'s fleet launched, terminated or tagged instances: its next round reads its own
    /// back, while every other fleet keeps the shared listing.
    pub fn instances_written(&self, owner: &str) {
        self.own.invalidate(&owner.to_owned());
        self.written.insert(owner.to_owned(), ());
    }

    /// Stagehand launched `instances` with `tags` (the tags they were launched with, owner
    /// tag included): they count as their owner's from now on, even before EC2 lists them.
    /// Their owner's next round reads its own back ([`Ec2Inventory::instances_written`]).
    pub fn instances_launched(&self, instances: &[FleetInstance], tags: &BTreeMap<String, String>) {
        for instance in instances {
            self.launched.insert(
                instance.id.clone(),
                InstanceInfo {
                    id: instance.id.clone(),
                    state: "pending".to_owned(),
                    instance_type: instance.instance_type.clone(),
                    subnet_id: instance.subnet_id.clone(),
                    availability_zone: instance.availability_zone.clone(),
                    lifecycle: Some("spot".to_owned()),
                    tags: tags.clone(),
                    ..InstanceInfo::default()
                },
            );
        }
        if let Some(owner) = tags.get(OWNER_TAG) {
            self.instances_written(owner);
        }
    }

    /// Remembers that `offering` refused a launch with AWS error `code`, for
    /// [`UNAVAILABLE_OFFERING_TTL`].
    pub fn offering_unavailable(&self, offering: Offering, code: &str) {
        self.unavailable.insert(offering, code.to_owned());
    }

    /// Remembers the offerings a fleet launch reported without capacity; other errors (bad
    /// input, permissions) say nothing about an offering and are left to the caller.
    pub fn launch_failed(&self, errors: &[FleetLaunchError]) {
        for error in errors.iter().filter(|e| e.is_capacity()) {
            if let Some((instance_type, zone)) = error.offering() {
                self.offering_unavailable(Offering::new(&instance_type, &zone), &error.code);
            }
        }
    }

    /// `owner`'s launch ended with `errors` (none: it launched everything it asked for):
    /// remembered for [`UNAVAILABLE_OFFERING_TTL`], for the fleet's status to say why it is
    /// short.
    pub fn launch_finished(&self, owner: &str, errors: &[FleetLaunchError]) {
        if errors.is_empty() {
            self.launch_errors.invalidate(&owner.to_owned());
        } else {
            self.launch_errors.insert(owner.to_owned(), errors.to_vec());
        }
    }

    /// The errors of `owner`'s last launch, if it had any within [`UNAVAILABLE_OFFERING_TTL`].
    pub fn last_launch_errors(&self, owner: &str) -> Vec<FleetLaunchError> {
        self.launch_errors
            .get(&owner.to_owned())
            .unwrap_or_default()
    }

    /// Why `offering` is left out now (the AWS error code), if it is.
    pub fn unavailable_reason(&self, offering: &Offering) -> Option<String> {
        self.unavailable.get(offering)
    }

    /// Every offering left out now, with the AWS error code that put it there.
    pub fn unavailable_offerings(&self) -> BTreeMap<Offering, String> {
        // Offerings come and go; expired ones are never asked for again, so drop them here.
        self.unavailable.drop_expired();
        self.unavailable.trusted_entries().into_iter().collect()
    }

    /// Drops the listing if it was read `age` or longer ago. Unavailable offerings stay: they
    /// are what AWS answered to a launch, which no listing can read again.
    pub fn forget_older_than(&self, age: Duration) {
        self.instances.forget_older_than(age);
        self.own.forget_older_than(age);
        self.impaired.forget_older_than(age);
    }

    /// Drops what nobody read for `unused` among the per-fleet reads (see [`Cached::sweep`]),
    /// and the per-fleet and per-instance records past their time (a deleted fleet's, a
    /// terminated instance's).
    pub fn sweep(&self, unused: Duration) -> usize {
        self.written.drop_expired()
            + self.launch_errors.drop_expired()
            + self.notices.drop_expired()
            + self.own.sweep(unused)
            + self.none_unowned.sweep(unused)
    }
}

/// The instances of `listing` whose owner tag is `owner`.
fn owned_by(listing: &[InstanceInfo], owner: &str) -> Vec<InstanceInfo> {
    listing
        .iter()
        .filter(|i| i.tag(OWNER_TAG) == Some(owner))
        .cloned()
        .collect()
}

/// The instances of `listing` that carry no owner tag (or an empty one: nobody's).
fn unowned(listing: Vec<InstanceInfo>) -> Vec<InstanceInfo> {
    listing
        .into_iter()
        .filter(|i| i.tag(OWNER_TAG).is_none_or(str::is_empty))
        .collect()
}

#[cfg(test)]
impl Ec2Inventory {
    pub(crate) fn remember_instances(&self, listing: Vec<InstanceInfo>) {
        self.instances.insert((), Arc::new(listing));
    }

    pub(crate) fn cached_instances(&self) -> bool {
        self.instances.get(&()).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::tests::provider;

    fn inventory() -> Ec2Inventory {
        Ec2Inventory::new(provider().ec2("r"), Duration::from_secs(30))
    }

    fn instance(id: &str, owner: Option<&str>, state: &str) -> InstanceInfo {
        InstanceInfo {
            id: id.into(),
            state: state.into(),
            tags: owner
                .map(|o| BTreeMap::from([(OWNER_TAG.to_owned(), o.to_owned())]))
                .unwrap_or_default(),
            ..InstanceInfo::default()
        }
    }

    #[test]
    fn only_instances_nobody_owns_are_adoptable() {
        let listing = vec![
            instance("i-1", None, "running"),
            instance("i-2", Some("ml/SpotFleet/other"), "running"),
            instance("i-3", Some(""), "pending"),
            instance("i-4", Some("ml/SpotFleet/gpu"), "running"),
        ];
        let ids: Vec<String> = unowned(listing).into_iter().map(|i| i.id).collect();
        assert_eq!(ids, ["i-1", "i-3"]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_look_that_found_no_unowned_instance_is_trusted_until_told_or_an_hour() {
        let inventory = inventory();
        let found_none = |name: &str| inventory.none_unowned.insert(name.to_owned(), ());
        assert!(inventory.must_look_for_unowned("ml/gpu"), "never looked");
        found_none("ml/gpu");
        assert!(!inventory.must_look_for_unowned("ml/gpu"));
        // Answered without a call (the provider points nowhere).
        assert_eq!(
            inventory.unowned_named("ml/gpu").await.ok(),
            Some(Vec::new())
        );
        assert!(inventory.must_look_for_unowned("ml/cpu"), "per fleet name");
        // The listing's max age (a resync) does not look again...
        inventory.forget_older_than(Duration::ZERO);
        assert!(!inventory.must_look_for_unowned("ml/gpu"));
        // ...a spec change or refresh of the fleet does...
        inventory.look_for_unowned("ml/gpu");
        assert!(inventory.must_look_for_unowned("ml/gpu"));
        // ...and so does the hour.
        found_none("ml/gpu");
        tokio::time::advance(UNOWNED_RECHECK).await;
        assert!(inventory.must_look_for_unowned("ml/gpu"));
    }

    #[tokio::test(start_paused = true)]
    async fn one_listing_serves_every_fleet_until_it_is_old() {
        let inventory = inventory();
        inventory.remember_instances(vec![
            instance("i-1", Some("ml/SpotFleet/gpu"), "running"),
            instance("i-2", Some("ml/SpotFleet/cpu"), "running"),
            instance("i-3", Some("ml/SpotFleet/gpu"), "terminated"),
            instance("i-4", Some(""), "running"),
        ]);
        // Answered from the listing: no AWS call is made (the provider points nowhere).
        let gpu = inventory.instances_of("ml/SpotFleet/gpu").await;
        let ids: Vec<String> = gpu.unwrap_or_default().into_iter().map(|i| i.id).collect();
        assert_eq!(ids, ["i-1", "i-3"], "terminated ones are seen too");
        let cpu = inventory.instances_of("ml/SpotFleet/cpu").await;
        assert_eq!(cpu.map(|i| i.len()).ok(), Some(1));
        assert_eq!(
            inventory.instances_of("ml/SpotFleet/none").await.ok(),
            Some(Vec::new())
        );

        inventory.remember_instances(Vec::new());
        tokio::time::advance(Duration::from_millis(500)).await;
        inventory.forget_older_than(Duration::from_secs(1));
        assert!(
            inventory.cached_instances(),
            "half a second old: fresh enough"
        );
        tokio::time::advance(Duration::from_secs(30)).await;
        assert!(
            !inventory.cached_instances(),
            "older than max_age: listed again"
        );
    }

    /// `instances_of`'s answer as ids, or `None` where it had to call AWS (the provider points
    /// nowhere, so a call fails).
    async fn ids_of(inventory: &Ec2Inventory, owner: &str) -> Option<Vec<String>> {
        let owned = inventory.instances_of(owner).await.ok()?;
        Some(owned.into_iter().map(|i| i.id).collect())
    }

    #[tokio::test(start_paused = true)]
    async fn after_a_write_only_the_writer_reads_its_own_instances_again() {
        let inventory = inventory();
        let (gpu, cpu) = ("ml/SpotFleet/gpu", "ml/SpotFleet/cpu");
        inventory.remember_instances(vec![
            instance("i-1", Some(gpu), "running"),
            instance("i-2", Some(cpu), "running"),
        ]);
        tokio::time::advance(Duration::from_millis(10)).await;
        inventory.instances_written(gpu);
        assert!(inventory.cached_instances(), "the shared listing is kept");
        assert_eq!(ids_of(&inventory, cpu).await, Some(vec!["i-2".into()]));
        assert_eq!(ids_of(&inventory, gpu).await, None, "gpu reads its own");

        // Its own read, after the write, serves it (until the next write).
        tokio::time::advance(Duration::from_millis(10)).await;
        let own = vec![
            instance("i-1", Some(gpu), "shutting-down"),
            instance("i-3", Some(gpu), "pending"),
        ];
        inventory.own.insert(gpu.to_owned(), Arc::new(own));
        let both = Some(vec!["i-1".to_owned(), "i-3".to_owned()]);
        assert_eq!(ids_of(&inventory, gpu).await, both);
        tokio::time::advance(Duration::from_millis(10)).await;
        inventory.instances_written(gpu);
        assert_eq!(ids_of(&inventory, gpu).await, None, "written again");

        // A region listing read after the write serves everyone again.
        tokio::time::advance(Duration::from_millis(10)).await;
        inventory.remember_instances(vec![instance("i-3", Some(gpu), "running")]);
        assert_eq!(ids_of(&inventory, gpu).await, Some(vec!["i-3".into()]));
        assert_eq!(ids_of(&inventory, cpu).await, Some(Vec::new()));
    }

    #[tokio::test(start_paused = true)]
    async fn launched_instances_count_before_the_listing_shows_them() {
        let inventory = inventory();
        let gpu = "ml/SpotFleet/gpu";
        let tags = BTreeMap::from([(OWNER_TAG.to_owned(), gpu.to_owned())]);
        let launched = |id: &str| FleetInstance {
            id: id.into(),
            instance_type: Some("c5.large".into()),
            subnet_id: Some("subnet-a".into()),
            availability_zone: Some("r-1a".into()),
        };
        inventory.instances_launched(&[launched("i-1"), launched("i-2")], &tags);
        assert_eq!(
            ids_of(&inventory, gpu).await,
            None,
            "read back after the launch"
        );
        tokio::time::advance(Duration::from_millis(10)).await;
        // The listing caught up with one of them (already running), not yet with the other.
        inventory.remember_instances(vec![
            instance("i-1", Some(gpu), "running"),
            instance("i-9", Some("ml/SpotFleet/cpu"), "running"),
        ]);
        let seen: Vec<(String, String)> = inventory
            .instances_of(gpu)
            .await
            .unwrap_or_default()
            .into_iter()
            .map(|i| (i.id, i.state))
            .collect();
        assert_eq!(
            seen,
            [
                ("i-1".to_owned(), "running".to_owned()),
                ("i-2".to_owned(), "pending".to_owned())
            ]
        );
        let cpu = inventory.instances_of("ml/SpotFleet/cpu").await;
        assert_eq!(
            cpu.map(|i| i.len()).ok(),
            Some(1),
            "another owner's are not added"
        );

        // Never listed within the grace: no longer counted.
        tokio::time::advance(LAUNCH_VISIBILITY_GRACE).await;
        inventory.remember_instances(vec![instance("i-1", Some(gpu), "running")]);
        let ids: Vec<String> = inventory
            .instances_of(gpu)
            .await
            .unwrap_or_default()
            .into_iter()
            .map(|i| i.id)
            .collect();
        assert_eq!(ids, ["i-1"]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_fleets_last_launch_errors_are_kept_until_a_clean_launch_or_their_ttl() {
        let inventory = inventory();
        let refused = FleetLaunchError {
            code: "InsufficientInstanceCapacity".into(),
            ..FleetLaunchError::default()
        };
        inventory.launch_finished("ml/SpotFleet/gpu", std::slice::from_ref(&refused));
        assert_eq!(
            inventory.last_launch_errors("ml/SpotFleet/gpu"),
            std::slice::from_ref(&refused)
        );
        assert_eq!(inventory.last_launch_errors("ml/SpotFleet/cpu"), []);
        inventory.launch_finished("ml/SpotFleet/gpu", &[]);
        assert_eq!(inventory.last_launch_errors("ml/SpotFleet/gpu"), []);
        inventory.launch_finished("ml/SpotFleet/gpu", &[refused]);
        tokio::time::advance(UNAVAILABLE_OFFERING_TTL).await;
        assert_eq!(inventory.last_launch_errors("ml/SpotFleet/gpu"), []);
    }

    #[tokio::test(start_paused = true)]
    async fn unavailable_offerings_are_left_out_for_their_ttl() {
        let inventory = inventory();
        let error = |code: &str, instance_type: &str, zone: Option<&str>| FleetLaunchError {
            code: code.into(),
            instance_type: Some(instance_type.into()),
            availability_zone: zone.map(str::to_owned),
            ..FleetLaunchError::default()
        };
        inventory.launch_failed(&[
            error("InsufficientInstanceCapacity", "c5.large", Some("r-1a")),
            error("MaxSpotInstanceCountExceeded", "m5.large", Some("r-1b")),
            // Not about capacity: says nothing about the offering.
            error("InvalidParameterValue", "t3.micro", Some("r-1a")),
            // No zone known: nothing to leave out.
            error("UnfulfillableCapacity", "r5.large", None),
        ]);
        let c5 = Offering::new("c5.large", "r-1a");
        assert_eq!(
            inventory.unavailable_reason(&c5).as_deref(),
            Some("InsufficientInstanceCapacity")
        );
        assert_eq!(
            inventory
                .unavailable_offerings()
                .into_keys()
                .collect::<Vec<_>>(),
            [c5.clone(), Offering::new("m5.large", "r-1b")]
        );
        // A refresh re-reads listings, not what AWS answered to a launch.
        inventory.forget_older_than(Duration::ZERO);
        assert!(inventory.unavailable_reason(&c5).is_some());

        tokio::time::advance(UNAVAILABLE_OFFERING_TTL.saturating_sub(Duration::from_secs(1))).await;
        inventory.offering_unavailable(Offering::new("c5.large", "r-1b"), "UnfulfillableCapacity");
        assert_eq!(inventory.unavailable_offerings().len(), 3);
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(inventory.unavailable_reason(&c5), None, "tried again");
        assert_eq!(
            inventory
                .unavailable_offerings()
                .into_keys()
                .collect::<Vec<_>>(),
            [Offering::new("c5.large", "r-1b")]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_instance_leads_back_to_its_owner() {
        let inventory = inventory();
        inventory.remember_instances(vec![
            instance("i-1", Some("ml/SpotFleet/gpu"), "running"),
            instance("i-2", Some("ml/SpotFleet/cpu"), "terminated"),
        ]);
        let owner = |id: &'static str| {
            let inventory = &inventory;
            async move { inventory.owner_of(id).await.ok().flatten() }
        };
        assert_eq!(owner("i-1").await.as_deref(), Some("ml/SpotFleet/gpu"));
        assert_eq!(owner("i-2").await.as_deref(), Some("ml/SpotFleet/cpu"));
        assert_eq!(owner("i-9").await, None, "not ours");
        // Launched by Stagehand, not listed yet: known all the same.
        let tags = BTreeMap::from([(OWNER_TAG.to_owned(), "ml/SpotFleet/gpu".to_owned())]);
        let launched = FleetInstance {
            id: "i-9".into(),
            instance_type: None,
            subnet_id: None,
            availability_zone: None,
        };
        inventory.instances_launched(&[launched], &tags);
        inventory.remember_instances(Vec::new());
        assert_eq!(owner("i-9").await.as_deref(), Some("ml/SpotFleet/gpu"));
    }

    #[tokio::test(start_paused = true)]
    async fn notices_last_until_the_instance_is_gone_or_their_ttl() {
        let inventory = inventory();
        assert_eq!(inventory.notices("i-1"), Notices::default());
        inventory.notice("i-1", Notice::Rebalance);
        inventory.notice("i-1", Notice::Interruption);
        inventory.notice("i-2", Notice::Interruption);
        assert_eq!(
            inventory.notices("i-1"),
            Notices {
                interruption: true,
                rebalance: true
            }
        );
        // A refresh re-reads listings, not what AWS announced.
        inventory.forget_older_than(Duration::ZERO);
        assert!(inventory.notices("i-2").interruption);
        inventory.instance_gone("i-1");
        assert_eq!(inventory.notices("i-1"), Notices::default());
        tokio::time::advance(NOTICE_TTL).await;
        assert_eq!(inventory.notices("i-2"), Notices::default(), "lapsed");
    }
}
