//! The chart's RBAC against what the controller really asks of the API server: every request
//! `stagehand run` made in the every-kind run ([`crate::rbac_scenario`]: create, change, status,
//! Events, finalizers, deletion, the leader Lease) is recorded by the API stand-in as (group,
//! resource, verb, namespace), and compared with the ClusterRole and Role of the chart rendered
//! by the Helm library (`tests/chart/render.py`, default values, release namespace
//! `stagehand`). The test fails when a request would be refused (a missing grant) and when the
//! chart grants something never used, except the grants listed in [`UNUSED_BUT_KEPT`] with a
//! reason each.

#![allow(
    clippy::unwrap_used,
    reason = "a test module: a panic with its location is the failure report we want"
)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};
use stagehand_testenv::audit::Access;

use crate::rbac_scenario::{CLIENT, RELEASE_NAMESPACE};

/// Grants the chart keeps although the run did not use them, and why.
const UNUSED_BUT_KEPT: [(&str, &str, &str, &str); 0] = [];

/// Paths every authenticated client may read (the default `system:discovery` and
/// `system:public-info-viewer` ClusterRoles); the chart need not grant them.
const DISCOVERY_PATHS: [&str; 4] = ["/version", "/api", "/apis", "/openapi"];

/// One rule of a rendered Role or ClusterRole, with the namespace it applies in (`None`: all).
#[derive(Debug)]
struct Rule {
    role: String,
    namespace: Option<String>,
    groups: Vec<String>,
    resources: Vec<String>,
    verbs: Vec<String>,
    resource_names: Vec<String>,
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect()
}

fn has(list: &[String], item: &str) -> bool {
    list.iter().any(|i| i == item || i == "*")
}

impl Rule {
    fn allows(&self, access: &Access) -> bool {
        let in_scope = self.namespace.is_none() || self.namespace == access.namespace;
        in_scope
            && has(&self.groups, &access.group)
            && has(&self.resources, &access.resource)
            && has(&self.verbs, &access.verb)
            && (self.resource_names.is_empty()
                || access
                    .name
                    .as_deref()
                    .is_some_and(|n| self.resource_names.iter().any(|r| r == n)))
    }

    /// Every (group, resource, verb) the rule grants.
    fn grants(&self) -> Vec<(String, String, String)> {
        let mut out = Vec::new();
        for group in &self.groups {
            for resource in &self.resources {
                for verb in &self.verbs {
                    out.push((group.clone(), resource.clone(), verb.clone()));
                }
            }
        }
        out
    }
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The rules of the chart rendered with its default values, through the Helm library.
fn chart_rules() -> Vec<Rule> {
    let root = repo();
    let ensure = Command::new(root.join("scripts/ensure-helm"))
        .output()
        .unwrap();
    assert!(
        ensure.status.success(),
        "scripts/ensure-helm failed: {}",
        String::from_utf8_lossy(&ensure.stderr)
    );
    let venv = String::from_utf8(ensure.stdout).unwrap();
    let out_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("rbac-chart-{}", std::process::id()));
    std::fs::create_dir_all(&out_dir).unwrap();
    let output = Command::new(format!("{}/bin/python", venv.trim()))
        .arg(root.join("tests/chart/render.py"))
        .arg(root.join("charts/stagehand"))
        .arg(json!({"default": {}}).to_string())
        .arg(&out_dir)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&out_dir);
    assert!(
        output.status.success(),
        "render.py failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let rendered: Value = serde_json::from_slice(&output.stdout).unwrap();
    let case = &rendered["cases"]["default"];
    assert!(case["error"].is_null(), "{}", case["error"]);
    let mut rules = Vec::new();
    for object in case["objects"].as_array().unwrap() {
        let namespace = match object["kind"].as_str() {
            Some("ClusterRole") => None,
            Some("Role") => Some(object["metadata"]["namespace"].as_str().unwrap().to_owned()),
            _ => continue,
        };
        for rule in object["rules"].as_array().unwrap() {
            assert!(
                rule.get("nonResourceURLs").is_none(),
                "the chart grants no non-resource URLs: {rule}"
            );
            rules.push(Rule {
                role: object["metadata"]["name"].as_str().unwrap().to_owned(),
                namespace: namespace.clone(),
                groups: strings(&rule["apiGroups"]),
                resources: strings(&rule["resources"]),
                verbs: strings(&rule["verbs"]),
                resource_names: strings(&rule["resourceNames"]),
            });
        }
    }
    rules
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_charts_rbac_grants_exactly_what_the_controller_uses() {
    let rules = chart_rules();
    assert!(
        rules.iter().all(|r| r.namespace.as_deref() != Some("")),
        "{rules:#?}"
    );
    let run = crate::rbac_scenario::run("info").await;
    assert_eq!(
        run.exit_code,
        Some(0),
        "stagehand run stops cleanly on SIGTERM"
    );
    let accesses: Vec<Access> = run
        .env
        .server
        .accesses()
        .into_iter()
        .filter(|a| a.client == CLIENT)
        .collect();
    assert!(accesses.len() > 20, "the run was recorded: {accesses:#?}");

    // (a) Every request is allowed by a rule of the chart.
    let mut refused = BTreeSet::new();
    for access in &accesses {
        if access.non_resource {
            assert!(
                DISCOVERY_PATHS
                    .iter()
                    .any(|p| access.resource.starts_with(p)),
                "a non-resource request outside discovery: {access:?}"
            );
            continue;
        }
        if !rules.iter().any(|r| r.allows(access)) {
            refused.insert(access.grant());
        }
    }
    let used: BTreeSet<(String, String, String, bool)> = stagehand_testenv::audit::grants(
        &accesses
            .iter()
            .filter(|a| !a.non_resource)
            .cloned()
            .collect::<Vec<_>>(),
    );
    assert!(
        refused.is_empty(),
        "the chart's RBAC would refuse (group, resource, verb, namespaced): {refused:#?}\nused: {used:#?}"
    );

    // (b) Everything the chart grants was used, or is kept for a stated reason.
    let mut unused = Vec::new();
    for rule in &rules {
        for (group, resource, verb) in rule.grants() {
            let was_used = accesses.iter().any(|a| {
                !a.non_resource
                    && a.group == group
                    && a.resource == resource
                    && a.verb == verb
                    && (rule.namespace.is_none() || rule.namespace == a.namespace)
            });
            let kept = UNUSED_BUT_KEPT
                .iter()
                .any(|(g, r, v, _)| *g == group && *r == resource && *v == verb);
            if !was_used && !kept {
                unused.push(format!("{}: {group}/{resource} {verb}", rule.role));
            }
        }
    }
    assert!(
        unused.is_empty(),
        "the chart grants what the controller never used: {unused:#?}\nused: {used:#?}"
    );

    // The lease is only ever touched in the release namespace, and nothing reads Secrets.
    for access in &accesses {
        if access.resource == "leases" {
            assert_eq!(
                access.namespace.as_deref(),
                Some(RELEASE_NAMESPACE),
                "{access:?}"
            );
        }
        assert_ne!(access.resource, "secrets", "{access:?}");
    }
    run.env.stop().await;
}
