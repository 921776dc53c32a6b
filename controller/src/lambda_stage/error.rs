//! What can go wrong reconciling a LambdaStage. Variant names (or, for AWS failures, the AWS
//! error's class) are the `reason` of conditions, Warning events and the error metric.

use crate::aws::AwsError;
use crate::base::{Classify, ErrorClass};

#[derive(Debug, thiserror::Error)]
pub enum LambdaStageError {
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
    /// Lambda reports another hash than the artifact's after a code update: the object changed
    /// between the check and the deploy. The next reconcile checks it again.
    #[error(
        "function {function} reports code sha256 {deployed} after the update, expected {expected}"
    )]
    CodeVerificationFailed {
        function: String,
        expected: String,
        deployed: String,
    },
    /// The plan needs a human or a change (in the spec or in AWS).
    #[error("{message}")]
    Stalled {
        reason: &'static str,
        message: String,
    },
    /// Deletion waits while the object is paused.
    #[error("paused: the object keeps its finalizer until stagehand.dev/paused is removed")]
    Paused,
    /// Writing status failed.
    #[error(transparent)]
    Runtime(#[from] crate::runtime::Error),
}

impl Classify for LambdaStageError {
    fn class(&self) -> ErrorClass {
        match self {
            Self::Observe { source } | Self::Action { source, .. } => source.class(),
            Self::CodeVerificationFailed { .. } | Self::Paused => ErrorClass::Recoverable,
            Self::Stalled { .. } => ErrorClass::Stalled,
            Self::Runtime(e) => e.class(),
        }
    }

    fn reason(&self) -> &'static str {
        match self {
            Self::Observe { source } | Self::Action { source, .. } => source.reason(),
            Self::CodeVerificationFailed { .. } => "CodeVerificationFailed",
            Self::Stalled { reason, .. } => reason,
            Self::Paused => "Paused",
            Self::Runtime(e) => e.reason(),
        }
    }
}
