//! SpotFleet end to end: the production controllers (`stagehand::kinds::registry()`) against
//! the Kubernetes API stand-in and moto behind the proxy. A fleet reaches Ready with its
//! instances in status; deleting it leaves no live instance and no launch template (the
//! finalizer stays until `DescribeInstances` shows none). moto's gaps (docs/testing.md, "EC2 in
//! moto"): fleet instances get the VPC's default security group and no instance profile, which
//! observe does not compare yet.

#![allow(
    clippy::unwrap_used,
    reason = "a test module: a panic with its location is the failure report we want"
)]

use std::collections::BTreeSet;

use kube::api::{Api, DeleteParams, PostParams};
use serde_json::json;
use stagehand::base::conditions::find_condition;
use stagehand::spot_fleet::spec_hash::SPEC_HASH_VERSION;
use stagehand_crds::{OWNER_TAG, SPEC_HASH_TAG, SpotFleet};

use crate::spot_fleet_round::{fleet_spec, instances_of, live_of, network};
use crate::support::{Env, NAMESPACE, TIMEOUT};

const OWNER: &str = "shop/SpotFleet/workers";

fn ready(fleet: &SpotFleet) -> bool {
    fleet.status.as_ref().is_some_and(|s| {
        s.common.observed_generation == fleet.metadata.generation
            && find_condition(&s.common.conditions, "Ready").is_some_and(|c| c.status == "True")
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_reaches_ready_with_its_instances_and_deletion_leaves_none_live() {
    let mut env = Env::start().await;
    let network = network(&env.aws).await;
    env.start_controllers().await;
    let fleets: Api<SpotFleet> = Api::namespaced(env.ctx.client.clone(), NAMESPACE);
    let fleet: SpotFleet = serde_json::from_value(json!({
        "apiVersion": "stagehand.dev/v1alpha1",
        "kind": "SpotFleet",
        "metadata": {"name": "workers", "namespace": NAMESPACE},
        "spec": fleet_spec(&network, 2, &json!({"deletionPolicy": "Delete"})),
    }))
    .unwrap();
    fleets.create(&PostParams::default(), &fleet).await.unwrap();

    let wait = tokio::time::timeout(TIMEOUT, async {
        loop {
            if let Some(fleet) = fleets.get_opt("workers").await.unwrap()
                && ready(&fleet)
            {
                return fleet;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    });
    let fleet = wait
        .await
        .unwrap_or_else(|_| panic!("workers never became Ready"));
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

    // Deleted: the finalizer holds the object until EC2 shows no live instance, then the
    // launch template goes too.
    fleets
        .delete("workers", &DeleteParams::default())
        .await
        .unwrap();
    tokio::time::timeout(TIMEOUT, async {
        while fleets.get_opt("workers").await.unwrap().is_some() {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("workers was never deleted"));
    assert_eq!(live_of(&env.aws, OWNER).await, BTreeSet::new());
    assert_eq!(
        instances_of(&env.aws, OWNER).await.len(),
        2,
        "terminated, still described"
    );
    let templates = env
        .ctx
        .aws
        .ec2(crate::support::REGION)
        .launch_templates_with_tag(OWNER_TAG, OWNER)
        .await
        .unwrap();
    assert_eq!(templates, Vec::new());
    let calls = env.calls().await;
    assert_eq!(calls.count("ec2", "DeleteLaunchTemplate"), 1, "{calls:?}");
    env.stop().await;
}
