//! StaticSite rounds on a `source.prefix` build (loose objects under a prefix, as `aws s3 cp
//! --recursive dist/` leaves them) and on an existing bucket (adoption), against moto through
//! the counting proxy. A prefix object with an S3 SHA-256 checksum is known from a HEAD; one
//! without is streamed once to hash it (`HashSourceObjects`); the next build under a new prefix
//! is one upload per changed file. An untagged bucket stalls the site (`AdoptionRequired`,
//! naming the bucket, nothing written) until `adopt: true`, then is tagged and synced.

#![allow(
    clippy::unwrap_used,
    reason = "a test module: a panic with its location is the failure report we want"
)]

use aws_sdk_s3::types::ChecksumAlgorithm;
use serde_json::json;
use stagehand::static_site::plan::Action;

use crate::static_site_round::{BUILDS, SITE_BUCKET, Site, World, build_files, site_spec};

/// Uploads `files` under `prefix` in the builds bucket; those named in `with_checksum` carry
/// an S3 SHA-256 checksum (`--checksum-algorithm SHA256`), the others none.
async fn upload_prefix(
    world: &World,
    prefix: &str,
    files: &[(String, Vec<u8>)],
    with_checksum: &[&str],
) {
    for (key, content) in files {
        let mut put = world
            .aws
            .s3()
            .put_object()
            .bucket(BUILDS)
            .key(format!("{prefix}{key}"))
            .body(content.clone().into());
        if with_checksum.contains(&key.as_str()) {
            put = put.checksum_algorithm(ChecksumAlgorithm::Sha256);
        }
        put.send().await.unwrap();
    }
}

/// The source keys the rounds hashed by streaming them.
fn hashed(rounds: &[stagehand::static_site::round::Round]) -> Vec<String> {
    rounds
        .iter()
        .flat_map(|r| &r.report.done)
        .filter_map(|a| match a {
            Action::HashSourceObjects { keys, .. } => Some(keys.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prefix_build_is_served_hashing_only_objects_without_a_checksum() {
    let world = World::start().await;
    upload_prefix(
        &world,
        "builds/1/dist/",
        &build_files("console.log(1)"),
        &["index.html"],
    )
    .await;
    let spec = |prefix: &str| site_spec(&json!({"source": {"bucket": BUILDS, "prefix": prefix}}));
    let mut site = Site::new("shop", &spec("builds/1/dist/"));
    world.aws.floor.reset_calls().await.unwrap();
    let rounds = world.converge(&mut site).await;
    let mut streamed = hashed(&rounds);
    streamed.sort();
    assert_eq!(
        streamed,
        [
            "about/index.html",
            "assets/app.css",
            "assets/app.js",
            "favicon.ico"
        ],
        "index.html has an S3 checksum: not streamed"
    );
    for (key, content) in build_files("console.log(1)") {
        let (_, content_type, _, body) = world.object(&key).await.unwrap();
        assert_eq!(body, content, "{key}");
        assert!(!content_type.is_empty(), "{key}");
    }
    let status = site.status.clone().unwrap();
    assert_eq!(status.last_sync.unwrap().uploaded, 5);
    let manifest = world.manifest(status.revision.as_deref().unwrap()).await;
    assert_eq!(manifest.source.key, "builds/1/dist/");

    // The next build under its own prefix: only the changed file is uploaded and invalidated.
    upload_prefix(
        &world,
        "builds/2/dist/",
        &build_files("console.log(2)"),
        &[],
    )
    .await;
    site.change(&spec("builds/2/dist/"));
    world.aws.floor.reset_calls().await.unwrap();
    let rounds = world.converge(&mut site).await;
    assert_eq!(
        world.content_puts().await,
        [format!("/{SITE_BUCKET}/assets/app.js")]
    );
    let invalidated: Vec<&String> = rounds
        .iter()
        .flat_map(|r| &r.report.done)
        .filter_map(|a| match a {
            Action::Invalidate { paths, .. } => Some(paths),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(invalidated, ["/assets/app.js"]);
    assert_eq!(
        world.object("assets/app.js").await.unwrap().3,
        b"console.log(2)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untagged_bucket_stalls_the_site_until_adopted_then_is_tagged_and_synced() {
    let world = World::start().await;
    world
        .publish(&crate::static_site_round::zip_of(
            &build_files("console.log(1)"),
            2024,
        ))
        .await;
    // What the old `aws s3 sync` script left: a bucket without tags, a file of an old build.
    let s3 = world.aws.s3();
    s3.create_bucket().bucket(SITE_BUCKET).send().await.unwrap();
    s3.put_object()
        .bucket(SITE_BUCKET)
        .key("old.html")
        .body(b"old".to_vec().into())
        .send()
        .await
        .unwrap();

    let mut site = Site::new("shop", &site_spec(&json!({})));
    world.aws.floor.reset_calls().await.unwrap();
    let round = world.round(&mut site).await;
    let stall = round.plan.stalled.clone().unwrap();
    assert_eq!(stall.reason, "AdoptionRequired");
    assert!(
        stall.message.contains("bucket shop-site") && stall.message.contains("spec.adopt"),
        "{}",
        stall.message
    );
    assert!(round.report.done.is_empty());
    let calls = world.aws.floor.calls().await.unwrap();
    let writes: Vec<&String> = calls
        .calls
        .iter()
        .filter(|(_, c)| {
            ["Put", "Create", "Delete", "Copy"]
                .iter()
                .any(|v| c.operation.starts_with(v))
        })
        .map(|(key, _)| key)
        .collect();
    assert!(writes.is_empty(), "{writes:?}");
    assert!(
        site.status
            .as_ref()
            .unwrap()
            .common
            .conditions
            .iter()
            .any(|c| {
                c.type_ == "Stalled" && c.status == "True" && c.reason == "AdoptionRequired"
            })
    );

    site.change(&site_spec(&json!({"adopt": true})));
    let rounds = world.converge(&mut site).await;
    assert!(
        rounds
            .iter()
            .flat_map(|r| &r.report.done)
            .any(|a| matches!(a, Action::AdoptBucket { .. }))
    );
    let tags = s3
        .get_bucket_tagging()
        .bucket(SITE_BUCKET)
        .send()
        .await
        .unwrap();
    let owner = tags
        .tag_set()
        .iter()
        .find(|t| t.key() == "stagehand.dev/owner")
        .map(|t| t.value().to_owned());
    assert_eq!(owner.as_deref(), Some("web/StaticSite/shop"));
    assert!(
        world.object("old.html").await.is_none(),
        "not in the revision"
    );
    assert_eq!(
        world.object("assets/app.js").await.unwrap().3,
        b"console.log(1)"
    );
}
