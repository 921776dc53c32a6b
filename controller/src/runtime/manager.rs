//! `stagehand run`: starts the HTTP server, connects to Kubernetes and AWS, starts every
//! registered controller, and shuts all of it down together on SIGTERM/SIGINT.

use std::sync::Arc;

use futures::future::join_all;

use super::context::Context;
use super::error::Error;
use super::leader::{self, Ended, LeaderElector, LeaseConfig, LeaseTimings};
use super::metrics::Metrics;
use super::registry::Registry;
use super::server::{self, ServerState};
use super::shutdown::Shutdown;
use crate::base::duration::HumanDuration;
use crate::settings::Settings;

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

    let election = ctx.settings.leader_election.then(|| {
        LeaderElector::new(
            ctx.client.clone(),
            LeaseConfig {
                namespace: leader::lease_namespace(
                    ctx.settings.leader_election_namespace.as_deref(),
                ),
                name: ctx.settings.leader_election_lease_name.clone(),
                identity: leader::identity(),
                timings: LeaseTimings::default(),
            },
            &ctx.metrics,
        )
    });
    let controllers = run_controllers(ctx, registry, election, shutdown.clone());

    let server_shutdown = shutdown.clone();
    let server = async move {
        let result = server::serve(listener, server_state, server_shutdown.wait()).await;
        server_shutdown.trigger();
        result
    };

    let (controlled, served) = tokio::join!(controllers, server);
    served?;
    controlled?;
    tracing::info!("stopped");
    Ok(())
}

/// Starts the registered controllers and the AWS event feed that triggers them (once leading,
/// with leader election: only the leader polls event queues) and runs them until the shutdown;
/// marks readiness when their caches are synced.
///
/// Readiness with leader election: a standby reports ready. It is healthy and able to take over;
/// gating readiness on leadership would keep every standby unready and stall rolling updates.
/// When it starts leading it reports unready until its controllers' caches are synced.
///
/// Losing the lease stops the controllers gracefully and returns
/// [`Error::LeadershipLost`](super::error::Error::LeadershipLost), so the process exits
/// non-zero and the pod restarts as a standby.
pub async fn run_controllers(
    ctx: Arc<Context>,
    registry: Registry,
    election: Option<LeaderElector>,
    shutdown: Shutdown,
) -> Result<(), Error> {
    if let Some(elector) = &election {
        ctx.readiness.mark_caches_synced();
        if !elector.acquire(&shutdown).await {
            return Ok(());
        }
        ctx.readiness.mark_unready();
    }

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

    let Some(elector) = election else {
        tokio::join!(wait_for_caches, controllers);
        return Ok(());
    };
    let hold = async {
        let ended = elector.hold(&shutdown).await;
        if ended == Ended::Lost {
            shutdown.trigger();
        }
        ended
    };
    let ((), (), ended) = tokio::join!(wait_for_caches, controllers, hold);
    match ended {
        // Released only now that no reconcile is in flight: the next leader starts clean.
        Ended::Shutdown => {
            elector.release().await;
            Ok(())
        }
        Ended::Lost => Err(leader::lost_error(elector.config())),
    }
}
