//! `examples/aws/event-queue.yaml` against moto: the stack creates (queue, dead-letter queue,
//! one EventBridge rule per EC2 event kind, the S3, CloudTrail and heartbeat rules, the queue
//! policy), the policy admits exactly the
//! template's rules, and an event put with `aws events put-events` that matches a rule is
//! routed to the queue while one that matches none is not (moto 5.2.5 routes EventBridge to
//! SQS; its envelope lacks `account`, which Stagehand's strict parser refuses — measured here,
//! documented in docs/testing.md).

#![allow(
    clippy::unwrap_used,
    reason = "a test module: a panic with its location is the failure report we want"
)]

use std::time::Duration;

use serde_json::json;
use stagehand::feed::event::{ApiResource, Detail, ParseError, parse};

use crate::aws_adapters::{Env, REGION};

pub const TEMPLATE: &str = include_str!("../../../examples/aws/event-queue.yaml");

/// Runs the venv's AWS CLI against `endpoint` with dummy credentials; returns stdout.
pub async fn aws_cli(endpoint: &str, args: &[&str]) -> String {
    let bin = stagehand_testenv::aws::moto::aws_cli_bin().unwrap();
    let mut command = std::process::Command::new(bin);
    command
        .args([
            "--endpoint-url",
            endpoint,
            "--region",
            REGION,
            "--output",
            "json",
        ])
        .args(args)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_DEFAULT_REGION", REGION);
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .unwrap();
    assert!(
        output.status.success(),
        "aws {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// The logical ids of the template's EventBridge rules, read from its text.
fn rules_in_template() -> Vec<String> {
    let lines: Vec<&str> = TEMPLATE.lines().collect();
    lines
        .windows(2)
        .filter(|pair| pair[1].trim() == "Type: AWS::Events::Rule")
        .map(|pair| pair[0].trim().trim_end_matches(':').to_owned())
        .collect()
}

#[tokio::test]
async fn the_event_queue_template_creates_and_routes_matching_events() {
    let env = Env::start().await;
    let cloudformation = aws_sdk_cloudformation::Client::new(&env.sdk);
    cloudformation
        .create_stack()
        .stack_name("stagehand-events")
        .template_body(TEMPLATE)
        .send()
        .await
        .unwrap();
    let stack = cloudformation
        .describe_stacks()
        .stack_name("stagehand-events")
        .send()
        .await
        .unwrap();
    let stack = &stack.stacks()[0];
    assert_eq!(
        stack
            .stack_status()
            .map(aws_sdk_cloudformation::types::StackStatus::as_str),
        Some("CREATE_COMPLETE")
    );
    let output = |key: &str| {
        stack
            .outputs()
            .iter()
            .find(|o| o.output_key() == Some(key))
            .and_then(|o| o.output_value())
            .unwrap()
            .to_owned()
    };
    assert_eq!(output("QueueName"), "stagehand-events");
    let resources = cloudformation
        .list_stack_resources()
        .stack_name("stagehand-events")
        .send()
        .await
        .unwrap();
    let count = |kind: &str| {
        resources
            .stack_resource_summaries()
            .iter()
            .filter(|r| r.resource_type() == Some(kind))
            .filter(|r| {
                r.resource_status()
                    .map(aws_sdk_cloudformation::types::ResourceStatus::as_str)
                    == Some("CREATE_COMPLETE")
            })
            .count()
    };
    let rules = rules_in_template();
    assert_eq!(rules.len(), 8, "{rules:?}");
    assert_eq!(count("AWS::Events::Rule"), rules.len());
    assert_eq!(
        count("AWS::SQS::Queue"),
        2,
        "the queue and its dead-letter queue"
    );
    // moto does not model AWS::SQS::QueuePolicy: it lists it as created with an empty logical
    // id and type, and the queue gets no Policy attribute. Every resource is created all the
    // same.
    let in_template = TEMPLATE.matches("Type: AWS::").count();
    assert_eq!(in_template, 11);
    let created = resources
        .stack_resource_summaries()
        .iter()
        .filter(|r| {
            r.resource_status()
                .map(aws_sdk_cloudformation::types::ResourceStatus::as_str)
                == Some("CREATE_COMPLETE")
        })
        .count();
    assert_eq!(created, in_template);

    // The queue as Stagehand resolves it, with its redrive to the dead-letter queue.
    let queue = env
        .aws
        .sqs(REGION)
        .resolve("stagehand-events")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(queue.arn, output("QueueArn"));
    let sqs = aws_sdk_sqs::Client::new(&env.sdk);
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(&queue.url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
        .send()
        .await
        .unwrap();
    let attributes = attributes.attributes().unwrap();
    let attribute = |name: &str| {
        attributes
            .get(&aws_sdk_sqs::types::QueueAttributeName::from(name))
            .cloned()
    };
    assert!(
        attribute("RedrivePolicy")
            .unwrap()
            .contains("stagehand-events-dlq"),
        "{attributes:?}"
    );
    assert_eq!(attribute("VisibilityTimeout").as_deref(), Some("30"));
    // The policy lets EventBridge send from the template's rules only, every one of them.
    let policy = TEMPLATE.split("QueuePolicy:").nth(1).unwrap();
    assert!(policy.contains("Service: events.amazonaws.com"));
    assert!(policy.contains("Action: sqs:SendMessage"));
    for rule in &rules {
        assert!(
            policy.contains(&format!("!GetAtt {rule}.Arn")),
            "{rule} is not allowed by the queue policy"
        );
    }
    eprintln!(
        "moto applies the queue policy to the queue: {}",
        attribute("Policy").is_some()
    );

    // Events put on the default bus: those matching a rule reach the queue.
    let endpoint = env.floor.endpoint_url();
    let entry = |source: &str, detail_type: &str, detail: serde_json::Value| json!({"Source": source, "DetailType": detail_type, "Detail": detail.to_string()});
    let instance = "i-0123456789abcdef0";
    let entries = json!([
        entry(
            "aws.ec2",
            "EC2 Spot Instance Interruption Warning",
            json!({"instance-id": instance, "instance-action": "terminate"})
        ),
        entry(
            "aws.ec2",
            "EC2 Instance State-change Notification",
            json!({"instance-id": instance, "state": "stopped"})
        ),
        // Matches no rule: an instance starting, a health event of another service.
        entry(
            "aws.ec2",
            "EC2 Instance State-change Notification",
            json!({"instance-id": instance, "state": "running"})
        ),
        entry(
            "aws.health",
            "AWS Health Event",
            json!({"service": "LAMBDA", "eventTypeCategory": "issue", "eventTypeCode": "X"})
        ),
        entry(
            "aws.s3",
            "Object Created",
            json!({"version": "0", "bucket": {"name": "builds"}, "object": {"key": "api/app.zip"}})
        ),
        entry(
            "aws.lambda",
            "AWS API Call via CloudTrail",
            json!({"eventSource": "lambda.amazonaws.com", "eventName": "UpdateAlias20150331",
                   "awsRegion": REGION, "userIdentity": {"arn": "arn:aws:iam::123456789012:user/alice"},
                   "requestParameters": {"functionName": "shop-api", "name": "live"}})
        ),
        // Creations the stretched listings rely on (`--feed-backstop-max-age`).
        entry(
            "aws.lambda",
            "AWS API Call via CloudTrail",
            json!({"eventSource": "lambda.amazonaws.com", "eventName": "CreateFunction20150331",
                   "awsRegion": REGION, "userIdentity": {"arn": "arn:aws:iam::123456789012:user/alice"},
                   "requestParameters": {"functionName": "shop-api-new"}})
        ),
        entry(
            "aws.lambda",
            "AWS API Call via CloudTrail",
            json!({"eventSource": "lambda.amazonaws.com", "eventName": "PublishLayerVersion20181031",
                   "awsRegion": REGION, "userIdentity": {"arn": "arn:aws:iam::123456789012:user/alice"},
                   "requestParameters": {"layerName": "deps"}})
        ),
        // A CloudTrail event of another service: no rule.
        entry(
            "aws.ec2",
            "AWS API Call via CloudTrail",
            json!({"eventSource": "ec2.amazonaws.com", "eventName": "RunInstances",
                   "awsRegion": REGION, "userIdentity": {}})
        ),
    ]);
    let put = aws_cli(
        &endpoint,
        &["events", "put-events", "--entries", &entries.to_string()],
    )
    .await;
    assert!(put.contains("\"FailedEntryCount\": 0"), "{put}");
    let started = std::time::Instant::now();
    let mut routed = Vec::new();
    while routed.len() < 6 && started.elapsed() < Duration::from_secs(5) {
        let messages = env
            .aws
            .sqs(REGION)
            .receive_messages(&queue.url, Duration::from_secs(1))
            .await
            .unwrap();
        routed.extend(messages);
    }
    eprintln!(
        "moto routed {} of 9 events (6 match a rule) in {:?}",
        routed.len(),
        started.elapsed()
    );
    assert_eq!(routed.len(), 6, "{routed:?}");
    let mut details = Vec::new();
    for message in &routed {
        // moto's envelope has no `account`: refused as AWS never sends it so.
        assert!(
            matches!(parse(&message.body), Err(ParseError::Unparsable(ref why)) if why.contains("account")),
            "{}",
            message.body
        );
        let mut body: serde_json::Value = serde_json::from_str(&message.body).unwrap();
        body["account"] = json!("123456789012");
        details.push(parse(&body.to_string()).unwrap().detail);
    }
    details.sort_by_key(|d| format!("{d:?}"));
    let calls: Vec<(&str, Option<&ApiResource>)> = details[..3]
        .iter()
        .filter_map(|d| match d {
            Detail::ApiCall(call) => Some((call.action.as_str(), call.resource.as_ref())),
            _ => None,
        })
        .collect();
    assert_eq!(
        calls,
        [
            (
                "CreateFunction",
                Some(&ApiResource::Function("shop-api-new".into()))
            ),
            (
                "PublishLayerVersion",
                Some(&ApiResource::Layer("deps".into()))
            ),
            (
                "UpdateAlias",
                Some(&ApiResource::Function("shop-api".into()))
            ),
        ],
        "{details:?}"
    );
    assert!(
        matches!(&details[3], Detail::ObjectCreated { key, .. } if key == "api/app.zip"),
        "{details:?}"
    );
    assert!(
        matches!(&details[4], Detail::SpotInterruptionWarning { instance_id, .. } if instance_id == instance),
        "{details:?}"
    );
    assert!(
        matches!(&details[5], Detail::StateChange { instance_id, .. } if instance_id == instance),
        "{details:?}"
    );
}
