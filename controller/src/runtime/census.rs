//! `stagehand_resources{kind, condition, status}`: how many objects of a kind show each kstatus
//! condition as `True`, `False` or `Unknown`, recounted from the controller's own cache.
//!
//! The count reads only the conditions of each object, one object at a time: each is written
//! as JSON into one reused buffer and read back into a view of its `status.conditions` (type
//! and status, borrowed), so a recount allocates almost nothing. It used to turn every cached
//! object into a `serde_json::Value` and hold them all until counted: at 10,000 objects that
//! was 30 MB allocated and freed every five seconds, the largest peak of the controller's heap
//! (docs/benchmarks.md, "10,000 objects").

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use kube::runtime::reflector;
use serde::{Deserialize, Serialize};

use super::Context;

/// How often `stagehand_resources` is recounted from the controller's cache.
pub const CENSUS_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

/// The kstatus conditions `stagehand_resources` counts.
const CENSUS_CONDITIONS: [&str; 3] = ["Ready", "Reconciling", "Stalled"];

/// Objects per (condition, status): each object counts once per condition, as `True`, `False`
/// or `Unknown` (also when it has no such condition yet). Every combination is present, zeros
/// included, so a gauge drops to 0 instead of keeping a stale count.
#[derive(Debug)]
pub struct Census {
    counts: BTreeMap<(&'static str, &'static str), i64>,
    /// The JSON of the object being counted, reused from one object to the next.
    buffer: Vec<u8>,
}

/// What the census reads of an object.
#[derive(Deserialize)]
struct ObjectView<'a> {
    #[serde(default, borrow)]
    status: Option<StatusView<'a>>,
}

#[derive(Deserialize)]
struct StatusView<'a> {
    #[serde(default, borrow)]
    conditions: Vec<ConditionView<'a>>,
}

#[derive(Deserialize)]
struct ConditionView<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow)]
    status: Cow<'a, str>,
}

impl Default for Census {
    fn default() -> Self {
        let mut counts = BTreeMap::new();
        for condition in CENSUS_CONDITIONS {
            for status in ["True", "False", "Unknown"] {
                counts.insert((condition, status), 0);
            }
        }
        Self {
            counts,
            buffer: Vec::new(),
        }
    }
}

impl Census {
    /// Counts `object` (anything that serializes as a Kubernetes object: its
    /// `status.conditions` are read). An object that does not serialize counts as `Unknown`.
    pub fn count<K: Serialize>(&mut self, object: &K) {
        self.buffer.clear();
        let view = serde_json::to_writer(&mut self.buffer, object)
            .ok()
            .and_then(|()| serde_json::from_slice::<ObjectView<'_>>(&self.buffer).ok());
        let conditions = view
            .as_ref()
            .and_then(|v| v.status.as_ref())
            .map_or(&[][..], |s| s.conditions.as_slice());
        for condition in CENSUS_CONDITIONS {
            let status = conditions
                .iter()
                .find(|c| c.kind == condition)
                .map(|c| c.status.as_ref());
            let status = match status {
                Some("True") => "True",
                Some("False") => "False",
                _ => "Unknown",
            };
            *self.counts.entry((condition, status)).or_default() += 1;
        }
    }

    /// The counts so far, by (condition, status).
    pub fn counts(&self) -> &BTreeMap<(&'static str, &'static str), i64> {
        &self.counts
    }
}

/// Recounts `stagehand_resources{kind}` from the cache every [`CENSUS_INTERVAL`]; never ends.
pub async fn census_loop<K>(reader: reflector::Store<K>, ctx: Arc<Context>, kind: String)
where
    K: kube::Resource<DynamicType = ()> + Clone + Serialize + Send + Sync + 'static,
{
    let mut ticks = tokio::time::interval(CENSUS_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let mut census = Census::default();
        for object in reader.state() {
            census.count(object.as_ref());
        }
        for ((condition, status), count) in census.counts() {
            ctx.metrics
                .resources
                .with_label_values(&[kind.as_str(), condition, status])
                .set(*count);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn census_counts_each_object_once_per_condition() {
        let ready = serde_json::json!({"status": {"conditions": [
            {"type": "Ready", "status": "True", "message": "a \"quoted\" message"},
            {"type": "Reconciling", "status": "False"},
            {"type": "Stalled", "status": "False"},
        ]}});
        let stalled = serde_json::json!({"status": {"conditions": [
            {"type": "Ready", "status": "False"},
            {"type": "Stalled", "status": "True"},
        ]}});
        let fresh = serde_json::json!({"metadata": {"name": "new"}});
        let mut census = Census::default();
        assert_eq!(census.counts()[&("Ready", "True")], 0);
        assert_eq!(census.counts().len(), 9, "zeros are reported too");
        for object in [&ready, &ready, &stalled, &fresh] {
            census.count(object);
        }
        let counts = census.counts();
        assert_eq!(counts[&("Ready", "True")], 2);
        assert_eq!(counts[&("Ready", "False")], 1);
        assert_eq!(counts[&("Ready", "Unknown")], 1);
        assert_eq!(counts[&("Stalled", "True")], 1);
        assert_eq!(counts[&("Stalled", "False")], 2);
        assert_eq!(counts[&("Reconciling", "Unknown")], 2);
        assert_eq!(counts.len(), 9);
    }

    #[test]
    fn census_reads_a_typed_object_as_the_api_server_would_serve_it() {
        use k8s_openapi::api::core::v1::Pod;
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p"},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]},
        }))
        .unwrap_or_default();
        let mut census = Census::default();
        census.count(&pod);
        assert_eq!(census.counts()[&("Ready", "True")], 1);
        assert_eq!(census.counts()[&("Stalled", "Unknown")], 1);
    }
}
