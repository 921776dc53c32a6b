//! The AWS adapters against moto on loopback, through the real SDK and wire protocols, via the
//! test floor's fault/counting proxy (`stagehand_testenv::aws::AwsFloor`).
//!
//! Each test starts its own floor (isolated state, parallel-safe). Seeding uses the SDK directly
//! (tests may; the controller may not); what is tested goes through `stagehand::aws`.

#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

mod cloudformation;
mod cloudfront;
mod ec2;
mod errors;
mod faults;
mod lambda;
mod s3;
mod s3_bucket;
mod sqs;

use std::collections::BTreeMap;
use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_s3::config::Credentials;
use stagehand::aws::{AwsProvider, AwsSettings, Limit, RateLimits};
use stagehand::runtime::Metrics;
use stagehand_testenv::aws::AwsFloor;
use stagehand_testenv::aws::zip::deterministic_zip;

pub const REGION: &str = "us-east-1";
pub const ACCOUNT: &str = "123456789012";

/// moto behind the fault proxy, and a provider pointed at the proxy.
#[allow(missing_debug_implementations)]
pub struct Env {
    pub floor: AwsFloor,
    pub sdk: SdkConfig,
    pub metrics: Metrics,
    pub aws: AwsProvider,
}

impl Env {
    pub async fn start() -> Self {
        Self::start_with(fast_settings()).await
    }

    pub async fn start_with(settings: AwsSettings) -> Self {
        let floor = AwsFloor::start().await.unwrap();
        let sdk = aws_config::defaults(BehaviorVersion::latest())
            .endpoint_url(floor.endpoint_url())
            .region(Region::new(REGION))
            .credentials_provider(Credentials::new("test", "test", None, None, "static"))
            .load()
            .await;
        let metrics = Metrics::new().unwrap();
        let aws = AwsProvider::new(sdk.clone(), metrics.aws.clone(), settings);
        Self {
            floor,
            sdk,
            metrics,
            aws,
        }
    }

    /// A raw S3 client for seeding (path-style, as moto needs).
    pub fn s3_client(&self) -> aws_sdk_s3::Client {
        aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&self.sdk)
                .force_path_style(true)
                .build(),
        )
    }

    pub fn lambda_client(&self) -> aws_sdk_lambda::Client {
        aws_sdk_lambda::Client::new(&self.sdk)
    }

    /// `stagehand_aws_api_requests_total{service,operation,result}`.
    pub fn calls(&self, service: &str, operation: &str, result: &str) -> u64 {
        self.metrics
            .aws
            .requests_total
            .with_label_values(&[service, operation, result])
            .get()
    }

    /// Every adapter call so far: (service/operation/result → count), plus the summed duration.
    pub fn call_summary(&self) -> (BTreeMap<String, u64>, f64) {
        let mut counts = BTreeMap::new();
        let mut seconds = 0.0;
        let text = self.metrics.render().unwrap();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let Some((series, value)) = line.rsplit_once(' ') else {
                continue;
            };
            if let Some(labels) = series.strip_prefix("stagehand_aws_api_requests_total{") {
                let label = |name: &str| {
                    labels
                        .split(',')
                        .find_map(|kv| kv.strip_prefix(&format!("{name}=\"")))
                        .map(|v| v.trim_end_matches(['"', '}']).to_owned())
                        .unwrap_or_default()
                };
                counts.insert(
                    format!(
                        "{}/{}/{}",
                        label("service"),
                        label("operation"),
                        label("result")
                    ),
                    value.parse().unwrap_or(0),
                );
            } else if series.starts_with("stagehand_aws_api_request_duration_seconds_sum") {
                seconds += value.parse::<f64>().unwrap_or(0.0);
            }
        }
        (counts, seconds)
    }

    /// Prints the calls made (run with `--nocapture` to see them).
    pub fn report(&self, test: &str) {
        let (counts, seconds) = self.call_summary();
        let total: u64 = counts.values().sum();
        eprintln!("[{test}] {total} adapter calls, {seconds:.3}s in AWS calls: {counts:?}");
    }
}

/// Every `service` call the adapters made (the metrics' operation labels) is counted by the
/// proxy under the same operation name, and the proxy named every call it saw (no
/// `Unknown`): the benchmarks count calls by operation, so a name missing in the proxy's
/// classifier would hide calls.
pub async fn assert_proxy_names_every_call(env: &Env, service: &str) {
    let proxy = env.floor.calls().await.unwrap();
    let unknown = format!("{service}/Unknown");
    assert!(
        proxy.get(service, "Unknown").is_none(),
        "the proxy could not name {unknown}: {:?}",
        proxy.calls.keys().collect::<Vec<_>>()
    );
    let (adapter_calls, _) = env.call_summary();
    for key in adapter_calls.keys() {
        let mut parts = key.split('/');
        let (Some(svc), Some(operation)) = (parts.next(), parts.next()) else {
            continue;
        };
        if svc == service {
            assert!(
                proxy.count(service, operation) > 0,
                "the adapter called {svc}/{operation}; the proxy counted: {:?}",
                proxy.calls.keys().collect::<Vec<_>>()
            );
        }
    }
}

/// Short backoff and generous rate limits: tests measure behaviour, not patience.
pub fn fast_settings() -> AwsSettings {
    AwsSettings {
        max_attempts: 2,
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
        attempt_timeout: Some(Duration::from_secs(20)),
        rate_limits: RateLimits::uniform(Limit::new(1000.0, 1000)),
    }
}

/// Creates an IAM role Lambda can assume (moto requires one to exist) and returns its ARN.
pub async fn create_role(env: &Env, name: &str) -> String {
    const TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    env.floor.moto().create_role(name, TRUST).await.unwrap()
}
