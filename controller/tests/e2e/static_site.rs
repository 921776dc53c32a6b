//! StaticSite end to end: the production controllers (`stagehand::kinds::registry()`) against
//! the Kubernetes API stand-in and moto behind the proxy. A site created from a manifest is
//! served (its objects in the bucket, Ready with its revision and distribution in status, an
//! Event per action); deleting it with `deletionPolicy: Delete` removes the bucket and the
//! distribution before the finalizer goes.

#![allow(
    clippy::unwrap_used,
    reason = "a test module: a panic with its location is the failure report we want"
)]

use kube::api::{Api, DeleteParams, PostParams};
use serde_json::json;
use stagehand::base::conditions::find_condition;
use stagehand_crds::StaticSite;

use crate::spot_fleet::event_reasons;
use crate::static_site_lifecycle::builds_bucket;
use crate::static_site_round::{SITE_BUCKET, site_spec};
use crate::support::{Env, NAMESPACE, TIMEOUT};

fn ready(site: &StaticSite) -> bool {
    site.status.as_ref().is_some_and(|s| {
        s.common.observed_generation == site.metadata.generation
            && find_condition(&s.common.conditions, "Ready").is_some_and(|c| c.status == "True")
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controller_serves_a_site_to_ready_and_deletion_removes_it() {
    let mut env = Env::start().await;
    builds_bucket(&env).await;
    let s3 = env.aws.s3();
    env.start_controllers().await;
    let sites: Api<StaticSite> = Api::namespaced(env.ctx.client.clone(), NAMESPACE);
    let manifest: StaticSite = serde_json::from_value(json!({
        "apiVersion": "stagehand.dev/v1alpha1",
        "kind": "StaticSite",
        "metadata": {"name": "storefront", "namespace": NAMESPACE},
        "spec": site_spec(&json!({"deletionPolicy": "Delete"})),
    }))
    .unwrap();
    sites
        .create(&PostParams::default(), &manifest)
        .await
        .unwrap();

    let site = tokio::time::timeout(TIMEOUT, async {
        loop {
            if let Some(site) = sites.get_opt("storefront").await.unwrap()
                && ready(&site)
            {
                return site;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("storefront never became Ready"));
    let status = site.status.unwrap();
    assert!(status.revision.is_some());
    assert!(status.distribution.is_some());
    let listed = s3
        .list_objects_v2()
        .bucket(SITE_BUCKET)
        .send()
        .await
        .unwrap();
    let keys: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert!(keys.contains(&"index.html"), "{keys:?}");
    let reasons = event_reasons(&env, "storefront").await;
    for reason in [
        "BucketCreated",
        "ObjectsUploaded",
        "DistributionCreated",
        "RevisionServed",
    ] {
        assert!(
            reasons.iter().any(|r| r == reason),
            "{reason} in {reasons:?}"
        );
    }

    sites
        .delete("storefront", &DeleteParams::default())
        .await
        .unwrap();
    tokio::time::timeout(TIMEOUT, async {
        while sites.get_opt("storefront").await.unwrap().is_some() {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("storefront was never deleted"));
    assert!(s3.head_bucket().bucket(SITE_BUCKET).send().await.is_err());
    env.stop().await;
}
