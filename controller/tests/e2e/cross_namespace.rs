//! An object in one namespace never changes AWS resources owned by an object in another, tried
//! with the production controllers: a second object of the same kind and name in namespace
//! `other`, with `adopt: true`, naming the first one's resources (or, for fleets, the same user
//! tags). Owner tags carry the namespace (`<namespace>/<kind>/<name>`), so the second object
//! sees another owner: it stalls with `OwnershipConflict` (sites) or keeps to its own instances
//! (fleets), and deleting it with `deletionPolicy: Delete` removes nothing of the first: the
//! proxy's log shows no S3 or CloudFront write while it lived. moto's distribution ids do not
//! match the CRD's `^E…` pattern, so naming another site's distribution by id is tested on the
//! plan (`static_site::plan::tests::infrastructure`).
//! Functions and mappings are covered where LambdaStage's ownership is tested
//! (`lambda_stage_deploy`, `lambda_stage_stack`, `lambda_stage::mapping_owners`).

#![allow(
    clippy::unwrap_used,
    reason = "a test module: a panic with its location is the failure report we want"
)]

use std::time::Duration;

use kube::api::{Api, DeleteParams, PostParams};
use serde_json::{Value, json};
use stagehand::base::conditions::find_condition;
use stagehand_crds::{OWNER_TAG, SpotFleet, StaticSite};
use stagehand_testenv::aws::CallRecord;

use crate::spot_fleet::{wait_gone, wait_ready};
use crate::spot_fleet_round::{fleet_spec, instances_of, live_of, network};
use crate::static_site_lifecycle::builds_bucket;
use crate::static_site_missing::wait_site;
use crate::static_site_round::{SITE_BUCKET, site_spec};
use crate::support::{Env, NAMESPACE, TIMEOUT};

const OTHER: &str = "other";

fn object<K: serde::de::DeserializeOwned>(
    kind: &str,
    namespace: &str,
    name: &str,
    spec: &Value,
) -> K {
    serde_json::from_value(json!({
        "apiVersion": "stagehand.dev/v1alpha1",
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }))
    .unwrap()
}

/// Whether `record` changed something in S3 or CloudFront (anything but a read).
fn is_site_write(record: &CallRecord) -> bool {
    ["s3", "cloudfront"].contains(&record.service.as_str())
        && !["GET", "HEAD"].contains(&record.method.as_str())
}

fn condition_is(site: &StaticSite, type_: &str, status: &str) -> bool {
    site.status.as_ref().is_some_and(|s| {
        s.common.observed_generation == site.metadata.generation
            && find_condition(&s.common.conditions, type_).is_some_and(|c| c.status == status)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_in_another_namespace_cannot_take_or_delete_the_bucket_and_distribution() {
    let mut env = Env::start().await;
    env.server.create_namespace(OTHER).await.unwrap();
    builds_bucket(&env).await;
    env.start_controllers().await;
    let ours: Api<StaticSite> = Api::namespaced(env.ctx.client.clone(), NAMESPACE);
    let theirs: Api<StaticSite> = Api::namespaced(env.ctx.client.clone(), OTHER);
    ours.create(
        &PostParams::default(),
        &object(
            "StaticSite",
            NAMESPACE,
            "storefront",
            &site_spec(&json!({})),
        ),
    )
    .await
    .unwrap();
    let served = wait_site(&ours, "storefront", "became Ready", |s| {
        condition_is(s, "Ready", "True")
    })
    .await;
    let distribution = served.status.unwrap().distribution.unwrap().id;
    let keys_before = bucket_keys(&env).await;

    // Same name, other namespace, adopt on, naming the first site's bucket. (Naming its
    // distribution by id cannot be tried against moto: its ids do not start with `E`, which the
    // CRD requires; the plan's test `a_site_in_another_namespace_cannot_take_the_distribution_
    // even_with_adopt` covers it.)
    let start = env.log().await.last().map_or(0, |r| r.seq);
    let spec = site_spec(&json!({
        "adopt": true,
        "deletionPolicy": "Delete",
        "bucket": {"name": SITE_BUCKET, "create": false},
    }));
    theirs
        .create(
            &PostParams::default(),
            &object("StaticSite", OTHER, "storefront", &spec),
        )
        .await
        .unwrap();
    let stalled = wait_site(&theirs, "storefront", "stalled", |s| {
        condition_is(s, "Stalled", "True")
    })
    .await;
    let stall = find_condition(
        &stalled.status.as_ref().unwrap().common.conditions,
        "Stalled",
    )
    .unwrap()
    .clone();
    assert_eq!(stall.reason, "OwnershipConflict");
    assert!(
        stall
            .message
            .contains("owned by shop/StaticSite/storefront"),
        "{}",
        stall.message
    );

    // Deleting it (Delete policy) tears down nothing of the first site.
    theirs
        .delete("storefront", &DeleteParams::default())
        .await
        .unwrap();
    tokio::time::timeout(TIMEOUT, async {
        while theirs.get_opt("storefront").await.unwrap().is_some() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .unwrap();
    let writes: Vec<CallRecord> = env
        .log()
        .await
        .into_iter()
        .filter(|r| r.seq > start && is_site_write(r))
        .collect();
    assert!(
        writes.is_empty(),
        "writes while the other namespace's site lived: {writes:#?}"
    );
    assert_eq!(bucket_keys(&env).await, keys_before);
    let cloudfront = aws_sdk_cloudfront::Client::new(&env.aws.sdk);
    let still = cloudfront
        .get_distribution()
        .id(&distribution)
        .send()
        .await
        .unwrap();
    assert_eq!(
        still.distribution().map(|d| d
            .distribution_config()
            .is_some_and(aws_sdk_cloudfront::types::DistributionConfig::enabled)),
        Some(true)
    );
    wait_site(&ours, "storefront", "Ready still", |s| {
        condition_is(s, "Ready", "True")
    })
    .await;
    env.stop().await;
}

async fn bucket_keys(env: &Env) -> Vec<String> {
    env.aws
        .s3()
        .list_objects_v2()
        .bucket(SITE_BUCKET)
        .send()
        .await
        .unwrap()
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_in_another_namespace_never_adopts_or_terminates_the_first_ones_instances() {
    let mut env = Env::start().await;
    env.server.create_namespace(OTHER).await.unwrap();
    let network = network(&env.aws).await;
    env.start_controllers().await;
    let ours: Api<SpotFleet> = Api::namespaced(env.ctx.client.clone(), NAMESPACE);
    let theirs: Api<SpotFleet> = Api::namespaced(env.ctx.client.clone(), OTHER);
    ours.create(
        &PostParams::default(),
        &object(
            "SpotFleet",
            NAMESPACE,
            "workers",
            &fleet_spec(&network, 2, &json!({})),
        ),
    )
    .await
    .unwrap();
    wait_ready(&ours, "workers").await;
    let first = instances_of(&env.aws, "shop/SpotFleet/workers").await;
    assert_eq!(first.len(), 2);

    // Same name, same user tags, same spec, adopt on, in another namespace.
    let spec = fleet_spec(
        &network,
        1,
        &json!({"adopt": true, "deletionPolicy": "Delete"}),
    );
    theirs
        .create(
            &PostParams::default(),
            &object("SpotFleet", OTHER, "workers", &spec),
        )
        .await
        .unwrap();
    wait_ready(&theirs, "workers").await;
    let second = live_of(&env.aws, "other/SpotFleet/workers").await;
    assert_eq!(second.len(), 1, "a launch of its own");
    assert!(second.iter().all(|id| !first.contains_key(id)));
    assert_eq!(
        instances_of(&env.aws, "shop/SpotFleet/workers").await,
        first,
        "untouched, tags included"
    );

    theirs
        .delete("workers", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&theirs, "workers").await;
    assert!(
        live_of(&env.aws, "other/SpotFleet/workers")
            .await
            .is_empty()
    );
    let after = instances_of(&env.aws, "shop/SpotFleet/workers").await;
    assert_eq!(
        after, first,
        "the first fleet's instances live on, unchanged"
    );
    for (state, tags) in after.values() {
        assert_eq!(state, "running");
        assert_eq!(tags[OWNER_TAG], "shop/SpotFleet/workers");
    }
    env.stop().await;
}
