//! Status writes: server-side apply to `/status` with the field manager `stagehand`.
//!
//! The whole status Stagehand owns is sent on every write (SSA removes fields the manager no
//! longer sends), always with `observedGeneration`. To keep rewrites of an unchanged status
//! no-ops for the API server, and so avoid a watch event per reconcile, status must not contain
//! values that change on every reconcile ("last checked at"): condition transition times move
//! only on status changes (see `conditions`), and kinds report what they observed, not when.
//! A status equal to the one the object already carries is not sent at all
//! ([`status_unchanged`]): a converged resync makes no request.

use std::fmt::Debug;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use stagehand_crds::CommonStatus;
use stagehand_crds::condition::EVENT_FEED_READY;

use super::error::Error;
use crate::base::conditions::{ConditionStatus, ReconcileOutcome, set_condition};
use crate::inventory::EventFeed;

/// Field manager of every write Stagehand makes.
pub const FIELD_MANAGER: &str = "stagehand";

/// The server-side apply body for `object`'s status: `apiVersion`, `kind`, `metadata.name` and
/// `status` with `observedGeneration` set to the object's generation.
pub fn status_patch<K>(object: &K, mut status: Value) -> Result<Value, Error>
where
    K: Resource<DynamicType = ()>,
{
    let Some(fields) = status.as_object_mut() else {
        return Err(Error::StatusNotAnObject {
            kind: K::kind(&()).into_owned(),
            namespace: object.namespace().unwrap_or_default(),
            name: object.name_any(),
        });
    };
    fields.insert(
        "observedGeneration".to_owned(),
        object.meta().generation.map_or(Value::Null, Value::from),
    );
    Ok(json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "metadata": { "name": object.name_any() },
        "status": status,
    }))
}

/// Whether the status `patch` ([`status_patch`]) would apply is what `object` already
/// carries (as the controller's cache last saw it): then the write is skipped. The API server
/// would answer such an apply as a no-op, but still has to receive, decode, merge and compare
/// it: a converged resync would cost one request per object per interval (10,000 objects every
/// 5 minutes are 33 requests a second) to say nothing. A cache that has not seen the last write
/// yet compares unequal, and the write goes out: skipping is only ever on evidence.
pub fn status_unchanged<K: Serialize>(object: &K, patch: &Value) -> bool {
    // The typed object is serialized as the status write's own types were: a field the server
    // dropped or defaulted, or a time it truncated, reads as a difference (a write), never as
    // a false "unchanged".
    let current = serde_json::to_value(object)
        .ok()
        .and_then(|mut object| object.get_mut("status").map(Value::take));
    current.is_some_and(|current| Some(&current) == patch.get("status"))
}

/// Writes `status` (a JSON object with the kind's status fields) to `object`'s `/status`
/// subresource by server-side apply, forcing ownership (Stagehand is the only writer of status).
/// Nothing is sent when `object` already carries exactly that status ([`status_unchanged`]);
/// the object is returned as it is.
pub async fn apply_status<K>(api: &Api<K>, object: &K, status: Value) -> Result<K, Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Serialize + Debug,
{
    let patch = status_patch(object, status)?;
    if status_unchanged(object, &patch) {
        return Ok(object.clone());
    }
    let params = PatchParams::apply(FIELD_MANAGER).force();
    api.patch_status(&object.name_any(), &params, &Patch::Apply(&patch))
        .await
        .map_err(|source| Error::StatusPatch {
            kind: K::kind(&()).into_owned(),
            namespace: object.namespace().unwrap_or_default(),
            name: object.name_any(),
            source: Box::new(source),
        })
}

/// The next [`CommonStatus`]: the previous conditions (so transition times carry over, and
/// domain conditions stay until the kind updates them) with the kstatus trio for `outcome`,
/// `status.message` = the outcome's summary and `observedGeneration` = `generation`.
pub fn next_common_status(
    previous: Option<&CommonStatus>,
    outcome: &ReconcileOutcome,
    generation: Option<i64>,
    now: Timestamp,
) -> CommonStatus {
    let mut conditions = previous.map(|s| s.conditions.clone()).unwrap_or_default();
    outcome.apply_to(&mut conditions, generation, now);
    CommonStatus {
        observed_generation: generation,
        conditions,
        message: Some(outcome.summary()),
    }
}

/// What a kind gets from the event feed, for its `EventFeedReady` message.
#[derive(Clone, Copy, Debug)]
pub struct FeedUse {
    /// What the buckets it reads builds from hold ("artifact", "source").
    pub holding: &'static str,
    /// What a healthy feed changes for it.
    pub while_healthy: &'static str,
}

/// Sets `EventFeedReady` of an object relying on the controller-wide event feed
/// (`--event-queue`) — whether changes are announced within seconds (and what that changes for
/// its kind, `uses.while_healthy`), or why not — or removes it without a feed. `silent_buckets`
/// are the buckets the object reads builds from that send no events to EventBridge
/// (`uses.holding` says what they hold): new builds there are seen at the resync only.
pub fn set_event_feed_condition(
    conditions: &mut Vec<Condition>,
    feed: &EventFeed,
    silent_buckets: &[String],
    uses: FeedUse,
    generation: Option<i64>,
    now: Timestamp,
) {
    let Some((status, reason, message)) = event_feed_condition(feed, silent_buckets, uses) else {
        conditions.retain(|c| c.type_ != EVENT_FEED_READY);
        return;
    };
    set_condition(
        conditions,
        EVENT_FEED_READY,
        status,
        reason,
        &message,
        generation,
        now,
    );
}

fn event_feed_condition<'a>(
    feed: &'a EventFeed,
    silent_buckets: &[String],
    uses: FeedUse,
) -> Option<(ConditionStatus, &'a str, String)> {
    let (status, reason, mut message) = match feed {
        EventFeed::NotConfigured => return None,
        EventFeed::Starting => (
            ConditionStatus::Unknown,
            "Starting",
            "the event queue has not been polled yet; polling as usual".to_owned(),
        ),
        EventFeed::Healthy => (
            ConditionStatus::True,
            "Healthy",
            format!("changes arrive from the event queue; {}", uses.while_healthy),
        ),
        EventFeed::Silent => (
            ConditionStatus::False,
            "Silent",
            "the event queue answers but no event nor heartbeat arrived for 15 minutes (check the EventBridge rules); polling as usual".to_owned(),
        ),
        EventFeed::Failing { reason, message } => (
            ConditionStatus::False,
            reason.as_str(),
            format!("{message}; polling as usual"),
        ),
    };
    if !silent_buckets.is_empty() {
        message = format!(
            "{message}; {} bucket(s) {} send no events to EventBridge (turn on EventBridge notifications): new builds there are seen at the resync",
            uses.holding,
            silent_buckets.join(", ")
        );
    }
    Some((status, reason, message))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::conditions::find_condition;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::ObjectMeta;
    use stagehand_crds::condition::{READY, STALLED};

    fn object(generation: Option<i64>) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                name: Some("api".into()),
                namespace: Some("shop".into()),
                generation,
                ..ObjectMeta::default()
            },
            ..ConfigMap::default()
        }
    }

    #[test]
    fn patch_names_the_object_and_sets_observed_generation() {
        let patch = status_patch(
            &object(Some(3)),
            json!({"message": "ok", "observedGeneration": 1}),
        )
        .unwrap();
        assert_eq!(
            patch,
            json!({
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "api"},
                "status": {"message": "ok", "observedGeneration": 3},
            })
        );
    }

    #[test]
    fn patch_rejects_a_non_object_status() {
        let err = status_patch(&object(Some(1)), json!(["not", "an", "object"])).unwrap_err();
        assert!(matches!(err, Error::StatusNotAnObject { .. }));
        assert_eq!(
            err.to_string(),
            "status of ConfigMap shop/api must be a JSON object"
        );
    }

    #[test]
    fn patch_for_a_stagehand_kind_uses_its_group_version() {
        let stage: stagehand_crds::LambdaStage = serde_json::from_value(json!({
            "apiVersion": "stagehand.dev/v1alpha1",
            "kind": "LambdaStage",
            "metadata": {"name": "dev", "namespace": "shop", "generation": 2},
            "spec": {"region": "eu-west-1", "functions": []}
        }))
        .unwrap();
        let patch = status_patch(&stage, json!({})).unwrap();
        assert_eq!(patch["apiVersion"], "stagehand.dev/v1alpha1");
        assert_eq!(patch["kind"], "LambdaStage");
        assert_eq!(patch["status"]["observedGeneration"], 2);
    }

    fn patch(
        status: &stagehand_crds::LambdaStageStatus,
        stage: &stagehand_crds::LambdaStage,
    ) -> Value {
        status_patch(stage, serde_json::to_value(status).unwrap()).unwrap()
    }

    #[test]
    fn a_status_the_object_already_carries_is_not_written_again() {
        let mut stage: stagehand_crds::LambdaStage = serde_json::from_value(json!({
            "apiVersion": "stagehand.dev/v1alpha1",
            "kind": "LambdaStage",
            "metadata": {"name": "dev", "namespace": "shop", "generation": 2},
            "spec": {"region": "eu-west-1", "functions": []},
        }))
        .unwrap();
        let t0 = Timestamp::from_second(1_700_000_000).unwrap();
        let outcome = ReconcileOutcome::Converged {
            message: "in sync".into(),
        };
        let status = stagehand_crds::LambdaStageStatus {
            common: next_common_status(None, &outcome, Some(2), t0),
            functions_in_sync: Some("1/1".into()),
            ..Default::default()
        };
        assert!(
            !status_unchanged(&stage, &patch(&status, &stage)),
            "no status yet: written"
        );
        // What the server stored, as the watch hands it back.
        stage.status = Some(status.clone());
        let stage: stagehand_crds::LambdaStage =
            serde_json::from_value(serde_json::to_value(&stage).unwrap()).unwrap();
        assert!(status_unchanged(&stage, &patch(&status, &stage)));
        // The next round of a converged stage, minutes later: the same status, not written.
        let resync = stagehand_crds::LambdaStageStatus {
            common: next_common_status(
                Some(&status.common),
                &outcome,
                Some(2),
                Timestamp::from_second(1_700_000_300).unwrap(),
            ),
            ..status.clone()
        };
        assert!(status_unchanged(&stage, &patch(&resync, &stage)));

        let changed = stagehand_crds::LambdaStageStatus {
            functions_in_sync: Some("0/1".into()),
            ..status.clone()
        };
        assert!(!status_unchanged(&stage, &patch(&changed, &stage)));
        let mut respecified = stage.clone();
        respecified.metadata.generation = Some(3);
        assert!(
            !status_unchanged(&respecified, &patch(&status, &respecified)),
            "a new generation is recorded even when nothing else changed"
        );
    }

    #[test]
    fn rewriting_an_unchanged_outcome_produces_an_identical_status() {
        let t0 = Timestamp::from_second(1_700_000_000).unwrap();
        let t1 = Timestamp::from_second(1_700_000_300).unwrap();
        let outcome = ReconcileOutcome::Converged {
            message: "in sync".into(),
        };
        let first = next_common_status(None, &outcome, Some(2), t0);
        let second = next_common_status(Some(&first), &outcome, Some(2), t1);
        assert_eq!(first, second, "a resync must not produce a new status");
        assert_eq!(second.observed_generation, Some(2));
        assert_eq!(second.message.as_deref(), Some("in sync"));

        let stalled = ReconcileOutcome::Stalled {
            reason: "OwnershipConflict".into(),
            message: "function api-dev is owned by shop/LambdaStage/other".into(),
        };
        let third = next_common_status(Some(&second), &stalled, Some(3), t1);
        assert_eq!(third.observed_generation, Some(3));
        assert_eq!(
            find_condition(&third.conditions, STALLED).unwrap().status,
            "True"
        );
        assert_eq!(
            find_condition(&third.conditions, READY)
                .unwrap()
                .last_transition_time
                .0,
            t1
        );
    }

    #[test]
    fn domain_conditions_survive_the_kstatus_update() {
        let t0 = Timestamp::from_second(1_700_000_000).unwrap();
        let mut previous = CommonStatus::default();
        crate::base::conditions::set_condition(
            &mut previous.conditions,
            "CodeInSync",
            crate::base::conditions::ConditionStatus::True,
            "HashesMatch",
            "",
            Some(1),
            t0,
        );
        let next = next_common_status(Some(&previous), &ReconcileOutcome::Paused, Some(1), t0);
        assert_eq!(next.conditions.len(), 4);
        assert!(find_condition(&next.conditions, "CodeInSync").is_some());
    }

    #[test]
    fn event_feed_ready_says_whether_changes_are_announced() {
        let none: &[String] = &[];
        let stage = crate::lambda_stage::status::FEED_USE;
        assert_eq!(
            event_feed_condition(&EventFeed::NotConfigured, none, stage),
            None
        );
        let row = |feed: &EventFeed, buckets: &[String]| {
            event_feed_condition(feed, buckets, stage).map(|(s, r, m)| (s, r.to_owned(), m))
        };
        let healthy = row(&EventFeed::Healthy, none).unwrap_or_else(|| panic!("a condition"));
        assert_eq!(
            (healthy.0, healthy.1.as_str()),
            (ConditionStatus::True, "Healthy")
        );
        assert!(
            healthy.2.contains("aliases are read hourly"),
            "{}",
            healthy.2
        );
        // A site's reads do not slow down with the feed: its message does not say they do.
        let site = event_feed_condition(
            &EventFeed::Healthy,
            none,
            crate::static_site::status::FEED_USE,
        )
        .unwrap_or_else(|| panic!("a condition"));
        assert!(!site.2.contains("hourly"), "{}", site.2);
        assert!(site.2.contains("every resync"), "{}", site.2);
        let failing = EventFeed::Failing {
            reason: "QueueNotFound".into(),
            message: "SQS queue q does not exist in r".into(),
        };
        let failing = row(&failing, none).unwrap_or_else(|| panic!("a condition"));
        assert_eq!(
            (failing.0, failing.1.as_str()),
            (ConditionStatus::False, "QueueNotFound")
        );
        assert!(failing.2.contains("polling as usual"), "{}", failing.2);
        for feed in [EventFeed::Silent, EventFeed::Starting] {
            assert_ne!(row(&feed, none).map(|r| r.0), Some(ConditionStatus::True));
        }
        let silent_bucket = row(&EventFeed::Healthy, &["builds".to_owned()])
            .unwrap_or_else(|| panic!("a condition"));
        assert_eq!(silent_bucket.0, ConditionStatus::True);
        assert!(
            silent_bucket
                .2
                .contains("artifact bucket(s) builds send no events"),
            "{}",
            silent_bucket.2
        );
    }
}
