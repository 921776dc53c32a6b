//! The LambdaStage reconciler end to end: the Kubernetes API stand-in, moto behind the
//! counting/fault proxy (`AwsFloor`), and the production wiring (`kinds::registry()` started
//! as `stagehand run` starts it). AWS is seeded and poked "by hand" with the SDK, the way a
//! deploy tool or an operator would; what Stagehand does is read back from AWS, from the
//! object's status and from the proxy's call counts: a Chalice stage converging, following new
//! builds and repaired after drift, a pin mismatch, throttling, the refresh annotation, an update
//! in progress, and another stage's function left alone.
//!
//! Every wait is bounded and on an observed condition, never a fixed sleep.

#![allow(
    clippy::unwrap_used,
    clippy::too_many_lines,
    reason = "a test module: a panic with its location is the failure report we want"
)]

use std::time::Duration;

use kube::api::{DeleteParams, Patch, PatchParams};
use serde_json::json;
use stagehand::aws::s3::Sha256Digest;
use stagehand_testenv::aws::{CallRecord, FaultAction, FaultRule};

use crate::support::{
    API, BUCKET, CHAT, CHAT_QUEUE, EVAL, EVAL_QUEUE, Env, KEY, NAMESPACE, TIMEOUT, b64, build,
    chalice_stage, code_updates, condition, is_lambda_write, merge_spec, ready, seed, stage,
    summary, updates_after_unsettled_reads, wait_ready_at,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chalice_stage_converges_follows_new_builds_and_repairs_drift() {
    let mut env = Env::start().await;
    let seeded = seed(&env).await;
    env.floor.reset_calls().await.unwrap();
    env.start_controllers().await;
    let name = "shop-api-dev";
    env.create(&chalice_stage(name, "Delete", None)).await;

    // (1) First deploy: Ready with every domain condition True.
    let stage = env.wait_for(name, "Ready", ready).await;
    let first_converge = env.calls().await;
    eprintln!(
        "first converge: {} AWS calls {:?}",
        first_converge.total,
        summary(&first_converge)
    );
    let status = stage.status.clone().unwrap();
    let v1 = b64(&build("v1"));
    assert_eq!(status.functions_in_sync.as_deref(), Some("3/3"));
    for function in [API, CHAT, EVAL] {
        let deployed = env.function(function).await;
        assert_eq!(deployed.code_sha256(), Some(v1.as_str()), "{function}");
        let layers: Vec<&str> = deployed.layers().iter().filter_map(|l| l.arn()).collect();
        assert_eq!(
            layers,
            [seeded.monitoring_layer.as_str(), seeded.deps_v2.as_str()]
        );
        let environment = deployed.environment().unwrap().variables().unwrap();
        assert_eq!(environment["LOG_LEVEL"], "info", "undeclared keys are kept");
        assert!(environment["CHAT_QUEUE_URL"].ends_with(CHAT_QUEUE));
        let tags = env
            .lambda()
            .list_tags()
            .resource(deployed.function_arn().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(
            tags.tags().unwrap()["stagehand.dev/owner"],
            format!("{NAMESPACE}/LambdaStage/{name}")
        );
    }
    assert_eq!(env.function(CHAT).await.timeout(), Some(120));
    assert_eq!(code_updates(&env).await, [API, CHAT, EVAL]);
    // The census of the controller's cache counts the stage as Ready (and nothing Stalled).
    env.wait_aws("stagehand_resources to count the Ready stage", || async {
        let ready = env
            .ctx
            .metrics
            .resources
            .with_label_values(&["LambdaStage", "Ready", "True"])
            .get();
        let stalled = env
            .ctx
            .metrics
            .resources
            .with_label_values(&["LambdaStage", "Stalled", "True"])
            .get();
        (ready == 1 && stalled == 0).then_some(())
    })
    .await;
    assert_eq!(first_converge.count("s3", "GetObject"), 1, "hashed once");
    // The deploy's chat mapping was adopted; the eval mapping was created once.
    assert_eq!(
        first_converge.count("lambda", "CreateEventSourceMapping"),
        1
    );
    let chat_status = status
        .mappings
        .iter()
        .find(|m| m.queue == CHAT_QUEUE)
        .unwrap();
    assert_eq!(
        chat_status.uuid.as_deref(),
        Some(seeded.chat_mapping.as_str())
    );
    assert!(!chat_status.created_by_stagehand);
    let eval_status = status
        .mappings
        .iter()
        .find(|m| m.queue == EVAL_QUEUE)
        .unwrap();
    let eval_uuid = eval_status.uuid.clone().unwrap();
    assert!(eval_status.created_by_stagehand);
    assert_eq!(env.mappings(EVAL).await.len(), 1);
    let validation = status.validation.clone().unwrap();
    assert!(validation.queues.iter().all(|q| q.ok), "{validation:?}");

    // A no-change resync: a handful of list/describe calls, no writes, no download.
    // Counted from just after one reconcile ended to the end of the next (resyncs are 2s
    // apart, a reconcile takes milliseconds), so exactly one reconcile is in the window.
    let before = env.reconciles();
    env.wait_reconciles(before, 1).await;
    env.floor.reset_calls().await.unwrap();
    env.wait_reconciles(before, 2).await;
    let resync = env.calls().await;
    eprintln!(
        "no-change resync: {} AWS calls {:?}",
        resync.total,
        summary(&resync)
    );
    for write in [
        "UpdateFunctionCode",
        "UpdateFunctionConfiguration",
        "CreateEventSourceMapping",
        "UpdateEventSourceMapping",
        "TagResource",
    ] {
        assert_eq!(resync.count("lambda", write), 0, "{write}");
    }
    assert_eq!(
        resync.count("s3", "GetObject"),
        0,
        "an unchanged object is not downloaded"
    );
    assert_eq!(
        resync.count("s3", "HeadObject"),
        0,
        "an object whose ETag is unchanged is not HEADed again (one listing shows it)"
    );
    assert_eq!(
        resync.count("lambda", "ListTags"),
        0,
        "ownership comes with the inventory"
    );

    // (2) Follow mode: a new build under the same key, no spec change → deployed to every
    // function using it (all three here), downloaded exactly once.
    env.floor.reset_calls().await.unwrap();
    env.upload(KEY, &build("v2")).await;
    let v2 = b64(&build("v2"));
    let stage = env
        .wait_for(name, "running v2", |s| {
            ready(s)
                && s.status
                    .as_ref()
                    .is_some_and(|st| st.code_sha256.as_deref() == Some(&v2[..12]))
        })
        .await;
    assert_eq!(stage.metadata.generation, Some(1), "no spec change");
    for function in [API, CHAT, EVAL] {
        assert_eq!(
            env.function(function).await.code_sha256(),
            Some(v2.as_str())
        );
    }
    let follow = env.calls().await;
    assert_eq!(code_updates(&env).await, [API, CHAT, EVAL]);
    assert_eq!(follow.count("lambda", "UpdateFunctionCode"), 3);
    assert_eq!(follow.count("s3", "GetObject"), 1);

    // (4) A mapping disabled by hand is enabled again: same UUID, nothing created.
    env.floor.reset_calls().await.unwrap();
    env.lambda()
        .update_event_source_mapping()
        .uuid(&seeded.chat_mapping)
        .enabled(false)
        .send()
        .await
        .unwrap();
    env.wait_aws("the chat mapping enabled again", || async {
        let mapping = env
            .lambda()
            .get_event_source_mapping()
            .uuid(&seeded.chat_mapping)
            .send()
            .await
            .ok()?;
        (mapping.state() == Some("Enabled")).then_some(())
    })
    .await;
    let stage = env.wait_for(name, "Ready again", ready).await;
    let status = stage.status.unwrap();
    let chat_status = status
        .mappings
        .iter()
        .find(|m| m.queue == CHAT_QUEUE)
        .unwrap();
    assert_eq!(
        chat_status.uuid.as_deref(),
        Some(seeded.chat_mapping.as_str())
    );
    let eval_status = status
        .mappings
        .iter()
        .find(|m| m.queue == EVAL_QUEUE)
        .unwrap();
    assert_eq!(eval_status.uuid.as_deref(), Some(eval_uuid.as_str()));
    assert_eq!(env.mappings(CHAT).await.len(), 1);
    assert_eq!(
        env.calls()
            .await
            .count("lambda", "CreateEventSourceMapping"),
        0
    );

    // (5) The shared layer detached by a deploy tool is attached again, the other kept first.
    env.lambda()
        .update_function_configuration()
        .function_name(EVAL)
        .layers(&seeded.monitoring_layer)
        .send()
        .await
        .unwrap();
    env.wait_aws("the layer attached again", || async {
        let deployed = env.function(EVAL).await;
        let layers: Vec<String> = deployed
            .layers()
            .iter()
            .filter_map(|l| l.arn().map(str::to_owned))
            .collect();
        (layers == [seeded.monitoring_layer.clone(), seeded.deps_v2.clone()]).then_some(())
    })
    .await;
    env.wait_for(name, "Ready again", ready).await;

    // (6) Backlog over the threshold: Validated=False with the numbers, then recovery.
    let chat_url = env.queue_url(CHAT_QUEUE).await;
    // Stop the mapping from consuming so the messages stay visible (moto does not invoke,
    // but the check must not depend on it).
    for i in 0..4 {
        env.sqs()
            .send_message()
            .queue_url(&chat_url)
            .message_body(format!("chat {i}"))
            .send()
            .await
            .unwrap();
    }
    let stage = env
        .wait_for(name, "Validated=False", |s| {
            condition(s, "Validated").0 == "False"
        })
        .await;
    let (_, reason, message) = condition(&stage, "Validated");
    assert_eq!(reason, "ValidationFailed");
    assert!(
        message.contains(&format!("queue {CHAT_QUEUE}: 4 visible (max 3)")),
        "{message}"
    );
    assert_eq!(condition(&stage, "Ready").0, "False");
    let backlog = stage.status.unwrap().validation.unwrap();
    let chat_backlog = backlog
        .queues
        .iter()
        .find(|q| q.queue == CHAT_QUEUE)
        .unwrap();
    assert_eq!((chat_backlog.visible, chat_backlog.ok), (4, false));
    let gauge = env
        .ctx
        .metrics
        .queue_backlog_messages
        .with_label_values(&[&format!("{NAMESPACE}/{name}"), CHAT_QUEUE, "visible"])
        .get();
    assert_eq!(gauge, 4);
    env.sqs()
        .purge_queue()
        .queue_url(&chat_url)
        .send()
        .await
        .unwrap();
    env.wait_for(name, "Ready after the backlog drained", ready)
        .await;

    // (7) Delete with deletionPolicy Delete: the mapping Stagehand created goes, the adopted
    // mapping and the functions stay.
    env.stages()
        .delete(name, &DeleteParams::default())
        .await
        .unwrap();
    tokio::time::timeout(TIMEOUT, async {
        while env.stages().get_opt(name).await.unwrap().is_some() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the finalizer is removed");
    let exported = env.ctx.metrics.render().unwrap();
    assert!(
        !exported.contains(&format!("stage=\"{NAMESPACE}/{name}\"")),
        "a deleted stage's backlog series stay exported"
    );
    assert!(
        env.mappings(EVAL).await.is_empty(),
        "created mapping deleted"
    );
    let chat: Vec<String> = env
        .mappings(CHAT)
        .await
        .iter()
        .filter_map(|m| m.uuid().map(str::to_owned))
        .collect();
    assert_eq!(
        chat,
        std::slice::from_ref(&seeded.chat_mapping),
        "adopted mapping kept"
    );
    for function in [API, CHAT, EVAL] {
        assert_eq!(
            env.function(function).await.code_sha256(),
            Some(v2.as_str())
        );
    }
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pinned_mismatch_stalls_without_deploying_and_retain_leaves_aws_alone() {
    let mut env = Env::start().await;
    let seeded = seed(&env).await;
    env.start_controllers().await;
    let name = "shop-api-dev";
    // (3) The pin names a build that is not the object under the key.
    let pinned = Sha256Digest::of(&build("v9"));
    env.floor.reset_calls().await.unwrap();
    env.create(&chalice_stage(name, "Retain", Some(&pinned.to_hex())))
        .await;
    let stage = env
        .wait_for(name, "Stalled", |s| condition(s, "Stalled").0 == "True")
        .await;
    let (_, reason, message) = condition(&stage, "Stalled");
    assert_eq!(reason, "ArtifactMismatch");
    let actual = Sha256Digest::of(&build("v1"));
    assert!(message.contains(&actual.to_string()), "{message}");
    assert!(message.contains(&pinned.to_string()), "{message}");
    assert_eq!(condition(&stage, "CodeInSync").1, "ArtifactMismatch");
    assert_eq!(condition(&stage, "Ready").0, "False");
    // Look again (resyncs) to be sure nothing is deployed later either.
    let before = env.reconciles();
    env.wait_reconciles(before, 2).await;
    let calls = env.calls().await;
    for write in [
        "UpdateFunctionCode",
        "UpdateFunctionConfiguration",
        "CreateEventSourceMapping",
        "TagResource",
    ] {
        assert_eq!(calls.count("lambda", write), 0, "{write}");
    }
    let old = b64(&build("v0"));
    for function in [API, CHAT, EVAL] {
        assert_eq!(
            env.function(function).await.code_sha256(),
            Some(old.as_str())
        );
    }

    // The pinned build lands under the key: deployed with no spec change.
    env.upload(KEY, &build("v9")).await;
    env.wait_for(name, "Ready with the pinned build", ready)
        .await;
    for function in [API, CHAT, EVAL] {
        assert_eq!(
            env.function(function).await.code_sha256(),
            Some(pinned.to_base64().as_str())
        );
    }

    // (7) Retain: deleting the object leaves functions and both mappings in place.
    env.stages()
        .delete(name, &DeleteParams::default())
        .await
        .unwrap();
    tokio::time::timeout(TIMEOUT, async {
        while env.stages().get_opt(name).await.unwrap().is_some() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the finalizer is removed");
    assert_eq!(env.mappings(EVAL).await.len(), 1);
    assert_eq!(env.mappings(CHAT).await.len(), 1);
    assert_eq!(
        env.mappings(CHAT).await[0].uuid(),
        Some(seeded.chat_mapping.as_str())
    );
    env.stop().await;
}

/// A bucket that does not exist is the user's to fix: `Stalled` naming it (not a retried AWS
/// error), nothing written, and the stage deploys once the spec names a bucket that exists.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_artifact_bucket_stalls_naming_the_bucket_until_the_spec_is_fixed() {
    let mut env = Env::start().await;
    seed(&env).await;
    env.start_controllers().await;
    let name = "shop-api-dev";
    let mut stage = chalice_stage(name, "Retain", None);
    if let Some(s3) = stage.spec.code.as_mut().and_then(|c| c.s3.as_mut()) {
        s3.bucket = "no-such-bucket".into();
    }
    env.floor.reset_calls().await.unwrap();
    env.create(&stage).await;
    let stalled = env
        .wait_for(name, "Stalled", |s| condition(s, "Stalled").0 == "True")
        .await;
    let (_, reason, message) = condition(&stalled, "Stalled");
    assert_eq!(reason, "ArtifactNotFound");
    assert!(
        message.contains("\"no-such-bucket\" does not exist"),
        "{message}"
    );
    assert_eq!(condition(&stalled, "Reconciling").0, "False");
    let calls = env.calls().await;
    for write in [
        "UpdateFunctionCode",
        "UpdateFunctionConfiguration",
        "TagResource",
    ] {
        assert_eq!(calls.count("lambda", write), 0, "{write}");
    }
    merge_spec(&env, name, json!({"code": {"s3": {"bucket": BUCKET}}})).await;
    env.wait_for(name, "Ready once the bucket exists", ready)
        .await;
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn converges_under_30_percent_lambda_throttling_without_duplicate_mappings() {
    use stagehand_testenv::aws::{FaultAction, FaultRule};
    let mut env = Env::start().await;
    seed(&env).await;
    env.floor
        .add_fault(
            &FaultRule::new(FaultAction::throttle())
                .service("lambda")
                .probability(0.3, 7),
        )
        .await
        .unwrap();
    env.floor.reset_calls().await.unwrap();
    env.start_controllers().await;
    let name = "shop-api-dev";
    env.create(&chalice_stage(name, "Retain", None)).await;
    env.wait_for(name, "Ready despite throttling", ready).await;
    let calls = env.calls().await;
    let throttled: u64 = calls.calls.values().map(|s| s.injected).sum();
    assert!(throttled > 0, "the fault rule fired: {:?}", summary(&calls));
    // The test's own checks below go through the same proxy: not throttled.
    env.floor.clear_faults().await.unwrap();
    assert_eq!(env.mappings(CHAT).await.len(), 1);
    assert_eq!(env.mappings(EVAL).await.len(), 1);
    let creates = calls.get("lambda", "CreateEventSourceMapping");
    assert_eq!(
        creates.map(|c| c.count - c.injected),
        Some(1),
        "one mapping created"
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_build_is_seen_at_once_when_the_refresh_annotation_changes() {
    // Listings are reused for 10 minutes here: without a nudge, a build uploaded under the same
    // key is not seen within this test.
    let mut env = Env::start_with_inventory_max_age(Duration::from_secs(600)).await;
    seed(&env).await;
    env.start_controllers().await;
    let name = "shop-api-dev";
    env.create(&chalice_stage(name, "Retain", None)).await;
    env.wait_for(name, "Ready", ready).await;
    let v1 = b64(&build("v1"));
    assert_eq!(env.function(API).await.code_sha256(), Some(v1.as_str()));

    env.upload(KEY, &build("v2")).await;
    // Resyncs (every 2s) reuse the listing: the new build is not noticed yet.
    let before = env.reconciles();
    env.wait_reconciles(before, 2).await;
    assert_eq!(env.function(API).await.code_sha256(), Some(v1.as_str()));
    assert_eq!(
        env.calls().await.count("s3", "GetObject"),
        1,
        "v1 hashed, v2 not seen"
    );

    // A pipeline sets stagehand.dev/refresh after uploading: the next reconcile reads AWS
    // afresh and deploys the new build to every function using it.
    env.stages()
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"annotations": {"stagehand.dev/refresh": "build-2"}}}),
            ),
        )
        .await
        .unwrap();
    let v2 = b64(&build("v2"));
    for function in [API, CHAT, EVAL] {
        env.wait_aws("the new build deployed", || async {
            (env.function(function).await.code_sha256() == Some(v2.as_str())).then_some(())
        })
        .await;
    }
    env.wait_for(name, "Ready on the new build", ready).await;
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_in_progress_is_waited_for_before_any_update_of_that_function() {
    let mut env = Env::start().await;
    seed(&env).await;
    // The stage's only function reports an update in progress in its next 4 reads. (A
    // function is read on its own, `GetFunction`, when first seen and as long as it reports
    // an update in progress; the shared listing is not trusted for it meanwhile.)
    env.floor
        .add_fault(
            &FaultRule::new(FaultAction::lambda_in_progress())
                .service("lambda")
                .operation("GetFunction")
                .resource(API)
                .times(4),
        )
        .await
        .unwrap();
    env.floor.reset_calls().await.unwrap();
    env.start_controllers().await;
    let name = "in-progress";
    env.create(&stage(
        name,
        json!({"adopt": true, "code": {"s3": {"bucket": BUCKET, "key": KEY}},
                       "functions": [{"name": API, "timeoutSeconds": 30}]}),
    ))
    .await;

    let waiting = env
        .wait_for(name, "waiting for the update in progress", |s| {
            let (status, reason, _) = condition(s, "Reconciling");
            status == "True" && reason == "FunctionUpdateInProgress"
        })
        .await;
    let (_, _, message) = condition(&waiting, "Reconciling");
    assert!(message.contains(&format!("function {API}")), "{message}");
    assert_eq!(condition(&waiting, "Ready").0, "False");

    let v1 = b64(&build("v1"));
    wait_ready_at(&env, name, &[API], &v1).await;
    assert_eq!(env.function(API).await.timeout(), Some(30));
    let faults = env.floor.faults().await.unwrap();
    assert_eq!(
        faults[0].remaining,
        Some(0),
        "every in-progress read was seen"
    );

    // No update of the function while a read said it was in progress.
    let log = env.log().await;
    let updates = updates_after_unsettled_reads(&log, API, "InProgress");
    assert!(
        updates.iter().any(|r| r.operation == "UpdateFunctionCode"),
        "{updates:?}"
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_owned_by_another_stage_is_never_touched() {
    let mut env = Env::start().await;
    seed(&env).await;
    let other = "payments/LambdaStage/chat";
    let chat = env.function(CHAT).await;
    env.lambda()
        .tag_resource()
        .resource(chat.function_arn().unwrap())
        .tags("stagehand.dev/owner", other)
        .send()
        .await
        .unwrap();
    env.floor.reset_calls().await.unwrap();
    let writes_before = env.log().await.len();
    env.start_controllers().await;
    let name = "shop-api-dev";
    env.create(&chalice_stage(name, "Retain", None)).await;
    let stalled = env
        .wait_for(name, "Stalled", |s| condition(s, "Stalled").0 == "True")
        .await;
    let (_, reason, message) = condition(&stalled, "Stalled");
    assert_eq!(reason, "OwnershipConflict");
    assert!(message.contains(other), "{message}");
    assert!(message.contains(CHAT), "{message}");
    assert_eq!(condition(&stalled, "Ready").0, "False");
    // Look again (resyncs) to be sure nothing is written later either.
    let before = env.reconciles();
    env.wait_reconciles(before, 2).await;
    let log = env.log().await;
    let writes: Vec<&CallRecord> = log[writes_before..]
        .iter()
        .filter(|r| is_lambda_write(r))
        .collect();
    assert!(writes.is_empty(), "{writes:?}");
    let after = env.function(CHAT).await;
    assert_eq!(after.code_sha256(), chat.code_sha256());
    assert_eq!(after.revision_id(), chat.revision_id());
    let tags = env
        .lambda()
        .list_tags()
        .resource(after.function_arn().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(tags.tags().unwrap()["stagehand.dev/owner"], other);
    env.stop().await;
}
