//! `stagehand run`: starts the HTTP server, connects to Kubernetes and AWS, starts every
//! registered controller, and shuts all of it down together on SIGTERM/SIGINT.

use std::sync::Arc;

use futures::future::join_all;

use super::context::Context;
use super::error::Error;
use super::metrics::Metrics;
use super::registry::Registry;
use super::server::{self, ServerState};
use super::shutdown::Shutdown;
use crate::settings::{HumanDuration, Settings};

/// Runs until a shutdown signal (or until the server or a controller stops).
pub async fn run(settings: Settings, registry: Registry) -> Result<(), Error> {
    tracing::info!(
        version = crate::VERSION,
        namespace = settings.namespace.as_deref().unwrap_or("(all)"),
        concurrency = settings.concurrency,
        default_resync = %HumanDuration(settings.default_resync),
        cluster_id = %settings.cluster_id,
        "starting stagehand"
    );
    if registry.is_empty() {
        tracing::warn!(
            "no kind reconcilers are compiled into this build yet: serving health and metrics only, no objects are reconciled"
        );
    } else {
        tracing::info!(kinds = ?registry.kinds(), "serving kinds");
    }

    let shutdown = Shutdown::new();
    shutdown.trigger_on_signals();
    let metrics = Metrics::new()?;
    let listener = server::bind(settings.metrics_addr).await?;
    let ctx = Arc::new(Context::from_settings(settings, metrics.clone()).await?);
    let server_state = ServerState {
        metrics,
        readiness: ctx.readiness.clone(),
    };

    let handles = registry.start(&ctx, &shutdown);
    let (caches, runs): (Vec<_>, Vec<_>) = handles
        .into_iter()
        .map(|handle| (handle.caches_synced, handle.run))
        .unzip();

    let readiness = ctx.readiness.clone();
    let wait_for_caches = async move {
        // With no controllers there is no cache to wait for.
        if join_all(caches).await.into_iter().all(|synced| synced) {
            readiness.mark_caches_synced();
            tracing::info!("caches synced: ready");
        }
    };

    let controllers_shutdown = shutdown.clone();
    let controllers = async move {
        if runs.is_empty() {
            controllers_shutdown.wait().await;
        } else {
            join_all(runs).await;
            // A controller only stops on shutdown; if one stopped on its own, stop the rest so
            // the pod restarts instead of running half a controller.
            controllers_shutdown.trigger();
        }
    };

    let server_shutdown = shutdown.clone();
    let server = async move {
        let result = server::serve(listener, server_state, server_shutdown.wait()).await;
        server_shutdown.trigger();
        result
    };

    let ((), (), served) = tokio::join!(wait_for_caches, controllers, server);
    served?;
    tracing::info!("stopped");
    Ok(())
}
