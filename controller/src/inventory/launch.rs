//! What a fleet launch needs that almost never changes, remembered per region so that a Surge
//! replacement (one launch per step, `maxSurge` at a time) does not read it again at every step:
//!
//! - **Subnet zones**: a subnet's availability zone is fixed for its life. One
//!   `DescribeSubnets` for the subnets not known yet; trusted for [`IDENTITY_RECHECK`].
//! - **Launch templates**: each fleet's template (found by owner tag or created), its default
//!   version, and the version number of each spec hash it holds (what the plan prunes from,
//!   without a call of its own). Trusted for [`IDENTITY_RECHECK`], and dropped
//!   by the launch when EC2 refuses it (a template or version deleted by hand is then found or
//!   created again on the next launch, never used blindly twice).
//!
//! - **Launch failures**: per fleet, how many launches in a row failed (EC2 refused every pool,
//!   or the instances never became healthy within their grace period) and when the last did.
//!   The next launch waits [`LAUNCH_BACKOFF_BASE`] doubled per failure, at most
//!   [`LAUNCH_BACKOFF_MAX`], so a broken image or a dead spec is not relaunched in a loop; an
//!   instance launched after the last failure that proves healthy clears the record, and a
//!   record with no new failure for [`LAUNCH_FAILURE_MEMORY`] is forgotten.
//!
//! - **Spec refusals**: per fleet, the last time EC2 refused something the spec names (an
//!   image, subnet, security group, key pair or instance profile that does not exist), with the
//!   spec hash it was for. The fleet stalls naming it instead of relaunching; the refusal is
//!   trusted for [`SPEC_REFUSAL_RECHECK`] (the fix may be outside the spec: an image shared, a
//!   subnet created) and ignored at once for any other spec hash.
//!
//! - **Existing images and security groups**: looked up before a launch (EC2 refuses a launch
//!   naming a missing one, but moto launches anyway), remembered by id for
//!   [`IDENTITY_RECHECK`]; a missing one becomes a spec refusal.
//!
//! Measured in `make bench` (docs/benchmarks.md): without this, every Surge step of a fleet
//! cost `DescribeSubnets`, `DescribeLaunchTemplates` and `DescribeLaunchTemplateVersions` on
//! top of its `CreateFleet`.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use super::IDENTITY_RECHECK;
use super::cached::Cached;
use crate::aws::AwsError;
use crate::aws::ec2::{Ec2, LaunchTemplateInfo, SPEC_REFUSAL_RECHECK, SpecRefusal};

/// The first launch backoff after a failure. Short enough that a transient failure costs
/// little; a failed replacement already waited its grace period before it counted.
pub const LAUNCH_BACKOFF_BASE: Duration = Duration::from_secs(30);

/// The longest launch backoff: a fleet that keeps failing still tries every ten minutes, so a
/// fix (a new image, capacity back) is picked up without anyone nudging it.
pub const LAUNCH_BACKOFF_MAX: Duration = Duration::from_secs(10 * 60);

/// How long a fleet's failures are remembered without a new one.
pub const LAUNCH_FAILURE_MEMORY: Duration = Duration::from_secs(60 * 60);

/// Failed launches of one fleet in a row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LaunchFailures {
    pub count: u32,
    /// When the last one failed (the round's clock).
    pub last: Timestamp,
}

impl LaunchFailures {
    /// How long after the last failure the next launch waits.
    pub fn backoff(&self) -> Duration {
        let doublings = self.count.saturating_sub(1).min(16);
        LAUNCH_BACKOFF_BASE
            .saturating_mul(1 << doublings)
            .min(LAUNCH_BACKOFF_MAX)
    }

    /// Seconds still to wait at `now`, if any.
    pub fn remaining_at(&self, now: Timestamp) -> Option<u64> {
        let until = self
            .last
            .checked_add(SignedDuration::try_from(self.backoff()).ok()?)
            .ok()?;
        let left = until.duration_since(now).as_secs();
        (left > 0).then(|| left.unsigned_abs())
    }
}

/// A fleet's launch template and the version numbers written for spec hashes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FleetTemplate {
    pub template: LaunchTemplateInfo,
    /// Spec hash (the version's description) → version number.
    pub versions: BTreeMap<String, i64>,
}

/// Launch inputs of one region, shared by its fleets.
#[derive(Debug)]
pub struct LaunchCache {
    ec2: Ec2,
    subnet_zones: Cached<String, String>,
    /// By owner (`<namespace>/SpotFleet/<name>`).
    templates: Cached<String, FleetTemplate>,
    /// By owner: launches that failed in a row.
    failures: Cached<String, LaunchFailures>,
    /// By owner: the last refusal of the spec.
    refusals: Cached<String, SpecRefusal>,
    /// Images and security groups found to exist, by id.
    existing: Cached<String, ()>,
}

/// Something a fleet's spec names that EC2 does not have.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Missing {
    /// The spec field (`imageId`, `securityGroupIds`).
    pub field: &'static str,
    /// The ids missing.
    pub ids: Vec<String>,
}

impl LaunchCache {
    pub fn new(ec2: Ec2) -> Self {
        Self {
            ec2,
            subnet_zones: Cached::new(IDENTITY_RECHECK),
            templates: Cached::new(IDENTITY_RECHECK),
            failures: Cached::new(LAUNCH_FAILURE_MEMORY),
            refusals: Cached::new(SPEC_REFUSAL_RECHECK),
            existing: Cached::new(IDENTITY_RECHECK),
        }
    }

    /// The first of the image and the security groups that does not exist, if any. Ids found
    /// within [`IDENTITY_RECHECK`] are not asked about again: one `DescribeImages` and one
    /// `DescribeSecurityGroups` per region for a spec's ids, however many fleets and launches
    /// share them. An id found missing is not remembered here: the refusal it turns into is
    /// (and is rechecked after [`SPEC_REFUSAL_RECHECK`]).
    pub async fn missing(
        &self,
        image_id: &str,
        group_ids: &[String],
    ) -> Result<Option<Missing>, AwsError> {
        let unknown = |id: &String| self.existing.get(id).is_none();
        let image = image_id.to_owned();
        if unknown(&image) {
            if !self.ec2.image_exists(image_id).await? {
                return Ok(Some(Missing {
                    field: "imageId",
                    ids: vec![image],
                }));
            }
            self.existing.insert(image, ());
        }
        let asked: Vec<String> = group_ids.iter().filter(|id| unknown(id)).cloned().collect();
        if asked.is_empty() {
            return Ok(None);
        }
        let found = self.ec2.existing_security_groups(&asked).await?;
        let (present, absent): (Vec<String>, Vec<String>) =
            asked.into_iter().partition(|id| found.contains(id));
        for id in present {
            self.existing.insert(id, ());
        }
        Ok((!absent.is_empty()).then_some(Missing {
            field: "securityGroupIds",
            ids: absent,
        }))
    }

    /// The availability zone of each of `subnet_ids` that exists: known ones from memory, the
    /// others in one `DescribeSubnets` (none when all are known).
    pub async fn subnet_zones(
        &self,
        subnet_ids: &[String],
    ) -> Result<BTreeMap<String, String>, AwsError> {
        let mut zones = BTreeMap::new();
        let mut unknown = Vec::new();
        for id in subnet_ids {
            match self.subnet_zones.get(id) {
                Some(zone) => {
                    zones.insert(id.clone(), zone);
                }
                None => unknown.push(id.clone()),
            }
        }
        if !unknown.is_empty() {
            for (id, zone) in self.ec2.subnet_zones(&unknown).await? {
                self.subnet_zones.insert(id.clone(), zone.clone());
                zones.insert(id, zone);
            }
        }
        Ok(zones)
    }

    /// `owner`'s launch template as last found or created, if trusted still.
    pub fn template(&self, owner: &str) -> Option<FleetTemplate> {
        self.templates.get(&owner.to_owned())
    }

    /// `owner`'s template was found or created as `template`, with these known versions.
    pub fn template_found(
        &self,
        owner: &str,
        template: LaunchTemplateInfo,
        versions: BTreeMap<String, i64>,
    ) {
        self.templates
            .insert(owner.to_owned(), FleetTemplate { template, versions });
    }

    /// A launch with `owner`'s template failed: find the template and its versions again next
    /// time (it may have been deleted or changed by hand), and the subnets' zones too.
    pub fn launch_refused(&self, owner: &str, subnet_ids: &[String]) {
        self.templates.invalidate(&owner.to_owned());
        for id in subnet_ids {
            self.subnet_zones.invalidate(id);
        }
    }

    /// A launch of `owner` failed at `at`: EC2 refused it, or its instance was terminated for
    /// never becoming healthy.
    pub fn launch_failed(&self, owner: &str, at: Timestamp) {
        let count = self.failures.get(&owner.to_owned()).map_or(0, |f| f.count);
        self.failures.insert(
            owner.to_owned(),
            LaunchFailures {
                count: count.saturating_add(1),
                last: at,
            },
        );
    }

    /// `owner`'s failures in a row, if any are remembered.
    pub fn launch_failures(&self, owner: &str) -> Option<LaunchFailures> {
        self.failures.get(&owner.to_owned())
    }

    /// An instance of `owner` launched at `launched_at` is healthy: if it was launched after the
    /// last failure, launching works again and the record goes.
    pub fn launch_proved(&self, owner: &str, launched_at: Timestamp) {
        if self
            .launch_failures(owner)
            .is_some_and(|f| launched_at >= f.last)
        {
            self.failures.invalidate(&owner.to_owned());
        }
    }

    /// Versions `numbers` of `owner`'s template were deleted (or EC2 refused to): the plan no
    /// longer sees them.
    pub fn versions_deleted(&self, owner: &str, numbers: &[i64]) {
        let key = owner.to_owned();
        if let Some(mut known) = self.templates.get(&key) {
            known.versions.retain(|_, number| !numbers.contains(number));
            self.templates.insert(key, known);
        }
    }

    /// `owner`'s fleet is gone with its template.
    pub fn forget_template(&self, owner: &str) {
        self.templates.invalidate(&owner.to_owned());
    }

    /// EC2 refused `owner`'s spec (or, with `None`, launched from it).
    pub fn spec_refused(&self, owner: &str, refusal: Option<SpecRefusal>) {
        match refusal {
            Some(refusal) => self.refusals.insert(owner.to_owned(), refusal),
            None => self.refusals.invalidate(&owner.to_owned()),
        }
    }

    /// `owner`'s last refusal, if it is younger than [`SPEC_REFUSAL_RECHECK`].
    pub fn spec_refusal(&self, owner: &str) -> Option<SpecRefusal> {
        self.refusals.get(&owner.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::tests::provider;

    fn template(id: &str) -> LaunchTemplateInfo {
        LaunchTemplateInfo {
            id: id.into(),
            name: format!("stagehand/{id}"),
            ..LaunchTemplateInfo::default()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn templates_are_remembered_per_owner_until_a_launch_is_refused() {
        let cache = LaunchCache::new(provider().ec2("r"));
        assert_eq!(cache.template("ml/SpotFleet/gpu"), None);
        let versions = BTreeMap::from([("abc".to_owned(), 3)]);
        cache.template_found("ml/SpotFleet/gpu", template("lt-1"), versions.clone());
        let found = cache.template("ml/SpotFleet/gpu");
        assert_eq!(
            found.map(|t| (t.template.id, t.versions)),
            Some(("lt-1".to_owned(), versions))
        );
        assert_eq!(cache.template("ml/SpotFleet/cpu"), None, "per owner");

        cache.launch_refused("ml/SpotFleet/gpu", &[]);
        assert_eq!(cache.template("ml/SpotFleet/gpu"), None);

        cache.template_found("ml/SpotFleet/gpu", template("lt-1"), BTreeMap::new());
        tokio::time::advance(IDENTITY_RECHECK).await;
        assert_eq!(
            cache.template("ml/SpotFleet/gpu"),
            None,
            "rechecked after an hour"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_spec_refusal_stands_until_a_launch_works_or_the_recheck_is_due() {
        let cache = LaunchCache::new(provider().ec2("r"));
        let refusal = SpecRefusal {
            spec_hash: "abc".into(),
            field: "imageId",
            code: "InvalidAMIID.NotFound".into(),
            message: "The image id '[ami-1]' does not exist".into(),
        };
        cache.spec_refused("ml/SpotFleet/gpu", Some(refusal.clone()));
        assert_eq!(
            cache.spec_refusal("ml/SpotFleet/gpu"),
            Some(refusal.clone())
        );
        assert_eq!(cache.spec_refusal("ml/SpotFleet/cpu"), None, "per owner");
        cache.spec_refused("ml/SpotFleet/gpu", None);
        assert_eq!(
            cache.spec_refusal("ml/SpotFleet/gpu"),
            None,
            "a launch worked"
        );
        cache.spec_refused("ml/SpotFleet/gpu", Some(refusal));
        tokio::time::advance(SPEC_REFUSAL_RECHECK).await;
        assert_eq!(cache.spec_refusal("ml/SpotFleet/gpu"), None, "tried again");
    }

    #[test]
    fn the_backoff_doubles_per_failure_up_to_ten_minutes() {
        let at = |count| LaunchFailures {
            count,
            last: Timestamp::UNIX_EPOCH,
        };
        let secs: Vec<u64> = [1, 2, 3, 5, 6, 40]
            .map(|n| at(n).backoff().as_secs())
            .to_vec();
        assert_eq!(secs, [30, 60, 120, 480, 600, 600]);
        let later = |secs| Timestamp::UNIX_EPOCH + SignedDuration::from_secs(secs);
        assert_eq!(at(2).remaining_at(later(0)), Some(60));
        assert_eq!(at(2).remaining_at(later(45)), Some(15));
        assert_eq!(at(2).remaining_at(later(60)), None);
        assert_eq!(at(2).remaining_at(later(600)), None);
    }

    #[tokio::test(start_paused = true)]
    async fn failures_count_until_a_later_launch_proves_healthy() {
        let cache = LaunchCache::new(provider().ec2("r"));
        let t = |secs| Timestamp::UNIX_EPOCH + SignedDuration::from_secs(secs);
        cache.launch_failed("o", t(100));
        cache.launch_failed("o", t(200));
        assert_eq!(cache.launch_failures("o").map(|f| f.count), Some(2));
        assert_eq!(cache.launch_failures("other"), None);
        // An instance launched before the last failure proves nothing.
        cache.launch_proved("o", t(150));
        assert_eq!(cache.launch_failures("o").map(|f| f.count), Some(2));
        cache.launch_proved("o", t(250));
        assert_eq!(cache.launch_failures("o"), None);
        // Forgotten after an hour without a new failure.
        cache.launch_failed("o", t(300));
        tokio::time::advance(LAUNCH_FAILURE_MEMORY).await;
        assert_eq!(cache.launch_failures("o"), None);
    }

    #[tokio::test(start_paused = true)]
    async fn known_subnet_zones_are_answered_without_a_call() {
        let cache = LaunchCache::new(provider().ec2("r"));
        cache.subnet_zones.insert("subnet-a".into(), "r-1a".into());
        // The provider points nowhere: a call would fail.
        let zones = cache.subnet_zones(&["subnet-a".to_owned()]).await;
        assert_eq!(
            zones.ok(),
            Some(BTreeMap::from([("subnet-a".to_owned(), "r-1a".to_owned())]))
        );
        cache.launch_refused("o", &["subnet-a".to_owned()]);
        assert_eq!(
            cache.subnet_zones.get(&"subnet-a".to_owned()),
            None,
            "asked again"
        );
    }
}
