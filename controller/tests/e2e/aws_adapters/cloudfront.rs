use aws_sdk_cloudfront::types::{
    CacheBehaviors, DefaultCacheBehavior, DistributionConfig, Origin, Origins, S3OriginConfig,
    ViewerProtocolPolicy,
};

use super::{Env, REGION};

async fn create_distribution(env: &Env) -> String {
    let origin = Origin::builder()
        .id("site")
        .domain_name("site-bucket.s3.amazonaws.com")
        .s3_origin_config(S3OriginConfig::builder().origin_access_identity("").build())
        .build()
        .unwrap();
    let config = DistributionConfig::builder()
        .caller_reference("site-1")
        .comment("test")
        .enabled(true)
        .origins(
            Origins::builder()
                .quantity(1)
                .items(origin)
                .build()
                .unwrap(),
        )
        .default_cache_behavior(
            DefaultCacheBehavior::builder()
                .target_origin_id("site")
                .viewer_protocol_policy(ViewerProtocolPolicy::RedirectToHttps)
                .cache_policy_id("658327ea-f89d-4fab-a63d-7e88639e58f6")
                .build()
                .unwrap(),
        )
        .cache_behaviors(CacheBehaviors::builder().quantity(0).build().unwrap())
        .default_root_object("index.html")
        .build()
        .unwrap();
    aws_sdk_cloudfront::Client::new(&env.sdk)
        .create_distribution()
        .distribution_config(config)
        .send()
        .await
        .unwrap()
        .distribution()
        .unwrap()
        .id()
        .to_owned()
}

#[tokio::test]
async fn distributions_are_read_and_invalidations_complete() {
    let env = Env::start().await;
    let id = create_distribution(&env).await;
    let cloudfront = env.aws.cloudfront(REGION);

    let distribution = cloudfront.get_distribution(&id).await.unwrap().unwrap();
    assert_eq!(distribution.id, id);
    assert!(
        distribution.domain_name.ends_with(".cloudfront.net"),
        "{distribution:?}"
    );
    assert!(distribution.e_tag.is_some());
    assert!(["InProgress", "Deployed"].contains(&distribution.status.as_str()));

    let paths = vec!["/index.html".to_owned(), "/assets/*".to_owned()];
    let invalidation = cloudfront
        .create_invalidation(&id, "site-rev-42", &paths)
        .await
        .unwrap();
    let read = cloudfront
        .get_invalidation(&id, &invalidation.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.id, invalidation.id);
    // moto says COMPLETED, AWS Completed: both are done.
    assert!(read.is_completed(), "{read:?}");

    assert_eq!(
        cloudfront.get_distribution("ENOSUCHDIST").await.unwrap(),
        None
    );
    env.report("cloudfront");
}
