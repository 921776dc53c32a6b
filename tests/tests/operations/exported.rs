//! The metric names the controller registers, read from its source: every string literal in
//! `controller/src/**/*.rs` that looks like a metric name. A rule or panel that names anything
//! else queries a metric that does not exist, and would stay silent (or empty) forever.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Prefixes of every metric Stagehand exports (controller-runtime's names, leader election and
/// its own `stagehand_`).
pub const PREFIXES: [&str; 3] = ["stagehand_", "controller_runtime_", "leader_election_"];

/// Suffixes Prometheus adds to a histogram's series.
const HISTOGRAM_SUFFIXES: [&str; 3] = ["_bucket", "_count", "_sum"];

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every `"stagehand_…"`, `"controller_runtime_…"`, `"leader_election_…"` literal in the
/// controller's source.
pub fn exported_metrics() -> BTreeSet<String> {
    let mut files = Vec::new();
    rust_files(&repo_root().join("controller/src"), &mut files);
    let mut names = BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for literal in text.split('"').skip(1).step_by(2) {
            let is_name = PREFIXES.iter().any(|p| literal.starts_with(p))
                && literal
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if is_name {
                names.extend(metrics_in(literal));
            }
        }
    }
    assert!(
        names.contains("stagehand_resources")
            && names.contains("controller_runtime_reconcile_total"),
        "the controller's metric names were not found: {names:?}"
    );
    names
}

/// The metric names a PromQL expression refers to (identifiers with one of [`PREFIXES`]),
/// histogram suffixes removed.
pub fn metrics_in(expr: &str) -> BTreeSet<String> {
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|token| PREFIXES.iter().any(|p| token.starts_with(p)))
        .map(|token| {
            HISTOGRAM_SUFFIXES
                .iter()
                .find_map(|s| token.strip_suffix(s))
                .unwrap_or(token)
                .to_owned()
        })
        .collect()
}

/// Names in `used` that the controller does not export.
pub fn unknown_metrics(used: &BTreeSet<String>) -> Vec<String> {
    let exported = exported_metrics();
    used.iter()
        .filter(|name| !exported.contains(*name))
        .cloned()
        .collect()
}
