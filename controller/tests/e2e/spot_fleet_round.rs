//! SpotFleet rounds (`stagehand::spot_fleet::round::round`, exactly what the reconciler runs)
//! against moto through the counting proxy, without Kubernetes: a fleet reaches capacity with
//! every tag written at launch; a spec change replaces every instance under Surge without ever
//! running more than `capacity + maxSurge` (counted from EC2 after every round) and under
//! Recreate launches nothing before every old instance is terminated (from the proxy's ordered
//! log); a hash-version bump re-tags and replaces nothing; another fleet's instances are never
//! touched; capacity 0 terminates all; a converged resync reads nothing, and one listing serves
//! every fleet once it expired. moto's gaps (docs/testing.md, "EC2 in moto"): fleet
//! instances get the VPC's default security group and no instance profile, which observe does
//! not compare yet.

#![allow(
    clippy::unwrap_used,
    clippy::too_many_lines,
    reason = "a test module: a panic with its location is the failure report we want"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use aws_sdk_ec2::types::{Filter, Tag};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};
use stagehand::aws::AwsProvider;
use stagehand::base::ActGate;
use stagehand::inventory::Inventory;
use stagehand::probe::{ProbeSettings, TcpProber};
use stagehand::runtime::Metrics;
use stagehand::spot_fleet::observed::Offering;
use stagehand::spot_fleet::plan::{Action, Plan};
use stagehand::spot_fleet::plan::{ReplacementReason, TerminateReason};
use stagehand::spot_fleet::round::{Round, RoundOptions, round};
use stagehand::spot_fleet::spec_hash::SPEC_HASH_VERSION;
use stagehand_crds::{CLUSTER_TAG, OWNER_TAG, SPEC_HASH_TAG, SPEC_HASH_VERSION_TAG};
use stagehand_crds::{SpotFleet, SpotFleetStatus};
use stagehand_testenv::aws::{FaultAction, FaultRule};

use crate::support::{Aws, REGION};

/// moto's default AMI (the adapter tests launch from it too).
pub const IMAGE: &str = "ami-12c6146b";

/// Where fleets launch: two subnets of the default VPC (one per zone) and a security group.
pub struct Network {
    pub subnets: Vec<String>,
    pub security_group: String,
}

/// Seeds the network a fleet launches into (tests may use the SDK directly).
pub async fn network(aws: &Aws) -> Network {
    let client = aws_sdk_ec2::Client::new(&aws.sdk);
    let subnets = client.describe_subnets().send().await.unwrap();
    let mut subnets: Vec<(String, String)> = subnets
        .subnets()
        .iter()
        .filter_map(|s| Some((s.availability_zone()?.to_owned(), s.subnet_id()?.to_owned())))
        .collect();
    subnets.sort();
    let vpc = client.describe_vpcs().send().await.unwrap();
    let vpc_id = vpc.vpcs()[0].vpc_id().unwrap().to_owned();
    let group = client
        .create_security_group()
        .group_name("fleet")
        .description("fleet instances")
        .vpc_id(vpc_id)
        .send()
        .await
        .unwrap();
    Network {
        subnets: subnets.into_iter().take(2).map(|(_, id)| id).collect(),
        security_group: group.group_id().unwrap().to_owned(),
    }
}

/// A fleet's spec over `network`, with `extra` merged in.
pub fn fleet_spec(network: &Network, capacity: i32, extra: &Value) -> Value {
    let mut spec = json!({
        "region": REGION,
        "capacity": capacity,
        "instanceTypes": ["t3.small", "t3a.small"],
        "imageId": IMAGE,
        "subnetIds": network.subnets,
        "securityGroupIds": [network.security_group],
        "userData": "#cloud-config\nruncmd:\n  - echo hello\n",
        "tags": {"team": "ml"},
        "healthCheck": {"gracePeriodSeconds": 300},
    });
    if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
        for (key, value) in extra {
            spec.insert(key.clone(), value.clone());
        }
    }
    spec
}

/// Every instance of `owner` EC2 lists, by id: (state, tags).
pub async fn instances_of(
    aws: &Aws,
    owner: &str,
) -> BTreeMap<String, (String, BTreeMap<String, String>)> {
    let client = aws_sdk_ec2::Client::new(&aws.sdk);
    let described = client
        .describe_instances()
        .filters(
            Filter::builder()
                .name(format!("tag:{OWNER_TAG}"))
                .values(owner)
                .build(),
        )
        .send()
        .await
        .unwrap();
    by_id(&described)
}

/// The instances of a `DescribeInstances` answer, by id: (state, tags).
pub fn by_id(
    described: &aws_sdk_ec2::operation::describe_instances::DescribeInstancesOutput,
) -> BTreeMap<String, (String, BTreeMap<String, String>)> {
    described
        .reservations()
        .iter()
        .flat_map(aws_sdk_ec2::types::Reservation::instances)
        .map(|i| {
            let state = i
                .state()
                .and_then(|s| s.name())
                .map(|n| n.as_str().to_owned())
                .unwrap_or_default();
            let tags = i
                .tags()
                .iter()
                .filter_map(|t| Some((t.key()?.to_owned(), t.value()?.to_owned())))
                .collect();
            (i.instance_id().unwrap().to_owned(), (state, tags))
        })
        .collect()
}

/// The ids of `owner`'s live instances (not shutting down, not terminated).
pub async fn live_of(aws: &Aws, owner: &str) -> BTreeSet<String> {
    instances_of(aws, owner)
        .await
        .into_iter()
        .filter(|(_, (state, _))| state != "shutting-down" && state != "terminated")
        .map(|(id, _)| id)
        .collect()
}

/// A fleet object and the status its last round wrote (the API server's part, kept here).
pub struct Fleet {
    pub object: SpotFleet,
    pub status: Option<SpotFleetStatus>,
}

impl Fleet {
    pub fn new(name: &str, spec: &Value) -> Self {
        let mut object: SpotFleet = serde_json::from_value(json!({
            "apiVersion": "stagehand.dev/v1alpha1",
            "kind": "SpotFleet",
            "metadata": {"name": name, "namespace": "ml"},
            "spec": spec.clone(),
        }))
        .unwrap();
        object.metadata.generation = Some(1);
        Self {
            object,
            status: None,
        }
    }

    pub fn owner(&self) -> String {
        format!(
            "ml/SpotFleet/{}",
            self.object.metadata.name.as_deref().unwrap()
        )
    }

    /// A new spec: the next generation.
    pub fn change(&mut self, spec: Value) {
        self.object.spec = serde_json::from_value(spec).unwrap();
        let generation = self.object.metadata.generation.unwrap_or(1);
        self.object.metadata.generation = Some(generation + 1);
    }
}

/// moto behind the proxy, its network, and what rounds share: the inventory and a prober that
/// dials loopback only (as tests must).
pub struct World {
    pub aws: Aws,
    pub network: Network,
    pub inventory: Inventory,
    pub prober: TcpProber,
}

impl World {
    pub async fn start() -> Self {
        let aws = Aws::start().await;
        let network = network(&aws).await;
        let provider = AwsProvider::new(
            aws.sdk.clone(),
            Metrics::new().unwrap().aws,
            stagehand::aws::AwsSettings::default(),
        );
        Self {
            aws,
            network,
            // Listings expire only when the test forgets them: what a round sees of its own
            // writes is what the inventory was told.
            inventory: Inventory::new(provider, Duration::from_secs(600))
                .with_fresh_floor(Duration::ZERO),
            prober: TcpProber::new(ProbeSettings {
                loopback_only: true,
                ..ProbeSettings::default()
            }),
        }
    }

    pub fn spec(&self, capacity: i32, extra: &Value) -> Value {
        fleet_spec(&self.network, capacity, extra)
    }

    /// One reconcile at `now`, or its error.
    pub async fn round_at(
        &self,
        fleet: &mut Fleet,
        now: Timestamp,
    ) -> Result<Round, stagehand::spot_fleet::SpotFleetError> {
        let options = RoundOptions {
            cluster_id: "test",
            gate: ActGate::Act,
            refresh: false,
            prober: &self.prober,
            now,
            dry_run: false,
        };
        let round = round(
            &self.inventory,
            &fleet.object,
            fleet.status.as_ref(),
            options,
            |_| {},
        )
        .await?;
        fleet.status = Some(round.status.clone());
        Ok(round)
    }

    /// One reconcile, whatever it concludes: observe, plan, act, status.
    pub async fn try_round(&self, fleet: &mut Fleet) -> Round {
        self.round_at(fleet, Timestamp::now()).await.unwrap()
    }

    /// One reconcile at `now` that must neither stall nor fail. The plan it made.
    pub async fn round_checked_at(&self, fleet: &mut Fleet, now: Timestamp) -> Plan {
        let round = self.round_at(fleet, now).await.unwrap();
        assert!(round.plan.stalled.is_none(), "{:?}", round.plan.stalled);
        assert!(round.report.failure.is_none(), "{:?}", round.report.failure);
        round.plan
    }

    /// One reconcile that must neither stall nor fail. The plan it made.
    async fn round(&self, fleet: &mut Fleet) -> Plan {
        self.round_checked_at(fleet, Timestamp::now()).await
    }

    /// Rounds until a plan has nothing to do, checking `each` after every round; the plans.
    pub async fn converge_checking(
        &self,
        fleet: &mut Fleet,
        mut each: impl AsyncFnMut(&Plan),
    ) -> Vec<Plan> {
        let mut plans = Vec::new();
        for _ in 0..20 {
            let plan = self.round(fleet).await;
            each(&plan).await;
            let done = plan.actions.is_empty() && plan.waits.is_empty();
            plans.push(plan);
            if done {
                return plans;
            }
        }
        panic!("{} did not converge: {:?}", fleet.owner(), plans.last());
    }

    pub async fn converge(&self, fleet: &mut Fleet) -> Vec<Plan> {
        self.converge_checking(fleet, async |_| {}).await
    }
}

fn launched(plans: &[Plan]) -> u32 {
    plans
        .iter()
        .flat_map(|p| &p.actions)
        .map(|a| match a {
            Action::Launch { count, .. } => *count,
            _ => 0,
        })
        .sum()
}

fn terminated(plans: &[Plan]) -> usize {
    plans
        .iter()
        .flat_map(|p| &p.actions)
        .map(|a| match a {
            Action::Terminate { ids, .. } => ids.len(),
            _ => 0,
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_reaches_capacity_tagged_at_launch_and_a_hash_version_bump_replaces_nothing() {
    let world = World::start().await;
    let mut fleet = Fleet::new("gpu", &world.spec(2, &json!({})));
    let plans = world.converge(&mut fleet).await;
    assert_eq!(launched(&plans), 2, "{plans:?}");
    let status = fleet.status.clone().unwrap();
    assert_eq!(status.desired_capacity, 2);
    assert_eq!(status.ready_capacity, 2, "{status:?}");
    assert_eq!(status.instances.len(), 2);
    assert!(
        status
            .instances
            .iter()
            .all(|i| i.healthy && i.replacement.is_none())
    );
    let hash = status.spec_hash.clone().unwrap();

    let instances = instances_of(&world.aws, &fleet.owner()).await;
    assert_eq!(instances.len(), 2);
    for (state, tags) in instances.values() {
        assert_eq!(state, "running");
        assert_eq!(tags[OWNER_TAG], fleet.owner());
        assert_eq!(tags[CLUSTER_TAG], "test");
        assert_eq!(tags[SPEC_HASH_TAG], hash);
        assert_eq!(tags[SPEC_HASH_VERSION_TAG], SPEC_HASH_VERSION);
        assert_eq!(tags["team"], "ml");
    }
    // Every tag was written at launch: no CreateTags ever.
    let calls = world.aws.floor.calls().await.unwrap();
    assert_eq!(calls.count("ec2", "CreateTags"), 0, "{calls:?}");
    assert_eq!(calls.count("ec2", "CreateFleet"), 1);
    assert_eq!(calls.count("ec2", "CreateLaunchTemplate"), 1);

    // The instances carry an older hash version (as if the scheme changed since): re-tagged,
    // none replaced.
    let ids: Vec<String> = instances.keys().cloned().collect();
    aws_sdk_ec2::Client::new(&world.aws.sdk)
        .create_tags()
        .set_resources(Some(ids.clone()))
        .tags(Tag::builder().key(SPEC_HASH_VERSION_TAG).value("0").build())
        .tags(
            Tag::builder()
                .key(SPEC_HASH_TAG)
                .value("old-scheme")
                .build(),
        )
        .send()
        .await
        .unwrap();
    world.inventory.forget(REGION);
    let plans = world.converge(&mut fleet).await;
    assert!(
        matches!(
            plans[0].actions.as_slice(),
            [Action::Restamp { ids: restamped, .. }]
                if restamped.iter().cloned().collect::<BTreeSet<_>>() == ids.iter().cloned().collect()
        ),
        "{:?}",
        plans[0].actions
    );
    assert_eq!(launched(&plans), 0);
    assert_eq!(terminated(&plans), 0);
    let after = instances_of(&world.aws, &fleet.owner()).await;
    assert_eq!(after.keys().cloned().collect::<Vec<_>>(), ids);
    for (state, tags) in after.values() {
        assert_eq!(state, "running");
        assert_eq!(tags[SPEC_HASH_TAG], hash);
        assert_eq!(tags[SPEC_HASH_VERSION_TAG], SPEC_HASH_VERSION);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn surge_replaces_every_instance_never_running_more_than_capacity_plus_max_surge() {
    let world = World::start().await;
    let mut other = Fleet::new("cpu", &world.spec(1, &json!({})));
    world.converge(&mut other).await;
    let others = live_of(&world.aws, &other.owner()).await;
    assert_eq!(others.len(), 1);

    let surge = json!({"replacement": {"strategy": "Surge", "maxSurge": 1}});
    let mut fleet = Fleet::new("gpu", &world.spec(3, &surge));
    world.converge(&mut fleet).await;
    let old = live_of(&world.aws, &fleet.owner()).await;
    assert_eq!(old.len(), 3);

    // Converged: a resync within the listings' age reads nothing; once they expired, one
    // DescribeInstances and the two filtered listings of impaired instances serve both fleets
    // (healthy instances' checks are not read one by one again).
    for f in [&mut fleet, &mut other] {
        world.round(f).await;
    }
    world.aws.floor.reset_calls().await.unwrap();
    for f in [&mut fleet, &mut other] {
        let plan = world.round(f).await;
        assert!(plan.actions.is_empty(), "{:?}", plan.actions);
    }
    assert_eq!(world.aws.floor.calls().await.unwrap().total, 0);
    world.inventory.forget(REGION);
    for f in [&mut fleet, &mut other] {
        world.round(f).await;
    }
    let calls = world.aws.floor.calls().await.unwrap();
    assert_eq!(calls.count("ec2", "DescribeInstances"), 1, "{calls:?}");
    assert_eq!(calls.count("ec2", "DescribeInstanceStatus"), 2, "{calls:?}");
    assert_eq!(calls.total, 3, "{calls:?}");

    // A spec change (the user's tags are part of what defines an instance).
    let mut changed = world.spec(3, &surge);
    changed["tags"] = json!({"team": "ml", "release": "2"});
    fleet.change(changed);
    let owner = fleet.owner();
    let mut most = 0;
    let plans = world
        .converge_checking(&mut fleet, async |_| {
            let live = live_of(&world.aws, &owner).await.len();
            most = most.max(live);
            assert!(live <= 4, "{live} live instances, capacity 3 + maxSurge 1");
        })
        .await;
    assert_eq!(most, 4, "surged by one");
    assert_eq!(launched(&plans), 3, "{plans:?}");
    assert_eq!(terminated(&plans), 3);
    let new = live_of(&world.aws, &fleet.owner()).await;
    assert_eq!(new.len(), 3);
    assert!(new.is_disjoint(&old), "every instance replaced");
    let hash = fleet
        .status
        .as_ref()
        .and_then(|s| s.spec_hash.clone())
        .unwrap();
    for (id, (_, tags)) in instances_of(&world.aws, &fleet.owner()).await {
        if new.contains(&id) {
            assert_eq!(tags[SPEC_HASH_TAG], hash);
            assert_eq!(tags["release"], "2");
        }
    }
    assert_eq!(fleet.status.as_ref().map(|s| s.ready_capacity), Some(3));

    // The other fleet was never touched: EC2 still lists exactly its instances live. (Not a
    // search of the call log: EC2's query API posts every action to `/`, so an instance id is
    // never in a request path and such a check could not fail.)
    assert_eq!(live_of(&world.aws, &other.owner()).await, others);

    // Capacity 0 terminates all (the other fleet still untouched).
    let mut empty = world.spec(0, &surge);
    empty["tags"] = json!({"team": "ml", "release": "2"});
    fleet.change(empty);
    world.converge(&mut fleet).await;
    assert_eq!(live_of(&world.aws, &fleet.owner()).await, BTreeSet::new());
    assert_eq!(fleet.status.as_ref().map(|s| s.instances.len()), Some(0));
    assert_eq!(live_of(&world.aws, &other.owner()).await, others);
}

/// After a launch, the fleet that launched reads back its own instances by its owner tag and
/// every other fleet keeps the region's listing: at 500 fleets, dropping that listing at each
/// launch relisted the whole region hundreds of times (docs/benchmarks.md, "10,000 objects").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_launch_only_the_fleet_that_launched_reads_its_instances_again() {
    let world = World::start().await;
    let mut other = Fleet::new("cpu", &world.spec(1, &json!({})));
    world.converge(&mut other).await;
    let mut fleet = Fleet::new("gpu", &world.spec(1, &json!({})));
    world.converge(&mut fleet).await;
    world.inventory.forget(REGION);
    for f in [&mut fleet, &mut other] {
        world.round(f).await;
    }

    // The spec change lists the region afresh before the launch (refresh_for_round).
    fleet.change(world.spec(2, &json!({})));
    let plan = world.round(&mut fleet).await;
    assert_eq!(launched(&[plan]), 1);
    world.aws.floor.reset_calls().await.unwrap();
    let plan = world.round(&mut other).await;
    assert!(plan.actions.is_empty(), "{:?}", plan.actions);
    let calls = world.aws.floor.calls().await.unwrap();
    assert_eq!(calls.count("ec2", "DescribeInstances"), 0, "{calls:?}");

    // One read of its own serves every round until the next write.
    let plans = world.converge(&mut fleet).await;
    assert_eq!(launched(&plans), 0, "{plans:?}");
    world.round(&mut other).await;
    let calls = world.aws.floor.calls().await.unwrap();
    assert_eq!(calls.count("ec2", "DescribeInstances"), 1, "{calls:?}");
    let status = fleet.status.as_ref().unwrap();
    let listed: BTreeSet<String> = status
        .instances
        .iter()
        .map(|i| i.instance_id.clone())
        .collect();
    assert_eq!(listed, live_of(&world.aws, &fleet.owner()).await);
    assert_eq!(listed.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recreate_launches_nothing_before_every_old_instance_is_terminated() {
    let world = World::start().await;
    let recreate = json!({"replacement": {"strategy": "Recreate", "maxSurge": 0}});
    let mut fleet = Fleet::new("gpu", &world.spec(2, &recreate));
    world.converge(&mut fleet).await;
    let old = live_of(&world.aws, &fleet.owner()).await;
    assert_eq!(old.len(), 2);

    let start = world
        .aws
        .floor
        .admin()
        .log()
        .await
        .unwrap()
        .last()
        .map_or(0, |r| r.seq);
    let mut changed = world.spec(2, &recreate);
    changed["tags"] = json!({"team": "ml", "release": "2"});
    fleet.change(changed);
    let plans = world.converge(&mut fleet).await;
    assert_eq!(terminated(&plans), 2, "{plans:?}");
    assert_eq!(launched(&plans), 2);

    let log: Vec<_> = world
        .aws
        .floor
        .admin()
        .log()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.seq > start)
        .collect();
    let last_terminate = log
        .iter()
        .rposition(|r| r.operation == "TerminateInstances")
        .unwrap();
    let first_launch = log
        .iter()
        .position(|r| r.operation == "CreateFleet")
        .unwrap();
    assert!(
        last_terminate < first_launch,
        "every termination before any launch: {:?}",
        log.iter().map(|r| r.operation.as_str()).collect::<Vec<_>>()
    );
    let new = live_of(&world.aws, &fleet.owner()).await;
    assert_eq!(new.len(), 2);
    assert!(new.is_disjoint(&old));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_instance_is_replaced_and_a_refused_pool_is_left_out_of_the_next_launch() {
    let world = World::start().await;
    let zones: BTreeMap<String, String> = world
        .inventory
        .aws()
        .ec2(REGION)
        .subnet_zones(&world.network.subnets)
        .await
        .unwrap();
    let second = world.network.subnets[1].clone();
    // moto launches from the first pool and never refuses one; the proxy adds EC2's answer for
    // a later pool, once.
    world
        .aws
        .floor
        .add_fault(
            &FaultRule::new(FaultAction::fleet_error(
                "InsufficientInstanceCapacity",
                "t3a.small",
                &second,
            ))
            .times(1),
        )
        .await
        .unwrap();
    let mut fleet = Fleet::new("gpu", &world.spec(1, &json!({})));
    world.converge(&mut fleet).await;
    let old = live_of(&world.aws, &fleet.owner()).await;
    assert_eq!(old.len(), 1);
    let refused = Offering {
        instance_type: "t3a.small".into(),
        zone: zones[&second].clone(),
    };
    // The launch's errors are the fleet's, for CapacityReady while it is short.
    let errors = world.try_round(&mut fleet).await.observed.launch_errors;
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].code, "InsufficientInstanceCapacity");
    assert_eq!(errors[0].offering.as_ref(), Some(&refused));

    // Stopped by hand: replaced (a spot instance is never started again by Stagehand), and the
    // pool refused a moment ago is not offered to the replacement's launch.
    let id = old.iter().next().unwrap().clone();
    aws_sdk_ec2::Client::new(&world.aws.sdk)
        .stop_instances()
        .instance_ids(&id)
        .send()
        .await
        .unwrap();
    world.inventory.forget(REGION);
    let plans = world.converge(&mut fleet).await;
    let actions: Vec<&Action> = plans.iter().flat_map(|p| &p.actions).collect();
    assert!(
        actions.iter().any(|a| matches!(
            a,
            Action::Terminate { ids, reason: TerminateReason::Replaced(ReplacementReason::Stopped) }
                if *ids == [id.clone()]
        )),
        "{actions:?}"
    );
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, Action::Launch { avoid, .. } if avoid.contains(&refused))),
        "{actions:?}"
    );
    let new = live_of(&world.aws, &fleet.owner()).await;
    assert_eq!(new.len(), 1);
    assert!(!new.contains(&id));
    // That launch had no error: none is reported any more.
    let errors = world.try_round(&mut fleet).await.observed.launch_errors;
    assert_eq!(errors, Vec::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_of_the_same_owner_in_another_cluster_stalls_the_fleet_and_nothing_is_done() {
    let world = World::start().await;
    let mut fleet = Fleet::new("gpu", &world.spec(1, &json!({})));
    aws_sdk_ec2::Client::new(&world.aws.sdk)
        .run_instances()
        .image_id(IMAGE)
        .min_count(1)
        .max_count(1)
        .tag_specifications(
            aws_sdk_ec2::types::TagSpecification::builder()
                .resource_type(aws_sdk_ec2::types::ResourceType::Instance)
                .tags(Tag::builder().key(OWNER_TAG).value(fleet.owner()).build())
                .tags(Tag::builder().key(CLUSTER_TAG).value("another").build())
                .build(),
        )
        .send()
        .await
        .unwrap();
    let round = world.try_round(&mut fleet).await;
    let stall = round.plan.stalled.clone().unwrap();
    assert_eq!(stall.reason, "OwnershipConflict", "{stall:?}");
    assert!(round.plan.actions.is_empty());
    assert!(round.report.done.is_empty());
    let calls = world.aws.floor.calls().await.unwrap();
    assert_eq!(calls.count("ec2", "CreateFleet"), 0, "{calls:?}");
    assert_eq!(calls.count("ec2", "TerminateInstances"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn launches_reuse_the_remembered_template_and_a_template_deleted_by_hand_is_made_again() {
    let world = World::start().await;
    let spec = |w: &World, build: &str| {
        w.spec(
            2,
            &json!({"userData": format!("#cloud-config\nruncmd:\n  - echo {build}\n")}),
        )
    };
    let mut fleet = Fleet::new("gpu", &spec(&world, "1"));
    world.converge(&mut fleet).await;
    // A spec change replaced one instance at a time (Surge, maxSurge 1): two launches, and the
    // template, its versions and the subnets' zones were read once, not at every launch.
    world.aws.floor.reset_calls().await.unwrap();
    fleet.change(spec(&world, "2"));
    let plans = world.converge(&mut fleet).await;
    assert_eq!(launched(&plans), 2, "{plans:?}");
    let calls = world.aws.floor.calls().await.unwrap();
    assert_eq!(calls.count("ec2", "CreateFleet"), 2, "{calls:?}");
    assert_eq!(
        calls.count("ec2", "DescribeLaunchTemplates"),
        0,
        "{calls:?}"
    );
    assert_eq!(
        calls.count("ec2", "DescribeLaunchTemplateVersions"),
        1,
        "{calls:?}"
    );
    assert_eq!(
        calls.count("ec2", "CreateLaunchTemplateVersion"),
        1,
        "{calls:?}"
    );
    assert_eq!(calls.count("ec2", "DescribeSubnets"), 0, "{calls:?}");

    // Someone deletes the fleet's launch template. The next spec change fails once on the
    // remembered template, then finds none by tag and creates it again.
    let client = aws_sdk_ec2::Client::new(&world.aws.sdk);
    let templates = client.describe_launch_templates().send().await.unwrap();
    for template in templates.launch_templates() {
        client
            .delete_launch_template()
            .launch_template_id(template.launch_template_id().unwrap())
            .send()
            .await
            .unwrap();
    }
    fleet.change(spec(&world, "3"));
    let failed = world.try_round(&mut fleet).await;
    assert!(failed.report.failure.is_some(), "{:?}", failed.plan);
    // A failed launch backs off (30 s after the first failure) instead of retrying at once.
    let waiting = world.round(&mut fleet).await;
    assert!(
        waiting
            .actions
            .iter()
            .all(|a| !matches!(a, Action::Launch { .. })),
        "{waiting:?}"
    );
    assert!(
        waiting.waits.iter().any(|w| w.reason == "LaunchBackoff"),
        "{waiting:?}"
    );
    let later = Timestamp::now() + SignedDuration::from_secs(31);
    let mut plans = Vec::new();
    for _ in 0..10 {
        let plan = world.round_checked_at(&mut fleet, later).await;
        let done = plan.actions.is_empty() && plan.waits.is_empty();
        plans.push(plan);
        if done {
            break;
        }
    }
    assert_eq!(launched(&plans), 2, "{plans:?}");
    // The healthy replacements prove launching works again: no backoff is left.
    assert!(
        plans.last().is_some_and(|p| p.waits.is_empty()),
        "{plans:?}"
    );
    let templates = client.describe_launch_templates().send().await.unwrap();
    assert_eq!(templates.launch_templates().len(), 1);
    let status = fleet.status.clone().unwrap();
    assert_eq!(status.ready_capacity, 2, "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_controller_lost_between_launch_and_status_write_leaves_no_orphan_and_no_extra_instance()
{
    let mut world = World::start().await;
    let mut fleet = Fleet::new("gpu", &world.spec(3, &json!({})));
    // The first round launches all three, then the process dies before its status is written:
    // the next process starts with no status and an empty inventory.
    let first = world.try_round(&mut fleet).await;
    assert_eq!(first.report.launched.len(), 3, "{:?}", first.plan);
    fleet.status = None;
    world.inventory = Inventory::new(world.inventory.aws().clone(), Duration::from_secs(600))
        .with_fresh_floor(Duration::ZERO);
    world.aws.floor.reset_calls().await.unwrap();

    // The instances were tagged at launch: the new process finds them as the fleet's and
    // launches nothing more.
    let plans = world.converge(&mut fleet).await;
    assert_eq!(launched(&plans), 0, "{plans:?}");
    assert_eq!(terminated(&plans), 0, "{plans:?}");
    let calls = world.aws.floor.calls().await.unwrap();
    assert_eq!(calls.count("ec2", "CreateFleet"), 0, "{calls:?}");
    let live = live_of(&world.aws, &fleet.owner()).await;
    let launched_first: BTreeSet<String> = first.report.launched.iter().cloned().collect();
    assert_eq!(
        live, launched_first,
        "the same three, none orphaned, none extra"
    );
    let status = fleet.status.clone().unwrap();
    assert_eq!(status.ready_capacity, 3, "{status:?}");
    // Every instance EC2 lists carries the owner tag: nothing was launched untagged.
    let all = aws_sdk_ec2::Client::new(&world.aws.sdk)
        .describe_instances()
        .send()
        .await
        .unwrap();
    let untagged = all
        .reservations()
        .iter()
        .flat_map(aws_sdk_ec2::types::Reservation::instances)
        .filter(|i| !i.tags().iter().any(|t| t.key() == Some(OWNER_TAG)))
        .count();
    assert_eq!(untagged, 0);
}

/// A subnet the spec names that does not exist is the user's to fix: the fleet stalls naming
/// it (EC2's own message), rounds after that make no launch call (one `DescribeSubnets` in all),
/// and the fixed spec launches at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_subnet_stalls_the_fleet_naming_it_until_the_spec_is_fixed() {
    let world = World::start().await;
    let mut spec = world.spec(1, &json!({}));
    let missing = "subnet-0000000000000dead";
    spec["subnetIds"] = json!([missing]);
    let mut fleet = Fleet::new("gpu", &spec);
    crate::spot_fleet_template::stalls_naming(&world, &mut fleet, "subnetIds", missing, 1).await;
}
