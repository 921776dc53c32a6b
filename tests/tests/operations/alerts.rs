//! `charts/stagehand/rules/alerts.yaml` is valid (`promtool check rules`), its unit tests pass
//! (`promtool test rules`), every alert has a unit test and a runbook entry, and every metric an
//! alert reads is one the controller exports. promtool comes from Debian's `prometheus`
//! package, installed by `scripts/ensure-prometheus` when missing: never skipped.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

use super::exported::{metrics_in, repo_root, unknown_metrics};

fn rules_dir() -> PathBuf {
    repo_root().join("charts/stagehand/rules")
}

/// promtool's path, installing it first when missing.
pub fn promtool() -> PathBuf {
    let output = Command::new(repo_root().join("scripts/ensure-prometheus"))
        .output()
        .expect("scripts/ensure-prometheus runs");
    assert!(
        output.status.success(),
        "scripts/ensure-prometheus failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    PathBuf::from(String::from_utf8(output.stdout).unwrap().trim())
}

fn run_promtool(args: &[&str]) -> String {
    let output = Command::new(promtool())
        .args(args)
        .current_dir(rules_dir())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "promtool {args:?}:\n{text}");
    text
}

/// (alert name, expression) of every alert in the rules file.
fn alerts() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(rules_dir().join("alerts.yaml")).unwrap();
    let rules: Value = serde_saphyr::from_str(&text).unwrap();
    rules["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|group| group["rules"].as_array().unwrap())
        .map(|rule| {
            (
                rule["alert"].as_str().unwrap().to_owned(),
                rule["expr"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn promtool_checks_the_rules_and_their_unit_tests_pass() {
    let checked = run_promtool(&["check", "rules", "alerts.yaml"]);
    assert!(
        checked.contains(&format!("SUCCESS: {} rules found", alerts().len())),
        "{checked}"
    );
    let tested = run_promtool(&["test", "rules", "tests/alerts_test.yaml"]);
    assert!(tested.contains("SUCCESS"), "{tested}");
}

/// promtool compares `exp_alerts` exactly: a case that expects one alert also proves that the
/// healthy series beside it fire none. So every alert needs a case where it fires.
#[test]
fn every_alert_fires_in_a_unit_test_and_has_a_runbook_entry() {
    let tests_text = std::fs::read_to_string(rules_dir().join("tests/alerts_test.yaml")).unwrap();
    let tests: Value = serde_saphyr::from_str(&tests_text).unwrap();
    let fired: BTreeSet<&str> = tests["tests"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|test| test["alert_rule_test"].as_array().unwrap())
        .filter(|case| case["exp_alerts"].as_array().is_some_and(|a| !a.is_empty()))
        .map(|case| case["alertname"].as_str().unwrap())
        .collect();
    let runbook = std::fs::read_to_string(repo_root().join("docs/operations.md")).unwrap();
    for (alert, _) in alerts() {
        assert!(
            fired.contains(alert.as_str()),
            "{alert}: no test shows it firing"
        );
        assert!(
            runbook.contains(&format!("\n### {alert}\n")),
            "{alert}: no `### {alert}` runbook entry in docs/operations.md"
        );
    }
}

#[test]
fn alerts_read_only_metrics_the_controller_exports() {
    for (alert, expr) in alerts() {
        let used = metrics_in(&expr);
        assert!(
            !used.is_empty(),
            "{alert} reads no Stagehand metric: {expr}"
        );
        let unknown = unknown_metrics(&used);
        assert!(
            unknown.is_empty(),
            "{alert} reads {unknown:?}, not exported"
        );
    }
}
