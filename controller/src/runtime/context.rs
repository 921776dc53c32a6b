//! The [`Context`] every controller shares: Kubernetes client, AWS adapters and the inventory
//! read through them, metrics, event recorder, settings and the readiness flag.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use aws_config::SdkConfig;

use crate::aws::config::load_sdk_config;
use crate::aws::{AwsProvider, WriteFence};
use crate::feed::FeedHub;
use crate::inventory::Inventory;
use crate::probe::TcpProber;
use kube::Client;
use kube::config::{KubeConfigOptions, Kubeconfig};

use super::error::Error;
use super::events::EventPublisher;
use super::metrics::Metrics;
use crate::settings::Settings;

/// The `reportingController` of Stagehand's Kubernetes Events.
pub const EVENT_REPORTER: &str = "stagehand";

/// Set once every controller's cache has been filled from the API server; `/readyz` answers 200
/// from then on.
#[derive(Clone, Debug, Default)]
pub struct Readiness {
    caches_synced: Arc<AtomicBool>,
}

impl Readiness {
    /// Marks the caches as synced.
    pub fn mark_caches_synced(&self) {
        self.caches_synced.store(true, Ordering::Release);
    }

    /// Back to not ready (a standby that starts leading, until its caches are synced).
    pub fn mark_unready(&self) {
        self.caches_synced.store(false, Ordering::Release);
    }

    /// Whether the caches are synced.
    pub fn is_ready(&self) -> bool {
        self.caches_synced.load(Ordering::Acquire)
    }
}

/// Shared by every controller and every reconcile.
#[derive(Clone)]
pub struct Context {
    pub client: Client,
    /// The AWS adapters (per-region clients, retries, rate limits, call metrics).
    pub aws: AwsProvider,
    /// What every kind reads AWS through: listings shared by every object of a region, kept
    /// for `--inventory-max-age`.
    pub inventory: Inventory,
    /// The AWS event feed's reconcile-now requests and the queues objects name.
    pub feed: FeedHub,
    /// Health probes of instances (SpotFleet `healthCheck.tcpPort`): one for every object, so
    /// its record of dials covers them all.
    pub prober: TcpProber,
    pub metrics: Metrics,
    pub settings: Settings,
    pub readiness: Readiness,
    events: EventPublisher,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The SDK config may hold credentials providers: show only what is safe and useful.
        f.debug_struct("Context")
            .field("default_namespace", &self.client.default_namespace())
            .field("aws", &self.aws)
            .field("settings", &self.settings)
            .field("ready", &self.readiness.is_ready())
            .finish_non_exhaustive()
    }
}

impl Context {
    /// Assembles a context from parts already built (tests, and [`Context::from_settings`]).
    pub fn new(client: Client, aws: SdkConfig, metrics: Metrics, settings: Settings) -> Self {
        let events = EventPublisher::new(client.clone(), EVENT_REPORTER);
        // With leader election nothing may be written to AWS before the first renewal
        // confirms leadership (see `aws::fence`); the elector opens the fence.
        let fence = if settings.leader_election {
            WriteFence::closed()
        } else {
            WriteFence::unfenced()
        };
        let aws = AwsProvider::new(aws, metrics.aws.clone(), settings.aws_settings())
            .with_write_fence(fence);
        let inventory = Inventory::new(aws.clone(), settings.inventory_max_age)
            .with_feed_backstop(settings.feed_backstop_max_age)
            .with_event_queue(settings.event_queue.clone());
        let prober = TcpProber::new(settings.probe.probe_settings());
        Self {
            client,
            aws,
            inventory,
            feed: FeedHub::with_identity(settings.event_feed_identity.clone()),
            prober,
            metrics,
            settings,
            readiness: Readiness::default(),
            events,
        }
    }

    /// Builds the AWS configuration and the Kubernetes client from the settings, and checks
    /// that the API server answers. AWS first: it needs no network and its error is the more
    /// common one on a developer machine.
    pub async fn from_settings(settings: Settings, metrics: Metrics) -> Result<Self, Error> {
        let aws = aws_sdk_config(&settings).await?;
        let KubeConnection {
            client,
            cluster_url,
        } = kube_client(&settings).await?;
        let version =
            client
                .apiserver_version()
                .await
                .map_err(|source| Error::KubeUnreachable {
                    cluster_url: cluster_url.clone(),
                    source: Box::new(source),
                })?;
        tracing::info!(
            kubernetes = %cluster_url,
            kubernetes_version = %version.git_version,
            aws_region = aws.region().map_or("", |r| r.as_ref()),
            aws_endpoint_url = aws.endpoint_url().unwrap_or("default"),
            "connected"
        );
        Ok(Self::new(client, aws, metrics, settings))
    }

    /// Publishes Kubernetes Events for Stagehand's objects. All publishers share one record of
    /// recent events, so repeated events are aggregated into a series.
    pub fn events(&self) -> EventPublisher {
        self.events.clone()
    }

    /// S3 must use path-style addressing (`http://endpoint/bucket/key`) when an endpoint is
    /// configured: emulators such as moto do not serve virtual-host buckets.
    pub fn s3_force_path_style(&self) -> bool {
        s3_force_path_style(&self.settings)
    }
}

/// See [`Context::s3_force_path_style`].
pub fn s3_force_path_style(settings: &Settings) -> bool {
    settings.aws.aws_endpoint_url.is_some()
}

/// The AWS SDK configuration from `--aws-region` and `--aws-endpoint-url` (see
/// [`load_sdk_config`]).
pub async fn aws_sdk_config(settings: &Settings) -> Result<SdkConfig, Error> {
    Ok(load_sdk_config(
        settings.aws.aws_region.as_deref(),
        settings.aws.aws_endpoint_url.as_deref(),
    )
    .await?)
}

/// A Kubernetes client and the URL it talks to (for messages).
#[derive(Clone)]
pub struct KubeConnection {
    pub client: Client,
    pub cluster_url: String,
}

impl std::fmt::Debug for KubeConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeConnection")
            .field("cluster_url", &self.cluster_url)
            .finish_non_exhaustive()
    }
}

/// The Kubernetes client: from `--kubeconfig` when given, else inferred (in-cluster service
/// account, then `KUBECONFIG` / `~/.kube/config`).
pub async fn kube_client(settings: &Settings) -> Result<KubeConnection, Error> {
    let config = match &settings.kubeconfig {
        Some(path) => {
            let kubeconfig_error = |source| Error::Kubeconfig {
                path: path.clone(),
                source: Box::new(source),
            };
            let kubeconfig = Kubeconfig::read_from(path).map_err(kubeconfig_error)?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .map_err(kubeconfig_error)?
        }
        None => kube::Config::infer()
            .await
            .map_err(|source| Error::NoKubeconfig {
                source: Box::new(source),
            })?,
    };
    let cluster_url = config.cluster_url.to_string();
    let client = Client::try_from(config).map_err(|source| Error::KubeClient {
        cluster_url: cluster_url.clone(),
        source: Box::new(source),
    })?;
    Ok(KubeConnection {
        client,
        cluster_url,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::AwsFlags;
    use aws_config::Region;

    fn settings() -> Settings {
        Settings::default()
    }

    #[test]
    fn readiness_starts_unready_and_is_shared_by_clones() {
        let readiness = Readiness::default();
        let seen_by_server = readiness.clone();
        assert!(!seen_by_server.is_ready());
        readiness.mark_caches_synced();
        assert!(seen_by_server.is_ready());
    }

    #[test]
    fn path_style_only_with_an_endpoint() {
        assert!(!s3_force_path_style(&settings()));
        let with_endpoint = Settings {
            aws: AwsFlags {
                aws_endpoint_url: Some("http://localhost:5000".into()),
                ..AwsFlags::default()
            },
            ..settings()
        };
        assert!(s3_force_path_style(&with_endpoint));
    }

    #[tokio::test]
    async fn the_flags_reach_the_sdk_config() {
        let config = aws_sdk_config(&Settings {
            aws: AwsFlags {
                aws_region: Some("eu-west-3".into()),
                aws_endpoint_url: Some("http://127.0.0.1:5000".into()),
                ..AwsFlags::default()
            },
            ..settings()
        })
        .await
        .unwrap();
        assert_eq!(config.region().map(Region::as_ref), Some("eu-west-3"));
        assert_eq!(config.endpoint_url(), Some("http://127.0.0.1:5000"));
    }

    #[tokio::test]
    async fn missing_kubeconfig_file_names_the_path() {
        let path =
            std::env::temp_dir().join(format!("stagehand-missing-{}.yaml", std::process::id()));
        let err = kube_client(&Settings {
            kubeconfig: Some(path.clone()),
            ..settings()
        })
        .await
        .unwrap_err();
        assert!(matches!(err, Error::Kubeconfig { .. }), "{err}");
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
        assert!(err.hint().unwrap().contains("KUBECONFIG"));
    }

    #[tokio::test]
    async fn kubeconfig_without_a_current_context_is_reported() {
        let path =
            std::env::temp_dir().join(format!("stagehand-empty-{}.yaml", std::process::id()));
        std::fs::write(
            &path,
            "apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n",
        )
        .unwrap();
        let err = kube_client(&Settings {
            kubeconfig: Some(path.clone()),
            ..settings()
        })
        .await
        .unwrap_err();
        std::fs::remove_file(&path).unwrap();
        assert!(matches!(err, Error::Kubeconfig { .. }), "{err}");
    }

    #[tokio::test]
    async fn a_valid_kubeconfig_builds_a_client_without_connecting() {
        let path =
            std::env::temp_dir().join(format!("stagehand-valid-{}.yaml", std::process::id()));
        std::fs::write(&path, TEST_KUBECONFIG).unwrap();
        let client = kube_client(&Settings {
            kubeconfig: Some(path.clone()),
            ..settings()
        })
        .await;
        std::fs::remove_file(&path).unwrap();
        let connection = client.unwrap();
        assert_eq!(connection.client.default_namespace(), "shop");
        assert_eq!(connection.cluster_url, "http://127.0.0.1:1/");
    }

    const TEST_KUBECONFIG: &str = "apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: http://127.0.0.1:1
contexts:
- name: test
  context:
    cluster: test
    user: test
    namespace: shop
current-context: test
users:
- name: test
  user:
    token: not-a-secret
";
}
