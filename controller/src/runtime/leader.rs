//! Leader election with a `coordination.k8s.io/v1` Lease, so that only one replica reconciles.
//!
//! The decision is pure ([`decide`]: lease, clock, identity → what to do); [`LeaderElector`]
//! does the I/O. Writes are optimistic (`replace` carries the resourceVersion read), so a `409
//! Conflict` on create or update means another replica got there first.
//!
//! Behaviour: a replica waits (standby) until it holds the lease, then runs the controllers and
//! renews every `renew_interval`. If it cannot renew within `renew_deadline`, or finds the lease
//! held by someone else, it has lost: the manager stops the controllers and the process exits
//! non-zero so the pod restarts as a fresh standby (simple and safe: no half-stopped state is
//! reused). On graceful shutdown the holder releases the lease (clears `holderIdentity`) so a
//! standby takes over at once instead of after the lease expires.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Client;
use kube::api::{Api, ObjectMeta, PostParams};
use prometheus::IntGauge;

use super::error::Error;
use super::metrics::Metrics;
use super::shutdown::Shutdown;

/// Default name of the Lease.
pub const DEFAULT_LEASE_NAME: &str = "stagehand-leader";
/// Where Kubernetes mounts the pod's namespace.
const SERVICE_ACCOUNT_NAMESPACE_FILE: &str =
    "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

/// Timings of the election.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseTimings {
    /// How long a lease is valid after its last renewal (`leaseDurationSeconds`).
    pub lease_duration: Duration,
    /// How often the holder renews.
    pub renew_interval: Duration,
    /// The holder gives up if it could not renew for this long (must be below
    /// `lease_duration`, so it stops before anyone else may take over).
    pub renew_deadline: Duration,
    /// How often a standby tries to acquire.
    pub retry_interval: Duration,
}

impl Default for LeaseTimings {
    /// 15s leases renewed every 5s, given up after 10s without renewal; standbys retry every 2s.
    fn default() -> Self {
        Self {
            lease_duration: Duration::from_secs(15),
            renew_interval: Duration::from_secs(5),
            renew_deadline: Duration::from_secs(10),
            retry_interval: Duration::from_secs(2),
        }
    }
}

/// Which Lease, held by whom, with which timings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseConfig {
    pub namespace: String,
    pub name: String,
    pub identity: String,
    pub timings: LeaseTimings,
}

/// What a replica does with the lease as it finds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// No Lease object: create it, holding it.
    Create,
    /// Free (released or expired): take it over.
    Acquire,
    /// Ours: renew it.
    Renew,
    /// Held by someone else and still valid.
    Wait { holder: String },
}

/// The pure election rule. A lease is free when it has no holder, or when its last renewal (or
/// acquisition) plus its duration is not after `now`. `default_duration` applies when the lease
/// does not say.
pub fn decide(
    lease: Option<&LeaseSpec>,
    now: Timestamp,
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
    let duration = spec.lease_duration_seconds.map_or_else(
        || SignedDuration::try_from(default_duration).unwrap_or(SignedDuration::MAX),
        |seconds| SignedDuration::from_secs(i64::from(seconds.max(0))),
    );
    let last = spec
        .renew_time
        .as_ref()
        .or(spec.acquire_time.as_ref())
        .map(|t| t.0);
    let expired =
        last.is_none_or(|last| last.checked_add(duration).is_ok_and(|expiry| expiry <= now));
    if expired {
        Decision::Acquire
    } else {
        Decision::Wait {
            holder: holder.to_owned(),
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

/// How a held leadership ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    /// Graceful shutdown; the lease was released.
    Shutdown,
    /// Lost (taken over, or not renewed in time).
    Lost,
}

/// Takes part in the election of one Lease.
#[derive(Clone, Debug)]
pub struct LeaderElector {
    api: Api<Lease>,
    config: LeaseConfig,
    status: IntGauge,
}

impl LeaderElector {
    /// An elector for `config`; exports `leader_election_master_status{name}` (0 until leading).
    pub fn new(client: Client, config: LeaseConfig, metrics: &Metrics) -> Self {
        let status = metrics.leader_status(&config.name);
        status.set(0);
        Self {
            api: Api::namespaced(client, &config.namespace),
            config,
            status,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &LeaseConfig {
        &self.config
    }

    /// One round: reads the lease and acquires, renews or waits. `Ok(true)` while this replica
    /// holds it; `Ok(false)` when someone else does (including losing a write race: 409).
    pub async fn try_acquire_or_renew(&self) -> Result<bool, kube::Error> {
        let current = self.api.get_opt(&self.config.name).await?;
        let now = Timestamp::now();
        let decision = decide(
            current.as_ref().and_then(|l| l.spec.as_ref()),
            now,
            &self.config.identity,
            self.config.timings.lease_duration,
        );
        let duration_seconds =
            i32::try_from(self.config.timings.lease_duration.as_secs()).unwrap_or(i32::MAX);
        let write = match (decision, current) {
            (Decision::Wait { .. }, _) => return Ok(false),
            (Decision::Create, _) | (_, None) => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.config.name.clone()),
                        namespace: Some(self.config.namespace.clone()),
                        ..ObjectMeta::default()
                    },
                    spec: Some(LeaseSpec {
                        holder_identity: Some(self.config.identity.clone()),
                        lease_duration_seconds: Some(duration_seconds),
                        acquire_time: Some(MicroTime(now)),
                        renew_time: Some(MicroTime(now)),
                        lease_transitions: Some(0),
                        ..LeaseSpec::default()
                    }),
                };
                self.api.create(&PostParams::default(), &lease).await
            }
            (decision, Some(mut lease)) => {
                let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
                if decision == Decision::Acquire {
                    spec.holder_identity = Some(self.config.identity.clone());
                    spec.acquire_time = Some(MicroTime(now));
                    spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
                }
                spec.lease_duration_seconds = Some(duration_seconds);
                spec.renew_time = Some(MicroTime(now));
                // `replace` sends the resourceVersion read above: a concurrent writer wins.
                self.api
                    .replace(&self.config.name, &PostParams::default(), &lease)
                    .await
            }
        };
        match write {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
            Err(error) => Err(error),
        }
    }

    /// Waits until this replica leads (`true`) or the shutdown starts (`false`).
    pub async fn acquire(&self, shutdown: &Shutdown) -> bool {
        let mut waiting_logged = false;
        loop {
            match self.try_acquire_or_renew().await {
                Ok(true) => {
                    self.status.set(1);
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

    /// Renews until the shutdown starts ([`Ended::Shutdown`]; the caller releases the lease once
    /// its controllers have stopped) or leadership is lost ([`Ended::Lost`]).
    pub async fn hold(&self, shutdown: &Shutdown) -> Ended {
        let mut last_renewal = tokio::time::Instant::now();
        loop {
            tokio::select! {
                () = shutdown.wait() => return Ended::Shutdown,
                () = tokio::time::sleep(self.config.timings.renew_interval) => {}
            }
            match self.try_acquire_or_renew().await {
                Ok(true) => last_renewal = tokio::time::Instant::now(),
                Ok(false) => {
                    tracing::error!(lease = %self.config.name, "leadership lost: the lease is held by another replica");
                    self.status.set(0);
                    return Ended::Lost;
                }
                Err(error) if last_renewal.elapsed() >= self.config.timings.renew_deadline => {
                    tracing::error!(%error, lease = %self.config.name, "leadership lost: could not renew the lease in time");
                    self.status.set(0);
                    return Ended::Lost;
                }
                Err(error) => {
                    tracing::warn!(%error, lease = %self.config.name, "cannot renew the leader lease (retrying)");
                }
            }
        }
    }

    /// Gives the lease up (clears `holderIdentity`) if this replica holds it. Best effort: the
    /// lease expires anyway.
    pub async fn release(&self) {
        self.status.set(0);
        let result = async {
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
        .await;
        match result {
            Ok(()) => tracing::info!(lease = %self.config.name, "leader lease released"),
            Err(error) => {
                tracing::warn!(%error, lease = %self.config.name, "cannot release the leader lease (it will expire)");
            }
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

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + seconds).unwrap()
    }

    fn lease(holder: Option<&str>, renewed: Option<i64>, duration: Option<i32>) -> LeaseSpec {
        LeaseSpec {
            holder_identity: holder.map(str::to_owned),
            renew_time: renewed.map(|s| MicroTime(at(s))),
            lease_duration_seconds: duration,
            ..LeaseSpec::default()
        }
    }

    #[test]
    fn decision_table() {
        let fifteen = Duration::from_secs(15);
        let wait = |h: &str| Decision::Wait { holder: h.into() };
        let cases: Vec<(&str, Option<LeaseSpec>, i64, Decision)> = vec![
            ("absent", None, 0, Decision::Create),
            (
                "released",
                Some(lease(None, Some(0), Some(15))),
                1,
                Decision::Acquire,
            ),
            (
                "empty holder",
                Some(lease(Some(""), Some(0), Some(15))),
                1,
                Decision::Acquire,
            ),
            (
                "mine",
                Some(lease(Some("me"), Some(0), Some(15))),
                1,
                Decision::Renew,
            ),
            (
                "mine, expired",
                Some(lease(Some("me"), Some(0), Some(15))),
                100,
                Decision::Renew,
            ),
            (
                "other, fresh",
                Some(lease(Some("b"), Some(0), Some(15))),
                14,
                wait("b"),
            ),
            (
                "other, at expiry",
                Some(lease(Some("b"), Some(0), Some(15))),
                15,
                Decision::Acquire,
            ),
            (
                "other, expired",
                Some(lease(Some("b"), Some(0), Some(15))),
                16,
                Decision::Acquire,
            ),
            (
                "other, own duration",
                Some(lease(Some("b"), Some(0), Some(60))),
                30,
                wait("b"),
            ),
            (
                "other, default duration",
                Some(lease(Some("b"), Some(0), None)),
                14,
                wait("b"),
            ),
            (
                "other, default expired",
                Some(lease(Some("b"), Some(0), None)),
                15,
                Decision::Acquire,
            ),
            (
                "other, never renewed",
                Some(lease(Some("b"), None, Some(15))),
                0,
                Decision::Acquire,
            ),
            (
                "other, negative duration",
                Some(lease(Some("b"), Some(0), Some(-5))),
                0,
                Decision::Acquire,
            ),
            (
                "other, renewed in the future",
                Some(lease(Some("b"), Some(10), Some(15))),
                0,
                wait("b"),
            ),
        ];
        for (name, spec, now, expected) in cases {
            assert_eq!(
                decide(spec.as_ref(), at(now), "me", fifteen),
                expected,
                "{name}"
            );
        }
    }

    #[test]
    fn acquire_time_counts_when_never_renewed() {
        let spec = LeaseSpec {
            holder_identity: Some("b".into()),
            acquire_time: Some(MicroTime(at(0))),
            lease_duration_seconds: Some(15),
            ..LeaseSpec::default()
        };
        assert_eq!(
            decide(Some(&spec), at(5), "me", Duration::from_secs(15)),
            Decision::Wait { holder: "b".into() }
        );
    }

    #[test]
    fn default_timings_renew_well_within_the_lease() {
        let t = LeaseTimings::default();
        assert_eq!(t.lease_duration, Duration::from_secs(15));
        assert_eq!(t.renew_interval, t.lease_duration / 3);
        assert!(t.renew_deadline < t.lease_duration);
        assert!(t.renew_interval < t.renew_deadline);
    }

    #[test]
    fn an_explicit_namespace_wins() {
        assert_eq!(lease_namespace(Some("ops")), "ops");
        assert!(!lease_namespace(None).is_empty());
        assert!(!identity().is_empty());
    }
}
