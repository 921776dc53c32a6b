use std::collections::BTreeMap;

use stagehand::aws::cloudformation::{ChangeSetKind, ChangeSetRequest};

use super::{Env, REGION};

const BUCKET: &str = "templates";

const TEMPLATE: &str = r#"{
  "Parameters": {"Stage": {"Type": "String"}},
  "Resources": {
    "Orders": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": {"Fn::Join": ["-", ["orders", {"Ref": "Stage"}]]}}}
  },
  "Outputs": {"OrdersUrl": {"Value": {"Ref": "Orders"}}}
}"#;

fn request(name: &str, kind: ChangeSetKind) -> ChangeSetRequest {
    ChangeSetRequest {
        stack_name: "shop-dev".into(),
        change_set_name: name.into(),
        kind,
        // moto resolves template URLs by AWS's own S3 host names, not by its endpoint.
        template_url: format!("https://s3.amazonaws.com/{BUCKET}/stack.json"),
        parameters: BTreeMap::from([("Stage".to_owned(), "dev".to_owned())]),
        capabilities: vec!["CAPABILITY_IAM".into()],
        tags: BTreeMap::from([(
            "stagehand.dev/owner".to_owned(),
            "shop/LambdaStage/dev".to_owned(),
        )]),
    }
}

#[tokio::test]
async fn change_sets_create_then_an_unchanged_update_is_recognised_as_empty() {
    let env = Env::start().await;
    env.s3_client()
        .create_bucket()
        .bucket(BUCKET)
        .send()
        .await
        .unwrap();
    env.aws
        .s3(REGION)
        .put_bytes(
            BUCKET,
            "stack.json",
            TEMPLATE,
            stagehand::aws::s3::ObjectMetadata::default(),
        )
        .await
        .unwrap();
    let cfn = env.aws.cloudformation(REGION);
    assert_eq!(cfn.describe_stack("shop-dev").await.unwrap(), None);

    cfn.create_change_set(&request("create-1", ChangeSetKind::Create))
        .await
        .unwrap();
    let change_set = cfn
        .describe_change_set("shop-dev", "create-1")
        .await
        .unwrap()
        .unwrap();
    assert!(!change_set.is_empty(), "{change_set:?}");
    assert_eq!(change_set.status, "CREATE_COMPLETE");
    cfn.execute_change_set("shop-dev", "create-1")
        .await
        .unwrap();

    let stack = cfn.describe_stack("shop-dev").await.unwrap().unwrap();
    assert_eq!(stack.status, "CREATE_COMPLETE");
    assert!(!stack.in_progress());
    assert_eq!(stack.tags["stagehand.dev/owner"], "shop/LambdaStage/dev");
    assert_eq!(stack.parameters["Stage"], "dev");
    // moto leaves Outputs empty on stacks made through change sets (checked below on a stack
    // created directly).
    let resources = cfn.list_stack_resources("shop-dev").await.unwrap();
    assert_eq!(resources.len(), 1);
    assert_eq!(resources[0].logical_id, "Orders");
    assert_eq!(resources[0].resource_type, "AWS::SQS::Queue");
    assert!(
        resources[0]
            .physical_id
            .as_deref()
            .unwrap()
            .ends_with("orders-dev")
    );

    // Same template, same parameters: nothing to change.
    cfn.create_change_set(&request("update-1", ChangeSetKind::Update))
        .await
        .unwrap();
    let empty = cfn
        .describe_change_set("shop-dev", "update-1")
        .await
        .unwrap()
        .unwrap();
    assert!(
        empty.is_empty(),
        "an unchanged update must be recognised as empty: {empty:?}"
    );
    cfn.delete_change_set("shop-dev", "update-1").await.unwrap();

    aws_sdk_cloudformation::Client::new(&env.sdk)
        .create_stack()
        .stack_name("direct")
        .template_body(TEMPLATE)
        .parameters(
            aws_sdk_cloudformation::types::Parameter::builder()
                .parameter_key("Stage")
                .parameter_value("qa")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let direct = cfn.describe_stack("direct").await.unwrap().unwrap();
    assert!(
        direct.outputs["OrdersUrl"].ends_with("/orders-qa"),
        "{direct:?}"
    );

    cfn.delete_stack("shop-dev").await.unwrap();
    let gone = cfn.describe_stack("shop-dev").await.unwrap();
    assert!(
        gone.as_ref().is_none_or(|s| s.status == "DELETE_COMPLETE"),
        "{gone:?}"
    );
    env.report("cloudformation");
}
