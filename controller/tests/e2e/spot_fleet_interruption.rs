//! SpotFleet interruptions through the AWS event feed, end to end: the production controllers
//! (`stagehand::kinds::registry()`, which starts the feed with them) against the Kubernetes API
//! stand-in and moto behind the proxy. Events are sent to the queue with the AWS CLI, in the
//! envelope EventBridge delivers (moto never interrupts an instance).
//!
//! Every fleet here resyncs every ten minutes: whatever it does within the test's bounded waits
//! after a message is the feed's doing (`reconcile_on`), not polling.

#![allow(
    clippy::unwrap_used,
    reason = "a test module: a panic with its location is the failure report we want"
)]

use std::collections::BTreeSet;
use std::time::Duration;

use kube::api::{Api, PostParams};
use serde_json::json;
use stagehand::base::conditions::find_condition;
use stagehand_crds::SpotFleet;
use stagehand_crds::condition::INTERRUPTION_QUEUE_READY;

use crate::event_queue_template::aws_cli;
use crate::spot_fleet::{event_reasons, fleet, wait_fleet, wait_ready};
use crate::spot_fleet_round::{fleet_spec, live_of, network};
use crate::support::{Env, NAMESPACE, REGION};

const QUEUE: &str = "spot-events";

/// An event as EventBridge delivers it to SQS.
fn event(detail_type: &str, detail: &serde_json::Value) -> String {
    json!({
        "version": "0",
        "id": format!("e2e-{}", next_id()),
        "detail-type": detail_type,
        "source": "aws.ec2",
        "account": "123456789012",
        "time": "2026-12-01T02:00:00Z",
        "region": REGION,
        "resources": [],
        "detail": detail,
    })
    .to_string()
}

fn next_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

fn interruption_warning(instance: &str) -> String {
    event(
        "EC2 Spot Instance Interruption Warning",
        &json!({"instance-id": instance, "instance-action": "terminate"}),
    )
}

async fn create_queue(env: &Env) {
    env.sqs()
        .create_queue()
        .queue_name(QUEUE)
        .send()
        .await
        .unwrap();
}

/// Sends `body` to the queue with the AWS CLI, through the proxy.
async fn send(env: &Env, body: &str) {
    let url = env.queue_url(QUEUE).await;
    aws_cli(
        &env.floor.endpoint_url(),
        &[
            "sqs",
            "send-message",
            "--queue-url",
            &url,
            "--message-body",
            body,
        ],
    )
    .await;
}

/// A fleet of `capacity` naming the queue, resyncing every ten minutes.
fn interruptible(
    network: &crate::spot_fleet_round::Network,
    name: &str,
    capacity: i32,
) -> SpotFleet {
    fleet(
        name,
        &fleet_spec(
            network,
            capacity,
            &json!({"interruptionQueue": QUEUE, "resyncInterval": "10m"}),
        ),
    )
}

/// `InterruptionQueueReady`'s (status, reason).
fn queue_condition(fleet: &SpotFleet) -> Option<(String, String)> {
    let status = fleet.status.as_ref()?;
    find_condition(&status.common.conditions, INTERRUPTION_QUEUE_READY)
        .map(|c| (c.status.clone(), c.reason.clone()))
}

/// Polls (bounded) until `owner` runs `capacity` live instances none of which is in `gone`.
async fn wait_replaced(
    env: &Env,
    owner: &str,
    capacity: usize,
    gone: &BTreeSet<String>,
) -> BTreeSet<String> {
    env.wait_aws("the replacement", || async {
        let live = live_of(&env.aws, owner).await;
        (live.len() == capacity && live.is_disjoint(gone)).then_some(live)
    })
    .await
}

/// The positions in the proxy's log (after `from`) of the first `CreateFleet` and the first
/// `TerminateInstances`.
async fn launch_and_termination(env: &Env, from: u64) -> (usize, usize) {
    let log: Vec<_> = env
        .log()
        .await
        .into_iter()
        .filter(|r| r.seq > from)
        .collect();
    let launch = log.iter().position(|r| r.operation == "CreateFleet");
    let termination = log.iter().position(|r| r.operation == "TerminateInstances");
    (launch.unwrap(), termination.unwrap())
}

async fn last_seq(env: &Env) -> u64 {
    env.log().await.last().map_or(0, |r| r.seq)
}

fn feed_messages(env: &Env, kind: &str, result: &str) -> u64 {
    env.ctx
        .metrics
        .feed
        .messages
        .with_label_values(&[kind, result])
        .get()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interruption_warning_launches_the_replacement_before_retiring_the_instance() {
    let mut env = Env::start().await;
    let network = network(&env.aws).await;
    create_queue(&env).await;
    env.start_controllers().await;
    let fleets: Api<SpotFleet> = Api::namespaced(env.ctx.client.clone(), NAMESPACE);
    for (name, capacity) in [("workers", 2), ("others", 1)] {
        fleets
            .create(
                &PostParams::default(),
                &interruptible(&network, name, capacity),
            )
            .await
            .unwrap();
    }
    for name in ["workers", "others"] {
        wait_ready(&fleets, name).await;
        wait_fleet(&fleets, name, "saw the queue polled", |f| {
            queue_condition(f) == Some(("True".into(), "Polling".into()))
        })
        .await;
    }
    let workers_owner = "shop/SpotFleet/workers";
    let others_owner = "shop/SpotFleet/others";
    let workers = live_of(&env.aws, workers_owner).await;
    let others = live_of(&env.aws, others_owner).await;
    let victim = workers.iter().next().unwrap().clone();

    // Junk first: an event of a kind Stagehand does not handle, and a body that is no event.
    send(
        &env,
        &event("EC2 AMI State Change", &json!({"ImageId": "ami-1"})),
    )
    .await;
    send(&env, "garbage {").await;
    // The warning: about two minutes before EC2 takes `victim`.
    let from = last_seq(&env).await;
    let sent = std::time::Instant::now();
    send(&env, &interruption_warning(&victim)).await;
    let replaced = wait_replaced(&env, workers_owner, 2, &BTreeSet::from([victim.clone()])).await;
    let fleet = wait_ready(&fleets, "workers").await;
    eprintln!(
        "interruption warning sent → replacement launched, victim terminated, fleet Ready: {:?}",
        sent.elapsed()
    );

    // Surge-first: the replacement's launch comes before the interrupted instance's end.
    let (launch, termination) = launch_and_termination(&env, from).await;
    assert!(
        launch < termination,
        "CreateFleet at {launch}, TerminateInstances at {termination}"
    );
    let calls = env.log().await;
    let window: Vec<_> = calls.iter().filter(|r| r.seq > from).collect();
    let mut counts = std::collections::BTreeMap::new();
    for record in &window {
        *counts
            .entry(format!("{}:{}", record.service, record.operation))
            .or_insert(0) += 1;
    }
    eprintln!("AWS calls from the warning to a Ready fleet: {counts:?}");
    assert_eq!(
        window
            .iter()
            .filter(|r| r.operation == "CreateFleet")
            .count(),
        1
    );
    assert_eq!(
        window
            .iter()
            .filter(|r| r.operation == "TerminateInstances")
            .count(),
        1
    );
    assert_eq!(
        replaced.intersection(&workers).count(),
        1,
        "only the victim replaced"
    );
    let status = fleet.status.unwrap();
    assert_eq!(status.ready_capacity, 2);
    assert_eq!(status.interruptions, 1);
    assert_eq!(
        live_of(&env.aws, others_owner).await,
        others,
        "the other fleet untouched"
    );
    let reasons = event_reasons(&env, "workers").await;
    assert!(
        reasons.iter().any(|r| r == "SpotInterruption"),
        "{reasons:?}"
    );
    let counted = env
        .ctx
        .metrics
        .spot_interruptions_total
        .with_label_values(&["shop/workers"])
        .get();
    assert_eq!(counted, 1);

    // Junk deleted and counted, the warning handled: the queue is empty.
    let sqs = env.ctx.aws.sqs(REGION);
    env.wait_aws("an empty queue", || async {
        let queue = sqs.resolve(QUEUE).await.unwrap().unwrap();
        (queue.visible == 0 && queue.in_flight == 0).then_some(())
    })
    .await;
    assert_eq!(feed_messages(&env, "unknown", "deleted_unknown"), 1);
    assert_eq!(feed_messages(&env, "unparsable", "deleted_unparsable"), 1);
    assert_eq!(feed_messages(&env, "interruption_warning", "handled"), 1);
    assert_eq!(feed_messages(&env, "interruption_warning", "failed"), 0);

    // A warning for the other fleet's instance replaces that one and never touches this fleet.
    let their_victim = others.iter().next().unwrap().clone();
    send(&env, &interruption_warning(&their_victim)).await;
    wait_replaced(&env, others_owner, 1, &BTreeSet::from([their_victim])).await;
    wait_ready(&fleets, "others").await;
    assert_eq!(live_of(&env.aws, workers_owner).await, replaced);
    let fleet = fleets.get("workers").await.unwrap();
    assert_eq!(fleet.status.unwrap().interruptions, 1);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_queue_shows_on_the_fleet_and_rebalance_and_state_changes_replace_at_once() {
    // Listings are trusted for ten minutes: what the fleet sees of a hand stop within the test
    // is what the state-change event made it read.
    let mut env = Env::start_with_inventory_max_age(Duration::from_secs(600)).await;
    let network = network(&env.aws).await;
    env.start_controllers().await;
    let fleets: Api<SpotFleet> = Api::namespaced(env.ctx.client.clone(), NAMESPACE);
    fleets
        .create(
            &PostParams::default(),
            &interruptible(&network, "workers", 2),
        )
        .await
        .unwrap();
    wait_ready(&fleets, "workers").await;
    // No queue yet: the fleet says so.
    let fleet = wait_fleet(&fleets, "workers", "reported the missing queue", |f| {
        queue_condition(f) == Some(("False".into(), "QueueNotFound".into()))
    })
    .await;
    let message = find_condition(
        &fleet.status.unwrap().common.conditions,
        INTERRUPTION_QUEUE_READY,
    )
    .unwrap()
    .message
    .clone();
    assert!(message.contains(QUEUE), "{message}");
    create_queue(&env).await;
    wait_fleet(&fleets, "workers", "saw the queue polled", |f| {
        queue_condition(f) == Some(("True".into(), "Polling".into()))
    })
    .await;

    let owner = "shop/SpotFleet/workers";
    let before = live_of(&env.aws, owner).await;
    let rebalanced = before.iter().next().unwrap().clone();
    let from = last_seq(&env).await;
    send(
        &env,
        &event(
            "EC2 Instance Rebalance Recommendation",
            &json!({"instance-id": rebalanced}),
        ),
    )
    .await;
    let after = wait_replaced(&env, owner, 2, &BTreeSet::from([rebalanced])).await;
    let (launch, termination) = launch_and_termination(&env, from).await;
    assert!(launch < termination, "replaced early, surge-first");
    wait_ready(&fleets, "workers").await;
    assert_eq!(
        feed_messages(&env, "rebalance_recommendation", "handled"),
        1
    );

    // Stopped by hand: the state change makes the fleet read EC2 afresh and replace it.
    let stopped = after.iter().next().unwrap().clone();
    aws_sdk_ec2::Client::new(&env.sdk)
        .stop_instances()
        .instance_ids(&stopped)
        .send()
        .await
        .unwrap();
    send(
        &env,
        &event(
            "EC2 Instance State-change Notification",
            &json!({"instance-id": stopped, "state": "stopped"}),
        ),
    )
    .await;
    wait_replaced(&env, owner, 2, &BTreeSet::from([stopped])).await;
    wait_ready(&fleets, "workers").await;
    assert_eq!(feed_messages(&env, "state_change", "handled"), 1);
    env.stop().await;
}
