//! Each replacement predicate on its own: what it compares, and what it leaves alone.

use std::collections::BTreeSet;

use stagehand_crds::SPEC_HASH_TAG;

use super::fixtures::*;
use crate::spot_fleet::observed::{InstanceState, ObservedInstance, ProfileAttachment, TcpCheck};
use crate::spot_fleet::plan::{
    HandEdit, hand_edit, is_gone, is_healthy, is_spec_hash_drifted, is_unhealthy_past_grace,
    needs_restamp,
};
use crate::spot_fleet::spec_hash::SPEC_HASH_VERSION;

#[test]
fn hand_edit_table() {
    type Edit = fn(&mut ObservedInstance);
    let rows: [(&str, Edit, Option<HandEdit>); 13] = [
        ("as launched", |_| {}, None),
        (
            "type from the list",
            |i| i.instance_type = Some("t3a.small".into()),
            None,
        ),
        (
            "type outside the list",
            |i| i.instance_type = Some("m5.large".into()),
            Some(HandEdit::InstanceType),
        ),
        (
            "image",
            |i| i.image_id = Some("ami-0fedcba9876543210".into()),
            Some(HandEdit::Image),
        ),
        (
            "subnet from the list",
            |i| i.subnet_id = Some("subnet-0bbbbbbbb".into()),
            None,
        ),
        (
            "subnet outside the list",
            |i| i.subnet_id = Some("subnet-0cccccccc".into()),
            Some(HandEdit::Subnet),
        ),
        (
            "a group added",
            |i| {
                i.security_group_ids = Some(BTreeSet::from([
                    "sg-0aaaaaaaa".into(),
                    "sg-0bbbbbbbb".into(),
                ]));
            },
            Some(HandEdit::SecurityGroups),
        ),
        (
            "a group swapped",
            |i| i.security_group_ids = Some(BTreeSet::from(["sg-0bbbbbbbb".into()])),
            Some(HandEdit::SecurityGroups),
        ),
        (
            "profile detached",
            |i| i.iam_instance_profile = Some(ProfileAttachment::None),
            Some(HandEdit::InstanceProfile),
        ),
        (
            "another profile",
            |i| {
                i.iam_instance_profile = Some(ProfileAttachment::Arn(
                    "arn:aws:iam::123456789012:instance-profile/admin".into(),
                ));
            },
            Some(HandEdit::InstanceProfile),
        ),
        (
            "same name under a path",
            |i| {
                i.iam_instance_profile = Some(ProfileAttachment::Arn(
                    "arn:aws:iam::123456789012:instance-profile/team/worker".into(),
                ));
            },
            None,
        ),
        // Not reported by observe: never read as an edit, or a missing field would replace the fleet.
        (
            "nothing reported",
            |i| {
                i.instance_type = None;
                i.image_id = None;
                i.subnet_id = None;
                i.security_group_ids = None;
                i.iam_instance_profile = None;
            },
            None,
        ),
        (
            "two edits: the first in order is named",
            |i| {
                i.image_id = Some("ami-0fedcba9876543210".into());
                i.subnet_id = Some("subnet-0cccccccc".into());
            },
            Some(HandEdit::Image),
        ),
    ];
    for (name, edit, want) in rows {
        let instance = healthy("i-1").edit(edit);
        assert_eq!(hand_edit(&spec(), &instance), want, "{name}");
    }
}

#[test]
fn profile_and_groups_follow_the_spec_form() {
    let by_arn = spec_with(|s| s.iam_instance_profile = Some(PROFILE_ARN.into()));
    assert_eq!(hand_edit(&by_arn, &healthy("i-1")), None);
    let none = spec_with(|s| s.iam_instance_profile = None);
    assert_eq!(
        hand_edit(&none, &healthy("i-1")),
        Some(HandEdit::InstanceProfile)
    );
    let detached = healthy("i-1").edit(|i| i.iam_instance_profile = Some(ProfileAttachment::None));
    assert_eq!(hand_edit(&none, &detached), None);
    // Without groups in the spec EC2 attaches the VPC's default group: nothing to compare.
    let no_groups = spec_with(|s| s.security_group_ids.clear());
    assert_eq!(hand_edit(&no_groups, &healthy("i-1")), None);
}

#[test]
fn spec_hash_and_version_table() {
    let rows: [(&str, ObservedInstance, bool, bool); 5] = [
        ("current", healthy("i-1"), false, false),
        (
            "other hash, same version",
            healthy("i-1").outdated(),
            true,
            false,
        ),
        (
            "other hash, other version",
            healthy("i-1").outdated().hash_version("0"),
            false,
            true,
        ),
        (
            "hash without a version tag",
            healthy("i-1").edit(|i| {
                i.tags.remove(stagehand_crds::SPEC_HASH_VERSION_TAG);
            }),
            false,
            true,
        ),
        (
            "no hash at all: unknowable, replaced",
            healthy("i-1").edit(|i| {
                i.tags.remove(SPEC_HASH_TAG);
            }),
            true,
            false,
        ),
    ];
    for (name, instance, drifted, restamp) in rows {
        assert_eq!(
            is_spec_hash_drifted(&instance, HASH, SPEC_HASH_VERSION),
            drifted,
            "{name}"
        );
        assert_eq!(
            needs_restamp(&instance, SPEC_HASH_VERSION),
            restamp,
            "{name}"
        );
    }
}

#[test]
fn health_table() {
    let tcp = spec_with(|s| s.health_check.tcp_port = Some(8080)).health_check;
    let no_ec2 = spec_with(|s| s.health_check.ec2_status_checks = false).health_check;
    let default = spec().health_check;
    let rows = [
        (
            "running, checks ok",
            default.clone(),
            healthy("i-1"),
            true,
            false,
        ),
        ("pending", default.clone(), pending("i-1"), false, false),
        (
            "pending past grace",
            default.clone(),
            pending("i-1").edit(|i| i.past_grace = true),
            false,
            true,
        ),
        (
            "impaired past grace",
            default.clone(),
            healthy("i-1").impaired(),
            false,
            true,
        ),
        (
            "impaired within grace",
            default.clone(),
            healthy("i-1").impaired().within_grace(),
            false,
            false,
        ),
        (
            "stopped is not unhealthy-past-grace (it is stopped)",
            default.clone(),
            healthy("i-1").in_state(InstanceState::Stopped),
            false,
            false,
        ),
        (
            "tcp port declared, not open yet",
            tcp.clone(),
            healthy("i-1"),
            false,
            true,
        ),
        (
            "tcp port open",
            tcp.clone(),
            healthy("i-1").edit(|i| i.tcp = TcpCheck::Open),
            true,
            false,
        ),
        (
            "tcp port closed within grace: not yet",
            tcp.clone(),
            healthy("i-1")
                .edit(|i| i.tcp = TcpCheck::Closed)
                .within_grace(),
            false,
            false,
        ),
        (
            "tcp port closed past grace",
            tcp.clone(),
            healthy("i-1").edit(|i| i.tcp = TcpCheck::Closed),
            false,
            true,
        ),
        (
            "tcp port open but ec2 checks impaired",
            tcp.clone(),
            healthy("i-1").impaired().edit(|i| i.tcp = TcpCheck::Open),
            false,
            true,
        ),
        (
            "tcp probe not allowed: never healthy",
            tcp,
            healthy("i-1").edit(|i| i.tcp = TcpCheck::NotAllowed),
            false,
            true,
        ),
        (
            "ec2 checks not required",
            no_ec2,
            healthy("i-1").impaired(),
            true,
            false,
        ),
    ];
    for (name, check, instance, want_healthy, want_unhealthy) in rows {
        assert_eq!(is_healthy(&check, &instance), want_healthy, "{name}");
        assert_eq!(
            is_unhealthy_past_grace(&check, &instance),
            want_unhealthy,
            "{name}"
        );
    }
}

#[test]
fn gone_is_shutting_down_or_terminated() {
    for (state, gone) in [
        (InstanceState::Pending, false),
        (InstanceState::Running, false),
        (InstanceState::Stopping, false),
        (InstanceState::Stopped, false),
        (InstanceState::ShuttingDown, true),
        (InstanceState::Terminated, true),
    ] {
        assert_eq!(is_gone(&healthy("i-1").in_state(state)), gone, "{state:?}");
    }
}
