//! A crash between `CreateBucket` and the `PutBucketTagging` that follows (S3 cannot tag a
//! bucket at creation), with a real `stagehand run` process: the proxy fails every
//! `PutBucketTagging` of the site's bucket, the process is SIGKILLed once S3 has answered the
//! `CreateBucket`, and a new process takes over with the faults gone. The bucket it finds has
//! no owner tag; the site must still recognise it as its own creation (the intent record its
//! status carried before the create), tag it, become Ready on it, and remove it on deletion —
//! the last chaos soak left two such buckets behind.

#![allow(
    clippy::unwrap_used,
    reason = "a test module: a panic with its location is the failure report we want"
)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use kube::api::{Api, DeleteParams, PostParams};
use serde_json::json;
use stagehand::base::conditions::find_condition;
use stagehand_crds::StaticSite;
use stagehand_testenv::aws::{CallRecord, FaultAction, FaultRule};

use crate::static_site_lifecycle::builds_bucket;
use crate::static_site_round::{SITE_BUCKET, site_spec};
use crate::support::soak::replica::{LeaderTimings, Replica, ReplicaOptions};
use crate::support::{Env, NAMESPACE, REGION, TIMEOUT};

const NAME: &str = "storefront";
const OWNER: &str = "shop/StaticSite/storefront";

/// Numbers each test's kubeconfig file.
static NEXT_KUBECONFIG: AtomicU32 = AtomicU32::new(0);

fn start(env: &Env, name: &'static str, kubeconfig: &std::path::Path) -> Replica {
    let options = ReplicaOptions {
        aws_endpoint_url: env.floor.endpoint_url(),
        region: REGION.to_owned(),
        namespace: NAMESPACE.to_owned(),
        timings: LeaderTimings {
            lease_duration: "4s",
            renew_deadline: "3s",
            retry_period: "250ms",
        },
        inventory_max_age: "1s",
        extra_env: Vec::new(),
    };
    Replica::start(crate::cli::stagehand(), name, kubeconfig, &options)
}

fn is_site_bucket_call(record: &CallRecord, operation: &str) -> bool {
    record.operation == operation && record.path.contains(SITE_BUCKET)
}

/// Waits (bounded) until the proxy's log satisfies `check`.
async fn wait_log(env: &Env, what: &str, check: impl Fn(&[CallRecord]) -> bool) {
    let waited = tokio::time::timeout(TIMEOUT, async {
        while !check(&env.log().await) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    waited.unwrap_or_else(|_| panic!("timed out waiting for {what}"));
}

fn ready(site: &StaticSite) -> bool {
    site.status.as_ref().is_some_and(|s| {
        s.common.observed_generation == site.metadata.generation
            && find_condition(&s.common.conditions, "Ready").is_some_and(|c| c.status == "True")
    })
}

async fn site_bucket_tags(env: &Env) -> Option<Vec<(String, String)>> {
    let tagging = env
        .aws
        .s3()
        .get_bucket_tagging()
        .bucket(SITE_BUCKET)
        .send()
        .await
        .ok()?;
    Some(
        tagging
            .tag_set()
            .iter()
            .map(|t| (t.key().to_owned(), t.value().to_owned()))
            .collect(),
    )
}

/// The crash: a site whose bucket S3 created and never tagged (every `PutBucketTagging` of it
/// failed), its replica SIGKILLed, the faults gone. The environment, the sites' API and the
/// kubeconfig a next replica uses.
async fn crashed_after_create_bucket() -> (Env, Api<StaticSite>, PathBuf) {
    let env = Env::start().await;
    builds_bucket(&env).await;
    env.floor
        .add_fault(
            &FaultRule::new(FaultAction::error(500))
                .service("s3")
                .operation("PutBucketTagging")
                .resource(SITE_BUCKET),
        )
        .await
        .unwrap();
    let kubeconfig = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "crash-create-tag-{}-{}.kubeconfig",
        std::process::id(),
        NEXT_KUBECONFIG.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&kubeconfig, env.server.kubeconfig_yaml()).unwrap();

    let mut first = start(&env, "replica-a", &kubeconfig);
    first
        .wait_log("leading: starting controllers", TIMEOUT)
        .await;
    let sites: Api<StaticSite> = Api::namespaced(env.ctx.client.clone(), NAMESPACE);
    let manifest: StaticSite = serde_json::from_value(json!({
        "apiVersion": "stagehand.dev/v1alpha1",
        "kind": "StaticSite",
        "metadata": {"name": NAME, "namespace": NAMESPACE},
        "spec": site_spec(&json!({"deletionPolicy": "Delete"})),
    }))
    .unwrap();
    sites
        .create(&PostParams::default(), &manifest)
        .await
        .unwrap();
    wait_log(
        &env,
        "CreateBucket answered and PutBucketTagging failed",
        |log| {
            log.iter()
                .any(|r| is_site_bucket_call(r, "CreateBucket") && r.status == 200)
                && log
                    .iter()
                    .any(|r| is_site_bucket_call(r, "PutBucketTagging") && !r.injected.is_empty())
        },
    )
    .await;
    first.signal("-KILL");
    first.exited(TIMEOUT).await;
    assert_eq!(
        site_bucket_tags(&env).await,
        None,
        "the bucket exists without tags"
    );
    let recorded = sites.get(NAME).await.unwrap().status.unwrap();
    assert_eq!(
        recorded.pending_create.as_ref().map(|p| p.name.as_str()),
        Some(SITE_BUCKET),
        "the status recorded the bucket before CreateBucket: {recorded:#?}"
    );
    env.floor.clear_faults().await.unwrap();
    (env, sites, kubeconfig)
}

/// Waits (bounded) until the site is gone.
async fn wait_deleted(sites: &Api<StaticSite>) {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while sites.get_opt(NAME).await.unwrap().is_some() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{NAME} was never deleted"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_created_just_before_a_crash_is_tagged_served_and_deleted_by_the_next_process() {
    let _turn = crate::leader_failover::one_at_a_time().await;
    let (env, sites, kubeconfig) = crashed_after_create_bucket().await;
    let s3 = env.aws.s3();
    let mut second = start(&env, "replica-b", &kubeconfig);
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    let site = loop {
        let site = sites.get(NAME).await.unwrap();
        if ready(&site) {
            break site;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{NAME} never became Ready after the restart: {:#?}",
            site.status
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let status = site.status.unwrap();
    assert!(status.revision.is_some(), "{status:#?}");
    assert_eq!(
        status.pending_create, None,
        "the record is cleared once tagged"
    );
    let tags = site_bucket_tags(&env).await.unwrap();
    assert!(
        tags.contains(&("stagehand.dev/owner".to_owned(), OWNER.to_owned())),
        "{tags:?}"
    );
    let created = env
        .log()
        .await
        .iter()
        .filter(|r| is_site_bucket_call(r, "CreateBucket") && r.status == 200)
        .count();
    assert_eq!(created, 1, "the bucket was created once");

    sites.delete(NAME, &DeleteParams::default()).await.unwrap();
    wait_deleted(&sites).await;
    assert!(
        s3.head_bucket().bucket(SITE_BUCKET).send().await.is_err(),
        "deleting the site left its bucket"
    );
    second.signal("-TERM");
    assert_eq!(second.exited(TIMEOUT).await, Some(0));
    let _ = std::fs::remove_file(&kubeconfig);
}

/// Deleted while the record is set, before any process tagged the bucket: the next process's
/// cleanup deletes the untagged bucket the record names (it holds nothing).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_deleted_before_its_bucket_was_tagged_still_removes_the_bucket() {
    let _turn = crate::leader_failover::one_at_a_time().await;
    let (env, sites, kubeconfig) = crashed_after_create_bucket().await;
    sites.delete(NAME, &DeleteParams::default()).await.unwrap();
    let mut second = start(&env, "replica-b", &kubeconfig);
    wait_deleted(&sites).await;
    assert!(
        env.aws
            .s3()
            .head_bucket()
            .bucket(SITE_BUCKET)
            .send()
            .await
            .is_err(),
        "deleting the site left its untagged bucket"
    );
    second.signal("-TERM");
    assert_eq!(second.exited(TIMEOUT).await, Some(0));
    let _ = std::fs::remove_file(&kubeconfig);
}
