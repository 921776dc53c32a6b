//! The AWS write fence (`controller/src/aws/fence.rs`) through the one door every AWS call
//! takes (`aws::call::Caller`), against moto behind the counting proxy: a replica whose leader
//! lease is not confirmed by a recent renewal sends no write to any service — not one request
//! reaches the proxy — while its reads go on; the production controllers (LambdaStage here, the
//! same door for every kind and the feed) plan but write nothing until the fence opens.

#![allow(
    clippy::unwrap_used,
    reason = "a test module: a panic with its location is the failure report we want"
)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use stagehand::aws::fence::Refusal;
use stagehand::aws::{AwsProvider, AwsSettings, ErrorKind, WriteFence};
use stagehand::runtime::{Context, Metrics};
use stagehand::settings::Settings;
use stagehand_testenv::aws::{CallRecord, FaultAction, FaultRule};
use tokio::time::Instant;

use crate::support::{Aws, Env, REGION, chalice_stage, ready, seed};

/// A request that changes something (the proxy names the operation).
fn is_write(record: &CallRecord) -> bool {
    stagehand::aws::fence::is_write(&record.operation)
}

/// Writes refused by the fence so far (`stagehand_aws_api_requests_total{result="fenced"}`).
fn fenced_writes(metrics: &Metrics) -> u64 {
    metrics
        .render()
        .unwrap()
        .lines()
        .filter(|l| {
            l.starts_with("stagehand_aws_api_requests_total") && l.contains("result=\"fenced\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_fence_keeps_every_service_write_off_the_wire() {
    let aws = Aws::start().await;
    let metrics = Metrics::new().unwrap();
    let fence = WriteFence::closed();
    let provider = AwsProvider::new(aws.sdk.clone(), metrics.aws.clone(), AwsSettings::default())
        .with_write_fence(fence.clone());
    let tags = BTreeMap::from([("k".to_owned(), "v".to_owned())]);
    let ids = ["i-0123456789abcdef0".to_owned()];
    let refused = [
        provider.ec2(REGION).terminate_instances(&ids).await.err(),
        provider.ec2(REGION).create_tags(&ids, &tags).await.err(),
        provider
            .lambda(REGION)
            .delete_event_source_mapping("0000")
            .await
            .err(),
        provider
            .cloudformation(REGION)
            .delete_stack("shop")
            .await
            .err(),
        provider
            .s3(REGION)
            .create_bucket("fenced-bucket")
            .await
            .err(),
        provider
            .s3(REGION)
            .put_bucket_tags("fenced-bucket", &tags)
            .await
            .err(),
        provider
            .cloudfront(REGION)
            .tag_distribution("arn:aws:cloudfront::123456789012:distribution/E1", &tags)
            .await
            .err(),
    ];
    for error in &refused {
        let error = error.as_ref().expect("a fenced write succeeded");
        assert_eq!(error.kind, ErrorKind::Fenced, "{error}");
        assert!(
            error.to_string().contains("does not hold the leader lease"),
            "{error}"
        );
    }
    // Reads are not fenced: a standby may observe.
    provider.lambda(REGION).list_functions().await.unwrap();
    let log = aws.floor.admin().log().await.unwrap();
    let writes: Vec<&CallRecord> = log.iter().filter(|r| is_write(r)).collect();
    assert!(writes.is_empty(), "fenced writes reached AWS: {writes:?}");
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(fenced_writes(&metrics), refused.len() as u64);

    // Opened by a renewal: the same write goes out (and moto answers it).
    fence.open_until(Instant::now() + Duration::from_secs(60));
    provider
        .s3(REGION)
        .create_bucket("fenced-bucket")
        .await
        .unwrap();
    let log = aws.floor.admin().log().await.unwrap();
    assert_eq!(
        log.iter()
            .filter(|r| is_write(r))
            .map(|r| r.operation.as_str())
            .collect::<Vec<_>>(),
        ["CreateBucket"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_in_flight_when_the_fence_closes_is_abandoned() {
    let aws = Aws::start().await;
    // moto answers this write only after 5 s: far past the fence's deadline.
    aws.floor
        .add_fault(
            &FaultRule::new(FaultAction::latency(Duration::from_secs(5))).operation("CreateBucket"),
        )
        .await
        .unwrap();
    let fence = WriteFence::closed();
    let provider = AwsProvider::new(
        aws.sdk.clone(),
        Metrics::new().unwrap().aws.clone(),
        AwsSettings::default(),
    )
    .with_write_fence(fence.clone());
    let started = Instant::now();
    fence.open_until(started + Duration::from_millis(500));
    let error = provider.s3(REGION).create_bucket("slow").await.unwrap_err();
    let took = started.elapsed();
    assert_eq!(error.kind, ErrorKind::Fenced, "{error}");
    assert!(
        took >= Duration::from_millis(500) && took < Duration::from_secs(3),
        "abandoned after {took:?}"
    );
    assert!(
        matches!(fence.check(Instant::now()), Err(Refusal::RenewalOverdue(_))),
        "the fence stays closed without a renewal"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_without_a_confirmed_lease_plans_but_writes_nothing() {
    let mut env = Env::start().await;
    seed(&env).await;
    // A replica with leader election whose lease was never renewed: its fence is closed.
    env.ctx = Arc::new(Context::new(
        env.ctx.client.clone(),
        env.sdk.clone(),
        Metrics::new().unwrap(),
        Settings {
            leader_election: true,
            ..env.ctx.settings.clone()
        },
    ));
    env.floor.admin().reset_calls().await.unwrap();
    let before = env.floor.admin().log().await.unwrap().len();
    env.start_controllers().await;
    let name = "shop-api-dev";
    env.create(&chalice_stage(name, "Retain", None)).await;

    // Reconciles ran (AWS was read, the adoption and code update planned) and every write was
    // refused: the round stops at its first refused action and is retried with backoff.
    env.wait_aws("two fenced rounds", || async {
        (fenced_writes(&env.ctx.metrics) >= 2).then_some(())
    })
    .await;
    let log = env.floor.admin().log().await.unwrap();
    let writes: Vec<&CallRecord> = log[before..].iter().filter(|r| is_write(r)).collect();
    assert!(
        writes.is_empty(),
        "a fenced replica wrote to AWS: {writes:?}"
    );
    assert!(
        log[before..].iter().any(|r| r.operation == "ListFunctions"),
        "the replica did not even observe"
    );
    let stage = env.stages().get(name).await.unwrap();
    assert!(!ready(&stage), "Ready without a single write");

    // A renewal opens the fence: the same controllers converge.
    env.ctx
        .aws
        .write_fence()
        .open_until(Instant::now() + Duration::from_secs(3600));
    env.wait_for(name, "Ready once the fence opened", ready)
        .await;
    let log = env.floor.admin().log().await.unwrap();
    assert!(log.iter().any(|r| r.operation == "UpdateFunctionCode"));
    env.stop().await;
}
