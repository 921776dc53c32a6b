//! SpotFleet adoption against moto through the counting proxy, with the rounds the reconciler
//! runs (`spot_fleet_round::World`): an instance launched by hand with no owner tag and the
//! `Name` `<namespace>/<name>` of a fleet stalls the fleet without `adopt` (nothing touched,
//! looked at again every round until a human renames it) and, with `adopt`, is tagged, then
//! replaced like any instance without a spec hash (surge-first, never above
//! `capacity + maxSurge`). Instances named for the fleet but owned by another one, stopped, or
//! named otherwise are never touched. The look for unowned instances is paid once per spec
//! change, not at every resync.

#![allow(
    clippy::unwrap_used,
    clippy::too_many_lines,
    reason = "a test module: a panic with its location is the failure report we want"
)]

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{InstanceType, ResourceType, Tag, TagSpecification};
use serde_json::json;
use stagehand::spot_fleet::plan::{Action, ReplacementReason};
use stagehand_crds::{CLUSTER_TAG, OWNER_TAG};

use crate::spot_fleet_round::{Fleet, IMAGE, World, by_id, instances_of, live_of};
use crate::support::REGION;

/// An instance's state and tags, as EC2 lists it.
type Described = (String, BTreeMap<String, String>);

/// Launches one instance by hand (as the team's script did) into the fleet's network, so that
/// only its tags tell it from one the fleet launched; its id.
async fn launch_by_hand(world: &World, tags: &[(&str, &str)]) -> String {
    let mut tagging = TagSpecification::builder().resource_type(ResourceType::Instance);
    for (key, value) in tags {
        tagging = tagging.tags(Tag::builder().key(*key).value(*value).build());
    }
    let launched = aws_sdk_ec2::Client::new(&world.aws.sdk)
        .run_instances()
        .image_id(IMAGE)
        .instance_type(InstanceType::T3Small)
        .subnet_id(&world.network.subnets[0])
        .security_group_ids(&world.network.security_group)
        .min_count(1)
        .max_count(1)
        .set_tag_specifications((!tags.is_empty()).then(|| vec![tagging.build()]))
        .send()
        .await
        .unwrap();
    launched.instances()[0].instance_id().unwrap().to_owned()
}

/// State and tags of each of `ids`.
async fn describe(world: &World, ids: &[&String]) -> BTreeMap<String, Described> {
    let described = aws_sdk_ec2::Client::new(&world.aws.sdk)
        .describe_instances()
        .set_instance_ids(Some(ids.iter().map(|id| (*id).clone()).collect()))
        .send()
        .await
        .unwrap();
    by_id(&described)
}

/// Instances no fleet may take: named for `gpu` but owned by another fleet, named for `gpu`
/// but stopped, named almost like it, and not named at all. Their ids.
async fn bystanders(world: &World) -> Vec<String> {
    let owned_elsewhere = launch_by_hand(
        world,
        &[
            ("Name", "ml/gpu"),
            (OWNER_TAG, "ml/SpotFleet/cpu"),
            (CLUSTER_TAG, "test"),
        ],
    )
    .await;
    let stopped = launch_by_hand(world, &[("Name", "ml/gpu")]).await;
    aws_sdk_ec2::Client::new(&world.aws.sdk)
        .stop_instances()
        .instance_ids(&stopped)
        .send()
        .await
        .unwrap();
    let similar = launch_by_hand(world, &[("Name", "ml/gpu-2")]).await;
    let nameless = launch_by_hand(world, &[]).await;
    vec![owned_elsewhere, stopped, similar, nameless]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_adopt_an_untagged_instance_named_for_the_fleet_stalls_it_until_renamed() {
    let world = World::start().await;
    let named = launch_by_hand(&world, &[("Name", "ml/gpu")]).await;
    let others = bystanders(&world).await;
    let everyone: Vec<&String> = others.iter().chain([&named]).collect();
    let before = describe(&world, &everyone).await;
    let mut fleet = Fleet::new("gpu", &world.spec(1, &json!({})));

    // Stalled, naming the instance, every round (the look is repeated while it finds one).
    for _ in 0..2 {
        let round = world.try_round(&mut fleet).await;
        let stall = round.plan.stalled.clone().unwrap();
        assert_eq!(stall.reason, "AdoptionRequired", "{stall:?}");
        assert!(stall.message.contains(&named), "{stall:?}");
        assert!(round.plan.actions.is_empty(), "{:?}", round.plan.actions);
        assert!(round.report.done.is_empty());
    }
    let calls = world.aws.floor.calls().await.unwrap();
    for write in ["CreateFleet", "CreateTags", "TerminateInstances"] {
        assert_eq!(calls.count("ec2", write), 0, "{write}: {calls:?}");
    }
    assert_eq!(describe(&world, &everyone).await, before, "nothing touched");

    // The human renames it (it is not the fleet's after all): the next round launches.
    aws_sdk_ec2::Client::new(&world.aws.sdk)
        .create_tags()
        .resources(&named)
        .tags(Tag::builder().key("Name").value("legacy").build())
        .send()
        .await
        .unwrap();
    let plans = world.converge(&mut fleet).await;
    assert!(
        matches!(
            plans[0].actions.as_slice(),
            [Action::Launch { count: 1, .. }]
        ),
        "{:?}",
        plans[0].actions
    );
    assert_eq!(live_of(&world.aws, &fleet.owner()).await.len(), 1);
    let after = describe(&world, &everyone).await;
    assert_eq!(after[&named].0, "running");
    assert!(!after[&named].1.contains_key(OWNER_TAG));
    for id in &others {
        assert_eq!(after[id], before[id], "{id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_adopt_an_untagged_instance_named_for_the_fleet_is_tagged_then_replaced_surge_first() {
    let world = World::start().await;
    let named = launch_by_hand(&world, &[("Name", "ml/gpu")]).await;
    let others = bystanders(&world).await;
    let before = describe(&world, &others.iter().collect::<Vec<_>>()).await;
    let spec = world.spec(1, &json!({"adopt": true, "replacement": {"maxSurge": 1}}));
    let mut fleet = Fleet::new("gpu", &spec);

    let log = world.aws.floor.admin().log().await.unwrap();
    let start = log.last().map_or(0, |r| r.seq);
    let owner = fleet.owner();
    let plans = world
        .converge_checking(&mut fleet, async |_| {
            // The adopted instance counts toward capacity until it is replaced.
            assert!(live_of(&world.aws, &owner).await.len() <= 2);
        })
        .await;
    // Tagged first, judged out of date (no spec hash), a replacement launched beside it.
    let first = &plans[0];
    assert!(
        matches!(
            first.actions.as_slice(),
            [Action::Adopt { ids, tags }, Action::Launch { count: 1, .. }]
                if *ids == [named.clone()] && tags[OWNER_TAG] == owner && tags[CLUSTER_TAG] == "test"
        ),
        "{:?}",
        first.actions
    );
    let verdict = first.instances.iter().find(|i| i.id == named).unwrap();
    assert_eq!(
        verdict.replacement,
        Some(ReplacementReason::SpecHashDrifted)
    );
    // Then terminated, once the replacement was healthy, for that reason.
    let retired = plans
        .iter()
        .flat_map(|p| &p.actions)
        .any(|a| matches!(a, Action::Terminate { ids, .. } if *ids == [named.clone()]));
    assert!(retired, "{plans:?}");
    let ours = instances_of(&world.aws, &owner).await;
    let (state, tags) = &ours[&named];
    assert!(state == "terminated" || state == "shutting-down", "{state}");
    assert_eq!(tags[OWNER_TAG], owner);
    let live = live_of(&world.aws, &owner).await;
    assert_eq!(live.len(), 1);
    assert!(!live.contains(&named));

    // In that order on the wire: CreateTags, CreateFleet, TerminateInstances.
    let log = world.aws.floor.admin().log().await.unwrap();
    let writes: Vec<&str> = log
        .iter()
        .filter(|r| r.seq > start)
        .map(|r| r.operation.as_str())
        .filter(|op| ["CreateTags", "CreateFleet", "TerminateInstances"].contains(op))
        .collect();
    assert_eq!(writes, ["CreateTags", "CreateFleet", "TerminateInstances"]);

    // The bystanders are as they were, and none is the fleet's in status.
    assert_eq!(
        describe(&world, &others.iter().collect::<Vec<_>>()).await,
        before
    );
    let status = fleet.status.clone().unwrap();
    assert!(
        status
            .instances
            .iter()
            .all(|i| !others.contains(&i.instance_id)),
        "{status:?}"
    );

    // A resync once the listing expired does not look for unowned instances again (one
    // DescribeInstances: the shared listing); a spec change does (two).
    world.aws.floor.reset_calls().await.unwrap();
    world.inventory.forget(REGION);
    world.converge(&mut fleet).await;
    let calls = world.aws.floor.calls().await.unwrap();
    assert_eq!(calls.count("ec2", "DescribeInstances"), 1, "{calls:?}");
    world.aws.floor.reset_calls().await.unwrap();
    fleet.change(spec);
    world.converge(&mut fleet).await;
    let calls = world.aws.floor.calls().await.unwrap();
    assert_eq!(calls.count("ec2", "DescribeInstances"), 2, "{calls:?}");
}
