//! Gauge series that belong to one object each, for label sets that change over time (the SQS
//! queues a stage's validation measures, say). A gauge series set once stays exported until
//! removed; without this, a queue dropped from a spec or a deleted stage would keep its last
//! value on dashboards forever, and a controller serving thousands of objects would grow one
//! series set per object it ever saw.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;

use prometheus::IntGaugeVec;
use prometheus::core::{Collector, MetricVec, MetricVecBuilder};

/// The series each object set in one gauge vector whose first label is the object.
#[derive(Debug, Default)]
pub struct ObjectSeries {
    /// By object: the label values after the object's, of every series it set.
    known: Mutex<BTreeMap<String, BTreeSet<Vec<String>>>>,
}

impl ObjectSeries {
    /// Sets `object`'s series of `gauge` to exactly `values` (the labels after the object's,
    /// and the value): the series it set before and does not set now are removed.
    pub fn set(&self, gauge: &IntGaugeVec, object: &str, values: &[(Vec<&str>, i64)]) {
        let now: BTreeSet<Vec<String>> = values
            .iter()
            .map(|(labels, _)| labels.iter().map(|&l| l.to_owned()).collect())
            .collect();
        for (labels, value) in values {
            gauge.with_label_values(&full(object, labels)).set(*value);
        }
        let before = self.lock().insert(object.to_owned(), now.clone());
        for gone in before.unwrap_or_default().difference(&now) {
            let labels: Vec<&str> = gone.iter().map(String::as_str).collect();
            // Absent is fine: nothing else removes these series, but a test registry may.
            let _ = gauge.remove_label_values(&full(object, &labels));
        }
    }

    /// `object` is gone: every series it set goes too.
    pub fn forget(&self, gauge: &IntGaugeVec, object: &str) {
        let before = self.lock().remove(object);
        for gone in before.unwrap_or_default() {
            let labels: Vec<&str> = gone.iter().map(String::as_str).collect();
            let _ = gauge.remove_label_values(&full(object, &labels));
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, BTreeSet<Vec<String>>>> {
        // A panic while holding the lock left a plain map behind: still usable.
        self.known
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Removes every series of `metric` whose label `label` is `object`, whatever its other labels
/// say: the per-object counters (replacements by reason, launch errors by code, uploads) of an
/// object that is gone. Without this a controller whose objects come and go (preview
/// environments, one fleet per branch) exports one more series set per object it ever saw,
/// until it restarts. Prometheus reads a counter that disappears as ended, not as a reset.
pub fn remove_object_series<T: MetricVecBuilder>(metric: &MetricVec<T>, label: &str, object: &str) {
    for family in metric.collect() {
        for series in family.get_metric() {
            let labels: HashMap<&str, &str> = series
                .get_label()
                .iter()
                .map(|pair| (pair.name(), pair.value()))
                .collect();
            if labels.get(label) == Some(&object) {
                // Absent is fine: another caller may have removed it in between.
                let _ = metric.remove(&labels);
            }
        }
    }
}

fn full<'a>(object: &'a str, labels: &[&'a str]) -> Vec<&'a str> {
    let mut all = Vec::with_capacity(labels.len() + 1);
    all.push(object);
    all.extend_from_slice(labels);
    all
}

#[cfg(test)]
mod tests {
    use prometheus::Opts;

    use super::*;

    fn names(gauge: &IntGaugeVec) -> Vec<String> {
        let mut found: Vec<String> = gauge
            .collect()
            .iter()
            .flat_map(prometheus::proto::MetricFamily::get_metric)
            .map(|m| {
                m.get_label()
                    .iter()
                    .map(prometheus::proto::LabelPair::value)
                    .collect::<Vec<_>>()
                    .join("/")
            })
            .collect();
        found.sort();
        found
    }

    #[test]
    fn every_series_of_a_removed_object_goes_whatever_its_other_labels() {
        let counter =
            prometheus::IntCounterVec::new(Opts::new("replacements", "test"), &["fleet", "reason"])
                .unwrap();
        counter.with_label_values(&["ml/gpu", "spec_hash"]).inc();
        counter.with_label_values(&["ml/gpu", "unhealthy"]).inc();
        counter.with_label_values(&["ml/cpu", "spec_hash"]).inc();
        remove_object_series(&counter, "fleet", "ml/gpu");
        let left: Vec<String> = counter
            .collect()
            .iter()
            .flat_map(prometheus::proto::MetricFamily::get_metric)
            .map(|m| m.get_label()[0].value().to_owned())
            .collect();
        assert_eq!(left, ["ml/cpu"]);
        remove_object_series(&counter, "fleet", "ml/unknown");
        assert_eq!(counter.with_label_values(&["ml/cpu", "spec_hash"]).get(), 1);
    }

    #[test]
    fn series_an_object_stops_setting_and_a_forgotten_objects_series_are_removed() {
        let gauge = IntGaugeVec::new(Opts::new("backlog", "test"), &["object", "queue"]).unwrap();
        let series = ObjectSeries::default();
        series.set(&gauge, "shop/a", &[(vec!["q1"], 3), (vec!["q2"], 1)]);
        series.set(&gauge, "shop/b", &[(vec!["q1"], 7)]);
        assert_eq!(names(&gauge), ["shop/a/q1", "shop/a/q2", "shop/b/q1"]);
        series.set(&gauge, "shop/a", &[(vec!["q2"], 0)]);
        assert_eq!(names(&gauge), ["shop/a/q2", "shop/b/q1"]);
        assert_eq!(gauge.with_label_values(&["shop/a", "q2"]).get(), 0);
        series.forget(&gauge, "shop/a");
        assert_eq!(names(&gauge), ["shop/b/q1"]);
        series.forget(&gauge, "shop/unknown");
        assert_eq!(names(&gauge), ["shop/b/q1"]);
    }
}
