//! Every reason an instance is replaced, one small predicate each, comparing one desired thing
//! with one observed thing. An instance is never patched: whatever differs, a new one is
//! launched and the old one terminated.
//!
//! An instance terminated or shutting down — by Stagehand, by AWS, or by someone's hand — is not
//! replaced as such: it is [`is_gone`], no longer counted, and the strategy launches to restore
//! capacity.

use stagehand_crds::spot_fleet::HealthCheckSpec;
use stagehand_crds::{SPEC_HASH_TAG, SPEC_HASH_VERSION_TAG, SpotFleetSpec};

use crate::spot_fleet::observed::{
    Ec2Checks, InstanceState, ObservedInstance, ProfileAttachment, TcpCheck,
};

/// Why an instance is out of date. The order is the order of urgency: the first that applies is
/// the one reported, and healthy out-of-date instances are terminated in this order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ReplacementReason {
    /// A spot interruption warning: AWS takes the instance in about two minutes.
    InterruptionNotice,
    /// Stopped or stopping (by hand, or by a spot `stop` behaviour): serves nothing.
    Stopped,
    /// Changed by hand in a way `DescribeInstances` shows.
    HandEdited(HandEdit),
    /// Launched from another spec: its hash differs under the same hash version (or it has none).
    SpecHashDrifted,
    /// Launched more than the grace period ago and still not healthy: a replacement that never
    /// came up, or an instance whose status checks are impaired.
    UnhealthyPastGrace,
    /// A rebalance recommendation: elevated risk of interruption; replaced early.
    RebalanceRecommendation,
}

/// What was changed by hand.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum HandEdit {
    InstanceType,
    Image,
    Subnet,
    SecurityGroups,
    InstanceProfile,
}

impl ReplacementReason {
    /// The `reason` label of the replacements metric.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::InterruptionNotice => "interruption",
            Self::Stopped => "stopped",
            Self::HandEdited(HandEdit::InstanceType) => "hand_edit_instance_type",
            Self::HandEdited(HandEdit::Image) => "hand_edit_image",
            Self::HandEdited(HandEdit::Subnet) => "hand_edit_subnet",
            Self::HandEdited(HandEdit::SecurityGroups) => "hand_edit_security_groups",
            Self::HandEdited(HandEdit::InstanceProfile) => "hand_edit_instance_profile",
            Self::SpecHashDrifted => "spec_hash",
            Self::UnhealthyPastGrace => "unhealthy",
            Self::RebalanceRecommendation => "rebalance",
        }
    }
}

/// What the plan needs to judge one instance besides the instance: the spec, the desired hash,
/// and the notices observe found for it.
#[derive(Clone, Copy, Debug)]
pub struct Judge<'a> {
    pub spec: &'a SpotFleetSpec,
    pub desired_hash: &'a str,
    pub hash_version: &'a str,
    pub interrupted: bool,
    pub rebalance: bool,
}

/// The first reason `instance` must be replaced, if any. Reading this function tells every
/// reason Stagehand replaces an instance.
pub fn replacement_reason(
    judge: &Judge<'_>,
    instance: &ObservedInstance,
) -> Option<ReplacementReason> {
    let spec = judge.spec;
    if judge.interrupted {
        return Some(ReplacementReason::InterruptionNotice);
    }
    if is_stopped(instance) {
        return Some(ReplacementReason::Stopped);
    }
    if let Some(edit) = hand_edit(spec, instance) {
        return Some(ReplacementReason::HandEdited(edit));
    }
    if is_spec_hash_drifted(instance, judge.desired_hash, judge.hash_version) {
        return Some(ReplacementReason::SpecHashDrifted);
    }
    if is_unhealthy_past_grace(&spec.health_check, instance) {
        return Some(ReplacementReason::UnhealthyPastGrace);
    }
    if judge.rebalance {
        return Some(ReplacementReason::RebalanceRecommendation);
    }
    None
}

/// The first field changed by hand, in the order of [`HandEdit`].
pub fn hand_edit(spec: &SpotFleetSpec, instance: &ObservedInstance) -> Option<HandEdit> {
    [
        (
            is_instance_type_edited(spec, instance),
            HandEdit::InstanceType,
        ),
        (is_image_edited(spec, instance), HandEdit::Image),
        (is_subnet_edited(spec, instance), HandEdit::Subnet),
        (
            are_security_groups_edited(spec, instance),
            HandEdit::SecurityGroups,
        ),
        (
            is_instance_profile_edited(spec, instance),
            HandEdit::InstanceProfile,
        ),
    ]
    .into_iter()
    .find_map(|(edited, edit)| edited.then_some(edit))
}

/// Shutting down or terminated: no longer part of the fleet's capacity.
pub fn is_gone(instance: &ObservedInstance) -> bool {
    !instance.state.is_live()
}

pub fn is_stopped(instance: &ObservedInstance) -> bool {
    matches!(
        instance.state,
        InstanceState::Stopping | InstanceState::Stopped
    )
}

/// The hash differs under the same version. An instance without a hash tag is out of date (what
/// it runs cannot be known: adopted, or its tag removed by hand). Under another version (or
/// none) the hash is not compared: the scheme changed, and [`needs_restamp`] re-tags it.
pub fn is_spec_hash_drifted(
    instance: &ObservedInstance,
    desired_hash: &str,
    version: &str,
) -> bool {
    match (
        instance.tags.get(SPEC_HASH_TAG),
        instance.tags.get(SPEC_HASH_VERSION_TAG),
    ) {
        (None, _) => true,
        (Some(hash), Some(v)) if v == version => hash != desired_hash,
        (Some(_), _) => false,
    }
}

/// Tagged under another hash version: re-tag, replace nothing. As with Karpenter's hash
/// versions, a spec change made together with a version bump is not seen through the hash for
/// these instances; the hand-edit predicates still compare what `DescribeInstances` shows.
pub fn needs_restamp(instance: &ObservedInstance, version: &str) -> bool {
    instance.tags.contains_key(SPEC_HASH_TAG)
        && instance.tags.get(SPEC_HASH_VERSION_TAG).map(String::as_str) != Some(version)
}

/// A type outside the spec's list: changed while stopped.
pub fn is_instance_type_edited(spec: &SpotFleetSpec, instance: &ObservedInstance) -> bool {
    instance
        .instance_type
        .as_ref()
        .is_some_and(|t| !spec.instance_types.contains(t))
}

pub fn is_image_edited(spec: &SpotFleetSpec, instance: &ObservedInstance) -> bool {
    instance
        .image_id
        .as_ref()
        .is_some_and(|image| *image != spec.image_id)
}

pub fn is_subnet_edited(spec: &SpotFleetSpec, instance: &ObservedInstance) -> bool {
    instance
        .subnet_id
        .as_ref()
        .is_some_and(|subnet| !spec.subnet_ids.contains(subnet))
}

/// Compared as sets, and only when the spec names groups: without them EC2 attaches the VPC's
/// default group, whose id the spec does not know.
pub fn are_security_groups_edited(spec: &SpotFleetSpec, instance: &ObservedInstance) -> bool {
    if spec.security_group_ids.is_empty() {
        return false;
    }
    instance.security_group_ids.as_ref().is_some_and(|groups| {
        groups.len() != spec.security_group_ids.len()
            || spec.security_group_ids.iter().any(|g| !groups.contains(g))
    })
}

/// The spec names a profile by name or ARN; EC2 reports its ARN.
pub fn is_instance_profile_edited(spec: &SpotFleetSpec, instance: &ObservedInstance) -> bool {
    match (&instance.iam_instance_profile, &spec.iam_instance_profile) {
        (None, _) | (Some(ProfileAttachment::None), None) => false,
        (Some(ProfileAttachment::None), Some(_)) | (Some(ProfileAttachment::Arn(_)), None) => true,
        (Some(ProfileAttachment::Arn(arn)), Some(wanted)) => !profile_matches(arn, wanted),
    }
}

fn profile_matches(arn: &str, wanted: &str) -> bool {
    if wanted.starts_with("arn:") {
        arn == wanted
    } else {
        arn.rsplit('/').next() == Some(wanted)
    }
}

/// Running and passing the checks the spec asks for.
pub fn is_healthy(check: &HealthCheckSpec, instance: &ObservedInstance) -> bool {
    instance.state == InstanceState::Running
        && (!check.ec2_status_checks || instance.ec2_checks == Ec2Checks::Ok)
        && (check.tcp_port.is_none() || instance.tcp == TcpCheck::Open)
}

/// Pending or running past the grace period without being healthy. Within the grace period an
/// instance is given time, impaired or not: status checks take minutes to settle.
pub fn is_unhealthy_past_grace(check: &HealthCheckSpec, instance: &ObservedInstance) -> bool {
    instance.past_grace
        && matches!(
            instance.state,
            InstanceState::Pending | InstanceState::Running
        )
        && !is_healthy(check, instance)
}
