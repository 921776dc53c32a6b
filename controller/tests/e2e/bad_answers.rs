//! AWS answers the SDK cannot read, through the proxy's `garbage`, `truncate` and `field_value`
//! rewrites of moto's successful answers (docs/testing.md, "Fault rules"), against the
//! production controllers. The spoiled call reached moto and took effect; only its answer is
//! lost. Each kind must then: say so on the object (`Reconciling=True`, reason
//! `AwsBadResponse`, a message naming the service and operation; a Warning Event that says it
//! will retry), retry with backoff, and converge without doing the write twice, because the
//! next round looks before it creates: a fleet finds its instances by tag (one `CreateFleet`),
//! a stage finds the version it published and the mapping it made (one each), a site derives
//! the invalidation's paths again from the served manifest (the same paths, never lost). An
//! enum value the SDK does not know (`LastUpdateStatus: FutureState`) is waited on, never
//! taken for "done".

#![allow(
    clippy::unwrap_used,
    reason = "a test module: a panic with its location is the failure report we want"
)]

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;

use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Api, ListParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;
use stagehand::base::conditions::find_condition;
use stagehand_crds::{LambdaStage, SpotFleet, StaticSite};
use stagehand_testenv::aws::{CallRecord, FaultAction, FaultRule};

use crate::spot_fleet::{fleet, wait_ready};
use crate::spot_fleet_round::{fleet_spec, live_of, network};
use crate::static_site_missing::{condition as site_condition, site, wait_site};
use crate::static_site_round::{ARCHIVE, BUILDS, build_files, zip_of};
use crate::support::{
    API, BUCKET, EVAL, EVAL_QUEUE, Env, KEY, NAMESPACE, TIMEOUT, b64, build, is_true, seed, stage,
    updates_after_unsettled_reads, wait_ready_at,
};

/// The notes of the Warning Events about `name` with reason `reason`.
async fn warnings(env: &Env, name: &str, reason: &str) -> Vec<String> {
    let events: Api<Event> = Api::namespaced(env.ctx.client.clone(), NAMESPACE);
    events
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
        .filter(|e| e.type_.as_deref() == Some("Warning") && e.reason.as_deref() == Some(reason))
        .filter_map(|e| e.note)
        .collect()
}

/// A Warning Event about `name` says the `service` `operation` answer could not be read and
/// that Stagehand retries.
async fn assert_bad_response_reported(env: &Env, name: &str, service: &str, operation: &str) {
    let notes = warnings(env, name, "AwsBadResponse").await;
    let call = format!("AWS {service} {operation}");
    assert!(
        notes.iter().any(|n| n.contains(&call)
            && n.contains("could not be read")
            && n.ends_with("(will retry)")),
        "no AwsBadResponse Event naming {call}: {notes:?}"
    );
}

/// The `Reconciling` condition of a kstatus object, as (status, reason, message).
fn reconciling(conditions: &[Condition]) -> (String, String, String) {
    find_condition(conditions, "Reconciling").map_or_else(Default::default, |c| {
        (c.status.clone(), c.reason.clone(), c.message.clone())
    })
}

/// Every `Reconciling` condition object `name` shows from now on, in order, as (status,
/// reason, message). Read from a watch, so a status that lasts only until the next round (the
/// retry after a bad answer reads AWS and converges at once) is still seen.
fn reconciling_history<K>(
    api: Api<K>,
    name: &str,
    conditions: impl Fn(&K) -> Option<Vec<Condition>> + Send + 'static,
) -> Arc<Mutex<Vec<(String, String, String)>>>
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + 'static,
{
    let history = Arc::new(Mutex::new(Vec::new()));
    let recorded = Arc::clone(&history);
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    tokio::spawn(async move {
        let mut objects = std::pin::pin!(watcher(api, config).applied_objects());
        while let Some(Ok(object)) = objects.next().await {
            let now = conditions(&object)
                .map(|c| reconciling(&c))
                .unwrap_or_default();
            let mut seen = recorded.lock().unwrap();
            if seen.last() != Some(&now) {
                seen.push(now);
            }
        }
    });
    history
}

/// The object showed `Reconciling=True`, reason `AwsBadResponse`, with a message that names
/// the call and says AWS is read again before the retry.
fn assert_bad_response_on_the_object(
    history: &Mutex<Vec<(String, String, String)>>,
    service: &str,
    operation: &str,
) {
    let history = history.lock().unwrap();
    let call = format!("AWS {service} {operation}");
    assert!(
        history
            .iter()
            .any(|(status, reason, message)| status == "True"
                && reason == "AwsBadResponse"
                && message.contains(&call)
                && message.contains("AWS is read again before it is retried")),
        "no Reconciling=True AwsBadResponse naming {call}: {history:#?}"
    );
}

/// Ready at its generation.
fn site_ready(site: &StaticSite) -> bool {
    site.status
        .as_ref()
        .is_some_and(|s| s.common.observed_generation == site.metadata.generation)
        && site_condition(site, "Ready").0 == "True"
}

fn calls<'a>(log: &'a [CallRecord], operation: &str) -> Vec<&'a CallRecord> {
    log.iter().filter(|r| r.operation == operation).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_create_fleet_answer_is_reported_and_never_launches_twice() {
    let mut env = Env::start().await;
    let network = network(&env.aws).await;
    env.floor
        .add_fault(
            &FaultRule::new(FaultAction::garbage())
                .service("ec2")
                .operation("CreateFleet")
                .times(1),
        )
        .await
        .unwrap();
    env.start_controllers().await;
    let fleets: Api<SpotFleet> = Api::namespaced(env.ctx.client.clone(), NAMESPACE);
    let manifest = fleet("workers", &fleet_spec(&network, 2, &json!({})));
    let history = reconciling_history(fleets.clone(), "workers", |f: &SpotFleet| {
        f.status.as_ref().map(|s| s.common.conditions.clone())
    });
    fleets
        .create(&PostParams::default(), &manifest)
        .await
        .unwrap();

    let ready = wait_ready(&fleets, "workers").await;
    assert_bad_response_on_the_object(&history, "ec2", "CreateFleet");
    let live = live_of(&env.aws, "shop/SpotFleet/workers").await;
    assert_eq!(
        live.len(),
        2,
        "the lost answer's instances were found, none added"
    );
    let in_status: BTreeSet<String> = ready
        .status
        .unwrap()
        .instances
        .iter()
        .map(|i| i.instance_id.clone())
        .collect();
    assert_eq!(in_status, live);
    assert_eq!(
        calls(&env.log().await, "CreateFleet").len(),
        1,
        "one launch"
    );
    assert_bad_response_reported(&env, "workers", "ec2", "CreateFleet").await;
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_instance_state_is_never_taken_for_running_nor_launched_over() {
    let mut env = Env::start().await;
    let network = network(&env.aws).await;
    // Every instance EC2 describes is in a state the SDK does not know.
    env.floor
        .add_fault(
            &FaultRule::new(FaultAction::field_value(
                "instanceState.name",
                "hibernating-soon",
            ))
            .service("ec2")
            .operation("DescribeInstances"),
        )
        .await
        .unwrap();
    env.start_controllers().await;
    let fleets: Api<SpotFleet> = Api::namespaced(env.ctx.client.clone(), NAMESPACE);
    fleets
        .create(
            &PostParams::default(),
            &fleet("workers", &fleet_spec(&network, 2, &json!({}))),
        )
        .await
        .unwrap();
    // Several rounds read the unknown state.
    tokio::time::timeout(TIMEOUT, async {
        while env.floor.faults().await.unwrap()[0].fired < 4 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .unwrap();
    let fleet = fleets.get("workers").await.unwrap();
    let conditions = fleet
        .status
        .map(|s| s.common.conditions)
        .unwrap_or_default();
    assert!(
        find_condition(&conditions, "Ready").is_none_or(|c| c.status != "True"),
        "not Ready on instances in an unknown state: {conditions:#?}"
    );
    let log = env.log().await;
    assert_eq!(
        calls(&log, "CreateFleet").len(),
        1,
        "launched once, not over"
    );
    assert!(
        calls(&log, "TerminateInstances").is_empty(),
        "nothing terminated"
    );

    env.floor.clear_faults().await.unwrap();
    wait_ready(&fleets, "workers").await;
    assert_eq!(live_of(&env.aws, "shop/SpotFleet/workers").await.len(), 2);
    assert_eq!(calls(&env.log().await, "CreateFleet").len(), 1);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_publish_and_mapping_answers_never_duplicate_a_version_or_a_mapping() {
    let mut env = Env::start().await;
    seed(&env).await;
    env.floor.reset_calls().await.unwrap();
    for rule in [
        FaultRule::new(FaultAction::garbage())
            .service("lambda")
            .operation("PublishVersion")
            .times(1),
        FaultRule::new(FaultAction::truncate())
            .service("lambda")
            .operation("CreateEventSourceMapping")
            .times(1),
    ] {
        env.floor.add_fault(&rule).await.unwrap();
    }
    env.start_controllers().await;
    let name = "unreadable";
    let history = reconciling_history(env.stages(), name, |s: &LambdaStage| {
        s.status.as_ref().map(|s| s.common.conditions.clone())
    });
    env.create(&stage(
        name,
        json!({"adopt": true, "code": {"s3": {"bucket": BUCKET, "key": KEY}},
               "functions": [{"name": API}, {"name": EVAL}],
               "alias": {"name": "live"},
               "eventSourceMappings": [{"function": EVAL, "queue": EVAL_QUEUE, "batchSize": 5}]}),
    ))
    .await;

    env.wait_for(name, "Ready", |s| {
        is_true(s, "Ready")
            && s.status
                .as_ref()
                .is_some_and(|st| st.common.observed_generation == s.metadata.generation)
    })
    .await;
    for function in [API, EVAL] {
        let versions = env
            .lambda()
            .list_versions_by_function()
            .function_name(function)
            .send()
            .await
            .unwrap();
        let published: Vec<&str> = versions
            .versions()
            .iter()
            .filter_map(|v| v.version())
            .filter(|v| *v != "$LATEST")
            .collect();
        assert_eq!(published.len(), 1, "{function}: {published:?}");
    }
    assert_eq!(env.mappings(EVAL).await.len(), 1, "one mapping for {EVAL}");
    let log = env.log().await;
    assert_eq!(calls(&log, "CreateEventSourceMapping").len(), 1);
    assert_eq!(calls(&log, "PublishVersion").len(), 2, "one per function");
    assert_bad_response_on_the_object(&history, "lambda", "PublishVersion");
    assert_bad_response_on_the_object(&history, "lambda", "CreateEventSourceMapping");
    assert_bad_response_reported(&env, name, "lambda", "PublishVersion").await;
    assert_bad_response_reported(&env, name, "lambda", "CreateEventSourceMapping").await;
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_last_update_status_is_waited_on_never_taken_for_done() {
    let mut env = Env::start().await;
    seed(&env).await;
    // The function's next 4 reads of its own say `LastUpdateStatus: FutureState`, a value the
    // SDK parses into its `Unknown` variant.
    env.floor
        .add_fault(
            &FaultRule::new(FaultAction::field_value("LastUpdateStatus", "FutureState"))
                .service("lambda")
                .operation("GetFunction")
                .resource(API)
                .times(4),
        )
        .await
        .unwrap();
    env.start_controllers().await;
    let name = "future-state";
    let history = reconciling_history(env.stages(), name, |s: &LambdaStage| {
        s.status.as_ref().map(|s| s.common.conditions.clone())
    });
    env.create(&stage(
        name,
        json!({"adopt": true, "code": {"s3": {"bucket": BUCKET, "key": KEY}},
               "functions": [{"name": API}]}),
    ))
    .await;
    wait_ready_at(&env, name, &[API], &b64(&build("v1"))).await;
    let waited = history
        .lock()
        .unwrap()
        .iter()
        .any(|(status, reason, message)| {
            status == "True" && reason == "FunctionUpdateInProgress" && message.contains(API)
        });
    assert!(waited, "{:#?}", history.lock().unwrap());

    let log = env.log().await;
    let updates = updates_after_unsettled_reads(&log, API, "FutureState");
    assert!(!updates.is_empty());
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_create_invalidation_answer_keeps_the_paths_and_invalidates_them_again() {
    let mut env = Env::start().await;
    let s3 = env.aws.s3();
    s3.create_bucket().bucket(BUILDS).send().await.unwrap();
    let upload = |app_js: &'static str| {
        s3.put_object()
            .bucket(BUILDS)
            .key(ARCHIVE)
            .body(zip_of(&build_files(app_js), 2024).into())
            .send()
    };
    upload("console.log(1)").await.unwrap();
    env.start_controllers().await;
    let sites: Api<StaticSite> = Api::namespaced(env.ctx.client.clone(), NAMESPACE);
    let manifest = site("storefront", &json!({}));
    sites
        .create(&PostParams::default(), &manifest)
        .await
        .unwrap();
    let first = wait_site(&sites, "storefront", "first revision served", site_ready).await;
    let first_revision = first.status.unwrap().revision;

    for rule in [
        FaultRule::new(FaultAction::garbage())
            .service("cloudfront")
            .operation("CreateInvalidation")
            .times(1),
        // Then the invalidation (as its retry answers, and as read after) is in a status the
        // SDK does not know: waited on, never taken for completed.
        FaultRule::new(FaultAction::field_value("Status", "FutureStatus"))
            .service("cloudfront")
            .operation("CreateInvalidation")
            .skip(1)
            .times(1),
        FaultRule::new(FaultAction::field_value("Status", "FutureStatus"))
            .service("cloudfront")
            .operation("GetInvalidation")
            .times(2),
    ] {
        env.floor.add_fault(&rule).await.unwrap();
    }
    let history = reconciling_history(sites.clone(), "storefront", |s: &StaticSite| {
        s.status.as_ref().map(|s| s.common.conditions.clone())
    });
    upload("console.log(2)").await.unwrap();
    let second = wait_site(&sites, "storefront", "second revision served", |s| {
        site_ready(s) && s.status.as_ref().and_then(|s| s.revision.clone()) != first_revision
    })
    .await;
    let status = second.status.unwrap();
    assert_eq!(status.last_invalidation.as_ref().map(|i| i.paths), Some(1));

    // Two requests (the lost answer's and its retry), the same one path each: moto creates
    // an invalidation per request (AWS would answer the retry's caller reference with the
    // first), so both are listed.
    let log = env.log().await;
    assert_eq!(calls(&log, "CreateInvalidation").len(), 2);
    let distribution = status.distribution.unwrap().id;
    let cloudfront = aws_sdk_cloudfront::Client::new(&env.aws.sdk);
    let listed = cloudfront
        .list_invalidations()
        .distribution_id(&distribution)
        .send()
        .await
        .unwrap();
    let ids: Vec<String> = listed
        .invalidation_list()
        .map(|l| l.items().iter().map(|i| i.id().to_owned()).collect())
        .unwrap_or_default();
    assert_eq!(ids.len(), 2, "{ids:?}");
    for id in ids {
        let invalidation = cloudfront
            .get_invalidation()
            .distribution_id(&distribution)
            .id(&id)
            .send()
            .await
            .unwrap();
        let paths = invalidation
            .invalidation()
            .and_then(|i| i.invalidation_batch())
            .and_then(|b| b.paths())
            .map(|p| p.items().to_vec())
            .unwrap_or_default();
        assert_eq!(paths, ["/assets/app.js"], "{id}");
    }
    assert_bad_response_on_the_object(&history, "cloudfront", "CreateInvalidation");
    let waited = history
        .lock()
        .unwrap()
        .iter()
        .any(|(status, reason, _)| status == "True" && reason == "InvalidationInProgress");
    assert!(waited, "{:#?}", history.lock().unwrap());
    let faults = env.floor.faults().await.unwrap();
    assert_eq!(
        (faults[1].remaining, faults[2].remaining),
        (Some(0), Some(0))
    );
    assert_bad_response_reported(&env, "storefront", "cloudfront", "CreateInvalidation").await;
    env.stop().await;
}
