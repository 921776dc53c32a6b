//! Which queues to poll, and for whom: each kind's controller declares, from its cache, the
//! event queues its objects name (`Reconciler::event_queues`); the feed polls every distinct
//! queue while at least one object names it, and knows which objects to tell when a queue's
//! health changes.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use tokio::sync::watch;

use super::trigger::Target;

/// One queue in one region, as a spec names it (name or ARN).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventQueue {
    pub region: String,
    pub queue: String,
}

impl EventQueue {
    pub fn new(region: &str, queue: &str) -> Self {
        Self {
            region: region.to_owned(),
            queue: queue.to_owned(),
        }
    }
}

impl std::fmt::Display for EventQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.region, self.queue)
    }
}

/// The objects naming each queue.
pub type QueueUsers = BTreeMap<EventQueue, BTreeSet<Target>>;

/// Every kind's declaration.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Demand {
    by_kind: BTreeMap<String, QueueUsers>,
}

impl Demand {
    /// Every queue some object names.
    pub fn queues(&self) -> BTreeSet<EventQueue> {
        self.by_kind
            .values()
            .flat_map(|users| users.keys().cloned())
            .collect()
    }

    /// The objects naming `queue`, whatever their kind.
    pub fn users(&self, queue: &EventQueue) -> Vec<Target> {
        self.by_kind
            .values()
            .filter_map(|users| users.get(queue))
            .flatten()
            .cloned()
            .collect()
    }
}

/// The shared declarations. Cheap to clone (clones share them).
#[derive(Clone, Debug)]
pub struct QueueDemand {
    sender: Arc<watch::Sender<Demand>>,
}

impl Default for QueueDemand {
    fn default() -> Self {
        Self {
            sender: Arc::new(watch::Sender::new(Demand::default())),
        }
    }
}

impl QueueDemand {
    /// `kind`'s objects now name these queues (replacing what the kind declared before).
    /// Subscribers are woken only when something changed.
    pub fn declare(&self, kind: &str, users: QueueUsers) {
        self.sender.send_if_modified(|demand| {
            let before = demand.by_kind.get(kind);
            if before == Some(&users) || (before.is_none() && users.is_empty()) {
                return false;
            }
            demand.by_kind.insert(kind.to_owned(), users);
            true
        });
    }

    pub fn subscribe(&self) -> watch::Receiver<Demand> {
        self.sender.subscribe()
    }

    /// The declarations now.
    pub fn current(&self) -> Demand {
        self.sender.borrow().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queues_are_polled_while_some_object_names_them() {
        let demand = QueueDemand::default();
        let mut changes = demand.subscribe();
        let queue = EventQueue::new("eu-west-1", "spot-events");
        let fleet = |name: &str| Target::new("SpotFleet", "shop", name);
        demand.declare("SpotFleet", QueueUsers::new());
        assert!(!changes.has_changed().unwrap(), "nothing declared yet");
        demand.declare(
            "SpotFleet",
            QueueUsers::from([(queue.clone(), BTreeSet::from([fleet("a"), fleet("b")]))]),
        );
        assert!(changes.has_changed().unwrap());
        let now = changes.borrow_and_update().clone();
        assert_eq!(now.queues(), BTreeSet::from([queue.clone()]));
        assert_eq!(now.users(&queue), [fleet("a"), fleet("b")]);
        // The same again: no wake-up.
        demand.declare(
            "SpotFleet",
            QueueUsers::from([(queue.clone(), BTreeSet::from([fleet("a"), fleet("b")]))]),
        );
        assert!(!changes.has_changed().unwrap());
        demand.declare("SpotFleet", QueueUsers::new());
        assert_eq!(demand.current().queues(), BTreeSet::new());
    }
}
