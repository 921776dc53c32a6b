//! Ownership, the bucket's settings and policy, the OAC and the distribution, waits and gates.

use serde_json::json;

use super::fixtures::*;
use crate::aws::tags::{OWNER_TAG, ownership_tags};
use crate::base::conditions::ReconcileOutcome;
use crate::base::gates::ActGate;
use crate::inventory::EventFeed;
use crate::static_site::observed::ObservedInvalidation;
use crate::static_site::plan::{
    Action, BucketSetting, bucket_policy, distribution_caller_reference,
};

#[test]
fn a_second_site_cannot_take_over_the_first_one_s_bucket() {
    let mut site = Site::converged();
    site.observed.bucket.as_mut().unwrap().tags = ownership_tags("shop/StaticSite/other", CLUSTER);
    site.spec.lifecycle.adopt = true;
    let plan = site.plan();
    assert!(plan.actions.is_empty());
    let stall = plan.stalled.unwrap();
    assert_eq!(stall.reason, "OwnershipConflict");
    assert!(
        stall.message.contains("shop/StaticSite/other"),
        "{}",
        stall.message
    );
}

#[test]
fn a_site_in_another_namespace_cannot_take_the_distribution_even_with_adopt() {
    let mut site = Site::converged();
    // The same site name in namespace `other` tagged it: another owner.
    site.observed.distribution.as_mut().unwrap().tags =
        ownership_tags("other/StaticSite/storefront", CLUSTER);
    site.spec.lifecycle.adopt = true;
    let plan = site.plan();
    assert!(plan.actions.is_empty(), "{:?}", kinds(&plan));
    let stall = plan.stalled.unwrap();
    assert_eq!(stall.reason, "OwnershipConflict");
    assert!(
        stall
            .message
            .contains("owned by other/StaticSite/storefront"),
        "{}",
        stall.message
    );
}

#[test]
fn an_untagged_bucket_is_managed_only_once_adopted_and_tagged_first() {
    let mut site = Site::converged();
    site.observed.bucket.as_mut().unwrap().tags.clear();
    assert_eq!(site.plan().stalled.unwrap().reason, "AdoptionRequired");
    site.spec.lifecycle.adopt = true;
    let plan = site.plan();
    assert_eq!(kinds(&plan), ["AdoptBucket"]);
    let Action::AdoptBucket { tags, .. } = the(&plan, "AdoptBucket") else {
        unreachable!()
    };
    assert_eq!(tags[OWNER_TAG], OWNER);
}

#[test]
fn a_missing_bucket_is_created_only_when_the_spec_says_so() {
    let mut site = Site::new();
    site.spec.bucket.create = false;
    assert_eq!(site.plan().stalled.unwrap().reason, "BucketNotFound");
}

#[test]
fn missing_bucket_settings_are_turned_on() {
    let mut site = Site::converged();
    let bucket = site.observed.bucket.as_mut().unwrap();
    bucket.versioning_enabled = false;
    bucket.encrypted = false;
    let plan = site.plan();
    let Action::ConfigureBucket { settings, .. } = the(&plan, "ConfigureBucket") else {
        unreachable!()
    };
    assert_eq!(
        settings,
        &[BucketSetting::Versioning, BucketSetting::DefaultEncryption]
    );
}

#[test]
fn eventbridge_notifications_are_turned_on_only_with_an_event_feed_and_never_off() {
    let mut site = Site::converged();
    assert!(
        !site
            .observed
            .bucket
            .as_ref()
            .unwrap()
            .eventbridge_notifications
    );
    assert!(
        site.plan().actions.is_empty(),
        "no feed: nothing to turn on"
    );
    site.observed.event_feed = EventFeed::Healthy;
    let plan = site.plan();
    let Action::ConfigureBucket { settings, .. } = the(&plan, "ConfigureBucket") else {
        unreachable!()
    };
    assert_eq!(settings, &[BucketSetting::EventBridgeNotifications]);
    // A failing feed still wants the bucket's events once it recovers.
    site.observed.event_feed = EventFeed::Silent;
    assert_eq!(kinds(&site.plan()), ["ConfigureBucket"]);
    site.observed
        .bucket
        .as_mut()
        .unwrap()
        .eventbridge_notifications = true;
    assert!(site.plan().actions.is_empty());
    site.observed.event_feed = EventFeed::NotConfigured;
    assert!(site.plan().actions.is_empty(), "never turned off");
}

#[test]
fn the_policy_lets_only_this_distribution_read_and_drops_public_statements() {
    let mut site = Site::converged();
    let other = json!({"Sid": "Audit", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::1:role/audit"}, "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::shop-web"});
    let public = json!({"Sid": "PublicRead", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::shop-web/*"});
    site.observed.bucket.as_mut().unwrap().policy =
        Some(json!({"Version": "2012-10-17", "Statement": [other, public]}));
    let plan = site.plan();
    let Action::PutBucketPolicy { policy, .. } = the(&plan, "PutBucketPolicy") else {
        unreachable!()
    };
    let statements = policy["Statement"].as_array().unwrap();
    assert_eq!(statements.len(), 2);
    assert_eq!(statements[0]["Sid"], "Audit");
    assert_eq!(
        statements[1]["Condition"]["StringEquals"]["AWS:SourceArn"],
        DIST_ARN
    );
    assert_eq!(
        statements[1]["Principal"]["Service"],
        "cloudfront.amazonaws.com"
    );
    // Written once, it is what is wanted.
    assert_eq!(bucket_policy(Some(policy), BUCKET, DIST_ARN), *policy);
}

#[test]
fn the_distribution_is_created_after_its_oac_with_a_caller_reference_from_the_uid() {
    let mut site = Site::converged();
    site.observed.distribution = None;
    site.observed.bucket.as_mut().unwrap().policy = None;
    let plan = site.plan();
    let Action::CreateDistribution {
        caller_reference,
        config,
        tags,
    } = the(&plan, "CreateDistribution")
    else {
        unreachable!()
    };
    assert_eq!(*caller_reference, distribution_caller_reference("0f3c-uid"));
    assert_eq!(*config, desired_distribution());
    assert_eq!(tags[OWNER_TAG], OWNER);
    assert!(
        plan.actions_of("PutBucketPolicy").is_empty(),
        "the ARN comes next round"
    );

    site.observed.origin_access_control = None;
    let plan = site.plan();
    assert_eq!(kinds(&plan), ["CreateOriginAccessControl"]);
}

#[test]
fn a_managed_distribution_is_updated_with_if_match_an_unadopted_one_only_reported() {
    let mut site = Site::converged();
    site.observed.distribution.as_mut().unwrap().config.compress = false;
    let plan = site.plan();
    let Action::UpdateDistribution {
        if_match, config, ..
    } = the(&plan, "UpdateDistribution")
    else {
        unreachable!()
    };
    assert_eq!(if_match, "ETAG1");
    assert!(config.compress);

    site.spec.distribution.create = false;
    site.spec.distribution.id = Some(DIST_ID.into());
    site.observed.distribution.as_mut().unwrap().tags.clear();
    let site = site.build("r2", &with(BUILD_1, "robots.txt", "changed"));
    let plan = site.plan();
    assert!(plan.actions_of("UpdateDistribution").is_empty());
    assert!(
        plan.drift
            .iter()
            .any(|d| d.field.as_str() == "distribution")
    );
    assert_eq!(
        keys_of(the(&plan, "Invalidate")),
        ["/robots.txt"],
        "still invalidated"
    );
}

#[test]
fn a_named_distribution_that_does_not_exist_stalls() {
    let mut site = Site::converged();
    site.spec.distribution.create = false;
    site.spec.distribution.id = Some("EMISSING1".into());
    site.observed.distribution = None;
    assert_eq!(site.plan().stalled.unwrap().reason, "DistributionNotFound");
}

#[test]
fn waits_for_a_deploying_distribution_and_a_running_invalidation() {
    let mut site = Site::converged();
    site.observed.distribution.as_mut().unwrap().status = "InProgress".into();
    site.observed.invalidation = Some(ObservedInvalidation {
        id: "I1".into(),
        status: "InProgress".into(),
    });
    let plan = site.plan();
    let reasons: Vec<&str> = plan.waits.iter().map(|w| w.reason).collect();
    assert_eq!(reasons, ["DistributionDeploying", "InvalidationInProgress"]);
    assert_eq!(plan.requeue_after_seconds(), Some(10));

    site.observed.invalidation.as_mut().unwrap().status = "COMPLETED".into();
    site.spec.invalidation.wait = false;
    let reasons: Vec<&str> = site.plan().waits.iter().map(|w| w.reason).collect();
    assert_eq!(reasons, ["DistributionDeploying"]);
}

#[test]
fn observe_only_and_paused_report_drift_and_change_nothing() {
    let mut site = Site::converged().build("r2", &with(BUILD_1, "index.html", "v2"));
    site.context.gate = ActGate::ObserveOnly;
    let plan = site.plan();
    assert!(plan.actions.is_empty());
    assert!(matches!(
        plan.outcome(),
        ReconcileOutcome::ObserveOnlyDrift { fields, .. } if fields == ["content", "revision"]
    ));
    site.context.gate = ActGate::Paused;
    assert_eq!(site.plan().outcome(), ReconcileOutcome::Paused);
}

#[test]
fn every_action_kind_has_its_own_facts() {
    let plan = Site::new().plan();
    let mut seen = std::collections::BTreeSet::new();
    for action in &plan.actions {
        let facts = action.facts();
        assert!(seen.insert(facts.kind), "{}", facts.kind);
        assert!(crate::base::conditions::is_valid_reason(facts.event_reason));
        assert!(!action.to_string().is_empty());
    }
}
