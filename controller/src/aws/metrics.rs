//! The metrics every AWS call records. The adapters own them (the runtime only registers them
//! in its registry), so the door to AWS depends on nothing above it.

use std::time::Duration;

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

/// Buckets for single AWS API calls: 5ms to 30s.
const AWS_CALL_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// `stagehand_aws_api_requests_total` and `stagehand_aws_api_request_duration_seconds`.
/// Cheap to clone (the metric families are shared).
#[derive(Clone, Debug)]
pub struct AwsMetrics {
    pub requests_total: IntCounterVec,
    pub request_duration_seconds: HistogramVec,
}

impl AwsMetrics {
    /// Creates the AWS call metrics and registers them in `registry`.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let requests_total = IntCounterVec::new(
            Opts::new(
                "stagehand_aws_api_requests_total",
                "AWS API calls made, by service, operation and result (success, error, throttled, not_found; fenced: a write refused by the leader fence)",
            ),
            &["service", "operation", "result"],
        )?;
        registry.register(Box::new(requests_total.clone()))?;
        let request_duration_seconds = HistogramVec::new(
            HistogramOpts::new(
                "stagehand_aws_api_request_duration_seconds",
                "Duration of AWS API calls, including SDK retries",
            )
            .buckets(AWS_CALL_BUCKETS.to_vec()),
            &["service", "operation"],
        )?;
        registry.register(Box::new(request_duration_seconds.clone()))?;
        Ok(Self {
            requests_total,
            request_duration_seconds,
        })
    }

    /// Records one AWS API call. `result` is `success` or a small fixed error class
    /// (`throttled`, `client_error`, `server_error`, `timeout`, ...), never a request id.
    pub fn record_call(&self, service: &str, operation: &str, result: &str, duration: Duration) {
        self.requests_total
            .with_label_values(&[service, operation, result])
            .inc();
        self.request_duration_seconds
            .with_label_values(&[service, operation])
            .observe(duration.as_secs_f64());
    }

    /// Records a write the leader fence refused (not sent, or abandoned in flight):
    /// `result="fenced"`, no duration.
    pub fn record_refused(&self, service: &str, operation: &str) {
        self.requests_total
            .with_label_values(&[service, operation, "fenced"])
            .inc();
    }
}
