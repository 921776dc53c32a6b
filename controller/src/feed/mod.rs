//! The AWS event feed: EventBridge delivers AWS's change events to an SQS queue; Stagehand
//! long-polls it, maps each event to the objects it concerns, and asks their controllers to
//! reconcile now (kube-runtime's `Controller::reconcile_on`). Polling stays the backstop: an
//! event lost, dropped or never sent is seen at the next resync.
//!
//! Kind-agnostic by construction:
//! - **which queues**: each kind declares the queues its objects name
//!   (`Reconciler::event_queues`, gathered by the runtime into [`QueueDemand`]); every
//!   distinct (region, queue) gets one poller while some object names it ([`run`]);
//! - **what an event means**: [`event`] parses the EventBridge envelope and each detail shape
//!   strictly; [`effect`] decides what it asks for (pure); [`consumer`] carries it out through
//!   the shared inventory (owner by instance id, notices, stale listings);
//! - **who must look**: an owner tag names `<namespace>/<Kind>/<name>`, which is a
//!   [`Target`]; [`Triggers`] routes it to that kind's controller.
//!
//! SpotFleet is the first user (interruption warnings, rebalance recommendations, state changes,
//! AWS Health scheduled changes, on its `interruptionQueue`). LambdaStage and StaticSite rely
//! on the controller-wide queue (`--event-queue`): S3 `Object Created` for the artifacts and
//! sources they watch, CloudTrail writes to their functions, buckets and distributions, and
//! the creations a listing would find — a function under a stage's selector prefix, a mapping,
//! a layer version ([`change`]) — and a heartbeat whose silence marks the feed unhealthy. While
//! the feed is healthy, drift-only reads (aliases) slow to an hourly cadence and the region's
//! Lambda listings are trusted for `--feed-backstop-max-age` (`inventory::ListingAge`);
//! otherwise polling is as it always was.
//!
//! Only the leader polls: the runtime starts the feed with the controllers, after the lease is
//! acquired (`runtime::manager::run_controllers`).

pub mod change;
pub mod consumer;
pub mod demand;
pub mod effect;
pub mod event;
pub mod metrics;
pub mod poller;
pub mod trigger;

use std::collections::BTreeMap;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use tokio::sync::watch;

pub use self::consumer::{Consumer, Disposition};
pub use self::demand::{
    Demand, EventQueue, FeedInterest, QueueDemand, QueueUsers, Watched, Watchers,
};
pub use self::metrics::FeedMetrics;
use self::poller::Poller;
pub use self::trigger::{Target, Triggers};
use crate::inventory::Inventory;

/// What the feed shares with the controllers: where reconcile-now requests go, and which
/// queues the objects name. Cheap to clone (clones share both).
#[derive(Clone, Debug, Default)]
pub struct FeedHub {
    pub triggers: Triggers,
    pub demand: QueueDemand,
    /// `--event-feed-identity`: whose CloudTrail calls are Stagehand's own.
    pub identity: Option<String>,
}

impl FeedHub {
    /// A hub that recognises CloudTrail calls made as `identity` as Stagehand's own.
    pub fn with_identity(identity: Option<String>) -> Self {
        Self {
            identity: identity.filter(|arn| !arn.is_empty()),
            ..Self::default()
        }
    }
}

/// Stagehand's own identity when `--event-feed-identity` is not given and the controller-wide
/// queue (whose CloudTrail events it tells apart) is: STS `GetCallerIdentity`, once per start.
/// An assumed-role session is compared as its role (`change::same_principal`), so IRSA's
/// session renames do not matter. If STS cannot be reached, every write of Stagehand's own
/// comes back as one extra round, nothing worse; the log says how to avoid it.
async fn learn_identity(inventory: &Inventory) -> Option<String> {
    if !inventory.has_event_queue() {
        return None;
    }
    let aws = inventory.aws();
    let region = aws.default_region().unwrap_or("us-east-1").to_owned();
    match aws.sts(&region).caller_arn().await {
        Ok(arn) => {
            tracing::info!(identity = %arn, "event feed: CloudTrail calls made as this identity are Stagehand's own");
            Some(arn)
        }
        Err(error) => {
            tracing::warn!(%error, "event feed: Stagehand's own identity is unknown (set --event-feed-identity): each of its own writes will cost one extra round");
            None
        }
    }
}

/// Runs the feed until `shutdown`: one [`Poller`] per queue some object names, started when the
/// first object names it and stopped when the last one stops naming it. Pollers run inside
/// this future (none is spawned), so dropping it stops every poll.
pub async fn run(
    hub: FeedHub,
    inventory: Inventory,
    metrics: FeedMetrics,
    shutdown: impl Future<Output = ()>,
) {
    let identity = match &hub.identity {
        Some(identity) => Some(identity.clone()),
        None => learn_identity(&inventory).await,
    };
    let consumer = Consumer {
        inventory,
        triggers: hub.triggers.clone(),
        metrics,
        demand: hub.demand.clone(),
        identity,
    };
    let mut demand = hub.demand.subscribe();
    let mut stops: BTreeMap<EventQueue, watch::Sender<bool>> = BTreeMap::new();
    let mut pollers = FuturesUnordered::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let wanted = demand.borrow_and_update().queues();
        stops.retain(|queue, stop| {
            let keep = wanted.contains(queue);
            if !keep {
                stop.send_replace(true);
            }
            keep
        });
        for queue in wanted {
            if stops.contains_key(&queue) {
                continue;
            }
            let (stop, stopped) = watch::channel(false);
            let poller = Poller {
                queue: queue.clone(),
                consumer: consumer.clone(),
                demand: hub.demand.subscribe(),
            };
            pollers.push(poller.run(stopped));
            stops.insert(queue, stop);
        }
        tokio::select! {
            () = &mut shutdown => break,
            changed = demand.changed() => {
                if changed.is_err() {
                    break;
                }
            }
            Some(()) = pollers.next(), if !pollers.is_empty() => {}
        }
    }
    for stop in stops.values() {
        stop.send_replace(true);
    }
    while pollers.next().await.is_some() {}
}
