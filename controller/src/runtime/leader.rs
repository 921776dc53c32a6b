//! Leader election with a `coordination.k8s.io/v1` Lease, so that only one replica acts.
//!
//! The decision is pure ([`decide`]: lease, what this replica saw of it and when, identity →
//! what to do); [`LeaderElector`] does the I/O. Writes are optimistic (`replace` carries the
//! resourceVersion read), so a `409 Conflict` on create or update means another replica got
//! there first.
//!
//! Time, the way client-go's `leaderelection` measures it: a lease held by another replica is
//! judged by when *this* replica last saw it change (its resourceVersion, holder or
//! `renewTime`), on this replica's monotonic clock ([`Sighting`]) — never by comparing the
//! holder's `renewTime` (another node's wall clock) with the local wall clock, so clock skew
//! between nodes cannot make a live lease look expired. `renewTime` is still written, for
//! people and for other clients.
//!
//! Behaviour: a replica waits (standby) until it holds the lease, then runs the controllers and
//! renews every `renew_interval` (a third of the renew deadline). Every acquire and renew round trip is bounded by the renew
//! deadline (kube's client has no read timeout: a hung request would otherwise hold the leader
//! in place). A successful renewal opens the AWS write fence until its start plus the renew
//! deadline ([`crate::aws::fence`]); if no renewal succeeds by then, or the lease is found held
//! by someone else, leadership is lost: the fence closes, the manager stops the controllers and
//! the process exits non-zero so the pod restarts as a fresh standby. The renew deadline is
//! shorter than the lease duration, and a standby waits a whole lease duration after it last
//! saw the lease change: the old leader has stopped writing before anyone else may lead. On
//! graceful shutdown the holder releases the lease (clears `holderIdentity`) so a standby takes
//! over at once instead of after the lease expires.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Client;
use kube::api::{Api, ObjectMeta, PostParams};
use prometheus::{IntCounterVec, IntGauge};
use tokio::time::Instant;

use super::error::Error;
use super::metrics::Metrics;
use super::shutdown::Shutdown;
use crate::aws::WriteFence;
use crate::base::duration::parse_go_duration;

/// Default name of the Lease.
pub const DEFAULT_LEASE_NAME: &str = "stagehand-leader";
/// Where Kubernetes mounts the pod's namespace.
const SERVICE_ACCOUNT_NAMESPACE_FILE: &str =
    "/var/run/secrets/kubernetes.io/serviceaccount/namespace";
/// Test-only: a Go-style duration (`-90s`, `2m`) added to the wall-clock times this replica
/// writes into the Lease (`acquireTime`, `renewTime`), to play a node whose clock is off.
/// Nothing else reads it; the election itself never compares wall clocks.
pub const CLOCK_OFFSET_ENV: &str = "STAGEHAND_TEST_LEASE_CLOCK_OFFSET";

/// Timings of the election.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseTimings {
    /// How long a standby waits after it last saw the lease change before taking it over
    /// (`leaseDurationSeconds`).
    pub lease_duration: Duration,
    /// How often the holder renews.
    pub renew_interval: Duration,
    /// The holder stops writing and gives up if it could not renew for this long (below
    /// `lease_duration`, so it stops before anyone else may take over).
    pub renew_deadline: Duration,
    /// How often a standby tries to acquire, and a holder retries a failed renewal.
    pub retry_interval: Duration,
}

impl Default for LeaseTimings {
    /// 15s leases renewed every 3⅓s, given up after 10s without renewal; retries every 2s.
    fn default() -> Self {
        let renew_deadline = Duration::from_secs(10);
        Self {
            lease_duration: Duration::from_secs(15),
            renew_interval: renew_deadline / 3,
            renew_deadline,
            retry_interval: Duration::from_secs(2),
        }
    }
}

impl LeaseTimings {
    /// Timings from the three client-go knobs. The holder renews every third of the renew
    /// deadline, so a renewal that hangs or fails still leaves two thirds of it for retries
    /// (client-go renews every retry period).
    pub fn new(
        lease_duration: Duration,
        renew_deadline: Duration,
        retry_interval: Duration,
    ) -> Result<Self, Error> {
        let invalid = |message: &str| Error::LeaderElectionTimings {
            message: message.to_owned(),
        };
        if renew_deadline >= lease_duration {
            return Err(invalid(
                "the renew deadline must be shorter than the lease duration",
            ));
        }
        if retry_interval >= renew_deadline {
            return Err(invalid(
                "the retry period must be shorter than the renew deadline",
            ));
        }
        Ok(Self {
            lease_duration,
            renew_interval: renew_deadline / 3,
            renew_deadline,
            retry_interval,
        })
    }
}

/// Which Lease, held by whom, with which timings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseConfig {
    pub namespace: String,
    pub name: String,
    pub identity: String,
    pub timings: LeaseTimings,
    /// Added to the wall-clock times written into the Lease (tests: a skewed node).
    pub wall_clock_offset: SignedDuration,
}

/// What this replica saw of the lease: a version of its record and since when (this replica's
/// monotonic clock) it has been unchanged. client-go's `observedRecord` / `observedTime`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sighting {
    pub version: String,
    pub since: Instant,
}

/// The sighting after reading a lease whose record is `version` at `now`: unchanged since the
/// previous sighting, or changed now.
pub fn sight(previous: Option<&Sighting>, version: &str, now: Instant) -> Sighting {
    match previous {
        Some(seen) if seen.version == version => seen.clone(),
        _ => Sighting {
            version: version.to_owned(),
            since: now,
        },
    }
}

/// The version of a lease's record: anything a holder's renewal changes.
pub fn record_version(lease: &Lease) -> String {
    let spec = lease.spec.as_ref();
    format!(
        "{}|{}|{:?}|{:?}",
        lease.metadata.resource_version.as_deref().unwrap_or(""),
        spec.and_then(|s| s.holder_identity.as_deref())
            .unwrap_or(""),
        spec.and_then(|s| s.renew_time.as_ref()).map(|t| t.0),
        spec.and_then(|s| s.lease_transitions),
    )
}

/// What a replica does with the lease as it finds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// No Lease object: create it, holding it.
    Create,
    /// Free (released, or unchanged for a whole lease duration): take it over.
    Acquire,
    /// Ours: renew it.
    Renew,
    /// Held by someone else, seen changing less than a lease duration ago.
    Wait { holder: String },
}

/// The pure election rule. A lease is free when it has no holder, or when this replica has
/// seen it unchanged (`seen`, on its own monotonic clock) for the lease's duration at `now`.
/// The times written in the lease are not read: they come from another node's clock.
/// `default_duration` applies when the lease does not say.
pub fn decide(
    lease: Option<&LeaseSpec>,
    seen: &Sighting,
    now: Instant,
    me: &str,
    default_duration: Duration,
) -> Decision {
    let Some(spec) = lease else {
        return Decision::Create;
    };
    let holder = match spec.holder_identity.as_deref() {
        None | Some("") => return Decision::Acquire,
        Some(holder) if holder == me => return Decision::Renew,
        Some(holder) => holder,
    };
    let duration = spec
        .lease_duration_seconds
        .map_or(default_duration, |seconds| {
            Duration::from_secs(u64::try_from(seconds).unwrap_or(0))
        });
    if now.saturating_duration_since(seen.since) >= duration {
        Decision::Acquire
    } else {
        Decision::Wait {
            holder: holder.to_owned(),
        }
    }
}

/// The test-only wall-clock offset from [`CLOCK_OFFSET_ENV`] (`-` for a clock behind); none
/// when unset or unparsable (logged).
pub fn wall_clock_offset() -> SignedDuration {
    let Ok(value) = std::env::var(CLOCK_OFFSET_ENV) else {
        return SignedDuration::ZERO;
    };
    let (negative, magnitude) = value
        .strip_prefix('-')
        .map_or((false, value.as_str()), |rest| (true, rest));
    match parse_go_duration(magnitude).map(SignedDuration::try_from) {
        Ok(Ok(offset)) if negative => -offset,
        Ok(Ok(offset)) => offset,
        _ => {
            tracing::warn!(%value, "ignoring {CLOCK_OFFSET_ENV}: not a Go-style duration");
            SignedDuration::ZERO
        }
    }
}

/// The namespace of the Lease: the flag, else the pod's namespace (`POD_NAMESPACE`, then the
/// service account's namespace file), else `default`.
pub fn lease_namespace(flag: Option<&str>) -> String {
    flag.filter(|ns| !ns.is_empty())
        .map(str::to_owned)
        .or_else(|| {
            std::env::var("POD_NAMESPACE")
                .ok()
                .filter(|ns| !ns.is_empty())
        })
        .or_else(|| {
            std::fs::read_to_string(SERVICE_ACCOUNT_NAMESPACE_FILE)
                .ok()
                .map(|ns| ns.trim().to_owned())
                .filter(|ns| !ns.is_empty())
        })
        .unwrap_or_else(|| "default".to_owned())
}

/// This replica's identity: `POD_NAME`, else the hostname, else `stagehand-<pid>`.
pub fn identity() -> String {
    std::env::var("POD_NAME")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
        })
        .filter(|id| !id.is_empty())
        .unwrap_or_else(|| format!("stagehand-{}", std::process::id()))
}

/// Why leadership was lost.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lost {
    /// The lease names another holder (taken over after this replica stalled, or by hand).
    TakenBy(String),
    /// No renewal succeeded within the renew deadline (API server slow or unreachable, or this
    /// replica was paused).
    NotRenewed,
}

impl std::fmt::Display for Lost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TakenBy(holder) => write!(f, "the lease is held by {holder}"),
            Self::NotRenewed => {
                f.write_str("the lease could not be renewed within the renew deadline")
            }
        }
    }
}

/// How a held leadership ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ended {
    /// Graceful shutdown; the caller releases the lease.
    Shutdown,
    /// Lost: the fence is closed, the controllers must stop.
    Lost(Lost),
}

/// A failed election round trip.
#[derive(Debug, thiserror::Error)]
pub enum ElectionError {
    #[error("the API server did not answer within {0:?}")]
    TimedOut(Duration),
    #[error(transparent)]
    Kube(#[from] kube::Error),
}

/// What one round trip found.
enum Round {
    /// This replica holds the lease (created, acquired or renewed).
    Held,
    /// Another replica does (or won a write race).
    HeldBy(String),
}

/// Takes part in the election of one Lease.
#[derive(Clone, Debug)]
pub struct LeaderElector {
    api: Api<Lease>,
    config: LeaseConfig,
    status: IntGauge,
    transitions: IntCounterVec,
    /// Opened by every successful renewal, closed when leadership ends.
    fence: WriteFence,
    /// What this replica last saw of the lease, and since when.
    seen: Arc<Mutex<Option<Sighting>>>,
    /// When the last successful round started (the fence is open until it plus the renew
    /// deadline): where [`LeaderElector::hold`] counts its renew deadline from.
    confirmed: Arc<Mutex<Option<Instant>>>,
}

impl LeaderElector {
    /// An elector for `config`; exports `leader_election_master_status{name}` (0 until leading)
    /// and `stagehand_leader_transitions_total{name,transition}`. Its write fence starts closed;
    /// give it the AWS provider's with [`LeaderElector::fencing`].
    pub fn new(client: Client, config: LeaseConfig, metrics: &Metrics) -> Self {
        let status = metrics.leader_status(&config.name);
        status.set(0);
        Self {
            api: Api::namespaced(client, &config.namespace),
            config,
            status,
            transitions: metrics.leader_transitions_total.clone(),
            fence: WriteFence::closed(),
            seen: Arc::default(),
            confirmed: Arc::default(),
        }
    }

    /// The elector opening and closing `fence` (the AWS provider's): closed from now until
    /// this replica's first successful acquisition.
    #[must_use]
    pub fn fencing(mut self, fence: WriteFence) -> Self {
        fence.close();
        self.fence = fence;
        self
    }

    /// The fence this elector opens while leading.
    pub fn fence(&self) -> &WriteFence {
        &self.fence
    }

    /// The configuration.
    pub fn config(&self) -> &LeaseConfig {
        &self.config
    }

    /// One round, bounded by the renew deadline: reads the lease and acquires, renews or waits.
    /// `Ok(true)` while this replica holds it (the fence is then open until the round's start
    /// plus the renew deadline); `Ok(false)` when someone else does.
    pub async fn try_acquire_or_renew(&self) -> Result<bool, ElectionError> {
        let started = Instant::now();
        let deadline = started + self.config.timings.renew_deadline;
        Ok(matches!(
            self.bounded_round(started, deadline).await?,
            Round::Held
        ))
    }

    async fn bounded_round(
        &self,
        started: Instant,
        deadline: Instant,
    ) -> Result<Round, ElectionError> {
        let limit = deadline.saturating_duration_since(started);
        let round = tokio::time::timeout_at(deadline, self.round(started))
            .await
            .map_err(|_| ElectionError::TimedOut(limit))??;
        if matches!(round, Round::Held) {
            // The API server accepted the write after `started`: a standby saw the change no
            // earlier, so it waits until at least `started + lease_duration`.
            self.fence
                .open_until(started + self.config.timings.renew_deadline);
            *self
                .confirmed
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(started);
        }
        Ok(round)
    }

    async fn round(&self, now: Instant) -> Result<Round, kube::Error> {
        let current = self.api.get_opt(&self.config.name).await?;
        let seen = {
            let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
            let version = current.as_ref().map(record_version).unwrap_or_default();
            let next = sight(seen.as_ref(), &version, now);
            *seen = Some(next.clone());
            next
        };
        let decision = decide(
            current.as_ref().and_then(|l| l.spec.as_ref()),
            &seen,
            now,
            &self.config.identity,
            self.config.timings.lease_duration,
        );
        let written = match (decision, current) {
            (Decision::Wait { holder }, _) => return Ok(Round::HeldBy(holder)),
            (Decision::Create, _) | (_, None) => self.create().await,
            (decision, Some(lease)) => self.write(lease, decision == Decision::Acquire).await,
        };
        match written {
            Ok(()) => Ok(Round::Held),
            Err(kube::Error::Api(status)) if status.code == 409 => {
                Ok(Round::HeldBy("another replica (write conflict)".to_owned()))
            }
            Err(error) => Err(error),
        }
    }

    /// Now on this replica's wall clock, as written into the lease.
    fn wall_now(&self) -> MicroTime {
        let now = Timestamp::now();
        MicroTime(
            now.checked_add(self.config.wall_clock_offset)
                .unwrap_or(now),
        )
    }

    fn duration_seconds(&self) -> i32 {
        i32::try_from(self.config.timings.lease_duration.as_secs()).unwrap_or(i32::MAX)
    }

    async fn create(&self) -> Result<(), kube::Error> {
        let now = self.wall_now();
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(self.config.name.clone()),
                namespace: Some(self.config.namespace.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(self.config.identity.clone()),
                lease_duration_seconds: Some(self.duration_seconds()),
                acquire_time: Some(now.clone()),
                renew_time: Some(now),
                lease_transitions: Some(0),
                ..LeaseSpec::default()
            }),
        };
        self.api
            .create(&PostParams::default(), &lease)
            .await
            .map(|_| ())
    }

    async fn write(&self, mut lease: Lease, acquire: bool) -> Result<(), kube::Error> {
        let now = self.wall_now();
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        if acquire {
            spec.holder_identity = Some(self.config.identity.clone());
            spec.acquire_time = Some(now.clone());
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        }
        spec.lease_duration_seconds = Some(self.duration_seconds());
        spec.renew_time = Some(now);
        // `replace` sends the resourceVersion read: a concurrent writer wins.
        self.api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await
            .map(|_| ())
    }

    /// Waits until this replica leads (`true`) or the shutdown starts (`false`).
    pub async fn acquire(&self, shutdown: &Shutdown) -> bool {
        let mut waiting_logged = false;
        loop {
            match self.try_acquire_or_renew().await {
                Ok(true) => {
                    self.status.set(1);
                    self.count("acquired");
                    tracing::info!(lease = %self.config.name, namespace = %self.config.namespace, identity = %self.config.identity, "leading: starting controllers");
                    return true;
                }
                Ok(false) if !waiting_logged => {
                    tracing::info!(lease = %self.config.name, namespace = %self.config.namespace, identity = %self.config.identity, "standby: another replica leads");
                    waiting_logged = true;
                }
                Ok(false) => {}
                Err(error) => {
                    tracing::warn!(%error, lease = %self.config.name, "cannot read or write the leader lease (retrying)");
                }
            }
            tokio::select! {
                () = shutdown.wait() => return false,
                () = tokio::time::sleep(self.config.timings.retry_interval) => {}
            }
        }
    }

    /// Renews until `stop` completes ([`Ended::Shutdown`]: the controllers have stopped, the
    /// caller releases the lease) or leadership is lost ([`Ended::Lost`], the fence closed).
    /// Renewals go on while the controllers drain after a shutdown signal, so their last
    /// writes are still covered.
    pub async fn hold(&self, stop: impl Future<Output = ()>) -> Ended {
        let timings = self.config.timings;
        tokio::pin!(stop);
        let mut confirmed = self
            .confirmed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .unwrap_or_else(Instant::now);
        let mut wait = timings.renew_interval;
        loop {
            tokio::select! {
                () = &mut stop => return Ended::Shutdown,
                () = tokio::time::sleep(wait) => {}
            }
            let started = Instant::now();
            let deadline = confirmed + timings.renew_deadline;
            if started >= deadline {
                return self.lost(Lost::NotRenewed);
            }
            match self.bounded_round(started, deadline).await {
                Ok(Round::Held) => {
                    confirmed = started;
                    wait = timings.renew_interval;
                }
                Ok(Round::HeldBy(holder)) => return self.lost(Lost::TakenBy(holder)),
                Err(ElectionError::TimedOut(_)) => return self.lost(Lost::NotRenewed),
                Err(error) => {
                    tracing::warn!(%error, lease = %self.config.name, "cannot renew the leader lease (retrying)");
                    wait = timings.retry_interval;
                }
            }
        }
    }

    /// Leadership lost: no more AWS writes from now, then the report (gauge, counter, log).
    fn lost(&self, why: Lost) -> Ended {
        self.fence.close();
        self.status.set(0);
        self.count("lost");
        tracing::error!(lease = %self.config.name, namespace = %self.config.namespace, identity = %self.config.identity, reason = %why, "leadership lost: AWS writes refused from now; stopping the controllers");
        Ended::Lost(why)
    }

    fn count(&self, transition: &str) {
        self.transitions
            .with_label_values(&[self.config.name.as_str(), transition])
            .inc();
    }

    /// Gives the lease up (clears `holderIdentity`) if this replica holds it, after closing the
    /// fence. Best effort, bounded by the renew deadline: the lease expires anyway.
    pub async fn release(&self) {
        self.fence.close();
        self.status.set(0);
        let result =
            tokio::time::timeout(self.config.timings.renew_deadline, self.clear_holder()).await;
        match result {
            Ok(Ok(())) => {
                self.count("released");
                tracing::info!(lease = %self.config.name, "leader lease released");
            }
            Ok(Err(error)) => {
                tracing::warn!(%error, lease = %self.config.name, "cannot release the leader lease (it will expire)");
            }
            Err(_) => {
                tracing::warn!(lease = %self.config.name, "releasing the leader lease timed out (it will expire)");
            }
        }
    }

    async fn clear_holder(&self) -> Result<(), kube::Error> {
        let Some(mut lease) = self.api.get_opt(&self.config.name).await? else {
            return Ok(());
        };
        let Some(spec) = lease.spec.as_mut() else {
            return Ok(());
        };
        if spec.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        self.api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await
            .map(|_| ())
    }

    /// The Lease as an object reference for Events (name and namespace are enough).
    pub fn lease_reference(&self) -> Lease {
        Lease {
            metadata: ObjectMeta {
                name: Some(self.config.name.clone()),
                namespace: Some(self.config.namespace.clone()),
                ..ObjectMeta::default()
            },
            spec: None,
        }
    }
}

/// Leadership was lost: the process exits non-zero so the pod restarts as a standby.
pub fn lost_error(config: &LeaseConfig) -> Error {
    Error::LeadershipLost {
        namespace: config.namespace.clone(),
        name: config.name.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIFTEEN: Duration = Duration::from_secs(15);

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    /// A lease spec whose writer's wall clock said `renewed` seconds around now (its skew).
    fn lease(holder: Option<&str>, renewed: i64, duration: Option<i32>) -> LeaseSpec {
        let at = Timestamp::now() + SignedDuration::from_secs(renewed);
        LeaseSpec {
            holder_identity: holder.map(str::to_owned),
            renew_time: Some(MicroTime(at)),
            lease_duration_seconds: duration,
            ..LeaseSpec::default()
        }
    }

    #[test]
    fn decision_table() {
        let t0 = Instant::now();
        let wait = |h: &str| Decision::Wait { holder: h.into() };
        // (case, lease, seen unchanged for, expected)
        let cases: Vec<(&str, Option<LeaseSpec>, Duration, Decision)> = vec![
            ("absent", None, secs(0), Decision::Create),
            (
                "released",
                Some(lease(None, 0, Some(15))),
                secs(0),
                Decision::Acquire,
            ),
            (
                "empty holder",
                Some(lease(Some(""), 0, Some(15))),
                secs(0),
                Decision::Acquire,
            ),
            (
                "mine",
                Some(lease(Some("me"), 0, Some(15))),
                secs(0),
                Decision::Renew,
            ),
            (
                "mine, unchanged long",
                Some(lease(Some("me"), 0, Some(15))),
                secs(100),
                Decision::Renew,
            ),
            (
                "other, just seen",
                Some(lease(Some("b"), 0, Some(15))),
                secs(0),
                wait("b"),
            ),
            (
                "other, unchanged 14s",
                Some(lease(Some("b"), 0, Some(15))),
                secs(14),
                wait("b"),
            ),
            (
                "other, unchanged 15s",
                Some(lease(Some("b"), 0, Some(15))),
                secs(15),
                Decision::Acquire,
            ),
            (
                "other, own duration",
                Some(lease(Some("b"), 0, Some(60))),
                secs(30),
                wait("b"),
            ),
            (
                "other, default duration",
                Some(lease(Some("b"), 0, None)),
                secs(14),
                wait("b"),
            ),
            (
                "other, default expired",
                Some(lease(Some("b"), 0, None)),
                secs(15),
                Decision::Acquire,
            ),
            (
                "other, negative duration",
                Some(lease(Some("b"), 0, Some(-5))),
                secs(0),
                Decision::Acquire,
            ),
            // Skew: the writer's clock an hour behind ours. Its renewTime looks an hour old;
            // the old rule took such a live lease at once.
            (
                "other, clock behind, fresh",
                Some(lease(Some("b"), -3600, Some(15))),
                secs(1),
                wait("b"),
            ),
            // The writer's clock an hour ahead: its renewTime is in our future; the old rule
            // waited an hour after it died.
            (
                "other, clock ahead, dead",
                Some(lease(Some("b"), 3600, Some(15))),
                secs(15),
                Decision::Acquire,
            ),
        ];
        for (name, spec, unchanged, expected) in cases {
            let seen = Sighting {
                version: "1".into(),
                since: t0,
            };
            assert_eq!(
                decide(spec.as_ref(), &seen, t0 + unchanged, "me", FIFTEEN),
                expected,
                "{name}"
            );
        }
    }

    /// Runs a standby's reads: at each second `t`, the lease's record is `versions[t]`.
    fn standby_decisions(versions: &[&str]) -> Vec<Decision> {
        let t0 = Instant::now();
        let spec = lease(Some("b"), 0, Some(3));
        let mut seen = None;
        versions
            .iter()
            .zip(0..)
            .map(|(version, t)| {
                let now = t0 + secs(t);
                let next = sight(seen.as_ref(), version, now);
                let decision = decide(Some(&spec), &next, now, "me", FIFTEEN);
                seen = Some(next);
                decision
            })
            .collect()
    }

    #[test]
    fn a_lease_that_keeps_changing_is_never_taken() {
        let versions: Vec<String> = (0..20).map(|v| v.to_string()).collect();
        let versions: Vec<&str> = versions.iter().map(String::as_str).collect();
        assert!(
            standby_decisions(&versions)
                .iter()
                .all(|d| matches!(d, Decision::Wait { .. }))
        );
    }

    #[test]
    fn a_lease_that_stops_changing_is_taken_one_duration_after_its_last_change() {
        // Changes at 0, 1, 2; unchanged from 2 on; the lease lasts 3s: taken at 5, not before.
        let decisions = standby_decisions(&["a", "b", "c", "c", "c", "c"]);
        let acquired: Vec<bool> = decisions.iter().map(|d| *d == Decision::Acquire).collect();
        assert_eq!(acquired, [false, false, false, false, false, true]);
    }

    #[test]
    fn a_standby_starting_late_waits_a_whole_duration_from_its_first_sight() {
        // However old the lease's renewTime, what counts is when this replica first saw it.
        let decisions = standby_decisions(&["x", "x", "x", "x"]);
        assert_eq!(decisions.last(), Some(&Decision::Acquire));
        assert!(matches!(decisions[2], Decision::Wait { .. }));
    }

    #[test]
    fn a_sighting_moves_only_when_the_record_changes() {
        let t0 = Instant::now();
        let first = sight(None, "1", t0);
        assert_eq!(first.since, t0);
        assert_eq!(sight(Some(&first), "1", t0 + secs(5)).since, t0);
        assert_eq!(sight(Some(&first), "2", t0 + secs(5)).since, t0 + secs(5));
    }

    #[test]
    fn the_record_version_covers_what_a_renewal_changes() {
        let mut lease = Lease {
            metadata: ObjectMeta {
                resource_version: Some("7".into()),
                ..ObjectMeta::default()
            },
            spec: Some(lease(Some("b"), 0, Some(15))),
        };
        let before = record_version(&lease);
        lease.spec.as_mut().unwrap().renew_time = Some(MicroTime(Timestamp::UNIX_EPOCH));
        assert_ne!(record_version(&lease), before, "renewTime");
        let renewed = record_version(&lease);
        lease.metadata.resource_version = Some("8".into());
        assert_ne!(record_version(&lease), renewed, "resourceVersion");
    }

    #[test]
    fn default_timings_renew_well_within_the_lease() {
        let t = LeaseTimings::default();
        assert_eq!(t, LeaseTimings::new(secs(15), secs(10), secs(2)).unwrap());
        assert_eq!(t.renew_interval, t.renew_deadline / 3);
        assert!(t.renew_deadline < t.lease_duration);
        assert!(t.renew_interval < t.renew_deadline);
    }

    #[test]
    fn timings_that_could_let_two_replicas_act_are_refused() {
        for (lease, deadline, retry) in [(10, 10, 2), (10, 15, 2), (15, 10, 10)] {
            let error = LeaseTimings::new(secs(lease), secs(deadline), secs(retry)).unwrap_err();
            assert!(
                matches!(error, Error::LeaderElectionTimings { .. }),
                "{lease} {deadline} {retry}: {error}"
            );
        }
        let short = LeaseTimings::new(secs(4), secs(3), Duration::from_millis(250)).unwrap();
        assert_eq!(short.renew_interval, secs(1));
    }

    #[test]
    fn an_explicit_namespace_wins() {
        assert_eq!(lease_namespace(Some("ops")), "ops");
        assert!(!lease_namespace(None).is_empty());
        assert!(!identity().is_empty());
    }
}
