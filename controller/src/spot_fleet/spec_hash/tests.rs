//! The hash is stable, ignores the order of sets and everything that is not an instance's
//! definition, and changes with every field that is.

use stagehand_crds::SpotFleetSpec;
use stagehand_crds::spot_fleet::ReplacementStrategy;

use super::*;

pub(crate) fn spec() -> SpotFleetSpec {
    serde_json::from_value(serde_json::json!({
        "region": "eu-west-1",
        "capacity": 3,
        "instanceTypes": ["t3.small", "t3a.small"],
        "imageId": "ami-0123456789abcdef0",
        "subnetIds": ["subnet-0aaaaaaaa", "subnet-0bbbbbbbb"],
        "securityGroupIds": ["sg-0aaaaaaaa", "sg-0bbbbbbbb"],
        "iamInstanceProfile": "worker",
        "keyName": "break-glass",
        "tags": {"team": "shop"},
        "maxPrice": "0.0104"
    }))
    .unwrap()
}

const USER_DATA: Option<&str> = Some("#!/bin/sh\necho hi\n");

fn hash(spec: &SpotFleetSpec) -> String {
    spec_hash(spec, USER_DATA)
}

#[test]
fn stable_hex_sha256() {
    let first = hash(&spec());
    assert_eq!(first, hash(&spec()));
    assert_eq!(first.len(), 64);
    assert!(
        first
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    );
    // Pinned: a change here changes every fleet's hash and needs a new SPEC_HASH_VERSION.
    assert_eq!(SPEC_HASH_VERSION, "1");
}

#[test]
fn sets_are_order_independent() {
    let mut reordered = spec();
    reordered.instance_types.reverse();
    reordered.subnet_ids.reverse();
    reordered.security_group_ids.reverse();
    assert_eq!(hash(&reordered), hash(&spec()));
}

#[test]
fn every_defining_field_changes_the_hash() {
    type Edit = fn(&mut SpotFleetSpec);
    let edits: [(&str, Edit); 12] = [
        ("image", |s| s.image_id = "ami-0fedcba9876543210".into()),
        ("instance type added", |s| {
            s.instance_types.push("m5.large".into());
        }),
        ("instance type replaced", |s| {
            s.instance_types[1] = "m5.large".into();
        }),
        ("subnet", |s| s.subnet_ids.truncate(1)),
        ("security group", |s| {
            s.security_group_ids.push("sg-0cccccccc".into());
        }),
        ("profile", |s| s.iam_instance_profile = Some("other".into())),
        ("profile removed", |s| s.iam_instance_profile = None),
        ("key", |s| s.key_name = None),
        ("tag value", |s| {
            s.tags.insert("team".into(), "payments".into());
        }),
        ("tag added", |s| {
            s.tags.insert("env".into(), "prod".into());
        }),
        ("max price", |s| s.max_price = Some("0.02".into())),
        ("max price removed", |s| s.max_price = None),
    ];
    let base = hash(&spec());
    for (name, edit) in edits {
        let mut changed = spec();
        edit(&mut changed);
        assert_ne!(hash(&changed), base, "{name}");
    }
    assert_ne!(
        spec_hash(&spec(), Some("#!/bin/sh\necho bye\n")),
        base,
        "user data"
    );
    assert_ne!(spec_hash(&spec(), None), base, "user data removed");
    assert_ne!(
        spec_hash(&spec(), None),
        spec_hash(&spec(), Some("")),
        "none vs empty"
    );
}

#[test]
fn management_fields_leave_the_hash_alone() {
    type Edit = fn(&mut SpotFleetSpec);
    let edits: [(&str, Edit); 8] = [
        ("capacity", |s| s.capacity = 10),
        ("strategy", |s| {
            s.replacement.strategy = ReplacementStrategy::Recreate;
        }),
        ("max surge", |s| s.replacement.max_surge = 5),
        ("max unavailable", |s| s.replacement.max_unavailable = 2),
        ("health check", |s| s.health_check.tcp_port = Some(8080)),
        ("grace", |s| s.health_check.grace_period_seconds = 60),
        ("interruption queue", |s| {
            s.interruption_queue = Some("spot-warnings".into());
        }),
        ("adopt", |s| s.lifecycle.adopt = true),
    ];
    let base = hash(&spec());
    for (name, edit) in edits {
        let mut changed = spec();
        edit(&mut changed);
        assert_eq!(hash(&changed), base, "{name}");
    }
}

#[test]
fn framing_is_unambiguous() {
    // One value split in two, or moved between neighbouring fields, frames differently.
    let mut split = spec();
    split.tags = [("ab".to_owned(), "c".to_owned())].into();
    let mut moved = spec();
    moved.tags = [("a".to_owned(), "bc".to_owned())].into();
    assert_ne!(hash(&split), hash(&moved));
    let mut key_only = spec();
    key_only.key_name = Some("x".into());
    key_only.iam_instance_profile = None;
    let mut profile_only = spec();
    profile_only.key_name = None;
    profile_only.iam_instance_profile = Some("x".into());
    assert_ne!(hash(&key_only), hash(&profile_only));
}

#[test]
fn tags_carry_hash_and_version() {
    let tags = spec_hash_tags("abc");
    assert_eq!(tags.get(SPEC_HASH_TAG).map(String::as_str), Some("abc"));
    assert_eq!(
        tags.get(SPEC_HASH_VERSION_TAG).map(String::as_str),
        Some(SPEC_HASH_VERSION)
    );
}

#[test]
fn desired_hashes_the_rendered_document() {
    let mut with_files: SpotFleetSpec = spec();
    with_files.files = vec![stagehand_crds::spot_fleet::FileSpec {
        path: "/etc/motd".into(),
        content: "hi\n".into(),
        permissions: "0644".into(),
        owner: "root:root".into(),
    }];
    let wanted = desired(&with_files).unwrap();
    let rendered = wanted.user_data.clone().unwrap();
    assert!(rendered.starts_with("#cloud-config\n"));
    assert_eq!(wanted.hash, spec_hash(&with_files, Some(&rendered)));
    assert_eq!(desired(&spec()).unwrap().user_data, None);
    // Too large a document is an error, not a hash.
    let mut huge = spec();
    huge.user_data = Some("x".repeat(cloud_init::USER_DATA_LIMIT_BYTES + 1));
    assert!(matches!(
        desired(&huge),
        Err(CloudInitError::TooLarge { .. })
    ));
}
