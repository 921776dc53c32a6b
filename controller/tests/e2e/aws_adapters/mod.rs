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
mod sqs;

use std::collections::BTreeMap;
use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_s3::config::Credentials;
use stagehand::aws::{AwsProvider, AwsSettings, Limit, RateLimits};
use stagehand::runtime::Metrics;
use stagehand_testenv::aws::AwsFloor;

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

/// A zip archive with the given files, stored (no compression) with fixed timestamps: the same
/// input always gives the same bytes, so `CodeSha256` is known in advance.
pub fn deterministic_zip(files: &[(&str, &str)]) -> Vec<u8> {
    const DOS_TIME: u16 = 0;
    const DOS_DATE: u16 = (2020 - 1980) << 9 | 1 << 5 | 1; // 2020-01-01
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, content) in files {
        let offset = u32::try_from(out.len()).unwrap();
        let crc = crc32(content.as_bytes());
        let size = u32::try_from(content.len()).unwrap();
        let name_len = u16::try_from(name.len()).unwrap();
        let header = |out: &mut Vec<u8>, signature: u32, central: bool| {
            out.extend(signature.to_le_bytes());
            if central {
                out.extend(20_u16.to_le_bytes()); // made by
            }
            out.extend(20_u16.to_le_bytes()); // version needed
            out.extend(0_u16.to_le_bytes()); // flags
            out.extend(0_u16.to_le_bytes()); // stored
            out.extend(DOS_TIME.to_le_bytes());
            out.extend(DOS_DATE.to_le_bytes());
            out.extend(crc.to_le_bytes());
            out.extend(size.to_le_bytes());
            out.extend(size.to_le_bytes());
            out.extend(name_len.to_le_bytes());
            out.extend(0_u16.to_le_bytes()); // extra
            if central {
                out.extend(0_u16.to_le_bytes()); // comment
                out.extend(0_u16.to_le_bytes()); // disk
                out.extend(0_u16.to_le_bytes()); // internal attrs
                out.extend((0o100_644_u32 << 16).to_le_bytes()); // external attrs
                out.extend(offset.to_le_bytes());
            }
            out.extend(name.as_bytes());
        };
        header(&mut out, 0x0403_4b50, false);
        out.extend(content.as_bytes());
        header(&mut central, 0x0201_4b50, true);
    }
    let central_offset = u32::try_from(out.len()).unwrap();
    let central_size = u32::try_from(central.len()).unwrap();
    let count = u16::try_from(files.len()).unwrap();
    out.extend(central);
    out.extend(0x0605_4b50_u32.to_le_bytes());
    out.extend([0_u8; 4]); // disk numbers
    out.extend(count.to_le_bytes());
    out.extend(count.to_le_bytes());
    out.extend(central_size.to_le_bytes());
    out.extend(central_offset.to_le_bytes());
    out.extend(0_u16.to_le_bytes());
    out
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFF_u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

#[test]
fn crc32_matches_the_reference_value() {
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
}

#[test]
fn zips_are_byte_for_byte_reproducible() {
    let files = [("index.py", "def handler(e, c):\n    return 1\n")];
    assert_eq!(deterministic_zip(&files), deterministic_zip(&files));
    assert_ne!(
        deterministic_zip(&files),
        deterministic_zip(&[("index.py", "other")])
    );
}
