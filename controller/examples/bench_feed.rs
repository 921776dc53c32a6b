//! The event feed's benchmark: Lambda control-plane calls of a steady-state resync with and
//! without a healthy feed, and the time from a hand change of an alias to its repair when the
//! change's CloudTrail event arrives. Counted by the test floor's proxy (moto), projected to
//! 10,000 functions with AWS's page sizes (docs/benchmarks.md, "Event feed").
//!
//! Not a test: `cargo run -p stagehand --example bench_feed [-- N]` (default N = 1000). N
//! functions in stages of 10; every other stage has the alias `live` (half the functions). Every
//! function already runs its stage's artifact; the first converge tags them, publishes a version
//! and creates the aliases. Then one resync cycle (one round per stage, listings expired first,
//! as a resync minutes after the last one finds them) without a feed, and one with a healthy
//! feed; then one hand `UpdateAlias` answered through the feed's own consumer (the message as
//! EventBridge delivers it) and one round of the stage it names.

#![allow(
    clippy::unwrap_used,
    clippy::cast_precision_loss,
    reason = "a benchmark binary: a panic with its location is the report we want"
)]

use std::time::{Duration, Instant};

use aws_sdk_lambda::types::{FunctionCode, Runtime};
use kube::ResourceExt;
use serde_json::json;
use stagehand::base::ActGate;
use stagehand::feed::{Consumer, FeedHub, Target};
use stagehand::inventory::Inventory;
use stagehand::inventory::sqs::QueueFeed;
use stagehand::lambda_stage::round::{ActScope, RoundOptions, round};
use stagehand::runtime::Metrics;
use stagehand_crds::{LambdaStage, LambdaStageStatus};
use stagehand_testenv::aws::seed::{Seeder, deterministic_zip};
use stagehand_testenv::aws::{AwsFloor, REGION};

mod bench_support;

const STAGE_SIZE: usize = 10;
const BUCKET: &str = "feed-artifacts";
const QUEUE: &str = "stagehand-events";
/// The controller's defaults, for the projection: `--inventory-max-age` and the resync interval.
const MAX_AGE: Duration = Duration::from_secs(30);
const RESYNC: Duration = Duration::from_secs(300);
/// The max age of the bench's inventory: a cycle starts once it has passed, as a resync minutes
/// after the last one finds every listing (and, without a feed, every alias) expired.
const BENCH_MAX_AGE: Duration = Duration::from_secs(1);
/// Lambda's quota for every control-plane API but `GetFunction`, per account and region.
const LAMBDA_QUOTA: f64 = 15.0;

fn stage(index: usize) -> LambdaStage {
    let functions: Vec<_> = (0..STAGE_SIZE)
        .map(|f| json!({"name": format!("feed-s{index:03}-fn{f}")}))
        .collect();
    let mut spec = json!({
        "region": REGION,
        "adopt": true,
        "code": {"s3": {"bucket": BUCKET, "key": format!("s{index:03}/app.zip")}},
        "functions": functions,
    });
    if index.is_multiple_of(2) {
        spec["alias"] = json!({"name": "live"});
    }
    let mut object = LambdaStage::new(
        &format!("feed-s{index:03}"),
        serde_json::from_value(spec).unwrap(),
    );
    object.metadata.namespace = Some("bench".into());
    object.metadata.generation = Some(1);
    object
}

fn package(index: usize) -> Vec<u8> {
    deterministic_zip(&[("app.py", format!("STAGE = {index}\n").as_bytes())])
}

/// One round of `stage`; whether it did or still waits for something.
async fn reconcile(
    inventory: &Inventory,
    stage: &LambdaStage,
    status: &mut Option<LambdaStageStatus>,
) -> bool {
    let options = RoundOptions {
        cluster_id: "bench",
        gate: ActGate::Act,
        scope: ActScope::Gated,
        refresh: false,
    };
    let done = round(inventory, stage, status.as_ref(), options, |_| {})
        .await
        .unwrap();
    assert!(done.report.failure.is_none(), "{:?}", done.report.failure);
    let busy = !done.report.done.is_empty() || !done.plan.waits.is_empty();
    *status = Some(done.status);
    busy
}

/// Lambda calls of one resync cycle (every stage once, the inventory's max age passed first),
/// how many were `GetAlias`, and every call by operation.
async fn resync_cycle(
    floor: &AwsFloor,
    inventory: &Inventory,
    stages: &[LambdaStage],
    statuses: &mut [Option<LambdaStageStatus>],
) -> (u64, u64, String) {
    // A benchmark, not a test: waiting out the max age is the point.
    tokio::time::sleep(BENCH_MAX_AGE + Duration::from_millis(100)).await;
    floor.reset_calls().await.unwrap();
    for (stage, status) in stages.iter().zip(statuses.iter_mut()) {
        reconcile(inventory, stage, status).await;
    }
    let calls = floor.calls().await.unwrap();
    let lambda: u64 = calls
        .calls
        .iter()
        .filter(|(key, _)| key.starts_with("lambda/"))
        .map(|(_, stats)| stats.count)
        .sum();
    (
        lambda,
        calls.count("lambda", "GetAlias"),
        bench_support::breakdown(&bench_support::by_operation(&calls)),
    )
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1000);
    let floor = AwsFloor::start().await.unwrap();
    let seeder = Seeder::new(&floor.endpoint_url(), REGION).await;
    let aws = bench_support::unlimited_provider(&floor).await;
    let role = seeder.role().await.unwrap();
    seeder.bucket(BUCKET).await.unwrap();
    seeder.queue(QUEUE).await.unwrap();
    let stages: Vec<LambdaStage> = (0..n / STAGE_SIZE).map(stage).collect();
    for (index, object) in stages.iter().enumerate() {
        let key = format!("s{index:03}/app.zip");
        seeder.upload(BUCKET, &key, package(index)).await.unwrap();
        for function in &object.spec.functions {
            seeder
                .lambda()
                .create_function()
                .function_name(function.name.clone().unwrap())
                .runtime(Runtime::Python312)
                .role(&role)
                .handler("app.handler")
                .code(
                    FunctionCode::builder()
                        .zip_file(package(index).into())
                        .build(),
                )
                .send()
                .await
                .unwrap();
        }
    }
    // Both inventories know the controller-wide queue; the feed's health decides.
    let inventory = Inventory::new(aws, BENCH_MAX_AGE).with_event_queue(Some(QUEUE.into()));
    let mut statuses: Vec<Option<LambdaStageStatus>> = vec![None; stages.len()];
    for (stage, status) in stages.iter().zip(statuses.iter_mut()) {
        let mut rounds = 0;
        while reconcile(&inventory, stage, status).await {
            rounds += 1;
            assert!(rounds < 10, "{} does not converge", stage.name_any());
        }
    }
    let aliased = n / 2;

    // Without a feed (or with an unhealthy one): aliases are read at every resync.
    let (polling, polling_aliases, polling_calls) =
        resync_cycle(&floor, &inventory, &stages, &mut statuses).await;
    // A healthy feed: the poller's record, as `feed::run` leaves it after messages arrived.
    let queues = inventory.sqs(REGION);
    queues.feed_polled(QUEUE, QueueFeed::Polling);
    queues.feed_heard(QUEUE);
    // The aliases read in the cycle above stay trusted for their hour (the listings do not).
    let (fed, fed_aliases, fed_calls) =
        resync_cycle(&floor, &inventory, &stages, &mut statuses).await;

    // A hand change of one alias and its CloudTrail event, through the feed's consumer.
    let hub = FeedHub::default();
    let mut requests = hub.triggers.subscribe("LambdaStage");
    let consumer = Consumer {
        inventory: inventory.clone(),
        triggers: hub.triggers.clone(),
        metrics: Metrics::new().unwrap().feed,
        demand: hub.demand.clone(),
        identity: None,
    };
    let victim = stages[0].spec.functions[0].name.clone().unwrap();
    let started = Instant::now();
    seeder
        .lambda()
        .update_alias()
        .function_name(&victim)
        .name("live")
        .function_version("$LATEST")
        .send()
        .await
        .unwrap();
    let event = json!({
        "version": "0", "id": "bench-1", "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.lambda", "account": "123456789012", "time": "2026-12-01T05:00:00Z",
        "region": REGION, "resources": [],
        "detail": {"eventSource": "lambda.amazonaws.com", "eventName": "UpdateAlias20150331",
                   "awsRegion": REGION, "userIdentity": {"arn": "arn:aws:iam::123456789012:user/alice"},
                   "requestParameters": {"functionName": victim, "name": "live"}},
    });
    consumer.handle(QUEUE, "m-1", &event.to_string()).await;
    let told = requests.recv().await.unwrap();
    assert_eq!(
        told,
        Target::new("LambdaStage", "bench", &stages[0].name_any())
    );
    reconcile(&inventory, &stages[0], &mut statuses[0]).await;
    let repaired = seeder
        .lambda()
        .get_alias()
        .function_name(&victim)
        .name("live")
        .send()
        .await
        .unwrap();
    assert_ne!(repaired.function_version(), Some("$LATEST"));
    let latency = started.elapsed();

    // Projection to 10,000 functions (half aliased) on AWS: listings page at 50 functions
    // (`ListFunctions`), refreshed once per max age while resyncs are spread over the interval.
    let project = |aliases_per_resync: f64| {
        let pages = 10_000.0 / 50.0 + 1.0;
        let listings_per_s = pages / MAX_AGE.as_secs_f64();
        let aliases_per_s = aliases_per_resync / RESYNC.as_secs_f64();
        listings_per_s + aliases_per_s
    };
    let without = project(5000.0);
    // Healthy: every alias once per 60–90 min (75 on average).
    let with = project(5000.0 * RESYNC.as_secs_f64() / 4500.0);
    let with_longer_max_age = 201.0 / RESYNC.as_secs_f64() + 5000.0 / 4500.0;
    println!(
        "| N | aliased | resync cycle: Lambda calls without feed | GetAlias | with healthy feed | GetAlias |"
    );
    println!("|---|---|---|---|---|---|");
    println!("| {n} | {aliased} | {polling} | {polling_aliases} | {fed} | {fed_aliases} |");
    println!();
    println!("without feed: {polling_calls}");
    println!("with feed: {fed_calls}");
    println!();
    println!(
        "hand UpdateAlias → CloudTrail event handled → owner told → round → alias repaired: {latency:?}"
    );
    println!();
    println!(
        "projection, 10,000 functions (5,000 aliased), resync {}s, max age {}s: without feed {without:.1} calls/s ({:.0}% of {LAMBDA_QUOTA}/s); with feed {with:.1} calls/s ({:.0}%); with feed and --inventory-max-age 5m {with_longer_max_age:.1} calls/s ({:.0}%)",
        RESYNC.as_secs(),
        MAX_AGE.as_secs(),
        100.0 * without / LAMBDA_QUOTA,
        100.0 * with / LAMBDA_QUOTA,
        100.0 * with_longer_max_age / LAMBDA_QUOTA,
    );
    for line in bench_support::memory_lines() {
        println!("{line}");
    }
}
