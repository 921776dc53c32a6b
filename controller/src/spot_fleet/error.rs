//! What can go wrong reconciling a SpotFleet. Variant names (or, for AWS failures, the AWS
//! error's class) are the `reason` of conditions, Warning events and the error metric.

use super::cloud_init::CloudInitError;
use crate::aws::AwsError;
use crate::base::{Classify, ErrorClass};

#[derive(Debug, thiserror::Error)]
pub enum SpotFleetError {
    /// Reading AWS failed.
    #[error("observing AWS: {source}")]
    Observe {
        #[source]
        source: AwsError,
    },
    /// An action failed; the actions after it were not run.
    #[error("{action}: {source}")]
    Action {
        action: String,
        #[source]
        source: AwsError,
    },
    /// `CreateFleet` launched nothing and said why (no capacity in any pool offered, a bad
    /// parameter): retried on the next round, without the pools found without capacity.
    #[error("launch of {count} instance(s) launched none: {errors}")]
    LaunchFailed { count: u32, errors: String },
    /// EC2 refused something the spec names (an image, subnet, security group, key pair or
    /// instance profile that does not exist): nothing launches until the spec (or the account)
    /// changes. Remembered, so the plan stalls on it instead of launching again.
    #[error(
        "EC2 refused spec.{field}: {code}: {message} (fix the spec: it is launched at once when it changes)"
    )]
    SpecRefused {
        field: &'static str,
        code: String,
        message: String,
    },
    /// A launch template carries this fleet's name but another owner's tags: never used.
    #[error("launch template {name} is not tagged as this fleet's ({owner})")]
    TemplateNotOurs { name: String, owner: String },
    /// The user data cannot be rendered (too large for EC2): nothing can be launched until
    /// the spec changes.
    #[error("user data: {0}")]
    UserData(#[from] CloudInitError),
    /// The TCP health check would dial addresses outside 127.0.0.0/8 while the controller runs
    /// loopback-only (tests, demo, CI against an AWS emulator): nothing is dialled, nothing is
    /// planned. Fixed by rewriting the instances' addresses to loopback, or by running without
    /// `--loopback-only` where the addresses are real.
    #[error(
        "healthCheck.tcpPort: not dialling {}: outside 127.0.0.0/8 and --loopback-only \
         (STAGEHAND_LOOPBACK_ONLY) is set",
        targets.join(", ")
    )]
    ProbeNotAllowed { targets: Vec<String> },
    /// The plan needs a human or a change (in the spec or in EC2).
    #[error("{message}")]
    Stalled {
        reason: &'static str,
        message: String,
    },
    /// Deletion waits until EC2 lists none of the fleet's instances as live or shutting down:
    /// the finalizer stays (the runtime removes it only after a cleanup that succeeded).
    #[error("waiting for {} instance(s) to terminate: {}", ids.len(), ids.join(", "))]
    TeardownPending { ids: Vec<String> },
    /// Deletion waits while the object is paused.
    #[error("paused: the object keeps its finalizer until stagehand.dev/paused is removed")]
    Paused,
    /// Writing status failed.
    #[error(transparent)]
    Runtime(#[from] crate::runtime::Error),
}

impl Classify for SpotFleetError {
    fn class(&self) -> ErrorClass {
        match self {
            Self::Observe { source } | Self::Action { source, .. } => source.class(),
            Self::LaunchFailed { .. } | Self::TeardownPending { .. } | Self::Paused => {
                ErrorClass::Recoverable
            }
            Self::TemplateNotOurs { .. }
            | Self::SpecRefused { .. }
            | Self::UserData(_)
            | Self::ProbeNotAllowed { .. }
            | Self::Stalled { .. } => ErrorClass::Stalled,
            Self::Runtime(e) => e.class(),
        }
    }

    fn reason(&self) -> &'static str {
        match self {
            Self::Observe { source } | Self::Action { source, .. } => source.reason(),
            Self::LaunchFailed { .. } => "LaunchFailed",
            Self::TeardownPending { .. } => "WaitingForTermination",
            Self::TemplateNotOurs { .. } => "OwnershipConflict",
            Self::SpecRefused { .. } => super::plan::reason::LAUNCH_SPEC_REFUSED,
            Self::UserData(_) => "InvalidUserData",
            Self::ProbeNotAllowed { .. } => "ProbeNotAllowed",
            Self::Stalled { reason, .. } => reason,
            Self::Paused => "Paused",
            Self::Runtime(e) => e.reason(),
        }
    }
}
