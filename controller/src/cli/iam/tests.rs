use std::path::PathBuf;

use super::*;
use crate::aws::operations::CLUSTER_ID_PLACEHOLDER;

fn repo_file(path: &str) -> String {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    std::fs::read_to_string(root.join(path)).unwrap()
}

fn args(kinds: &[Kind], format: IamFormat) -> IamPolicyArgs {
    IamPolicyArgs {
        kinds: kinds.to_vec(),
        cluster_id: CLUSTER_ID_PLACEHOLDER.to_owned(),
        format,
        check_calls: None,
    }
}

fn actions(policy: &Value) -> BTreeSet<String> {
    policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["Action"].as_array().unwrap())
        .map(|a| a.as_str().unwrap().to_owned())
        .collect()
}

fn statements_granting<'a>(policy: &'a Value, action: &str) -> Vec<&'a Value> {
    policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["Action"].as_array().unwrap().iter().any(|a| a == action))
        .collect()
}

#[test]
fn the_shipped_policy_is_the_commands_output() {
    let generated = render(&args(&[], IamFormat::Json));
    assert_eq!(
        repo_file("charts/stagehand/iam/policy.json"),
        generated,
        "charts/stagehand/iam/policy.json is stale: cargo run -p stagehand -- iam-policy > charts/stagehand/iam/policy.json"
    );
}

#[test]
fn the_documented_table_is_the_commands_markdown() {
    let doc = repo_file("docs/iam.md");
    let (_, rest) = doc
        .split_once(TABLE_BEGIN)
        .expect("docs/iam.md: table start marker");
    let (table, _) = rest
        .split_once(TABLE_END)
        .expect("docs/iam.md: table end marker");
    assert_eq!(
        table.trim(),
        render(&args(&[], IamFormat::Markdown)).trim(),
        "docs/iam.md's table is stale: cargo run -p stagehand -- iam-policy --format markdown"
    );
}

#[test]
fn the_served_kinds_are_all_covered_by_default() {
    assert_eq!(served_kinds(), Kind::ALL);
}

#[test]
fn static_site_and_event_feed_calls_are_granted() {
    let granted = actions(&policy(&Kind::ALL, "prod"));
    for action in [
        "cloudfront:DeleteOriginAccessControl",
        "cloudfront:CreateInvalidation",
        "s3:ListBucketVersions",
        "s3:GetObjectVersion",
        "s3:PutObject",
        "s3:DeleteObjectVersion",
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "iam:CreateServiceLinkedRole",
    ] {
        assert!(
            granted.contains(action),
            "{action} not granted: {granted:?}"
        );
    }
}

#[test]
fn one_kind_gets_only_its_own_statements() {
    let lambda = policy(&[Kind::LambdaStage], "prod");
    let granted = actions(&lambda);
    assert!(granted.contains("lambda:UpdateFunctionCode"));
    assert!(granted.contains("s3:GetObject"), "artifacts are read");
    assert!(
        granted.contains("sqs:GetQueueAttributes"),
        "validation backlog"
    );
    assert!(
        !granted
            .iter()
            .any(|a| a.starts_with("ec2:") || a.starts_with("cloudfront:")),
        "{granted:?}"
    );
    assert!(!granted.contains("s3:PutObject"));
    assert!(
        granted.contains("sqs:ReceiveMessage"),
        "the event feed (--event-queue)"
    );
    let site = actions(&policy(&[Kind::StaticSite], "prod"));
    assert!(
        !site
            .iter()
            .any(|a| a.starts_with("lambda:") || a.starts_with("ec2:"))
    );
}

#[test]
fn writes_to_existing_resources_need_this_clusters_tag_and_an_owner() {
    let policy = policy(&Kind::ALL, "prod-eu");
    for action in [
        "lambda:UpdateFunctionCode",
        "lambda:DeleteFunction",
        "cloudformation:DeleteStack",
        "ec2:TerminateInstances",
        "ec2:DeleteLaunchTemplate",
    ] {
        let statements = statements_granting(&policy, action);
        assert!(!statements.is_empty(), "{action} not granted");
        for statement in statements {
            let condition = &statement["Condition"];
            assert_eq!(
                condition["StringEquals"]["aws:ResourceTag/stagehand.dev/cluster"], "prod-eu",
                "{action} in {}",
                statement["Sid"]
            );
            assert_eq!(
                condition["Null"]["aws:ResourceTag/stagehand.dev/owner"],
                "false"
            );
        }
    }
    let tagging = statements_granting(&policy, "lambda:TagResource");
    assert_eq!(
        tagging[0]["Condition"]["ForAllValues:StringEquals"]["aws:TagKeys"],
        json!(["stagehand.dev/owner", "stagehand.dev/cluster"])
    );
}

#[test]
fn launches_are_allowed_only_with_the_tag_in_the_request() {
    let policy = policy(&[Kind::SpotFleet], "c1");
    let launch: Vec<_> = statements_granting(&policy, "ec2:RunInstances")
        .into_iter()
        .filter(|s| {
            s["Resource"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r == "arn:aws:ec2:*:*:instance/*")
        })
        .collect();
    assert_eq!(launch.len(), 1);
    assert_eq!(
        launch[0]["Condition"]["StringEquals"]["aws:RequestTag/stagehand.dev/cluster"],
        "c1"
    );
}

#[test]
fn calls_outside_the_table_are_reported() {
    let calls = "lambda UpdateFunctionCode\ncloudfront DeleteOriginAccessControl\n\ns3 PutObjectAcl\nlambda Invoke\nec2 CreateFleet\n";
    assert_eq!(
        ungranted_calls(calls, &Kind::ALL),
        ["s3 PutObjectAcl", "lambda Invoke"]
    );
    assert_eq!(
        ungranted_calls(calls, &[Kind::LambdaStage]),
        [
            "cloudfront DeleteOriginAccessControl",
            "s3 PutObjectAcl",
            "lambda Invoke",
            "ec2 CreateFleet"
        ]
    );
    assert_eq!(
        ungranted_calls("ses SendEmail", &Kind::ALL),
        ["ses SendEmail"]
    );
}
