//! What observe gathers for one fleet: plain data the plan reads. Everything that depends on the
//! clock (whether an instance is past its grace period) is decided by observe and stored here as
//! a fact, so the plan stays a function of its inputs.

use std::collections::{BTreeMap, BTreeSet};

use crate::aws::ec2::{InstanceHealth, InstanceInfo, SpecRefusal};

/// The fleet as observed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Observed {
    /// The instances attributed to this fleet: those tagged with its owner, and candidates for
    /// adoption (pending or running, no owner tag, `Name` tag `<namespace>/<name>` of the
    /// fleet). Terminated instances stay listed by EC2 for a while; they are here too.
    pub instances: Vec<ObservedInstance>,
    /// Instances with a pending spot interruption warning (about two minutes left).
    pub interruption_notices: BTreeSet<String>,
    /// Instances with a rebalance recommendation (elevated interruption risk).
    pub rebalance_recommendations: BTreeSet<String>,
    /// Offerings a recent launch found without capacity, remembered for a few minutes so the next
    /// launch avoids them instead of looping on one dead offering.
    pub unavailable_offerings: BTreeSet<Offering>,
    /// The availability zone of each of the spec's subnets, when observe knows it: with it the
    /// plan can tell that every offering of the spec is out of capacity, and wait instead of
    /// launching into certain failure.
    pub subnet_zones: BTreeMap<String, String>,
    /// The errors of the most recent launch (its `CreateFleet` errors), for `CapacityReady`.
    pub launch_errors: Vec<LaunchError>,
    /// Seconds before the next launch may be tried, set by observe (which keeps the failure
    /// count and reads the clock) while recent launches failed or their instances never came
    /// up: the plan waits instead of launching, so a dead offering or a broken image is not
    /// retried in a loop.
    pub launch_backoff_seconds: Option<u64>,
    /// The last time EC2 refused something the spec names, within the recheck period: the plan
    /// stalls on it while the desired spec hash is the refused one.
    pub spec_refusal: Option<SpecRefusal>,
    /// How the event feed's poll of `spec.interruptionQueue` stands; `None` without one.
    pub interruption_queue: Option<QueueFeedState>,
    /// The fleet's launch template as the region's launch cache knows it (read or written by a
    /// recent launch; no call is made for it), for pruning the versions no instance uses.
    /// `None` when not known: nothing is pruned then.
    pub template: Option<TemplateVersions>,
}

/// A fleet's launch template and the versions Stagehand wrote in it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TemplateVersions {
    pub template_id: String,
    /// EC2 refuses to delete the default version (the template's first, as Stagehand never
    /// changes it): it is kept.
    pub default_version: Option<i64>,
    /// Spec hash (the version's description) → version number. Versions without a spec hash in
    /// their description (added by hand) are not listed, so never pruned.
    pub versions: BTreeMap<String, i64>,
}

/// How the event feed's poll of the fleet's interruption queue stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QueueFeedState {
    /// Not polled yet (the feed starts a poller when the first fleet names the queue).
    Starting,
    /// The last poll answered.
    Polling,
    /// It did not: why (`QueueNotFound`, `AccessDenied`, `PollFailed`) and what to fix.
    Failing { reason: String, message: String },
}

impl Observed {
    pub fn instance(&self, id: &str) -> Option<&ObservedInstance> {
        self.instances.iter().find(|i| i.id == id)
    }
}

/// An instance type in an availability zone: what EC2 has or lacks spot capacity for.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Offering {
    pub instance_type: String,
    pub zone: String,
}

/// One error of a launch, as EC2 returned it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LaunchError {
    /// `InsufficientInstanceCapacity`, `UnfulfillableCapacity`, `MaxSpotInstanceCountExceeded`, ...
    pub code: String,
    pub message: String,
    /// The offering it concerns, when EC2 says.
    pub offering: Option<Offering>,
}

/// EC2's instance states.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum InstanceState {
    #[default]
    Pending,
    Running,
    ShuttingDown,
    Terminated,
    Stopping,
    Stopped,
}

impl InstanceState {
    /// From DescribeInstances' state name; an unknown name is `None`.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "pending" => Self::Pending,
            "running" => Self::Running,
            "shutting-down" => Self::ShuttingDown,
            "terminated" => Self::Terminated,
            "stopping" => Self::Stopping,
            "stopped" => Self::Stopped,
            _ => return None,
        })
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::ShuttingDown => "shutting-down",
            Self::Terminated => "terminated",
            Self::Stopping => "stopping",
            Self::Stopped => "stopped",
        }
    }

    /// Still an instance of the fleet: counted against capacity and `capacity + maxSurge`.
    pub const fn is_live(self) -> bool {
        matches!(
            self,
            Self::Pending | Self::Running | Self::Stopping | Self::Stopped
        )
    }

    /// Going away but still listed: `Recreate` waits for these to be gone.
    pub const fn is_shutting_down(self) -> bool {
        matches!(self, Self::ShuttingDown)
    }
}

/// EC2's two status checks, summed up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Ec2Checks {
    /// Not yet known: `initializing`, `insufficient-data`, or not looked at.
    #[default]
    Initializing,
    Ok,
    Impaired,
}

impl Ec2Checks {
    /// Impaired if either check is; ok only when both are.
    pub fn from_health(health: &InstanceHealth) -> Self {
        let checks = [
            health.instance_status.as_deref(),
            health.system_status.as_deref(),
        ];
        if checks.contains(&Some("impaired")) {
            Self::Impaired
        } else if health.is_healthy() {
            Self::Ok
        } else {
            Self::Initializing
        }
    }
}

/// The TCP health check (`healthCheck.tcpPort`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TcpCheck {
    /// Not yet: no port declared, not running, EC2 checks not passed yet, no address, or not
    /// probed this round.
    #[default]
    NotChecked,
    /// The port accepted a connection.
    Open,
    /// Refused, or no answer within the connect timeout: not healthy (yet; within the grace
    /// period the instance is given time).
    Closed,
    /// Not dialled: the address is outside 127.0.0.0/8 and the controller runs loopback-only
    /// (tests, demo, CI). The round reports it instead of judging the instance.
    NotAllowed,
}

/// The instance profile EC2 reports for an instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProfileAttachment {
    None,
    /// The profile's ARN (`DescribeInstances` gives the ARN, not the name).
    Arn(String),
}

/// One instance as observed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObservedInstance {
    pub id: String,
    pub state: InstanceState,
    pub instance_type: Option<String>,
    pub image_id: Option<String>,
    /// `None`: not reported by observe (never read as a hand edit).
    pub subnet_id: Option<String>,
    pub zone: Option<String>,
    /// The private IPv4 address, where the TCP health check connects.
    pub private_ip: Option<String>,
    /// `None`: not reported by observe (never read as a hand edit).
    pub security_group_ids: Option<BTreeSet<String>>,
    /// `None`: not reported by observe (never read as a hand edit).
    pub iam_instance_profile: Option<ProfileAttachment>,
    /// Ownership and spec-hash tags among them.
    pub tags: BTreeMap<String, String>,
    pub launched_at: Option<jiff::Timestamp>,
    /// Launched more than `healthCheck.gracePeriodSeconds` ago (decided by observe, which may
    /// read the clock).
    pub past_grace: bool,
    pub ec2_checks: Ec2Checks,
    pub tcp: TcpCheck,
}

impl ObservedInstance {
    /// What `DescribeInstances` gives, security groups and instance profile included (compared
    /// with the spec: a hand edit is replaced); observe fills in the rest (health, grace). An
    /// unknown state reads as `pending`: not healthy, and
    /// replaced only once past its grace period, like any instance that never came up.
    pub fn from_info(info: &InstanceInfo) -> Self {
        Self {
            id: info.id.clone(),
            state: InstanceState::parse(&info.state).unwrap_or_default(),
            instance_type: info.instance_type.clone(),
            image_id: info.image_id.clone(),
            subnet_id: info.subnet_id.clone(),
            zone: info.availability_zone.clone(),
            private_ip: info.private_ip.clone(),
            security_group_ids: Some(info.security_group_ids.iter().cloned().collect()),
            iam_instance_profile: Some(
                info.iam_instance_profile_arn
                    .clone()
                    .map_or(ProfileAttachment::None, ProfileAttachment::Arn),
            ),
            tags: info.tags.clone(),
            launched_at: info.launch_time,
            ..Self::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_and_unknown_ones_are_none() {
        for state in [
            InstanceState::Pending,
            InstanceState::Running,
            InstanceState::ShuttingDown,
            InstanceState::Terminated,
            InstanceState::Stopping,
            InstanceState::Stopped,
        ] {
            assert_eq!(InstanceState::parse(state.as_str()), Some(state));
        }
        assert_eq!(InstanceState::parse("hibernating"), None);
        let live: Vec<bool> = [
            "pending",
            "running",
            "shutting-down",
            "terminated",
            "stopping",
            "stopped",
        ]
        .iter()
        .filter_map(|s| InstanceState::parse(s))
        .map(InstanceState::is_live)
        .collect();
        assert_eq!(live, [true, true, false, false, true, true]);
    }

    #[test]
    fn ec2_checks_table() {
        let health = |instance: Option<&str>, system: Option<&str>| InstanceHealth {
            id: "i-1".into(),
            state: "running".into(),
            instance_status: instance.map(str::to_owned),
            system_status: system.map(str::to_owned),
        };
        let rows = [
            (Some("ok"), Some("ok"), Ec2Checks::Ok),
            (Some("ok"), Some("initializing"), Ec2Checks::Initializing),
            (Some("impaired"), Some("ok"), Ec2Checks::Impaired),
            (Some("initializing"), Some("impaired"), Ec2Checks::Impaired),
            (Some("insufficient-data"), None, Ec2Checks::Initializing),
            (None, None, Ec2Checks::Initializing),
        ];
        for (instance, system, want) in rows {
            assert_eq!(
                Ec2Checks::from_health(&health(instance, system)),
                want,
                "{instance:?}/{system:?}"
            );
        }
    }

    #[test]
    fn from_info_keeps_what_describe_instances_gives() {
        let info = InstanceInfo {
            id: "i-1".into(),
            state: "running".into(),
            instance_type: Some("t3.small".into()),
            image_id: Some("ami-0123456789abcdef0".into()),
            subnet_id: Some("subnet-0123456789abcdef0".into()),
            availability_zone: Some("eu-west-1a".into()),
            private_ip: Some("10.0.1.7".into()),
            tags: BTreeMap::from([("team".into(), "shop".into())]),
            ..InstanceInfo::default()
        };
        let observed = ObservedInstance::from_info(&info);
        assert_eq!(
            observed.subnet_id.as_deref(),
            Some("subnet-0123456789abcdef0")
        );
        assert_eq!(observed.zone.as_deref(), Some("eu-west-1a"));
        assert_eq!(observed.private_ip.as_deref(), Some("10.0.1.7"));
        assert_eq!(observed.id, "i-1");
        assert_eq!(observed.state, InstanceState::Running);
        assert_eq!(observed.instance_type.as_deref(), Some("t3.small"));
        assert_eq!(observed.tags, info.tags);
        // Read as EC2 lists them: no groups, no profile.
        assert_eq!(observed.security_group_ids, Some(BTreeSet::new()));
        assert_eq!(observed.iam_instance_profile, Some(ProfileAttachment::None));
        let edited = InstanceInfo {
            security_group_ids: vec!["sg-1".into(), "sg-2".into()],
            iam_instance_profile_arn: Some("arn:aws:iam::1:instance-profile/p".into()),
            ..info.clone()
        };
        let observed_edited = ObservedInstance::from_info(&edited);
        assert_eq!(
            observed_edited.security_group_ids,
            Some(BTreeSet::from(["sg-1".to_owned(), "sg-2".to_owned()]))
        );
        assert_eq!(
            observed_edited.iam_instance_profile,
            Some(ProfileAttachment::Arn(
                "arn:aws:iam::1:instance-profile/p".into()
            ))
        );
        // Never healthy, not past grace until observe says so.
        assert_eq!(observed.ec2_checks, Ec2Checks::Initializing);
        assert!(!observed.past_grace);
        let unknown = InstanceInfo {
            state: "hibernating".into(),
            ..info
        };
        assert_eq!(
            ObservedInstance::from_info(&unknown).state,
            InstanceState::Pending
        );
    }
}
