//! The event feed's benchmark: Lambda control-plane calls of a steady-state resync with and
//! without a healthy feed, and the time from a hand change of an alias to its repair when the
//! change's CloudTrail event arrives. Counted by the test floor's proxy (moto, or moto behind
//! the proxy's `ListFunctions` paging when it has it), turned into calls per second at the
//! controller's default cadences (docs/benchmarks.md, "Event feed").
//!
//! Not a test: `cargo run -p stagehand --example bench_feed [-- N]` (default N = 1000). N
//! functions in stages of 10; every other stage has the alias `live` (half the functions). Every
//! function already runs its stage's artifact; the first converge tags them, publishes a version
//! and creates the aliases. The inventory runs with the defaults (`--inventory-max-age` 30 s,
//! `--feed-backstop-max-age` 10 min). Then three resync cycles (one round per stage), each
//! started past the 30 s max age, as a resync minutes after the last one finds the inventory:
//! without a feed (everything forgotten first), with a healthy feed, and with the feed failing
//! again; then one hand `UpdateAlias` answered through the feed's own consumer (the message as
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
use stagehand::inventory::sqs::QueueFeed;
use stagehand::inventory::{DEFAULT_FEED_BACKSTOP, Inventory};
use stagehand::lambda_stage::round::{ActScope, RoundOptions, round};
use stagehand::runtime::Metrics;
use stagehand_crds::{LambdaStage, LambdaStageStatus};
use stagehand_testenv::aws::seed::{Seeder, deterministic_zip};
use stagehand_testenv::aws::{AwsFloor, REGION};

mod bench_support;

const STAGE_SIZE: usize = 10;
const BUCKET: &str = "feed-artifacts";
const QUEUE: &str = "stagehand-events";
/// The controller's defaults: `--inventory-max-age` (the bench's inventory runs with it) and
/// the resync interval.
const MAX_AGE: Duration = Duration::from_secs(30);
const RESYNC: Duration = Duration::from_secs(300);
/// How often a healthy feed has each alias read: every 60-90 min, 75 on average.
const ALIAS_BACKSTOP_MEAN: Duration = Duration::from_secs(4500);
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

/// What one resync cycle cost Lambda.
struct Cycle {
    lambda: u64,
    get_alias: u64,
    list_functions: u64,
    breakdown: String,
    took: Duration,
}

/// Lambda calls of one resync cycle (every stage once, started once the listings read before
/// it are past the max age), by operation.
async fn resync_cycle(
    floor: &AwsFloor,
    inventory: &Inventory,
    stages: &[LambdaStage],
    statuses: &mut [Option<LambdaStageStatus>],
) -> Cycle {
    // A benchmark, not a test: waiting out the max age is the point.
    tokio::time::sleep(MAX_AGE + Duration::from_secs(1)).await;
    floor.reset_calls().await.unwrap();
    let started = Instant::now();
    for (stage, status) in stages.iter().zip(statuses.iter_mut()) {
        reconcile(inventory, stage, status).await;
    }
    let took = started.elapsed();
    let calls = floor.calls().await.unwrap();
    let lambda: u64 = calls
        .calls
        .iter()
        .filter(|(key, _)| key.starts_with("lambda/"))
        .map(|(_, stats)| stats.count)
        .sum();
    Cycle {
        lambda,
        get_alias: calls.count("lambda", "GetAlias"),
        list_functions: calls.count("lambda", "ListFunctions"),
        breakdown: bench_support::breakdown(&bench_support::by_operation(&calls)),
        took,
    }
}

/// `ListFunctions` calls of one listing of the region (moto: one page; AWS and the proxy's
/// paging: one per 50 functions), and how long it took.
async fn one_listing(floor: &AwsFloor, inventory: &Inventory) -> (u64, Duration) {
    let lambda = inventory.lambda(REGION);
    lambda.functions_changed();
    floor.reset_calls().await.unwrap();
    let started = Instant::now();
    lambda.ensure_listed().await.unwrap();
    let took = started.elapsed();
    let pages = floor
        .calls()
        .await
        .unwrap()
        .count("lambda", "ListFunctions");
    (pages, took)
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
    // The inventory knows the controller-wide queue; the feed's health decides. Every stage's
    // first round is a spec change, which the controller answers with a listing read after
    // the object's watch event (`runtime::queue_clock::noticed_at`); this bench drives rounds
    // without the runtime, so it says the same with a fresh floor past the whole converge:
    // everything was seeded before the inventory existed, so any listing it reads is fresh
    // enough. Without it, 1,000 new stages relist 10,000 functions (200 pages) each. Only the
    // converge (setup) sees it: the measured cycles run over converged stages.
    let inventory = Inventory::new(aws, MAX_AGE)
        .with_fresh_floor(Duration::from_secs(24 * 3600))
        .with_event_queue(Some(QUEUE.into()));
    let mut statuses: Vec<Option<LambdaStageStatus>> = vec![None; stages.len()];
    for (stage, status) in stages.iter().zip(statuses.iter_mut()) {
        let mut rounds = 0;
        while reconcile(&inventory, stage, status).await {
            rounds += 1;
            assert!(rounds < 10, "{} does not converge", stage.name_any());
        }
    }
    let aliased = n / 2;
    let (pages, listing_took) = one_listing(&floor, &inventory).await;

    // Without a feed (or with an unhealthy one): the listing and the aliases at every resync.
    inventory.forget(REGION);
    let polling = resync_cycle(&floor, &inventory, &stages, &mut statuses).await;
    // A healthy feed: the poller's record, as `feed::run` leaves it after messages arrived. The
    // listing and the aliases read in the cycle above stay trusted (10 min, 60-90 min).
    let queues = inventory.sqs(REGION);
    queues.feed_polled(QUEUE, QueueFeed::Polling);
    queues.feed_heard(QUEUE);
    let fed = resync_cycle(&floor, &inventory, &stages, &mut statuses).await;
    // The feed fails: back to the max age at once, for the listing and the aliases alike.
    let failing = QueueFeed::Failing {
        reason: "QueueNotFound".into(),
        message: "bench".into(),
    };
    queues.feed_polled(QUEUE, failing);
    let stopped = resync_cycle(&floor, &inventory, &stages, &mut statuses).await;

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

    report(
        n,
        aliased,
        (pages, listing_took),
        [&polling, &fed, &stopped],
        latency,
    );
    for line in bench_support::memory_lines() {
        println!("{line}");
    }
}

/// Prints the cycles and the steady state at the controller's cadences: the listing once per
/// listing age (30 s; 10 min on a healthy feed), each alias once per resync (5 min; 60-90 min
/// on a healthy feed), as resyncs spread over their interval.
fn report(
    n: usize,
    aliased: usize,
    (pages, listing_took): (u64, Duration),
    [polling, fed, stopped]: [&Cycle; 3],
    latency: Duration,
) {
    println!("one listing of {n} functions: {pages} ListFunctions call(s), {listing_took:.1?}");
    println!();
    println!(
        "| resync cycle ({} stages) | Lambda calls | GetAlias | ListFunctions | took |",
        n / STAGE_SIZE
    );
    println!("|---|---|---|---|---|");
    for (name, cycle) in [
        ("no feed", polling),
        ("healthy feed", fed),
        ("feed failing again", stopped),
    ] {
        println!(
            "| {name} | {} | {} | {} | {:.1?} |",
            cycle.lambda, cycle.get_alias, cycle.list_functions, cycle.took
        );
    }
    println!();
    for (name, cycle) in [
        ("no feed", polling),
        ("healthy feed", fed),
        ("feed failing again", stopped),
    ] {
        println!("{name}: {}", cycle.breakdown);
    }
    println!();
    let pages = pages as f64;
    let aliases = polling.get_alias as f64;
    let without = pages / MAX_AGE.as_secs_f64() + aliases / RESYNC.as_secs_f64();
    let with =
        pages / DEFAULT_FEED_BACKSTOP.as_secs_f64() + aliases / ALIAS_BACKSTOP_MEAN.as_secs_f64();
    println!(
        "steady state, {n} functions ({aliased} aliased), {pages} ListFunctions page(s) per listing, resync {}s: without feed {without:.2} calls/s ({:.1}% of {LAMBDA_QUOTA}/s); with a healthy feed {with:.2} calls/s ({:.1}%)",
        RESYNC.as_secs(),
        100.0 * without / LAMBDA_QUOTA,
        100.0 * with / LAMBDA_QUOTA,
    );
    println!();
    println!(
        "hand UpdateAlias → CloudTrail event handled → owner told → round → alias repaired: {latency:?}"
    );
}
