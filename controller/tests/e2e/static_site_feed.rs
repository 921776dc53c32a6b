//! StaticSite on the controller-wide event feed (`--event-queue`), end to end with the events
//! moto itself sends: the template's queue and rules created on moto by CloudFormation, the
//! production controllers, the inventory's max age and the resync at ten minutes, so whatever
//! happens within the test's seconds was set off by an event.
//!
//! - the site's own bucket gets EventBridge notifications (read back through the proxy, which
//!   puts back what moto leaves out of `GetBucketNotificationConfiguration`);
//! - `EventFeedReady` names the source bucket while it sends no events;
//! - a live file changed by hand (S3's `Object Created`) or deleted for good (`Object Deleted`;
//!   moto sends both) → repaired at once;
//! - the source bucket's notifications turned on and a new build uploaded: its `Object Created`
//!   → deployed at once, with no `stagehand.dev/refresh` nudge.

#![allow(
    clippy::unwrap_used,
    reason = "a test module: a panic with its location is the failure report we want"
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::api::Api;
use serde_json::json;
use stagehand::runtime::{Context, Metrics};
use stagehand_crds::StaticSite;

use crate::event_queue_template::{TEMPLATE, aws_cli};
use crate::static_site_lifecycle::{app_js, condition, create, publish, ready, wait_for};
use crate::static_site_round::{BUILDS, SITE_BUCKET};
use crate::support::{Env, NAMESPACE};

/// The template's queue.
const QUEUE: &str = "stagehand-events";
const TEN_MINUTES: Duration = Duration::from_secs(600);

/// The template's stack on moto, the builds bucket with build 1, and the controllers reading
/// the template's queue with ten-minute max age and resync.
async fn started() -> (Env, Api<StaticSite>) {
    let mut env = Env::start_with_inventory_max_age(TEN_MINUTES).await;
    aws_sdk_cloudformation::Client::new(&env.sdk)
        .create_stack()
        .stack_name("stagehand-events")
        .template_body(TEMPLATE)
        .send()
        .await
        .unwrap();
    env.aws
        .s3()
        .create_bucket()
        .bucket(BUILDS)
        .send()
        .await
        .unwrap();
    publish(&env, 1).await;
    let mut settings = env.ctx.settings.clone();
    settings.default_resync = TEN_MINUTES;
    settings.event_queue = Some(QUEUE.into());
    env.ctx = Arc::new(Context::new(
        env.ctx.client.clone(),
        env.sdk.clone(),
        Metrics::new().unwrap(),
        settings,
    ));
    env.start_controllers().await;
    let sites = Api::namespaced(env.ctx.client.clone(), NAMESPACE);
    (env, sites)
}

fn handled(env: &Env, kind: &str) -> u64 {
    env.ctx
        .metrics
        .feed
        .messages
        .with_label_values(&[kind, "handled"])
        .get()
}

async fn sends_events(env: &Env, bucket: &str) -> bool {
    env.aws
        .s3()
        .get_bucket_notification_configuration()
        .bucket(bucket)
        .send()
        .await
        .unwrap()
        .event_bridge_configuration()
        .is_some()
}

/// The live `assets/app.js`, `None` while it is deleted.
async fn live_app_js(env: &Env) -> Option<Vec<u8>> {
    let got = env
        .aws
        .s3()
        .get_object()
        .bucket(SITE_BUCKET)
        .key("assets/app.js")
        .send()
        .await
        .ok()?;
    Some(got.body.collect().await.unwrap().into_bytes().to_vec())
}

/// Waits (bounded) until the live `assets/app.js` is `want`; how long it took.
async fn wait_app_js(env: &Env, want: &[u8]) -> Duration {
    let started = Instant::now();
    env.wait_aws(
        &format!("app.js = {}", String::from_utf8_lossy(want)),
        || async { (live_app_js(env).await.as_deref() == Some(want)).then_some(()) },
    )
    .await;
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hand_deletes_and_new_builds_are_acted_on_from_s3s_own_events() {
    let (env, sites) = started().await;
    create(&sites, &json!({"resyncInterval": "10m"})).await;
    let site = wait_for(&sites, "Ready with the feed", |s| {
        ready(s) && condition(s, "EventFeedReady").0 == "True"
    })
    .await;
    let (_, reason, message) = condition(&site, "EventFeedReady");
    assert_eq!(reason, "Healthy");
    assert!(
        message.contains(&format!("source bucket(s) {BUILDS} send no events")),
        "{message}"
    );
    assert!(
        sends_events(&env, SITE_BUCKET).await,
        "the site turns EventBridge notifications on for its own bucket"
    );
    assert_eq!(app_js(&env).await, b"console.log(1)");

    // A hand edit of a live file, announced by S3 (`Object Created`).
    let endpoint = env.aws.floor.endpoint_url();
    let hacked = std::env::temp_dir().join(format!("stagehand-hacked-{}.js", std::process::id()));
    std::fs::write(&hacked, "alert('patched by hand')").unwrap();
    let before = handled(&env, "object_created");
    aws_cli(
        &endpoint,
        &[
            "s3api",
            "put-object",
            "--bucket",
            SITE_BUCKET,
            "--key",
            "assets/app.js",
            "--body",
            hacked.to_str().unwrap(),
        ],
    )
    .await;
    std::fs::remove_file(&hacked).unwrap();
    let repaired = wait_app_js(&env, b"console.log(1)").await;
    assert!(handled(&env, "object_created") > before);
    eprintln!("hand edit repaired in {repaired:?}");

    // A file deleted by hand for good (its only version), announced by S3 (`Object Deleted`;
    // moto sends none for a delete marker, see docs/testing.md).
    let about = "about/index.html";
    let version = env
        .aws
        .s3()
        .head_object()
        .bucket(SITE_BUCKET)
        .key(about)
        .send()
        .await
        .unwrap()
        .version_id()
        .unwrap()
        .to_owned();
    aws_cli(
        &endpoint,
        &[
            "s3api",
            "delete-object",
            "--bucket",
            SITE_BUCKET,
            "--key",
            about,
            "--version-id",
            &version,
        ],
    )
    .await;
    let started = Instant::now();
    env.wait_aws("about/index.html restored", || async {
        let got = env
            .aws
            .s3()
            .get_object()
            .bucket(SITE_BUCKET)
            .key(about)
            .send()
            .await
            .ok()?;
        let body = got.body.collect().await.unwrap().into_bytes();
        (body.as_ref() == b"<h1>About</h1>").then_some(())
    })
    .await;
    assert!(handled(&env, "object_deleted") >= 1);
    eprintln!("hand delete repaired in {:?}", started.elapsed());

    // The source bucket announces its objects from now on: a new build is deployed at once.
    aws_cli(
        &endpoint,
        &[
            "s3api",
            "put-bucket-notification-configuration",
            "--bucket",
            BUILDS,
            "--notification-configuration",
            r#"{"EventBridgeConfiguration": {}}"#,
        ],
    )
    .await;
    let before = handled(&env, "object_created");
    publish(&env, 2).await;
    let deployed = wait_app_js(&env, b"console.log(2)").await;
    assert!(handled(&env, "object_created") > before);
    eprintln!("new build deployed in {deployed:?}");
    wait_for(&sites, "Ready on build 2", ready).await;
}
