//! `stagehand plan -f` and `stagehand apply -f` on a StaticSite, as a CI pipeline runs them: the
//! real binary, no cluster, moto behind the counting proxy. A fresh site's plan lists every
//! upload and writes nothing; apply deploys it to Ready; a one-file change plans exactly that
//! upload and invalidation path; an invalid site is refused offline with the schema's message;
//! and `apply` killed (SIGKILL) in the middle of its uploads is resumed by a second `apply`
//! that uploads nothing twice and deletes no live file before the new revision is complete.

#![allow(
    clippy::unwrap_used,
    clippy::too_many_lines,
    reason = "a test module: a panic with its location is the failure report we want"
)]

use std::collections::BTreeSet;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use stagehand::aws::s3::Sha256Digest;
use stagehand_testenv::aws::{FaultAction, FaultRule};

use crate::cli_plan_apply::{manifest, stagehand, stagehand_command, writes};
use crate::static_site_round::{
    ARCHIVE, BUILDS, SITE_BUCKET, build_files, content_puts, site_spec, zip_of,
};
use crate::support::{Aws, TIMEOUT};

/// moto behind the proxy with the builds bucket.
async fn floor() -> Aws {
    let aws = Aws::start().await;
    aws.s3()
        .create_bucket()
        .bucket(BUILDS)
        .send()
        .await
        .unwrap();
    aws
}

/// Uploads a build archive as the CI would.
async fn publish(aws: &Aws, archive: Vec<u8>) {
    aws.s3()
        .put_object()
        .bucket(BUILDS)
        .key(ARCHIVE)
        .body(archive.into())
        .send()
        .await
        .unwrap();
}

/// A StaticSite document named `shop` (namespace `default`) with `extra` merged into the spec.
fn site_manifest(extra: &Value) -> String {
    manifest(&[json!({
        "apiVersion": "stagehand.dev/v1alpha1",
        "kind": "StaticSite",
        "metadata": {"name": "shop"},
        "spec": site_spec(extra),
    })])
}

/// The keys of a JSON list of objects (`content.uploads`, ...).
fn keys(list: &Value) -> Vec<&str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|o| o["key"].as_str().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_is_planned_without_a_write_applied_to_ready_and_one_change_plans_one_upload() {
    let aws = floor().await;
    publish(&aws, zip_of(&build_files("console.log(1)"), 2024)).await;
    let file = site_manifest(&json!({}));

    // (1) A fresh site: every file would be uploaded, the bucket and OAC created (the
    // distribution follows in the next round, once the OAC's id is known); nothing is written.
    aws.floor.reset_calls().await.unwrap();
    let (code, stdout, stderr) = stagehand(&aws, &["plan", "-f", &file]).await;
    eprintln!("stagehand plan:\n{stdout}");
    assert_eq!(code, 3, "changes pending\n{stdout}\n{stderr}");
    for expected in [
        "StaticSite default/shop (owner default/StaticSite/shop, region us-east-1)",
        "Bucket: shop-site (does not exist)",
        "(was serving nothing)",
        "Upload (5, 80 bytes):",
        "index.html  34 B  text/html; charset=utf-8  no-cache",
        "1. CreateBucket: create bucket shop-site",
        "2. CreateOriginAccessControl: create origin access control",
        "3. UploadObjects: upload 5 object(s), 80 bytes",
        "Result: ChangesPending",
    ] {
        assert!(stdout.contains(expected), "{expected:?} in\n{stdout}");
    }
    assert_eq!(
        writes(&aws).await,
        Vec::<String>::new(),
        "plan must not write"
    );
    let (code, stdout, _) = stagehand(&aws, &["plan", "-f", &file, "-o", "json"]).await;
    assert_eq!(code, 3);
    let plan: Value = serde_json::from_str(&stdout).unwrap();
    let site = &plan["sites"][0];
    assert_eq!(site["owner"], "default/StaticSite/shop");
    assert_eq!(
        site["bucket"],
        json!({"name": SITE_BUCKET, "exists": false})
    );
    assert_eq!(
        keys(&site["content"]["uploads"]),
        [
            "about/index.html",
            "assets/app.css",
            "assets/app.js",
            "favicon.ico",
            "index.html"
        ]
    );
    assert_eq!(plan["stages"], json!([]));
    assert_eq!(plan["fleets"], json!([]));
    assert_eq!(
        writes(&aws).await,
        Vec::<String>::new(),
        "plan must not write"
    );

    // (2) apply deploys it: every action printed, Ready, the files in the bucket.
    let (code, stdout, stderr) = stagehand(&aws, &["apply", "-f", &file]).await;
    eprintln!("stagehand apply:\n{stdout}");
    assert_eq!(code, 0, "apply must reach Ready\n{stdout}\n{stderr}");
    assert!(
        stdout.contains("→ UploadObjects: upload 5 object(s)"),
        "{stdout}"
    );
    assert!(stdout.contains("Uploaded (5, 80 bytes):"), "{stdout}");
    assert!(
        stdout.contains("Last sync: 5 uploaded (80 bytes)"),
        "{stdout}"
    );
    assert!(stdout.contains("Ready=True"), "{stdout}");
    assert!(stdout.contains("Result: Ready"), "{stdout}");
    assert_eq!(content_puts(&aws).await.len(), 5);
    let body = aws
        .s3()
        .get_object()
        .bucket(SITE_BUCKET)
        .key("assets/app.js")
        .send()
        .await
        .unwrap();
    assert_eq!(
        body.body.collect().await.unwrap().into_bytes().as_ref(),
        b"console.log(1)"
    );

    // (3) In sync: a second run finds the distribution and the revision again (no status is
    // kept between runs) and has nothing to do.
    let (code, stdout, stderr) = stagehand(&aws, &["plan", "-f", &file]).await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("No changes"), "{stdout}");
    let cloudfront = aws_sdk_cloudfront::Client::new(&aws.sdk);
    let distributions = cloudfront.list_distributions().send().await.unwrap();
    assert_eq!(
        distributions.distribution_list().unwrap().items().len(),
        1,
        "one distribution whatever the number of runs"
    );

    // (4) A new build with one changed file: exactly that upload and that path; no write.
    publish(&aws, zip_of(&build_files("console.log(2)"), 2025)).await;
    aws.floor.reset_calls().await.unwrap();
    let (code, stdout, stderr) = stagehand(&aws, &["plan", "-f", &file, "-o", "json"]).await;
    assert_eq!(code, 3, "{stdout}\n{stderr}");
    let plan: Value = serde_json::from_str(&stdout).unwrap();
    let site = &plan["sites"][0];
    let content = &site["content"];
    assert_eq!(keys(&content["uploads"]), ["assets/app.js"], "{site:#}");
    assert_eq!(content["invalidationPaths"], json!(["/assets/app.js"]));
    assert_eq!(content["deletes"], json!([]));
    assert_eq!(content["metadataUpdates"], json!([]));
    assert_eq!(
        writes(&aws).await,
        Vec::<String>::new(),
        "plan must not write"
    );

    // (5) apply uploads exactly that file.
    aws.floor.reset_calls().await.unwrap();
    let (code, stdout, stderr) = stagehand(&aws, &["apply", "-f", &file]).await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert_eq!(
        content_puts(&aws).await,
        [format!("/{SITE_BUCKET}/assets/app.js")]
    );
    let calls = aws.floor.calls().await.unwrap();
    assert_eq!(calls.count("cloudfront", "CreateInvalidation"), 1);
    assert!(
        stdout.contains("Invalidated (1):\n    /assets/app.js"),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_site_is_refused_offline_with_the_schemas_message() {
    let aws = floor().await;
    let file = site_manifest(&json!({"source": {"bucket": BUILDS, "archive": "shop/dist.rar"}}));
    aws.floor.reset_calls().await.unwrap();
    for command in ["plan", "apply"] {
        let (code, stdout, stderr) = stagehand(&aws, &[command, "-f", &file]).await;
        assert_eq!(code, 1, "{stdout}\n{stderr}");
        assert!(
            stderr.contains("document 1: The StaticSite \"shop\" is invalid: spec.source")
                && stderr.contains("source.archive must be a .zip, .tar.gz or .tgz file"),
            "{stderr}"
        );
    }
    assert_eq!(aws.floor.calls().await.unwrap().total, 0, "no AWS call");
}

/// A build of `n` hashed assets besides the small app: enough uploads to kill `apply` in the
/// middle of them.
fn big_build(n: usize, app_js: &str) -> Vec<(String, Vec<u8>)> {
    let mut files = build_files(app_js);
    files.extend((0..n).map(|i| {
        (
            format!("assets/chunk-{i:03}.js"),
            format!("export const n = {i};").into(),
        )
    }));
    files
}

/// Content `PutObject`s to the site bucket in the proxy's log: (sequence number, key, HTTP
/// status; 0 when the client was gone before the answer).
async fn content_uploads(aws: &Aws) -> Vec<(u64, String, u16)> {
    let prefix = format!("/{SITE_BUCKET}/");
    aws.floor
        .admin()
        .log()
        .await
        .unwrap()
        .into_iter()
        .filter(|c| c.service == "s3" && c.operation == "PutObject")
        .filter_map(|c| {
            let key = c.path.strip_prefix(&prefix)?;
            (!key.starts_with(".stagehand/")).then(|| (c.seq, key.to_owned(), c.status))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_killed_mid_upload_resumes_without_uploading_twice_or_deleting_a_live_file() {
    let aws = floor().await;
    publish(&aws, zip_of(&build_files("console.log(1)"), 2024)).await;
    let scratch = tempfile::tempdir().unwrap();
    let file = site_manifest(&json!({}));
    let (code, stdout, stderr) = stagehand(&aws, &["apply", "-f", &file]).await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");

    // Build 2: 200 new assets, app.js changed, favicon.ico removed. Uploads are slowed (80 ms
    // each, 16 at a time) so that `apply` is surely killed in the middle of them.
    let mut build = big_build(200, "console.log(2)");
    build.retain(|(key, _)| key != "favicon.ico");
    publish(&aws, zip_of(&build, 2025)).await;
    aws.floor.reset_calls().await.unwrap();
    aws.floor
        .add_fault(
            &FaultRule::new(FaultAction::latency(Duration::from_millis(80)))
                .service("s3")
                .operation("PutObject")
                .resource(&format!("/{SITE_BUCKET}/assets/")),
        )
        .await
        .unwrap();
    let mut child = stagehand_command(&aws, &["apply", "-f", &file])
        .env("TMPDIR", scratch.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while content_uploads(&aws).await.len() < 40 {
        assert!(tokio::time::Instant::now() < deadline, "no uploads seen");
        assert!(child.try_wait().unwrap().is_none(), "apply ended early");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let first_run = content_uploads(&aws).await;
    let landed: BTreeSet<String> = first_run
        .iter()
        .filter(|(_, _, status)| *status == 200)
        .map(|(_, key, _)| key.clone())
        .collect();
    let killed_at = first_run.iter().map(|(seq, ..)| *seq).max().unwrap();
    assert!(
        landed.len() >= 30 && landed.len() < 201,
        "killed in the middle: {} uploads",
        landed.len()
    );
    let calls = aws.floor.calls().await.unwrap();
    assert_eq!(
        calls.count("s3", "DeleteObjects") + calls.count("s3", "DeleteObject"),
        0,
        "nothing deleted before the revision is complete"
    );
    let served = aws
        .s3()
        .get_object()
        .bucket(SITE_BUCKET)
        .key("favicon.ico")
        .send()
        .await;
    assert!(served.is_ok(), "the live site still has favicon.ico");

    // A fresh process resumes from what is live: nothing that landed is uploaded again (what
    // was in flight at the kill may have landed too: S3 has it or not, observe looks).
    aws.floor.clear_faults().await.unwrap();
    let (code, stdout, stderr) = stagehand(&aws, &["apply", "-f", &file]).await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let second_run: Vec<String> = content_uploads(&aws)
        .await
        .into_iter()
        .filter(|(seq, ..)| *seq > killed_at)
        .map(|(_, key, _)| key)
        .collect();
    let again: Vec<&String> = second_run.iter().filter(|k| landed.contains(*k)).collect();
    assert!(again.is_empty(), "uploaded again: {again:?}");
    let unique: BTreeSet<&String> = second_run.iter().collect();
    assert_eq!(unique.len(), second_run.len(), "{second_run:?}");
    // Only new and changed files were sent (an upload cut by the kill may be missing from the
    // proxy's log, and yet have landed: the second run found it there).
    let attempted: BTreeSet<String> = first_run
        .into_iter()
        .map(|(_, key, _)| key)
        .chain(second_run.iter().cloned())
        .collect();
    let wanted: BTreeSet<String> = build
        .iter()
        .map(|(key, _)| key.clone())
        .filter(|key| key.starts_with("assets/chunk-") || key == "assets/app.js")
        .collect();
    assert!(attempted.is_subset(&wanted), "{attempted:?}");
    // Every file of build 2 is live with its content (S3's SHA-256 of the current object).
    for (key, content) in &build {
        let head = aws
            .s3()
            .head_object()
            .bucket(SITE_BUCKET)
            .key(key)
            .checksum_mode(aws_sdk_s3::types::ChecksumMode::Enabled)
            .send()
            .await
            .unwrap();
        assert_eq!(
            head.checksum_sha256(),
            Some(Sha256Digest::of(content).to_base64().as_str()),
            "{key}"
        );
    }
    println!(
        "killed after {} uploads landed; the second run uploaded {}",
        landed.len(),
        second_run.len()
    );

    // Every deletion (the removed file, then old versions of the records) came after the new
    // revision's manifest.
    let log = aws.floor.admin().log().await.unwrap();
    let manifest_written = log
        .iter()
        .filter(|c| c.operation == "PutObject" && c.path.contains(".stagehand/revisions/"))
        .map(|c| c.seq)
        .min()
        .unwrap();
    let deleted = log
        .iter()
        .filter(|c| c.operation == "DeleteObjects")
        .map(|c| c.seq)
        .collect::<Vec<_>>();
    assert!(!deleted.is_empty());
    assert!(
        deleted.iter().all(|seq| *seq > manifest_written),
        "{deleted:?}"
    );
    let listed = aws
        .s3()
        .list_objects_v2()
        .bucket(SITE_BUCKET)
        .send()
        .await
        .unwrap();
    let live: BTreeSet<&str> = listed
        .contents()
        .iter()
        .filter_map(|o| o.key())
        .filter(|k| !k.starts_with(".stagehand/"))
        .collect();
    let expected: BTreeSet<&str> = build.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(live, expected);
}
