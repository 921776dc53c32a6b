//! A site's bucket through `stagehand::aws::s3` against moto: created private in its region,
//! each setting read back as a fact.

use std::collections::BTreeMap;

use aws_sdk_s3::types::{Event, NotificationConfiguration, QueueConfiguration};
use stagehand::aws::ErrorKind;
use stagehand::aws::s3::{
    BucketCreated, BucketSettings, PublicAccessBlock, Versioning, cloudfront_read_policy,
    grants_cloudfront,
};
use stagehand::base::{Classify, ErrorClass};

use super::{Env, assert_proxy_names_every_call};

const DIST: &str = "arn:aws:cloudfront::123456789012:distribution/E2SITE";

#[tokio::test]
async fn a_site_bucket_is_created_private_in_its_region_and_reads_back_as_facts() {
    let env = Env::start().await;
    let s3 = env.aws.s3("eu-west-1");
    let bucket = "shop-site-eu";
    assert_eq!(s3.head_bucket(bucket).await.unwrap(), None);

    assert_eq!(
        s3.create_bucket(bucket).await.unwrap(),
        BucketCreated::Created
    );
    let head = s3.head_bucket(bucket).await.unwrap().unwrap();
    assert_eq!(head.region.as_deref(), Some("eu-west-1"));
    // Nothing configured yet: every setting reads as absent, none as an error.
    assert_eq!(
        s3.bucket_settings(bucket).await.unwrap(),
        BucketSettings::default()
    );

    s3.enable_versioning(bucket).await.unwrap();
    s3.put_public_access_block(bucket, PublicAccessBlock::ALL)
        .await
        .unwrap();
    s3.enforce_bucket_owner(bucket).await.unwrap();
    s3.encrypt_by_default(bucket).await.unwrap();
    let tags = BTreeMap::from([
        (
            "stagehand.dev/owner".to_owned(),
            "web/StaticSite/shop".to_owned(),
        ),
        ("stagehand.dev/cluster".to_owned(), "prod-1".to_owned()),
    ]);
    s3.put_bucket_tags(bucket, &tags).await.unwrap();
    let policy = cloudfront_read_policy(None, bucket, DIST).unwrap();
    s3.put_bucket_policy(bucket, &policy).await.unwrap();

    let settings = s3.bucket_settings(bucket).await.unwrap();
    assert_eq!(settings.versioning, Some(Versioning::Enabled));
    assert_eq!(settings.public_access_block, Some(PublicAccessBlock::ALL));
    assert_eq!(
        settings.object_ownership.as_deref(),
        Some("BucketOwnerEnforced")
    );
    assert_eq!(settings.default_encryption.as_deref(), Some("AES256"));
    assert_eq!(settings.tags, tags);
    assert!(grants_cloudfront(
        settings.policy.as_deref().unwrap(),
        bucket,
        DIST
    ));

    // Drift is visible: someone opens the bucket.
    s3.put_public_access_block(bucket, PublicAccessBlock::default())
        .await
        .unwrap();
    let opened = s3.get_public_access_block(bucket).await.unwrap().unwrap();
    assert!(!opened.is_all());
    assert_proxy_names_every_call(&env, "s3").await;
    env.report("s3 bucket");
}

#[tokio::test]
async fn creating_the_bucket_again_finds_it() {
    let env = Env::start().await;
    // Outside us-east-1 S3 answers BucketAlreadyOwnedByYou; in us-east-1 a plain success.
    let eu = env.aws.s3("eu-west-1");
    eu.create_bucket("again-eu").await.unwrap();
    let second = eu.create_bucket("again-eu").await.unwrap();
    let us = env.aws.s3("us-east-1");
    us.create_bucket("again-us").await.unwrap();
    assert_eq!(
        us.create_bucket("again-us").await.unwrap(),
        BucketCreated::Created
    );
    // moto answers like AWS outside us-east-1 (measured; the doc table says so).
    assert_eq!(second, BucketCreated::AlreadyOwned);
    assert_eq!(
        eu.head_bucket("again-eu")
            .await
            .unwrap()
            .unwrap()
            .region
            .as_deref(),
        Some("eu-west-1")
    );
}

#[tokio::test]
async fn a_missing_bucket_is_an_error_not_an_unset_setting() {
    let env = Env::start().await;
    let s3 = env.aws.s3("us-east-1");
    let err = s3
        .get_public_access_block("no-such-bucket")
        .await
        .unwrap_err();
    assert_eq!(
        (err.kind, err.code.as_deref()),
        (ErrorKind::NotFound, Some("NoSuchBucket")),
        "{err}"
    );
    assert_eq!(err.class(), ErrorClass::Recoverable);
    let err = s3.bucket_settings("no-such-bucket").await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound, "{err}");
    let err = s3
        .put_bucket_policy("no-such-bucket", "{}")
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound, "{err}");
}

#[tokio::test]
async fn eventbridge_notifications_keep_the_buckets_other_destinations() {
    let env = Env::start().await;
    let s3 = env.aws.s3("us-east-1");
    let bucket = "artifacts";
    s3.create_bucket(bucket).await.unwrap();
    // Someone else's notification to a queue.
    env.s3_client()
        .put_bucket_notification_configuration()
        .bucket(bucket)
        .notification_configuration(
            NotificationConfiguration::builder()
                .queue_configurations(
                    QueueConfiguration::builder()
                        .id("uploads")
                        .queue_arn("arn:aws:sqs:us-east-1:123456789012:uploads")
                        .events(Event::from("s3:ObjectCreated:*"))
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();

    s3.set_eventbridge_notifications(bucket, true)
        .await
        .unwrap();
    // moto keeps the setting but leaves it out of its answer; the proxy puts it back
    // (`moto_s3_events`), as S3 answers.
    assert!(s3.eventbridge_notifications(bucket).await.unwrap());
    s3.set_eventbridge_notifications(bucket, false)
        .await
        .unwrap();

    let queues = env
        .s3_client()
        .get_bucket_notification_configuration()
        .bucket(bucket)
        .send()
        .await
        .unwrap();
    let arns: Vec<&str> = queues
        .queue_configurations()
        .iter()
        .map(QueueConfiguration::queue_arn)
        .collect();
    assert_eq!(arns, ["arn:aws:sqs:us-east-1:123456789012:uploads"]);
    let calls = env.floor.calls().await.unwrap();
    assert_eq!(calls.count("s3", "PutBucketNotificationConfiguration"), 3);
    assert!(!s3.eventbridge_notifications(bucket).await.unwrap());
    assert_proxy_names_every_call(&env, "s3").await;
}
