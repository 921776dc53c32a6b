//! LambdaStage across a controller killed like a lost pod: mid-reconcile, while creating
//! mappings, and after creating one but before the status write, then the object deleted before
//! the restart. Nothing is duplicated and nothing Stagehand created is left behind. The API
//! stand-in, moto behind the counting/fault proxy, the production controllers; every wait is
//! bounded and on an observed condition, never a fixed sleep.

#![allow(
    clippy::unwrap_used,
    clippy::too_many_lines,
    reason = "a test module: a panic with its location is the failure report we want"
)]

use serde_json::json;
use stagehand_crds::LambdaStage;
use stagehand_testenv::aws::{CallRecord, FaultAction, FaultRule};

use crate::support::{
    API, CHAT, CHAT_QUEUE, EVAL, EVAL_QUEUE, Env, NAMESPACE, b64, build, chalice_stage, ready, seed,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_reconcile_converges_without_duplicates() {
    let mut env = Env::start().await;
    seed(&env).await;
    env.floor.reset_calls().await.unwrap();
    env.start_controllers().await;
    let name = "shop-api-dev";
    let mut spec = chalice_stage(name, "Retain", None);
    spec.spec.alias = Some(serde_json::from_value(json!({"name": "live"})).unwrap());
    env.create(&spec).await;
    env.wait_aws("the first code update", || async {
        env.log()
            .await
            .iter()
            .any(|r| r.operation == "UpdateFunctionCode")
            .then_some(())
    })
    .await;
    // Killed, not stopped: whatever the reconcile was doing is cut off.
    env.abort_controllers().await;
    // Mid-reconcile indeed: code is being rolled out, nothing is published yet.
    let at_stop = env.calls().await;
    assert_eq!(at_stop.count("lambda", "PublishVersion"), 0);
    assert!(at_stop.count("lambda", "UpdateFunctionCode") >= 1);
    env.restart_controllers().await;
    let v1 = b64(&build("v1"));
    let stage = env
        .wait_for(name, "Ready with the alias on a version", |s| {
            ready(s)
                && s.status.as_ref().is_some_and(|st| {
                    st.alias.as_ref().is_some_and(|a| {
                        [API, CHAT, EVAL]
                            .iter()
                            .all(|f| a.versions.get(*f).is_some_and(|v| v != "$LATEST"))
                    })
                })
        })
        .await;
    for function in [API, CHAT, EVAL] {
        assert_eq!(
            env.function(function).await.code_sha256(),
            Some(v1.as_str())
        );
        let published: Vec<String> = env
            .lambda()
            .list_versions_by_function()
            .function_name(function)
            .send()
            .await
            .unwrap()
            .versions()
            .iter()
            .filter_map(|v| v.version().map(str::to_owned))
            .filter(|v| v != "$LATEST")
            .collect();
        assert_eq!(published, ["1"], "{function}: one version published");
    }
    assert_eq!(env.mappings(CHAT).await.len(), 1);
    assert_eq!(env.mappings(EVAL).await.len(), 1);
    let calls = env.calls().await;
    assert_eq!(calls.count("lambda", "CreateEventSourceMapping"), 1);
    assert_eq!(calls.count("lambda", "PublishVersion"), 3);
    let status = stage.status.unwrap();
    let eval_uuid = env.mappings(EVAL).await[0].uuid().unwrap().to_owned();
    assert_eq!(
        status
            .mappings
            .iter()
            .find(|m| m.queue == EVAL_QUEUE)
            .and_then(|m| m.uuid.as_deref()),
        Some(eval_uuid.as_str())
    );
    assert!(status.mappings.iter().any(|m| m.queue == CHAT_QUEUE));
    env.stop().await;
}

/// A queue for a third mapping, made by the test.
const API_QUEUE: &str = "shop-dev-api";

/// Whether a log record is a successful call of `operation`.
fn succeeded(record: &CallRecord, operation: &str) -> bool {
    record.operation == operation && (200..300).contains(&record.status)
}

/// `recorded(stage, queue)`: the UUID status recorded for the mapping from `queue` and
/// whether it says Stagehand created it.
fn recorded(stage: &LambdaStage, queue: &str) -> Option<(Option<String>, bool)> {
    stage.status.as_ref().and_then(|s| {
        s.mappings
            .iter()
            .find(|m| m.queue == queue)
            .map(|m| (m.uuid.clone(), m.created_by_stagehand))
    })
}

/// The Chalice stage `name` (deletionPolicy Delete) plus a mapping from [`API_QUEUE`]; the
/// controller is killed while the API mapping's create is in flight, after the eval mapping's
/// create succeeded and before the round's status write. Returns the env (controllers dead),
/// the eval mapping's UUID and where the log's Stagehand calls start.
async fn kill_while_creating_mappings(name: &str) -> (Env, String, usize) {
    let mut env = Env::start().await;
    seed(&env).await;
    env.sqs()
        .create_queue()
        .queue_name(API_QUEUE)
        .send()
        .await
        .unwrap();
    // The create of the API mapping hangs (and would then fail without reaching Lambda): the
    // controller is killed while it is in flight, after the eval mapping's create succeeded
    // and before the round's status write.
    for action in [
        FaultAction::latency(std::time::Duration::from_secs(5)),
        FaultAction::Reset,
    ] {
        env.floor
            .add_fault(
                &FaultRule::new(action)
                    .service("lambda")
                    .operation("CreateEventSourceMapping")
                    .resource(API_QUEUE)
                    .times(1),
            )
            .await
            .unwrap();
    }
    // Only Stagehand's calls from here on (the seed created the chat mapping).
    env.floor.reset_calls().await.unwrap();
    let seeded = env.log().await.len();
    env.start_controllers().await;
    let mut manifest = chalice_stage(name, "Delete", None);
    manifest.spec.event_source_mappings.push(
        serde_json::from_value(json!({"function": API, "queue": API_QUEUE, "batchSize": 2}))
            .unwrap(),
    );
    env.create(&manifest).await;
    env.wait_aws("the eval mapping created", || async {
        env.log().await[seeded..]
            .iter()
            .any(|r| succeeded(r, "CreateEventSourceMapping"))
            .then_some(())
    })
    .await;
    env.abort_controllers().await;

    // The eval mapping exists and is tagged; status never heard of it; the API mapping does not
    // exist (its create was in flight).
    let eval = env.mappings(EVAL).await;
    assert_eq!(eval.len(), 1, "{eval:?}");
    let eval_uuid = eval[0].uuid().unwrap().to_owned();
    let tags = env
        .lambda()
        .list_tags()
        .resource(eval[0].event_source_mapping_arn().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(
        tags.tags()
            .unwrap()
            .get("stagehand.dev/owner")
            .map(String::as_str),
        Some(format!("{NAMESPACE}/LambdaStage/{name}").as_str())
    );
    let lost = env.stages().get(name).await.unwrap();
    assert!(
        recorded(&lost, EVAL_QUEUE).is_none_or(|(uuid, _)| uuid.is_none()),
        "the creation reached status before the kill: {:?}",
        lost.status
    );
    assert!(env.mappings(API).await.is_empty());

    (env, eval_uuid, seeded)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_while_creating_mappings_keeps_one_mapping_each_and_still_deletes_them() {
    let name = "shop-api-dev";
    let (mut env, eval_uuid, seeded) = kill_while_creating_mappings(name).await;
    env.restart_controllers().await;
    let converged = env
        .wait_for(name, "Ready with every mapping recorded", |s| {
            ready(s)
                && [CHAT_QUEUE, EVAL_QUEUE, API_QUEUE]
                    .iter()
                    .all(|q| recorded(s, q).is_some_and(|(uuid, _)| uuid.is_some()))
        })
        .await;
    // One mapping per (function, queue); the eval one is the mapping created before the kill.
    let eval = env.mappings(EVAL).await;
    assert_eq!(eval.len(), 1, "{eval:?}");
    assert_eq!(eval[0].uuid(), Some(eval_uuid.as_str()));
    let api = env.mappings(API).await;
    assert_eq!(api.len(), 1, "{api:?}");
    assert_eq!(env.mappings(CHAT).await.len(), 1);
    let created = env.log().await[seeded..]
        .iter()
        .filter(|r| succeeded(r, "CreateEventSourceMapping"))
        .count();
    assert_eq!(created, 2, "eval before the kill, api after the restart");
    assert_eq!(
        recorded(&converged, EVAL_QUEUE),
        Some((Some(eval_uuid.clone()), true))
    );
    assert_eq!(
        recorded(&converged, API_QUEUE),
        Some((api[0].uuid().map(str::to_owned), true))
    );
    // The mapping the Chalice deploy made is found, not Stagehand's.
    assert_eq!(
        recorded(&converged, CHAT_QUEUE).map(|(_, created)| created),
        Some(false)
    );

    // deletionPolicy: Delete removes the two mappings Stagehand created, and only those.
    env.stages()
        .delete(name, &kube::api::DeleteParams::default())
        .await
        .unwrap();
    env.wait_aws("the stage gone", || async {
        env.stages()
            .get_opt(name)
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
    assert!(env.mappings(EVAL).await.is_empty());
    assert!(env.mappings(API).await.is_empty());
    assert_eq!(env.mappings(CHAT).await.len(), 1);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_after_creating_a_mapping_then_deleted_before_restart_still_removes_it() {
    let name = "shop-api-dev";
    let (mut env, eval_uuid, _) = kill_while_creating_mappings(name).await;
    // Deleted while no controller runs: the restarted one only cleans up, with a status that
    // never recorded the eval mapping.
    env.stages()
        .delete(name, &kube::api::DeleteParams::default())
        .await
        .unwrap();
    env.restart_controllers().await;
    env.wait_aws("the stage gone", || async {
        env.stages()
            .get_opt(name)
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
    let deleted: Vec<String> = env
        .log()
        .await
        .iter()
        .filter(|r| r.operation == "DeleteEventSourceMapping")
        .map(|r| r.path.clone())
        .collect();
    assert_eq!(deleted.len(), 1, "{deleted:?}");
    assert!(deleted[0].ends_with(&eval_uuid), "{deleted:?}");
    assert!(env.mappings(EVAL).await.is_empty());
    assert!(env.mappings(API).await.is_empty());
    assert_eq!(env.mappings(CHAT).await.len(), 1, "not Stagehand's: kept");
    env.stop().await;
}
