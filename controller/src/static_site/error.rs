//! What can go wrong reconciling a StaticSite. Variant names (or, for AWS failures, the AWS
//! error's class; for a refused build, the rule it broke) are the `reason` of conditions,
//! Warning events and the error metric.

use super::build::BuildError;
use super::manifest::ManifestError;
use super::metadata::InvalidRule;
use crate::aws::AwsError;
use crate::base::{Classify, ErrorClass};

#[derive(Debug, thiserror::Error)]
pub enum StaticSiteError {
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
        /// Boxed: an AWS error is large, and every result of act carries this type.
        #[source]
        source: Box<AwsError>,
    },
    /// The source archive was refused or could not be read.
    #[error("source archive {archive}: {source}")]
    Build {
        archive: String,
        #[source]
        source: BuildError,
    },
    /// A `cacheControl` rule does not compile.
    #[error(transparent)]
    Metadata(#[from] InvalidRule),
    /// A record under `.stagehand/` cannot be trusted.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// An action's result was not what the plan needs (a version id missing from a write).
    #[error("{action}: {message}")]
    Inconsistent { action: String, message: String },
    /// The plan needs a human or a change (in the spec or in AWS).
    #[error("{message}")]
    Stalled {
        reason: &'static str,
        message: String,
    },
    /// Deletion is not finished: the finalizer stays until a round plans nothing and waits on
    /// nothing (a distribution being disabled takes minutes on AWS).
    #[error("deletion in progress: {pending}")]
    TeardownPending { pending: String },
    /// Deletion waits while the object is paused.
    #[error("paused: the object keeps its finalizer until stagehand.dev/paused is removed")]
    Paused,
    /// Writing status failed.
    #[error(transparent)]
    Runtime(#[from] crate::runtime::Error),
}

impl Classify for StaticSiteError {
    fn class(&self) -> ErrorClass {
        match self {
            Self::Observe { source } => source.class(),
            Self::Action { source, .. } => source.class(),
            Self::Build { source, .. } => source.class(),
            Self::Metadata(e) => e.class(),
            Self::Manifest(e) => e.class(),
            Self::Inconsistent { .. } | Self::TeardownPending { .. } | Self::Paused => {
                ErrorClass::Recoverable
            }
            Self::Stalled { .. } => ErrorClass::Stalled,
            Self::Runtime(e) => e.class(),
        }
    }

    fn reason(&self) -> &'static str {
        match self {
            Self::Observe { source } => source.reason(),
            Self::Action { source, .. } => source.reason(),
            Self::Build { source, .. } => source.reason(),
            Self::Metadata(e) => e.reason(),
            Self::Manifest(e) => e.reason(),
            Self::Inconsistent { .. } => "InconsistentWrite",
            Self::Stalled { reason, .. } => reason,
            Self::TeardownPending { .. } => "TeardownPending",
            Self::Paused => "Paused",
            Self::Runtime(e) => e.reason(),
        }
    }
}
