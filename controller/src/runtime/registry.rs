//! The kinds a build serves. A kind is registered once its reconciler exists; the registry
//! starts one controller per registered kind.

use std::fmt::Debug;
use std::sync::Arc;

use super::context::Context;
use super::controller::{ControllerHandle, ManagedKind, Reconciler, run_controller};
use super::shutdown::Shutdown;

type StartController = Box<dyn FnOnce(Arc<Context>, &Shutdown) -> ControllerHandle + Send>;

/// Controllers to start, one per kind.
#[derive(Default)]
pub struct Registry {
    controllers: Vec<(String, StartController)>,
}

impl Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("kinds", &self.kinds())
            .finish()
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers the reconciler of kind `K`.
    #[must_use]
    pub fn with<K, R>(mut self, reconciler: R) -> Self
    where
        K: ManagedKind,
        R: Reconciler<K>,
    {
        let start: StartController =
            Box::new(move |ctx, shutdown| run_controller::<K, R>(ctx, reconciler, shutdown));
        self.controllers.push((K::kind(&()).into_owned(), start));
        self
    }

    /// The registered kinds, in registration order.
    pub fn kinds(&self) -> Vec<&str> {
        self.controllers
            .iter()
            .map(|(kind, _)| kind.as_str())
            .collect()
    }

    /// Whether no kind is registered.
    pub fn is_empty(&self) -> bool {
        self.controllers.is_empty()
    }

    /// Builds every registered controller (they start when their `run` futures are polled).
    pub fn start(self, ctx: &Arc<Context>, shutdown: &Shutdown) -> Vec<ControllerHandle> {
        self.controllers
            .into_iter()
            .map(|(_, start)| start(ctx.clone(), shutdown))
            .collect()
    }
}
