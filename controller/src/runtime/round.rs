//! What every kind's reconcile round needs from the runtime, written once: the owner tag value
//! of an object, whether its spec changed since its status was written, the
//! `stagehand.dev/refresh` values already acted on, what a round asks of the inventory first,
//! the status write (and the failure report when a round fails before it planned anything), and
//! the requeue after a round.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use jiff::Timestamp;
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use serde::Serialize;
use stagehand_crds::{CommonStatus, REFRESH_ANNOTATION};

use super::context::Context;
use super::controller::{ManagedKind, object_key};
use super::error::Error;
use super::finalizer::object_api;
use super::queue_clock::{noticed_at, spec_noticed_at};
use super::status::{apply_status, next_common_status};
use crate::aws::tags;
use crate::base::{Classify, ReconcileOutcome};
use crate::inventory::{Inventory, Listings};

/// After a round acted, look again this soon: the next round checks what the actions did and
/// takes the next step (Lambda, for one, allows one update per function at a time).
pub const AFTER_ACTIONS: Duration = Duration::from_secs(1);

/// A kind's status: the part every kind reports ([`CommonStatus`]) and its own.
pub trait KindStatus: Serialize + Clone + Default {
    fn common(&self) -> &CommonStatus;
    fn common_mut(&mut self) -> &mut CommonStatus;
}

/// `<namespace>/<Kind>/<name>`: the `stagehand.dev/owner` tag value of what `object` creates.
pub fn owner_of<K: Resource<DynamicType = ()>>(object: &K) -> String {
    tags::owner_tag_value(
        &object.namespace().unwrap_or_default(),
        &K::kind(&()),
        &object.name_any(),
    )
}

/// The object's generation has not been reconciled yet (a new object or a spec change): the
/// round wants a fresh view of AWS, not listings up to the inventory's max age old.
pub fn spec_changed<K: Resource, S: KindStatus>(object: &K, status: Option<&S>) -> bool {
    status.and_then(|s| s.common().observed_generation) != object.meta().generation
}

/// What a round asks of the shared inventory before it observes `region`: for a
/// `stagehand.dev/refresh` not acted on yet, the kind's `listings` read after the event that
/// brought it ([`noticed_at`]); for a spec change, read after the spec was first seen
/// ([`spec_noticed_at`]: not after the finalizer or a label was added since, which would relist
/// the region once per new object of a cold start); for an unchanged object, nothing (listings
/// up to their age). Returns whether it asked.
pub fn refresh_for_round(
    inventory: &Inventory,
    region: &str,
    listings: &[Listings],
    refresh: bool,
    spec_changed: bool,
) -> bool {
    let noticed = if refresh {
        noticed_at()
    } else if spec_changed {
        spec_noticed_at()
    } else {
        return false;
    };
    inventory.refresh(region, noticed, listings);
    true
}

/// The `stagehand.dev/refresh` value last acted on, per object. After a restart every value
/// counts as new: the inventory is new too.
#[derive(Debug, Default)]
pub struct RefreshTracker {
    seen: Mutex<HashMap<String, String>>,
}

impl RefreshTracker {
    /// Whether `object` carries a refresh value not acted on yet (recorded as acted on).
    pub fn requested<K: Resource>(&self, object: &K) -> bool {
        let Some(value) = object.annotations().get(REFRESH_ANNOTATION) else {
            return false;
        };
        let mut seen = self.lock();
        let key = object_key(object);
        if seen.get(&key) == Some(value) {
            return false;
        }
        seen.insert(key, value.clone());
        true
    }

    /// The object is gone: forget its value.
    pub fn forget<K: Resource>(&self, object: &K) {
        self.lock().remove(&object_key(object));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        // Every update is a single insert or removal: consistent even after a panic.
        self.seen.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The status of a paused object: what it said before, with the kstatus conditions saying
/// `Paused`.
pub fn paused_status<S: KindStatus>(
    previous: Option<&S>,
    generation: Option<i64>,
    now: Timestamp,
) -> S {
    let mut status = previous.cloned().unwrap_or_default();
    *status.common_mut() = next_common_status(
        previous.map(KindStatus::common),
        &ReconcileOutcome::Paused,
        generation,
        now,
    );
    status
}

/// Writes `status` to `object`'s `/status` (see [`apply_status`]).
pub async fn write_status<K: ManagedKind, S: KindStatus>(
    ctx: &Context,
    object: &K,
    status: &S,
) -> Result<(), Error> {
    // Plain data always serializes; were it not to, the write is refused as "not an object".
    let value = serde_json::to_value(status).unwrap_or(serde_json::Value::Null);
    apply_status(&object_api(&ctx.client, object)?, object, value).await?;
    Ok(())
}

/// A round failed before it planned anything (AWS could not be read): the status keeps what it
/// said and reports the error (`Reconciling` or `Stalled` with its reason), a Warning event
/// names it, and the error goes back to the runtime for the retry.
pub async fn fail_early<K, S, E>(ctx: &Context, object: &K, status: Option<&S>, error: E) -> E
where
    K: ManagedKind,
    S: KindStatus,
    E: std::error::Error + Classify + From<Error>,
{
    let mut next = status.cloned().unwrap_or_default();
    *next.common_mut() = next_common_status(
        status.map(KindStatus::common),
        &ReconcileOutcome::from_error(&error),
        object.meta().generation,
        Timestamp::now(),
    );
    if let Err(write_failed) = write_status(ctx, object, &next).await {
        return E::from(write_failed);
    }
    ctx.events().failure(object, "Observe", &error).await;
    error
}

/// How a round ended, as far as the next look is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RoundEnd {
    /// Some action ran.
    pub acted: bool,
    /// The plan needs a human (or a fix made in AWS).
    pub stalled: bool,
    /// The plan waits on AWS (a stack update, a function update) and wants a look this soon.
    pub wait: Option<Duration>,
}

/// When to look at the object again after a round that did not fail: a stall at the resync
/// interval (most stalls are fixed in AWS — the pinned build uploaded, a stack repaired, a
/// backlog drained — and no watch event announces that), [`AFTER_ACTIONS`] after actions ran,
/// the plan's wait while waiting on AWS, else the resync interval.
pub fn requeue_after(end: RoundEnd, resync: impl FnOnce() -> Action) -> Action {
    if end.stalled {
        resync()
    } else if end.acted {
        Action::requeue(AFTER_ACTIONS)
    } else if let Some(wait) = end.wait {
        Action::requeue(wait)
    } else {
        resync()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::ObjectMeta;

    use super::*;

    fn object(refresh: Option<&str>, generation: i64) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                name: Some("shop".into()),
                namespace: Some("dev".into()),
                generation: Some(generation),
                annotations: refresh.map(|value| {
                    BTreeMap::from([(REFRESH_ANNOTATION.to_owned(), value.to_owned())])
                }),
                ..ObjectMeta::default()
            },
            ..ConfigMap::default()
        }
    }

    #[derive(Clone, Default, Serialize)]
    struct Status(CommonStatus);

    impl KindStatus for Status {
        fn common(&self) -> &CommonStatus {
            &self.0
        }
        fn common_mut(&mut self) -> &mut CommonStatus {
            &mut self.0
        }
    }

    #[test]
    fn owner_values_name_namespace_kind_and_name() {
        assert_eq!(owner_of(&object(None, 1)), "dev/ConfigMap/shop");
    }

    #[test]
    fn a_refresh_value_is_acted_on_once() {
        let tracker = RefreshTracker::default();
        assert!(!tracker.requested(&object(None, 1)));
        assert!(tracker.requested(&object(Some("a"), 1)));
        assert!(!tracker.requested(&object(Some("a"), 1)));
        assert!(tracker.requested(&object(Some("b"), 1)));
        tracker.forget(&object(None, 1));
        assert!(tracker.requested(&object(Some("b"), 1)), "forgotten");
    }

    #[test]
    fn the_spec_changed_until_its_generation_is_observed() {
        let observed = |generation| {
            Status(CommonStatus {
                observed_generation: Some(generation),
                ..CommonStatus::default()
            })
        };
        assert!(spec_changed::<_, Status>(&object(None, 1), None));
        assert!(spec_changed(&object(None, 2), Some(&observed(1))));
        assert!(!spec_changed(&object(None, 2), Some(&observed(2))));
    }

    #[test]
    fn a_paused_status_keeps_what_it_said_and_reports_paused() {
        let previous = Status(CommonStatus {
            observed_generation: Some(1),
            message: Some("2 functions in sync".into()),
            ..CommonStatus::default()
        });
        let paused = paused_status(Some(&previous), Some(2), Timestamp::UNIX_EPOCH);
        assert_eq!(paused.0.observed_generation, Some(2));
        assert_eq!(
            paused.0.message.as_deref(),
            Some(ReconcileOutcome::Paused.summary().as_str())
        );
        assert!(
            paused
                .0
                .conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.reason == "Paused"),
            "{:?}",
            paused.0.conditions
        );
    }

    #[test]
    fn requeue_after_a_round() {
        let resync = || Action::requeue(Duration::from_secs(300));
        let end = |acted, stalled, wait| RoundEnd {
            acted,
            stalled,
            wait,
        };
        let five = Some(Duration::from_secs(5));
        assert_eq!(requeue_after(end(true, true, five), resync), resync());
        assert_eq!(
            requeue_after(end(true, false, five), resync),
            Action::requeue(AFTER_ACTIONS)
        );
        assert_eq!(
            requeue_after(end(false, false, five), resync),
            Action::requeue(Duration::from_secs(5))
        );
        assert_eq!(requeue_after(end(false, false, None), resync), resync());
    }
}
