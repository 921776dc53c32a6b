//! The bucket's intent record (`status.pendingCreate`): recorded before `CreateBucket`, and
//! what it makes of an untagged bucket after a crash between the create and the tagging.

use super::fixtures::*;
use crate::aws::tags::OWNER_TAG;
use crate::base::gates::ActGate;
use crate::base::intent;
use crate::static_site::observed::ObservedBucket;
use crate::static_site::plan::{Action, PENDING_BUCKET, TeardownScope, teardown};

const DELETE_BUCKET: TeardownScope = TeardownScope {
    bucket: true,
    distribution: false,
};

/// The site after a crash between `CreateBucket` and `PutBucketTagging`: the bucket exists
/// with none of its tags or settings, holds nothing, and status still carries the record.
fn created_untagged() -> Site {
    let mut site = Site::new().recorded().versions(&[]);
    site.observed.bucket = Some(ObservedBucket::default());
    site
}

#[test]
fn a_missing_bucket_is_recorded_in_status_before_it_is_created() {
    let plan = Site::new().plan();
    assert_eq!(
        kinds(&plan)[0],
        "CreateBucket",
        "the plan shows the whole change"
    );
    assert!(plan.record_first, "but the round runs none of it");
    assert_eq!(
        plan.pending_create,
        Some(intent::pending_create(PENDING_BUCKET, BUCKET))
    );
    assert_eq!(plan.waits[0].reason, "CreateRecorded");
    assert_eq!(plan.requeue_after_seconds(), Some(1));

    let plan = Site::new().recorded().plan();
    assert_eq!(kinds(&plan)[0], "CreateBucket");
    assert!(!plan.record_first && plan.waits.is_empty());
    assert!(
        plan.pending_create.is_some(),
        "kept until the bucket is tagged"
    );

    let mut observing = Site::new();
    observing.context.gate = ActGate::ObserveOnly;
    let plan = observing.plan();
    assert!(
        !plan.record_first && plan.pending_create.is_none(),
        "never written"
    );
}

#[test]
fn an_untagged_empty_bucket_the_record_names_is_tagged_without_adopt_and_deployed() {
    let site = created_untagged();
    assert!(!site.spec.lifecycle.adopt);
    let plan = site.plan();
    assert!(plan.stalled.is_none(), "{:?}", plan.stalled);
    let Action::ClaimBucket { bucket, tags } = &plan.actions[0] else {
        panic!("{:?}", kinds(&plan))
    };
    assert_eq!((bucket.as_str(), tags[OWNER_TAG].as_str()), (BUCKET, OWNER));
    for then in ["ConfigureBucket", "UploadObjects", "RecordServed"] {
        assert!(kinds(&plan).contains(&then), "{then} in {:?}", kinds(&plan));
    }
    assert!(
        plan.pending_create.is_some(),
        "cleared once the claim is done"
    );
}

#[test]
fn an_untagged_bucket_is_a_strangers_without_the_record_or_when_it_holds_objects() {
    let mut unrecorded = created_untagged();
    unrecorded.observed.pending_create = None;
    let plan = unrecorded.plan();
    assert_eq!(plan.stalled.unwrap().reason, "AdoptionRequired");
    assert!(plan.actions.is_empty());

    let holding = created_untagged().versions(&[("index.html", "v1", true)]);
    let plan = holding.plan();
    let stall = plan.stalled.unwrap();
    assert_eq!(stall.reason, "AdoptionRequired");
    assert!(stall.message.contains("holds objects"), "{}", stall.message);

    let mut other = created_untagged();
    other.observed.pending_create = Some(intent::pending_create(PENDING_BUCKET, "other"));
    assert_eq!(other.plan().stalled.unwrap().reason, "AdoptionRequired");
}

#[test]
fn the_record_goes_once_the_bucket_is_tagged_and_stays_while_the_site_may_not_act() {
    assert_eq!(Site::converged().recorded().plan().pending_create, None);

    let mut observing = created_untagged();
    observing.context.gate = ActGate::ObserveOnly;
    let plan = observing.plan();
    assert!(plan.actions.is_empty());
    assert_eq!(plan.pending_create, observing.observed.pending_create);
}

#[test]
fn deletion_removes_the_untagged_bucket_the_site_created_and_never_a_strangers() {
    let site = created_untagged();
    let plan = teardown(&site.spec, &site.context, DELETE_BUCKET, &site.observed);
    assert_eq!(
        plan.actions,
        [Action::DeleteBucket {
            bucket: BUCKET.into()
        }]
    );

    let mut unrecorded = created_untagged();
    unrecorded.observed.pending_create = None;
    let plan = teardown(
        &site.spec,
        &site.context,
        DELETE_BUCKET,
        &unrecorded.observed,
    );
    assert!(plan.actions.is_empty(), "{:?}", plan.actions);

    let holding = created_untagged().versions(&[("index.html", "v1", true)]);
    let plan = teardown(&site.spec, &site.context, DELETE_BUCKET, &holding.observed);
    assert!(plan.actions.is_empty(), "{:?}", plan.actions);
}
