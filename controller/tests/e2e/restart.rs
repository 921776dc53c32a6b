//! A restart over converged objects (a new controller pod after a rollout) changes nothing: for
//! every kind, the status the fresh process writes — conditions with their transition times
//! included — is the one the old process left, and nothing is read that the status already
//! records (a LambdaStage's artifact is not downloaded again to learn its hash). Found by
//! `bench_scale`: about 60% of converged objects wrote a changed status after a restart and
//! some LambdaStages read `Ready=False` (`Applying`), which a GitOps tool shows as a flap of
//! every stage on every controller rollout.

#![allow(
    clippy::unwrap_used,
    reason = "a test module: a panic with its location is the failure report we want"
)]

use std::fmt::Debug;
use std::time::Duration;

use kube::Api;
use kube::api::PostParams;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use stagehand_crds::SpotFleet;

use crate::spot_fleet::{fleet, wait_ready};
use crate::spot_fleet_round::{fleet_spec, network};
use crate::static_site_lifecycle::{create, started, wait_for};
use crate::static_site_round::BUILDS;
use stagehand_testenv::aws::{FaultAction, FaultRule};

use crate::support::{
    API, BUCKET, CHAT, Env, KEY, NAMESPACE, TIMEOUT, chalice_stage, ready, seed, stage,
};

/// The object's status as JSON.
async fn status_of<K>(api: &Api<K>, name: &str) -> Value
where
    K: kube::Resource + Clone + DeserializeOwned + Debug + Serialize,
{
    serde_json::to_value(api.get(name).await.unwrap()).unwrap()["status"].clone()
}

/// Waits (bounded) until two reconciles of `kind` in a row leave `name`'s status as it was:
/// the object has converged and the rounds after its last action are over.
async fn settled<K>(env: &Env, api: &Api<K>, name: &str, kind: &str) -> Value
where
    K: kube::Resource + Clone + DeserializeOwned + Debug + Serialize,
{
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    let mut before = status_of(api, name).await;
    loop {
        let from = env.reconciles_of(kind);
        while env.reconciles_of(kind) < from + 2 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{name}: fewer than 2 reconciles"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let after = status_of(api, name).await;
        if after == before {
            return after;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name}: the status never settled"
        );
        before = after;
    }
}

/// Restarts the controllers with nothing in memory, waits for `rounds` reconciles of `kind`
/// by the new process and asserts `name`'s status is exactly `converged`, and that the new
/// process downloaded no artifact or site archive again (the status says what they hold).
async fn restart_changes_nothing<K>(
    env: &mut Env,
    api: &Api<K>,
    name: &str,
    kind: &str,
    rounds: u64,
) where
    K: kube::Resource + Clone + DeserializeOwned + Debug + Serialize,
{
    let converged = settled(env, api, name, kind).await;
    env.floor.reset_calls().await.unwrap();
    let seq = env.log().await.last().map_or(0, |r| r.seq);
    env.restart_controllers().await;
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while env.reconciles_of(kind) < rounds {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name}: the restarted controller reconciled fewer than {rounds} times"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let after = status_of(api, name).await;
    assert_eq!(
        serde_json::to_string_pretty(&after).unwrap(),
        serde_json::to_string_pretty(&converged).unwrap(),
        "{name}: the restart changed the status"
    );
    let downloads: Vec<String> = env
        .log()
        .await
        .into_iter()
        .filter(|r| r.seq > seq && r.operation == "GetObject")
        .filter(|r| {
            [BUCKET, BUILDS]
                .iter()
                .any(|b| r.path.starts_with(&format!("/{b}/")))
        })
        .map(|r| r.path)
        .collect();
    assert!(
        downloads.is_empty(),
        "{name}: the restart downloaded a build again {downloads:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_over_a_converged_stage_changes_nothing() {
    let mut env = Env::start().await;
    seed(&env).await;
    env.start_controllers().await;
    let name = "shop-api-dev";
    let mut spec = chalice_stage(name, "Retain", None);
    spec.spec.alias = Some(serde_json::from_value(json!({"name": "live"})).unwrap());
    env.create(&spec).await;
    env.wait_for(name, "Ready", ready).await;
    let stages = env.stages();
    // The artifact has no S3 checksum: its hash was streamed once, and status keeps it.
    let status = status_of(&stages, name).await;
    assert_eq!(status["artifactHashes"].as_array().map(Vec::len), Some(1));
    restart_changes_nothing(&mut env, &stages, name, "lambdastage", 3).await;
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_over_a_converged_site_changes_nothing() {
    let (mut env, sites) = started().await;
    create(&sites, &json!({})).await;
    wait_for(&sites, "Ready", crate::static_site_lifecycle::ready).await;
    // The build was read from the archive once; status keeps which revision holds its files.
    let status = status_of(&sites, "storefront").await;
    assert_eq!(status["sourceArchive"]["bucket"], BUILDS);
    restart_changes_nothing(&mut env, &sites, "storefront", "staticsite", 2).await;
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_over_a_converged_fleet_changes_nothing() {
    let mut env = Env::start().await;
    let network = network(&env.aws).await;
    env.start_controllers().await;
    let fleets: Api<SpotFleet> = Api::namespaced(env.ctx.client.clone(), NAMESPACE);
    fleets
        .create(
            &PostParams::default(),
            &fleet("workers", &fleet_spec(&network, 2, &json!({}))),
        )
        .await
        .unwrap();
    wait_ready(&fleets, "workers").await;
    restart_changes_nothing(&mut env, &fleets, "workers", "spotfleet", 2).await;
    env.stop().await;
}

/// A cold start over objects it has never reconciled (or a GitOps sync of many): every new
/// object's first round asks for a fresh view of AWS, and a listing read after the object was
/// noticed is that view, however long the object waited for a worker. With one worker and a
/// first round slowed past the old one-second floor, the second stage still reuses the first
/// one's listing: one `ListFunctions` for both, where a listing per round was made before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cold_start_over_new_objects_shares_one_listing() {
    let env = cold_start(Duration::from_millis(1500)).await;
    for name in ["api", "chat"] {
        env.wait_for(name, "Ready", ready).await;
    }
    assert_eq!(
        listings_before_the_second_first_round(&env).await,
        1,
        "both first rounds share one listing"
    );
    env.stop().await;
}

/// What a spec change trusts is the moment its spec was first seen, not the object's latest
/// event: the finalizer each new object gets before its first round, or a label added while it
/// waits, changes nothing of the spec. Found by `bench_scale` at 10,000 objects: each new
/// stage's first round followed its finalizer's event, so the region was relisted every few
/// seconds (124 listings of 360 pages in 8 minutes). Here both stages are labelled while the
/// first one's round runs (after its listing); the second one's round still shares that
/// listing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_label_before_the_first_round_does_not_relist() {
    let env = cold_start(Duration::from_secs(4)).await;
    // The first round has listed and read its function's tags; its artifact listing is held.
    let first_round_listed = async {
        while !env.log().await.iter().any(|r| r.operation == "GetFunction") {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(TIMEOUT, first_round_listed)
        .await
        .expect("a first round reads its function");
    let label = json!({"metadata": {"labels": {"team": "payments"}}});
    for name in ["api", "chat"] {
        env.stages()
            .patch(
                name,
                &kube::api::PatchParams::default(),
                &kube::api::Patch::Merge(&label),
            )
            .await
            .unwrap();
    }
    for name in ["api", "chat"] {
        env.wait_for(name, "Ready", ready).await;
    }
    assert_eq!(
        listings_before_the_second_first_round(&env).await,
        1,
        "the label is not a new spec: the listing read after the spec was seen serves it"
    );
    env.stop().await;
}

/// Two stages created before the controllers start, one worker, and the first round's artifact
/// listing held for `first_round_held`: the controllers are running when this returns.
async fn cold_start(first_round_held: Duration) -> Env {
    let mut env = Env::start_with_inventory_max_age(Duration::from_secs(60)).await;
    seed(&env).await;
    let mut settings = env.ctx.settings.clone();
    settings.concurrency = 1;
    env.ctx = std::sync::Arc::new(stagehand::runtime::Context::new(
        env.ctx.client.clone(),
        env.sdk.clone(),
        stagehand::runtime::Metrics::new().unwrap(),
        settings,
    ));
    for (name, function) in [("api", API), ("chat", CHAT)] {
        env.create(&stage(
            name,
            json!({
                "adopt": true,
                "code": {"s3": {"bucket": BUCKET, "key": KEY}},
                "functions": [{"name": function}],
            }),
        ))
        .await;
    }
    env.floor
        .add_fault(
            &FaultRule::new(FaultAction::latency(first_round_held))
                .service("s3")
                .operation("ListObjectsV2")
                .times(1),
        )
        .await
        .unwrap();
    env.floor.reset_calls().await.unwrap();
    env.start_controllers().await;
    env
}

/// The `ListFunctions` calls made before the second stage's first round read its function's
/// tags (`GetFunction`, once per stage after its refresh: the later of the two).
async fn listings_before_the_second_first_round(env: &Env) -> usize {
    let log = env.log().await;
    let second_first_round = [API, CHAT]
        .iter()
        .map(|function| {
            log.iter()
                .find(|r| r.operation == "GetFunction" && r.path.contains(function))
                .map(|r| r.seq)
                .unwrap()
        })
        .max()
        .unwrap();
    log.iter()
        .filter(|r| r.operation == "ListFunctions" && r.seq < second_first_round)
        .count()
}
