//! Kubernetes Events for what Stagehand does (`Normal`) and what fails (`Warning`), so
//! `kubectl describe` tells the story of an object. Reasons are CamelCase and come from a small
//! fixed set; notes are short. Publishing is best effort: a failed event never fails a
//! reconcile.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::Resource;
use kube::runtime::events::{Event, EventType, Recorder};

use crate::base::conditions::is_valid_reason;
use crate::base::{Classify, ErrorClass};

/// Notes are cut to stay under the 1 KiB the API server and `kubectl describe` handle well.
pub const MAX_NOTE_BYTES: usize = 1000;

/// Publishes events through kube's [`Recorder`] (which aggregates repeats into a series).
#[derive(Clone)]
pub struct EventPublisher {
    recorder: Recorder,
}

impl std::fmt::Debug for EventPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventPublisher").finish_non_exhaustive()
    }
}

impl EventPublisher {
    /// Wraps a recorder; see `Context::events`.
    pub fn new(recorder: Recorder) -> Self {
        Self { recorder }
    }

    /// Records a change Stagehand made (or started), e.g. reason `CodeUpdated`, action
    /// `UpdateFunctionCode`.
    pub async fn action<K>(&self, object: &K, reason: &str, action: &str, note: &str)
    where
        K: Resource<DynamicType = ()>,
    {
        self.publish(object, action_event(reason, action, note))
            .await;
    }

    /// Records a failed reconcile step as a Warning with the error's reason.
    pub async fn failure<K, E>(&self, object: &K, action: &str, error: &E)
    where
        K: Resource<DynamicType = ()>,
        E: Classify + std::fmt::Display + ?Sized,
    {
        self.publish(object, failure_event(action, error)).await;
    }

    /// Publishes `event` about `object`; logs instead of failing.
    pub async fn publish<K>(&self, object: &K, event: Event)
    where
        K: Resource<DynamicType = ()>,
    {
        let reference: ObjectReference = object.object_ref(&());
        if let Err(error) = self.recorder.publish(&event, &reference).await {
            tracing::warn!(
                %error,
                reason = %event.reason,
                "cannot publish Kubernetes event (the reconcile continues)"
            );
        }
    }
}

/// A `Normal` event for an action.
pub fn action_event(reason: &str, action: &str, note: &str) -> Event {
    Event {
        type_: EventType::Normal,
        reason: camel_case_or(reason, "Action"),
        note: Some(truncate_note(note)),
        action: camel_case_or(action, "Reconcile"),
        secondary: None,
    }
}

/// A `Warning` event for a failure: reason = the error's reason, note = its message and whether
/// Stagehand will retry.
pub fn failure_event<E>(action: &str, error: &E) -> Event
where
    E: Classify + std::fmt::Display + ?Sized,
{
    let next = match error.class() {
        ErrorClass::Recoverable => "will retry",
        ErrorClass::Stalled => "waiting for a spec change",
    };
    Event {
        type_: EventType::Warning,
        reason: camel_case_or(error.reason(), "ReconcileFailed"),
        note: Some(truncate_note(&format!("{error} ({next})"))),
        action: camel_case_or(action, "Reconcile"),
        secondary: None,
    }
}

fn camel_case_or(value: &str, fallback: &str) -> String {
    if is_valid_reason(value) && value.len() <= 128 {
        value.to_owned()
    } else {
        fallback.to_owned()
    }
}

/// `note` cut to at most [`MAX_NOTE_BYTES`] on a character boundary, marked with `…` when cut.
pub fn truncate_note(note: &str) -> String {
    if note.len() <= MAX_NOTE_BYTES {
        return note.to_owned();
    }
    let ellipsis = '…';
    let mut end = MAX_NOTE_BYTES - ellipsis.len_utf8();
    while !note.is_char_boundary(end) {
        end -= 1;
    }
    let mut cut = note[..end].to_owned();
    cut.push(ellipsis);
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("{0}")]
    struct TestError(String, ErrorClass, &'static str);
    impl Classify for TestError {
        fn class(&self) -> ErrorClass {
            self.1
        }
        fn reason(&self) -> &'static str {
            self.2
        }
    }

    #[test]
    fn action_events_are_normal_with_camel_case_reason() {
        let event = action_event(
            "CodeUpdated",
            "UpdateFunctionCode",
            "api-dev: deployed 1a2b3c",
        );
        assert_eq!(event.type_, EventType::Normal);
        assert_eq!(event.reason, "CodeUpdated");
        assert_eq!(event.action, "UpdateFunctionCode");
        assert_eq!(event.note.as_deref(), Some("api-dev: deployed 1a2b3c"));
    }

    #[test]
    fn invalid_reasons_fall_back() {
        let event = action_event("code updated", "update-code", "");
        assert_eq!(event.reason, "Action");
        assert_eq!(event.action, "Reconcile");
    }

    #[test]
    fn failure_events_are_warnings_that_say_what_happens_next() {
        let stalled = TestError(
            "artifact sha256 differs from the pin".into(),
            ErrorClass::Stalled,
            "ArtifactMismatch",
        );
        let event = failure_event("UpdateFunctionCode", &stalled);
        assert_eq!(event.type_, EventType::Warning);
        assert_eq!(event.reason, "ArtifactMismatch");
        assert_eq!(
            event.note.as_deref(),
            Some("artifact sha256 differs from the pin (waiting for a spec change)")
        );

        let throttled = TestError("rate exceeded".into(), ErrorClass::Recoverable, "Throttled");
        let event = failure_event("Observe", &throttled);
        assert_eq!(event.note.as_deref(), Some("rate exceeded (will retry)"));
    }

    #[test]
    fn long_notes_are_cut_below_one_kib() {
        let long = TestError("ü".repeat(2000), ErrorClass::Recoverable, "Throttled");
        let note = failure_event("Observe", &long).note.unwrap();
        assert!(note.len() <= MAX_NOTE_BYTES, "{}", note.len());
        assert!(note.ends_with('…'));
        assert!(note.len() > MAX_NOTE_BYTES - 8);
        assert_eq!(truncate_note("short"), "short");
    }
}
