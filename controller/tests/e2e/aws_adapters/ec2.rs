use std::collections::BTreeMap;

use stagehand::aws::ec2::{InstanceInfo, LaunchRequest};
use stagehand::aws::tags::{OWNER_TAG, tags_to_write};
use stagehand::aws::{Ownership, ownership};

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
