//! Loading the shared AWS SDK configuration: the default credential chain, the region and an
//! optional endpoint override (emulators such as moto, VPC endpoints).

use aws_config::meta::region::RegionProviderChain;
use aws_config::{BehaviorVersion, Region, SdkConfig};

/// Why the SDK configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// No region from the flag, the environment or the AWS config files.
    #[error("no AWS region configured: set --aws-region or AWS_REGION")]
    NoRegion,

    /// The endpoint override is not an absolute http(s) URL.
    #[error(
        "invalid AWS endpoint URL {url:?}: expected an absolute URL such as http://localhost:5000"
    )]
    InvalidEndpoint { url: String },
}

impl ConfigError {
    /// What to do about it, for the command line.
    pub const fn hint(&self) -> &'static str {
        match self {
            Self::NoRegion => {
                "hint: e.g. --aws-region eu-west-1, or export AWS_REGION=eu-west-1, or set region in ~/.aws/config"
            }
            Self::InvalidEndpoint { .. } => {
                "hint: include the scheme and host, e.g. --aws-endpoint-url http://localhost:5000"
            }
        }
    }
}

/// The SDK configuration: the default credential chain, `region` or else the default chain's,
/// and `endpoint_url` when set. Credentials are not resolved here (the SDK fetches them
/// lazily), so this never logs or checks them.
pub async fn load_sdk_config(
    region: Option<&str>,
    endpoint_url: Option<&str>,
) -> Result<SdkConfig, ConfigError> {
    let region = RegionProviderChain::first_try(region.map(|r| Region::new(r.to_owned())))
        .or_default_provider();
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).region(region);
    if let Some(url) = endpoint_url {
        if !is_http_url(url) {
            return Err(ConfigError::InvalidEndpoint {
                url: url.to_owned(),
            });
        }
        loader = loader.endpoint_url(url);
    }
    let config = loader.load().await;
    if config.region().is_none() {
        return Err(ConfigError::NoRegion);
    }
    Ok(config)
}

fn is_http_url(url: &str) -> bool {
    url.strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn explicit_region_and_endpoint_are_used() {
        let config = load_sdk_config(Some("eu-west-3"), Some("http://127.0.0.1:5000"))
            .await
            .unwrap();
        assert_eq!(config.region().map(Region::as_ref), Some("eu-west-3"));
        assert_eq!(config.endpoint_url(), Some("http://127.0.0.1:5000"));
    }

    #[tokio::test]
    async fn malformed_endpoint_is_rejected_before_loading() {
        for url in ["localhost:5000", "ftp://x", "http://", "http:///x"] {
            let err = load_sdk_config(Some("eu-west-3"), Some(url))
                .await
                .unwrap_err();
            assert!(
                matches!(err, ConfigError::InvalidEndpoint { .. }),
                "{url}: {err}"
            );
        }
    }

    #[test]
    fn messages_and_hints_name_the_flag_and_the_variable() {
        assert_eq!(
            ConfigError::NoRegion.to_string(),
            "no AWS region configured: set --aws-region or AWS_REGION"
        );
        assert!(ConfigError::NoRegion.hint().contains("AWS_REGION"));
        assert!(
            ConfigError::InvalidEndpoint { url: "x".into() }
                .hint()
                .contains("--aws-endpoint-url")
        );
    }
}
