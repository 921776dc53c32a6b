//! The LambdaStage alias end to end: published versions, `rollbackTo`,
//! `rollbackOnValidationFailure`, weighted canaries and `keepVersions`, against the API stand-in
//! and moto behind the counting proxy, with the production controllers. Queue backlogs are made
//! by sending messages with the SDK, as producers would; every wait is bounded and on an
//! observed condition, never a fixed sleep.

#![allow(
    clippy::unwrap_used,
    clippy::too_many_lines,
    reason = "a test module: a panic with its location is the failure report we want"
)]

use std::collections::BTreeMap;

use crate::support::{
    API, BUCKET, Env, KEY, b64, build, condition, merge_spec, ready, seed, stage,
};
use serde_json::json;
use stagehand_crds::LambdaStage;

/// A queue only the validation looks at (no mapping drains it).
const GUARD_QUEUE: &str = "shop-dev-guard";

async fn create_guard_queue(env: &Env) {
    env.sqs()
        .create_queue()
        .queue_name(GUARD_QUEUE)
        .send()
        .await
        .unwrap();
}

/// Producers flood the queue: `n` visible messages.
async fn send_backlog(env: &Env, n: usize) {
    let url = env.queue_url(GUARD_QUEUE).await;
    for i in 0..n {
        env.sqs()
            .send_message()
            .queue_url(&url)
            .message_body(format!("order {i}"))
            .send()
            .await
            .unwrap();
    }
}

async fn drain_backlog(env: &Env) {
    let url = env.queue_url(GUARD_QUEUE).await;
    env.sqs().purge_queue().queue_url(url).send().await.unwrap();
}

/// The alias `live` of `API` as Lambda reports it: primary version and routing weights.
async fn live_alias(env: &Env) -> Option<(String, BTreeMap<String, f64>)> {
    let alias = env
        .lambda()
        .get_alias()
        .function_name(API)
        .name("live")
        .send()
        .await
        .ok()?;
    let weights = alias
        .routing_config()
        .and_then(|r| r.additional_version_weights())
        .map(|w| w.iter().map(|(k, v)| (k.clone(), *v)).collect())
        .unwrap_or_default();
    Some((alias.function_version()?.to_owned(), weights))
}

/// The alias version status reports for `API`.
fn status_alias_version(stage: &LambdaStage) -> Option<String> {
    stage
        .status
        .as_ref()?
        .alias
        .as_ref()?
        .versions
        .get(API)
        .cloned()
}

fn status_version(
    stage: &LambdaStage,
    version: &str,
) -> Option<stagehand_crds::lambda_stage::PublishedVersion> {
    stage
        .status
        .as_ref()?
        .versions
        .iter()
        .find(|v| v.function_name == API && v.version == version)
        .cloned()
}

fn ready_on(version: &'static str) -> impl Fn(&LambdaStage) -> bool {
    move |s| ready(s) && status_alias_version(s).as_deref() == Some(version)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_validation_rolls_the_alias_back_to_the_last_good_version_without_flapping() {
    let mut env = Env::start().await;
    seed(&env).await;
    create_guard_queue(&env).await;
    env.start_controllers().await;
    let name = "guarded";
    env.create(&stage(
        name,
        json!({"adopt": true, "code": {"s3": {"bucket": BUCKET, "key": KEY}},
                       "functions": [{"name": API}],
                       "alias": {"name": "live", "rollbackOnValidationFailure": true},
                       "validation": {"queues": [{"queue": GUARD_QUEUE, "maxVisible": 3}]}}),
    ))
    .await;

    // v1 serves alone and passes validation: version 1 is good.
    env.wait_for(name, "on version 1, validated", |s| {
        ready_on("1")(s) && status_version(s, "1").is_some_and(|v| v.validated)
    })
    .await;

    // v2 is deployed and passes validation at first: the alias moves to version 2.
    env.floor.reset_calls().await.unwrap();
    env.upload(KEY, &build("v2")).await;
    env.wait_for(name, "on version 2", ready_on("2")).await;
    assert_eq!(live_alias(&env).await.unwrap().0, "2");

    // Then the backlog builds up past the threshold: back to version 1.
    send_backlog(&env, 8).await;
    let rolled = env
        .wait_for(name, "rolled back", |s| {
            condition(s, "Ready").1 == "RolledBack"
                && status_alias_version(s).as_deref() == Some("1")
        })
        .await;
    assert_eq!(live_alias(&env).await, Some(("1".into(), BTreeMap::new())));
    let (ready_status, _, message) = condition(&rolled, "Ready");
    assert_eq!(ready_status, "False");
    assert!(
        message.contains("rolled back from version 2 to version 1"),
        "{message}"
    );
    assert!(
        message.contains(&format!("queue {GUARD_QUEUE}: 8 visible (max 3)")),
        "{message}"
    );
    assert_eq!(condition(&rolled, "Validated").0, "False");
    let two = status_version(&rolled, "2").unwrap();
    assert!(!two.validated, "{two:?}");
    let rollback = two.rolled_back.unwrap();
    assert_eq!(rollback.to_version, "1");
    assert!(
        rollback.reason.contains("8 visible (max 3)"),
        "{rollback:?}"
    );
    // The build stays deployed as $LATEST; only the alias moved.
    let v2 = b64(&build("v2"));
    assert_eq!(env.function(API).await.code_sha256(), Some(v2.as_str()));
    let calls = env.calls().await;
    assert_eq!(
        calls.count("lambda", "UpdateAlias"),
        2,
        "to version 2, then back to 1"
    );

    // No flapping: neither while validation still fails nor once it passes again.
    env.floor.reset_calls().await.unwrap();
    let before = env.reconciles();
    env.wait_reconciles(before, 3).await;
    drain_backlog(&env).await;
    env.wait_for(name, "validated again, still rolled back", |s| {
        condition(s, "Validated").0 == "True" && condition(s, "Ready").1 == "RolledBack"
    })
    .await;
    let before = env.reconciles();
    env.wait_reconciles(before, 3).await;
    assert_eq!(env.calls().await.count("lambda", "UpdateAlias"), 0);
    assert_eq!(live_alias(&env).await.unwrap().0, "1");

    // A new build is deployed and tried as usual.
    env.upload(KEY, &build("v3")).await;
    let tried = env.wait_for(name, "on version 3", ready_on("3")).await;
    assert_eq!(live_alias(&env).await, Some(("3".into(), BTreeMap::new())));
    assert!(
        tried
            .status
            .unwrap()
            .versions
            .iter()
            .all(|v| v.rolled_back.is_none()),
        "a new build clears the rollback"
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weighted_canary_is_promoted_after_promote_after_and_held_while_validation_fails() {
    let mut env = Env::start().await;
    seed(&env).await;
    create_guard_queue(&env).await;
    env.start_controllers().await;
    let name = "canaried";
    env.create(&stage(
        name,
        json!({"adopt": true, "code": {"s3": {"bucket": BUCKET, "key": KEY}},
                       "functions": [{"name": API}],
                       "alias": {"name": "live", "canary": {"weight": 20, "promoteAfter": "3s"}},
                       "validation": {"queues": [{"queue": GUARD_QUEUE, "maxVisible": 3}]}}),
    ))
    .await;
    // A first deploy has nothing to compare with: straight to version 1.
    env.wait_for(name, "on version 1", ready_on("1")).await;
    assert_eq!(live_alias(&env).await, Some(("1".into(), BTreeMap::new())));

    // A new build: 20% to version 2 while the canary runs.
    env.upload(KEY, &build("v2")).await;
    let canary = env
        .wait_for(name, "canary of version 2", |s| {
            s.status
                .as_ref()
                .and_then(|st| st.alias.as_ref())
                .is_some_and(|a| a.canary_version.as_deref() == Some("2"))
        })
        .await;
    let (primary, weights) = live_alias(&env).await.unwrap();
    assert_eq!(primary, "1");
    assert_eq!(weights.len(), 1, "{weights:?}");
    assert!((weights["2"] - 0.2).abs() < 1e-9, "{weights:?}");
    let alias = canary.status.as_ref().unwrap().alias.clone().unwrap();
    assert_eq!(alias.canary_weight, Some(20));
    assert!(alias.canary_started_at.is_some());
    assert_eq!(condition(&canary, "Reconciling").1, "CanaryRunning");

    // promoteAfter passes with validation green: promoted, no routing left.
    let promoted = env.wait_for(name, "promoted to 2", ready_on("2")).await;
    assert_eq!(live_alias(&env).await, Some(("2".into(), BTreeMap::new())));
    let started: jiff::Timestamp = alias.canary_started_at.unwrap().parse().unwrap();
    assert!(
        jiff::Timestamp::now().duration_since(started) >= jiff::SignedDuration::from_secs(3),
        "not promoted before promoteAfter"
    );
    assert!(
        promoted
            .status
            .unwrap()
            .alias
            .unwrap()
            .canary_version
            .is_none()
    );

    // The next canary fails validation: it is held (not promoted, not rolled back).
    send_backlog(&env, 8).await;
    env.upload(KEY, &build("v3")).await;
    let held = env
        .wait_for(name, "canary of version 3", |s| {
            s.status
                .as_ref()
                .and_then(|st| st.alias.as_ref())
                .is_some_and(|a| a.canary_version.as_deref() == Some("3"))
        })
        .await;
    let started: jiff::Timestamp = held
        .status
        .unwrap()
        .alias
        .unwrap()
        .canary_started_at
        .unwrap()
        .parse()
        .unwrap();
    env.wait_for(name, "Validated=False during the canary", |s| {
        condition(s, "Validated").0 == "False"
    })
    .await;
    env.wait_aws("promoteAfter to pass", || async {
        (jiff::Timestamp::now().duration_since(started) > jiff::SignedDuration::from_secs(4))
            .then_some(())
    })
    .await;
    let before = env.reconciles();
    env.wait_reconciles(before, 2).await;
    let (primary, weights) = live_alias(&env).await.unwrap();
    assert_eq!(primary, "2", "not promoted while validation fails");
    assert!((weights["3"] - 0.2).abs() < 1e-9, "{weights:?}");
    let still = env.stages().get(name).await.unwrap();
    assert_eq!(condition(&still, "Validated").0, "False");
    assert_eq!(condition(&still, "Ready").0, "False");

    // Validation passes again: the due canary is promoted.
    drain_backlog(&env).await;
    env.wait_for(name, "promoted to 3", ready_on("3")).await;
    assert_eq!(live_alias(&env).await, Some(("3".into(), BTreeMap::new())));
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_canary_with_rollback_on_validation_failure_goes_back_to_the_stable_version() {
    let mut env = Env::start().await;
    seed(&env).await;
    create_guard_queue(&env).await;
    env.start_controllers().await;
    let name = "canary-guarded";
    env.create(&stage(
        name,
        json!({"adopt": true, "code": {"s3": {"bucket": BUCKET, "key": KEY}},
                       "functions": [{"name": API}],
                       "alias": {"name": "live", "rollbackOnValidationFailure": true,
                                 "canary": {"weight": 20, "promoteAfter": "1h"}},
                       "validation": {"queues": [{"queue": GUARD_QUEUE, "maxVisible": 3}]}}),
    ))
    .await;
    env.wait_for(name, "on version 1", ready_on("1")).await;
    env.upload(KEY, &build("v2")).await;
    env.wait_for(name, "canary of version 2", |s| {
        s.status
            .as_ref()
            .and_then(|st| st.alias.as_ref())
            .is_some_and(|a| a.canary_version.as_deref() == Some("2"))
    })
    .await;
    let (primary, weights) = live_alias(&env).await.unwrap();
    assert_eq!((primary.as_str(), weights.len()), ("1", 1), "{weights:?}");

    // The canary fails validation: all traffic back to version 1, no routing left.
    send_backlog(&env, 8).await;
    let rolled = env
        .wait_for(name, "rolled back", |s| {
            condition(s, "Ready").1 == "RolledBack"
        })
        .await;
    assert_eq!(live_alias(&env).await, Some(("1".into(), BTreeMap::new())));
    let status = rolled.status.as_ref().unwrap();
    let alias = status.alias.as_ref().unwrap();
    assert_eq!(alias.versions.get(API).map(String::as_str), Some("1"));
    assert_eq!(alias.canary_version, None);
    assert_eq!(
        status_version(&rolled, "2")
            .and_then(|v| v.rolled_back)
            .map(|r| r.to_version),
        Some("1".to_owned())
    );
    // And it stays there.
    env.floor.reset_calls().await.unwrap();
    let before = env.reconciles();
    env.wait_reconciles(before, 3).await;
    assert_eq!(env.calls().await.count("lambda", "UpdateAlias"), 0);
    assert_eq!(live_alias(&env).await, Some(("1".into(), BTreeMap::new())));
    env.stop().await;
}

/// Version numbers of `API` (not `$LATEST`) with their descriptions.
async fn versions_of_api(env: &Env) -> Vec<(String, String)> {
    env.lambda()
        .list_versions_by_function()
        .function_name(API)
        .send()
        .await
        .unwrap()
        .versions()
        .iter()
        .filter_map(|v| {
            let version = v.version()?;
            (version != "$LATEST").then(|| {
                (
                    version.to_owned(),
                    v.description().unwrap_or_default().to_owned(),
                )
            })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_beyond_keep_versions_are_deleted_but_never_anyone_elses() {
    let mut env = Env::start().await;
    seed(&env).await;
    // Someone publishes a version by hand first (version 1).
    env.lambda()
        .publish_version()
        .function_name(API)
        .description("hotfix by ops")
        .send()
        .await
        .unwrap();
    env.start_controllers().await;
    let name = "pruned";
    env.create(&stage(
        name,
        json!({"adopt": true, "code": {"s3": {"bucket": BUCKET, "key": KEY}},
                       "functions": [{"name": API}],
                       "alias": {"name": "live", "keepVersions": 1}}),
    ))
    .await;
    env.wait_for(name, "on version 2", ready_on("2")).await;

    // A new build: version 3; Stagehand's version 2 is now beyond keepVersions and goes once
    // the alias has moved. Version 1 is not Stagehand's: it stays.
    env.upload(KEY, &build("v2")).await;
    env.wait_for(name, "on version 3", ready_on("3")).await;
    let versions = env
        .wait_aws("version 2 deleted", || async {
            let versions = versions_of_api(&env).await;
            (!versions.iter().any(|(v, _)| v == "2")).then_some(versions)
        })
        .await;
    assert_eq!(
        versions,
        [
            ("1".to_owned(), "hotfix by ops".to_owned()),
            ("3".to_owned(), "published by Stagehand".to_owned()),
        ]
    );
    assert_eq!(live_alias(&env).await.unwrap().0, "3");
    let calls = env.calls().await;
    assert_eq!(calls.count("lambda", "DeleteFunction"), 1, "only version 2");
    // (moto numbers a new version len + 1, so after a deletion it would reuse a number that
    // exists; real Lambda never does: the test stops publishing here.)
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alias_follows_published_versions_and_rolls_back_in_one_spec_change() {
    let mut env = Env::start().await;
    seed(&env).await;
    env.start_controllers().await;
    let name = "aliased";
    env.create(&stage(
        name,
        json!({"adopt": true, "code": {"s3": {"bucket": BUCKET, "key": KEY}},
                       "functions": [{"name": API}], "alias": {"name": "live"}}),
    ))
    .await;
    let alias_version = || async {
        env.lambda()
            .get_alias()
            .function_name(API)
            .name("live")
            .send()
            .await
            .ok()
            .and_then(|a| a.function_version().map(str::to_owned))
    };
    let v1 = b64(&build("v1"));
    let on_version = |version: &'static str| {
        move |s: &LambdaStage| {
            ready(s)
                && s.status.as_ref().is_some_and(|st| {
                    st.alias
                        .as_ref()
                        .is_some_and(|a| a.versions.get(API).map(String::as_str) == Some(version))
                })
        }
    };
    let first = env.wait_for(name, "live → 1", on_version("1")).await;
    assert_eq!(env.function(API).await.code_sha256(), Some(v1.as_str()));
    assert_eq!(alias_version().await.as_deref(), Some("1"));
    let versions = |stage: &LambdaStage| -> Vec<(String, String)> {
        stage
            .status
            .as_ref()
            .unwrap()
            .versions
            .iter()
            .filter(|v| v.function_name == API)
            .map(|v| (v.version.clone(), v.code_sha256.clone()))
            .collect()
    };
    assert_eq!(versions(&first), [("1".to_owned(), v1.clone())]);

    // A new build: version 2 is published and the alias moves to it.
    env.floor.reset_calls().await.unwrap();
    env.upload(KEY, &build("v2")).await;
    let v2 = b64(&build("v2"));
    let second = env.wait_for(name, "live → 2", on_version("2")).await;
    assert_eq!(env.function(API).await.code_sha256(), Some(v2.as_str()));
    assert_eq!(alias_version().await.as_deref(), Some("2"));
    let mut kept = versions(&second);
    kept.sort();
    assert_eq!(
        kept,
        [("1".to_owned(), v1.clone()), ("2".to_owned(), v2.clone())]
    );
    let calls = env.calls().await;
    assert_eq!(calls.count("lambda", "PublishVersion"), 1);
    assert_eq!(calls.count("lambda", "UpdateAlias"), 1);

    // Roll back in one spec change: the alias returns to version 1, nothing is published.
    env.floor.reset_calls().await.unwrap();
    merge_spec(
        &env,
        name,
        json!({"alias": {"name": "live", "rollbackTo": 1}}),
    )
    .await;
    let rolled = env
        .wait_for(name, "rolled back to 1", |s| {
            s.metadata.generation == Some(2) && on_version("1")(s)
        })
        .await;
    assert_eq!(alias_version().await.as_deref(), Some("1"));
    assert_eq!(env.function(API).await.code_sha256(), Some(v2.as_str()));
    let mut kept = versions(&rolled);
    kept.sort();
    assert_eq!(kept, [("1".to_owned(), v1), ("2".to_owned(), v2)]);
    let calls = env.calls().await;
    assert_eq!(calls.count("lambda", "PublishVersion"), 0);
    assert_eq!(calls.count("lambda", "UpdateFunctionCode"), 0);
    assert_eq!(calls.count("lambda", "UpdateAlias"), 1);
    env.stop().await;
}
