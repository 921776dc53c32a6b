//! The kinds a build serves. A kind is registered once its reconciler exists; the registry
//! starts one controller per registered kind.

use std::fmt::Debug;
use std::sync::Arc;

use super::context::Context;
use super::controller::{ControllerHandle, ManagedKind, Reconciler, run_controller};
use super::shutdown::Shutdown;

/// The name of the event feed's handle among the controllers'.
pub const FEED: &str = "EventFeed";

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

    /// Builds every registered controller, and the AWS event feed that triggers them, last
    /// (they start when their `run` futures are polled). The feed polls only the queues the
    /// controllers' objects name: with none, it makes no AWS call.
    pub fn start(self, ctx: &Arc<Context>, shutdown: &Shutdown) -> Vec<ControllerHandle> {
        if self.controllers.is_empty() {
            return Vec::new();
        }
        let mut handles: Vec<ControllerHandle> = self
            .controllers
            .into_iter()
            .map(|(_, start)| start(ctx.clone(), shutdown))
            .collect();
        handles.push(ControllerHandle {
            kind: FEED.to_owned(),
            caches_synced: Box::pin(std::future::ready(true)),
            run: Box::pin(crate::feed::run(
                ctx.feed.clone(),
                ctx.inventory.clone(),
                ctx.metrics.feed.clone(),
                shutdown.wait(),
            )),
        });
        handles
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::{Classify, ErrorClass};
    use crate::runtime::Metrics;
    use crate::settings::Settings;
    use aws_config::{Region, SdkConfig};
    use k8s_openapi::api::core::v1::{ConfigMap, Secret};
    use kube::runtime::controller::Action;

    #[derive(Debug, thiserror::Error)]
    #[error("never")]
    struct Never;
    impl Classify for Never {
        fn class(&self) -> ErrorClass {
            ErrorClass::Recoverable
        }
        fn reason(&self) -> &'static str {
            "Never"
        }
    }

    struct Noop;
    impl<K: ManagedKind> Reconciler<K> for Noop {
        type Error = Never;
        async fn apply(&self, _: Arc<K>, _: Arc<Context>) -> Result<Action, Never> {
            Ok(Action::await_change())
        }
        async fn cleanup(&self, _: Arc<K>, _: Arc<Context>) -> Result<Action, Never> {
            Ok(Action::await_change())
        }
    }

    #[tokio::test]
    async fn registered_kinds_are_listed_and_started_in_order() {
        let registry = Registry::new()
            .with::<ConfigMap, _>(Noop)
            .with::<Secret, _>(Noop);
        assert!(!registry.is_empty());
        assert_eq!(registry.kinds(), ["ConfigMap", "Secret"]);
        assert_eq!(
            format!("{registry:?}"),
            r#"Registry { kinds: ["ConfigMap", "Secret"] }"#
        );

        let client =
            kube::Client::try_from(kube::Config::new("http://127.0.0.1:1".parse().unwrap()))
                .unwrap();
        let aws = SdkConfig::builder()
            .region(Region::new("eu-west-1"))
            .build();
        let ctx = Arc::new(Context::new(
            client,
            aws,
            Metrics::new().unwrap(),
            Settings::default(),
        ));
        let handles = registry.start(&ctx, &Shutdown::new());
        let kinds: Vec<&str> = handles.iter().map(|h| h.kind.as_str()).collect();
        assert_eq!(kinds, ["ConfigMap", "Secret", FEED]);
        // Building a controller registers its metrics (max concurrency from the settings).
        let text = ctx.metrics.render().unwrap();
        assert!(
            text.contains(r#"controller_runtime_max_concurrent_reconciles{controller="secret"} 8"#),
            "{text}"
        );
    }
}
