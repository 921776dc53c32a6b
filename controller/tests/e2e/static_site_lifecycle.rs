//! What the lifecycle settings mean for a StaticSite, served by the production controllers
//! against the Kubernetes API stand-in and moto behind the proxy — the same as for a
//! LambdaStage: `management: ObserveOnly` reports the drift of a new build and writes nothing;
//! `stagehand.dev/paused` stops everything and says so; removing it deploys; a new
//! `stagehand.dev/refresh` value reads AWS at once (the site's resync is 10 minutes here, so
//! nothing else would); `deletionPolicy: Retain` leaves the bucket and the distribution.

#![allow(
    clippy::unwrap_used,
    reason = "a test module: a panic with its location is the failure report we want"
)]

use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use stagehand::base::conditions::find_condition;
use stagehand_crds::StaticSite;

use crate::spot_fleet::event_reasons;
use crate::static_site_round::{ARCHIVE, BUILDS, SITE_BUCKET, build_files, site_spec, zip_of};
use crate::support::{Env, NAMESPACE, TIMEOUT};

const NAME: &str = "storefront";

/// The builds bucket with build 1 published: where every site test's source starts.
pub async fn builds_bucket(env: &Env) {
    env.aws
        .s3()
        .create_bucket()
        .bucket(BUILDS)
        .send()
        .await
        .unwrap();
    publish(env, 1).await;
}

/// The environment with the builds bucket, build 1 published, and the controllers running.
pub async fn started() -> (Env, Api<StaticSite>) {
    let mut env = Env::start().await;
    builds_bucket(&env).await;
    env.start_controllers().await;
    let sites = Api::namespaced(env.ctx.client.clone(), NAMESPACE);
    (env, sites)
}

/// Publishes build `n`: `assets/app.js` is `console.log(n)`.
pub async fn publish(env: &Env, n: u32) {
    env.aws
        .s3()
        .put_object()
        .bucket(BUILDS)
        .key(ARCHIVE)
        .body(zip_of(&build_files(&format!("console.log({n})")), 2024).into())
        .send()
        .await
        .unwrap();
}

pub async fn create(sites: &Api<StaticSite>, extra: &Value) {
    let site: StaticSite = serde_json::from_value(json!({
        "apiVersion": "stagehand.dev/v1alpha1",
        "kind": "StaticSite",
        "metadata": {"name": NAME, "namespace": NAMESPACE},
        "spec": site_spec(extra),
    }))
    .unwrap();
    sites.create(&PostParams::default(), &site).await.unwrap();
}

async fn patch(sites: &Api<StaticSite>, patch: Value) {
    sites
        .patch(NAME, &PatchParams::default(), &Patch::Merge(patch))
        .await
        .unwrap();
}

/// Waits (bounded) until the site's status at its current generation satisfies `check`.
pub async fn wait_for(
    sites: &Api<StaticSite>,
    what: &str,
    check: impl Fn(&StaticSite) -> bool,
) -> StaticSite {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let site = sites.get_opt(NAME).await.unwrap();
        if let Some(site) = &site
            && site
                .status
                .as_ref()
                .is_some_and(|s| s.common.observed_generation == site.metadata.generation)
            && check(site)
        {
            return site.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{NAME}: timed out waiting for {what}; status: {:#?}",
            site.and_then(|s| s.status)
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// The site's condition `type_`: (status, reason, message).
pub fn condition(site: &StaticSite, type_: &str) -> (String, String, String) {
    site.status
        .as_ref()
        .and_then(|s| find_condition(&s.common.conditions, type_))
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
        .unwrap_or_default()
}

pub fn ready(site: &StaticSite) -> bool {
    condition(site, "Ready").0 == "True"
}

/// The live `assets/app.js`.
pub async fn app_js(env: &Env) -> Vec<u8> {
    let got = env
        .aws
        .s3()
        .get_object()
        .bucket(SITE_BUCKET)
        .key("assets/app.js")
        .send()
        .await
        .unwrap();
    got.body.collect().await.unwrap().into_bytes().to_vec()
}

/// Calls that wrote to the site bucket since the proxy's last reset.
async fn bucket_writes(env: &Env) -> Vec<String> {
    env.log()
        .await
        .into_iter()
        .filter(|c| c.path.starts_with(&format!("/{SITE_BUCKET}")))
        .filter(|c| ["PUT", "POST", "DELETE"].contains(&c.method.as_str()))
        .map(|c| format!("{} {}", c.operation, c.path))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observe_only_writes_nothing_paused_stops_and_a_refresh_deploys_at_once() {
    let (env, sites) = started().await;
    create(&sites, &json!({"resyncInterval": "10m"})).await;
    wait_for(&sites, "Ready", ready).await;
    assert_eq!(app_js(&env).await, b"console.log(1)");

    // ObserveOnly; then build 2, and a refresh to look at it now: seen as drift, reported, not
    // deployed. (Build 2 is published only once ObserveOnly is in effect: the reconcile that
    // follows the site's own status write would otherwise deploy it first.)
    patch(&sites, json!({"spec": {"management": "ObserveOnly"}})).await;
    wait_for(&sites, "ObserveOnly in effect", ready).await;
    env.floor.reset_calls().await.unwrap();
    publish(&env, 2).await;
    patch(
        &sites,
        json!({"metadata": {"annotations": {"stagehand.dev/refresh": "build-2"}}}),
    )
    .await;
    let site = wait_for(&sites, "the drift reported", |s| {
        condition(s, "Ready").1 == "DriftDetected"
    })
    .await;
    let (status, _, message) = condition(&site, "Ready");
    assert_eq!(status, "False");
    assert!(
        message.contains("ObserveOnly") && message.contains("content"),
        "{message}"
    );
    assert_eq!(condition(&site, "ContentInSync").0, "False");
    assert_eq!(bucket_writes(&env).await, Vec::<String>::new());
    assert_eq!(app_js(&env).await, b"console.log(1)");

    // Paused (and Full again): nothing observed or changed, status says so.
    patch(
        &sites,
        json!({"metadata": {"annotations": {"stagehand.dev/paused": "true"}},
               "spec": {"management": "Full"}}),
    )
    .await;
    let site = wait_for(&sites, "Paused", |s| condition(s, "Ready").1 == "Paused").await;
    assert_eq!(condition(&site, "Ready").0, "Unknown");
    assert_eq!(bucket_writes(&env).await, Vec::<String>::new());
    assert_eq!(app_js(&env).await, b"console.log(1)");

    // Unpaused: build 2 is deployed.
    patch(
        &sites,
        json!({"metadata": {"annotations": {"stagehand.dev/paused": null}}}),
    )
    .await;
    tokio::time::timeout(TIMEOUT, async {
        while app_js(&env).await != b"console.log(2)" {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("build 2 deployed once unpaused");
    wait_for(&sites, "Ready on build 2", ready).await;

    // Build 3 while the site resyncs every 10 minutes: a new refresh value looks at once.
    publish(&env, 3).await;
    patch(
        &sites,
        json!({"metadata": {"annotations": {"stagehand.dev/refresh": "build-3"}}}),
    )
    .await;
    tokio::time::timeout(TIMEOUT, async {
        while app_js(&env).await != b"console.log(3)" {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("build 3 deployed after the refresh");
    wait_for(&sites, "Ready on build 3", ready).await;
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletion_with_retain_leaves_the_bucket_and_the_distribution() {
    let (env, sites) = started().await;
    create(&sites, &json!({"deletionPolicy": "Retain"})).await;
    let site = wait_for(&sites, "Ready", ready).await;
    let distribution = site.status.unwrap().distribution.unwrap().id;

    sites.delete(NAME, &DeleteParams::default()).await.unwrap();
    tokio::time::timeout(TIMEOUT, async {
        while sites.get_opt(NAME).await.unwrap().is_some() {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the finalizer released");
    assert_eq!(
        app_js(&env).await,
        b"console.log(1)",
        "the bucket serves on"
    );
    let cloudfront = aws_sdk_cloudfront::Client::new(&env.aws.sdk);
    let kept = cloudfront
        .get_distribution()
        .id(&distribution)
        .send()
        .await
        .unwrap();
    let config = kept.distribution().unwrap().distribution_config().unwrap();
    assert!(config.enabled(), "the distribution is left enabled");
    let reasons = event_reasons(&env, NAME).await;
    assert!(reasons.iter().any(|r| r == "SiteRetained"), "{reasons:?}");
    env.stop().await;
}
