//! What a SpotFleet launches from, against moto through the proxy (rounds as the reconciler
//! runs them, without Kubernetes): the fleet's launch template keeps only the versions its live
//! instances were launched from (and its default, which EC2 will not delete) after spec
//! changes; an image or a security group the spec names that does not exist stalls the fleet
//! naming it, before any launch, and the fixed spec launches at once; an instance whose security
//! groups or instance profile are changed by hand is replaced, and only that one.
//!
//! moto has not implemented `DeleteLaunchTemplateVersions` (HTTP 500): the proxy answers it
//! from moto's listing and hides the deleted versions from then on
//! (`stagehand_testenv::aws::moto_lt_versions`). moto launches from an unknown image or
//! security group: the fleet looks them up first. moto does not put a fleet template's groups
//! and profile on the instances: the proxy does (`moto_fleet_launch`); the hand edits are moto's
//! own `ModifyInstanceAttribute --groups` and `DisassociateIamInstanceProfile`.

#![allow(
    clippy::unwrap_used,
    reason = "a test module: a panic with its location is the failure report we want"
)]

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;
use stagehand_crds::SPEC_HASH_TAG;

use stagehand::spot_fleet::plan::{Action, HandEdit, ReplacementReason, TerminateReason};

use crate::event_queue_template::aws_cli;
use crate::spot_fleet_round::{Fleet, World, instances_of, live_of};
use crate::support::REGION;

/// The fleet's launch template versions as EC2 lists them: number → (description, default).
async fn template_versions(world: &World) -> BTreeMap<i64, (String, bool)> {
    let client = aws_sdk_ec2::Client::new(&world.aws.sdk);
    let templates = client.describe_launch_templates().send().await.unwrap();
    let [template] = templates.launch_templates() else {
        panic!("one template: {templates:?}");
    };
    let versions = client
        .describe_launch_template_versions()
        .launch_template_id(template.launch_template_id().unwrap())
        .send()
        .await
        .unwrap();
    versions
        .launch_template_versions()
        .iter()
        .map(|v| {
            (
                v.version_number().unwrap(),
                (
                    v.version_description().unwrap_or_default().to_owned(),
                    v.default_version().unwrap_or(false),
                ),
            )
        })
        .collect()
}

/// The spec hashes `owner`'s live instances carry.
async fn live_hashes(world: &World, owner: &str) -> BTreeSet<String> {
    instances_of(&world.aws, owner)
        .await
        .into_values()
        .filter(|(state, _)| state == "pending" || state == "running")
        .filter_map(|(_, tags)| tags.get(SPEC_HASH_TAG).cloned())
        .collect()
}

fn build(world: &World, build: u32) -> serde_json::Value {
    world.spec(
        2,
        &json!({"userData": format!("#cloud-config\nruncmd:\n  - echo {build}\n")}),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_two_spec_changes_the_template_keeps_only_the_versions_live_instances_use() {
    let world = World::start().await;
    let mut fleet = Fleet::new("gpu", &build(&world, 1));
    world.converge(&mut fleet).await;
    let first = template_versions(&world).await;
    assert_eq!(first.len(), 1, "{first:?}");
    world.aws.floor.reset_calls().await.unwrap();

    for change in [2, 3] {
        fleet.change(build(&world, change));
        world.converge(&mut fleet).await;
    }
    let versions = template_versions(&world).await;
    let hashes = live_hashes(&world, &fleet.owner()).await;
    assert_eq!(hashes.len(), 1, "every instance in date: {hashes:?}");
    // Version 1 (the first spec) is the default: EC2 refuses to delete it. Version 2 (the
    // second spec) went once its last instance did; version 3 is what runs.
    let kept: Vec<(i64, bool)> = versions.iter().map(|(n, (_, d))| (*n, *d)).collect();
    assert_eq!(kept, [(1, true), (3, false)], "{versions:?}");
    assert!(hashes.contains(&versions[&3].0), "{versions:?} {hashes:?}");
    let calls = world.aws.floor.calls().await.unwrap();
    // One deletion per spec change that left a version unused: the first change left only the
    // default behind, the second the version of the first change.
    assert_eq!(
        calls.count("ec2", "DeleteLaunchTemplateVersions"),
        1,
        "{calls:?}"
    );
    assert_eq!(calls.count("ec2", "CreateLaunchTemplateVersion"), 2);

    // Converged: a resync deletes nothing and asks nothing about the template.
    world.aws.floor.reset_calls().await.unwrap();
    let plans = world.converge(&mut fleet).await;
    assert_eq!(plans.len(), 1, "{plans:?}");
    let calls = world.aws.floor.calls().await.unwrap();
    assert_eq!(calls.service_total("ec2"), 0, "{calls:?}");
}

/// Runs rounds on a spec naming something missing: the first is refused before any launch, the
/// next ones stall naming `id` in `field` without asking EC2 again (`lookups`: the calls of
/// `DescribeSubnets`, `DescribeImages` and `DescribeSecurityGroups` in all); the fixed spec
/// converges.
pub async fn stalls_naming(world: &World, fleet: &mut Fleet, field: &str, id: &str, lookups: u64) {
    world.aws.floor.reset_calls().await.unwrap();
    let first = world.try_round(fleet).await;
    let (_, failure) = first.report.failure.expect("the launch is refused");
    assert_eq!(
        stagehand::base::Classify::reason(&failure),
        "LaunchSpecRefused"
    );
    for _ in 0..2 {
        let round = world.try_round(fleet).await;
        let stall = round.plan.stalled.expect("stalled on the missing resource");
        assert_eq!(stall.reason, "LaunchSpecRefused");
        assert!(
            stall.message.contains(&format!("spec.{field}")) && stall.message.contains(id),
            "{}",
            stall.message
        );
        assert!(round.plan.actions.is_empty());
    }
    let calls = world.aws.floor.calls().await.unwrap();
    assert_eq!(calls.count("ec2", "CreateFleet"), 0, "{calls:?}");
    let asked = [
        "DescribeSubnets",
        "DescribeImages",
        "DescribeSecurityGroups",
    ]
    .map(|operation| calls.count("ec2", operation));
    assert_eq!(
        asked.iter().sum::<u64>(),
        lookups,
        "looked up once, not every round: {calls:?}"
    );
    fleet.change(world.spec(1, &json!({})));
    world.converge(fleet).await;
    assert_eq!(live_of(&world.aws, &fleet.owner()).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_image_stalls_the_fleet_naming_it_before_any_launch() {
    let world = World::start().await;
    let missing = "ami-0000000000000dead";
    let mut fleet = Fleet::new("gpu", &world.spec(1, &json!({"imageId": missing})));
    stalls_naming(&world, &mut fleet, "imageId", missing, 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_security_group_stalls_the_fleet_naming_it_before_any_launch() {
    let world = World::start().await;
    let missing = "sg-0000000000000dead";
    let groups = json!([world.network.security_group, missing]);
    let mut fleet = Fleet::new("gpu", &world.spec(1, &json!({"securityGroupIds": groups})));
    stalls_naming(&world, &mut fleet, "securityGroupIds", missing, 3).await;
}

/// The instances each plan terminated, with why.
fn replaced(plans: &[stagehand::spot_fleet::plan::Plan]) -> Vec<(String, TerminateReason)> {
    plans
        .iter()
        .flat_map(|p| &p.actions)
        .filter_map(|a| match a {
            Action::Terminate { ids, reason } => Some(ids.iter().map(|id| (id.clone(), *reason))),
            _ => None,
        })
        .flatten()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_whose_groups_or_profile_are_changed_by_hand_is_replaced_alone() {
    let world = World::start().await;
    let endpoint = world.aws.floor.endpoint_url();
    let profile = "worker";
    aws_cli(
        &endpoint,
        &[
            "iam",
            "create-instance-profile",
            "--instance-profile-name",
            profile,
        ],
    )
    .await;
    let spec = world.spec(3, &json!({"iamInstanceProfile": profile}));
    let mut fleet = Fleet::new("gpu", &spec);
    world.converge(&mut fleet).await;
    // Launched as EC2 would: the spec's group and profile on every instance, so a resync
    // replaces nothing.
    world.inventory.forget(REGION);
    let plans = world.converge(&mut fleet).await;
    assert_eq!(replaced(&plans), [], "{plans:?}");
    let live: Vec<String> = live_of(&world.aws, &fleet.owner())
        .await
        .into_iter()
        .collect();
    let [regrouped, unprofiled, untouched] = &live[..] else {
        panic!("{live:?}");
    };

    // Someone moves one instance to another group, and takes the profile off another.
    let client = aws_sdk_ec2::Client::new(&world.aws.sdk);
    let vpc = client.describe_vpcs().send().await.unwrap();
    let other = client
        .create_security_group()
        .group_name("by-hand")
        .description("added by hand")
        .vpc_id(vpc.vpcs()[0].vpc_id().unwrap())
        .send()
        .await
        .unwrap();
    client
        .modify_instance_attribute()
        .instance_id(regrouped)
        .groups(other.group_id().unwrap())
        .send()
        .await
        .unwrap();
    let associations = client
        .describe_iam_instance_profile_associations()
        .send()
        .await
        .unwrap();
    let association = associations
        .iam_instance_profile_associations()
        .iter()
        .find(|a| a.instance_id() == Some(unprofiled.as_str()))
        .and_then(|a| a.association_id())
        .unwrap();
    client
        .disassociate_iam_instance_profile()
        .association_id(association)
        .send()
        .await
        .unwrap();

    world.inventory.forget(REGION);
    let plans = world.converge(&mut fleet).await;
    let mut got = replaced(&plans);
    got.sort();
    let mut want = vec![
        (
            regrouped.clone(),
            TerminateReason::Replaced(ReplacementReason::HandEdited(HandEdit::SecurityGroups)),
        ),
        (
            unprofiled.clone(),
            TerminateReason::Replaced(ReplacementReason::HandEdited(HandEdit::InstanceProfile)),
        ),
    ];
    want.sort();
    assert_eq!(got, want, "{plans:?}");
    let after = live_of(&world.aws, &fleet.owner()).await;
    assert_eq!(after.len(), 3, "{after:?}");
    assert!(after.contains(untouched), "{after:?}");
    assert!(!after.contains(regrouped) && !after.contains(unprofiled));
}
