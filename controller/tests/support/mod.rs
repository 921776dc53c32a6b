//! Shared by the LambdaStage end-to-end test binaries: the Kubernetes API stand-in, moto
//! behind the counting/fault proxy (`AwsFloor`), the production controllers, the seeded
//! "Chalice deploy" account, and bounded waits on observed conditions (never fixed sleeps).

#![allow(
    dead_code,
    reason = "each test binary compiles this module and uses a different part of it"
)]
#![allow(
    clippy::unwrap_used,
    clippy::too_many_lines,
    reason = "test support: a panic with its location is the failure report we want"
)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{Environment, FunctionCode, LayerVersionContentInput, Runtime};
use aws_sdk_s3::config::Credentials;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::json;
use stagehand::aws::s3::Sha256Digest;
use stagehand::runtime::conditions::find_condition;
use stagehand::runtime::{Context, Metrics, Shutdown};
use stagehand::settings::Settings;
use stagehand_crds::LambdaStage;
use stagehand_testenv::TestApiServer;
use stagehand_testenv::aws::{AwsFloor, CallsReport};

pub const TIMEOUT: Duration = Duration::from_secs(60);
pub const NAMESPACE: &str = "shop";
pub const REGION: &str = "us-east-1";
pub const BUCKET: &str = "shop-artifacts";
pub const KEY: &str = "shop-api/dev/deployment.zip";
pub const API: &str = "shop-api-dev";
pub const CHAT: &str = "shop-api-dev-chat_processor";
pub const EVAL: &str = "shop-api-dev-evaluation_worker";
pub const CHAT_QUEUE: &str = "shop-dev-chat";
pub const EVAL_QUEUE: &str = "shop-dev-eval";

pub struct Env {
    pub server: TestApiServer,
    pub floor: AwsFloor,
    pub sdk: SdkConfig,
    pub ctx: Arc<Context>,
    pub shutdown: Shutdown,
    pub controllers: Vec<tokio::task::JoinHandle<()>>,
}

impl Env {
    /// The stand-in with the CRDs and namespace `shop`, moto behind the proxy, and the
    /// production registry's controllers running (resync every 2s so that follow mode and
    /// repairs show up without spec changes).
    pub async fn start() -> Self {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()))
            .with_test_writer()
            .try_init();
        let server = TestApiServer::start().await.unwrap();
        let client = server.client();
        install_crds(&client).await;
        Api::<Namespace>::all(client.clone())
            .create(
                &PostParams::default(),
                &Namespace {
                    metadata: ObjectMeta {
                        name: Some(NAMESPACE.into()),
                        ..ObjectMeta::default()
                    },
                    ..Namespace::default()
                },
            )
            .await
            .unwrap();
        let floor = AwsFloor::start().await.unwrap();
        let sdk = aws_config::defaults(BehaviorVersion::latest())
            .endpoint_url(floor.endpoint_url())
            .region(Region::new(REGION))
            .credentials_provider(Credentials::new("test", "test", None, None, "static"))
            .load()
            .await;
        let settings = Settings {
            aws_endpoint_url: Some(floor.endpoint_url()),
            aws_region: Some(REGION.into()),
            default_resync: Duration::from_secs(2),
            cluster_id: "e2e".into(),
            ..Settings::default()
        };
        let ctx = Arc::new(Context::new(
            client,
            sdk.clone(),
            Metrics::new().unwrap(),
            settings,
        ));
        Self {
            server,
            floor,
            sdk,
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

    /// Stops the running controllers (as a terminated pod would, whatever they were doing) and
    /// starts new ones with a fresh [`Context`]: no in-memory state (hash cache, metrics,
    /// queues) survives, only Kubernetes and AWS.
    pub async fn restart_controllers(&mut self) {
        self.stop_controllers().await;
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

    pub fn lambda(&self) -> aws_sdk_lambda::Client {
        aws_sdk_lambda::Client::new(&self.sdk)
    }

    pub fn s3(&self) -> aws_sdk_s3::Client {
        aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&self.sdk)
                .force_path_style(true)
                .build(),
        )
    }

    pub fn sqs(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(&self.sdk)
    }

    pub fn stages(&self) -> Api<LambdaStage> {
        Api::namespaced(self.ctx.client.clone(), NAMESPACE)
    }

    pub async fn calls(&self) -> CallsReport {
        self.floor.calls().await.unwrap()
    }

    /// Uploads a build under `KEY` (without an S3 SHA-256 checksum: Stagehand must hash it).
    pub async fn upload(&self, key: &str, body: &[u8]) {
        self.s3()
            .put_object()
            .bucket(BUCKET)
            .key(key)
            .body(body.to_vec().into())
            .send()
            .await
            .unwrap();
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
        self.ctx
            .metrics
            .reconcile_total
            .with_label_values(&["lambdastage", "requeue_after"])
            .get()
            + self
                .ctx
                .metrics
                .reconcile_total
                .with_label_values(&["lambdastage", "await_change"])
                .get()
            + self
                .ctx
                .metrics
                .reconcile_total
                .with_label_values(&["lambdastage", "error"])
                .get()
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

    pub async fn function(
        &self,
        name: &str,
    ) -> aws_sdk_lambda::operation::get_function_configuration::GetFunctionConfigurationOutput {
        self.lambda()
            .get_function_configuration()
            .function_name(name)
            .send()
            .await
            .unwrap()
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

    pub async fn queue_arn(&self, name: &str) -> String {
        let url = self.queue_url(name).await;
        self.sqs()
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .unwrap()
            .attributes()
            .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
            .clone()
    }

    pub async fn queue_url(&self, name: &str) -> String {
        self.sqs()
            .get_queue_url()
            .queue_name(name)
            .send()
            .await
            .unwrap()
            .queue_url()
            .unwrap()
            .to_owned()
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

pub async fn install_crds(client: &Client) {
    let crds: Api<
        k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
    > = Api::all(client.clone());
    for crd in stagehand_crds::crds() {
        crds.patch(
            &crd.name_any(),
            &PatchParams::apply("stagehand-tests"),
            &Patch::Apply(&crd),
        )
        .await
        .unwrap();
    }
}

pub fn build(version: &str) -> Vec<u8> {
    format!("PK-stand-in: shop-api build {version}").into_bytes()
}

pub fn b64(body: &[u8]) -> String {
    Sha256Digest::of(body).to_base64()
}

/// What a Chalice deploy left behind: three functions on an old build with a monitoring layer,
/// two queues, one mapping made by the deploy (chat), the layer `shop-deps` (two versions),
/// the current build under `KEY`.
pub struct Seeded {
    pub monitoring_layer: String,
    pub deps_v2: String,
    pub chat_mapping: String,
}

pub async fn seed(env: &Env) -> Seeded {
    let role = env.floor.moto().create_lambda_role().await.unwrap();
    env.s3()
        .create_bucket()
        .bucket(BUCKET)
        .send()
        .await
        .unwrap();
    env.upload("old.zip", &build("v0")).await;
    env.upload(KEY, &build("v1")).await;
    let publish = |name: &'static str| async move {
        env.lambda()
            .publish_layer_version()
            .layer_name(name)
            .content(
                LayerVersionContentInput::builder()
                    .zip_file(Blob::new(format!("layer {name}").into_bytes()))
                    .build(),
            )
            .send()
            .await
            .unwrap()
            .layer_version_arn()
            .unwrap()
            .to_owned()
    };
    let monitoring_layer = publish("monitoring").await;
    publish("shop-deps").await;
    let deps_v2 = publish("shop-deps").await;
    for name in [API, CHAT, EVAL] {
        env.lambda()
            .create_function()
            .function_name(name)
            .runtime(Runtime::Python312)
            .role(&role)
            .handler("app.app")
            .code(
                FunctionCode::builder()
                    .s3_bucket(BUCKET)
                    .s3_key("old.zip")
                    .build(),
            )
            .layers(&monitoring_layer)
            .environment(
                Environment::builder()
                    .variables("LOG_LEVEL", "info")
                    .build(),
            )
            .send()
            .await
            .unwrap();
    }
    for queue in [CHAT_QUEUE, EVAL_QUEUE] {
        env.sqs()
            .create_queue()
            .queue_name(queue)
            .send()
            .await
            .unwrap();
    }
    let chat_mapping = env
        .lambda()
        .create_event_source_mapping()
        .function_name(CHAT)
        .event_source_arn(env.queue_arn(CHAT_QUEUE).await)
        .batch_size(1)
        .send()
        .await
        .unwrap()
        .uuid()
        .unwrap()
        .to_owned();
    Seeded {
        monitoring_layer,
        deps_v2,
        chat_mapping,
    }
}

/// The Chalice example adapted to the seeded account.
pub fn chalice_stage(name: &str, deletion_policy: &str, pin: Option<&str>) -> LambdaStage {
    let mut code = json!({"s3": {"bucket": BUCKET, "key": KEY}});
    if let Some(pin) = pin {
        code["sha256"] = json!(pin);
    }
    serde_json::from_value(json!({
        "apiVersion": "stagehand.dev/v1alpha1",
        "kind": "LambdaStage",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "region": REGION,
            "adopt": true,
            "deletionPolicy": deletion_policy,
            "code": code,
            "functionSelector": {"namePrefix": API},
            "functions": [
                {"name": API},
                {"name": CHAT, "timeoutSeconds": 120},
                {"name": EVAL},
            ],
            "environment": {
                "CHAT_QUEUE_URL": format!("https://sqs.us-east-1.amazonaws.com/123456789012/{CHAT_QUEUE}"),
                "EVAL_QUEUE_URL": format!("https://sqs.us-east-1.amazonaws.com/123456789012/{EVAL_QUEUE}"),
            },
            "layers": [{"name": "shop-deps", "version": "latest"}],
            "eventSourceMappings": [
                {"function": CHAT, "queue": CHAT_QUEUE, "batchSize": 1},
                {"function": EVAL, "queue": EVAL_QUEUE, "batchSize": 5},
            ],
            "validation": {
                "requiredEnvironment": ["CHAT_QUEUE_URL", "EVAL_QUEUE_URL", "LOG_LEVEL"],
                "mappingsEnabled": true,
                "queues": [
                    {"queue": CHAT_QUEUE, "maxVisible": 3, "maxInFlight": 5},
                    {"queue": EVAL_QUEUE},
                ],
            },
        }
    }))
    .unwrap()
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

/// Names of the functions whose code was updated in the proxy's log.
pub async fn code_updates(env: &Env) -> Vec<String> {
    let mut updated: Vec<String> = env
        .floor
        .admin()
        .log()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.operation == "UpdateFunctionCode")
        .filter_map(|r| {
            r.path
                .split('/')
                .skip_while(|p| *p != "functions")
                .nth(1)
                .map(str::to_owned)
        })
        .collect();
    updated.sort();
    updated
}

pub fn summary(report: &CallsReport) -> BTreeMap<String, u64> {
    report
        .calls
        .iter()
        .map(|(key, stats)| (key.clone(), stats.count))
        .collect()
}
