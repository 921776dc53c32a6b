//! Shared by the end-to-end test modules: the Kubernetes API stand-in, moto
//! behind the counting/fault proxy (`AwsFloor`), the production controllers, the seeded
//! "Chalice deploy" account, and bounded waits on observed conditions (never fixed sleeps).

#![allow(
    dead_code,
    unused_imports,
    reason = "each test module uses a different part of it"
)]
#![allow(
    clippy::unwrap_used,
    clippy::too_many_lines,
    reason = "test support: a panic with its location is the failure report we want"
)]

pub mod aws;
/// The chaos soak and the real-process replicas it shares with the failover suites.
#[path = "../../../examples/soak_support/mod.rs"]
pub mod soak;

use stagehand_testenv::aws::CallRecord;

use std::collections::BTreeMap;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use stagehand::base::conditions::find_condition;
use stagehand::runtime::{Context, Metrics, Shutdown};
use stagehand::settings::{AwsFlags, ProbeFlags, Settings};
use stagehand_crds::LambdaStage;
use stagehand_testenv::TestApiServer;
use stagehand_testenv::aws::CallsReport;

pub use self::aws::{
    API, Aws, BUCKET, CHAT, CHAT_QUEUE, EVAL, EVAL_QUEUE, KEY, REGION, Seeded, b64, build,
    chalice_manifest, seed,
};

pub const TIMEOUT: Duration = Duration::from_secs(60);
pub const NAMESPACE: &str = "shop";

/// The API stand-in, the AWS account (moto behind the proxy; `Env` derefs to [`Aws`] for its
/// clients and seeding helpers) and the production controllers.
pub struct Env {
    pub server: TestApiServer,
    pub aws: Aws,
    pub ctx: Arc<Context>,
    pub shutdown: Shutdown,
    pub controllers: Vec<tokio::task::JoinHandle<()>>,
}

impl Env {
    /// The stand-in with the CRDs and namespace `shop`, moto behind the proxy, and the
    /// production registry's controllers running (resync every 2s so that follow mode and
    /// repairs show up without spec changes).
    pub async fn start() -> Self {
        Self::start_with_inventory_max_age(Duration::from_secs(3)).await
    }

    /// [`Env::start`] with the controller's `--inventory-max-age` at `max_age`.
    pub async fn start_with_inventory_max_age(max_age: Duration) -> Self {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()))
            .with_test_writer()
            .try_init();
        let server = TestApiServer::start().await.unwrap();
        let client = server.client();
        server.install_stagehand_crds().await.unwrap();
        server.create_namespace(NAMESPACE).await.unwrap();
        let aws = Aws::start().await;
        let settings = Settings {
            aws: AwsFlags {
                aws_endpoint_url: Some(aws.floor.endpoint_url()),
                aws_region: Some(REGION.into()),
                ..AwsFlags::default()
            },
            default_resync: Duration::from_secs(2),
            // By default (3s) short enough that changes made by hand are seen within a few
            // resyncs, long enough that the rounds after actions (1 s apart) reuse listings and
            // rely on Stagehand's own writes being read back.
            inventory_max_age: max_age,
            cluster_id: "e2e".into(),
            // Health probes never leave the machine (moto's instance addresses are made up).
            probe: ProbeFlags {
                loopback_only: true,
            },
            ..Settings::default()
        };
        let ctx = Arc::new(Context::new(
            client,
            aws.sdk.clone(),
            Metrics::new().unwrap(),
            settings,
        ));
        Self {
            server,
            aws,
            ctx,
            shutdown: Shutdown::new(),
            controllers: Vec::new(),
        }
    }

    /// Starts every controller `stagehand run` starts; returns once their caches are synced.
    pub async fn start_controllers(&mut self) {
        for handle in stagehand::kinds::registry().start(&self.ctx, &self.shutdown) {
            self.controllers.push(tokio::spawn(handle.run));
            let synced = tokio::time::timeout(TIMEOUT, handle.caches_synced)
                .await
                .unwrap();
            assert!(synced, "{} controller stopped before syncing", handle.kind);
        }
    }

    /// Stops the running controllers (shutdown signal, as `stagehand run` on SIGTERM) and waits
    /// for them to end; `start_controllers` or `restart_controllers` may follow.
    pub async fn stop_controllers(&mut self) {
        self.shutdown.trigger();
        for controller in self.controllers.drain(..) {
            tokio::time::timeout(TIMEOUT, controller)
                .await
                .expect("controller stops on shutdown")
                .unwrap();
        }
        self.shutdown = Shutdown::new();
    }

    /// Kills the running controllers where they are, as a killed pod (SIGKILL, OOM, node
    /// loss): their tasks are aborted, no graceful drain, an AWS call in flight is abandoned
    /// and the status write after it never happens.
    pub async fn abort_controllers(&mut self) {
        for controller in self.controllers.drain(..) {
            controller.abort();
            let ended = tokio::time::timeout(TIMEOUT, controller)
                .await
                .expect("an aborted controller ends");
            assert!(
                ended
                    .as_ref()
                    .is_err_and(tokio::task::JoinError::is_cancelled),
                "the controller was cancelled, not finished: {ended:?}"
            );
        }
        self.shutdown = Shutdown::new();
    }

    /// Stops the running controllers gracefully (shutdown signal, in-flight reconciles finish;
    /// nothing to stop after [`Env::abort_controllers`]) and starts new ones with a fresh
    /// [`Context`]: no in-memory state (hash cache, metrics, queues) survives, only Kubernetes
    /// and AWS.
    pub async fn restart_controllers(&mut self) {
        self.stop_controllers().await;
        self.start_fresh_controllers().await;
    }

    async fn start_fresh_controllers(&mut self) {
        self.ctx = Arc::new(Context::new(
            self.ctx.client.clone(),
            self.sdk.clone(),
            Metrics::new().unwrap(),
            self.ctx.settings.clone(),
        ));
        self.start_controllers().await;
    }

    /// The proxy's log of every AWS call so far, in order.
    pub async fn log(&self) -> Vec<stagehand_testenv::aws::CallRecord> {
        self.floor.admin().log().await.unwrap()
    }

    /// Creates `stage` (as `kubectl create` would).
    pub async fn create(&self, stage: &LambdaStage) {
        self.stages()
            .create(&kube::api::PostParams::default(), stage)
            .await
            .unwrap();
    }

    pub fn stages(&self) -> Api<LambdaStage> {
        Api::namespaced(self.ctx.client.clone(), NAMESPACE)
    }

    pub async fn calls(&self) -> CallsReport {
        self.floor.calls().await.unwrap()
    }

    /// Polls the object until `condition` holds (bounded); returns it.
    pub async fn wait_for(
        &self,
        name: &str,
        what: &str,
        condition: impl Fn(&LambdaStage) -> bool,
    ) -> LambdaStage {
        let api = self.stages();
        let mut last = None;
        let found = tokio::time::timeout(TIMEOUT, async {
            loop {
                last = api.get_opt(name).await.ok().flatten();
                if let Some(stage) = last.as_ref().filter(|s| condition(s)) {
                    return stage.clone();
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
        found.unwrap_or_else(|_| {
            panic!(
                "timed out waiting for {name} to be {what}; last status: {:#?}",
                last.and_then(|s| s.status)
            )
        })
    }

    /// Polls AWS (bounded) until `check` returns `Some`.
    pub async fn wait_aws<T, F, Fut>(&self, what: &str, check: F) -> T
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Option<T>>,
    {
        tokio::time::timeout(TIMEOUT, async {
            loop {
                if let Some(value) = check().await {
                    return value;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
    }

    /// Completed reconciles of LambdaStages so far (every result).
    pub fn reconciles(&self) -> u64 {
        self.reconciles_of("lambdastage")
    }

    /// Completed reconciles so far by the controller of `kind` (`lambdastage`, `spotfleet`,
    /// `staticsite`), whatever their result.
    pub fn reconciles_of(&self, kind: &str) -> u64 {
        ["success", "requeue", "requeue_after", "error"]
            .iter()
            .map(|result| {
                self.ctx
                    .metrics
                    .reconcile_total
                    .with_label_values(&[kind, result])
                    .get()
            })
            .sum()
    }

    /// Waits (bounded) until `n` more reconciles completed after `from`.
    pub async fn wait_reconciles(&self, from: u64, n: u64) {
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        while self.reconciles() < from + n {
            assert!(
                tokio::time::Instant::now() < deadline,
                "fewer than {n} reconciles happened"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn mappings(
        &self,
        function: &str,
    ) -> Vec<aws_sdk_lambda::types::EventSourceMappingConfiguration> {
        self.lambda()
            .list_event_source_mappings()
            .function_name(function)
            .send()
            .await
            .unwrap()
            .event_source_mappings()
            .to_vec()
    }

    pub async fn stop(self) {
        self.shutdown.trigger();
        for controller in self.controllers {
            tokio::time::timeout(TIMEOUT, controller)
                .await
                .expect("controller stops on shutdown")
                .unwrap();
        }
        self.server.shutdown().await;
    }
}

/// The Chalice example adapted to the seeded account, in namespace `shop`.
pub fn chalice_stage(name: &str, deletion_policy: &str, pin: Option<&str>) -> LambdaStage {
    serde_json::from_value(chalice_manifest(
        name,
        Some(NAMESPACE),
        deletion_policy,
        pin,
    ))
    .unwrap()
}

/// A LambdaStage `name` in namespace `shop` with `spec` (region added).
pub fn stage(name: &str, mut spec: serde_json::Value) -> LambdaStage {
    spec["region"] = serde_json::json!(REGION);
    serde_json::from_value(serde_json::json!({
        "apiVersion": "stagehand.dev/v1alpha1",
        "kind": "LambdaStage",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": spec,
    }))
    .unwrap()
}

/// Merges `spec` into the stage's spec.
pub async fn merge_spec(env: &Env, name: &str, spec: serde_json::Value) {
    env.stages()
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({ "spec": spec })),
        )
        .await
        .unwrap();
}

pub fn condition(stage: &LambdaStage, type_: &str) -> (String, String, String) {
    stage
        .status
        .as_ref()
        .and_then(|s| find_condition(&s.common.conditions, type_))
        .map_or_else(Default::default, |c| {
            (c.status.clone(), c.reason.clone(), c.message.clone())
        })
}

pub fn is_true(stage: &LambdaStage, type_: &str) -> bool {
    condition(stage, type_).0 == "True"
}

pub fn ready(stage: &LambdaStage) -> bool {
    stage
        .status
        .as_ref()
        .is_some_and(|s| s.common.observed_generation == stage.metadata.generation)
        && [
            "Ready",
            "CodeInSync",
            "LayersAttached",
            "MappingsHealthy",
            "Validated",
        ]
        .iter()
        .all(|c| is_true(stage, c))
}

/// Names of the functions whose code was updated, from the proxy's log.
pub async fn code_updates(env: &Env) -> Vec<String> {
    env.aws.code_updates().await
}

pub fn summary(report: &CallsReport) -> BTreeMap<String, u64> {
    report
        .calls
        .iter()
        .map(|(key, stats)| (key.clone(), stats.count))
        .collect()
}

impl Deref for Env {
    type Target = Aws;

    fn deref(&self) -> &Aws {
        &self.aws
    }
}

/// The updates of `function` in `log`, after asserting that each came after the last
/// `GetFunction` the proxy rewrote (a read that said the function was not settled: in
/// progress, or a state Stagehand does not know). `said` names that state in the message.
pub fn updates_after_unsettled_reads<'a>(
    log: &'a [CallRecord],
    function: &str,
    said: &str,
) -> Vec<&'a CallRecord> {
    let last_unsettled = log
        .iter()
        .filter(|r| r.operation == "GetFunction" && r.injected.iter().any(|i| i == "rewrite"))
        .map(|r| r.seq)
        .max()
        .expect("a rewritten GetFunction in the log");
    let updates: Vec<&CallRecord> = log
        .iter()
        .filter(|r| r.operation.starts_with("UpdateFunction") && r.path.contains(function))
        .collect();
    for update in &updates {
        assert!(
            update.seq > last_unsettled,
            "{} at #{} while the read #{last_unsettled} said {said}",
            update.operation,
            update.seq
        );
    }
    updates
}

/// Lambda calls that change something.
pub fn is_lambda_write(record: &CallRecord) -> bool {
    record.service == "lambda"
        && [
            "Create", "Update", "Delete", "Publish", "Put", "Tag", "Untag",
        ]
        .iter()
        .any(|verb| record.operation.starts_with(verb))
}

/// Ready at the object's current generation and every function at `sha` (base64).
pub async fn wait_ready_at(env: &Env, name: &str, functions: &[&str], sha: &str) -> LambdaStage {
    let stage = env.wait_for(name, "Ready", ready).await;
    for function in functions {
        assert_eq!(
            env.function(function).await.code_sha256(),
            Some(sha),
            "{function}"
        );
    }
    stage
}
