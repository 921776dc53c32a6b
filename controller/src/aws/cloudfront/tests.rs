//! What the CloudFront adapter builds and reads from SDK values, without AWS.

use aws_sdk_cloudfront::types::{
    LoggingConfig, Origin, Origins, S3OriginConfig, ViewerCertificate,
};

use super::config;
use super::*;

fn site() -> SiteDistribution {
    SiteDistribution {
        caller_reference: "uid-5f0c".into(),
        comment: "stagehand.dev/owner=web/StaticSite/shop".into(),
        bucket: "shop-site".into(),
        bucket_region: "eu-west-1".into(),
        origin_access_control_id: "E1OAC".into(),
        default_root_object: "index.html".into(),
        aliases: vec!["www.shop.example".into(), "shop.example".into()],
        spa_fallback: true,
    }
}

#[test]
fn a_site_distribution_reads_the_private_bucket_over_https_with_the_spa_fallback() {
    let settings = DistributionSettings::for_site(&site());
    assert_eq!(
        settings.origin,
        SiteOrigin {
            id: SITE_ORIGIN_ID.into(),
            domain_name: "shop-site.s3.eu-west-1.amazonaws.com".into(),
            origin_access_control_id: Some("E1OAC".into()),
        }
    );
    assert_eq!(settings.aliases, ["shop.example", "www.shop.example"]);
    assert_eq!(settings.viewer_protocol_policy, "redirect-to-https");
    assert!(settings.compress && settings.enabled);
    assert_eq!(
        settings.cache,
        CacheSettings::Policy(CACHING_OPTIMIZED_POLICY.into())
    );
    let fallback: Vec<(i32, Option<&str>, Option<&str>)> = settings
        .error_responses
        .iter()
        .map(|r| {
            (
                r.error_code,
                r.response_page_path.as_deref(),
                r.response_code.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        fallback,
        [
            (403, Some("/index.html"), Some("200")),
            (404, Some("/index.html"), Some("200")),
        ]
    );
    let plain = DistributionSettings::for_site(&SiteDistribution {
        spa_fallback: false,
        ..site()
    });
    assert!(plain.error_responses.is_empty());
}

#[test]
#[allow(deprecated)] // the legacy cache fields must be absent
fn settings_survive_a_round_trip_through_the_sdk_config() {
    let settings = DistributionSettings::for_site(&site());
    let built = config::new_config(&settings).unwrap();
    assert_eq!(built.caller_reference, "uid-5f0c");
    let behavior = built.default_cache_behavior().unwrap();
    assert!(
        behavior.forwarded_values.is_none(),
        "a cache policy excludes the legacy fields"
    );
    let origin = &built.origins().unwrap().items()[0];
    assert_eq!(
        origin
            .s3_origin_config()
            .map(S3OriginConfig::origin_access_identity),
        Some(""),
        "OAC, not a legacy origin access identity"
    );
    assert_eq!(config::read(&built), settings);

    let legacy = DistributionSettings {
        cache: CacheSettings::Legacy {
            min_ttl: 0,
            default_ttl: 86_400,
            max_ttl: 31_536_000,
        },
        ..settings
    };
    let built = config::new_config(&legacy).unwrap();
    assert!(
        built
            .default_cache_behavior()
            .unwrap()
            .cache_policy_id
            .is_none()
    );
    assert_eq!(config::read(&built), legacy);
}

#[test]
fn an_update_changes_the_managed_fields_and_keeps_the_rest() {
    let settings = DistributionSettings::for_site(&site());
    let mut existing = config::new_config(&settings).unwrap();
    // What someone else configured: a certificate, logging, a second origin.
    existing.viewer_certificate = Some(
        ViewerCertificate::builder()
            .acm_certificate_arn("arn:aws:acm:us-east-1:123456789012:certificate/abc")
            .build(),
    );
    existing.logging = Some(
        LoggingConfig::builder()
            .enabled(true)
            .bucket("logs.s3.amazonaws.com")
            .build(),
    );
    let mut origins = existing.origins().unwrap().items().to_vec();
    origins.push(
        Origin::builder()
            .id("api")
            .domain_name("api.shop.example")
            .build()
            .unwrap(),
    );
    existing.origins = Some(
        Origins::builder()
            .quantity(2)
            .set_items(Some(origins))
            .build()
            .unwrap(),
    );

    let wanted = DistributionSettings {
        comment: "renamed".into(),
        aliases: vec!["shop.example".into()],
        error_responses: Vec::new(),
        origin: SiteOrigin {
            origin_access_control_id: Some("E2OAC".into()),
            ..settings.origin.clone()
        },
        ..settings.clone()
    };
    config::apply(&mut existing, &wanted).unwrap();

    assert_eq!(config::read(&existing), wanted);
    assert_eq!(existing.caller_reference, "uid-5f0c");
    assert!(existing.viewer_certificate.is_some());
    assert!(existing.logging.is_some());
    let ids: Vec<&str> = existing
        .origins()
        .unwrap()
        .items()
        .iter()
        .map(|o| o.id.as_str())
        .collect();
    assert_eq!(ids, [SITE_ORIGIN_ID, "api"]);
    assert_eq!(existing.origins().unwrap().quantity(), 2);
}

#[test]
fn the_served_origin_is_the_default_behaviours_target() {
    let settings = DistributionSettings::for_site(&site());
    let mut config = config::new_config(&settings).unwrap();
    let mut origins = vec![
        Origin::builder()
            .id("old")
            .domain_name("old.s3.amazonaws.com")
            .build()
            .unwrap(),
    ];
    origins.extend(config.origins().unwrap().items().iter().cloned());
    config.origins = Some(
        Origins::builder()
            .quantity(2)
            .set_items(Some(origins))
            .build()
            .unwrap(),
    );
    assert_eq!(config::read(&config).origin, settings.origin);
}

#[test]
fn completion_is_case_insensitive() {
    for (status, done) in [
        ("Completed", true),
        ("COMPLETED", true),
        ("InProgress", false),
    ] {
        let info = InvalidationInfo {
            id: "I1".into(),
            status: status.into(),
            paths: Vec::new(),
            caller_reference: None,
            create_time: None,
        };
        assert_eq!(info.is_completed(), done, "{status}");
    }
}
