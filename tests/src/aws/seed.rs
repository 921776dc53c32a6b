//! Seeds the AWS test floor with what a deploy tool would have left in an account, so that an
//! example LambdaStage has something real to take over (`stagehand-testenv seed`, `make demo`).
//!
//! [`Seeder::seed_chalice`] builds the state `examples/lambda-stage-chalice.yaml` refers to, as a
//! `chalice deploy --stage dev` (plus the team's wrapper scripts) would have left it:
//! - bucket `shop-artifacts-123456789012` with `shopping-assistant-api/dev/deployment.zip`
//!   holding build 2 (the build CI just uploaded; CloudFormation "saw no change"),
//! - the Lambda execution role,
//! - the three functions `shopping-assistant-api-dev[-chat_processor|-evaluation_worker]`, all
//!   still running build 1, Chalice's tag, `LOG_LEVEL` in their environment; only the API
//!   function has the dependency layer (version 1) — the deploy dropped it from the others,
//! - the layer `shopping-assistant-deps`, versions 1 and 2,
//! - the queues `shopping-assistant-dev-chat-processing` and `shopping-assistant-dev-evaluation`,
//! - one mapping (chat processor ← chat queue, batch size 10); the evaluation mapping is missing.
//!
//! [`Seeder::upload_chalice_build`] uploads another build under the same key (a code change
//! with no spec change: follow mode deploys it).
//!
//! Every package is built deterministically by [`deterministic_zip`]: same build label, same
//! bytes, same `CodeSha256`, on any machine.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use aws_config::{BehaviorVersion, Region};
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{Environment, FunctionCode, LayerVersionContentInput, Runtime};
use aws_sdk_s3::config::Credentials;

use super::AwsFloorError;
use super::moto::create_lambda_role_at;
pub use super::zip::deterministic_zip;

/// The Chalice example's names (`examples/lambda-stage-chalice.yaml`).
pub mod chalice {
    pub const BUCKET: &str = "shop-artifacts-123456789012";
    pub const KEY: &str = "shopping-assistant-api/dev/deployment.zip";
    pub const API: &str = "shopping-assistant-api-dev";
    pub const CHAT: &str = "shopping-assistant-api-dev-chat_processor";
    pub const EVAL: &str = "shopping-assistant-api-dev-evaluation_worker";
    pub const LAYER: &str = "shopping-assistant-deps";
    pub const CHAT_QUEUE: &str = "shopping-assistant-dev-chat-processing";
    pub const EVAL_QUEUE: &str = "shopping-assistant-dev-evaluation";
    /// The build the functions run after seeding.
    pub const DEPLOYED_BUILD: u32 = 1;
    /// The build under [`KEY`] after seeding.
    pub const CURRENT_BUILD: u32 = 2;
    /// The build `seed --new-build` uploads.
    pub const NEW_BUILD: u32 = 3;
}

/// AWS clients pointed at one endpoint (moto, directly or through the proxy).
#[derive(Debug, Clone)]
pub struct Seeder {
    endpoint_url: String,
    lambda: aws_sdk_lambda::Client,
    s3: aws_sdk_s3::Client,
    sqs: aws_sdk_sqs::Client,
}

/// What [`Seeder::seed_chalice`] made.
#[derive(Debug, Clone, Default)]
pub struct SeedReport {
    /// One human-readable line per thing created.
    pub lines: Vec<String>,
}

fn sdk_error(what: &str) -> impl Fn(&dyn std::fmt::Display) -> AwsFloorError + '_ {
    move |e| AwsFloorError::Http(format!("{what}: {e}"))
}

macro_rules! aws {
    ($what:expr, $call:expr) => {
        $call
            .await
            .map_err(|e| sdk_error(&$what)(&aws_sdk_lambda::error::DisplayErrorContext(e)))
    };
}

impl Seeder {
    /// Clients for `endpoint_url` in `region`, with the floor's dummy credentials.
    pub async fn new(endpoint_url: &str, region: &str) -> Self {
        let sdk = aws_config::defaults(BehaviorVersion::latest())
            .endpoint_url(endpoint_url)
            .region(Region::new(region.to_owned()))
            .credentials_provider(Credentials::new(
                super::ACCESS_KEY_ID,
                super::SECRET_ACCESS_KEY,
                None,
                None,
                "stagehand-testenv",
            ))
            .load()
            .await;
        Self {
            endpoint_url: endpoint_url.to_owned(),
            lambda: aws_sdk_lambda::Client::new(&sdk),
            s3: aws_sdk_s3::Client::from_conf(
                aws_sdk_s3::config::Builder::from(&sdk)
                    .force_path_style(true)
                    .build(),
            ),
            sqs: aws_sdk_sqs::Client::new(&sdk),
        }
    }

    /// From `AWS_ENDPOINT_URL` and `AWS_REGION` in `vars` (the process environment, or the
    /// `export` lines of `stagehand-testenv up`'s `DIR/env`).
    pub async fn from_vars(vars: &BTreeMap<String, String>) -> Result<Self, AwsFloorError> {
        let endpoint = vars.get("AWS_ENDPOINT_URL").ok_or_else(|| {
            AwsFloorError::Setup(
                "AWS_ENDPOINT_URL is not set: `source DIR/env` or pass --state-dir DIR".into(),
            )
        })?;
        let region = vars.get("AWS_REGION").map_or(super::REGION, String::as_str);
        Ok(Self::new(endpoint, region).await)
    }

    pub fn lambda(&self) -> &aws_sdk_lambda::Client {
        &self.lambda
    }

    pub fn s3(&self) -> &aws_sdk_s3::Client {
        &self.s3
    }

    pub fn sqs(&self) -> &aws_sdk_sqs::Client {
        &self.sqs
    }

    /// The Lambda execution role (idempotent); its ARN.
    pub async fn role(&self) -> Result<String, AwsFloorError> {
        create_lambda_role_at(&self.endpoint_url).await
    }

    /// Creates `bucket` (an existing bucket of ours is fine).
    pub async fn bucket(&self, bucket: &str) -> Result<(), AwsFloorError> {
        match self.s3.create_bucket().bucket(bucket).send().await {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(aws_sdk_s3::operation::create_bucket::CreateBucketError::is_bucket_already_owned_by_you) =>
            {
                Ok(())
            }
            Err(e) => Err(sdk_error(&format!("CreateBucket {bucket}"))(
                &aws_sdk_s3::error::DisplayErrorContext(e),
            )),
        }
    }

    /// Puts `body` at `bucket/key` (no S3 checksum: the controller hashes it); the new ETag.
    pub async fn upload(
        &self,
        bucket: &str,
        key: &str,
        body: Vec<u8>,
    ) -> Result<String, AwsFloorError> {
        let out = aws!(
            format!("PutObject {bucket}/{key}"),
            self.s3
                .put_object()
                .bucket(bucket)
                .key(key)
                .body(body.into())
                .send()
        )?;
        Ok(out.e_tag().unwrap_or_default().to_owned())
    }

    /// Publishes a version of `layer` with deterministic content; its version ARN.
    pub async fn publish_layer(&self, layer: &str, version: u32) -> Result<String, AwsFloorError> {
        let content = deterministic_zip(&[(
            "python/requirements.txt",
            format!("# {layer} layer build {version}\nboto3==1.35.0\npydantic==2.9.2\n").as_bytes(),
        )]);
        let out = aws!(
            format!("PublishLayerVersion {layer}"),
            self.lambda
                .publish_layer_version()
                .layer_name(layer)
                .compatible_runtimes(Runtime::Python312)
                .content(
                    LayerVersionContentInput::builder()
                        .zip_file(Blob::new(content))
                        .build()
                )
                .send()
        )?;
        Ok(out.layer_version_arn().unwrap_or_default().to_owned())
    }

    /// Creates a queue; its ARN.
    pub async fn queue(&self, name: &str) -> Result<String, AwsFloorError> {
        let url = aws!(
            format!("CreateQueue {name}"),
            self.sqs.create_queue().queue_name(name).send()
        )?
        .queue_url()
        .unwrap_or_default()
        .to_owned();
        let attributes = aws!(
            format!("GetQueueAttributes {name}"),
            self.sqs
                .get_queue_attributes()
                .queue_url(url)
                .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                .send()
        )?;
        attributes
            .attributes()
            .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
            .cloned()
            .ok_or_else(|| AwsFloorError::Http(format!("queue {name} has no QueueArn")))
    }

    /// The state `examples/lambda-stage-chalice.yaml` takes over (see the module docs).
    pub async fn seed_chalice(&self) -> Result<SeedReport, AwsFloorError> {
        use chalice::{
            API, BUCKET, CHAT, CHAT_QUEUE, CURRENT_BUILD, DEPLOYED_BUILD, EVAL, EVAL_QUEUE, KEY,
            LAYER,
        };
        let mut report = SeedReport::default();
        if self
            .lambda
            .get_function_configuration()
            .function_name(API)
            .send()
            .await
            .is_ok()
        {
            return Err(AwsFloorError::Setup(format!(
                "{API} exists already: the floor was seeded before (restart `stagehand-testenv up` for a fresh one)"
            )));
        }
        let role = self.role().await?;
        report.lines.push(format!("role      {role}"));

        self.bucket(BUCKET).await?;
        let deployed = chalice_package(DEPLOYED_BUILD);
        let current = chalice_package(CURRENT_BUILD);
        let etag = self.upload(BUCKET, KEY, current).await?;
        report.lines.push(format!(
            "artifact  s3://{BUCKET}/{KEY}  build {CURRENT_BUILD}  ETag {etag}"
        ));

        let deps_v1 = self.publish_layer(LAYER, 1).await?;
        let deps_v2 = self.publish_layer(LAYER, 2).await?;
        report.lines.push(format!("layer     {deps_v1}"));
        report.lines.push(format!("layer     {deps_v2}"));

        for (name, handler) in [
            (API, "app.app"),
            (CHAT, "app.chat_processor"),
            (EVAL, "app.evaluation_worker"),
        ] {
            let mut create = self
                .lambda
                .create_function()
                .function_name(name)
                .runtime(Runtime::Python312)
                .role(&role)
                .handler(handler)
                .code(
                    FunctionCode::builder()
                        .zip_file(Blob::new(deployed.clone()))
                        .build(),
                )
                .environment(
                    Environment::builder()
                        .variables("LOG_LEVEL", "INFO")
                        .build(),
                )
                .tags(
                    "aws-chalice",
                    "version=1.31.2:stage=dev:app=shopping-assistant-api",
                );
            if name == API {
                create = create.layers(&deps_v1);
            }
            let created = aws!(format!("CreateFunction {name}"), create.send())?;
            report.lines.push(format!(
                "function  {name}  build {DEPLOYED_BUILD}  CodeSha256 {}  layers [{}]",
                created.code_sha256().unwrap_or_default(),
                created
                    .layers()
                    .iter()
                    .filter_map(|l| l.arn())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }

        let chat_arn = self.queue(CHAT_QUEUE).await?;
        report.lines.push(format!("queue     {chat_arn}"));
        let eval_arn = self.queue(EVAL_QUEUE).await?;
        report.lines.push(format!("queue     {eval_arn}"));
        let mapping = aws!(
            format!("CreateEventSourceMapping {CHAT}"),
            self.lambda
                .create_event_source_mapping()
                .function_name(CHAT)
                .event_source_arn(&chat_arn)
                .batch_size(10)
                .send()
        )?;
        report.lines.push(format!(
            "mapping   {} {CHAT_QUEUE} → {CHAT} (batch size 10); none for {EVAL_QUEUE} → {EVAL}",
            mapping.uuid().unwrap_or_default()
        ));
        Ok(report)
    }

    /// Uploads Chalice build `build` under the example's key (same key, new bytes); its ETag.
    pub async fn upload_chalice_build(&self, build: u32) -> Result<String, AwsFloorError> {
        self.upload(chalice::BUCKET, chalice::KEY, chalice_package(build))
            .await
    }
}

/// The Chalice app's deployment package for build `build` (deterministic).
pub fn chalice_package(build: u32) -> Vec<u8> {
    let app = format!(
        r#"from chalice import Chalice

from chalicelib.build import BUILD

app = Chalice(app_name="shopping-assistant-api")


@app.route("/health")
def health():
    return {{"status": "ok", "build": BUILD}}


@app.on_sqs_message(queue="shopping-assistant-dev-chat-processing", batch_size=1)
def chat_processor(event):
    for record in event:
        app.log.info("chat message %s (build %s)", record.body, BUILD)


@app.on_sqs_message(queue="shopping-assistant-dev-evaluation", batch_size=5)
def evaluation_worker(event):
    for record in event:
        app.log.info("evaluation %s (build {build})", record.body)
"#
    );
    let build_py = format!("BUILD = \"1.4.{build}\"\n");
    deterministic_zip(&[
        ("app.py", app.as_bytes()),
        ("chalicelib/__init__.py", b""),
        ("chalicelib/build.py", build_py.as_bytes()),
    ])
}

/// The `export K=V` lines of an env file (as `stagehand-testenv up` writes it).
pub fn parse_env_file(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|line| line.trim().strip_prefix("export "))
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.trim_matches('"').to_owned()))
        .collect()
}

impl SeedReport {
    /// The report as text, one line per thing created.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for line in &self.lines {
            let _ = writeln!(out, "  {line}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packages_are_deterministic_and_differ_per_build() {
        assert_eq!(chalice_package(2), chalice_package(2));
        assert_ne!(chalice_package(2), chalice_package(3));
        let zip = chalice_package(1);
        assert_eq!(&zip[..4], b"PK\x03\x04");
        assert_eq!(&zip[zip.len() - 22..zip.len() - 18], b"PK\x05\x06");
    }

    #[test]
    fn env_file_lines_are_parsed() {
        let vars = parse_env_file(
            "export KUBECONFIG=/x/kubeconfig\nexport AWS_ENDPOINT_URL=http://127.0.0.1:1\n",
        );
        assert_eq!(vars["AWS_ENDPOINT_URL"], "http://127.0.0.1:1");
        assert_eq!(vars.len(), 2);
    }
}
