//! `stagehand run`: starts the HTTP server, connects to Kubernetes and AWS, starts every
//! registered controller, and shuts all of it down together on SIGTERM/SIGINT.

use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use kube::runtime::events::{Event, EventType};

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

    let election = if ctx.settings.leader_election {
        Some(elector(&ctx)?)
    } else {
        None
    };
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

/// After leadership is lost, how long the controllers get to drain (their AWS writes are
/// already refused by the fence) before they are abandoned: a reconcile stuck on an API server
/// that no longer answers must not keep the process from exiting and restarting as a standby.
pub const DRAIN_AFTER_LOSS: Duration = Duration::from_secs(5);

/// Publishing the leadership Events is bounded by this: losing the lease often means the API
/// server is slow or unreachable, and the report must not hold up the exit.
const EVENT_TIMEOUT: Duration = Duration::from_secs(2);

/// The elector `stagehand run --leader-election` uses: lease from the flags, this pod's
/// identity, the test-only wall-clock offset (see [`leader::CLOCK_OFFSET_ENV`]).
fn elector(ctx: &Context) -> Result<LeaderElector, Error> {
    let settings = &ctx.settings;
    let timings = LeaseTimings::new(
        settings.leader_election_lease_duration,
        settings.leader_election_renew_deadline,
        settings.leader_election_retry_period,
    )?;
    Ok(LeaderElector::new(
        ctx.client.clone(),
        LeaseConfig {
            namespace: leader::lease_namespace(settings.leader_election_namespace.as_deref()),
            name: settings.leader_election_lease_name.clone(),
            identity: leader::identity(),
            timings,
            wall_clock_offset: leader::wall_clock_offset(),
        },
        &ctx.metrics,
    ))
}

/// Starts the registered controllers and the AWS event feed that triggers them (once leading,
/// with leader election: only the leader polls event queues) and runs them until the shutdown;
/// marks readiness when their caches are synced.
///
/// Readiness with leader election: a standby reports ready. It is healthy and able to take over;
/// gating readiness on leadership would keep every standby unready and stall rolling updates.
/// When it starts leading it reports unready until its controllers' caches are synced.
///
/// With an elector, every AWS write of `ctx` is fenced ([`LeaderElector::fencing`]): refused
/// until the first acquisition and whenever the last renewal is older than the renew deadline.
/// Losing the lease closes the fence, stops the controllers (abandoning them after
/// [`DRAIN_AFTER_LOSS`]), publishes a `LeadershipLost` Event on the Lease and returns
/// [`Error::LeadershipLost`](super::error::Error::LeadershipLost), so the process exits
/// non-zero and the pod restarts as a standby.
pub async fn run_controllers(
    ctx: Arc<Context>,
    registry: Registry,
    election: Option<LeaderElector>,
    shutdown: Shutdown,
) -> Result<(), Error> {
    let election = election.map(|elector| elector.fencing(ctx.aws.write_fence().clone()));
    if let Some(elector) = &election {
        ctx.readiness.mark_caches_synced();
        if !elector.acquire(&shutdown).await {
            return Ok(());
        }
        ctx.readiness.mark_unready();
        publish_lease_event(
            &ctx,
            elector,
            EventType::Normal,
            "LeaderElected",
            "leading: controllers started".to_owned(),
        )
        .await;
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
    // What the inventories keep for keys nobody asks for any more (a deleted object's, an old
    // build's) goes while the controllers run.
    let sweep = ctx.inventory.sweep_until(shutdown.wait());
    let running = async {
        tokio::join!(wait_for_caches, controllers, sweep);
    };

    let Some(elector) = election else {
        running.await;
        return Ok(());
    };
    let (stopped, controllers_stopped) = tokio::sync::oneshot::channel::<()>();
    let (lost_tx, mut lost_rx) = tokio::sync::watch::channel(false);
    let hold = async {
        let ended = elector
            .hold(async {
                let _ = controllers_stopped.await;
            })
            .await;
        if let Ended::Lost(_) = ended {
            shutdown.trigger();
            let _ = lost_tx.send(true);
        }
        ended
    };
    let drain = async {
        tokio::select! {
            () = running => {}
            () = async {
                let _ = lost_rx.wait_for(|lost| *lost).await;
                tokio::time::sleep(DRAIN_AFTER_LOSS).await;
            } => {
                tracing::warn!(after = ?DRAIN_AFTER_LOSS, "controllers did not stop after leadership was lost: abandoning them");
            }
        }
        let _ = stopped.send(());
    };
    let (ended, ()) = tokio::join!(hold, drain);
    match ended {
        // Released only now that no reconcile is in flight: the next leader starts clean.
        Ended::Shutdown => {
            elector.release().await;
            Ok(())
        }
        Ended::Lost(why) => {
            let note = format!(
                "{} lost the lease and stopped its controllers: {why}",
                elector.config().identity
            );
            publish_lease_event(&ctx, &elector, EventType::Warning, "LeadershipLost", note).await;
            Err(leader::lost_error(elector.config()))
        }
    }
}

/// An Event on the Lease (`kubectl describe lease`), bounded by [`EVENT_TIMEOUT`].
async fn publish_lease_event(
    ctx: &Context,
    elector: &LeaderElector,
    type_: EventType,
    reason: &str,
    note: String,
) {
    let event = Event {
        type_,
        reason: reason.to_owned(),
        note: Some(note),
        action: "LeaderElection".to_owned(),
        secondary: None,
    };
    let (events, lease) = (ctx.events(), elector.lease_reference());
    if tokio::time::timeout(EVENT_TIMEOUT, events.publish(&lease, event))
        .await
        .is_err()
    {
        tracing::warn!(reason, "cannot publish the leader election event in time");
    }
}
