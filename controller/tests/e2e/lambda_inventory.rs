//! The shared inventory (`stagehand::inventory`) against moto through the counting proxy:
//! stages of one region share one listing of functions, mappings, layers, queues and
//! artifacts; what Stagehand writes is read back at once; what others change is seen once the
//! listing is older than `--inventory-max-age` (here: when the test forgets it). Driven through
//! the reconciler's own round (`lambda_stage::round::round`), without Kubernetes (which makes no
//! AWS calls).

#![allow(
    clippy::unwrap_used,
    clippy::too_many_lines,
    reason = "a test module: a panic with its location is the failure report we want"
)]

use std::time::Duration;

use crate::support::{API, Aws, BUCKET, CHAT, KEY, REGION, b64, build, chalice_manifest, seed};
use aws_sdk_lambda::types::{FunctionCode, Runtime};
use serde_json::json;
use stagehand::aws::AwsProvider;
use stagehand::base::ActGate;
use stagehand::inventory::Inventory;
use stagehand::lambda_stage::plan::{Action, Plan};
use stagehand::lambda_stage::round::{ActScope, RoundOptions, round};
use stagehand::runtime::Metrics;
use stagehand_crds::{LambdaStage, LambdaStageStatus};
use stagehand_testenv::aws::CallsReport;

const OTHER: [&str; 2] = ["shop-admin-dev", "shop-admin-dev-reports"];

struct Stage {
    object: LambdaStage,
    status: Option<LambdaStageStatus>,
}

struct World {
    aws: Aws,
    inventory: Inventory,
}

impl World {
    async fn start() -> Self {
        let aws = Aws::start().await;
        seed(&aws).await;
        let role = aws.floor.moto().create_lambda_role().await.unwrap();
        for name in OTHER {
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
                .send()
                .await
                .unwrap();
        }
        let provider = AwsProvider::new(
            aws.sdk.clone(),
            Metrics::new().unwrap().aws,
            stagehand::aws::AwsSettings::default(),
        );
        Self {
            aws,
            // Long enough never to expire during the test: expiry is `forget`. A spec change
            // lists again however young the listing is (the 1s floor is unit-tested).
            inventory: Inventory::new(provider, Duration::from_secs(600))
                .with_fresh_floor(Duration::ZERO),
        }
    }

    /// The Chalice stage, and a second stage of the same account and code package.
    fn stages() -> Vec<Stage> {
        let chalice: LambdaStage = serde_json::from_value(chalice_manifest(
            "shop-api-dev",
            Some("shop"),
            "Retain",
            None,
        ))
        .unwrap();
        let admin: LambdaStage = serde_json::from_value(json!({
            "apiVersion": "stagehand.dev/v1alpha1",
            "kind": "LambdaStage",
            "metadata": {"name": "shop-admin-dev", "namespace": "shop"},
            "spec": {
                "region": REGION,
                "adopt": true,
                "code": {"s3": {"bucket": BUCKET, "key": KEY}},
                "functions": OTHER.iter().map(|n| json!({"name": n})).collect::<Vec<_>>(),
                "layers": [{"name": "shop-deps", "version": "latest"}],
            }
        }))
        .unwrap();
        [chalice, admin]
            .into_iter()
            .map(|mut object| {
                object.metadata.generation = Some(1);
                Stage {
                    object,
                    status: None,
                }
            })
            .collect()
    }

    /// One reconcile: observe, plan, act, status. The plan it made.
    async fn round(&self, stage: &mut Stage) -> Plan {
        let options = RoundOptions {
            cluster_id: "test",
            gate: ActGate::Act,
            scope: ActScope::Gated,
            refresh: false,
        };
        let round = round(
            &self.inventory,
            &stage.object,
            stage.status.as_ref(),
            options,
            |_| {},
        )
        .await
        .unwrap();
        assert!(round.plan.stalled.is_none(), "{:?}", round.plan.stalled);
        assert!(round.report.failure.is_none(), "{:?}", round.report.failure);
        stage.status = Some(round.status);
        round.plan
    }

    /// Rounds until a plan has nothing to do; how many it took.
    async fn converge(&self, stage: &mut Stage) -> usize {
        for round in 1..=10 {
            let plan = self.round(stage).await;
            if plan.actions.is_empty() && plan.waits.is_empty() {
                return round;
            }
        }
        panic!("{} did not converge", stage.object.spec.region);
    }

    async fn calls(&self) -> CallsReport {
        self.aws.floor.calls().await.unwrap()
    }
}

fn lambda_calls(calls: &CallsReport) -> u64 {
    calls
        .calls
        .iter()
        .filter(|(key, _)| key.starts_with("lambda"))
        .map(|(_, stats)| stats.count)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stages_share_one_listing_and_an_unchanged_resync_reads_almost_nothing() {
    let world = World::start().await;
    let mut stages = World::stages();
    for stage in &mut stages {
        world.converge(stage).await;
    }
    // (A new object's first reconcile forgets the region's listings, as any spec change does:
    // the first stage lists again once after the second one was created.)
    for stage in &mut stages {
        world.round(stage).await;
    }

    // Within the listing's age: a resync of both stages reads only what validation measures.
    world.aws.floor.reset_calls().await.unwrap();
    for stage in &mut stages {
        let plan = world.round(stage).await;
        assert!(plan.actions.is_empty(), "{:?}", plan.actions);
    }
    let calls = world.calls().await;
    assert_eq!(lambda_calls(&calls), 0, "{calls:?}");
    assert_eq!(calls.count("s3", "HeadObject"), 0);
    assert_eq!(calls.count("s3", "ListObjectsV2"), 0);
    assert_eq!(calls.count("sqs", "GetQueueUrl"), 0);
    // The Chalice stage's two validated queues: the backlog is read every time.
    assert_eq!(calls.count("sqs", "GetQueueAttributes"), 2);
    assert_eq!(calls.total, 2);

    // The listing expired: one listing per region serves both stages; unchanged functions and
    // objects are not read one by one.
    world.inventory.forget(REGION);
    world.aws.floor.reset_calls().await.unwrap();
    for stage in &mut stages {
        let plan = world.round(stage).await;
        assert!(plan.actions.is_empty(), "{:?}", plan.actions);
    }
    let calls = world.calls().await;
    assert_eq!(calls.count("lambda", "ListFunctions"), 1, "{calls:?}");
    assert_eq!(calls.count("lambda", "ListEventSourceMappings"), 1);
    assert_eq!(calls.count("lambda", "ListLayerVersions"), 1);
    assert_eq!(calls.count("lambda", "GetFunction"), 0);
    assert_eq!(calls.count("lambda", "ListTags"), 0);
    assert_eq!(calls.count("s3", "ListObjectsV2"), 1);
    assert_eq!(calls.count("s3", "HeadObject"), 0);
    assert_eq!(calls.count("s3", "GetObject"), 0);
    // Queue URLs and ARNs follow from their names: kept; only the backlog is read.
    assert_eq!(calls.count("sqs", "GetQueueUrl"), 0);
    assert_eq!(calls.count("sqs", "GetQueueAttributes"), 2);
    assert_eq!(
        calls.total, 6,
        "one listing each of functions, mappings, layer versions and objects, 2 backlogs"
    );

    // A spec change is acted on with a fresh view: its first reconcile lists again.
    world.aws.floor.reset_calls().await.unwrap();
    stages[1].object.metadata.generation = Some(2);
    world.round(&mut stages[1]).await;
    let calls = world.calls().await;
    assert_eq!(calls.count("lambda", "ListFunctions"), 1, "{calls:?}");
    world.aws.floor.reset_calls().await.unwrap();
    world.round(&mut stages[1]).await;
    assert_eq!(
        world.calls().await.total,
        0,
        "then the listing serves again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_writes_are_read_back_at_once_and_others_changes_after_the_listing_expires() {
    let world = World::start().await;
    let mut stages = World::stages();
    let chalice = &mut stages[0];
    world.converge(chalice).await;

    // A deploy tool drops the shared layer from CHAT.
    let layers_of = |name: &'static str| {
        let lambda = world.aws.lambda();
        async move {
            lambda
                .get_function_configuration()
                .function_name(name)
                .send()
                .await
                .unwrap()
                .layers()
                .iter()
                .filter_map(|l| l.arn().map(str::to_owned))
                .collect::<Vec<_>>()
        }
    };
    let before = layers_of(CHAT).await;
    assert_eq!(before.len(), 2, "monitoring + shop-deps: {before:?}");
    world
        .aws
        .lambda()
        .update_function_configuration()
        .function_name(CHAT)
        .layers(&before[0])
        .send()
        .await
        .unwrap();

    // The listing is younger than its max age: the change is not seen yet.
    let plan = world.round(chalice).await;
    assert!(plan.actions.is_empty(), "{:?}", plan.actions);

    // Once expired it is, and repaired.
    world.inventory.forget(REGION);
    world.aws.floor.reset_calls().await.unwrap();
    let plan = world.round(chalice).await;
    assert!(
        plan.actions.iter().any(|a| matches!(
            a,
            Action::UpdateFunctionConfiguration { function, .. } if function == CHAT
        )),
        "{:?}",
        plan.actions
    );
    assert_eq!(layers_of(CHAT).await, before);
    // Its ownership tags, cached from an earlier round, were read again right before the
    // write: one GetFunction, for CHAT only.
    let calls = world.calls().await;
    assert_eq!(calls.count("lambda", "GetFunction"), 1, "{calls:?}");
    let log = world.aws.floor.admin().log().await.unwrap();
    let read = log.iter().position(|r| r.operation == "GetFunction");
    let write = log
        .iter()
        .position(|r| r.operation == "UpdateFunctionConfiguration");
    assert!(read < write, "the tags were read before the write: {log:?}");
    assert!(
        log.iter()
            .any(|r| r.operation == "GetFunction" && r.path.contains(CHAT))
    );

    // The write is read back by the next reconcile (one GetFunction for CHAT), without waiting
    // for the listing to expire: nothing left to do.
    world.aws.floor.reset_calls().await.unwrap();
    let plan = world.round(chalice).await;
    assert!(plan.actions.is_empty(), "{:?}", plan.actions);
    let calls = world.calls().await;
    assert_eq!(calls.count("lambda", "GetFunction"), 1, "{calls:?}");
    assert_eq!(calls.count("lambda", "ListFunctions"), 0);

    // A new build under the same key: deployed once the artifact listing expired, the code
    // update read back, and exactly the changed functions updated.
    world.aws.upload(KEY, &build("v2")).await;
    world.inventory.forget(REGION);
    world.aws.floor.reset_calls().await.unwrap();
    let rounds = world.converge(chalice).await;
    assert!(rounds >= 2, "hash, then update");
    let calls = world.calls().await;
    assert_eq!(calls.count("lambda", "UpdateFunctionCode"), 3);
    assert_eq!(calls.count("s3", "GetObject"), 1, "hashed once");
    assert_eq!(calls.count("lambda", "ListFunctions"), 1);
    let v2 = b64(&build("v2"));
    for name in [API, CHAT] {
        assert_eq!(
            world
                .aws
                .lambda()
                .get_function_configuration()
                .function_name(name)
                .send()
                .await
                .unwrap()
                .code_sha256(),
            Some(v2.as_str())
        );
    }
}
