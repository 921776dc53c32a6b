//! `docs/metrics.md` against the registry `stagehand run` serves ([`Metrics::catalog`]): a
//! metric exported but not documented, documented but gone, or documented with another type or
//! other labels fails.

use std::collections::BTreeMap;
use std::path::Path;

use super::metrics::Metrics;

/// (type, labels) by metric name, from the tables of docs/metrics.md: rows whose first cell is
/// a metric name in backquotes, `| `name` | type | `a`, `b` | meaning |`.
fn documented() -> BTreeMap<String, (String, Vec<String>)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/metrics.md");
    let text = std::fs::read_to_string(path).unwrap();
    let mut metrics = BTreeMap::new();
    for line in text.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let [_, name, kind, labels, _, ..] = cells.as_slice() else {
            continue;
        };
        let Some(name) = name.strip_prefix('`').and_then(|n| n.strip_suffix('`')) else {
            continue;
        };
        let labels = labels
            .split(',')
            .map(|l| l.trim().trim_matches('`').to_owned())
            .filter(|l| !l.is_empty() && l != "—")
            .collect();
        let previous = metrics.insert(name.to_owned(), ((*kind).to_owned(), labels));
        assert!(previous.is_none(), "{name} documented twice");
    }
    metrics
}

#[test]
fn every_exported_metric_is_documented_with_its_type_and_labels() {
    let metrics = Metrics::new().unwrap();
    let documented = documented();
    let mut problems = Vec::new();
    for metric in metrics.catalog() {
        match documented.get(&metric.name) {
            None => problems.push(format!("exported, not in docs/metrics.md: {}", metric.name)),
            Some((kind, labels)) => {
                if kind != metric.kind || *labels != metric.labels {
                    problems.push(format!(
                        "{}: documented as {kind} {labels:?}, exported as {} {:?}",
                        metric.name, metric.kind, metric.labels
                    ));
                }
            }
        }
    }
    let exported: Vec<String> = metrics.catalog().into_iter().map(|m| m.name).collect();
    for name in documented.keys() {
        if !exported.contains(name) {
            problems.push(format!("in docs/metrics.md, not exported: {name}"));
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
    assert!(
        documented.len() > 30,
        "the tables were not read: {documented:?}"
    );
}

#[test]
fn the_catalog_covers_everything_the_registry_serves() {
    let metrics = Metrics::new().unwrap();
    // Give every family a series: gather() then shows everything registered.
    metrics.record_action("StaticSite", "invalidation");
    let catalog: Vec<String> = metrics.catalog().into_iter().map(|m| m.name).collect();
    for family in metrics.registry().gather() {
        assert!(
            catalog.contains(&family.name().to_owned()),
            "{} is registered but not in Metrics::catalog",
            family.name()
        );
    }
    assert!(catalog.contains(&"stagehand_site_invalidation_in_progress".to_owned()));
}
