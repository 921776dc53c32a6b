//! Kubernetes Events for what Stagehand does (`Normal`) and what fails (`Warning`), so
//! `kubectl describe` tells the story of an object. Reasons are CamelCase and come from a small
//! fixed set; notes are short. Publishing is best effort: a failed event never fails a
//! reconcile.
//!
//! A repeat of an event (same object, type, reason, action and note) within
//! [`SERIES_WINDOW`] of its last occurrence continues it as a series (`series.count`,
//! `series.lastObservedTime`: one PATCH) instead of creating another Event, as client-go's
//! recorder does. Unlike kube's `Recorder`, which keeps every event it published in the
//! window as a whole object (≈ 3.4 KiB each: 34 MB for 10,000 objects converging within six
//! minutes, scanned on every publish), this keeps a 64-bit key, the event's name and its count,
//! and sweeps what is past the window at most every [`SWEEP_EVERY`]. The note is part of the
//! key: a repeat with another note (another build deployed) is a new Event, where kube's
//! recorder counted it into the first and kept the first note.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event as K8sEvent, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Client, Resource};
use tokio::time::Instant;

use kube::runtime::events::{Event, EventType};

use crate::base::conditions::is_valid_reason;
use crate::base::{Classify, ErrorClass};

/// Notes are cut to stay under the 1 KiB the API server and `kubectl describe` handle well.
pub const MAX_NOTE_BYTES: usize = 1000;

/// How long after its last occurrence an event is continued as a series (client-go's and
/// kube's six minutes).
pub const SERIES_WINDOW: Duration = Duration::from_secs(6 * 60);

/// How often the record of published events is swept of those past [`SERIES_WINDOW`].
const SWEEP_EVERY: Duration = Duration::from_secs(30);

/// Publishes Events for Stagehand's objects; clones share one record of recent events, so
/// repeats from any reconcile become one series.
#[derive(Clone)]
pub struct EventPublisher {
    client: Client,
    reporter: Arc<str>,
    recent: Arc<Mutex<RecentEvents>>,
}

impl std::fmt::Debug for EventPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventPublisher")
            .field("reporter", &self.reporter)
            .finish_non_exhaustive()
    }
}

impl EventPublisher {
    /// Events reported as `reporter` (`reportingController` and `reportingInstance`).
    pub fn new(client: Client, reporter: &str) -> Self {
        Self {
            client,
            reporter: Arc::from(reporter),
            recent: Arc::default(),
        }
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
        if let Err(error) = self.record(&event, &reference).await {
            tracing::warn!(
                %error,
                reason = %event.reason,
                "cannot publish Kubernetes event (the reconcile continues)"
            );
        }
    }

    /// How many published events are remembered for a series now (the sweep's effect).
    pub fn remembered(&self) -> usize {
        self.recent().by_key.len()
    }

    fn recent(&self) -> std::sync::MutexGuard<'_, RecentEvents> {
        // Every update is a single insert, removal or count: consistent after a panic.
        self.recent.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Creates the Event, or continues its series when it occurred within the window.
    async fn record(&self, event: &Event, regarding: &ObjectReference) -> Result<(), kube::Error> {
        let key = event_key(event, regarding);
        let namespace = regarding.namespace.as_deref().unwrap_or("default");
        let events: Api<K8sEvent> = Api::namespaced(self.client.clone(), namespace);
        let repeat = self.recent().repeat(key, Instant::now());
        if let Some((name, count)) = repeat {
            let series = serde_json::json!({
                "series": EventSeries { count, last_observed_time: MicroTime(Timestamp::now()) }
            });
            match events
                .patch(&name, &PatchParams::default(), &Patch::Merge(&series))
                .await
            {
                Ok(_) => return Ok(()),
                // Gone (the API server's event TTL, or deleted): start a new one.
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(error) => return Err(error),
            }
        }
        let created = new_event(event, regarding, &self.reporter);
        let name = created.metadata.name.clone().unwrap_or_default();
        events.create(&PostParams::default(), &created).await?;
        self.recent().started(key, name, Instant::now());
        Ok(())
    }
}

/// The events published within [`SERIES_WINDOW`]: by key, the Event's name, its count and when
/// it last occurred.
#[derive(Debug)]
struct RecentEvents {
    by_key: HashMap<u64, Published>,
    swept: Instant,
}

#[derive(Debug)]
struct Published {
    name: Box<str>,
    count: i32,
    last: Instant,
}

impl Default for RecentEvents {
    fn default() -> Self {
        Self {
            by_key: HashMap::new(),
            swept: Instant::now(),
        }
    }
}

impl RecentEvents {
    /// The name and next count of the event `key` if it occurred within the window (counted
    /// now); `None` for a new event.
    fn repeat(&mut self, key: u64, now: Instant) -> Option<(String, i32)> {
        self.sweep(now);
        let published = self.by_key.get_mut(&key)?;
        if now.duration_since(published.last) >= SERIES_WINDOW {
            self.by_key.remove(&key);
            return None;
        }
        // A first repeat makes the count 2 (the Event itself was the first).
        published.count = published.count.saturating_add(1).max(2);
        published.last = now;
        Some((published.name.to_string(), published.count))
    }

    fn started(&mut self, key: u64, name: String, now: Instant) {
        self.by_key.insert(
            key,
            Published {
                name: name.into_boxed_str(),
                count: 1,
                last: now,
            },
        );
    }

    /// Forgets events past the window, at most every [`SWEEP_EVERY`]; gives back the map's
    /// memory once most of it is empty (a burst of events at a cold start).
    fn sweep(&mut self, now: Instant) {
        if now.duration_since(self.swept) < SWEEP_EVERY {
            return;
        }
        self.swept = now;
        self.by_key
            .retain(|_, published| now.duration_since(published.last) < SERIES_WINDOW);
        if self.by_key.capacity() > 64 && self.by_key.len() < self.by_key.capacity() / 4 {
            self.by_key.shrink_to_fit();
        }
    }
}

/// What makes two events the same: the object (by uid, and by name for a recreated one), type,
/// reason, action and note.
fn event_key(event: &Event, regarding: &ObjectReference) -> u64 {
    super::fingerprint(&(
        (
            &regarding.uid,
            &regarding.namespace,
            &regarding.name,
            &regarding.kind,
            &regarding.api_version,
        ),
        matches!(event.type_, EventType::Warning),
        (&event.reason, &event.action, &event.note),
    ))
}

/// An events.k8s.io/v1 Event about `regarding`, named `<object>.<nanoseconds in hex>` like
/// client-go's.
fn new_event(event: &Event, regarding: &ObjectReference, reporter: &str) -> K8sEvent {
    let now = Timestamp::now();
    K8sEvent {
        metadata: ObjectMeta {
            namespace: regarding.namespace.clone(),
            name: Some(format!(
                "{}.{:x}",
                regarding.name.as_deref().unwrap_or(reporter),
                now.as_nanosecond()
            )),
            ..ObjectMeta::default()
        },
        event_time: Some(MicroTime(now)),
        type_: Some(
            match event.type_ {
                EventType::Normal => "Normal",
                EventType::Warning => "Warning",
            }
            .to_owned(),
        ),
        reason: Some(event.reason.clone()),
        action: Some(event.action.clone()),
        note: event.note.clone(),
        regarding: Some(regarding.clone()),
        related: event.secondary.clone(),
        reporting_controller: Some(reporter.to_owned()),
        reporting_instance: Some(reporter.to_owned()),
        ..K8sEvent::default()
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

    fn reference(name: &str, uid: &str) -> ObjectReference {
        ObjectReference {
            api_version: Some("stagehand.dev/v1alpha1".into()),
            kind: Some("LambdaStage".into()),
            namespace: Some("shop".into()),
            name: Some(name.into()),
            uid: Some(uid.into()),
            ..ObjectReference::default()
        }
    }

    #[test]
    fn an_event_is_the_same_only_for_the_same_object_reason_action_and_note() {
        let deployed = action_event("CodeUpdated", "UpdateFunctionCode", "api: deployed 1a2b");
        let api = reference("api", "u-1");
        let key = event_key(&deployed, &api);
        let again = action_event("CodeUpdated", "UpdateFunctionCode", "api: deployed 1a2b");
        assert_eq!(key, event_key(&again, &api.clone()));
        let other_note = action_event("CodeUpdated", "UpdateFunctionCode", "api: deployed 3c4d");
        let other_reason =
            action_event("ConfigUpdated", "UpdateFunctionCode", "api: deployed 1a2b");
        let other_action = action_event("CodeUpdated", "PublishVersion", "api: deployed 1a2b");
        let mut warning = action_event("CodeUpdated", "UpdateFunctionCode", "api: deployed 1a2b");
        warning.type_ = EventType::Warning;
        for other in [other_note, other_reason, other_action, warning] {
            assert_ne!(key, event_key(&other, &api), "{}", other.reason);
        }
        assert_ne!(key, event_key(&deployed, &reference("worker", "u-2")));
        // The same name recreated is another object.
        assert_ne!(key, event_key(&deployed, &reference("api", "u-3")));
    }

    #[test]
    fn a_repeat_within_the_window_continues_the_series_and_one_after_it_starts_anew() {
        let mut recent = RecentEvents::default();
        let start = recent.swept;
        assert_eq!(recent.repeat(7, start), None, "never published");
        recent.started(7, "api.1a".into(), start);
        assert_eq!(
            recent.repeat(7, start + Duration::from_secs(1)),
            Some(("api.1a".into(), 2))
        );
        // The window counts from the last occurrence, not the first.
        let later = start + SERIES_WINDOW - Duration::from_secs(1);
        assert_eq!(recent.repeat(7, later), Some(("api.1a".into(), 3)));
        assert_eq!(
            recent.repeat(7, later + SERIES_WINDOW),
            None,
            "past the window"
        );
        assert_eq!(
            recent.repeat(7, later + SERIES_WINDOW),
            None,
            "and forgotten"
        );
    }

    #[test]
    fn the_sweep_forgets_what_is_past_the_window_and_gives_the_memory_back() {
        let mut recent = RecentEvents::default();
        let start = recent.swept;
        for key in 0..10_000 {
            recent.started(key, format!("stage-{key}.1a"), start);
        }
        let capacity = recent.by_key.capacity();
        let fresh = start + SERIES_WINDOW;
        recent.started(10_000, "fresh.1a".into(), fresh);
        // Before `SWEEP_EVERY` has passed since the last sweep nothing is scanned.
        recent.repeat(1, start + SWEEP_EVERY / 2);
        assert_eq!(recent.by_key.len(), 10_001);
        recent.repeat(10_000, fresh + SWEEP_EVERY);
        assert_eq!(
            recent.by_key.len(),
            1,
            "only the event inside the window stays"
        );
        assert!(
            recent.by_key.capacity() < capacity / 4,
            "{}",
            recent.by_key.capacity()
        );
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
