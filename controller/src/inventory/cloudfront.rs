//! The account's CloudFront origin access controls, as every site of a region reads them.
//!
//! A site finds its OAC by name, and CloudFront can only list them (no lookup by name). Listed
//! per site round, 500 sites cost 500 listings of the account's 500 OACs (5 pages each at AWS)
//! per resync: 2,500 calls against CloudFront's 5 calls/s, more than a 5-minute resync
//! (docs/benchmarks.md, "10,000 objects"). So one listing serves every site for `max_age`;
//! Stagehand's own create or delete drops it, so the next round reads back what it did; a spec
//! change or refresh of a site asks for one read after it
//! ([`crate::inventory::Listings::CloudFront`]).

use std::sync::Arc;
use std::time::Duration;

use super::cached::Cached;
use crate::aws::AwsError;
use crate::aws::cloudfront::{CloudFront, OriginAccessControlInfo};

#[derive(Debug)]
pub struct CloudFrontInventory {
    cloudfront: CloudFront,
    access_controls: Cached<(), Arc<Vec<OriginAccessControlInfo>>>,
}

impl CloudFrontInventory {
    pub fn new(cloudfront: CloudFront, max_age: Duration) -> Self {
        Self {
            cloudfront,
            access_controls: Cached::new(max_age),
        }
    }

    /// The OAC named `name`, from a listing younger than the max age (one paged
    /// `ListOriginAccessControls` when there is none); `None` when there is no such OAC.
    pub async fn origin_access_control(
        &self,
        name: &str,
    ) -> Result<Option<OriginAccessControlInfo>, AwsError> {
        let listing = self
            .access_controls
            .get_or_load(&(), || async {
                self.cloudfront
                    .list_origin_access_controls()
                    .await
                    .map(Arc::new)
            })
            .await?;
        Ok(listing.iter().find(|o| o.name == name).cloned())
    }

    /// Stagehand created or deleted an OAC: list them again next time.
    pub fn access_controls_written(&self) {
        self.access_controls.invalidate(&());
    }

    /// Drops the listing if it was read `age` or longer ago.
    pub fn forget_older_than(&self, age: Duration) {
        self.access_controls.forget_older_than(age);
    }
}

#[cfg(test)]
impl CloudFrontInventory {
    pub(crate) fn remember_access_controls(&self, listing: Vec<OriginAccessControlInfo>) {
        self.access_controls.insert((), Arc::new(listing));
    }

    pub(crate) fn cached_access_controls(&self) -> bool {
        self.access_controls.get(&()).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::Inventory;
    use crate::inventory::tests::provider;

    fn oac(name: &str) -> OriginAccessControlInfo {
        OriginAccessControlInfo {
            id: format!("E{name}"),
            name: name.to_owned(),
            description: String::new(),
            signing_protocol: "sigv4".into(),
            signing_behavior: "always".into(),
            origin_type: "s3".into(),
            e_tag: None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn every_site_finds_its_access_control_in_one_shared_listing() {
        // The provider's clients reach nothing: an answer can only come from the listing.
        let inventory = Inventory::new(provider(), Duration::from_secs(30));
        let cloudfront = inventory.cloudfront("r");
        cloudfront.remember_access_controls(vec![oac("web-a"), oac("web-b")]);
        for name in ["web-a", "web-b"] {
            let found = cloudfront.origin_access_control(name).await;
            assert_eq!(found.ok().flatten().map(|o| o.id), Some(format!("E{name}")));
        }
        assert!(matches!(
            cloudfront.origin_access_control("web-c").await,
            Ok(None)
        ));
        assert!(
            Arc::ptr_eq(&cloudfront, &inventory.cloudfront("r")),
            "one inventory per region, shared"
        );
        cloudfront.access_controls_written();
        assert!(!cloudfront.cached_access_controls(), "our write: read back");
    }
}
