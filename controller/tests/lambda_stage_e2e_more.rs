//! More LambdaStage scenarios end to end (issue 6, "Tests"): a function update in progress,
//! another stage's function, the CloudFormation stack's failure states, alias versions and
//! rollback, and a controller killed mid-reconcile (also while creating a mapping). Same setup as `lambda_stage_e2e.rs`
//! (`support`): the API stand-in, moto behind the counting/fault proxy, the production
//! controllers. Every wait is bounded and on an observed condition, never a fixed sleep.

#![allow(
    clippy::unwrap_used,
    clippy::too_many_lines,
    reason = "a test binary: a panic with its location is the failure report we want"
)]

mod support;

use serde_json::json;
use stagehand_crds::LambdaStage;
use stagehand_testenv::aws::{CallRecord, FaultAction, FaultRule};
use support::{
    API, BUCKET, CHAT, CHAT_QUEUE, EVAL, EVAL_QUEUE, Env, KEY, NAMESPACE, b64, build,
    chalice_stage, condition, merge_spec, ready, seed, stage,
};

/// Lambda calls that change something.
fn is_lambda_write(record: &CallRecord) -> bool {
    record.service == "lambda"
        && [
            "Create", "Update", "Delete", "Publish", "Put", "Tag", "Untag",
        ]
        .iter()
        .any(|verb| record.operation.starts_with(verb))
}

/// Ready at the object's current generation and every function at `sha` (base64).
async fn wait_ready_at(env: &Env, name: &str, functions: &[&str], sha: &str) -> LambdaStage {
    let stage = env.wait_for(name, "Ready", ready).await;
    for function in functions {
        assert_eq!(
            env.function(function).await.code_sha256(),
            Some(sha),
            "{function}"
        );
    }
    stage
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
    let last_busy = log
        .iter()
        .filter(|r| r.operation == "GetFunction" && r.injected.iter().any(|i| i == "rewrite"))
        .map(|r| r.seq)
        .max()
        .unwrap();
    let updates: Vec<&CallRecord> = log
        .iter()
        .filter(|r| r.operation.starts_with("UpdateFunction") && r.path.contains(API))
        .collect();
    assert!(
        updates.iter().any(|r| r.operation == "UpdateFunctionCode"),
        "{updates:?}"
    );
    for update in &updates {
        assert!(
            update.seq > last_busy,
            "{} at #{} while the read #{last_busy} said InProgress",
            update.operation,
            update.seq
        );
    }
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

/// A stack with one function (named `shop-stack-fn`) on the old build.
async fn upload_template(env: &Env, role: &str) {
    let template = json!({
        "Resources": {"Fn": {"Type": "AWS::Lambda::Function", "Properties": {
            "FunctionName": STACK_FN,
            "Runtime": "python3.12",
            "Handler": "app.app",
            "Role": role,
            "Code": {"S3Bucket": BUCKET, "S3Key": "old.zip"},
        }}}
    });
    env.upload(TEMPLATE_KEY, template.to_string().as_bytes())
        .await;
}

const STACK: &str = "shop-stack";
const STACK_FN: &str = "shop-stack-fn";
const TEMPLATE_KEY: &str = "templates/shop-stack.json";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stack_is_created_by_change_set_and_its_failure_states_are_handled() {
    let mut env = Env::start().await;
    seed(&env).await;
    let role = env.floor.moto().create_lambda_role().await.unwrap();
    upload_template(&env, &role).await;
    env.floor.reset_calls().await.unwrap();
    env.start_controllers().await;
    let name = "stacked";
    env.create(&stage(
        name,
        // No adopt: the stack is the stage's, so are the functions it creates.
        json!({"code": {"s3": {"bucket": BUCKET, "key": KEY}},
                       "infrastructure": {"stackName": STACK,
                           "template": {"bucket": BUCKET, "key": TEMPLATE_KEY},
                           "onRollbackComplete": "Stall"},
                       "functions": [{"fromStack": "Fn"}]}),
    ))
    .await;
    let v1 = b64(&build("v1"));
    let first = wait_ready_at(&env, name, &[STACK_FN], &v1).await;
    let status = first.status.unwrap();
    let stack = status.stack.unwrap();
    assert!(stack.created_by_stagehand, "{stack:?}");
    // The stack's function carries the stage's ownership tags (written by Stagehand: the
    // emulator does not propagate stack tags as CloudFormation does).
    assert_eq!(function_tags(&env, STACK_FN).await, owner_tags(name));
    let calls = env.calls().await;
    assert_eq!(calls.count("cloudformation", "CreateChangeSet"), 1);
    assert_eq!(calls.count("cloudformation", "ExecuteChangeSet"), 1);
    assert_eq!(calls.count("cloudformation", "CreateStack"), 0);
    assert_eq!(calls.count("lambda", "UpdateFunctionCode"), 1);

    // ROLLBACK_COMPLETE with onRollbackComplete: Stall → Stalled, nothing deleted.
    let rollback_reason = "The following resource(s) failed to create: [Fn].";
    env.floor
        .add_fault(
            &FaultRule::new(FaultAction::stack_status(
                "ROLLBACK_COMPLETE",
                Some(rollback_reason),
            ))
            .resource(STACK),
        )
        .await
        .unwrap();
    let stalled = env
        .wait_for(name, "Stalled on ROLLBACK_COMPLETE", |s| {
            condition(s, "Stalled").1 == "StackRollbackComplete"
        })
        .await;
    assert!(
        condition(&stalled, "Stalled").2.contains(rollback_reason),
        "{:?}",
        condition(&stalled, "Stalled")
    );
    assert_eq!(env.calls().await.count("cloudformation", "DeleteStack"), 0);

    // UPDATE_ROLLBACK_FAILED → Stalled with the stack's own reason.
    env.floor.clear_faults().await.unwrap();
    let failed_reason = "Resource Fn failed to roll back: role not found";
    env.floor
        .add_fault(
            &FaultRule::new(FaultAction::stack_status(
                "UPDATE_ROLLBACK_FAILED",
                Some(failed_reason),
            ))
            .resource(STACK),
        )
        .await
        .unwrap();
    let stalled = env
        .wait_for(name, "Stalled on UPDATE_ROLLBACK_FAILED", |s| {
            condition(s, "Stalled").1 == "StackUpdateRollbackFailed"
        })
        .await;
    let (_, _, message) = condition(&stalled, "Stalled");
    assert!(message.contains(failed_reason), "{message}");
    assert!(message.contains("UPDATE_ROLLBACK_FAILED"), "{message}");
    env.floor.clear_faults().await.unwrap();
    env.wait_for(name, "Ready once the stack is repaired", ready)
        .await;

    // onRollbackComplete: Recreate → the stack is deleted and created again by change set,
    // and the new function gets the build.
    merge_spec(
        &env,
        name,
        json!({"infrastructure": {"stackName": STACK,
            "template": {"bucket": BUCKET, "key": TEMPLATE_KEY},
            "onRollbackComplete": "Recreate"}}),
    )
    .await;
    env.wait_for(name, "Ready at generation 2", |s| {
        ready(s) && s.metadata.generation == Some(2)
    })
    .await;
    env.floor.reset_calls().await.unwrap();
    env.floor
        .add_fault(
            &FaultRule::new(FaultAction::stack_status(
                "ROLLBACK_COMPLETE",
                Some(rollback_reason),
            ))
            .resource(STACK)
            .times(1),
        )
        .await
        .unwrap();
    env.wait_aws("the stack deleted and created again", || async {
        let calls = env.calls().await;
        (calls.count("cloudformation", "DeleteStack") == 1
            && calls.count("cloudformation", "ExecuteChangeSet") == 1
            && calls.count("lambda", "UpdateFunctionCode") == 1)
            .then_some(())
    })
    .await;
    let before = env.reconciles();
    env.wait_reconciles(before, 1).await;
    wait_ready_at(&env, name, &[STACK_FN], &v1).await;
    let log = env.log().await;
    let seq_of = |operation: &str| {
        log.iter()
            .filter(|r| r.operation == operation)
            .map(|r| r.seq)
            .max()
            .unwrap()
    };
    assert!(seq_of("DeleteStack") < seq_of("CreateChangeSet"));
    let calls = env.calls().await;
    assert_eq!(calls.count("cloudformation", "DeleteStack"), 1);
    assert_eq!(calls.count("cloudformation", "CreateChangeSet"), 1);
    // The recreated stack's new function is the stage's too.
    assert_eq!(function_tags(&env, STACK_FN).await, owner_tags(name));
    env.stop().await;
}

/// The ownership tags of `function`.
async fn function_tags(env: &Env, function: &str) -> Vec<(String, String)> {
    let arn = env
        .function(function)
        .await
        .function_arn()
        .unwrap()
        .to_owned();
    let mut tags: Vec<(String, String)> = env
        .lambda()
        .list_tags()
        .resource(arn)
        .send()
        .await
        .unwrap()
        .tags()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|(k, _)| k.starts_with("stagehand.dev/"))
        .collect();
    tags.sort();
    tags
}

fn owner_tags(stage: &str) -> Vec<(String, String)> {
    vec![
        ("stagehand.dev/cluster".to_owned(), "e2e".to_owned()),
        (
            "stagehand.dev/owner".to_owned(),
            format!("{NAMESPACE}/LambdaStage/{stage}"),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_of_the_own_stack_tagged_for_another_owner_is_never_touched() {
    let mut env = Env::start().await;
    seed(&env).await;
    let role = env.floor.moto().create_lambda_role().await.unwrap();
    upload_template(&env, &role).await;
    env.start_controllers().await;
    let name = "stacked";
    let spec = json!({"code": {"s3": {"bucket": BUCKET, "key": KEY}},
                      "infrastructure": {"stackName": STACK,
                          "template": {"bucket": BUCKET, "key": TEMPLATE_KEY}},
                      "functions": [{"fromStack": "Fn"}]});
    env.create(&stage(name, spec)).await;
    let v1 = b64(&build("v1"));
    wait_ready_at(&env, name, &[STACK_FN], &v1).await;
    assert_eq!(function_tags(&env, STACK_FN).await, owner_tags(name));

    // Someone hands the function to another stage; then a new build arrives.
    let other = "payments/LambdaStage/orders";
    let arn = env
        .function(STACK_FN)
        .await
        .function_arn()
        .unwrap()
        .to_owned();
    env.lambda()
        .tag_resource()
        .resource(&arn)
        .tags("stagehand.dev/owner", other)
        .send()
        .await
        .unwrap();
    let writes_before = env.log().await.len();
    env.upload(KEY, &build("v2")).await;
    let stalled = env
        .wait_for(name, "Stalled on the other owner", |s| {
            condition(s, "Stalled").1 == "OwnershipConflict"
        })
        .await;
    let (_, _, message) = condition(&stalled, "Stalled");
    assert!(message.contains(other), "{message}");
    assert!(message.contains(STACK_FN), "{message}");
    let before = env.reconciles();
    env.wait_reconciles(before, 2).await;
    let log = env.log().await;
    let writes: Vec<&CallRecord> = log[writes_before..]
        .iter()
        .filter(|r| is_lambda_write(r))
        .collect();
    assert!(writes.is_empty(), "{writes:?}");
    assert_eq!(
        env.function(STACK_FN).await.code_sha256(),
        Some(v1.as_str())
    );
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
