//! LambdaStage with its own CloudFormation stack, end to end: the stack created by change set,
//! its failure states (`ROLLBACK_COMPLETE` recreated, `UPDATE_ROLLBACK_FAILED` stalled), and a
//! function of the stack tagged for another owner never touched. The API stand-in, moto behind
//! the counting/fault proxy, the production controllers; every wait is bounded and on an
//! observed condition, never a fixed sleep.

#![allow(
    clippy::unwrap_used,
    clippy::too_many_lines,
    reason = "a test module: a panic with its location is the failure report we want"
)]

use serde_json::json;
use stagehand_testenv::aws::{CallRecord, FaultAction, FaultRule};

use crate::support::{
    BUCKET, Env, KEY, NAMESPACE, b64, build, condition, is_lambda_write, merge_spec, ready, seed,
    stage, wait_ready_at,
};

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
