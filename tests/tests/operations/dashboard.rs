//! The Grafana dashboard (`charts/stagehand/dashboards/stagehand.json`): every panel query
//! parses as PromQL (checked by promtool, as recording rules), reads only metrics the
//! controller exports, has a legend and a unit, sits in a row; and every exported metric is on
//! the dashboard or in an alert.

use std::collections::BTreeSet;
use std::process::Command;

use serde_json::{Value, json};

use super::alerts::promtool;
use super::exported::{exported_metrics, metrics_in, repo_root, unknown_metrics};

/// Grafana's own variables, replaced by what Grafana would send so that promtool can parse
/// the query.
const GRAFANA_VARIABLES: [(&str, &str); 3] = [
    ("$__rate_interval", "2m"),
    ("$__interval", "30s"),
    ("$__range", "6h"),
];

fn dashboard() -> Value {
    let text =
        std::fs::read_to_string(repo_root().join("charts/stagehand/dashboards/stagehand.json"))
            .unwrap();
    serde_json::from_str(&text).unwrap()
}

/// (panel title, expression) of every query.
fn queries() -> Vec<(String, String)> {
    dashboard()["panels"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["type"] != "row")
        .flat_map(|panel| {
            panel["targets"].as_array().unwrap().iter().map(|target| {
                (
                    panel["title"].as_str().unwrap().to_owned(),
                    target["expr"].as_str().unwrap().to_owned(),
                )
            })
        })
        .collect()
}

fn grafana_to_promql(expr: &str) -> String {
    GRAFANA_VARIABLES
        .iter()
        .fold(expr.to_owned(), |e, (var, value)| e.replace(var, value))
}

#[test]
fn every_panel_query_parses_as_promql() {
    let rules = json!({"groups": [{
        "name": "dashboard",
        "rules": queries().iter().enumerate().map(|(i, (_, expr))| json!({
            "record": format!("stagehand:dashboard:query_{i}"),
            "expr": grafana_to_promql(expr),
        })).collect::<Vec<_>>(),
    }]});
    let dir = std::env::temp_dir().join(format!("stagehand-dashboard-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("queries.json"); // YAML is a superset of JSON
    std::fs::write(&file, rules.to_string()).unwrap();
    let output = Command::new(promtool())
        .args(["check", "rules"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "promtool refuses a dashboard query:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn every_panel_reads_exported_metrics() {
    for (title, expr) in queries() {
        let used = metrics_in(&expr);
        assert!(
            !used.is_empty(),
            "{title}: reads no Stagehand metric: {expr}"
        );
        let unknown = unknown_metrics(&used);
        assert!(
            unknown.is_empty(),
            "{title}: {unknown:?} not exported by the controller"
        );
    }
}

#[test]
fn panels_have_units_legends_descriptions_and_rows() {
    let dashboard = dashboard();
    assert_eq!(dashboard["templating"]["list"][0]["type"], "datasource");
    let panels = dashboard["panels"].as_array().unwrap();
    assert_eq!(panels[0]["type"], "row", "the first panel opens a row");
    let mut titles = BTreeSet::new();
    for panel in panels.iter().filter(|p| p["type"] != "row") {
        let title = panel["title"].as_str().unwrap();
        assert!(titles.insert(title), "two panels titled {title}");
        assert!(
            panel["description"].as_str().is_some_and(|d| d.len() > 20),
            "{title}: no description"
        );
        assert!(
            panel["fieldConfig"]["defaults"]["unit"].is_string(),
            "{title}: no unit"
        );
        assert_eq!(panel["datasource"]["uid"], "${datasource}", "{title}");
        for target in panel["targets"].as_array().unwrap() {
            assert!(
                target["legendFormat"]
                    .as_str()
                    .is_some_and(|l| l.contains("{{")),
                "{title}: a query without a legend naming its series"
            );
        }
    }
    let rows: Vec<&str> = panels
        .iter()
        .filter(|p| p["type"] == "row")
        .map(|p| p["title"].as_str().unwrap())
        .collect();
    for concern in [
        "objects",
        "Reconciles",
        "AWS",
        "actions",
        "LambdaStage",
        "SpotFleet",
        "StaticSite",
    ] {
        assert!(
            rows.iter().any(|r| r.contains(concern)),
            "no row for {concern}: {rows:?}"
        );
    }
}

/// A metric nobody looks at is either missing from the dashboard or should not exist.
#[test]
fn every_exported_metric_is_on_the_dashboard_or_in_an_alert() {
    let rules =
        std::fs::read_to_string(repo_root().join("charts/stagehand/rules/alerts.yaml")).unwrap();
    let mut seen = metrics_in(&rules);
    for (_, expr) in queries() {
        seen.extend(metrics_in(&expr));
    }
    let unseen: Vec<String> = exported_metrics().difference(&seen).cloned().collect();
    assert!(
        unseen.is_empty(),
        "exported but neither charted nor alerted on: {unseen:?}"
    );
}
