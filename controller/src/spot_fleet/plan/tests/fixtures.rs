//! Scenario builders: a fleet of three in-date healthy instances is the starting point, and
//! every builder changes one thing about it, so a row reads as the situation it tests
//! (`healthy("i-1").outdated()`, `pending("i-4")`, `spec_with(|s| s.capacity = 5)`).

use std::collections::{BTreeMap, BTreeSet};

use stagehand_crds::spot_fleet::ReplacementStrategy;
use stagehand_crds::{SPEC_HASH_TAG, SPEC_HASH_VERSION_TAG, SpotFleetSpec};

use crate::aws::tags::ownership_tags;
use crate::base::gates::ActGate;
use crate::spot_fleet::observed::{
    Ec2Checks, InstanceState, Observed, ObservedInstance, Offering, ProfileAttachment, TcpCheck,
};
use crate::spot_fleet::plan::{
    Action, LaunchReason, Plan, PlanContext, ReplacementReason, TerminateReason, plan,
};
use crate::spot_fleet::spec_hash::{SPEC_HASH_VERSION, spec_hash_tags};

pub const OWNER: &str = "shop/SpotFleet/workers";
pub const CLUSTER: &str = "cluster-1";
pub const HASH: &str = "hash-current";
pub const OLD_HASH: &str = "hash-old";
pub const PROFILE_ARN: &str = "arn:aws:iam::123456789012:instance-profile/worker";

/// Three instances, Surge with `maxSurge: 1`, `maxUnavailable: 0`.
pub fn spec() -> SpotFleetSpec {
    serde_json::from_value(serde_json::json!({
        "region": "eu-west-1",
        "capacity": 3,
        "instanceTypes": ["t3.small", "t3a.small"],
        "imageId": "ami-0123456789abcdef0",
        "subnetIds": ["subnet-0aaaaaaaa", "subnet-0bbbbbbbb"],
        "securityGroupIds": ["sg-0aaaaaaaa"],
        "iamInstanceProfile": "worker",
    }))
    .unwrap()
}

pub fn spec_with(edit: impl FnOnce(&mut SpotFleetSpec)) -> SpotFleetSpec {
    let mut spec = spec();
    edit(&mut spec);
    spec
}

pub fn recreate(capacity: i32) -> SpotFleetSpec {
    spec_with(|s| {
        s.capacity = capacity;
        s.replacement.strategy = ReplacementStrategy::Recreate;
    })
}

pub fn context() -> PlanContext {
    PlanContext {
        owner: OWNER.to_owned(),
        cluster_id: CLUSTER.to_owned(),
        generation: 1,
        gate: ActGate::Act,
        desired_hash: HASH.to_owned(),
        hash_version: SPEC_HASH_VERSION.to_owned(),
    }
}

/// The tags an instance launched from the current spec carries.
pub fn current_tags() -> BTreeMap<String, String> {
    let mut tags = ownership_tags(OWNER, CLUSTER);
    tags.extend(spec_hash_tags(HASH));
    tags
}

/// Running, in date, passing its checks, past its grace period; launched `n` minutes into the
/// scenario where `n` is the number in its id (`i-3` is newer than `i-1`).
pub fn healthy(id: &str) -> ObservedInstance {
    let minute: i64 = id.trim_start_matches("i-").parse().unwrap_or(0);
    ObservedInstance {
        id: id.to_owned(),
        state: InstanceState::Running,
        instance_type: Some("t3.small".to_owned()),
        image_id: Some("ami-0123456789abcdef0".to_owned()),
        subnet_id: Some("subnet-0aaaaaaaa".to_owned()),
        zone: Some("eu-west-1a".to_owned()),
        private_ip: Some("10.0.1.7".to_owned()),
        security_group_ids: Some(BTreeSet::from(["sg-0aaaaaaaa".to_owned()])),
        iam_instance_profile: Some(ProfileAttachment::Arn(PROFILE_ARN.to_owned())),
        tags: current_tags(),
        launched_at: Some(jiff::Timestamp::from_second(1_800_000_000 + minute * 60).unwrap()),
        past_grace: true,
        ec2_checks: Ec2Checks::Ok,
        tcp: TcpCheck::NotChecked,
    }
}

/// Just launched from the current spec: pending, checks initializing, within its grace period.
pub fn pending(id: &str) -> ObservedInstance {
    ObservedInstance {
        state: InstanceState::Pending,
        ec2_checks: Ec2Checks::Initializing,
        past_grace: false,
        ..healthy(id)
    }
}

/// One change to an instance, chained on a builder.
pub trait Scenario: Sized {
    fn edit(self, edit: impl FnOnce(&mut ObservedInstance)) -> Self;

    /// Launched from an older spec (same hash version).
    fn outdated(self) -> Self {
        self.edit(|i| {
            i.tags.insert(SPEC_HASH_TAG.into(), OLD_HASH.into());
        })
    }
    fn in_state(self, state: InstanceState) -> Self {
        self.edit(|i| i.state = state)
    }
    fn impaired(self) -> Self {
        self.edit(|i| i.ec2_checks = Ec2Checks::Impaired)
    }
    fn within_grace(self) -> Self {
        self.edit(|i| i.past_grace = false)
    }
    fn untagged(self) -> Self {
        self.edit(|i| i.tags.clear())
    }
    fn owned_by(self, owner: &str, cluster: &str) -> Self {
        self.edit(|i| i.tags.extend(ownership_tags(owner, cluster)))
    }
    fn hash_version(self, version: &str) -> Self {
        self.edit(|i| {
            i.tags.insert(SPEC_HASH_VERSION_TAG.into(), version.into());
        })
    }
}

impl Scenario for ObservedInstance {
    fn edit(mut self, edit: impl FnOnce(&mut ObservedInstance)) -> Self {
        edit(&mut self);
        self
    }
}

pub fn fleet(instances: Vec<ObservedInstance>) -> Observed {
    Observed {
        instances,
        ..Observed::default()
    }
}

/// The steady state: `i-1`..`i-3`, healthy and in date.
pub fn steady() -> Vec<ObservedInstance> {
    vec![healthy("i-1"), healthy("i-2"), healthy("i-3")]
}

pub fn terminate(ids: &[&str], reason: TerminateReason) -> Action {
    Action::Terminate {
        ids: ids.iter().map(|&id| id.to_owned()).collect(),
        reason,
    }
}

pub fn replaced(ids: &[&str], reason: ReplacementReason) -> Action {
    terminate(ids, TerminateReason::Replaced(reason))
}

pub fn launch(count: u32, reason: LaunchReason) -> Action {
    Action::Launch {
        count,
        avoid: Vec::new(),
        reason,
    }
}

pub fn offering(instance_type: &str, zone: &str) -> Offering {
    Offering {
        instance_type: instance_type.to_owned(),
        zone: zone.to_owned(),
    }
}

pub fn plan_for(spec: &SpotFleetSpec, observed: &Observed) -> Plan {
    plan(spec, &context(), observed)
}

/// One row: a scenario and the actions it must give.
pub struct Case {
    pub name: &'static str,
    pub spec: SpotFleetSpec,
    pub observed: Observed,
    pub want: Vec<Action>,
}

pub fn case(
    name: &'static str,
    spec: SpotFleetSpec,
    observed: Observed,
    want: Vec<Action>,
) -> Case {
    Case {
        name,
        spec,
        observed,
        want,
    }
}

pub fn check_table(cases: &[Case]) {
    for case in cases {
        let plan = plan_for(&case.spec, &case.observed);
        assert_eq!(plan.actions, case.want, "{}: {plan:#?}", case.name);
    }
}
