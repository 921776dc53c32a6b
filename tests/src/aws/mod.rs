//! The AWS test floor: moto (the real AWS wire protocols, on loopback) behind a fault-injecting,
//! counting proxy.
//!
//! ```text
//!   client (Rust SDK, AWS CLI, the controller)                         AWS_ENDPOINT_URL
//!        │  http://127.0.0.1:P  ──►  FaultProxy (count, fault, rewrite)  ──►  moto_server
//!        └─ $ADMIN = http://127.0.0.1:P/__stagehand   (calls, log, faults, reset)
//! ```
//!
//! - [`moto::Moto`] starts `moto_server` from `<repo>/.venv` (running `scripts/ensure-moto`
//!   first, once per process; `STAGEHAND_MOTO_BIN` overrides), waits until it answers, resets it,
//!   creates the IAM role Lambda needs, and kills it on drop.
//! - [`proxy::FaultProxy`] identifies each call ([`classify`]), counts it, and applies the fault
//!   rules ([`faults`]): throttling in each service's own format, 4xx/5xx, latency, connection
//!   resets, and rewrites of states moto never produces (stack rollbacks, Lambda updates and
//!   CloudFront invalidations in progress, refused fleet pools) and of instance addresses
//!   (`loopback_addresses`, [`addresses`]: every instance on a 127.0.0.x of its own, so health
//!   probes never leave the machine). The admin API is documented in [`proxy`].
//!   [`moto_fixes`] corrects, on every call, moto answers that break the wire protocol itself;
//!   [`moto_oac`], [`moto_lt_versions`] and [`moto_fleet_launch`] give back what moto forgets or
//!   never implemented (CloudFront origin access controls; `DeleteLaunchTemplateVersions`; a
//!   fleet template's security groups and instance profile on the instances it launches).
//!   [`moto_lambda_pages`] answers `ListFunctions` in AWS's pages of 50 (moto answers every
//!   function in one page) from a snapshot of moto's listing, taken again only after a write.
//! - [`AwsFloor`] starts both; [`AdminClient`] drives the admin API over HTTP, as an external
//!   process would. With `STAGEHAND_AWS_CALLS_SUMMARY=1` a floor prints its call counts to stderr
//!   when dropped (for suite-level call budgets).
//! - [`zip::deterministic_zip`] builds deployment packages and layers whose bytes (and so
//!   `CodeSha256`) depend only on their files, for seeding and tests.
//!
//! For `stagehand-testenv up` (not wired here: the binary belongs to the API stand-in work):
//! `let aws = AwsFloor::start().await?;` then append `export K=V` for each of `aws.env()`
//! (`AWS_ENDPOINT_URL`, `AWS_REGION`, `AWS_DEFAULT_REGION`, dummy `AWS_ACCESS_KEY_ID` /
//! `AWS_SECRET_ACCESS_KEY`, `STAGEHAND_TESTENV_ADMIN`) to `DIR/env`, and keep `aws` alive until
//! the signal; dropping it stops the proxy and kills moto.

pub mod addresses;
pub mod bad_answers;
pub mod classify;
pub mod controller_calls;
pub mod faults;
pub mod moto;
pub mod moto_fixes;
pub mod moto_fleet_launch;
pub mod moto_lambda_pages;
pub mod moto_lt_versions;
pub mod moto_oac;
pub mod moto_s3_events;
pub mod proxy;
pub mod seed;
pub mod zip;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::http::{Method, Request};
use serde::de::DeserializeOwned;

pub use classify::{CallId, Protocol};
pub use faults::{FaultAction, FaultRule, FaultStatus, FleetError};
pub use moto::Moto;
pub use proxy::{ADMIN_PREFIX, CallRecord, CallStats, CallsReport, FaultProxy};

/// The region the floor's clients use.
pub const REGION: &str = "us-east-1";
/// Dummy credentials (moto checks none).
pub const ACCESS_KEY_ID: &str = "testing";
pub const SECRET_ACCESS_KEY: &str = "testing";
/// The environment variable that carries the proxy's admin URL to other processes.
pub const ADMIN_ENV: &str = "STAGEHAND_TESTENV_ADMIN";
/// Stagehand's `--loopback-only` setting: every process run against the floor gets it.
pub const LOOPBACK_ONLY_ENV: &str = "STAGEHAND_LOOPBACK_ONLY";

#[derive(Debug, Clone, thiserror::Error)]
pub enum AwsFloorError {
    /// moto is missing, failed to install, or did not start.
    #[error("AWS test floor setup: {0}")]
    Setup(String),
    #[error("AWS test floor I/O: {0}")]
    Io(String),
    #[error("AWS test floor HTTP: {0}")]
    Http(String),
}

impl From<std::io::Error> for AwsFloorError {
    fn from(e: std::io::Error) -> Self {
        Self::Io(e.to_string())
    }
}

/// moto + the fault proxy in front of it. Both stop when this is dropped.
#[derive(Debug)]
pub struct AwsFloor {
    // Field order: the proxy stops before moto.
    proxy: FaultProxy,
    moto: Moto,
    admin: AdminClient,
}

impl AwsFloor {
    /// Starts moto and a proxy on free ports of 127.0.0.1.
    pub async fn start() -> Result<Self, AwsFloorError> {
        Self::start_on(0).await
    }

    /// Starts moto and a proxy on `127.0.0.1:proxy_port` (0 = a free port).
    pub async fn start_on(proxy_port: u16) -> Result<Self, AwsFloorError> {
        let moto = Moto::start().await?;
        let proxy = FaultProxy::start_on(proxy_port, &moto.url()).await?;
        let admin = AdminClient::new(&proxy.admin_url());
        Ok(Self { proxy, moto, admin })
    }

    /// The proxy's URL: what clients use as `AWS_ENDPOINT_URL`.
    pub fn endpoint_url(&self) -> String {
        self.proxy.url()
    }

    /// `$ADMIN`: the proxy's admin API.
    pub fn admin_url(&self) -> String {
        self.proxy.admin_url()
    }

    pub fn moto(&self) -> &Moto {
        &self.moto
    }

    pub fn proxy(&self) -> &FaultProxy {
        &self.proxy
    }

    pub fn admin(&self) -> &AdminClient {
        &self.admin
    }

    /// `AWS_ENDPOINT_URL`, `AWS_REGION`, dummy credentials, `STAGEHAND_TESTENV_ADMIN` and
    /// `STAGEHAND_LOOPBACK_ONLY=1`, for child processes or an env file. The last keeps a
    /// controller run against moto from dialling the made-up addresses moto gives instances:
    /// health probes of instances not rewritten to loopback (the proxy's `loopback_addresses`
    /// rule) are refused and reported instead.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint_url()),
            ("AWS_REGION", REGION.to_owned()),
            ("AWS_DEFAULT_REGION", REGION.to_owned()),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID.to_owned()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY.to_owned()),
            (ADMIN_ENV, self.admin_url()),
            (LOOPBACK_ONLY_ENV, "1".to_owned()),
        ]
    }

    pub async fn calls(&self) -> Result<CallsReport, AwsFloorError> {
        self.admin.calls().await
    }

    pub async fn reset_calls(&self) -> Result<(), AwsFloorError> {
        self.admin.reset_calls().await
    }

    pub async fn add_fault(&self, rule: &FaultRule) -> Result<u64, AwsFloorError> {
        self.admin.add_fault(rule).await
    }

    pub async fn faults(&self) -> Result<Vec<FaultStatus>, AwsFloorError> {
        self.admin.faults().await
    }

    pub async fn clear_faults(&self) -> Result<(), AwsFloorError> {
        self.admin.clear_faults().await
    }

    /// Resets moto's state, the counts and the fault rules.
    pub async fn reset(&self) -> Result<(), AwsFloorError> {
        self.admin.reset().await
    }
}

#[derive(serde::Deserialize)]
struct Ids {
    ids: Vec<u64>,
}

impl Drop for AwsFloor {
    fn drop(&mut self) {
        if std::env::var_os("STAGEHAND_AWS_CALLS_SUMMARY").is_some() {
            let report = self.proxy.calls();
            let mut per_service = std::collections::BTreeMap::<&str, u64>::new();
            for stats in report.calls.values() {
                *per_service.entry(stats.service.as_str()).or_default() += stats.count;
            }
            eprintln!("aws floor: {} calls {per_service:?}", report.total);
        }
    }
}

/// A client of the proxy's admin API (`$ADMIN`, e.g. from `STAGEHAND_TESTENV_ADMIN`).
#[derive(Debug, Clone)]
pub struct AdminClient {
    base: String,
    client: proxy::HttpClient,
}

impl AdminClient {
    pub fn new(admin_url: &str) -> Self {
        Self {
            base: admin_url.trim_end_matches('/').to_owned(),
            client: proxy::http_client(),
        }
    }

    /// From `$STAGEHAND_TESTENV_ADMIN`.
    pub fn from_env() -> Option<Self> {
        std::env::var(ADMIN_ENV).ok().map(|url| Self::new(&url))
    }

    pub fn url(&self) -> &str {
        &self.base
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Bytes, AwsFloorError> {
        let url = format!("{}{path}", self.base);
        let req = Request::builder()
            .method(method.clone())
            .uri(&url)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| AwsFloorError::Http(e.to_string()))?;
        let resp = self
            .client
            .request(req)
            .await
            .map_err(|e| AwsFloorError::Http(format!("{method} {url}: {e}")))?;
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| AwsFloorError::Http(format!("{method} {url}: {e}")))?
            .to_bytes();
        if status.is_success() {
            Ok(body)
        } else {
            Err(AwsFloorError::Http(format!(
                "{method} {url} answered {status}: {}",
                String::from_utf8_lossy(&body)
            )))
        }
    }

    async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, AwsFloorError> {
        let body = self.send(Method::GET, path, None).await?;
        serde_json::from_slice(&body).map_err(|e| AwsFloorError::Http(format!("GET {path}: {e}")))
    }

    pub async fn calls(&self) -> Result<CallsReport, AwsFloorError> {
        self.get_json("/calls").await
    }

    pub async fn reset_calls(&self) -> Result<(), AwsFloorError> {
        self.send(Method::POST, "/calls/reset", None)
            .await
            .map(drop)
    }

    pub async fn log(&self) -> Result<Vec<CallRecord>, AwsFloorError> {
        self.get_json("/log").await
    }

    /// Adds a rule; returns its id.
    pub async fn add_fault(&self, rule: &FaultRule) -> Result<u64, AwsFloorError> {
        let body =
            serde_json::to_vec(rule).map_err(|e| AwsFloorError::Http(format!("rule: {e}")))?;
        let answer = self.send(Method::POST, "/faults", Some(body)).await?;
        let ids: Ids = serde_json::from_slice(&answer)
            .map_err(|e| AwsFloorError::Http(format!("POST /faults: {e}")))?;
        ids.ids
            .first()
            .copied()
            .ok_or_else(|| AwsFloorError::Http("POST /faults returned no id".into()))
    }

    pub async fn faults(&self) -> Result<Vec<FaultStatus>, AwsFloorError> {
        self.get_json("/faults").await
    }

    pub async fn clear_faults(&self) -> Result<(), AwsFloorError> {
        self.send(Method::DELETE, "/faults", None).await.map(drop)
    }

    pub async fn reset(&self) -> Result<(), AwsFloorError> {
        self.send(Method::POST, "/reset", None).await.map(drop)
    }
}
