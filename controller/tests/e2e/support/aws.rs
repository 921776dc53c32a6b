//! The AWS side shared by the LambdaStage test binaries (the e2e suites and `cli_plan_apply`):
//! moto behind the counting/fault proxy (`AwsFloor`), SDK clients on it, and the account a
//! Chalice deploy leaves behind.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{Environment, FunctionCode, LayerVersionContentInput, Runtime};
use aws_sdk_s3::config::Credentials;
use serde_json::{Value, json};
use stagehand::aws::s3::Sha256Digest;
use stagehand_testenv::aws::AwsFloor;

pub const REGION: &str = "us-east-1";
pub const BUCKET: &str = "shop-artifacts";
pub const KEY: &str = "shop-api/dev/deployment.zip";
pub const API: &str = "shop-api-dev";
pub const CHAT: &str = "shop-api-dev-chat_processor";
pub const EVAL: &str = "shop-api-dev-evaluation_worker";
pub const CHAT_QUEUE: &str = "shop-dev-chat";
pub const EVAL_QUEUE: &str = "shop-dev-eval";

/// moto behind the proxy, and SDK clients that talk to it as a deploy tool would.
pub struct Aws {
    pub floor: AwsFloor,
    pub sdk: SdkConfig,
}

impl Aws {
    pub async fn start() -> Self {
        let floor = AwsFloor::start().await.unwrap();
        let sdk = aws_config::defaults(BehaviorVersion::latest())
            .endpoint_url(floor.endpoint_url())
            .region(Region::new(REGION))
            .credentials_provider(Credentials::new("test", "test", None, None, "static"))
            .load()
            .await;
        Self { floor, sdk }
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

    /// Uploads a build under `key` (without an S3 SHA-256 checksum: Stagehand must hash it).
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

    /// Publishes a new version of layer `name` holding `content`; its version ARN.
    pub async fn publish_layer(&self, name: &str, content: Vec<u8>) -> String {
        self.lambda()
            .publish_layer_version()
            .layer_name(name)
            .content(
                LayerVersionContentInput::builder()
                    .zip_file(Blob::new(content))
                    .build(),
            )
            .send()
            .await
            .unwrap()
            .layer_version_arn()
            .unwrap()
            .to_owned()
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

    /// Names of the functions whose code was updated, from the proxy's log.
    pub async fn code_updates(&self) -> Vec<String> {
        let mut updated: Vec<String> = self
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
}

/// A deterministic stand-in for a build's zip.
pub fn build(version: &str) -> Vec<u8> {
    format!("PK-stand-in: shop-api build {version}").into_bytes()
}

/// Lambda's `CodeSha256` of a body.
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

pub async fn seed(aws: &Aws) -> Seeded {
    let role = aws.floor.moto().create_lambda_role().await.unwrap();
    aws.s3()
        .create_bucket()
        .bucket(BUCKET)
        .send()
        .await
        .unwrap();
    aws.upload("old.zip", &build("v0")).await;
    aws.upload(KEY, &build("v1")).await;
    let publish =
        |name: &'static str| aws.publish_layer(name, format!("layer {name}").into_bytes());
    let monitoring_layer = publish("monitoring").await;
    publish("shop-deps").await;
    let deps_v2 = publish("shop-deps").await;
    for name in [API, CHAT, EVAL] {
        aws.lambda()
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
        aws.sqs()
            .create_queue()
            .queue_name(queue)
            .send()
            .await
            .unwrap();
    }
    let chat_mapping = aws
        .lambda()
        .create_event_source_mapping()
        .function_name(CHAT)
        .event_source_arn(aws.queue_arn(CHAT_QUEUE).await)
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

/// The Chalice example adapted to the seeded account, as a LambdaStage manifest.
pub fn chalice_manifest(
    name: &str,
    namespace: Option<&str>,
    deletion_policy: &str,
    pin: Option<&str>,
) -> Value {
    let mut code = json!({"s3": {"bucket": BUCKET, "key": KEY}});
    if let Some(pin) = pin {
        code["sha256"] = json!(pin);
    }
    let mut metadata = json!({"name": name});
    if let Some(namespace) = namespace {
        metadata["namespace"] = json!(namespace);
    }
    json!({
        "apiVersion": "stagehand.dev/v1alpha1",
        "kind": "LambdaStage",
        "metadata": metadata,
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
    })
}
