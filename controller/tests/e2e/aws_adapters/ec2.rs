//! The EC2 adapter and inventory against moto: spot launches, launch templates and their
//! versions, `CreateFleet` of type `instant` tagged at launch, the region-wide listing by owner
//! tag key that serves every fleet in one `DescribeInstances`, and terminations read back.
//! What moto does differently from AWS is listed in docs/testing.md ("EC2 in moto").

use std::collections::BTreeMap;
use std::time::Duration;

use stagehand::aws::ec2::{
    FleetOverride, FleetRequest, InstanceInfo, LaunchRequest, LaunchTemplateSpec,
};
use stagehand::aws::tags::{OWNER_TAG, tags_to_write};
use stagehand::aws::{ErrorKind, Ownership, ownership};
use stagehand::base::{Classify, ErrorClass};
use stagehand::inventory::{Inventory, Offering};
use stagehand_crds::{SPEC_HASH_TAG, SPEC_HASH_VERSION_TAG};
use stagehand_testenv::aws::{FaultAction, FaultRule};

use super::{Env, REGION};

const FLEET: &str = "ml/SpotFleet/gpu";

#[tokio::test]
async fn spot_instances_are_launched_tagged_found_by_tag_and_terminated() {
    let env = Env::start().await;
    let ec2 = env.aws.ec2(REGION);
    let tags = tags_to_write(
        FLEET,
        "test-cluster",
        &BTreeMap::from([("stagehand.dev/spec-hash".to_owned(), "abc123".to_owned())]),
    );
    let user_data = "#cloud-config\nruncmd:\n  - echo hello\n";
    let mut launched = Vec::new();
    for i in 0..2 {
        let instance = ec2
            .run_spot_instance(&LaunchRequest {
                image_id: "ami-12c6146b".into(),
                instance_type: "t3.micro".into(),
                user_data: Some(user_data.into()),
                tags: tags.clone(),
                max_price: Some("0.05".into()),
                client_token: Some(format!("gpu-{i}")),
                ..LaunchRequest::default()
            })
            .await
            .unwrap();
        assert!(instance.id.starts_with("i-"));
        assert_eq!(instance.lifecycle.as_deref(), Some("spot"));
        launched.push(instance.id);
    }
    // An instance of another fleet must not be found.
    ec2.run_spot_instance(&LaunchRequest {
        image_id: "ami-12c6146b".into(),
        instance_type: "t3.micro".into(),
        tags: tags_to_write("ml/SpotFleet/cpu", "test-cluster", &BTreeMap::new()),
        ..LaunchRequest::default()
    })
    .await
    .unwrap();

    let mut found = ec2
        .describe_instances_by_tag(OWNER_TAG, FLEET)
        .await
        .unwrap();
    found.sort_by(|a, b| a.id.cmp(&b.id));
    launched.sort();
    assert_eq!(
        found.iter().map(|i| i.id.clone()).collect::<Vec<_>>(),
        launched
    );
    for instance in &found {
        assert_eq!(
            ownership(&instance.tags, FLEET, "test-cluster"),
            Ownership::Ours
        );
        assert_eq!(instance.tags["stagehand.dev/spec-hash"], "abc123");
        assert_eq!(instance.instance_type.as_deref(), Some("t3.micro"));
        assert!(!instance.is_terminating());
    }
    // User data round-trips (base64 on the wire, plain text for us).
    let attribute = aws_sdk_ec2::Client::new(&env.sdk)
        .describe_instance_attribute()
        .instance_id(&launched[0])
        .attribute(aws_sdk_ec2::types::InstanceAttributeName::UserData)
        .send()
        .await
        .unwrap();
    let encoded = attribute.user_data().and_then(|v| v.value()).unwrap();
    assert_eq!(
        aws_smithy_types::base64::decode(encoded).unwrap(),
        user_data.as_bytes()
    );

    let health = ec2.instance_status(&launched).await.unwrap();
    assert_eq!(health.len(), 2);
    assert!(
        health
            .iter()
            .all(|h| h.state == "running" || h.state == "pending"),
        "{health:?}"
    );

    let terminated = ec2.terminate_instances(&launched).await.unwrap();
    assert_eq!(terminated.len(), 2);
    let after = ec2
        .describe_instances_by_tag(OWNER_TAG, FLEET)
        .await
        .unwrap();
    assert!(after.iter().all(InstanceInfo::is_terminating), "{after:?}");
    assert_eq!(ec2.terminate_instances(&[]).await.unwrap(), Vec::new());
    env.report("ec2");
}

/// The default VPC's first two subnets (moto seeds one per zone) and a security group.
async fn network(env: &Env) -> (Vec<String>, String) {
    let client = aws_sdk_ec2::Client::new(&env.sdk);
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
    (
        subnets.into_iter().take(2).map(|(_, id)| id).collect(),
        group.group_id().unwrap().to_owned(),
    )
}

fn fleet_tags(owner: &str, spec_hash: &str) -> BTreeMap<String, String> {
    tags_to_write(
        owner,
        "test-cluster",
        &BTreeMap::from([
            (SPEC_HASH_TAG.to_owned(), spec_hash.to_owned()),
            (SPEC_HASH_VERSION_TAG.to_owned(), "v1".to_owned()),
        ]),
    )
}

fn spec(spec_hash: &str, security_group: &str) -> LaunchTemplateSpec {
    LaunchTemplateSpec {
        image_id: "ami-12c6146b".into(),
        user_data: Some("#cloud-config\nruncmd:\n  - echo hello\n".into()),
        iam_instance_profile: Some("arn:aws:iam::123456789012:instance-profile/fleet".into()),
        key_name: Some("ops".into()),
        security_group_ids: vec![security_group.to_owned()],
        tags: fleet_tags(FLEET, spec_hash),
        description: Some(format!("{SPEC_HASH_TAG}={spec_hash}")),
        ..LaunchTemplateSpec::default()
    }
}

#[tokio::test]
async fn launch_templates_have_one_version_per_spec_hash() {
    let env = Env::start().await;
    let ec2 = env.aws.ec2(REGION);
    let (_, group) = network(&env).await;
    let ownership_tags = tags_to_write(FLEET, "test-cluster", &BTreeMap::new());
    let name = "stagehand-ml-gpu";
    assert_eq!(ec2.describe_launch_template(name).await.unwrap(), None);

    let template = ec2
        .create_launch_template(name, &ownership_tags, &spec("aaa", &group), Some("t-1"))
        .await
        .unwrap();
    assert!(template.id.starts_with("lt-"), "{template:?}");
    assert_eq!(template.name, name);
    assert_eq!(template.latest_version, Some(1));
    assert_eq!(
        ownership(&template.tags, FLEET, "test-cluster"),
        Ownership::Ours
    );
    // Created again (a retry after a crash): the existing template, not an error.
    let again = ec2
        .create_launch_template(name, &ownership_tags, &spec("aaa", &group), Some("t-2"))
        .await
        .unwrap();
    assert_eq!(again.id, template.id);
    assert_eq!(
        ec2.describe_launch_template(name)
            .await
            .unwrap()
            .map(|t| t.id),
        Some(template.id.clone())
    );

    // Found by owner tag; another fleet's template is not.
    ec2.create_launch_template(
        "stagehand-ml-cpu",
        &tags_to_write("ml/SpotFleet/cpu", "test-cluster", &BTreeMap::new()),
        &spec("ccc", &group),
        None,
    )
    .await
    .unwrap();
    let owned = ec2
        .launch_templates_with_tag(OWNER_TAG, FLEET)
        .await
        .unwrap();
    assert_eq!(
        owned.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(),
        [template.id.as_str()]
    );

    let second = ec2
        .create_launch_template_version(&template.id, &spec("bbb", &group), Some("v-bbb"))
        .await
        .unwrap();
    assert_eq!(second.number, 2);
    assert!(
        !second.is_default,
        "fleets name versions; the default stays"
    );

    let versions = ec2.launch_template_versions(&template.id).await.unwrap();
    let summary: Vec<(i64, Option<&str>, Option<&str>)> = versions
        .iter()
        .map(|v| {
            (
                v.number,
                v.description.as_deref(),
                v.instance_tag(SPEC_HASH_TAG),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (1, Some("stagehand.dev/spec-hash=aaa"), Some("aaa")),
            (2, Some("stagehand.dev/spec-hash=bbb"), Some("bbb")),
        ]
    );
    assert!(versions[0].is_default);
    assert_eq!(versions[1].image_id.as_deref(), Some("ami-12c6146b"));
    assert_eq!(
        versions[1].instance_tag(OWNER_TAG),
        Some(FLEET),
        "instances launched from it are owned at launch"
    );

    // moto 5.2.5 has not implemented DeleteLaunchTemplateVersions (HTTP 500): the proxy answers
    // it as EC2 does (`moto_lt_versions`), per version: the default is refused, a version
    // deleted is gone from the listing, and deleting it again is refused as missing.
    assert_eq!(
        ec2.delete_launch_template_versions(&template.id, &[1, 2])
            .await
            .unwrap(),
        [(1, "unexpectedError".to_owned())]
    );
    let left = ec2.launch_template_versions(&template.id).await.unwrap();
    assert_eq!(left.iter().map(|v| v.number).collect::<Vec<_>>(), [1]);
    assert_eq!(
        ec2.delete_launch_template_versions(&template.id, &[2])
            .await
            .unwrap(),
        [(2, "launchTemplateVersionDoesNotExist".to_owned())]
    );
    assert_eq!(
        ec2.delete_launch_template_versions(&template.id, &[])
            .await
            .unwrap(),
        Vec::new()
    );

    assert!(ec2.delete_launch_template(&template.id).await.unwrap());
    assert!(
        !ec2.delete_launch_template(&template.id).await.unwrap(),
        "already gone: an answer, not an error"
    );
    assert_eq!(ec2.describe_launch_template(name).await.unwrap(), None);
    assert_eq!(
        ec2.launch_template_versions("lt-0000000000000000")
            .await
            .unwrap(),
        Vec::new()
    );
    env.report("ec2 templates");
}

#[tokio::test]
async fn a_fleet_launches_tagged_spot_instances_listed_once_for_every_owner() {
    let env = Env::start().await;
    let ec2 = env.aws.ec2(REGION);
    let (subnets, group) = network(&env).await;
    let zones = ec2.subnet_zones(&subnets).await.unwrap();
    assert_eq!(zones.len(), 2, "{zones:?}");

    let template = ec2
        .create_launch_template(
            "stagehand-ml-gpu",
            &tags_to_write(FLEET, "test-cluster", &BTreeMap::new()),
            &spec("aaa", &group),
            None,
        )
        .await
        .unwrap();
    let overrides: Vec<FleetOverride> = ["t3.micro", "t3.small"]
        .iter()
        .flat_map(|instance_type| {
            subnets.iter().map(|subnet| FleetOverride {
                instance_type: (*instance_type).to_owned(),
                subnet_id: subnet.clone(),
                availability_zone: zones.get(subnet).cloned(),
            })
        })
        .collect();
    let request = FleetRequest {
        launch_template_id: template.id.clone(),
        launch_template_version: 1,
        overrides: overrides.clone(),
        target_capacity: 3,
        max_price: Some("0.05".into()),
        tags: tags_to_write(FLEET, "test-cluster", &BTreeMap::new()),
        client_token: Some("gpu-launch-1".into()),
    };
    let launch = ec2.create_fleet_instant(&request).await.unwrap();
    assert!(launch.fleet_id.is_some());
    assert_eq!(launch.errors, Vec::new());
    assert_eq!(launch.shortfall(3), 0, "{launch:?}");
    for instance in &launch.instances {
        let pool = overrides
            .iter()
            .find(|o| Some(o.subnet_id.as_str()) == instance.subnet_id.as_deref())
            .unwrap();
        assert_eq!(instance.availability_zone, pool.availability_zone);
        assert_eq!(
            instance.instance_type.as_deref(),
            Some(pool.instance_type.as_str())
        );
    }

    // Another fleet's instance and an untagged one share the region.
    let other = ec2
        .run_spot_instance(&LaunchRequest {
            image_id: "ami-12c6146b".into(),
            instance_type: "t3.micro".into(),
            tags: tags_to_write("ml/SpotFleet/cpu", "test-cluster", &BTreeMap::new()),
            ..LaunchRequest::default()
        })
        .await
        .unwrap();
    let untagged = ec2
        .run_spot_instance(&LaunchRequest {
            image_id: "ami-12c6146b".into(),
            instance_type: "t3.micro".into(),
            ..LaunchRequest::default()
        })
        .await
        .unwrap();

    let listed = ec2
        .describe_instances_with_tag_key(OWNER_TAG)
        .await
        .unwrap();
    assert_eq!(listed.len(), 4, "{listed:?}");
    assert!(listed.iter().all(|i| i.id != untagged.id));
    assert!(
        listed
            .iter()
            .any(|i| i.id == other.id && i.tag(OWNER_TAG) == Some("ml/SpotFleet/cpu"))
    );

    env.floor.reset_calls().await.unwrap();
    let inventory = Inventory::new(env.aws.clone(), Duration::from_secs(600));
    let ec2_inventory = inventory.ec2(REGION);
    // What the launch returned counts until listed; listed, it is not counted twice.
    ec2_inventory.instances_launched(&launch.instances, &request.tags);
    let mut ours = ec2_inventory.instances_of(FLEET).await.unwrap();
    let theirs = ec2_inventory
        .instances_of("ml/SpotFleet/cpu")
        .await
        .unwrap();
    assert_eq!(
        describe_instances_calls(&env).await,
        1,
        "one page serves every fleet of the region (read after the launch: the launcher's too)"
    );
    // Fifty fleets asking at once, the listing just dropped: one call, shared.
    ec2_inventory.forget_older_than(Duration::ZERO);
    let owners = [FLEET, "ml/SpotFleet/cpu"];
    let asked =
        futures::future::join_all((0..50).map(|i| ec2_inventory.instances_of(owners[i % 2]))).await;
    assert!(asked.iter().all(Result::is_ok));
    assert_eq!(
        describe_instances_calls(&env).await,
        2,
        "concurrent readers wait for one listing"
    );
    assert_eq!(
        theirs.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(),
        [other.id.as_str()]
    );
    ours.sort_by(|a, b| a.id.cmp(&b.id));
    let mut launched = launch.instance_ids();
    launched.sort();
    assert_eq!(
        ours.iter().map(|i| i.id.clone()).collect::<Vec<_>>(),
        launched
    );
    let client = aws_sdk_ec2::Client::new(&env.sdk);
    for instance in &ours {
        // Tagged at launch: the template's tags (ownership and spec hash) and the fleet's.
        assert_eq!(
            ownership(&instance.tags, FLEET, "test-cluster"),
            Ownership::Ours
        );
        assert_eq!(instance.tag(SPEC_HASH_TAG), Some("aaa"));
        assert_eq!(instance.tag(SPEC_HASH_VERSION_TAG), Some("v1"));
        assert!(instance.is_spot(), "{instance:?}");
        assert_eq!(instance.state, "running");
        assert!(instance.subnet_id.is_some() && instance.availability_zone.is_some());
        assert_eq!(
            zones.get(instance.subnet_id.as_deref().unwrap()),
            instance.availability_zone.as_ref()
        );
        // The template's group (moto gives the VPC's default one; the proxy puts the template's
        // on, as EC2 does: `moto_fleet_launch`).
        assert_eq!(instance.security_group_ids, std::slice::from_ref(&group));
        // The volumes too.
        let volumes = client
            .describe_volumes()
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("attachment.instance-id")
                    .values(&instance.id)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        assert!(!volumes.volumes().is_empty());
        for volume in volumes.volumes() {
            let tags: BTreeMap<String, String> = volume
                .tags()
                .iter()
                .map(|t| {
                    (
                        t.key().unwrap_or_default().to_owned(),
                        t.value().unwrap_or_default().to_owned(),
                    )
                })
                .collect();
            assert_eq!(ownership(&tags, FLEET, "test-cluster"), Ownership::Ours);
        }
    }

    // Terminated by us: the fleet's own are read back and show them as EC2 reports them.
    let gone = ec2.terminate_instances(&launched[..1]).await.unwrap();
    assert_eq!(gone.len(), 1);
    ec2_inventory.instances_written(FLEET);
    let after = ec2_inventory.instances_of(FLEET).await.unwrap();
    assert_eq!(after.len(), 3, "terminated instances stay listed");
    let terminated: Vec<&InstanceInfo> = after.iter().filter(|i| i.is_terminated()).collect();
    assert_eq!(terminated.len(), 1);
    assert_eq!(terminated[0].id, launched[0]);
    assert_eq!(
        terminated[0].state_reason_code.as_deref(),
        Some("Client.UserInitiatedShutdown")
    );
    assert_eq!(
        describe_instances_calls(&env).await,
        3,
        "after a write, the writer reads its own, by its owner tag"
    );
    assert_eq!(
        ec2_inventory
            .instances_of("ml/SpotFleet/cpu")
            .await
            .unwrap()
            .len(),
        1,
        "the others keep the shared listing"
    );
    assert_eq!(describe_instances_calls(&env).await, 3);
    env.report("ec2 fleet");
}

#[tokio::test]
async fn a_throttled_launch_or_listing_is_an_error_and_stores_nothing() {
    let env = Env::start().await;
    let ec2 = env.aws.ec2(REGION);
    for operation in ["CreateFleet", "DescribeInstances"] {
        env.floor
            .add_fault(
                &FaultRule::new(FaultAction::throttle())
                    .service("ec2")
                    .operation(operation),
            )
            .await
            .unwrap();
    }
    let err = ec2
        .create_fleet_instant(&FleetRequest {
            launch_template_id: "lt-0123456789abcdef0".into(),
            launch_template_version: 1,
            overrides: vec![FleetOverride {
                instance_type: "t3.micro".into(),
                subnet_id: "subnet-1".into(),
                availability_zone: None,
            }],
            target_capacity: 1,
            ..FleetRequest::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Throttled, "{err}");
    assert_eq!(err.code.as_deref(), Some("RequestLimitExceeded"));
    assert_eq!(err.class(), ErrorClass::Recoverable);
    assert_eq!(env.calls("ec2", "CreateFleet", "throttled"), 1);

    let inventory = Inventory::new(env.aws.clone(), Duration::from_secs(600));
    let err = inventory.ec2(REGION).instances_of(FLEET).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Throttled, "{err}");
    env.floor.clear_faults().await.unwrap();
    env.floor.reset_calls().await.unwrap();
    assert_eq!(
        inventory.ec2(REGION).instances_of(FLEET).await.unwrap(),
        Vec::new()
    );
    assert_eq!(
        describe_instances_calls(&env).await,
        1,
        "the failed listing was not kept: listed again"
    );
    env.report("ec2 throttled");
}

#[tokio::test]
async fn a_pool_without_capacity_is_reported_as_data_and_left_out() {
    let env = Env::start().await;
    let ec2 = env.aws.ec2(REGION);
    let (subnets, group) = network(&env).await;
    let zones = ec2.subnet_zones(&subnets).await.unwrap();
    let template = ec2
        .create_launch_template(
            "stagehand-ml-gpu",
            &tags_to_write(FLEET, "test-cluster", &BTreeMap::new()),
            &spec("aaa", &group),
            None,
        )
        .await
        .unwrap();
    let pool = |instance_type: &str, subnet: &String| FleetOverride {
        instance_type: instance_type.to_owned(),
        subnet_id: subnet.clone(),
        availability_zone: zones.get(subnet).cloned(),
    };
    // moto never reports a refused pool; the proxy adds EC2's answer for the second one.
    env.floor
        .add_fault(
            &FaultRule::new(FaultAction::fleet_error(
                "InsufficientInstanceCapacity",
                "t3.small",
                &subnets[1],
            ))
            .times(1),
        )
        .await
        .unwrap();
    let request = FleetRequest {
        launch_template_id: template.id.clone(),
        launch_template_version: 1,
        overrides: vec![pool("t3.micro", &subnets[0]), pool("t3.small", &subnets[1])],
        target_capacity: 2,
        tags: tags_to_write(FLEET, "test-cluster", &BTreeMap::new()),
        ..FleetRequest::default()
    };
    let launch = ec2.create_fleet_instant(&request).await.unwrap();
    assert_eq!(
        launch.instances.len(),
        2,
        "a refused pool is not a failed call"
    );
    assert_eq!(launch.errors.len(), 1, "{launch:?}");
    let refused = &launch.errors[0];
    assert_eq!(refused.code, "InsufficientInstanceCapacity");
    assert!(refused.is_capacity());
    assert_eq!(refused.subnet_id.as_deref(), Some(subnets[1].as_str()));
    let zone = zones[&subnets[1]].clone();
    assert_eq!(
        refused.offering(),
        Some(("t3.small".to_owned(), zone.clone())),
        "the zone comes from the pool the request named"
    );
    assert_eq!(env.calls("ec2", "CreateFleet", "success"), 1);

    let inventory = Inventory::new(env.aws.clone(), Duration::from_secs(600));
    let ec2_inventory = inventory.ec2(REGION);
    ec2_inventory.launch_failed(&launch.errors);
    let left_out = ec2_inventory.unavailable_offerings();
    assert_eq!(
        left_out
            .get(&Offering::new("t3.small", &zone))
            .map(String::as_str),
        Some("InsufficientInstanceCapacity")
    );
    assert_eq!(left_out.len(), 1);
    env.report("ec2 fleet errors");
}

/// `DescribeInstances` calls the proxy counted since its last reset.
async fn describe_instances_calls(env: &Env) -> u64 {
    env.floor
        .calls()
        .await
        .unwrap()
        .count("ec2", "DescribeInstances")
}
