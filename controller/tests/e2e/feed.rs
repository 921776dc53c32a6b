//! The AWS event feed on its own (`stagehand::feed::run`) against moto through the proxy, with
//! no Kubernetes: a message whose handling failed (EC2 could not be read) stays on the queue and
//! is handled when delivered again; an event about an instance nobody owns is deleted after one
//! fresh listing; the owner's controller is asked to reconcile; a shutdown ends the feed at once
//! even while a 20 s long poll is in flight; a queue nobody names is never polled, and a
//! poller stops when the last object stops naming its queue.

#![allow(
    clippy::unwrap_used,
    reason = "a test module: a panic with its location is the failure report we want"
)]

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use aws_sdk_ec2::types::{InstanceType, ResourceType, Tag, TagSpecification};
use serde_json::json;
use stagehand::feed::{EventQueue, FeedHub, QueueUsers, Target};
use stagehand::inventory::Inventory;
use stagehand::inventory::sqs::QueueFeed;
use stagehand_crds::OWNER_TAG;
use stagehand_testenv::aws::{FaultAction, FaultRule};

use crate::aws_adapters::{Env, REGION};
use crate::spot_fleet_round::IMAGE;

const OWNER: &str = "shop/SpotFleet/a";

fn warning(instance: &str) -> String {
    json!({
        "version": "0",
        "id": format!("warning-{instance}"),
        "detail-type": "EC2 Spot Instance Interruption Warning",
        "source": "aws.ec2",
        "account": "123456789012",
        "time": "2026-12-01T02:00:00Z",
        "region": REGION,
        "resources": [],
        "detail": {"instance-id": instance, "instance-action": "terminate"},
    })
    .to_string()
}

/// Launches one instance tagged for [`OWNER`]; returns its id.
async fn owned_instance(env: &Env) -> String {
    let ec2 = aws_sdk_ec2::Client::new(&env.sdk);
    let launched = ec2
        .run_instances()
        .image_id(IMAGE)
        .instance_type(InstanceType::T3Small)
        .min_count(1)
        .max_count(1)
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::Instance)
                .tags(Tag::builder().key(OWNER_TAG).value(OWNER).build())
                .build(),
        )
        .send()
        .await
        .unwrap();
    launched.instances()[0].instance_id().unwrap().to_owned()
}

fn messages(env: &Env, kind: &str, result: &str) -> u64 {
    env.metrics
        .feed
        .messages
        .with_label_values(&[kind, result])
        .get()
}

async fn wait_until(what: &str, check: impl Fn() -> bool) {
    tokio::time::timeout(Duration::from_secs(30), async {
        while !check() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for {what}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_handling_is_redelivered_unknown_instances_dropped_and_shutdown_is_prompt() {
    let env = Env::start().await;
    let sqs = aws_sdk_sqs::Client::new(&env.sdk);
    // A failed message comes back after a second.
    for name in ["events", "unused"] {
        sqs.create_queue()
            .queue_name(name)
            .attributes(
                aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout,
                "1",
            )
            .send()
            .await
            .unwrap();
    }
    let url = env
        .aws
        .sqs(REGION)
        .resolve("events")
        .await
        .unwrap()
        .unwrap()
        .url;
    let instance = owned_instance(&env).await;

    let inventory = Inventory::new(env.aws.clone(), Duration::from_secs(30));
    let hub = FeedHub::default();
    let mut requests = hub.triggers.subscribe("SpotFleet");
    let queue = EventQueue::new(REGION, "events");
    hub.demand.declare(
        "SpotFleet",
        QueueUsers::from([(
            queue,
            BTreeSet::from([Target::new("SpotFleet", "shop", "a")]),
        )]),
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let feed = tokio::spawn(stagehand::feed::run(
        hub.clone(),
        inventory.clone(),
        env.metrics.feed.clone(),
        async {
            let _ = stopped.await;
        },
    ));
    // The first poll answered: the fleet naming the queue is told (its condition changes).
    let first = tokio::time::timeout(Duration::from_secs(10), requests.recv())
        .await
        .unwrap();
    assert_eq!(first, Some(Target::new("SpotFleet", "shop", "a")));

    // Instances nobody owns: the first event reads the region's listing, finds none, and the
    // listing is too fresh to read again; the second is answered from it. Both are dropped.
    for _ in 0..2 {
        sqs.send_message()
            .queue_url(&url)
            .message_body(warning("i-0fffffffffffffff0"))
            .send()
            .await
            .unwrap();
    }
    wait_until("the unknown instances ignored", || {
        messages(&env, "interruption_warning", "ignored") == 2
    })
    .await;
    let calls = env.floor.calls().await.unwrap();
    assert_eq!(calls.count("ec2", "DescribeInstances"), 1, "{calls:?}");
    assert!(requests.try_recv().is_err(), "nobody to reconcile");

    // EC2 cannot be read (both attempts of a fresh listing fail): the warning stays queued.
    inventory.ec2(REGION).forget_older_than(Duration::ZERO);
    env.floor
        .add_fault(
            &FaultRule::new(FaultAction::error(500))
                .service("ec2")
                .operation("DescribeInstances")
                .times(2),
        )
        .await
        .unwrap();
    sqs.send_message()
        .queue_url(&url)
        .message_body(warning(&instance))
        .send()
        .await
        .unwrap();
    wait_until("a failed handling", || {
        messages(&env, "interruption_warning", "failed") == 1
    })
    .await;
    // Delivered again a second later, handled: the notice is recorded, the owner told.
    wait_until("the redelivered warning handled", || {
        messages(&env, "interruption_warning", "handled") == 1
    })
    .await;
    assert!(inventory.ec2(REGION).notices(&instance).interruption);
    let told = tokio::time::timeout(Duration::from_secs(10), requests.recv())
        .await
        .unwrap();
    assert_eq!(told, Some(Target::new("SpotFleet", "shop", "a")));
    assert_eq!(
        env.metrics
            .feed
            .interruptions
            .with_label_values(&["interruption_warning"])
            .get(),
        1
    );

    // Everything handled was deleted.
    let backlog = env
        .aws
        .sqs(REGION)
        .resolve("events")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((backlog.visible, backlog.in_flight), (0, 0));
    // Nobody names `unused`: it is never polled.
    let metrics = env.metrics.render().unwrap();
    assert!(metrics.contains(r#"stagehand_feed_queue_up{queue="us-east-1/events"} 1"#));
    assert!(!metrics.contains("unused"), "only named queues are polled");

    // Nobody names the queue any more: its poller stops (and forgets its health); named again,
    // it is polled again.
    let sqs_inventory = inventory.sqs(REGION);
    hub.demand.declare("SpotFleet", QueueUsers::new());
    wait_until("the poller stopped", || {
        sqs_inventory.feed("events").is_none()
    })
    .await;
    let receives = env
        .floor
        .calls()
        .await
        .unwrap()
        .count("sqs", "ReceiveMessage");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let idle = env
        .floor
        .calls()
        .await
        .unwrap()
        .count("sqs", "ReceiveMessage");
    assert_eq!(idle, receives, "no poll while nobody names the queue");
    let metrics = env.metrics.render().unwrap();
    assert!(!metrics.contains("stagehand_feed_queue_up{"), "{metrics}");
    hub.demand.declare(
        "SpotFleet",
        QueueUsers::from([(
            EventQueue::new(REGION, "events"),
            BTreeSet::from([Target::new("SpotFleet", "shop", "a")]),
        )]),
    );
    wait_until("the poller restarted", || {
        sqs_inventory.feed("events") == Some(QueueFeed::Polling)
    })
    .await;

    // Shutdown while a long poll waits for messages: the feed ends at once.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let asked = Instant::now();
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), feed)
        .await
        .unwrap()
        .unwrap();
    let took = asked.elapsed();
    eprintln!("feed stopped {took:?} after the shutdown (a 20 s long poll was in flight)");
    assert!(took < Duration::from_secs(2), "{took:?}");
}
