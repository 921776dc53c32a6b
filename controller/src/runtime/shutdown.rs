//! One shutdown signal shared by the HTTP server and every controller: SIGTERM or SIGINT starts a
//! graceful shutdown (controllers finish the reconciles in flight, the server stops accepting);
//! a second signal exits at once.

use std::sync::Arc;

use tokio::sync::watch;

/// A cloneable handle on the process-wide shutdown signal.
#[derive(Clone, Debug)]
pub struct Shutdown {
    sender: Arc<watch::Sender<bool>>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    /// A signal that has not fired.
    pub fn new() -> Self {
        let (sender, _) = watch::channel(false);
        Self {
            sender: Arc::new(sender),
        }
    }

    /// Starts the shutdown. Idempotent.
    pub fn trigger(&self) {
        self.sender.send_replace(true);
    }

    /// Whether the shutdown has started.
    pub fn is_triggered(&self) -> bool {
        *self.sender.borrow()
    }

    /// Resolves once the shutdown has started (immediately if it already has). `Send + Sync +
    /// 'static` as `Controller::graceful_shutdown_on` requires.
    pub fn wait(&self) -> impl Future<Output = ()> + Send + Sync + 'static {
        let mut receiver = self.sender.subscribe();
        async move {
            // An error means the sender is gone, which only happens at process exit: treat it
            // as a shutdown too.
            let _ = receiver.wait_for(|triggered| *triggered).await;
        }
    }

    /// Triggers the shutdown on the first SIGTERM or SIGINT and exits the process on the second.
    /// Must be called from within a Tokio runtime.
    pub fn trigger_on_signals(&self) {
        let shutdown = self.clone();
        tokio::spawn(async move {
            let first = wait_for_signal().await;
            tracing::info!(
                signal = first,
                "shutting down gracefully: finishing reconciles in flight (send the signal again to exit at once)"
            );
            shutdown.trigger();
            let second = wait_for_signal().await;
            tracing::warn!(
                signal = second,
                "second signal: exiting without waiting for reconciles in flight"
            );
            std::process::exit(1);
        });
    }
}

/// Waits for SIGTERM (what Kubernetes sends) or SIGINT (Ctrl+C); returns its name.
async fn wait_for_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut sigterm) => tokio::select! {
                _ = sigterm.recv() => "SIGTERM",
                _ = tokio::signal::ctrl_c() => "SIGINT",
            },
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM; only SIGINT will stop Stagehand gracefully");
                let _ = tokio::signal::ctrl_c().await;
                "SIGINT"
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "SIGINT"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waiters_before_and_after_the_trigger_are_released() {
        let shutdown = Shutdown::new();
        let early = tokio::spawn(shutdown.wait());
        assert!(!shutdown.is_triggered());
        assert!(!early.is_finished());
        shutdown.clone().trigger();
        early.await.unwrap();
        assert!(shutdown.is_triggered());
        // A waiter created after the trigger resolves at once.
        shutdown.wait().await;
        shutdown.trigger(); // idempotent
        assert!(shutdown.is_triggered());
    }

    #[tokio::test]
    async fn wait_does_not_resolve_before_the_trigger() {
        let shutdown = Shutdown::new();
        let mut waiter = std::pin::pin!(shutdown.wait());
        assert!(futures::poll!(waiter.as_mut()).is_pending());
        shutdown.trigger();
        assert!(futures::poll!(waiter.as_mut()).is_ready());
    }
}
