//! Prometheus metrics. Reconcile metrics reuse controller-runtime's names and labels so existing
//! Grafana dashboards and alerts work unchanged; Stagehand's own metrics are prefixed
//! `stagehand_`. Labels never carry AWS request ids or object versions (cardinality); per-object
//! names appear only where documented (`stage`, `fleet`, `site`).

use std::time::Duration;

use kube::runtime::controller::Action;
use prometheus::core::Collector;
use prometheus::proto::MetricType;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

use super::fleet_metrics::FleetMetrics;
use super::series::remove_object_series;
use super::site_metrics::SiteMetrics;
use crate::aws::AwsMetrics;
use crate::base::ErrorClass;
use crate::feed::FeedMetrics;

/// Buckets for the work queue's wait: 10ms (a free worker) to 15min (thousands of objects
/// queued behind a few workers after a restart).
const QUEUE_BUCKETS: &[f64] = &[
    0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0,
];

/// Buckets for reconcile durations: 5ms to 5min (a reconcile may wait on a Lambda update).
const RECONCILE_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

/// The `result` label of `controller_runtime_reconcile_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReconcileResult {
    /// Done; wait for the next change.
    Success,
    /// Failed.
    Error,
    /// Requeue without a delay (kept for parity with controller-runtime; kube's `Action` always
    /// carries a delay, so Stagehand reports timed requeues as `requeue_after`).
    Requeue,
    /// Done for now; look again after a delay (resync, or waiting on AWS).
    RequeueAfter,
}

impl ReconcileResult {
    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Error => "error",
            Self::Requeue => "requeue",
            Self::RequeueAfter => "requeue_after",
        }
    }

    /// The result for a reconcile that returned `action`.
    pub fn of_action(action: &Action) -> Self {
        if *action == Action::await_change() {
            Self::Success
        } else {
            Self::RequeueAfter
        }
    }
}

/// One metric family as `/metrics` would describe it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetricInfo {
    pub name: String,
    /// `counter`, `gauge` or `histogram`, as in the exposition format's `# TYPE` line.
    pub kind: &'static str,
    pub labels: Vec<String>,
    pub help: String,
}

impl MetricInfo {
    fn of(collector: &dyn Collector) -> Vec<Self> {
        let kinds = collector
            .collect()
            .iter()
            .map(|family| match family.get_field_type() {
                MetricType::COUNTER => "counter",
                MetricType::GAUGE => "gauge",
                MetricType::HISTOGRAM => "histogram",
                MetricType::SUMMARY => "summary",
                MetricType::UNTYPED => "untyped",
            })
            .collect::<Vec<_>>();
        collector
            .desc()
            .into_iter()
            .zip(kinds)
            .map(|(desc, kind)| Self {
                name: desc.fq_name.clone(),
                kind,
                labels: desc.variable_labels.clone(),
                help: desc.help.clone(),
            })
            .collect()
    }
}

/// Every metric Stagehand exports, registered in one [`Registry`].
#[derive(Clone, Debug)]
pub struct Metrics {
    registry: Registry,
    pub reconcile_total: IntCounterVec,
    pub reconcile_errors_total: IntCounterVec,
    pub terminal_reconcile_errors_total: IntCounterVec,
    pub reconcile_time_seconds: HistogramVec,
    pub reconcile_queue_seconds: HistogramVec,
    pub active_workers: IntGaugeVec,
    pub max_concurrent_reconciles: IntGaugeVec,
    pub reconcile_errors_by_reason_total: IntCounterVec,
    /// The AWS call metrics, owned by the adapters and registered here.
    pub aws: AwsMetrics,
    pub drift_detected_total: IntCounterVec,
    pub actions_total: IntCounterVec,
    pub resources: IntGaugeVec,
    pub queue_backlog_messages: IntGaugeVec,
    pub spot_interruptions_total: IntCounterVec,
    /// The AWS event feed's counters (`stagehand_feed_*`).
    pub feed: FeedMetrics,
    /// SpotFleet's own metrics (instances by state, capacity, replacements, launch errors).
    pub fleet: FleetMetrics,
    /// StaticSite's own metrics (uploads, invalidation paths, sync duration, rollbacks).
    pub site: SiteMetrics,
    pub site_revision_info: IntGaugeVec,
    pub build_info: IntGaugeVec,
    pub leader_election_master_status: IntGaugeVec,
    pub leader_transitions_total: IntCounterVec,
}

fn counter(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> prometheus::Result<IntCounterVec> {
    let metric = IntCounterVec::new(Opts::new(name, help), labels)?;
    registry.register(Box::new(metric.clone()))?;
    Ok(metric)
}

fn gauge(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> prometheus::Result<IntGaugeVec> {
    let metric = IntGaugeVec::new(Opts::new(name, help), labels)?;
    registry.register(Box::new(metric.clone()))?;
    Ok(metric)
}

fn histogram(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
    buckets: &[f64],
) -> prometheus::Result<HistogramVec> {
    let metric = HistogramVec::new(
        HistogramOpts::new(name, help).buckets(buckets.to_vec()),
        labels,
    )?;
    registry.register(Box::new(metric.clone()))?;
    Ok(metric)
}

impl Metrics {
    /// Registers every metric in a fresh registry and sets `stagehand_build_info`.
    pub fn new() -> prometheus::Result<Self> {
        let r = Registry::new();
        let metrics = Self {
            reconcile_total: counter(
                &r,
                "controller_runtime_reconcile_total",
                "Total number of reconciliations per controller",
                &["controller", "result"],
            )?,
            reconcile_errors_total: counter(
                &r,
                "controller_runtime_reconcile_errors_total",
                "Total number of reconciliation errors per controller",
                &["controller"],
            )?,
            terminal_reconcile_errors_total: counter(
                &r,
                "controller_runtime_terminal_reconcile_errors_total",
                "Total number of terminal reconciliation errors per controller (Stalled: not retried until the spec changes)",
                &["controller"],
            )?,
            reconcile_time_seconds: histogram(
                &r,
                "controller_runtime_reconcile_time_seconds",
                "Length of time per reconciliation per controller",
                &["controller"],
                RECONCILE_BUCKETS,
            )?,
            reconcile_queue_seconds: histogram(
                &r,
                "stagehand_reconcile_queue_seconds",
                "Time from a watch event (a new object, a spec change, the initial list) to the start of the reconcile it asked for, per controller: the work queue's wait when every worker is busy",
                &["controller"],
                QUEUE_BUCKETS,
            )?,
            active_workers: gauge(
                &r,
                "controller_runtime_active_workers",
                "Number of currently used workers per controller",
                &["controller"],
            )?,
            max_concurrent_reconciles: gauge(
                &r,
                "controller_runtime_max_concurrent_reconciles",
                "Maximum number of concurrent reconciles per controller",
                &["controller"],
            )?,
            reconcile_errors_by_reason_total: counter(
                &r,
                "stagehand_reconcile_errors_total",
                "Reconcile errors by kind and reason (the error's CamelCase name)",
                &["kind", "reason"],
            )?,
            aws: AwsMetrics::register(&r)?,
            drift_detected_total: counter(
                &r,
                "stagehand_drift_detected_total",
                "Differences found between spec and AWS, by kind and field (code, layers, mapping, spec_hash, content, ...)",
                &["kind", "field"],
            )?,
            actions_total: counter(
                &r,
                "stagehand_actions_total",
                "Changes made in AWS, by kind and action (code_update, layer_attach, instance_replace, invalidation, ...)",
                &["kind", "action"],
            )?,
            resources: gauge(
                &r,
                "stagehand_resources",
                "Objects by kind and kstatus condition status",
                &["kind", "condition", "status"],
            )?,
            queue_backlog_messages: gauge(
                &r,
                "stagehand_queue_backlog_messages",
                "SQS backlog measured by post-deploy validation (kind = visible | in_flight)",
                &["stage", "queue", "kind"],
            )?,
            spot_interruptions_total: counter(
                &r,
                "stagehand_spot_interruptions_total",
                "Spot interruption notices handled, by fleet",
                &["fleet"],
            )?,
            feed: FeedMetrics {
                messages: counter(
                    &r,
                    "stagehand_feed_messages_total",
                    "Event queue messages received, by event kind (unknown, unparsable when none) and result (handled, ignored, deleted_unknown, deleted_unparsable, failed)",
                    &["kind", "result"],
                )?,
                interruptions: counter(
                    &r,
                    "stagehand_feed_interruptions_total",
                    "EC2 events about Stagehand's instances acted on, by kind (interruption_warning, rebalance_recommendation, state_change, health); S3, CloudTrail and heartbeat events count in stagehand_feed_messages_total (kind object_created, object_deleted, api_call, heartbeat)",
                    &["kind"],
                )?,
                poll_errors: counter(
                    &r,
                    "stagehand_feed_poll_errors_total",
                    "Failed polls of an event queue (region/queue), by reason (QueueNotFound, AccessDenied, PollFailed, DeleteFailed)",
                    &["queue", "reason"],
                )?,
                queue_up: gauge(
                    &r,
                    "stagehand_feed_queue_up",
                    "1 while the last poll of an event queue (region/queue) answered, 0 while polls fail",
                    &["queue"],
                )?,
                healthy: gauge(
                    &r,
                    "stagehand_feed_healthy",
                    "1 while an event queue (region/queue) answers and a message (event or heartbeat) arrived within 15 minutes: drift-only reads of the objects relying on it run at the slow backstop cadence; 0 otherwise",
                    &["queue"],
                )?,
            },
            fleet: FleetMetrics::register(&r)?,
            site: SiteMetrics::register(&r)?,
            site_revision_info: gauge(
                &r,
                "stagehand_site_revision_info",
                "The revision each static site serves (value 1)",
                &["site", "revision"],
            )?,
            build_info: gauge(
                &r,
                "stagehand_build_info",
                "Stagehand build information (value 1)",
                &["version"],
            )?,
            leader_election_master_status: gauge(
                &r,
                "leader_election_master_status",
                "1 while this replica holds the leader lease `name`, 0 otherwise",
                &["name"],
            )?,
            leader_transitions_total: counter(
                &r,
                "stagehand_leader_transitions_total",
                "Changes of this replica's leadership of lease `name`: acquired, released (graceful shutdown), lost (taken over or not renewed within the renew deadline; the controllers were stopped)",
                &["name", "transition"],
            )?,
            registry: r,
        };
        metrics
            .build_info
            .with_label_values(&[crate::VERSION])
            .set(1);
        Ok(metrics)
    }

    /// The registry, for gathering.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Every metric family this registry serves, with or without series yet: name, type,
    /// labels, help. The registry's own `gather` leaves out families nobody has recorded into
    /// (a SpotFleet metric before the first fleet), so `docs/metrics.md` is checked against
    /// this instead. The exhaustive destructuring makes a new field that is left out of the
    /// list a compile error.
    pub fn catalog(&self) -> Vec<MetricInfo> {
        let Self {
            registry: _,
            reconcile_total,
            reconcile_errors_total,
            terminal_reconcile_errors_total,
            reconcile_time_seconds,
            reconcile_queue_seconds,
            active_workers,
            max_concurrent_reconciles,
            reconcile_errors_by_reason_total,
            aws:
                AwsMetrics {
                    requests_total,
                    request_duration_seconds,
                },
            drift_detected_total,
            actions_total,
            resources,
            queue_backlog_messages,
            spot_interruptions_total,
            feed:
                FeedMetrics {
                    messages,
                    interruptions,
                    poll_errors,
                    queue_up,
                    healthy,
                },
            fleet:
                FleetMetrics {
                    instances,
                    desired_capacity,
                    ready_capacity,
                    replacements_total,
                    launch_errors_total,
                },
            site:
                SiteMetrics {
                    objects_uploaded_total,
                    bytes_uploaded_total,
                    invalidation_paths_total,
                    rollbacks_total,
                    sync_duration_seconds,
                    invalidation_in_progress,
                },
            site_revision_info,
            build_info,
            leader_election_master_status,
            leader_transitions_total,
        } = self;
        let collectors: [&dyn Collector; 35] = [
            reconcile_total,
            reconcile_errors_total,
            terminal_reconcile_errors_total,
            reconcile_time_seconds,
            reconcile_queue_seconds,
            active_workers,
            max_concurrent_reconciles,
            reconcile_errors_by_reason_total,
            requests_total,
            request_duration_seconds,
            drift_detected_total,
            actions_total,
            resources,
            queue_backlog_messages,
            spot_interruptions_total,
            messages,
            interruptions,
            poll_errors,
            queue_up,
            healthy,
            instances,
            desired_capacity,
            ready_capacity,
            replacements_total,
            launch_errors_total,
            objects_uploaded_total,
            bytes_uploaded_total,
            invalidation_paths_total,
            rollbacks_total,
            sync_duration_seconds,
            invalidation_in_progress,
            site_revision_info,
            build_info,
            leader_election_master_status,
            leader_transitions_total,
        ];
        collectors.into_iter().flat_map(MetricInfo::of).collect()
    }

    /// All metrics in the Prometheus text exposition format.
    pub fn render(&self) -> Result<String, prometheus::Error> {
        let mut buffer = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut buffer)?;
        String::from_utf8(buffer).map_err(|e| prometheus::Error::Msg(e.to_string()))
    }

    /// The metrics of one controller, with label values resolved once.
    pub fn controller(&self, kind: &str, max_concurrent_reconciles: u16) -> ControllerMetrics {
        let controller = kind.to_ascii_lowercase();
        self.max_concurrent_reconciles
            .with_label_values(&[controller.as_str()])
            .set(i64::from(max_concurrent_reconciles));
        // Touch every series so dashboards see zeros from the start rather than "no data".
        for result in [
            ReconcileResult::Success,
            ReconcileResult::Error,
            ReconcileResult::Requeue,
            ReconcileResult::RequeueAfter,
        ] {
            self.reconcile_total
                .with_label_values(&[controller.as_str(), result.as_str()]);
        }
        ControllerMetrics {
            kind: kind.to_owned(),
            reconcile_errors: self
                .reconcile_errors_total
                .with_label_values(&[controller.as_str()]),
            terminal_errors: self
                .terminal_reconcile_errors_total
                .with_label_values(&[controller.as_str()]),
            active_workers: self
                .active_workers
                .with_label_values(&[controller.as_str()]),
            queue_wait: self
                .reconcile_queue_seconds
                .with_label_values(&[controller.as_str()]),
            metrics: self.clone(),
            controller,
        }
    }

    /// Records a difference found between spec and AWS.
    pub fn record_drift(&self, kind: &str, field: &str) {
        self.drift_detected_total
            .with_label_values(&[kind, field])
            .inc();
    }

    /// The `leader_election_master_status{name}` gauge of lease `name`.
    pub fn leader_status(&self, name: &str) -> IntGauge {
        self.leader_election_master_status
            .with_label_values(&[name])
    }

    /// `fleet` (`<namespace>/<name>`) is gone: every series labelled with it goes, its own
    /// gauges and counters and its interruption count (see `series::remove_object_series`).
    pub fn forget_fleet(&self, fleet: &str) {
        self.fleet.forget(fleet);
        remove_object_series(&self.spot_interruptions_total, "fleet", fleet);
    }

    /// `site` (`<namespace>/<name>`) is gone: every series labelled with it goes, the revision
    /// it served included (also when the site's bucket is retained).
    pub fn forget_site(&self, site: &str) {
        self.site.forget(site);
        remove_object_series(&self.site_revision_info, "site", site);
    }

    /// Records a change made in AWS.
    pub fn record_action(&self, kind: &str, action: &str) {
        self.actions_total.with_label_values(&[kind, action]).inc();
    }
}

/// Reconcile metrics of one controller (one kind).
#[derive(Clone, Debug)]
pub struct ControllerMetrics {
    kind: String,
    controller: String,
    reconcile_errors: IntCounter,
    terminal_errors: IntCounter,
    active_workers: IntGauge,
    queue_wait: prometheus::Histogram,
    metrics: Metrics,
}

impl ControllerMetrics {
    /// The `controller` label value (the lowercased kind, as controller-runtime names them).
    pub fn controller(&self) -> &str {
        &self.controller
    }

    /// Starts timing one reconcile; counts an active worker until the timer is finished or
    /// dropped (a cancelled reconcile still frees its worker).
    pub fn start_reconcile(&self) -> ReconcileTimer {
        self.active_workers.inc();
        ReconcileTimer {
            timer: Some(
                self.metrics
                    .reconcile_time_seconds
                    .with_label_values(&[self.controller.as_str()])
                    .start_timer(),
            ),
            active_workers: self.active_workers.clone(),
        }
    }

    /// Records how long a reconcile asked for by a watch event waited for a worker.
    pub fn record_queue_wait(&self, waited: Duration) {
        self.queue_wait.observe(waited.as_secs_f64());
    }

    /// Counts a successful reconcile.
    pub fn record_success(&self, action: &Action) {
        self.metrics
            .reconcile_total
            .with_label_values(&[
                self.controller.as_str(),
                ReconcileResult::of_action(action).as_str(),
            ])
            .inc();
    }

    /// Counts a failed reconcile, by class and reason.
    pub fn record_error(&self, class: ErrorClass, reason: &str) {
        self.metrics
            .reconcile_total
            .with_label_values(&[self.controller.as_str(), ReconcileResult::Error.as_str()])
            .inc();
        self.reconcile_errors.inc();
        if class == ErrorClass::Stalled {
            self.terminal_errors.inc();
        }
        self.metrics
            .reconcile_errors_by_reason_total
            .with_label_values(&[self.kind.as_str(), reason])
            .inc();
    }
}

/// Times one reconcile; see [`ControllerMetrics::start_reconcile`].
#[derive(Debug)]
pub struct ReconcileTimer {
    timer: Option<prometheus::HistogramTimer>,
    active_workers: IntGauge,
}

impl ReconcileTimer {
    /// Stops the timer and returns the elapsed time.
    pub fn finish(mut self) -> Duration {
        self.timer.take().map_or(Duration::ZERO, |timer| {
            Duration::from_secs_f64(timer.stop_and_record())
        })
    }
}

impl Drop for ReconcileTimer {
    fn drop(&mut self) {
        if let Some(timer) = self.timer.take() {
            timer.observe_duration();
        }
        self.active_workers.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};

    /// Parses the text exposition into metric name → set of label-name lists, and
    /// `name{labels}` → value.
    type LabelSets = BTreeMap<String, BTreeSet<Vec<String>>>;

    fn parse(text: &str) -> (LabelSets, BTreeMap<String, String>) {
        let mut labels_by_name = LabelSets::new();
        let mut values = BTreeMap::new();
        for line in text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            let (series, value) = line.rsplit_once(' ').unwrap();
            let (name, labels) = series.split_once('{').unwrap_or((series, "}"));
            let label_names: Vec<String> = labels
                .trim_end_matches('}')
                .split(',')
                .filter(|kv| !kv.is_empty())
                .map(|kv| kv.split_once('=').unwrap().0.to_owned())
                .collect();
            labels_by_name
                .entry(name.to_owned())
                .or_default()
                .insert(label_names);
            values.insert(series.to_owned(), value.to_owned());
        }
        (labels_by_name, values)
    }

    fn labels(names: &[&str]) -> BTreeSet<Vec<String>> {
        BTreeSet::from([names.iter().map(|s| (*s).to_owned()).collect()])
    }

    #[test]
    fn every_metric_is_exported_with_its_label_set() {
        let m = Metrics::new().unwrap();
        let c = m.controller("LambdaStage", 8);
        c.record_success(&Action::await_change());
        c.record_error(ErrorClass::Stalled, "ArtifactMismatch");
        c.start_reconcile().finish();
        c.record_queue_wait(Duration::from_millis(30));
        m.aws.record_call(
            "lambda",
            "ListFunctions",
            "success",
            Duration::from_millis(20),
        );
        m.record_drift("LambdaStage", "code");
        m.record_action("LambdaStage", "code_update");
        m.resources
            .with_label_values(&["LambdaStage", "Ready", "True"])
            .set(3);
        m.queue_backlog_messages
            .with_label_values(&["shop/dev", "orders", "visible"])
            .set(2);
        m.spot_interruptions_total.with_label_values(&["gpu"]).inc();
        m.site_revision_info
            .with_label_values(&["docs", "abc123"])
            .set(1);

        let (found, _) = parse(&m.render().unwrap());
        let expected: &[(&str, &[&str])] = &[
            (
                "controller_runtime_reconcile_total",
                &["controller", "result"],
            ),
            ("controller_runtime_reconcile_errors_total", &["controller"]),
            (
                "controller_runtime_terminal_reconcile_errors_total",
                &["controller"],
            ),
            (
                "controller_runtime_reconcile_time_seconds_count",
                &["controller"],
            ),
            (
                "controller_runtime_reconcile_time_seconds_sum",
                &["controller"],
            ),
            (
                "controller_runtime_reconcile_time_seconds_bucket",
                &["controller", "le"],
            ),
            ("stagehand_reconcile_queue_seconds_count", &["controller"]),
            ("stagehand_reconcile_queue_seconds_sum", &["controller"]),
            (
                "stagehand_reconcile_queue_seconds_bucket",
                &["controller", "le"],
            ),
            ("controller_runtime_active_workers", &["controller"]),
            (
                "controller_runtime_max_concurrent_reconciles",
                &["controller"],
            ),
            ("stagehand_reconcile_errors_total", &["kind", "reason"]),
            (
                "stagehand_aws_api_requests_total",
                &["operation", "result", "service"],
            ),
            (
                "stagehand_aws_api_request_duration_seconds_count",
                &["operation", "service"],
            ),
            (
                "stagehand_aws_api_request_duration_seconds_bucket",
                &["le", "operation", "service"],
            ),
            ("stagehand_drift_detected_total", &["field", "kind"]),
            ("stagehand_actions_total", &["action", "kind"]),
            ("stagehand_resources", &["condition", "kind", "status"]),
            (
                "stagehand_queue_backlog_messages",
                &["kind", "queue", "stage"],
            ),
            ("stagehand_spot_interruptions_total", &["fleet"]),
            ("stagehand_site_revision_info", &["revision", "site"]),
            // Not per site (see `site_metrics`): exported from the start, without labels.
            ("stagehand_site_sync_duration_seconds_count", &[]),
            ("stagehand_site_sync_duration_seconds_bucket", &["le"]),
            ("stagehand_build_info", &["version"]),
        ];
        for (name, label_names) in expected {
            let mut sorted: Vec<&str> = label_names.to_vec();
            sorted.sort_unstable();
            let got: BTreeSet<Vec<String>> = found
                .get(*name)
                .unwrap_or_else(|| panic!("{name} missing"))
                .iter()
                .map(|l| {
                    let mut l = l.clone();
                    l.sort();
                    l
                })
                .collect();
            assert_eq!(got, labels(&sorted), "{name}");
        }
        let known: BTreeSet<&str> = expected.iter().map(|(n, _)| *n).collect();
        for name in found.keys() {
            assert!(
                known.contains(name.as_str()) || name.ends_with("_sum"),
                "unexpected metric {name}"
            );
        }
    }

    #[test]
    fn reconcile_results_are_counted_by_label() {
        let m = Metrics::new().unwrap();
        let c = m.controller("SpotFleet", 4);
        assert_eq!(c.controller(), "spotfleet");
        c.record_success(&Action::await_change());
        c.record_success(&Action::requeue(Duration::from_secs(300)));
        c.record_success(&Action::requeue(Duration::from_secs(5)));
        c.record_error(ErrorClass::Recoverable, "Throttled");
        c.record_error(ErrorClass::Stalled, "OwnershipConflict");

        let (_, v) = parse(&m.render().unwrap());
        let get = |series: &str| {
            v.get(series)
                .unwrap_or_else(|| panic!("{series} missing"))
                .as_str()
        };
        assert_eq!(
            get(r#"controller_runtime_reconcile_total{controller="spotfleet",result="success"}"#),
            "1"
        );
        assert_eq!(
            get(
                r#"controller_runtime_reconcile_total{controller="spotfleet",result="requeue_after"}"#
            ),
            "2"
        );
        assert_eq!(
            get(r#"controller_runtime_reconcile_total{controller="spotfleet",result="requeue"}"#),
            "0"
        );
        assert_eq!(
            get(r#"controller_runtime_reconcile_total{controller="spotfleet",result="error"}"#),
            "2"
        );
        assert_eq!(
            get(r#"controller_runtime_reconcile_errors_total{controller="spotfleet"}"#),
            "2"
        );
        assert_eq!(
            get(r#"controller_runtime_terminal_reconcile_errors_total{controller="spotfleet"}"#),
            "1"
        );
        assert_eq!(
            get(r#"controller_runtime_max_concurrent_reconciles{controller="spotfleet"}"#),
            "4"
        );
        assert_eq!(
            get(r#"stagehand_reconcile_errors_total{kind="SpotFleet",reason="Throttled"}"#),
            "1"
        );
        assert_eq!(
            get(r#"stagehand_reconcile_errors_total{kind="SpotFleet",reason="OwnershipConflict"}"#),
            "1"
        );
        assert_eq!(
            get(&format!(
                r#"stagehand_build_info{{version="{}"}}"#,
                crate::VERSION
            )),
            "1"
        );
    }

    #[test]
    fn active_workers_follow_running_reconciles_even_when_cancelled() {
        let m = Metrics::new().unwrap();
        let c = m.controller("StaticSite", 2);
        let gauge = || m.active_workers.with_label_values(&["staticsite"]).get();
        let first = c.start_reconcile();
        let second = c.start_reconcile();
        assert_eq!(gauge(), 2);
        first.finish();
        assert_eq!(gauge(), 1);
        drop(second); // cancelled reconcile
        assert_eq!(gauge(), 0);
        let count = m
            .reconcile_time_seconds
            .with_label_values(&["staticsite"])
            .get_sample_count();
        assert_eq!(count, 2);
    }
}
