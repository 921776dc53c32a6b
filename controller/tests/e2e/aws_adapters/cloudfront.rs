//! A site's distribution, its Origin Access Control and invalidations through
//! `stagehand::aws::cloudfront` against moto.

use std::collections::BTreeMap;

use stagehand::aws::ErrorKind;
use stagehand::aws::cloudfront::{
    CloudFront, CreatedDistribution, DistributionSettings, SiteDistribution,
};
use stagehand::base::{Classify, ErrorClass};
use stagehand_testenv::aws::faults::{FaultAction, FaultRule};

use super::{Env, REGION, assert_proxy_names_every_call};

const OWNER: &str = "stagehand.dev/owner=web/StaticSite/shop";

fn site(caller_reference: &str, oac: &str) -> SiteDistribution {
    SiteDistribution {
        caller_reference: caller_reference.into(),
        comment: OWNER.into(),
        bucket: "shop-site".into(),
        bucket_region: "eu-west-1".into(),
        origin_access_control_id: oac.into(),
        default_root_object: "index.html".into(),
        aliases: vec!["shop.example".into()],
        spa_fallback: true,
    }
}

fn owner_tags() -> BTreeMap<String, String> {
    BTreeMap::from([(
        "stagehand.dev/owner".to_owned(),
        "web/StaticSite/shop".to_owned(),
    )])
}

/// CloudFront's own error `code`, which moto never answers with.
fn cloudfront_error(status: u16, code: &str) -> FaultAction {
    FaultAction::Error {
        status,
        code: Some(code.to_owned()),
        message: Some(format!("{code} (injected by the test)")),
        plain: false,
    }
}

async fn create(cloudfront: &CloudFront, reference: &str) -> CreatedDistribution {
    let oac = cloudfront
        .create_origin_access_control(&format!("site-{reference}"), "shop site")
        .await
        .unwrap();
    let settings = DistributionSettings::for_site(&site(reference, &oac.id));
    cloudfront
        .create_distribution(&settings, &owner_tags())
        .await
        .unwrap()
}

#[tokio::test]
async fn an_origin_access_control_is_created_found_and_read() {
    let env = Env::start().await;
    let cloudfront = env.aws.cloudfront(REGION);
    assert_eq!(
        cloudfront
            .find_origin_access_control("shop-site")
            .await
            .unwrap(),
        None
    );

    let created = cloudfront
        .create_origin_access_control("shop-site", "web/StaticSite/shop")
        .await
        .unwrap();
    assert_eq!(
        (
            created.signing_protocol.as_str(),
            created.signing_behavior.as_str(),
            created.origin_type.as_str()
        ),
        ("sigv4", "always", "s3")
    );
    assert!(created.e_tag.is_some());

    let found = cloudfront
        .find_origin_access_control("shop-site")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id, created.id);
    let read = cloudfront
        .get_origin_access_control(&created.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read, created);
    assert_eq!(
        cloudfront
            .get_origin_access_control("ENOSUCHOAC")
            .await
            .unwrap(),
        None
    );
    assert_proxy_names_every_call(&env, "cloudfront").await;
}

/// A listing whose next marker is the one just sent stops with an error instead of asking
/// for the same page forever. moto does exactly that past 100 origin access controls (it
/// ignores `Marker`): the listing used to loop, holding a worker and growing without end
/// (docs/testing.md, moto's gaps).
#[tokio::test]
async fn a_listing_that_does_not_advance_stops_with_an_error() {
    let env = Env::start().await;
    let cloudfront = env.aws.cloudfront(REGION);
    for n in 0..101 {
        cloudfront
            .create_origin_access_control(&format!("site-{n:03}"), "web/StaticSite/site")
            .await
            .unwrap();
    }
    let listed = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        cloudfront.list_origin_access_controls(),
    )
    .await
    .expect("the listing ends");
    let error = listed.unwrap_err();
    assert!(
        error.to_string().contains("the listing does not advance"),
        "{error}"
    );
    assert_eq!(error.operation, "ListOriginAccessControls");
    let calls = env.floor.calls().await.unwrap();
    assert_eq!(
        calls.count("cloudfront", "ListOriginAccessControls"),
        2,
        "the first page, then the same page once: {calls:?}"
    );
}

#[tokio::test]
async fn a_site_distribution_is_created_tagged_and_reads_back_as_its_settings() {
    let env = Env::start().await;
    let cloudfront = env.aws.cloudfront(REGION);
    let created = create(&cloudfront, "uid-1").await;
    assert!(!created.already_existed);
    let distribution = created.distribution;
    assert!(distribution.domain_name.ends_with(".cloudfront.net"));
    assert!(distribution.arn.ends_with(&distribution.id));
    assert!(distribution.e_tag.is_some());

    let read = cloudfront
        .get_distribution(&distribution.id)
        .await
        .unwrap()
        .unwrap();
    // moto drops the origin's OriginAccessControlId (AWS keeps it); the test proxy puts back
    // the id last sent for this caller reference and origin (`stagehand_testenv::aws::moto_oac`),
    // which other tests of this binary share: compare the rest.
    let mut wanted = DistributionSettings::for_site(&site("uid-1", "any"));
    wanted
        .origin
        .origin_access_control_id
        .clone_from(&read.settings.origin.origin_access_control_id);
    assert_eq!(read.settings, wanted);
    assert_eq!(
        cloudfront.distribution_tags(&read.arn).await.unwrap(),
        owner_tags()
    );
    cloudfront
        .tag_distribution(
            &read.arn,
            &BTreeMap::from([("stagehand.dev/cluster".to_owned(), "prod-1".to_owned())]),
        )
        .await
        .unwrap();
    assert_eq!(
        cloudfront.distribution_tags(&read.arn).await.unwrap().len(),
        2
    );

    let config = cloudfront
        .get_distribution_config(&distribution.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(config.settings, read.settings);
    assert_eq!(Some(config.e_tag), read.e_tag);
    assert_eq!(
        cloudfront.get_distribution("ENOSUCHDIST").await.unwrap(),
        None
    );
    assert_eq!(
        cloudfront
            .get_distribution_config("ENOSUCHDIST")
            .await
            .unwrap(),
        None
    );
    assert_proxy_names_every_call(&env, "cloudfront").await;
}

#[tokio::test]
async fn a_repeated_caller_reference_finds_the_first_distribution() {
    let env = Env::start().await;
    let cloudfront = env.aws.cloudfront(REGION);
    let first = create(&cloudfront, "uid-7").await;
    // Another site's distribution with the same comment and its own reference.
    create(&cloudfront, "uid-8").await;

    let again = cloudfront
        .create_distribution(
            &DistributionSettings::for_site(&site("uid-7", "E-OTHER-OAC")),
            &owner_tags(),
        )
        .await
        .unwrap();

    assert!(again.already_existed);
    assert_eq!(again.distribution.id, first.distribution.id);
    assert_eq!(cloudfront.list_distributions().await.unwrap().len(), 2);
    let calls = env.floor.calls().await.unwrap();
    assert_eq!(calls.count("cloudfront", "CreateDistributionWithTags"), 3);
    // The repeat found it by listing and reading the candidates with the same comment.
    assert_eq!(calls.count("cloudfront", "ListDistributions"), 2);
    assert!(calls.count("cloudfront", "GetDistribution") >= 1);
}

#[tokio::test]
async fn distributions_are_listed_in_pages() {
    let env = Env::start().await;
    let cloudfront = env.aws.cloudfront(REGION);
    for reference in ["uid-a", "uid-b", "uid-c"] {
        create(&cloudfront, reference).await;
    }
    let mut ids = Vec::new();
    let mut marker = None;
    let mut pages = 0;
    loop {
        let page = cloudfront.list_distributions_page(marker, 2).await.unwrap();
        pages += 1;
        assert!(
            page.distributions
                .iter()
                .all(|d| d.comment == OWNER && d.enabled)
        );
        ids.extend(page.distributions.into_iter().map(|d| d.id));
        match page.next_marker {
            Some(next) => marker = Some(next),
            None => break,
        }
    }
    assert_eq!((pages, ids.len()), (2, 3));
}

#[tokio::test]
async fn updates_go_through_if_match_and_a_stale_etag_is_a_conflict() {
    let env = Env::start().await;
    let cloudfront = env.aws.cloudfront(REGION);
    let id = create(&cloudfront, "uid-2").await.distribution.id;
    let read = cloudfront
        .get_distribution_config(&id)
        .await
        .unwrap()
        .unwrap();
    let wanted = DistributionSettings {
        aliases: vec!["shop.example".into(), "www.shop.example".into()],
        error_responses: Vec::new(),
        ..read.settings.clone()
    };

    let updated = cloudfront
        .update_distribution(&id, &read.e_tag, &wanted)
        .await
        .unwrap();
    assert_eq!(updated.settings, wanted);
    let reread = cloudfront
        .get_distribution_config(&id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reread.settings, wanted);

    // A decision made on another ETag is not written.
    let err = cloudfront
        .update_distribution(&id, "E-STALE", &read.settings)
        .await
        .unwrap_err();
    assert_eq!(
        (err.kind, err.code.as_deref()),
        (ErrorKind::Conflict, Some("PreconditionFailed")),
        "{err}"
    );
    assert_eq!(err.class(), ErrorClass::Recoverable);
    assert_eq!(
        env.floor
            .calls()
            .await
            .unwrap()
            .count("cloudfront", "UpdateDistribution"),
        1
    );

    // CloudFront's own answer to a stale If-Match (moto never gives it: injected).
    env.floor
        .add_fault(
            &FaultRule::new(cloudfront_error(412, "PreconditionFailed"))
                .service("cloudfront")
                .operation("UpdateDistribution")
                .times(1),
        )
        .await
        .unwrap();
    let err = cloudfront
        .update_distribution(&id, &reread.e_tag, &read.settings)
        .await
        .unwrap_err();
    assert_eq!(
        (err.kind, err.code.as_deref(), err.http_status),
        (ErrorKind::Conflict, Some("PreconditionFailed"), Some(412)),
        "{err}"
    );
    assert_eq!(err.class(), ErrorClass::Recoverable);

    let err = cloudfront
        .update_distribution("ENOSUCHDIST", "E1", &wanted)
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound, "{err}");
}

#[tokio::test]
async fn a_distribution_is_disabled_then_deleted() {
    let env = Env::start().await;
    let cloudfront = env.aws.cloudfront(REGION);
    let id = create(&cloudfront, "uid-3").await.distribution.id;

    let disabled = cloudfront.disable_distribution(&id).await.unwrap().unwrap();
    assert!(!disabled.settings.enabled);
    // moto deploys at once; AWS reports InProgress for minutes (the caller requeues).
    assert!(disabled.is_deployed(), "{disabled:?}");
    // Disabling again changes nothing.
    let again = cloudfront.disable_distribution(&id).await.unwrap().unwrap();
    assert!(!again.settings.enabled);
    assert_eq!(
        env.floor
            .calls()
            .await
            .unwrap()
            .count("cloudfront", "UpdateDistribution"),
        1
    );

    let e_tag = cloudfront
        .get_distribution(&id)
        .await
        .unwrap()
        .unwrap()
        .e_tag
        .unwrap();
    assert!(cloudfront.delete_distribution(&id, &e_tag).await.unwrap());
    assert_eq!(cloudfront.get_distribution(&id).await.unwrap(), None);
    assert!(!cloudfront.delete_distribution(&id, &e_tag).await.unwrap());
    assert_eq!(cloudfront.disable_distribution(&id).await.unwrap(), None);
    assert_proxy_names_every_call(&env, "cloudfront").await;
    env.report("cloudfront disable + delete");
}

#[tokio::test]
async fn an_enabled_distribution_is_not_deleted_on_aws() {
    let env = Env::start().await;
    let cloudfront = env.aws.cloudfront(REGION);
    let distribution = create(&cloudfront, "uid-4").await.distribution;
    // moto deletes an enabled distribution; AWS answers DistributionNotDisabled (injected).
    env.floor
        .add_fault(
            &FaultRule::new(cloudfront_error(409, "DistributionNotDisabled"))
                .service("cloudfront")
                .operation("DeleteDistribution"),
        )
        .await
        .unwrap();
    let err = cloudfront
        .delete_distribution(&distribution.id, distribution.e_tag.as_deref().unwrap())
        .await
        .unwrap_err();
    assert_eq!(
        (err.kind, err.class()),
        (ErrorKind::Conflict, ErrorClass::Recoverable),
        "{err}"
    );
}

#[tokio::test]
async fn invalidations_are_created_read_and_listed() {
    let env = Env::start().await;
    let cloudfront = env.aws.cloudfront(REGION);
    let id = create(&cloudfront, "uid-5").await.distribution.id;

    let paths = vec!["/index.html".to_owned(), "/assets/*".to_owned()];
    let invalidation = cloudfront
        .create_invalidation(&id, "site-rev-42", &paths)
        .await
        .unwrap();
    assert_eq!(invalidation.paths, paths);
    assert_eq!(
        invalidation.caller_reference.as_deref(),
        Some("site-rev-42")
    );
    let read = cloudfront
        .get_invalidation(&id, &invalidation.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.id, invalidation.id);
    assert_eq!(read.paths, paths);
    // moto says COMPLETED, AWS Completed: both are done.
    assert!(read.is_completed(), "{read:?}");

    // Measured: moto makes a second invalidation for a repeated reference (AWS returns the
    // first); the caller keeps the id and never relies on the reference alone.
    let repeat = cloudfront
        .create_invalidation(&id, "site-rev-42", &paths)
        .await
        .unwrap();
    assert_ne!(repeat.id, invalidation.id);

    let mut listed = Vec::new();
    let mut marker = None;
    loop {
        let page = cloudfront
            .list_invalidations_page(&id, marker, 1)
            .await
            .unwrap();
        listed.extend(page.invalidations);
        match page.next_marker {
            Some(next) => marker = Some(next),
            None => break,
        }
    }
    let mut ids: Vec<&str> = listed.iter().map(|i| i.id.as_str()).collect();
    ids.sort_unstable();
    let mut wanted = vec![invalidation.id.as_str(), repeat.id.as_str()];
    wanted.sort_unstable();
    assert_eq!(ids, wanted);
    assert!(listed.iter().all(|i| i.create_time.is_some()));

    assert_eq!(
        cloudfront.get_invalidation(&id, "INOSUCH").await.unwrap(),
        None
    );
    let err = cloudfront
        .create_invalidation("ENOSUCHDIST", "r", &paths)
        .await
        .unwrap_err();
    assert_eq!(
        (err.kind, err.code.as_deref()),
        (ErrorKind::NotFound, Some("NoSuchDistribution")),
        "{err}"
    );
    assert_proxy_names_every_call(&env, "cloudfront").await;
    env.report("cloudfront invalidations");
}

#[tokio::test]
async fn invalidations_in_progress_and_too_many_of_them() {
    let env = Env::start().await;
    let cloudfront = env.aws.cloudfront(REGION);
    let id = create(&cloudfront, "uid-6").await.distribution.id;
    let invalidation = cloudfront
        .create_invalidation(&id, "rev-1", &["/*".to_owned()])
        .await
        .unwrap();
    env.floor
        .add_fault(&FaultRule::new(FaultAction::invalidation_in_progress()).times(1))
        .await
        .unwrap();
    let first = cloudfront
        .get_invalidation(&id, &invalidation.id)
        .await
        .unwrap()
        .unwrap();
    assert!(!first.is_completed(), "{first:?}");
    let second = cloudfront
        .get_invalidation(&id, &invalidation.id)
        .await
        .unwrap()
        .unwrap();
    assert!(second.is_completed(), "{second:?}");

    env.floor
        .add_fault(
            &FaultRule::new(cloudfront_error(400, "TooManyInvalidationsInProgress"))
                .service("cloudfront")
                .operation("CreateInvalidation"),
        )
        .await
        .unwrap();
    let err = cloudfront
        .create_invalidation(&id, "rev-2", &["/*".to_owned()])
        .await
        .unwrap_err();
    assert_eq!(
        (err.kind, err.class(), err.reason()),
        (
            ErrorKind::Throttled,
            ErrorClass::Recoverable,
            "AwsThrottled"
        ),
        "{err}"
    );
    assert_eq!(
        env.calls("cloudfront", "CreateInvalidation", "throttled"),
        1
    );
}
