//! What a fleet launch needs that almost never changes, remembered per region so that a Surge
//! replacement (one launch per step, `maxSurge` at a time) does not read it again at every step:
//!
//! - **Subnet zones**: a subnet's availability zone is fixed for its life. One
//!   `DescribeSubnets` for the subnets not known yet; trusted for [`IDENTITY_RECHECK`].
//! - **Launch templates**: each fleet's template (found by owner tag or created) and the
//!   version number written for each spec hash. Trusted for [`IDENTITY_RECHECK`], and dropped
//!   by the launch when EC2 refuses it (a template or version deleted by hand is then found or
//!   created again on the next launch, never used blindly twice).
//!
//! Measured in `make bench` (docs/benchmarks.md): without this, every Surge step of a fleet
//! cost `DescribeSubnets`, `DescribeLaunchTemplates` and `DescribeLaunchTemplateVersions` on
//! top of its `CreateFleet`.

use std::collections::BTreeMap;

use super::IDENTITY_RECHECK;
use super::cached::Cached;
use crate::aws::AwsError;
use crate::aws::ec2::{Ec2, LaunchTemplateInfo};

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
}

impl LaunchCache {
    pub fn new(ec2: Ec2) -> Self {
        Self {
            ec2,
            subnet_zones: Cached::new(IDENTITY_RECHECK),
            templates: Cached::new(IDENTITY_RECHECK),
        }
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

    /// `owner`'s fleet is gone with its template.
    pub fn forget_template(&self, owner: &str) {
        self.templates.invalidate(&owner.to_owned());
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
