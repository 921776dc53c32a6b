//! Reconcile-now requests, kind-agnostic: the feed names an object by kind, namespace and name
//! (what an owner tag says), and each kind's controller receives those of its kind as a stream
//! it hands to kube-runtime's `Controller::reconcile_on`. The scheduler there merges a request
//! with one already queued for the same object, so a burst of events about one fleet costs one
//! reconcile.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::mpsc;

/// How many requests may wait for a kind's controller. The controller takes them as they come;
/// only a controller that stopped (shutting down) leaves them waiting. A request that does not
/// fit is dropped: the object's next resync reads the same AWS state the event pointed at.
pub const TRIGGER_BUFFER: usize = 1024;

/// An object to reconcile now.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Target {
    /// The kind, as in the owner tag (`SpotFleet`).
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

impl Target {
    pub fn new(kind: &str, namespace: &str, name: &str) -> Self {
        Self {
            kind: kind.to_owned(),
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        }
    }

    /// The object an owner tag value (`<namespace>/<Kind>/<name>`) names; `None` when the value
    /// does not have that shape.
    pub fn from_owner(owner: &str) -> Option<Self> {
        let mut parts = owner.splitn(3, '/');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(namespace), Some(kind), Some(name))
                if !namespace.is_empty() && !kind.is_empty() && !name.is_empty() =>
            {
                Some(Self::new(kind, namespace, name))
            }
            _ => None,
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}/{}", self.namespace, self.kind, self.name)
    }
}

/// Where reconcile-now requests go, one route per kind. Cheap to clone (clones share routes).
#[derive(Clone, Debug, Default)]
pub struct Triggers {
    routes: Arc<Mutex<HashMap<String, mpsc::Sender<Target>>>>,
}

impl Triggers {
    /// The requests for `kind` from now on (a second subscription replaces the first: one
    /// controller per kind).
    pub fn subscribe(&self, kind: &str) -> mpsc::Receiver<Target> {
        let (sender, receiver) = mpsc::channel(TRIGGER_BUFFER);
        self.routes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(kind.to_owned(), sender);
        receiver
    }

    /// Asks for `target` to be reconciled now; `false` when no controller of its kind takes it
    /// (not served by this build, stopped, or too far behind).
    pub fn send(&self, target: Target) -> bool {
        let routes = self.routes.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(route) = routes.get(&target.kind) else {
            return false;
        };
        match route.try_send(target) {
            Ok(()) => true,
            Err(error) => {
                tracing::debug!(%error, "reconcile-now request dropped; the resync will look");
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_tags_name_their_object() {
        assert_eq!(
            Target::from_owner("shop/SpotFleet/workers"),
            Some(Target::new("SpotFleet", "shop", "workers"))
        );
        assert_eq!(
            Target::from_owner("shop/SpotFleet/workers").map(|t| t.to_string()),
            Some("shop/SpotFleet/workers".to_owned())
        );
        for bad in [
            "",
            "shop",
            "shop/SpotFleet",
            "shop//workers",
            "/SpotFleet/w",
        ] {
            assert_eq!(Target::from_owner(bad), None, "{bad:?}");
        }
    }

    #[tokio::test]
    async fn requests_reach_the_controller_of_their_kind_only() {
        let triggers = Triggers::default();
        let mut fleets = triggers.subscribe("SpotFleet");
        let mut stages = triggers.clone().subscribe("LambdaStage");
        assert!(triggers.send(Target::new("SpotFleet", "shop", "a")));
        assert!(
            !triggers.send(Target::new("StaticSite", "shop", "site")),
            "not served"
        );
        assert_eq!(
            fleets.recv().await,
            Some(Target::new("SpotFleet", "shop", "a"))
        );
        assert!(stages.try_recv().is_err());
        drop(fleets);
        assert!(
            !triggers.send(Target::new("SpotFleet", "shop", "a")),
            "stopped"
        );
    }
}
