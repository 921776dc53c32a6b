//! SpotFleet end to end: the production controllers (`stagehand::kinds::registry()`) against
//! the Kubernetes API stand-in and moto behind the proxy. A fleet reaches Ready with its
//! instances in status, and again with new instances after a spec change; deleting it leaves no live instance and no launch template (the
//! finalizer stays until `DescribeInstances` shows none); a retained fleet's instances keep
//! running. moto's gaps (docs/testing.md, "EC2 in moto"): fleet instances get the VPC's default
//! security group and no instance profile, which observe does not compare yet.

#![allow(
    clippy::unwrap_used,
    reason = "a test module: a panic with its location is the failure report we want"
)]

use std::collections::BTreeSet;
use std::time::Duration;

use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use stagehand::base::conditions::find_condition;
use stagehand::spot_fleet::spec_hash::SPEC_HASH_VERSION;
use stagehand_crds::{OWNER_TAG, SPEC_HASH_TAG, SpotFleet};

use crate::spot_fleet_round::{fleet_spec, instances_of, live_of, network};
use crate::support::{Env, NAMESPACE, REGION, TIMEOUT};

const OWNER: &str = "shop/SpotFleet/workers";

pub fn fleet(name: &str, spec: &serde_json::Value) -> SpotFleet {
    serde_json::from_value(json!({
        "apiVersion": "stagehand.dev/v1alpha1",
        "kind": "SpotFleet",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": spec,
    }))
    .unwrap()
}

pub fn ready(fleet: &SpotFleet) -> bool {
    fleet.status.as_ref().is_some_and(|s| {
        s.common.observed_generation == fleet.metadata.generation
            && find_condition(&s.common.conditions, "Ready").is_some_and(|c| c.status == "True")
    })
}

/// Polls (bounded) until `name` is Ready at its generation; returns it.
pub async fn wait_ready(fleets: &Api<SpotFleet>, name: &str) -> SpotFleet {
    wait_fleet(fleets, name, "became Ready", ready).await
}

/// Polls (bounded) until `check` holds for fleet `name`; returns it.
pub async fn wait_fleet(
    fleets: &Api<SpotFleet>,
    name: &str,
    what: &str,
    check: impl Fn(&SpotFleet) -> bool,
) -> SpotFleet {
    tokio::time::timeout(TIMEOUT, async {
        loop {
            if let Some(fleet) = fleets.get_opt(name).await.unwrap()
                && check(&fleet)
            {
                return fleet;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{name} never {what}"))
}

/// Polls (bounded) until `name` is gone.
pub async fn wait_gone(fleets: &Api<SpotFleet>, name: &str) {
    tokio::time::timeout(TIMEOUT, async {
        while fleets.get_opt(name).await.unwrap().is_some() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{name} was never deleted"));
}

/// The reasons of the Events about `name`.
pub async fn event_reasons(env: &Env, name: &str) -> Vec<String> {
    let events: Api<Event> = Api::namespaced(env.ctx.client.clone(), NAMESPACE);
    events
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
        .filter_map(|e| e.reason)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_reaches_ready_is_replaced_on_a_spec_change_and_deletion_leaves_none_live() {
    let mut env = Env::start().await;
    let network = network(&env.aws).await;
    env.start_controllers().await;
    let fleets: Api<SpotFleet> = Api::namespaced(env.ctx.client.clone(), NAMESPACE);
    let manifest = fleet(
        "workers",
        &fleet_spec(&network, 2, &json!({"deletionPolicy": "Delete"})),
    );
    fleets
        .create(&PostParams::default(), &manifest)
        .await
        .unwrap();
    let fleet = wait_ready(&fleets, "workers").await;
    let status = fleet.status.unwrap();
    assert_eq!(status.desired_capacity, 2);
    assert_eq!(status.ready_capacity, 2);
    assert_eq!(status.phase.as_deref(), Some("Stable"));
    assert_eq!(status.spec_hash_version.as_deref(), Some(SPEC_HASH_VERSION));
    let hash = status.spec_hash.clone().unwrap();
    let live = live_of(&env.aws, OWNER).await;
    let in_status: BTreeSet<String> = status
        .instances
        .iter()
        .map(|i| i.instance_id.clone())
        .collect();
    assert_eq!(in_status, live, "status lists exactly the live instances");
    for row in &status.instances {
        assert!(row.healthy, "{row:?}");
        assert_eq!(row.state.as_deref(), Some("running"));
        assert_eq!(row.spec_hash.as_deref(), Some(hash.as_str()));
        assert_eq!(row.replacement, None);
    }
    for (_, tags) in instances_of(&env.aws, OWNER).await.values() {
        assert_eq!(tags[OWNER_TAG], OWNER);
        assert_eq!(tags[SPEC_HASH_TAG], hash);
    }

    // A spec change (new user data) replaces both instances: Ready again at the new
    // generation with two new instances of the new hash.
    fleets
        .patch(
            "workers",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"userData": "#cloud-config\nruncmd:\n  - echo v2\n"}})),
        )
        .await
        .unwrap();
    let fleet = wait_ready(&fleets, "workers").await;
    let status = fleet.status.unwrap();
    let new_hash = status.spec_hash.clone().unwrap();
    assert_ne!(new_hash, hash);
    let replaced = live_of(&env.aws, OWNER).await;
    assert_eq!(replaced.len(), 2);
    assert!(replaced.is_disjoint(&live), "every instance replaced");
    assert!(
        status
            .instances
            .iter()
            .all(|i| i.spec_hash.as_deref() == Some(new_hash.as_str())),
        "{status:?}"
    );

    // Deleted: the finalizer holds the object until EC2 shows no live instance, then the
    // launch template goes too.
    fleets
        .delete("workers", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&fleets, "workers").await;
    assert_eq!(live_of(&env.aws, OWNER).await, BTreeSet::new());
    assert_eq!(
        instances_of(&env.aws, OWNER).await.len(),
        4,
        "terminated, still described"
    );
    let templates = env
        .ctx
        .aws
        .ec2(REGION)
        .launch_templates_with_tag(OWNER_TAG, OWNER)
        .await
        .unwrap();
    assert_eq!(templates, Vec::new());
    let calls = env.calls().await;
    assert_eq!(calls.count("ec2", "DeleteLaunchTemplate"), 1, "{calls:?}");
    let reasons = event_reasons(&env, "workers").await;
    for reason in [
        "InstancesLaunched",
        "InstancesTerminated",
        "LaunchTemplateDeleted",
    ] {
        assert!(reasons.iter().any(|r| r == reason), "{reason}: {reasons:?}");
    }
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retained_fleet_leaves_its_instances_running_and_says_so() {
    let mut env = Env::start().await;
    let network = network(&env.aws).await;
    env.start_controllers().await;
    let fleets: Api<SpotFleet> = Api::namespaced(env.ctx.client.clone(), NAMESPACE);
    let manifest = fleet(
        "workers",
        &fleet_spec(&network, 1, &json!({"deletionPolicy": "Retain"})),
    );
    fleets
        .create(&PostParams::default(), &manifest)
        .await
        .unwrap();
    wait_ready(&fleets, "workers").await;
    let live = live_of(&env.aws, OWNER).await;
    assert_eq!(live.len(), 1);

    fleets
        .delete("workers", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&fleets, "workers").await;
    assert_eq!(live_of(&env.aws, OWNER).await, live, "still running");
    assert_eq!(env.calls().await.count("ec2", "TerminateInstances"), 0);
    let reasons = event_reasons(&env, "workers").await;
    assert!(
        reasons.iter().any(|r| r == "InstancesRetained"),
        "{reasons:?}"
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_an_observe_only_fleet_writes_nothing_to_ec2() {
    let mut env = Env::start().await;
    let network = network(&env.aws).await;
    env.start_controllers().await;
    let fleets: Api<SpotFleet> = Api::namespaced(env.ctx.client.clone(), NAMESPACE);
    let manifest = fleet(
        "workers",
        &fleet_spec(&network, 1, &json!({"deletionPolicy": "Delete"})),
    );
    fleets
        .create(&PostParams::default(), &manifest)
        .await
        .unwrap();
    wait_ready(&fleets, "workers").await;
    let live = live_of(&env.aws, OWNER).await;
    assert_eq!(live.len(), 1);
    fleets
        .patch(
            "workers",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"management": "ObserveOnly"}})),
        )
        .await
        .unwrap();
    wait_ready(&fleets, "workers").await;

    fleets
        .delete("workers", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&fleets, "workers").await;
    assert_eq!(live_of(&env.aws, OWNER).await, live, "still running");
    assert_eq!(env.calls().await.count("ec2", "TerminateInstances"), 0);
    let reasons = event_reasons(&env, "workers").await;
    assert!(
        reasons.iter().any(|r| r == "InstancesRetained"),
        "{reasons:?}"
    );
    env.stop().await;
}
