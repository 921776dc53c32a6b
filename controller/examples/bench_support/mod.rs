//! What the benchmarks share: an AWS provider without client-side rate limits (the benchmarks
//! count calls, not the limiter), a per-operation breakdown of the proxy's call counts, and the
//! process's peak memory.

pub mod process;

use std::collections::BTreeMap;

use aws_config::{BehaviorVersion, Region};
use aws_sdk_s3::config::Credentials;
use stagehand::aws::{AwsProvider, Limit, RateLimits, Service};
use stagehand::runtime::Metrics;
use stagehand_testenv::aws::{AwsFloor, CallsReport, REGION};

/// An AWS provider talking to `floor` (moto behind the counting proxy), its rate limits lifted.
#[allow(
    dead_code,
    reason = "bench_scale runs the controller as a process instead"
)]
pub async fn unlimited_provider(floor: &AwsFloor) -> AwsProvider {
    unlimited_provider_at(&floor.endpoint_url()).await
}

/// An AWS provider talking to `endpoint_url`, its rate limits lifted. Straight to moto (not
/// through the proxy) where the benchmark measures this process's memory: the proxy runs in
/// the same process and holds whole request and response bodies.
#[allow(
    dead_code,
    reason = "only bench_site and bench_scale talk to moto directly"
)]
pub async fn unlimited_provider_at(endpoint_url: &str) -> AwsProvider {
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint_url)
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new("test", "test", None, None, "static"))
        .load()
        .await;
    let unlimited = Limit::new(100_000.0, 100_000);
    let settings = stagehand::aws::AwsSettings {
        rate_limits: RateLimits {
            services: Service::ALL.iter().map(|s| (*s, unlimited)).collect(),
            operations: std::collections::HashMap::new(),
            default: unlimited,
        },
        ..stagehand::aws::AwsSettings::default()
    };
    AwsProvider::new(sdk, Metrics::new().unwrap().aws, settings)
}

/// Calls by operation (`service/Operation` → count).
pub fn by_operation(report: &CallsReport) -> BTreeMap<String, u64> {
    report
        .calls
        .iter()
        .map(|(key, stats)| (key.clone(), stats.count))
        .collect()
}

/// `Operation count, ...` of a breakdown, for the details under a table.
pub fn breakdown(by_operation: &BTreeMap<String, u64>) -> String {
    by_operation
        .iter()
        .map(|(op, count)| format!("{} {count}", op.rsplit('/').next().unwrap_or(op)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The `n` operations that kept callers waiting longest in all (the proxy's latency: moto's
/// answer plus the proxy's own handling): `Operation count × mean ms (max ms)`, slowest first.
/// Where moto, not the caller, is the bottleneck, it shows here.
#[allow(
    dead_code,
    clippy::cast_precision_loss,
    reason = "only bench_scale reports where the time went; a mean of call counts"
)]
pub fn slowest(report: &CallsReport, n: usize) -> String {
    let mut operations: Vec<_> = report.calls.values().collect();
    operations.sort_by(|a, b| b.total_latency_ms.total_cmp(&a.total_latency_ms));
    operations
        .iter()
        .take(n)
        .map(|s| {
            format!(
                "{} {} × {:.0} ms ({:.0} ms max)",
                s.operation,
                s.count,
                s.total_latency_ms / s.count.max(1) as f64,
                s.max_latency_ms
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Peak and current resident memory of this process (`VmHWM`, `VmRSS` lines).
pub fn memory_lines() -> Vec<String> {
    std::fs::read_to_string("/proc/self/status")
        .map(|status| {
            status
                .lines()
                .filter(|l| l.starts_with("VmHWM") || l.starts_with("VmRSS"))
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// Resident memory of this process in KiB: `(VmHWM, VmRSS)`, peak and current.
#[allow(
    dead_code,
    reason = "bench_site and bench_scale measure phases separately"
)]
pub fn memory_kib() -> (u64, u64) {
    let field = |name: &str| {
        memory_lines()
            .iter()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM"), field("VmRSS"))
}

/// Starts a new peak: `VmHWM` drops to the current `VmRSS` (Linux `clear_refs` 5), so the
/// next reading is the peak of what ran in between.
#[allow(dead_code, reason = "only bench_site measures phases separately")]
pub fn reset_peak_memory() {
    std::fs::write("/proc/self/clear_refs", "5").unwrap();
}
