//! Stagehand's test environment.
//!
//! [`TestApiServer`] is an in-process stand-in for the Kubernetes API server, on 127.0.0.1 only,
//! held to the real clients: kube-runtime (watcher, finalizer helper, server-side apply) and the
//! real `kubectl`. It keeps the semantics fakes usually get wrong: one global monotonic
//! resourceVersion, watch resumption with `410 Expired` delivered as an ERROR event, no-op writes
//! that change nothing, `generation` vs `/status`, deletion with finalizers, the JSON-patch
//! missing-path-is-null `test`, CRDs registering their kinds, and schema + CEL validation of
//! custom objects. It is not a cluster: no scheduler, no controllers, no webhooks, no RBAC.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod audit;
pub mod aws;
pub mod discovery;
pub mod door;
pub mod error;
pub mod fieldmanager;
pub mod http;
pub mod openapi;
pub mod patch;
pub mod protobuf;
pub mod registry;
pub mod schema;
pub mod selectors;
pub mod store;
pub mod table;
pub mod views;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use error::{ApiError, FieldError, FieldErrorKind};
use http::Shared;

/// A kubeconfig whose current context points at the API server at `url` (namespace `default`).
pub fn kubeconfig_yaml(url: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: stagehand-testenv\n  cluster:\n    server: {url}\ncontexts:\n- name: stagehand-testenv\n  context:\n    cluster: stagehand-testenv\n    user: stagehand-testenv\n    namespace: default\ncurrent-context: stagehand-testenv\nusers:\n- name: stagehand-testenv\n  user: {{}}\n"
    )
}

/// Builder for [`TestApiServer`].
#[derive(Debug, Clone)]
pub struct TestApiServerBuilder {
    port: u16,
    history_limit: usize,
}

impl Default for TestApiServerBuilder {
    fn default() -> Self {
        Self {
            port: 0,
            history_limit: 1000,
        }
    }
}

impl TestApiServerBuilder {
    /// A fixed port on 127.0.0.1 (default: a free one).
    #[must_use]
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// How many events each collection keeps for watch resumption (default 1000).
    #[must_use]
    pub fn history_limit(mut self, limit: usize) -> Self {
        self.history_limit = limit;
        self
    }

    pub async fn start(self) -> std::io::Result<TestApiServer> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(addr.to_string(), self.history_limit));
        let app = http::router(shared.clone());
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let server = axum::serve(listener, app).with_graceful_shutdown(async move {
                let _ = rx.await;
            });
            if let Err(e) = server.await {
                tracing::error!(error = %e, "stand-in API server failed");
            }
        });
        Ok(TestApiServer {
            addr,
            shared,
            shutdown: Some(tx),
            task: Some(task),
            client_ports: std::sync::Mutex::new(Vec::new()),
        })
    }
}

/// A running API server stand-in. Stops when dropped or on [`TestApiServer::shutdown`].
#[derive(Debug)]
pub struct TestApiServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    /// The listeners behind [`TestApiServer::client_door`]s.
    client_ports: std::sync::Mutex<Vec<JoinHandle<()>>>,
}

impl TestApiServer {
    /// Starts a server on a free port of 127.0.0.1.
    pub async fn start() -> std::io::Result<Self> {
        TestApiServerBuilder::default().start().await
    }

    pub fn builder() -> TestApiServerBuilder {
        TestApiServerBuilder::default()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A kubeconfig whose current context points at this server (namespace `default`).
    pub fn kubeconfig_yaml(&self) -> String {
        kubeconfig_yaml(&self.url())
    }

    /// A door to this server for one client, that a test can make slow or shut
    /// ([`door::Door`]).
    pub async fn door(&self) -> std::io::Result<door::Door> {
        door::Door::open(self.addr).await
    }

    /// A door for the client `client` ([`door::Door`]: it can be made slow or shut too) whose
    /// every request is recorded as an [`audit::Access`] of `client` ([`Self::accesses`]):
    /// what RBAC would have to allow it. The door forwards to a port of its own that serves the
    /// same objects as the server's.
    pub async fn client_door(&self, client: &str) -> std::io::Result<door::Door> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let app = http::client_router(self.shared.clone(), client.to_owned());
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "stand-in client port failed");
            }
        });
        self.client_ports
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(task);
        door::Door::open(addr).await
    }

    /// What every named client ([`Self::client_door`]) asked for so far, in order.
    pub fn accesses(&self) -> Vec<audit::Access> {
        self.shared.accesses()
    }

    pub fn write_kubeconfig(&self, path: impl AsRef<Path>) -> std::io::Result<()> {
        std::fs::write(path, self.kubeconfig_yaml())
    }

    /// A kube client for this server (default namespace `default`).
    ///
    /// # Panics
    /// If kube cannot build a client for a plain-HTTP URL (it always can).
    pub fn client(&self) -> kube::Client {
        let uri = self
            .url()
            .parse::<axum::http::Uri>()
            .expect("the server URL is a valid URI");
        let mut config = kube::Config::new(uri);
        "default".clone_into(&mut config.default_namespace);
        kube::Client::try_from(config).expect("kube builds a client for a plain HTTP URL")
    }

    /// Applies Stagehand's three CRDs (server-side apply, manager `stagehand-tests`), as
    /// `kubectl apply -f crds/yaml/` would, and returns them as stored.
    pub async fn install_stagehand_crds(
        &self,
    ) -> Result<Vec<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition>, kube::Error>{
        let api: kube::Api<
            k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
        > = kube::Api::all(self.client());
        let mut stored = Vec::new();
        for crd in stagehand_crds::crds() {
            let name = crd.metadata.name.clone().unwrap_or_default();
            stored.push(
                api.patch(
                    &name,
                    &kube::api::PatchParams::apply("stagehand-tests"),
                    &kube::api::Patch::Apply(&crd),
                )
                .await?,
            );
        }
        Ok(stored)
    }

    /// Creates a namespace (objects can only be created in namespaces that exist).
    pub async fn create_namespace(&self, name: &str) -> Result<(), kube::Error> {
        let namespace = k8s_openapi::api::core::v1::Namespace {
            metadata: kube::api::ObjectMeta {
                name: Some(name.to_owned()),
                ..kube::api::ObjectMeta::default()
            },
            ..k8s_openapi::api::core::v1::Namespace::default()
        };
        kube::Api::<k8s_openapi::api::core::v1::Namespace>::all(self.client())
            .create(&kube::api::PostParams::default(), &namespace)
            .await
            .map(drop)
    }

    /// Test hook: forgets the watch history of every collection and ends every open watch, so
    /// that resuming clients get `410 Expired` (as an ERROR event) and must re-list.
    pub fn expire_watch_history(&self) {
        self.shared.write(store::Store::expire_history);
    }

    /// The current global resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.shared.store().resource_version()
    }

    /// `METHOD path?query` of every resource request served so far.
    pub fn requests(&self) -> Vec<String> {
        self.shared.requests()
    }

    /// Stops the server and waits for it (open watches are ended first).
    pub async fn shutdown(mut self) {
        self.shared.write(store::Store::close);
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let abort = task.abort_handle();
            if tokio::time::timeout(std::time::Duration::from_secs(5), task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }
}

impl Drop for TestApiServer {
    fn drop(&mut self) {
        self.shared.write(store::Store::close);
        for task in self
            .client_ports
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .drain(..)
        {
            task.abort();
        }
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
