//! LambdaStage on the controller-wide event feed (`--event-queue`), end to end: the production
//! controllers, the API stand-in, moto behind the counting proxy, and EventBridge-shaped events
//! sent to the queue as EventBridge would deliver them (moto never emits S3 or CloudTrail
//! events itself). The inventory's max age and the resync are ten minutes in the first two
//! tests, so whatever happens within the test's seconds was set off by an event.
//!
//! - a new build uploaded with the AWS CLI plus its `Object Created` event → deployed at once;
//! - a hand `update-alias` plus its CloudTrail event → the alias is back within seconds; an
//!   event for a function no object owns, one of Stagehand's own calls and a poisoned message
//!   → nothing happens, each is deleted and counted;
//! - the feed stops (its queue deleted) → `EventFeedReady` turns false and the alias is read
//!   at every resync again (call counts), where the healthy feed had made it hourly.

#![allow(
    clippy::unwrap_used,
    clippy::too_many_lines,
    reason = "a test module: a panic with its location is the failure report we want"
)]

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use stagehand::runtime::{Context, Metrics};
use stagehand_crds::LambdaStage;

use crate::event_queue_template::aws_cli;
use crate::support::{API, BUCKET, EVAL, Env, KEY, REGION, b64, build, condition, seed, stage};

pub(crate) const QUEUE: &str = "stagehand-events";
pub(crate) const IDENTITY: &str = "arn:aws:iam::123456789012:role/stagehand";
pub(crate) const ALICE: &str = "arn:aws:iam::123456789012:user/alice";

/// The e2e environment with the controller reading `--event-queue stagehand-events` (created
/// here), `--event-feed-identity` [`IDENTITY`], and this max age and default resync.
async fn start(max_age: Duration, resync: Duration) -> Env {
    start_as(max_age, resync, Some(IDENTITY)).await
}

/// [`start`] with `--event-feed-identity` `identity` (none: learned from STS).
pub(crate) async fn start_as(max_age: Duration, resync: Duration, identity: Option<&str>) -> Env {
    let mut env = Env::start().await;
    env.sqs()
        .create_queue()
        .queue_name(QUEUE)
        .send()
        .await
        .unwrap();
    let mut settings = env.ctx.settings.clone();
    settings.inventory_max_age = max_age;
    settings.default_resync = resync;
    settings.event_queue = Some(QUEUE.into());
    settings.event_feed_identity = identity.map(str::to_owned);
    env.ctx = Arc::new(Context::new(
        env.ctx.client.clone(),
        env.sdk.clone(),
        Metrics::new().unwrap(),
        settings,
    ));
    env
}

pub(crate) async fn send(env: &Env, body: &str) {
    let url = env.queue_url(QUEUE).await;
    env.sqs()
        .send_message()
        .queue_url(url)
        .message_body(body)
        .send()
        .await
        .unwrap();
}

pub(crate) fn messages(env: &Env, kind: &str, result: &str) -> u64 {
    env.ctx
        .metrics
        .feed
        .messages
        .with_label_values(&[kind, result])
        .get()
}

pub(crate) async fn wait_messages(env: &Env, kind: &str, result: &str, n: u64) {
    env.wait_aws(&format!("{n} {kind} messages {result}"), || async {
        (messages(env, kind, result) >= n).then_some(())
    })
    .await;
}

pub(crate) fn envelope(source: &str, detail_type: &str, detail: &serde_json::Value) -> String {
    json!({
        "version": "0",
        "id": format!("{detail_type}-{}", detail),
        "detail-type": detail_type,
        "source": source,
        "account": "123456789012",
        "time": "2026-12-01T05:00:00Z",
        "region": REGION,
        "resources": [],
        "detail": detail,
    })
    .to_string()
}

fn object_created(key: &str) -> String {
    envelope(
        "aws.s3",
        "Object Created",
        &json!({"version": "0", "bucket": {"name": BUCKET}, "object": {"key": key, "size": 1},
               "reason": "PutObject", "requester": "123456789012"}),
    )
}

fn update_alias(function: &str, caller: &str) -> String {
    envelope(
        "aws.lambda",
        "AWS API Call via CloudTrail",
        &json!({
            "eventVersion": "1.08",
            "userIdentity": {"type": "IAMUser", "arn": caller, "accountId": "123456789012"},
            "eventSource": "lambda.amazonaws.com",
            "eventName": "UpdateAlias20150331",
            "awsRegion": REGION,
            "requestParameters": {"functionName": function, "name": "live", "functionVersion": "$LATEST"},
            "responseElements": null,
            "eventType": "AwsApiCall",
        }),
    )
}

async fn live_version(env: &Env) -> String {
    env.lambda()
        .get_alias()
        .function_name(API)
        .name("live")
        .send()
        .await
        .unwrap()
        .function_version()
        .unwrap()
        .to_owned()
}

pub(crate) fn feed_ready(stage: &LambdaStage) -> bool {
    condition(stage, "EventFeedReady").0 == "True"
}

/// Deletes the feed's queue and waits (bounded) until stage `name` says the feed is not ready
/// because the queue is gone.
pub(crate) async fn delete_the_queue(env: &Env, name: &str) {
    let url = env.queue_url(QUEUE).await;
    env.sqs()
        .delete_queue()
        .queue_url(url)
        .send()
        .await
        .unwrap();
    let stopped = env
        .wait_for(name, "feed not ready", |s| {
            condition(s, "EventFeedReady").0 == "False"
        })
        .await;
    assert_eq!(condition(&stopped, "EventFeedReady").1, "QueueNotFound");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_build_and_its_s3_event_are_deployed_at_once() {
    let mut env = start(Duration::from_secs(600), Duration::from_secs(600)).await;
    seed(&env).await;
    env.start_controllers().await;
    env.create(&stage(
        "feed-build",
        json!({"adopt": true, "code": {"s3": {"bucket": BUCKET, "key": KEY}},
               "functions": [{"name": API}]}),
    ))
    .await;
    env.wait_for("feed-build", "ready, feed ready", |s| {
        feed_ready(s) && crate::support::ready(s)
    })
    .await;
    assert_eq!(
        env.function(API).await.code_sha256(),
        Some(b64(&build("v1")).as_str())
    );

    // A CI job uploads the next build with the AWS CLI; EventBridge announces it.
    let dir = std::env::temp_dir().join(format!("stagehand-feed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let zip = dir.join("v2.zip");
    std::fs::write(&zip, build("v2")).unwrap();
    aws_cli(
        &env.floor.endpoint_url(),
        &[
            "s3",
            "cp",
            zip.to_str().unwrap(),
            &format!("s3://{BUCKET}/{KEY}"),
        ],
    )
    .await;
    std::fs::remove_dir_all(&dir).unwrap();
    let started = std::time::Instant::now();
    send(&env, &object_created(KEY)).await;
    let v2 = b64(&build("v2"));
    env.wait_aws("v2 deployed", || async {
        (env.function(API).await.code_sha256() == Some(v2.as_str())).then_some(())
    })
    .await;
    let took = started.elapsed();
    eprintln!("new build: event sent → deployed in {took:?}");
    assert!(took < Duration::from_secs(10), "deployed after {took:?}");
    assert_eq!(messages(&env, "object_created", "handled"), 1);

    // A new object nobody's artifact: deleted, nothing to do.
    send(&env, &object_created("someone-else/app.zip")).await;
    wait_messages(&env, "object_created", "ignored", 1).await;
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hand_alias_change_is_repaired_on_its_cloudtrail_event() {
    let mut env = start(Duration::from_secs(600), Duration::from_secs(600)).await;
    seed(&env).await;
    env.start_controllers().await;
    env.create(&stage(
        "feed-alias",
        json!({"adopt": true, "code": {"s3": {"bucket": BUCKET, "key": KEY}},
               "functions": [{"name": API}], "alias": {"name": "live"}}),
    ))
    .await;
    env.wait_for("feed-alias", "ready on its alias, feed ready", |s| {
        feed_ready(s)
            && s.status
                .as_ref()
                .and_then(|st| st.alias.as_ref())
                .is_some_and(|a| a.versions.contains_key(API))
            && crate::support::ready(s)
    })
    .await;
    let served = live_version(&env).await;

    // Someone points the alias elsewhere by hand; CloudTrail records it.
    aws_cli(
        &env.floor.endpoint_url(),
        &[
            "lambda",
            "update-alias",
            "--function-name",
            API,
            "--name",
            "live",
            "--function-version",
            "$LATEST",
        ],
    )
    .await;
    assert_eq!(live_version(&env).await, "$LATEST");
    let started = std::time::Instant::now();
    send(&env, &update_alias(API, ALICE)).await;
    env.wait_aws("the alias back", || async {
        (live_version(&env).await == served).then_some(())
    })
    .await;
    let took = started.elapsed();
    eprintln!("hand alias change: event sent → alias back in {took:?}");
    assert!(took < Duration::from_secs(10), "repaired after {took:?}");
    wait_messages(&env, "api_call", "handled", 1).await;

    // Not Stagehand's function, Stagehand's own call, garbage: deleted and counted; `ignored`
    // means no object was told (the consumer counts a message handled when it told one).
    send(&env, &update_alias(EVAL, ALICE)).await;
    send(
        &env,
        &update_alias(
            API,
            "arn:aws:sts::123456789012:assumed-role/stagehand/web-identity-1",
        ),
    )
    .await;
    send(&env, "{\"Records\": [poisoned").await;
    wait_messages(&env, "api_call", "ignored", 2).await;
    wait_messages(&env, "unparsable", "deleted_unparsable", 1).await;
    let url = env.queue_url(QUEUE).await;
    let left = env
        .sqs()
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
        .send()
        .await
        .unwrap();
    let attributes = left.attributes().unwrap();
    for count in [
        aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages,
        aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
    ] {
        assert_eq!(attributes[&count], "0", "{count:?}: every message deleted");
    }
    assert_eq!(live_version(&env).await, served);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_takes_over_when_the_feed_stops() {
    // Resync every 2 s with a 1 s max age: without the feed, every round reads the alias.
    let mut env = start(Duration::from_secs(1), Duration::from_secs(2)).await;
    seed(&env).await;
    env.start_controllers().await;
    env.create(&stage(
        "feed-backstop",
        json!({"adopt": true, "code": {"s3": {"bucket": BUCKET, "key": KEY}},
               "functions": [{"name": API}], "alias": {"name": "live"}}),
    ))
    .await;
    env.wait_for("feed-backstop", "ready, feed ready", |s| {
        feed_ready(s) && crate::support::ready(s)
    })
    .await;
    let get_alias = |calls: &stagehand_testenv::aws::CallsReport| calls.count("lambda", "GetAlias");

    // Healthy feed: three more rounds, no alias read.
    let before = get_alias(&env.calls().await);
    env.wait_reconciles(env.reconciles(), 3).await;
    assert_eq!(
        get_alias(&env.calls().await),
        before,
        "hourly while healthy"
    );

    // The queue goes away: the feed is unhealthy, the stage says so, and polling is back.
    delete_the_queue(&env, "feed-backstop").await;
    // Rounds come faster than resyncs for a moment (the health change triggers them) and share
    // a read within the 1 s max age; then every resync reads the alias again.
    let before = get_alias(&env.calls().await);
    env.wait_aws("the alias read at resyncs again", || async {
        (get_alias(&env.calls().await) >= before + 3).then_some(())
    })
    .await;
    assert_eq!(
        env.ctx
            .metrics
            .feed
            .healthy
            .with_label_values(&[&format!("{REGION}/{QUEUE}")])
            .get(),
        0
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_configured_identity_the_feed_learns_its_own_from_sts() {
    let mut env = start_as(Duration::from_secs(600), Duration::from_secs(600), None).await;
    seed(&env).await;
    env.start_controllers().await;
    env.create(&stage(
        "feed-identity",
        json!({"adopt": true, "code": {"s3": {"bucket": BUCKET, "key": KEY}},
               "functions": [{"name": API}], "alias": {"name": "live"}}),
    ))
    .await;
    env.wait_for("feed-identity", "ready, feed ready", |s| {
        feed_ready(s) && crate::support::ready(s)
    })
    .await;
    let calls = env.floor.calls().await.unwrap();
    assert_eq!(calls.count("sts", "GetCallerIdentity"), 1, "learned once");

    // moto's credentials are `arn:aws:sts::123456789012:user/moto`: a write made as that
    // identity is Stagehand's own and tells nobody; the same write by someone else does.
    send(
        &env,
        &update_alias(API, "arn:aws:sts::123456789012:user/moto"),
    )
    .await;
    wait_messages(&env, "api_call", "ignored", 1).await;
    assert_eq!(messages(&env, "api_call", "handled"), 0);
    send(&env, &update_alias(API, ALICE)).await;
    wait_messages(&env, "api_call", "handled", 1).await;
    env.stop().await;
}
