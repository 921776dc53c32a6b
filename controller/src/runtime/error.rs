//! Errors of the runtime itself, and the classification every reconcile error carries.
//!
//! Each layer (runtime, AWS adapters, each kind) has its own error enum; all of them implement
//! [`Classify`] so the runtime can decide how to requeue and what to report without knowing the
//! kind. Variant names double as condition reasons and metric labels, so they are named for the
//! operator reading a dashboard (`OwnershipConflict`), not for the compiler.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::base::{Classify, ErrorClass};

/// The first retry of a recoverable error waits this long.
pub const BACKOFF_BASE: Duration = Duration::from_secs(5);
/// Retries never wait longer than this.
pub const BACKOFF_CAP: Duration = Duration::from_secs(5 * 60);

/// Delay before retry number `attempt` (1 = first failure) of a recoverable error: 5s, 10s,
/// 20s, ... doubling up to [`BACKOFF_CAP`]. Attempt 0 is treated as 1.
pub fn backoff(attempt: u32) -> Duration {
    let doublings = attempt.saturating_sub(1).min(16);
    BACKOFF_BASE
        .saturating_mul(1_u32 << doublings)
        .min(BACKOFF_CAP)
}

/// Errors of the runtime: starting up, talking to the Kubernetes API on behalf of every kind,
/// serving metrics.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Neither a kubeconfig nor an in-cluster service account was found.
    #[error(
        "cannot reach a Kubernetes API: no kubeconfig found (set KUBECONFIG or run in-cluster): {source}"
    )]
    NoKubeconfig {
        #[source]
        source: Box<kube::config::InferConfigError>,
    },

    /// An explicitly named kubeconfig could not be read or used.
    #[error("cannot use kubeconfig {path}: {source}", path = path.display())]
    Kubeconfig {
        path: PathBuf,
        #[source]
        source: Box<kube::config::KubeconfigError>,
    },

    /// The client could not be built from a valid configuration (bad TLS material, proxy).
    #[error("cannot create a Kubernetes client for {cluster_url}: {source}")]
    KubeClient {
        cluster_url: String,
        #[source]
        source: Box<kube::Error>,
    },

    /// The API server did not answer a version request at startup.
    #[error("cannot reach the Kubernetes API at {cluster_url}: {source}")]
    KubeUnreachable {
        cluster_url: String,
        #[source]
        source: Box<kube::Error>,
    },

    /// The AWS SDK configuration cannot be used (no region, a malformed endpoint).
    #[error(transparent)]
    AwsConfig(#[from] crate::aws::config::ConfigError),

    /// A metric could not be registered (a programming error: duplicate name or bad labels).
    #[error("cannot register metric: {0}")]
    Metrics(#[from] prometheus::Error),

    /// The metrics/health server could not bind its address.
    #[error("cannot listen on {addr} for metrics and health checks: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },

    /// The metrics/health server failed while serving.
    #[error("metrics and health server failed: {0}")]
    Serve(#[source] std::io::Error),

    /// Writing an object's status failed.
    #[error("cannot write status of {kind} {namespace}/{name}: {source}")]
    StatusPatch {
        kind: String,
        namespace: String,
        name: String,
        #[source]
        source: Box<kube::Error>,
    },

    /// The status value to write is not a JSON object.
    #[error("status of {kind} {namespace}/{name} must be a JSON object")]
    StatusNotAnObject {
        kind: String,
        namespace: String,
        name: String,
    },

    /// Adding or removing the `stagehand.dev/cleanup` finalizer failed.
    #[error("cannot {operation} finalizer {finalizer} on {kind} {namespace}/{name}: {source}", finalizer = stagehand_crds::FINALIZER)]
    Finalizer {
        /// `add` or `remove`.
        operation: &'static str,
        kind: String,
        namespace: String,
        name: String,
        #[source]
        source: Box<kube::Error>,
    },

    /// kube rejected the finalizer name as a JSON pointer (a programming error).
    #[error("invalid finalizer name {finalizer:?}", finalizer = stagehand_crds::FINALIZER)]
    InvalidFinalizer,

    /// The object has no name (only possible for objects not read from the API).
    #[error("{kind} object has no name")]
    UnnamedObject { kind: String },

    /// This replica stopped leading (lease taken over or not renewed in time): it exits so the
    /// pod restarts as a standby.
    #[error("lost leadership of lease {namespace}/{name}")]
    LeadershipLost { namespace: String, name: String },

    /// The leader election timings do not fit together (the renew deadline must be shorter
    /// than the lease duration, the retry period shorter than the renew deadline).
    #[error("invalid leader election timings: {message}")]
    LeaderElectionTimings { message: String },

    /// A namespaced object without a namespace (only possible for objects not read from the
    /// API).
    #[error("{kind} {name} has no namespace")]
    NoNamespace { kind: String, name: String },
}

impl Error {
    /// What the user can do about it, printed under the error by the CLI.
    pub const fn hint(&self) -> Option<&'static str> {
        match self {
            Self::NoKubeconfig { .. } | Self::Kubeconfig { .. } => Some(
                "hint: point KUBECONFIG (or --kubeconfig) at a valid kubeconfig, or run Stagehand in a pod with a service account",
            ),
            Self::KubeUnreachable { .. } => Some(
                "hint: check that the cluster is up and that the current kubeconfig context points at it (kubectl cluster-info)",
            ),
            Self::AwsConfig(error) => Some(error.hint()),
            Self::LeaderElectionTimings { .. } => Some(
                "hint: e.g. --leader-election-lease-duration 15s --leader-election-renew-deadline 10s --leader-election-retry-period 2s",
            ),
            Self::Bind { .. } => Some(
                "hint: another process may use the port; choose another with --metrics-addr (STAGEHAND_METRICS_ADDR)",
            ),
            _ => None,
        }
    }
}

impl Classify for Error {
    fn class(&self) -> ErrorClass {
        // Everything the runtime does per object is an API write that may succeed on retry
        // (conflict, API server briefly away). Startup errors are never classified: they end
        // the process.
        ErrorClass::Recoverable
    }

    fn reason(&self) -> &'static str {
        match self {
            Self::NoKubeconfig { .. }
            | Self::Kubeconfig { .. }
            | Self::KubeClient { .. }
            | Self::KubeUnreachable { .. } => "KubernetesUnavailable",
            Self::AwsConfig(_) => "AwsConfigInvalid",
            Self::Metrics(_) | Self::Bind { .. } | Self::Serve(_) => "MetricsServerFailed",
            Self::StatusPatch { .. } | Self::StatusNotAnObject { .. } => "StatusUpdateFailed",
            Self::LeadershipLost { .. } => "LeadershipLost",
            Self::LeaderElectionTimings { .. } => "LeaderElectionInvalid",
            Self::Finalizer { .. }
            | Self::InvalidFinalizer
            | Self::UnnamedObject { .. }
            | Self::NoNamespace { .. } => "FinalizerUpdateFailed",
        }
    }
}

/// What a reconcile returns to the controller: the kind's own error from apply or cleanup, or a
/// runtime error from the work around them (finalizer, status).
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError<E>
where
    E: std::error::Error + 'static,
{
    /// The kind's apply failed.
    #[error(transparent)]
    Apply(E),
    /// The kind's cleanup (on deletion) failed; the finalizer stays until it succeeds.
    #[error("cleanup before deletion failed: {0}")]
    Cleanup(#[source] E),
    /// The runtime's own work failed.
    #[error(transparent)]
    Runtime(#[from] Error),
}

impl<E> Classify for ReconcileError<E>
where
    E: std::error::Error + Classify + 'static,
{
    fn class(&self) -> ErrorClass {
        match self {
            Self::Apply(e) | Self::Cleanup(e) => e.class(),
            Self::Runtime(e) => e.class(),
        }
    }

    fn reason(&self) -> &'static str {
        match self {
            Self::Apply(e) | Self::Cleanup(e) => e.reason(),
            Self::Runtime(e) => e.reason(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_5s_and_caps_at_5m() {
        let expected = [
            (0, 5),
            (1, 5),
            (2, 10),
            (3, 20),
            (4, 40),
            (5, 80),
            (6, 160),
            (7, 300),
            (8, 300),
            (30, 300),
            (u32::MAX, 300),
        ];
        for (attempt, secs) in expected {
            assert_eq!(
                backoff(attempt),
                Duration::from_secs(secs),
                "attempt {attempt}"
            );
        }
    }

    #[test]
    fn backoff_never_decreases() {
        let mut previous = Duration::ZERO;
        for attempt in 0..100 {
            let delay = backoff(attempt);
            assert!(delay >= previous);
            assert!(delay <= BACKOFF_CAP);
            previous = delay;
        }
    }

    #[test]
    fn startup_errors_have_hints_that_name_the_fix() {
        let no_region = Error::from(crate::aws::config::ConfigError::NoRegion);
        assert_eq!(
            no_region.to_string(),
            "no AWS region configured: set --aws-region or AWS_REGION"
        );
        assert!(no_region.hint().unwrap().contains("AWS_REGION"));
        let bind = Error::Bind {
            addr: "127.0.0.1:8080".parse().unwrap(),
            source: std::io::Error::from(std::io::ErrorKind::AddrInUse),
        };
        assert!(bind.to_string().contains("127.0.0.1:8080"));
        assert!(bind.hint().unwrap().contains("--metrics-addr"));
    }

    #[derive(Debug, thiserror::Error)]
    #[error("artifact differs from the pin")]
    struct ArtifactMismatch;
    impl Classify for ArtifactMismatch {
        fn class(&self) -> ErrorClass {
            ErrorClass::Stalled
        }
        fn reason(&self) -> &'static str {
            "ArtifactMismatch"
        }
    }

    #[test]
    fn reconcile_errors_classify_as_their_cause() {
        let apply: ReconcileError<ArtifactMismatch> = ReconcileError::Apply(ArtifactMismatch);
        assert_eq!(apply.class(), ErrorClass::Stalled);
        assert_eq!(apply.reason(), "ArtifactMismatch");
        assert_eq!(apply.to_string(), "artifact differs from the pin");
        let cleanup: ReconcileError<ArtifactMismatch> = ReconcileError::Cleanup(ArtifactMismatch);
        assert_eq!(cleanup.class(), ErrorClass::Stalled);
        assert_eq!(
            cleanup.to_string(),
            "cleanup before deletion failed: artifact differs from the pin"
        );
        let runtime: ReconcileError<ArtifactMismatch> = Error::UnnamedObject {
            kind: "SpotFleet".into(),
        }
        .into();
        assert_eq!(runtime.class(), ErrorClass::Recoverable);
        assert_eq!(runtime.reason(), "FinalizerUpdateFailed");
    }

    #[test]
    fn runtime_errors_are_recoverable_with_camel_case_reasons() {
        let errors = [
            Error::from(crate::aws::config::ConfigError::NoRegion),
            Error::UnnamedObject {
                kind: "LambdaStage".into(),
            },
            Error::StatusNotAnObject {
                kind: "LambdaStage".into(),
                namespace: "ns".into(),
                name: "n".into(),
            },
        ];
        for err in errors {
            assert_eq!(err.class(), ErrorClass::Recoverable);
            let reason = err.reason();
            assert!(reason.chars().next().unwrap().is_ascii_uppercase());
            assert!(
                reason.chars().all(|c| c.is_ascii_alphanumeric()),
                "{reason}"
            );
        }
    }
}
