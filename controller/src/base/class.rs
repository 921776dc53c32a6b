//! How every error of a reconcile is classified: whether retrying can help, and the reason
//! operators read. The AWS adapters, the runtime and every kind share it, so it sits below all
//! of them.

/// How the runtime reacts to a failed reconcile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// Transient (throttling, timeouts, AWS still busy, a conflict on write): retried with
    /// exponential backoff. Reported as `Reconciling=True` with the reason.
    Recoverable,
    /// Needs a human or a spec change (bad artifact, hash mismatch, ownership conflict, failed
    /// validation): not retried on a timer; the next spec change triggers a new attempt.
    /// Reported as `Stalled=True` with the reason.
    Stalled,
}

impl ErrorClass {
    /// `"recoverable"` or `"stalled"`, for logs.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Recoverable => "recoverable",
            Self::Stalled => "stalled",
        }
    }
}

/// Implemented by every error a reconcile can return.
pub trait Classify {
    /// Whether retrying can help.
    fn class(&self) -> ErrorClass;
    /// CamelCase name of what went wrong (usually the variant name). Used as the condition
    /// reason, the event reason and the `reason` metric label, so it must come from a small
    /// fixed set: never include names, ids or messages.
    fn reason(&self) -> &'static str;
}
