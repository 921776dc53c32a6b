//! What the EC2 adapter returns and takes: plain data, no SDK types, so that a pure plan can
//! read it. Plus the pure rules of EC2's data (instance states, fleet launch errors).

use std::collections::BTreeMap;

/// What to launch with `RunInstances`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LaunchRequest {
    pub image_id: String,
    pub instance_type: String,
    pub subnet_id: Option<String>,
    pub security_group_ids: Vec<String>,
    pub iam_instance_profile: Option<String>,
    pub key_name: Option<String>,
    /// Plain text (cloud-init); encoded here.
    pub user_data: Option<String>,
    /// Written on the instance and its volumes at launch (no untagged window).
    pub tags: BTreeMap<String, String>,
    /// Spot price cap in USD/hour; `None` = on-demand price.
    pub max_price: Option<String>,
    /// Idempotency token: a retried launch with the same token does not launch twice (on AWS;
    /// emulators ignore it, so callers also look by tag before launching).
    pub client_token: Option<String>,
}

/// An instance as described: everything a fleet compares, without a per-instance call.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InstanceInfo {
    pub id: String,
    /// `pending`, `running`, `shutting-down`, `terminated`, `stopping`, `stopped`.
    pub state: String,
    pub instance_type: Option<String>,
    pub image_id: Option<String>,
    /// `spot` for spot instances.
    pub lifecycle: Option<String>,
    pub private_ip: Option<String>,
    pub launch_time: Option<jiff::Timestamp>,
    pub state_reason: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub subnet_id: Option<String>,
    pub availability_zone: Option<String>,
    /// Sorted, so two descriptions of the same groups compare equal.
    pub security_group_ids: Vec<String>,
    /// The ARN (EC2 reports the profile by ARN, whatever the launch named it by).
    pub iam_instance_profile_arn: Option<String>,
    /// The spot request behind a spot instance.
    pub spot_instance_request_id: Option<String>,
    /// The AWS code of why the state last changed (`Server.SpotInstanceTermination`,
    /// `Client.UserInitiatedShutdown`, ...), when EC2 gives one.
    pub state_reason_code: Option<String>,
}

impl InstanceInfo {
    /// Gone or going: not counted as capacity.
    pub fn is_terminating(&self) -> bool {
        matches!(self.state.as_str(), "shutting-down" | "terminated")
    }

    /// Gone for good. EC2 keeps describing a terminated instance for about an hour, which is
    /// how a fleet sees that someone else terminated one of its instances.
    pub fn is_terminated(&self) -> bool {
        self.state == "terminated"
    }

    /// Stopped or on its way: not serving, and a spot instance is never started again by us.
    pub fn is_stopped(&self) -> bool {
        matches!(self.state.as_str(), "stopping" | "stopped")
    }

    pub fn is_spot(&self) -> bool {
        self.lifecycle.as_deref() == Some("spot")
    }

    /// The value of tag `key`.
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags.get(key).map(String::as_str)
    }
}

/// EC2 status checks of one instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceHealth {
    pub id: String,
    pub state: String,
    /// `ok`, `impaired`, `initializing`, `insufficient-data`, `not-applicable`.
    pub instance_status: Option<String>,
    pub system_status: Option<String>,
}

impl InstanceHealth {
    /// Both checks pass.
    pub fn is_healthy(&self) -> bool {
        self.state == "running"
            && self.instance_status.as_deref() == Some("ok")
            && self.system_status.as_deref() == Some("ok")
    }
}

/// What an instance launched from a launch template version runs: one version per spec hash.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LaunchTemplateSpec {
    pub image_id: String,
    /// Usually left out: a fleet names its instance types in the overrides.
    pub instance_type: Option<String>,
    /// Plain text (cloud-init); encoded here.
    pub user_data: Option<String>,
    /// The instance profile, by ARN (`arn:aws:iam::...:instance-profile/...`) or by name.
    pub iam_instance_profile: Option<String>,
    pub key_name: Option<String>,
    pub security_group_ids: Vec<String>,
    /// Written on every instance and volume launched from this version.
    pub tags: BTreeMap<String, String>,
    /// Spot market options in the template, for launches by `RunInstances` from the template.
    /// EC2 Fleet refuses templates that carry market options: for
    /// [`FleetRequest`] leave this `None` and give the price on the overrides.
    pub spot_max_price: Option<String>,
    /// The version's description: where Stagehand stamps the spec hash it stands for, so the
    /// version of a hash is found again without trusting a status write.
    pub description: Option<String>,
}

/// A launch template as described.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LaunchTemplateInfo {
    pub id: String,
    pub name: String,
    pub default_version: Option<i64>,
    pub latest_version: Option<i64>,
    pub tags: BTreeMap<String, String>,
}

/// One version of a launch template.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LaunchTemplateVersionInfo {
    pub template_id: String,
    pub number: i64,
    pub description: Option<String>,
    pub is_default: bool,
    pub image_id: Option<String>,
    /// The tags the version writes on instances at launch (the spec-hash tags among them).
    pub instance_tags: BTreeMap<String, String>,
    pub created_at: Option<jiff::Timestamp>,
}

impl LaunchTemplateVersionInfo {
    /// The tag `key` this version writes on its instances.
    pub fn instance_tag(&self, key: &str) -> Option<&str> {
        self.instance_tags.get(key).map(String::as_str)
    }
}

/// One pool a fleet may launch into: an instance type in a subnet.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct FleetOverride {
    pub instance_type: String,
    pub subnet_id: String,
    /// The subnet's zone when the caller knows it: only used to name the zone of a launch
    /// error that does not say it, never sent (EC2 takes the zone from the subnet).
    pub availability_zone: Option<String>,
}

/// One `CreateFleet` of type `instant`: spot capacity from one launch template version over
/// every pool given, cheapest-with-capacity first (`price-capacity-optimized`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FleetRequest {
    pub launch_template_id: String,
    /// The version number (`$Latest`/`$Default` are not used: a fleet launches what its hash
    /// stands for, not whatever the template says now).
    pub launch_template_version: i64,
    pub overrides: Vec<FleetOverride>,
    /// How many instances to launch.
    pub target_capacity: i32,
    /// Spot price cap in USD/hour per instance; `None` = on-demand price.
    pub max_price: Option<String>,
    /// Written on the fleet request and on every instance launched (on top of what the
    /// template writes), at launch.
    pub tags: BTreeMap<String, String>,
    /// Idempotency token (on AWS; emulators ignore it, so callers also look by tag first).
    pub client_token: Option<String>,
}

/// An instance `CreateFleet` launched.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FleetInstance {
    pub id: String,
    pub instance_type: Option<String>,
    pub subnet_id: Option<String>,
    pub availability_zone: Option<String>,
}

/// A pool `CreateFleet` could not launch into, as EC2 said it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FleetLaunchError {
    /// `InsufficientInstanceCapacity`, `UnfulfillableCapacity`,
    /// `MaxSpotInstanceCountExceeded`, ...
    pub code: String,
    pub message: String,
    pub instance_type: Option<String>,
    pub subnet_id: Option<String>,
    pub availability_zone: Option<String>,
}

/// The codes that say "no capacity for this launch now" (the ones Karpenter also treats as
/// temporary): another pool, or this one a few minutes later, may succeed. `Unsupported` is an
/// instance type not offered in that zone. `MaxSpotInstanceCountExceeded` and
/// `VcpuLimitExceeded` are account quotas rather than a pool's capacity, but EC2 reports them
/// against the pool it tried, and leaving that pool out for a while is still right. Anything
/// else (an invalid parameter, a missing permission) fails the same way everywhere.
pub const CAPACITY_ERROR_CODES: &[&str] = &[
    "InsufficientInstanceCapacity",
    "UnfulfillableCapacity",
    "MaxSpotInstanceCountExceeded",
    "VcpuLimitExceeded",
    "Unsupported",
    "InsufficientFreeAddressesInSubnet",
];

/// The spec field a launch error blames, when EC2 refused something the spec names (an image,
/// a subnet, a security group, a key pair, an instance profile) rather than capacity: nothing
/// will launch until the spec or the account changes, so it is the user's to fix, not a retry.
pub fn refused_spec_field(code: &str, message: &str) -> Option<&'static str> {
    let field = if code.starts_with("InvalidAMIID.") {
        "imageId"
    } else if code.starts_with("InvalidSubnetID.") || code == "InvalidSubnet" {
        "subnetIds"
    } else if code.starts_with("InvalidGroup.")
        || code.starts_with("InvalidGroupId.")
        || code.starts_with("InvalidSecurityGroupID.")
    {
        "securityGroupIds"
    } else if code.starts_with("InvalidKeyPair.") {
        "keyName"
    } else if code.starts_with("InvalidParameterValue")
        && message.to_ascii_lowercase().contains("iaminstanceprofile")
    {
        "iamInstanceProfile"
    } else {
        return None;
    };
    Some(field)
}

/// How long a refusal of a fleet's spec stands before a launch tries the same spec again (the
/// fix may be outside the spec: an image shared, a subnet created).
pub const SPEC_REFUSAL_RECHECK: std::time::Duration = std::time::Duration::from_secs(5 * 60);

/// EC2 refused something a fleet's spec names (see [`refused_spec_field`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecRefusal {
    /// The spec hash of the refused launch: a changed spec is launched at once.
    pub spec_hash: String,
    /// The spec field blamed (`imageId`, `subnetIds`, ...).
    pub field: &'static str,
    /// EC2's error code and message (which names the missing resource).
    pub code: String,
    pub message: String,
}

impl FleetLaunchError {
    /// The pool lacks capacity now (see [`CAPACITY_ERROR_CODES`]).
    pub fn is_capacity(&self) -> bool {
        CAPACITY_ERROR_CODES.contains(&self.code.as_str())
    }

    /// The spec field EC2 blamed, if any (see [`refused_spec_field`]).
    pub fn refused_spec_field(&self) -> Option<&'static str> {
        refused_spec_field(&self.code, &self.message)
    }

    /// The offering (instance type, zone) this error rules out, when it names both.
    pub fn offering(&self) -> Option<(String, String)> {
        Some((self.instance_type.clone()?, self.availability_zone.clone()?))
    }
}

/// What one `CreateFleet` of type `instant` did: launching less than asked, or nothing, is a
/// normal result.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FleetLaunch {
    pub fleet_id: Option<String>,
    pub instances: Vec<FleetInstance>,
    pub errors: Vec<FleetLaunchError>,
}

impl FleetLaunch {
    /// How many of `target` instances were not launched.
    pub fn shortfall(&self, target: i32) -> i32 {
        let launched = i32::try_from(self.instances.len()).unwrap_or(i32::MAX);
        target.saturating_sub(launched).max(0)
    }

    pub fn instance_ids(&self) -> Vec<String> {
        self.instances.iter().map(|i| i.id.clone()).collect()
    }
}

/// Fills in the zone of errors that name only a subnet, from the pools the request gave.
pub fn with_override_zones(
    mut errors: Vec<FleetLaunchError>,
    overrides: &[FleetOverride],
) -> Vec<FleetLaunchError> {
    for error in &mut errors {
        if error.availability_zone.is_some() {
            continue;
        }
        error.availability_zone = overrides
            .iter()
            .find(|o| {
                error.subnet_id.as_deref() == Some(o.subnet_id.as_str())
                    && error
                        .instance_type
                        .as_deref()
                        .is_none_or(|t| t == o.instance_type)
            })
            .and_then(|o| o.availability_zone.clone());
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_needs_running_and_both_checks_ok() {
        let health = |state: &str, instance: &str, system: &str| InstanceHealth {
            id: "i-1".into(),
            state: state.into(),
            instance_status: Some(instance.into()),
            system_status: Some(system.into()),
        };
        assert!(health("running", "ok", "ok").is_healthy());
        assert!(!health("running", "initializing", "ok").is_healthy());
        assert!(!health("running", "ok", "impaired").is_healthy());
        assert!(!health("pending", "ok", "ok").is_healthy());
    }

    #[test]
    fn instance_states() {
        let instance = |state: &str| InstanceInfo {
            state: state.into(),
            ..InstanceInfo::default()
        };
        assert!(instance("terminated").is_terminating());
        assert!(instance("terminated").is_terminated());
        assert!(instance("shutting-down").is_terminating());
        assert!(!instance("shutting-down").is_terminated());
        assert!(instance("stopping").is_stopped());
        assert!(!instance("running").is_stopped());
        assert!(!instance("pending").is_terminating());
    }

    #[test]
    fn capacity_errors_and_the_offering_they_rule_out() {
        let error = FleetLaunchError {
            code: "InsufficientInstanceCapacity".into(),
            instance_type: Some("c5.large".into()),
            subnet_id: Some("subnet-a".into()),
            ..FleetLaunchError::default()
        };
        assert!(error.is_capacity());
        assert_eq!(error.offering(), None, "no zone yet");
        let overrides = [
            FleetOverride {
                instance_type: "c5.large".into(),
                subnet_id: "subnet-b".into(),
                availability_zone: Some("eu-west-1b".into()),
            },
            FleetOverride {
                instance_type: "c5.large".into(),
                subnet_id: "subnet-a".into(),
                availability_zone: Some("eu-west-1a".into()),
            },
        ];
        let errors = with_override_zones(vec![error], &overrides);
        assert_eq!(
            errors[0].offering(),
            Some(("c5.large".into(), "eu-west-1a".into()))
        );
        let invalid = FleetLaunchError {
            code: "InvalidParameterValue".into(),
            ..FleetLaunchError::default()
        };
        assert!(!invalid.is_capacity());
    }

    #[test]
    fn shortfall_counts_what_was_not_launched() {
        let launch = FleetLaunch {
            instances: vec![FleetInstance::default(); 3],
            ..FleetLaunch::default()
        };
        assert_eq!(launch.shortfall(4), 1);
        assert_eq!(launch.shortfall(3), 0);
        assert_eq!(launch.shortfall(2), 0);
    }
}
