//! `docs/iam.md` lists exactly the AWS operations the adapters call (read from
//! `controller/src/aws/`: every `call("Operation"` / `call_optional("Operation"`), and
//! `charts/stagehand/iam/policy.json` grants every IAM action the table names.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

use super::exported::repo_root;

/// Policy actions no adapter call maps to, with the reason they are granted.
const IMPLIED_ACTIONS: [&str; 1] = [
    // The first spot launch in an account creates AWSServiceRoleForEC2Spot / EC2Fleet.
    "iam:CreateServiceLinkedRole",
];

/// The service an adapter file talks to, from its path (`aws/lambda/mod.rs`, `aws/sqs.rs`).
fn service_of(path: &Path) -> Option<String> {
    let aws = repo_root().join("controller/src/aws");
    let relative = path.strip_prefix(&aws).ok()?;
    let first = relative.components().next()?.as_os_str().to_str()?;
    let service = first.trim_end_matches(".rs");
    ["lambda", "s3", "cloudformation", "sqs", "ec2", "cloudfront"]
        .contains(&service)
        .then(|| service.to_owned())
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `service Operation` for every call the adapters make.
fn adapter_operations() -> BTreeSet<String> {
    let mut files = Vec::new();
    rust_files(&repo_root().join("controller/src/aws"), &mut files);
    let mut operations = BTreeSet::new();
    for file in files {
        let Some(service) = service_of(&file) else {
            continue;
        };
        let text = std::fs::read_to_string(&file).unwrap();
        for marker in [".call(", ".call_optional(", "call(", "call_optional("] {
            for (at, _) in text.match_indices(marker) {
                let rest = text[at + marker.len()..].trim_start();
                if let Some(literal) = rest.strip_prefix('"') {
                    let name: String = literal.chars().take_while(|c| *c != '"').collect();
                    if name.chars().all(|c| c.is_ascii_alphanumeric()) && !name.is_empty() {
                        operations.insert(format!("{service} {name}"));
                    }
                }
            }
        }
    }
    operations
}

/// (`service Operation`, IAM actions) from the table in docs/iam.md.
fn documented() -> Vec<(String, Vec<String>)> {
    let text = std::fs::read_to_string(repo_root().join("docs/iam.md")).unwrap();
    text.lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let [_, service, operation, actions, ..] = cells.as_slice() else {
                return None;
            };
            let actions: Vec<String> = actions
                .split(',')
                .map(|a| a.trim().trim_matches('`').to_owned())
                .filter(|a| a.contains(':'))
                .collect();
            (!actions.is_empty()).then(|| (format!("{service} {operation}"), actions))
        })
        .collect()
}

fn policy_actions() -> BTreeSet<String> {
    let text =
        std::fs::read_to_string(repo_root().join("charts/stagehand/iam/policy.json")).unwrap();
    let policy: Value = serde_json::from_str(&text).unwrap();
    policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["Action"].as_array().unwrap())
        .map(|a| a.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn the_iam_table_lists_exactly_the_operations_the_adapters_call() {
    let called = adapter_operations();
    assert!(
        called.contains("lambda UpdateFunctionCode") && called.contains("ec2 TerminateInstances"),
        "{called:?}"
    );
    let documented: BTreeSet<String> = documented().into_iter().map(|(op, _)| op).collect();
    let missing: Vec<_> = called.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "called by an adapter, missing from docs/iam.md: {missing:?}"
    );
    let gone: Vec<_> = documented.difference(&called).collect();
    assert!(
        gone.is_empty(),
        "in docs/iam.md, called by no adapter: {gone:?}"
    );
}

#[test]
fn the_policy_grants_every_action_of_the_table_and_nothing_else() {
    let granted = policy_actions();
    let needed: BTreeSet<String> = documented().into_iter().flat_map(|(_, a)| a).collect();
    let missing: Vec<_> = needed.difference(&granted).collect();
    assert!(
        missing.is_empty(),
        "not granted by policy.json: {missing:?}"
    );
    let extra: Vec<_> = granted
        .difference(&needed)
        .filter(|a| !IMPLIED_ACTIONS.contains(&a.as_str()))
        .collect();
    assert!(
        extra.is_empty(),
        "granted but needed by no operation: {extra:?}"
    );
}

#[test]
fn writes_to_existing_resources_are_scoped_to_this_clusters_tag() {
    let text =
        std::fs::read_to_string(repo_root().join("charts/stagehand/iam/policy.json")).unwrap();
    let policy: Value = serde_json::from_str(&text).unwrap();
    for action in [
        "lambda:UpdateFunctionCode",
        "lambda:DeleteFunction",
        "cloudformation:DeleteStack",
        "ec2:TerminateInstances",
        "ec2:DeleteLaunchTemplate",
    ] {
        let statements: Vec<&Value> = policy["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["Action"].as_array().unwrap().iter().any(|a| a == action))
            .collect();
        assert!(!statements.is_empty(), "{action} not granted");
        for statement in statements {
            assert_eq!(
                statement["Condition"]["StringEquals"]["aws:ResourceTag/stagehand.dev/cluster"],
                "STAGEHAND_CLUSTER_ID",
                "{action} in {}",
                statement["Sid"]
            );
        }
    }
}
