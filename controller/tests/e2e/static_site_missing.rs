//! What a StaticSite spec names that does not exist, tried as a new user would, against the
//! production controllers: a missing source bucket (archive or prefix), a missing archive in an
//! existing bucket, a `distribution.id` that does not exist and a `bucket.create: false` bucket
//! that is not there each stall the site with a domain reason that names the missing thing
//! (never `AwsResourceNotFound` with the SDK's words). A stall is looked at again at the resync
//! interval: once the archive is uploaded, the site is served without any spec change.

#![allow(
    clippy::unwrap_used,
    reason = "a test module: a panic with its location is the failure report we want"
)]

use std::time::Duration;

use kube::api::{Api, PostParams};
use serde_json::{Value, json};
use stagehand::base::conditions::find_condition;
use stagehand_crds::StaticSite;

use crate::static_site_round::{build_files, site_spec, zip_of};
use crate::support::{Env, NAMESPACE, TIMEOUT};

/// A site `name` with its own bucket (`<name>-site`) and `extra` merged into the spec.
pub fn site(name: &str, extra: &Value) -> StaticSite {
    let mut spec = site_spec(&json!({"bucket": {"name": format!("{name}-site"), "create": true}}));
    if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
        for (key, value) in extra {
            spec.insert(key.clone(), value.clone());
        }
    }
    serde_json::from_value(json!({
        "apiVersion": "stagehand.dev/v1alpha1",
        "kind": "StaticSite",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": spec,
    }))
    .unwrap()
}

/// A condition of the site, as (status, reason, message).
pub fn condition(site: &StaticSite, type_: &str) -> (String, String, String) {
    site.status
        .as_ref()
        .and_then(|s| find_condition(&s.common.conditions, type_))
        .map_or_else(Default::default, |c| {
            (c.status.clone(), c.reason.clone(), c.message.clone())
        })
}

/// Polls (bounded) until `check` holds for site `name`; returns it.
pub async fn wait_site(
    sites: &Api<StaticSite>,
    name: &str,
    what: &str,
    check: impl Fn(&StaticSite) -> bool,
) -> StaticSite {
    let mut last = None;
    let found = tokio::time::timeout(TIMEOUT, async {
        loop {
            last = sites.get_opt(name).await.unwrap();
            if let Some(site) = last.as_ref().filter(|s| check(s)) {
                return site.clone();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    found.unwrap_or_else(|_| {
        panic!(
            "{name} never {what}; last status: {:#?}",
            last.and_then(|s| s.status)
        )
    })
}

/// Waits until `name` is `Stalled=True` with `reason`, and checks the message names `missing`
/// (Ready=False, not Reconciling: it is not retried in a loop).
async fn assert_stalls(sites: &Api<StaticSite>, name: &str, reason: &str, missing: &str) {
    let stalled = wait_site(sites, name, &format!("stalled with {reason}"), |s| {
        condition(s, "Stalled").1 == reason
    })
    .await;
    let (status, _, message) = condition(&stalled, "Stalled");
    assert_eq!(status, "True", "{name}");
    assert!(
        message.contains(missing),
        "{name}: {message:?} names {missing}"
    );
    assert_eq!(condition(&stalled, "Ready").0, "False", "{name}");
    assert_eq!(condition(&stalled, "Reconciling").0, "False", "{name}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_missing_resource_a_site_names_stalls_with_its_name_and_is_looked_at_again() {
    let mut env = Env::start().await;
    let s3 = env.aws.s3();
    // A bucket that exists, holding no archive yet.
    s3.create_bucket()
        .bucket("empty-builds")
        .send()
        .await
        .unwrap();
    env.start_controllers().await;
    let sites: Api<StaticSite> = Api::namespaced(env.ctx.client.clone(), NAMESPACE);
    for manifest in [
        site(
            "no-source-bucket",
            &json!({"source": {"bucket": "no-such-builds", "archive": "shop/build.zip"}}),
        ),
        site(
            "no-prefix-bucket",
            &json!({"source": {"bucket": "no-such-prefix-builds", "prefix": "dist/"}}),
        ),
        site(
            "no-archive",
            &json!({"source": {"bucket": "empty-builds", "archive": "shop/build.zip"}}),
        ),
        site(
            "no-distribution",
            &json!({"source": {"bucket": "empty-builds", "archive": "shop/build.zip"},
                    "distribution": {"id": "E2NOSUCHDIST0"}}),
        ),
        site(
            "no-bucket",
            &json!({"bucket": {"name": "no-such-site-bucket", "create": false},
                    "source": {"bucket": "empty-builds", "archive": "shop/build.zip"}}),
        ),
    ] {
        sites
            .create(&PostParams::default(), &manifest)
            .await
            .unwrap();
    }

    assert_stalls(
        &sites,
        "no-source-bucket",
        "SourceNotFound",
        "s3://no-such-builds/shop/build.zip",
    )
    .await;
    assert_stalls(
        &sites,
        "no-prefix-bucket",
        "SourceNotFound",
        "bucket no-such-prefix-builds",
    )
    .await;
    assert_stalls(
        &sites,
        "no-archive",
        "SourceNotFound",
        "s3://empty-builds/shop/build.zip",
    )
    .await;
    assert_stalls(
        &sites,
        "no-distribution",
        "DistributionNotFound",
        "E2NOSUCHDIST0",
    )
    .await;
    assert_stalls(&sites, "no-bucket", "BucketNotFound", "no-such-site-bucket").await;

    // CI uploads the build: the stall is looked at again at the resync interval and the site
    // is served, with no change to its spec.
    let generation = sites.get("no-archive").await.unwrap().metadata.generation;
    s3.put_object()
        .bucket("empty-builds")
        .key("shop/build.zip")
        .body(zip_of(&build_files("console.log(1)"), 2024).into())
        .send()
        .await
        .unwrap();
    let served = wait_site(&sites, "no-archive", "served after the upload", |s| {
        condition(s, "Ready").0 == "True"
    })
    .await;
    assert_eq!(served.metadata.generation, generation, "no spec change");
    assert!(served.status.unwrap().revision.is_some());
    // The distribution named by id still does not exist: still stalled, naming it.
    assert_stalls(
        &sites,
        "no-distribution",
        "DistributionNotFound",
        "E2NOSUCHDIST0",
    )
    .await;
    env.stop().await;
}
