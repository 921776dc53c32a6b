//! The region-wide Lambda listings on a healthy event feed, end to end: the production
//! controllers with `--inventory-max-age 1s` and the default `--feed-backstop-max-age` (10m),
//! moto behind the counting proxy, CloudTrail events sent to the queue as EventBridge would.
//!
//! - while the feed is healthy, rounds every 2 s list nothing (`ListFunctions`,
//!   `ListEventSourceMappings`, `ListLayerVersions` counted at the proxy); once the queue is gone
//!   every round lists again, at the 1 s max age;
//! - a function created by hand under a stage's `functionSelector.namePrefix`, and a layer
//!   version published by hand, are picked up within seconds of their CloudTrail events,
//!   without a new `ListFunctions` and with no resync in between (resync 10 minutes).

#![allow(
    clippy::unwrap_used,
    reason = "a test module: a panic with its location is the failure report we want"
)]

use std::time::{Duration, Instant};

use aws_sdk_lambda::types::FunctionCode;
use serde_json::json;
use stagehand_testenv::aws::CallsReport;

use crate::lambda_stage_feed::{
    ALICE, IDENTITY, envelope, feed_ready, send, start_as, wait_messages,
};
use crate::support::{API, BUCKET, CHAT, CHAT_QUEUE, Env, KEY, REGION, b64, build, seed, stage};

const LISTINGS: [&str; 3] = [
    "ListFunctions",
    "ListEventSourceMappings",
    "ListLayerVersions",
];

fn listings(calls: &CallsReport) -> [u64; 3] {
    LISTINGS.map(|operation| calls.count("lambda", operation))
}

/// A stage selecting every `shop-api-dev*` function, with the seeded layer and mapping.
fn selector_stage(name: &str) -> stagehand_crds::LambdaStage {
    stage(
        name,
        json!({"adopt": true, "code": {"s3": {"bucket": BUCKET, "key": KEY}},
               "functionSelector": {"namePrefix": API},
               "layers": [{"name": "shop-deps", "version": "latest"}],
               "eventSourceMappings": [{"function": CHAT, "queue": CHAT_QUEUE, "batchSize": 1}]}),
    )
}

/// CloudTrail's record of a Lambda write by Alice.
fn lambda_call(event_name: &str, request: &serde_json::Value) -> String {
    envelope(
        "aws.lambda",
        "AWS API Call via CloudTrail",
        &json!({
            "eventVersion": "1.08",
            "userIdentity": {"type": "IAMUser", "arn": ALICE, "accountId": "123456789012"},
            "eventSource": "lambda.amazonaws.com",
            "eventName": event_name,
            "awsRegion": REGION,
            "requestParameters": request,
            "responseElements": null,
            "eventType": "AwsApiCall",
        }),
    )
}

async fn ready_on_feed(env: &Env, name: &str) {
    env.wait_for(name, "ready, feed ready", |s| {
        feed_ready(s) && crate::support::ready(s)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listings_stretch_while_the_feed_is_healthy_and_return_when_it_stops() {
    let mut env = start_as(
        Duration::from_secs(1),
        Duration::from_secs(2),
        Some(IDENTITY),
    )
    .await;
    seed(&env).await;
    env.start_controllers().await;
    env.create(&selector_stage("stretch")).await;
    ready_on_feed(&env, "stretch").await;

    // Healthy: four rounds 2 s apart, each past the 1 s max age, list nothing.
    let before = listings(&env.calls().await);
    env.wait_reconciles(env.reconciles(), 4).await;
    assert_eq!(
        listings(&env.calls().await),
        before,
        "{LISTINGS:?} while the feed is healthy"
    );

    // The queue goes away: the feed is unhealthy and every round lists at the max age again.
    crate::lambda_stage_feed::delete_the_queue(&env, "stretch").await;
    let before = listings(&env.calls().await);
    env.wait_aws("listings at every round again", || async {
        let now = listings(&env.calls().await);
        now.iter()
            .zip(before)
            .all(|(now, before)| *now >= before + 3)
            .then_some(())
    })
    .await;
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_and_a_layer_version_made_by_hand_are_picked_up_on_their_events() {
    // Resync 10 minutes: within the test only an event can set off a round.
    let mut env = start_as(
        Duration::from_secs(1),
        Duration::from_secs(600),
        Some(IDENTITY),
    )
    .await;
    seed(&env).await;
    env.start_controllers().await;
    env.create(&selector_stage("hand-made")).await;
    ready_on_feed(&env, "hand-made").await;
    let v1 = b64(&build("v1"));
    assert_eq!(env.function(API).await.code_sha256(), Some(v1.as_str()));

    // A new function under the selector's prefix, created by hand with an old build.
    let reports = format!("{API}-reports");
    let role = env.function(API).await.role().unwrap().to_owned();
    env.lambda()
        .create_function()
        .function_name(&reports)
        .runtime(aws_sdk_lambda::types::Runtime::Python312)
        .role(role)
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
    // Past the max age: only the stretched listing (and the event) can explain what follows.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let listed = env.calls().await.count("lambda", "ListFunctions");
    let started = Instant::now();
    send(
        &env,
        &lambda_call(
            "CreateFunction20150331",
            &json!({"functionName": reports, "runtime": "python3.12"}),
        ),
    )
    .await;
    env.wait_aws("the new function on the stage's build", || async {
        (env.function(&reports).await.code_sha256() == Some(v1.as_str())).then_some(())
    })
    .await;
    let took = started.elapsed();
    eprintln!("function created by hand: event sent → deployed in {took:?}");
    assert!(took < Duration::from_secs(10), "picked up after {took:?}");
    assert_eq!(
        env.calls().await.count("lambda", "ListFunctions"),
        listed,
        "found through the event, not a new listing"
    );
    wait_messages(&env, "api_call", "handled", 1).await;

    // A new version of the stage's layer, published by hand.
    let v3 = env
        .publish_layer("shop-deps", b"layer shop-deps v3".to_vec())
        .await;
    let started = Instant::now();
    send(
        &env,
        &lambda_call(
            "PublishLayerVersion20181031",
            &json!({"layerName": "shop-deps"}),
        ),
    )
    .await;
    env.wait_aws("the new layer version on the functions", || async {
        let layers = env.function(API).await;
        layers
            .layers()
            .iter()
            .any(|layer| layer.arn() == Some(v3.as_str()))
            .then_some(())
    })
    .await;
    let took = started.elapsed();
    eprintln!("layer version published by hand: event sent → attached in {took:?}");
    assert!(took < Duration::from_secs(10), "attached after {took:?}");
    env.stop().await;
}
