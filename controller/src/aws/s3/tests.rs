//! What the S3 adapter computes and reads from SDK values, without AWS.

use super::objects::delete_failures;
use super::*;

// sha256("hello\n")
const HEX: &str = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03";
const B64: &str = "WJG1tSLV3whtD/CxEPvZ0hu0/HFjrzTQgoai6Eb2vgM=";

const DIST: &str = "arn:aws:cloudfront::123456789012:distribution/E2SITE";

#[test]
fn digest_round_trips_between_hex_and_base64() {
    let digest = Sha256Digest::of(b"hello\n");
    assert_eq!(digest.to_hex(), HEX);
    assert_eq!(digest.to_base64(), B64);
    assert_eq!(Sha256Digest::from_hex(HEX), Some(digest));
    assert_eq!(Sha256Digest::from_hex(&HEX.to_uppercase()), Some(digest));
    assert_eq!(Sha256Digest::from_base64(B64), Some(digest));
    assert_eq!(Sha256Digest::parse(HEX), Some(digest));
    assert_eq!(Sha256Digest::parse(B64), Some(digest));
    assert_eq!(Sha256Digest::parse(&format!("sha256:{HEX}")), Some(digest));
}

#[test]
fn malformed_digests_are_rejected() {
    assert_eq!(Sha256Digest::from_hex(&HEX[1..]), None);
    assert_eq!(Sha256Digest::from_hex(&HEX.replace('5', "g")), None);
    assert_eq!(Sha256Digest::from_base64("aGVsbG8="), None); // 5 bytes
    assert_eq!(Sha256Digest::parse("not a hash"), None);
}

#[test]
fn multipart_checksums_are_not_object_hashes() {
    let head = |checksum: &str| ObjectHead {
        checksum_sha256: Some(checksum.to_owned()),
        ..ObjectHead::default()
    };
    assert!(head(B64).sha256().is_some());
    assert!(head(&format!("{B64}-3")).sha256().is_none());
    let written = WriteResult {
        checksum_sha256: Some(format!("{B64}-2")),
        ..WriteResult::default()
    };
    assert_eq!(written.sha256(), None);
}

#[test]
fn copy_sources_are_percent_encoded_and_name_the_version() {
    assert_eq!(encode_key("site/a b+c.html"), "site/a%20b%2Bc.html");
    assert_eq!(encode_key("x/é"), "x/%C3%A9");
    assert_eq!(
        copy_source("site", &ObjectRef::latest("a b.css")),
        "site/a%20b.css"
    );
    assert_eq!(
        copy_source("site", &ObjectRef::version("index.html", "v1")),
        "site/index.html?versionId=v1"
    );
}

#[test]
fn current_objects_are_latest_versions_that_are_not_delete_markers() {
    let version = |is_latest, delete_marker| ObjectVersion {
        key: "k".into(),
        version_id: Some("v".into()),
        is_latest,
        delete_marker,
        ..ObjectVersion::default()
    };
    assert!(version(true, false).is_current());
    assert!(!version(false, false).is_current());
    assert!(!version(true, true).is_current());
    assert_eq!(version(true, true).to_ref(), ObjectRef::version("k", "v"));
}

#[test]
fn public_access_block_is_all_only_with_all_four() {
    assert!(PublicAccessBlock::ALL.is_all());
    let mut open = PublicAccessBlock::ALL;
    open.restrict_public_buckets = false;
    assert!(!open.is_all());
}

#[test]
fn the_read_policy_is_json_naming_the_distribution_and_the_objects() {
    let policy = cloudfront_read_policy(None, "shop-site", DIST).unwrap();
    let value: serde_json::Value = serde_json::from_str(&policy).unwrap();
    assert_eq!(
        value,
        serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Sid": CLOUDFRONT_READ_SID,
                "Effect": "Allow",
                "Principal": {"Service": "cloudfront.amazonaws.com"},
                "Action": "s3:GetObject",
                "Resource": "arn:aws:s3:::shop-site/*",
                "Condition": {"StringEquals": {"AWS:SourceArn": DIST}},
            }]
        })
    );
    assert!(grants_cloudfront(&policy, "shop-site", DIST));
    assert!(!grants_cloudfront(
        &policy,
        "shop-site",
        "arn:aws:cloudfront::123456789012:distribution/EOTHER"
    ));
    assert!(!grants_cloudfront(&policy, "other-bucket", DIST));
}

#[test]
fn other_statements_are_kept_and_ours_replaced() {
    let existing = serde_json::json!({
        "Version": "2012-10-17",
        "Id": "team-policy",
        "Statement": [
            {"Sid": "DenyHttp", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
             "Resource": "arn:aws:s3:::shop-site/*",
             "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
            {"Sid": CLOUDFRONT_READ_SID, "Effect": "Allow",
             "Principal": {"Service": "cloudfront.amazonaws.com"}, "Action": "s3:GetObject",
             "Resource": "arn:aws:s3:::shop-site/*",
             "Condition": {"StringEquals": {"AWS:SourceArn": "arn:aws:cloudfront::123456789012:distribution/EOLD"}}}
        ]
    })
    .to_string();
    let policy = cloudfront_read_policy(Some(&existing), "shop-site", DIST).unwrap();
    let value: serde_json::Value = serde_json::from_str(&policy).unwrap();
    assert_eq!(value["Id"], "team-policy");
    let sids: Vec<&str> = value["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["Sid"].as_str().unwrap())
        .collect();
    assert_eq!(sids, ["DenyHttp", CLOUDFRONT_READ_SID]);
    assert!(grants_cloudfront(&policy, "shop-site", DIST));
    assert!(!grants_cloudfront(&existing, "shop-site", DIST));
}

#[test]
fn a_grant_without_the_source_condition_does_not_count() {
    let open = serde_json::json!({
        "Statement": {"Effect": "Allow", "Principal": {"Service": ["cloudfront.amazonaws.com"]},
                      "Action": ["s3:GetObject"], "Resource": ["arn:aws:s3:::shop-site/*"]}
    })
    .to_string();
    assert!(!grants_cloudfront(&open, "shop-site", DIST));
    // The same statement with the condition, written with lists and a single statement object.
    let scoped = serde_json::json!({
        "Statement": {"Effect": "Allow", "Principal": {"Service": ["cloudfront.amazonaws.com"]},
                      "Action": ["s3:GetObject"], "Resource": ["arn:aws:s3:::shop-site/*"],
                      "Condition": {"StringEquals": {"AWS:SourceArn": [DIST]}}}
    })
    .to_string();
    assert!(grants_cloudfront(&scoped, "shop-site", DIST));
}

#[test]
fn unreadable_policies_are_refused_not_overwritten() {
    assert!(matches!(
        cloudfront_read_policy(Some("{not json"), "b", DIST),
        Err(PolicyError::NotAnObject(_))
    ));
    assert!(matches!(
        cloudfront_read_policy(Some(r#"{"Statement": 3}"#), "b", DIST),
        Err(PolicyError::BadStatements)
    ));
    assert!(!grants_cloudfront("[]", "b", DIST));
}

#[test]
fn the_partition_comes_from_the_distribution() {
    let china = "arn:aws-cn:cloudfront::123456789012:distribution/E1";
    let policy = cloudfront_read_policy(None, "site", china).unwrap();
    assert!(policy.contains("arn:aws-cn:s3:::site/*"), "{policy}");
}

#[test]
fn per_key_delete_errors_are_data() {
    use aws_sdk_s3::types::Error as KeyError;
    let errors = [
        KeyError::builder()
            .key("index.html")
            .version_id("v1")
            .code("AccessDenied")
            .message("Access Denied")
            .build(),
        KeyError::builder().build(),
    ];
    assert_eq!(
        delete_failures(&errors),
        [
            DeleteFailure {
                key: "index.html".into(),
                version_id: Some("v1".into()),
                code: Some("AccessDenied".into()),
                message: Some("Access Denied".into()),
            },
            DeleteFailure {
                key: String::new(),
                version_id: None,
                code: None,
                message: None,
            },
        ]
    );
}

#[test]
fn eventbridge_is_toggled_and_other_destinations_are_kept() {
    use aws_sdk_s3::operation::get_bucket_notification_configuration::GetBucketNotificationConfigurationOutput;
    use aws_sdk_s3::types::{Event, EventBridgeConfiguration, QueueConfiguration};
    let queue = QueueConfiguration::builder()
        .queue_arn("arn:aws:sqs:us-east-1:123456789012:uploads")
        .events(Event::from("s3:ObjectCreated:*"))
        .build()
        .unwrap();
    let current = GetBucketNotificationConfigurationOutput::builder()
        .queue_configurations(queue.clone())
        .build();
    let on = bucket::with_eventbridge(&current, true);
    assert!(on.event_bridge_configuration().is_some());
    assert_eq!(on.queue_configurations(), std::slice::from_ref(&queue));

    let enabled = GetBucketNotificationConfigurationOutput::builder()
        .queue_configurations(queue.clone())
        .event_bridge_configuration(EventBridgeConfiguration::builder().build())
        .build();
    let off = bucket::with_eventbridge(&enabled, false);
    assert!(off.event_bridge_configuration().is_none());
    assert_eq!(off.queue_configurations(), [queue]);
}
