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

/// An AWS resource an object's spec points at, whose changes the object wants to hear of at
/// once: S3 `Object Created` and CloudTrail events are mapped to objects through these.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Watched {
    /// One S3 object (a LambdaStage's artifact, a site's source archive).
    S3Object { bucket: String, key: String },
    /// The objects under a prefix (a site's source prefix).
    S3Prefix { bucket: String, prefix: String },
    /// A bucket's configuration and objects (a site's own bucket: a hand upload or delete
    /// there is drift).
    Bucket(String),
    /// A CloudFront distribution (a site's), by id.
    Distribution(String),
    /// The Lambda functions whose names start with this (a stage's
    /// `functionSelector.namePrefix`): a function created or deleted there changes what the
    /// stage selects, though no owner tag names the stage yet.
    FunctionPrefix(String),
    /// A Lambda layer, by name (a stage's `layers[]`): a version published or deleted may
    /// change what `latest` means.
    Layer(String),
}

impl Watched {
    /// Whether the new or deleted object `bucket`/`key` is (or is under) what this watches.
    pub fn covers_object(&self, bucket: &str, key: &str) -> bool {
        match self {
            Self::S3Object { bucket: b, key: k } => b == bucket && k == key,
            Self::S3Prefix { bucket: b, prefix } => b == bucket && key.starts_with(prefix.as_str()),
            Self::Bucket(b) => b == bucket,
            Self::Distribution(_) | Self::FunctionPrefix(_) | Self::Layer(_) => false,
        }
    }

    /// Whether the function `name` is (or would be) among what this watches.
    pub fn covers_function(&self, name: &str) -> bool {
        matches!(self, Self::FunctionPrefix(prefix) if name.starts_with(prefix.as_str()))
    }
}

/// What an object that relies on the controller-wide event queue (`--event-queue`) wants from
/// it: the queue of its region polled, and the events about these resources mapped to it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct FeedInterest {
    pub region: String,
    pub watches: Vec<Watched>,
}

/// Each object's [`FeedInterest`], by object.
pub type Watchers = BTreeMap<Target, FeedInterest>;

/// Every kind's declaration.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Demand {
    by_kind: BTreeMap<String, QueueUsers>,
    watchers: BTreeMap<String, Watchers>,
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

    /// The objects of `region` (any region: `None`) watching something `matches` accepts,
    /// whatever their kind. A
    /// scan of every declared watch: one event costs microseconds even for thousands of
    /// objects, and an index would have to be rebuilt on every spec change.
    pub fn watchers(
        &self,
        region: Option<&str>,
        matches: impl Fn(&Watched) -> bool,
    ) -> Vec<Target> {
        self.watchers
            .values()
            .flatten()
            .filter(|(_, interest)| {
                region.is_none_or(|r| interest.region == r) && interest.watches.iter().any(&matches)
            })
            .map(|(target, _)| target.clone())
            .collect()
    }

    /// Every object relying on the controller-wide queue.
    pub fn relying(&self) -> Vec<Target> {
        self.watchers
            .values()
            .flat_map(|watchers| watchers.keys().cloned())
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

    /// `kind`'s objects relying on the controller-wide queue now watch these (replacing what
    /// the kind declared before). Pollers do not depend on it: nobody is woken.
    pub fn declare_watchers(&self, kind: &str, watchers: Watchers) {
        self.sender.send_if_modified(|demand| {
            if watchers.is_empty() {
                demand.watchers.remove(kind);
            } else {
                demand.watchers.insert(kind.to_owned(), watchers);
            }
            false
        });
    }

    /// [`Demand::watchers`] of the declarations now (without copying them).
    pub fn watchers(
        &self,
        region: Option<&str>,
        matches: impl Fn(&Watched) -> bool,
    ) -> Vec<Target> {
        self.sender.borrow().watchers(region, matches)
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

    #[test]
    fn new_objects_reach_the_objects_watching_them() {
        let demand = QueueDemand::default();
        let stage = Target::new("LambdaStage", "shop", "api");
        let site = Target::new("StaticSite", "shop", "www");
        let changes = demand.subscribe();
        demand.declare_watchers(
            "LambdaStage",
            Watchers::from([(
                stage.clone(),
                FeedInterest {
                    region: "us-east-1".into(),
                    watches: vec![Watched::S3Object {
                        bucket: "builds".into(),
                        key: "api/app.zip".into(),
                    }],
                },
            )]),
        );
        demand.declare_watchers(
            "StaticSite",
            Watchers::from([(
                site.clone(),
                FeedInterest {
                    region: "us-east-1".into(),
                    watches: vec![
                        Watched::S3Prefix {
                            bucket: "builds".into(),
                            prefix: "www/".into(),
                        },
                        Watched::Distribution("E123".into()),
                    ],
                },
            )]),
        );
        assert!(!changes.has_changed().unwrap(), "pollers are not woken");
        let now = demand.current();
        let created = |region: &str, key: &str| {
            now.watchers(Some(region), |w| w.covers_object("builds", key))
        };
        assert_eq!(created("us-east-1", "api/app.zip"), vec![stage.clone()]);
        assert_eq!(created("us-east-1", "www/index.html"), vec![site.clone()]);
        assert_eq!(created("us-east-1", "api/app.zip.sha256"), []);
        assert_eq!(created("eu-west-1", "api/app.zip"), [], "another region");
        assert_eq!(
            now.watchers(None, |w| *w == Watched::Distribution("E123".into())),
            vec![site.clone()]
        );
        assert_eq!(now.relying(), [stage.clone(), site.clone()]);
        let selector = Watched::FunctionPrefix("shop-api-".into());
        assert!(selector.covers_function("shop-api-dev"));
        assert!(!selector.covers_function("shop-web"));
        assert!(!Watched::Layer("shop-api-".into()).covers_function("shop-api-dev"));
        assert!(!selector.covers_object("builds", "shop-api-dev"));
        demand.declare_watchers("StaticSite", Watchers::new());
        assert_eq!(demand.current().relying().len(), 1);
    }
}
