//! The only door to AWS: one thin adapter per service, returning Stagehand's own types.
//!
//! Nothing outside this module imports an aws-sdk crate. [`AwsProvider`] builds the SDK clients
//! of each region from the shared [`SdkConfig`] (endpoint override, path-style S3 behind an
//! endpoint, retry and timeout settings) and caches them; every call goes through
//! [`call::Caller`], which waits for the service's rate limiter, records the
//! `stagehand_aws_api_*` metrics and turns SDK errors into [`AwsError`].
//!
//! - [`lambda`], [`s3`], [`cloudformation`], [`sqs`], [`ec2`], [`cloudfront`]: the calls.
//! - [`error`]: [`AwsError`] and its classification.
//! - [`rate_limit`]: token buckets per region, service and (where AWS has one) operation quota.
//! - [`tags`]: ownership tags.

pub mod call;
pub mod cloudformation;
pub mod cloudfront;
pub mod config;
pub mod ec2;
pub mod error;
pub mod fence;
pub mod lambda;
pub mod metrics;
pub mod operations;
pub mod rate_limit;
pub mod s3;
pub mod sqs;
pub mod sts;
pub mod tags;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{AppName, Region, SdkConfig};

pub use error::{AwsError, ErrorKind};
pub use fence::WriteFence;
pub use metrics::AwsMetrics;
pub use rate_limit::{Limit, RateLimitOverride, RateLimits};
pub use tags::{Ownership, owner_tag_value, ownership};

use call::Caller;
use rate_limit::RateLimiter;

/// The SDK app name: every request's `x-amz-user-agent` ends in `app/stagehand`, so CloudTrail
/// (`userAgent`) and the test proxy tell Stagehand's calls from anyone else's.
pub const APP_NAME: &str = "stagehand";

/// The AWS services Stagehand calls; [`Service::as_str`] is the `service` metric label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Service {
    Lambda,
    S3,
    CloudFormation,
    Sqs,
    Ec2,
    CloudFront,
    Sts,
}

impl Service {
    /// Every service Stagehand calls.
    pub const ALL: [Self; 7] = [
        Self::Lambda,
        Self::S3,
        Self::CloudFormation,
        Self::Sqs,
        Self::Ec2,
        Self::CloudFront,
        Self::Sts,
    ];

    /// The metric label and the name in messages.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Lambda => "lambda",
            Self::S3 => "s3",
            Self::CloudFormation => "cloudformation",
            Self::Sqs => "sqs",
            Self::Ec2 => "ec2",
            Self::CloudFront => "cloudfront",
            Self::Sts => "sts",
        }
    }
}

impl std::str::FromStr for Service {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|service| service.as_str().eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                let known: Vec<&str> = Self::ALL.iter().map(|s| s.as_str()).collect();
                format!(
                    "unknown AWS service {name:?}: expected one of {}",
                    known.join(", ")
                )
            })
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the adapters call AWS.
#[derive(Clone, Debug, PartialEq)]
pub struct AwsSettings {
    /// Attempts per call, the first included (the SDK's standard retry mode retries throttling,
    /// 5xx and transport errors).
    pub max_attempts: u32,
    /// First retry delay (then exponential with jitter, up to `max_backoff`).
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// Limit on one attempt (connect + request + response), when set.
    pub attempt_timeout: Option<Duration>,
    pub rate_limits: RateLimits,
}

impl Default for AwsSettings {
    /// The SDK's standard mode (3 attempts, 1s base backoff, 20s cap).
    fn default() -> Self {
        Self {
            max_attempts: 3,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(20),
            attempt_timeout: Some(Duration::from_secs(30)),
            rate_limits: RateLimits::default(),
        }
    }
}

/// SDK clients for one region.
#[derive(Clone, Debug)]
struct RegionClients {
    lambda: aws_sdk_lambda::Client,
    s3: aws_sdk_s3::Client,
    cloudformation: aws_sdk_cloudformation::Client,
    sqs: aws_sdk_sqs::Client,
    ec2: aws_sdk_ec2::Client,
    cloudfront: aws_sdk_cloudfront::Client,
    sts: aws_sdk_sts::Client,
}

/// Builds (once per region) and hands out the service adapters. Cheap to clone.
#[derive(Clone)]
pub struct AwsProvider {
    sdk: SdkConfig,
    settings: Arc<AwsSettings>,
    metrics: AwsMetrics,
    limiter: RateLimiter,
    /// Asked before every write (see [`fence`]); shared by every clone of the provider.
    fence: WriteFence,
    clients: Arc<Mutex<HashMap<String, RegionClients>>>,
}

impl fmt::Debug for AwsProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The SDK config holds credential providers: show only what is safe.
        f.debug_struct("AwsProvider")
            .field("endpoint_url", &self.sdk.endpoint_url())
            .field("default_region", &self.sdk.region())
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl AwsProvider {
    /// `sdk` is the shared configuration (credentials, default region, endpoint override from
    /// `--aws-endpoint-url` or `AWS_ENDPOINT_URL`).
    pub fn new(sdk: SdkConfig, metrics: AwsMetrics, settings: AwsSettings) -> Self {
        Self {
            limiter: RateLimiter::new(settings.rate_limits.clone()),
            sdk,
            settings: Arc::new(settings),
            metrics,
            fence: WriteFence::unfenced(),
            clients: Arc::default(),
        }
    }

    /// The provider with its writes behind `fence` (leader election: see [`fence`]). Set it
    /// before the provider is cloned: clones made earlier keep the previous fence.
    #[must_use]
    pub fn with_write_fence(mut self, fence: WriteFence) -> Self {
        self.fence = fence;
        self
    }

    /// The fence every write of this provider asks.
    pub fn write_fence(&self) -> &WriteFence {
        &self.fence
    }

    /// The shared SDK configuration (region, endpoint override; credentials stay inside).
    pub fn sdk_config(&self) -> &SdkConfig {
        &self.sdk
    }

    /// Whether S3 is addressed path-style: always behind an endpoint override (emulators do
    /// not serve virtual-host buckets), never against AWS itself.
    pub fn s3_force_path_style(&self) -> bool {
        self.sdk.endpoint_url().is_some()
    }

    /// The region of the shared configuration.
    pub fn default_region(&self) -> Option<&str> {
        self.sdk.region().map(Region::as_ref)
    }

    pub fn lambda(&self, region: &str) -> lambda::Lambda {
        lambda::Lambda::new(
            self.clients(region).lambda,
            self.caller(region, Service::Lambda),
        )
    }

    pub fn s3(&self, region: &str) -> s3::S3 {
        s3::S3::new(self.clients(region).s3, self.caller(region, Service::S3))
    }

    pub fn cloudformation(&self, region: &str) -> cloudformation::CloudFormation {
        cloudformation::CloudFormation::new(
            self.clients(region).cloudformation,
            self.caller(region, Service::CloudFormation),
        )
    }

    pub fn sqs(&self, region: &str) -> sqs::Sqs {
        sqs::Sqs::new(self.clients(region).sqs, self.caller(region, Service::Sqs))
    }

    pub fn sts(&self, region: &str) -> sts::Sts {
        sts::Sts::new(self.clients(region).sts, self.caller(region, Service::Sts))
    }

    pub fn ec2(&self, region: &str) -> ec2::Ec2 {
        ec2::Ec2::new(self.clients(region).ec2, self.caller(region, Service::Ec2))
    }

    /// CloudFront is global; its API lives in us-east-1, but the region still names the
    /// rate-limit bucket and the client cache entry of the calling object.
    pub fn cloudfront(&self, region: &str) -> cloudfront::CloudFront {
        cloudfront::CloudFront::new(
            self.clients(region).cloudfront,
            self.caller(region, Service::CloudFront),
        )
    }

    fn caller(&self, region: &str, service: Service) -> Caller {
        Caller::new(
            region.to_owned(),
            service,
            self.limiter.clone(),
            self.metrics.clone(),
            self.fence.clone(),
        )
    }

    fn clients(&self, region: &str) -> RegionClients {
        let mut clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        clients
            .entry(region.to_owned())
            .or_insert_with(|| self.build_clients(region))
            .clone()
    }

    fn retry_config(&self) -> RetryConfig {
        RetryConfig::standard()
            .with_max_attempts(self.settings.max_attempts.max(1))
            .with_initial_backoff(self.settings.initial_backoff)
            .with_max_backoff(self.settings.max_backoff)
    }

    fn timeout_config(&self) -> TimeoutConfig {
        let mut timeouts = self
            .sdk
            .timeout_config()
            .map_or_else(TimeoutConfig::builder, TimeoutConfig::to_builder);
        if let Some(attempt) = self.settings.attempt_timeout {
            timeouts = timeouts.operation_attempt_timeout(attempt);
        }
        timeouts.build()
    }

    fn build_clients(&self, region: &str) -> RegionClients {
        let region = Region::new(region.to_owned());
        let retry = self.retry_config();
        let timeouts = self.timeout_config();
        // `stagehand` in every request's user agent (CloudTrail shows it; the test floor counts
        // the controller's calls by it). An app id the environment gives that already names
        // Stagehand (`AWS_SDK_UA_APP_ID=stagehand.<replica>`) is kept: it tells replicas apart.
        // The name is a valid constant; `ok()` only satisfies the fallible constructor.
        let mut shared = self.sdk.to_builder();
        let given = self
            .sdk
            .app_name()
            .filter(|name| {
                name.as_ref()
                    .strip_prefix(APP_NAME)
                    .is_some_and(|replica| replica.starts_with('.'))
            })
            .cloned();
        shared.set_app_name(given.or_else(|| AppName::new(APP_NAME).ok()));
        let shared = shared.build();
        macro_rules! client {
            ($sdk:ident) => {
                $sdk::Client::from_conf(
                    $sdk::config::Builder::from(&shared)
                        .region(region.clone())
                        .retry_config(retry.clone())
                        .timeout_config(timeouts.clone())
                        .build(),
                )
            };
        }
        RegionClients {
            lambda: client!(aws_sdk_lambda),
            s3: aws_sdk_s3::Client::from_conf(
                aws_sdk_s3::config::Builder::from(&shared)
                    .region(region.clone())
                    .retry_config(retry.clone())
                    .timeout_config(timeouts.clone())
                    .force_path_style(self.s3_force_path_style())
                    .build(),
            ),
            cloudformation: client!(aws_sdk_cloudformation),
            sqs: client!(aws_sdk_sqs),
            ec2: client!(aws_sdk_ec2),
            cloudfront: client!(aws_sdk_cloudfront),
            sts: client!(aws_sdk_sts),
        }
    }

    /// How many regions have clients (for tests of the cache).
    pub fn cached_regions(&self) -> usize {
        self.clients
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// A time from the SDK as a [`jiff::Timestamp`] (`None` if out of range).
pub(crate) fn smithy_time(t: &aws_smithy_types::DateTime) -> Option<jiff::Timestamp> {
    let nanos = i32::try_from(t.subsec_nanos()).ok()?;
    jiff::Timestamp::new(t.secs(), nanos).ok()
}

/// Reads an optional field AWS always sends, or says which one is missing.
pub(crate) fn required<T>(
    value: Option<T>,
    service: Service,
    operation: &'static str,
    resource: Option<&str>,
    field: &str,
) -> Result<T, AwsError> {
    value.ok_or_else(|| {
        AwsError::missing_field(service, operation, resource.map(str::to_owned), field)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_config::BehaviorVersion;

    fn provider(endpoint: Option<&str>) -> AwsProvider {
        let mut loader = aws_config::SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("eu-west-1"));
        if let Some(url) = endpoint {
            loader = loader.endpoint_url(url);
        }
        AwsProvider::new(
            loader.build(),
            AwsMetrics::register(&prometheus::Registry::new()).unwrap(),
            AwsSettings::default(),
        )
    }

    #[test]
    fn clients_are_built_once_per_region_with_their_region() {
        let aws = provider(None);
        assert_eq!(aws.default_region(), Some("eu-west-1"));
        let a = aws.clients("us-west-2");
        let _ = aws.clients("us-west-2");
        let _ = aws.clients("eu-central-1");
        assert_eq!(aws.cached_regions(), 2);
        assert_eq!(
            a.lambda.config().region().map(Region::as_ref),
            Some("us-west-2")
        );
        assert_eq!(
            a.ec2.config().retry_config().map(RetryConfig::max_attempts),
            Some(3)
        );
        assert_eq!(
            a.s3.config().app_name().map(AppName::to_string).as_deref(),
            Some(APP_NAME)
        );
    }

    #[test]
    fn path_style_s3_only_behind_an_endpoint() {
        assert!(!provider(None).s3_force_path_style());
        // The client's use of it is proven against moto (tests/e2e/aws_adapters/s3.rs): virtual-host
        // addressing of `bucket.127.0.0.1` cannot work there.
        assert!(provider(Some("http://127.0.0.1:5000")).s3_force_path_style());
    }

    #[test]
    fn service_labels_are_lowercase_names() {
        for service in [
            Service::Lambda,
            Service::S3,
            Service::CloudFormation,
            Service::Sqs,
            Service::Ec2,
            Service::CloudFront,
            Service::Sts,
        ] {
            let label = service.as_str();
            assert!(
                label
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
            );
        }
    }
}
