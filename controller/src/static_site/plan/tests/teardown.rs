//! Deleting a site: disable, wait, delete the distribution; empty, delete the bucket.

use super::fixtures::*;
use crate::aws::tags::ownership_tags;
use crate::base::gates::ActGate;
use crate::static_site::plan::{Action, TeardownScope, teardown};

const DELETE_ALL: TeardownScope = TeardownScope {
    bucket: true,
    distribution: true,
};

fn kinds_of(site: &Site, scope: TeardownScope) -> Vec<&'static str> {
    let plan = teardown(&site.spec, &site.context, scope, &site.observed);
    plan.actions.iter().map(|a| a.facts().kind).collect()
}

#[test]
fn a_distribution_is_disabled_then_awaited_then_deleted_then_its_oac() {
    let mut site = Site::converged();
    let plan = teardown(&site.spec, &site.context, DELETE_ALL, &site.observed);
    let Action::UpdateDistribution {
        config, if_match, ..
    } = &plan.actions[0]
    else {
        panic!("{:#?}", plan.actions)
    };
    assert!(!config.enabled);
    assert_eq!(if_match, "ETAG1");
    assert_eq!(plan.waits[0].reason, "DistributionDisabling");

    let distribution = site.observed.distribution.as_mut().unwrap();
    distribution.config.enabled = false;
    distribution.status = "InProgress".into();
    let plan = teardown(&site.spec, &site.context, DELETE_ALL, &site.observed);
    assert!(
        plan.actions.is_empty() && !plan.waits.is_empty(),
        "wait, not a blocking loop"
    );

    site.observed.distribution.as_mut().unwrap().status = "Deployed".into();
    assert_eq!(kinds_of(&site, DELETE_ALL), ["DeleteDistribution"]);

    site.observed.distribution = None;
    assert_eq!(kinds_of(&site, DELETE_ALL), ["DeleteOriginAccessControl"]);
}

#[test]
fn a_bucket_is_emptied_of_every_version_then_deleted() {
    let mut site = Site::converged().versions(&[("a", "1", true), ("a", "0", false)]);
    site.observed.distribution = None;
    site.observed.origin_access_control = None;
    let plan = teardown(&site.spec, &site.context, DELETE_ALL, &site.observed);
    let Action::EmptyBucket { versions, .. } = &plan.actions[0] else {
        panic!("{:#?}", plan.actions)
    };
    assert_eq!(versions.len(), 2, "the current version and the old one");
    let site = site.versions(&[]);
    assert_eq!(kinds_of(&site, DELETE_ALL), ["DeleteBucket"]);
}

#[test]
fn retain_observe_only_and_another_owner_leave_everything() {
    let site = Site::converged().versions(&[]);
    assert!(kinds_of(&site, TeardownScope::default()).is_empty());

    let mut observing = Site::converged().versions(&[]);
    observing.context.gate = ActGate::ObserveOnly;
    assert!(kinds_of(&observing, DELETE_ALL).is_empty());

    let mut foreign = Site::converged().versions(&[]);
    let other = ownership_tags("shop/StaticSite/other", CLUSTER);
    foreign.observed.bucket.as_mut().unwrap().tags = other.clone();
    foreign.observed.distribution.as_mut().unwrap().tags = other;
    assert!(kinds_of(&foreign, DELETE_ALL).is_empty());
}
