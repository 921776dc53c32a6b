//! StaticSite rounds (`stagehand::static_site::round::round`, exactly what the reconciler runs)
//! against moto through the counting proxy, without Kubernetes: a first deploy of an archive
//! (objects, content types, cache control, a private bucket behind the distribution's OAC); one
//! changed file is one content upload and one invalidation path; a rebuild with new timestamps
//! uploads nothing; a new cache rule copies in place; a rollback restores every key's
//! manifest version; hand edits and deletions are restored; hostile and oversized archives are
//! refused with the site untouched; a second site cannot take the first one's bucket; pruning
//! never deletes a referenced version; deletion empties and removes what the site created.
//! moto's gaps (docs/testing.md, "S3 and CloudFront in moto"): checksums are stored unverified,
//! invalidations complete at once, and the proxy restores the OAC id moto drops.

#![allow(
    clippy::unwrap_used,
    clippy::too_many_lines,
    reason = "a test module: a panic with its location is the failure report we want"
)]

use std::collections::BTreeMap;
use std::io::{Cursor, Write};
use std::time::Duration;

use jiff::Timestamp;
use serde_json::{Value, json};
use stagehand::aws::AwsProvider;
use stagehand::base::ActGate;
use stagehand::inventory::Inventory;
use stagehand::runtime::Metrics;
use stagehand::static_site::build::ArchiveLimits;
use stagehand::static_site::cache::SiteCache;
use stagehand::static_site::manifest::{Manifest, manifest_key};
use stagehand::static_site::plan::{Action, TeardownScope};
use stagehand::static_site::round::{Round, RoundOptions, round, teardown_round};
use stagehand_crds::{StaticSite, StaticSiteStatus};
use stagehand_testenv::aws::zip::deterministic_zip;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

use crate::support::{Aws, REGION};

/// Where builds are uploaded, and the site's own bucket.
pub const BUILDS: &str = "site-builds";
pub const ARCHIVE: &str = "shop/build.zip";
pub const SITE_BUCKET: &str = "shop-site";

/// A small React-like build: `(key, content)`.
pub fn build_files(app_js: &str) -> Vec<(String, Vec<u8>)> {
    vec![
        (
            "index.html".into(),
            b"<!doctype html><div id=root></div>".to_vec(),
        ),
        ("about/index.html".into(), b"<h1>About</h1>".to_vec()),
        ("assets/app.js".into(), app_js.as_bytes().to_vec()),
        ("assets/app.css".into(), b"body{margin:0}".to_vec()),
        ("favicon.ico".into(), vec![0, 0, 1, 0]),
    ]
}

/// A zip of `files` stamped with `year` (deflated, as `zip -r` writes).
pub fn zip_of(files: &[(String, Vec<u8>)], year: u16) -> Vec<u8> {
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .last_modified_time(DateTime::from_date_and_time(year, 1, 2, 3, 4, 5).unwrap());
    let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
    for (name, content) in files {
        writer.start_file(name.as_str(), options).unwrap();
        writer.write_all(content).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

/// The site's spec with `extra` merged in.
pub fn site_spec(extra: &Value) -> Value {
    let mut spec = json!({
        "region": REGION,
        "bucket": {"name": SITE_BUCKET, "create": true},
        "source": {"bucket": BUILDS, "archive": ARCHIVE},
        "distribution": {"create": true, "spaFallback": true},
        "cacheControl": [
            {"pattern": "assets/**", "value": "public, max-age=31536000, immutable"},
            {"pattern": "*.html", "value": "no-cache"},
        ],
        "keepRevisions": 3,
    });
    if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
        for (key, value) in extra {
            spec.insert(key.clone(), value.clone());
        }
    }
    spec
}

/// A site object and the status its last round wrote.
pub struct Site {
    pub object: StaticSite,
    pub status: Option<StaticSiteStatus>,
}

impl Site {
    pub fn new(name: &str, spec: &Value) -> Self {
        let mut object: StaticSite = serde_json::from_value(json!({
            "apiVersion": "stagehand.dev/v1alpha1",
            "kind": "StaticSite",
            "metadata": {"name": name, "namespace": "web", "uid": format!("uid-{name}")},
            "spec": spec.clone(),
        }))
        .unwrap();
        object.metadata.generation = Some(1);
        Self {
            object,
            status: None,
        }
    }

    /// A new spec: the next generation.
    pub fn change(&mut self, spec: &Value) {
        self.object.spec = serde_json::from_value(spec.clone()).unwrap();
        let generation = self.object.metadata.generation.unwrap_or(1);
        self.object.metadata.generation = Some(generation + 1);
    }
}

/// moto behind the proxy, and what rounds share.
pub struct World {
    pub aws: Aws,
    pub inventory: Inventory,
    pub cache: SiteCache,
    pub scratch: tempfile::TempDir,
    pub limits: ArchiveLimits,
}

impl World {
    pub async fn start() -> Self {
        let aws = Aws::start().await;
        let s3 = aws.s3();
        s3.create_bucket().bucket(BUILDS).send().await.unwrap();
        let provider = AwsProvider::new(
            aws.sdk.clone(),
            Metrics::new().unwrap().aws,
            stagehand::aws::AwsSettings::default(),
        );
        Self {
            aws,
            inventory: Inventory::new(provider, Duration::from_secs(600))
                .with_fresh_floor(Duration::ZERO),
            cache: SiteCache::new(),
            scratch: tempfile::tempdir().unwrap(),
            limits: ArchiveLimits::default(),
        }
    }

    /// Uploads a build archive as the CI would.
    pub async fn publish(&self, archive: &[u8]) {
        self.aws
            .s3()
            .put_object()
            .bucket(BUILDS)
            .key(ARCHIVE)
            .body(archive.to_vec().into())
            .send()
            .await
            .unwrap();
    }

    fn options(&self) -> RoundOptions<'_> {
        RoundOptions {
            cluster_id: "test",
            gate: ActGate::Act,
            refresh: false,
            now: Timestamp::now(),
            dry_run: false,
            cache: &self.cache,
            scratch: self.scratch.path(),
            limits: self.limits,
        }
    }

    /// One reconcile: observe, plan, act, status.
    pub async fn round(&self, site: &mut Site) -> Round {
        let round = round(
            &self.inventory,
            &site.object,
            site.status.as_ref(),
            self.options(),
            |_| {},
        )
        .await
        .unwrap();
        site.status = Some(round.status.clone());
        round
    }

    /// Rounds until one has nothing to do and waits on nothing; every round.
    pub async fn converge(&self, site: &mut Site) -> Vec<Round> {
        let mut rounds = Vec::new();
        for _ in 0..8 {
            let round = self.round(site).await;
            assert!(round.plan.stalled.is_none(), "{:?}", round.plan.stalled);
            assert!(round.report.failure.is_none(), "{:?}", round.report.failure);
            let done = round.plan.actions.is_empty() && round.plan.waits.is_empty();
            rounds.push(round);
            if done {
                return rounds;
            }
        }
        panic!(
            "no convergence in 8 rounds: {:#?}",
            rounds.last().map(|r| &r.plan)
        );
    }

    /// The current object of `key`: (version id, content type, cache control, body).
    pub async fn object(&self, key: &str) -> Option<(String, String, String, Vec<u8>)> {
        let got = self
            .aws
            .s3()
            .get_object()
            .bucket(SITE_BUCKET)
            .key(key)
            .send()
            .await
            .ok()?;
        Some((
            got.version_id().unwrap_or_default().to_owned(),
            got.content_type().unwrap_or_default().to_owned(),
            got.cache_control().unwrap_or_default().to_owned(),
            got.body.collect().await.unwrap().into_bytes().to_vec(),
        ))
    }

    /// The stored manifest of `revision`.
    pub async fn manifest(&self, revision: &str) -> Manifest {
        let key = manifest_key(revision);
        let got = self
            .aws
            .s3()
            .get_object()
            .bucket(SITE_BUCKET)
            .key(&key)
            .send()
            .await
            .unwrap();
        Manifest::parse(&key, &got.body.collect().await.unwrap().into_bytes()).unwrap()
    }

    /// Content `PutObject`s since the last reset (records under `.stagehand/` left out).
    pub async fn content_puts(&self) -> Vec<String> {
        content_puts(&self.aws).await
    }
}

/// Content `PutObject`s to the site bucket since the proxy's last reset (records under
/// `.stagehand/` left out), as paths (`/shop-site/assets/app.js`).
pub async fn content_puts(aws: &Aws) -> Vec<String> {
    aws.floor
        .admin()
        .log()
        .await
        .unwrap()
        .into_iter()
        .filter(|c| c.service == "s3" && c.operation == "PutObject")
        .filter(|c| c.path.starts_with(&format!("/{SITE_BUCKET}/")))
        .filter(|c| !c.path.contains(".stagehand"))
        .map(|c| c.path)
        .collect()
}

/// The paths of every invalidation the rounds created.
fn invalidated(rounds: &[Round]) -> Vec<String> {
    rounds
        .iter()
        .flat_map(|r| &r.report.done)
        .filter_map(|a| match a {
            Action::Invalidate { paths, .. } => Some(paths.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

/// Every action kind the rounds ran, counted.
fn kinds(rounds: &[Round]) -> BTreeMap<&'static str, usize> {
    let mut counts = BTreeMap::new();
    for action in rounds.iter().flat_map(|r| &r.report.done) {
        *counts.entry(action.facts().kind).or_default() += 1;
    }
    counts
}

fn ready(site: &Site) -> bool {
    site.status.as_ref().is_some_and(|s| {
        s.common
            .conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
    })
}

/// Deploys the first build and returns the world and the converged site.
async fn deployed() -> (World, Site) {
    let world = World::start().await;
    world
        .publish(&zip_of(&build_files("console.log(1)"), 2024))
        .await;
    let mut site = Site::new("shop", &site_spec(&json!({})));
    world.converge(&mut site).await;
    (world, site)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_deploy_serves_the_archive_privately_with_its_metadata_and_is_ready() {
    let world = World::start().await;
    world
        .publish(&zip_of(&build_files("console.log(1)"), 2024))
        .await;
    let mut site = Site::new("shop", &site_spec(&json!({})));
    let rounds = world.converge(&mut site).await;
    assert!(ready(&site), "{:#?}", site.status);

    for (key, content_type, cache_control) in [
        ("index.html", "text/html; charset=utf-8", "no-cache"),
        ("about/index.html", "text/html; charset=utf-8", ""),
        (
            "assets/app.css",
            "text/css; charset=utf-8",
            "public, max-age=31536000, immutable",
        ),
        ("favicon.ico", "image/x-icon", ""),
    ] {
        let (_, got_type, got_cache, _) = world.object(key).await.unwrap();
        assert_eq!(
            (got_type.as_str(), got_cache.as_str()),
            (content_type, cache_control),
            "{key}"
        );
    }
    let (_, js_type, _, body) = world.object("assets/app.js").await.unwrap();
    assert!(js_type.contains("javascript"), "{js_type}");
    assert_eq!(body, b"console.log(1)");

    // Private: Block Public Access on, and the policy names only the distribution.
    let s3 = world.aws.s3();
    let block = s3
        .get_public_access_block()
        .bucket(SITE_BUCKET)
        .send()
        .await
        .unwrap();
    let block = block.public_access_block_configuration().unwrap();
    assert_eq!(block.block_public_policy(), Some(true));
    let policy = s3
        .get_bucket_policy()
        .bucket(SITE_BUCKET)
        .send()
        .await
        .unwrap();
    let policy: Value = serde_json::from_str(policy.policy().unwrap()).unwrap();
    let status = site.status.clone().unwrap();
    let distribution = status.distribution.clone().unwrap();
    let statement = &policy["Statement"][0];
    assert_eq!(
        statement["Principal"]["Service"],
        "cloudfront.amazonaws.com"
    );
    assert!(
        statement["Condition"]["StringEquals"]["AWS:SourceArn"]
            .as_str()
            .unwrap()
            .ends_with(&distribution.id)
    );

    // Status: the served revision, kept with its counts, the last sync.
    let revision = status.revision.clone().unwrap();
    assert!(revision.starts_with("sha-"), "{revision}");
    assert_eq!(status.revisions.len(), 1);
    assert_eq!(status.revisions[0].objects, 5);
    assert_eq!(status.last_sync.as_ref().unwrap().uploaded, 5);
    assert!(distribution.created_by_stagehand);
    // A distribution created in the same round has nothing cached: no invalidation.
    assert!(invalidated(&rounds).is_empty() || invalidated(&rounds) == ["/*"]);

    // A converged resync: no write, a handful of calls, none per object.
    world.aws.floor.reset_calls().await.unwrap();
    let resync = world.round(&mut site).await;
    assert!(resync.plan.actions.is_empty(), "{:?}", resync.plan.actions);
    let calls = world.aws.floor.calls().await.unwrap();
    assert_eq!(
        calls.count("s3", "HeadObject"),
        1,
        "the archive only: {calls:?}"
    );
    assert_eq!(calls.count("s3", "ListObjectVersions"), 1, "{calls:?}");
    assert!(calls.total <= 16, "{} calls: {calls:?}", calls.total);
    // The round reads the cached manifest in place: a manifest of 50,000 keys is ≈ 10 MB.
    let stored = &resync.observed.manifests[0];
    let cached = world
        .cache
        .manifest(
            SITE_BUCKET,
            &manifest_key(&stored.manifest.revision),
            &stored.version_id,
        )
        .unwrap();
    assert!(std::sync::Arc::ptr_eq(&stored.manifest, &cached));
    println!(
        "no-change resync: {} calls {:?}",
        calls.total,
        crate::support::summary(&calls)
    );
}

/// A site finds its OAC in the account's listing, which one read serves to every site of the
/// region for the max age; its rounds do not list them again. Per round, 500 sites cost 2,500
/// `ListOriginAccessControls` per resync against CloudFront's 5 calls/s (docs/benchmarks.md,
/// "10,000 objects").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_converged_sites_rounds_reuse_the_access_control_listing() {
    let (world, mut site) = deployed().await;
    world.aws.floor.reset_calls().await.unwrap();
    for _ in 0..2 {
        let round = world.round(&mut site).await;
        assert!(round.plan.actions.is_empty(), "{:#?}", round.plan);
    }
    let calls = world.aws.floor.calls().await.unwrap();
    assert_eq!(calls.count("cloudfront", "ListOriginAccessControls"), 0);
    assert_eq!(
        calls.count("cloudfront", "GetDistribution"),
        2,
        "each round read its own distribution"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_changed_file_is_one_upload_and_one_invalidation_path_and_a_rebuild_uploads_nothing() {
    let (world, mut site) = deployed().await;
    let first = site.status.clone().unwrap().revision.unwrap();

    world
        .publish(&zip_of(&build_files("console.log(2)"), 2024))
        .await;
    world.aws.floor.reset_calls().await.unwrap();
    let rounds = world.converge(&mut site).await;
    assert_eq!(
        world.content_puts().await,
        [format!("/{SITE_BUCKET}/assets/app.js")]
    );
    assert_eq!(invalidated(&rounds), ["/assets/app.js"]);
    let calls = world.aws.floor.calls().await.unwrap();
    assert_eq!(calls.count("cloudfront", "CreateInvalidation"), 1);
    let status = site.status.clone().unwrap();
    assert_ne!(status.revision.as_deref(), Some(first.as_str()));
    assert_eq!(status.last_sync.unwrap().uploaded, 1);
    assert_eq!(
        world.object("assets/app.js").await.unwrap().3,
        b"console.log(2)"
    );

    // The same files rebuilt later (new timestamps, new archive bytes): nothing uploaded.
    let served = status.revision.clone();
    world
        .publish(&zip_of(&build_files("console.log(2)"), 2026))
        .await;
    world.aws.floor.reset_calls().await.unwrap();
    let rounds = world.converge(&mut site).await;
    assert!(world.content_puts().await.is_empty());
    assert!(invalidated(&rounds).is_empty());
    assert_eq!(site.status.clone().unwrap().revision, served);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_cache_rule_copies_in_place_and_uploads_nothing() {
    let (world, mut site) = deployed().await;
    world.aws.floor.reset_calls().await.unwrap();
    site.change(&site_spec(&json!({"cacheControl": [
        {"pattern": "assets/**", "value": "public, max-age=600"},
        {"pattern": "*.html", "value": "no-cache"},
    ]})));
    let rounds = world.converge(&mut site).await;
    assert!(world.content_puts().await.is_empty());
    let calls = world.aws.floor.calls().await.unwrap();
    assert_eq!(calls.count("s3", "CopyObject"), 2, "{calls:?}");
    assert_eq!(kinds(&rounds).get("UpdateMetadata"), Some(&1));
    let (_, _, cache, _) = world.object("assets/app.js").await.unwrap();
    assert_eq!(cache, "public, max-age=600");
    assert_eq!(
        site.status
            .clone()
            .unwrap()
            .last_sync
            .unwrap()
            .metadata_updated,
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_restores_every_key_of_the_manifest_and_hand_edits_are_repaired() {
    let (world, mut site) = deployed().await;
    let first = site.status.clone().unwrap().revision.unwrap();
    let mut second_files = build_files("console.log(2)");
    second_files.push(("new.txt".into(), b"only in the second".to_vec()));
    world.publish(&zip_of(&second_files, 2024)).await;
    world.converge(&mut site).await;
    let second = site.status.clone().unwrap().revision.unwrap();

    site.change(&site_spec(&json!({"rollbackTo": first})));
    world.aws.floor.reset_calls().await.unwrap();
    let rounds = world.converge(&mut site).await;
    assert!(
        world.content_puts().await.is_empty(),
        "a rollback copies, never uploads"
    );
    let status = site.status.clone().unwrap();
    assert_eq!(status.revision.as_deref(), Some(first.as_str()));
    assert_eq!(status.rolled_back_from.as_deref(), Some(second.as_str()));
    assert!(
        invalidated(&rounds).contains(&"/new.txt".to_owned()),
        "{:?}",
        invalidated(&rounds)
    );
    let manifest = world.manifest(&first).await;
    for (key, object) in &manifest.objects {
        let (version, ..) = world.object(key).await.unwrap();
        assert_eq!(version, object.version_id, "{key}");
    }
    assert!(
        world.object("new.txt").await.is_none(),
        "not in the first revision"
    );

    // A live object overwritten and another deleted by hand: restored from the revision.
    let s3 = world.aws.s3();
    s3.put_object()
        .bucket(SITE_BUCKET)
        .key("index.html")
        .body(b"defaced".to_vec().into())
        .send()
        .await
        .unwrap();
    s3.delete_object()
        .bucket(SITE_BUCKET)
        .key("assets/app.css")
        .send()
        .await
        .unwrap();
    world.aws.floor.reset_calls().await.unwrap();
    world.converge(&mut site).await;
    assert!(world.content_puts().await.is_empty(), "restored by copies");
    assert_eq!(
        world.object("index.html").await.unwrap().3,
        b"<!doctype html><div id=root></div>"
    );
    assert_eq!(
        world.object("assets/app.css").await.unwrap().3,
        b"body{margin:0}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_and_oversized_archives_are_refused_and_the_site_is_untouched() {
    let (mut world, mut site) = deployed().await;
    let served = site.status.clone().unwrap().revision;
    let before = world.object("index.html").await.unwrap();
    let symlink = {
        let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
        let options = SimpleFileOptions::default();
        writer.start_file("index.html", options).unwrap();
        writer.write_all(b"<html>evil</html>").unwrap();
        writer
            .add_symlink("secrets.txt", "/etc/shadow", options)
            .unwrap();
        writer.finish().unwrap().into_inner()
    };
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "zip slip",
            deterministic_zip(&[("../../etc/passwd", b"root")]),
            "UnsafeEntryName",
        ),
        ("symlink", symlink, "SymlinkEntry"),
        (
            "oversized",
            deterministic_zip(&[("big.bin", &[7_u8; 4096])]),
            "ArchiveTooLarge",
        ),
    ];
    world.limits = ArchiveLimits {
        max_entries: 100,
        max_total_bytes: 2048,
    };
    for (what, archive, reason) in cases {
        world.publish(&archive).await;
        world.aws.floor.reset_calls().await.unwrap();
        let round = world.round(&mut site).await;
        let stall = round
            .plan
            .stalled
            .clone()
            .unwrap_or_else(|| panic!("{what} not refused"));
        assert_eq!(stall.reason, reason, "{what}: {}", stall.message);
        assert!(
            stall.message.contains("refused"),
            "{what}: {}",
            stall.message
        );
        assert!(round.report.done.is_empty(), "{what}");
        let status = site.status.clone().unwrap();
        assert!(
            status
                .common
                .conditions
                .iter()
                .any(|c| c.type_ == "Stalled" && c.status == "True" && c.reason == reason),
            "{what}: {:?}",
            status.common.conditions
        );
        assert_eq!(status.revision, served, "{what}");
        let calls = world.aws.floor.calls().await.unwrap();
        let writes: u64 = ["PutObject", "CopyObject", "DeleteObjects", "DeleteObject"]
            .iter()
            .map(|op| calls.count("s3", op))
            .sum();
        assert_eq!(writes, 0, "{what}: {calls:?}");
    }
    assert_eq!(world.object("index.html").await.unwrap(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_site_cannot_take_over_the_first_ones_bucket() {
    let (world, site) = deployed().await;
    let mut intruder = Site::new("intruder", &site_spec(&json!({})));
    world.aws.floor.reset_calls().await.unwrap();
    let round = world.round(&mut intruder).await;
    let stall = round.plan.stalled.clone().unwrap();
    assert_eq!(stall.reason, "OwnershipConflict", "{}", stall.message);
    assert!(
        stall.message.contains("web/StaticSite/shop"),
        "{}",
        stall.message
    );
    assert!(round.report.done.is_empty());
    let calls = world.aws.floor.calls().await.unwrap();
    assert_eq!(
        calls.count("s3", "PutObject") + calls.count("s3", "PutBucketPolicy"),
        0
    );
    assert!(site.status.unwrap().revision.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pruning_keeps_every_version_a_kept_manifest_references() {
    let (world, mut site) = deployed().await;
    site.change(&site_spec(&json!({"keepRevisions": 1})));
    // Three more builds: each changes app.js.
    for n in 2..=4 {
        world
            .publish(&zip_of(&build_files(&format!("console.log({n})")), 2024))
            .await;
        world.converge(&mut site).await;
    }
    let status = site.status.clone().unwrap();
    let served = status.revision.clone().unwrap();
    assert_eq!(status.revisions.len(), 1, "{:?}", status.revisions);
    assert_eq!(
        world.cache.manifest_count(),
        1,
        "pruned revisions' manifests are not kept in memory either"
    );
    let manifest = world.manifest(&served).await;
    let versions = world
        .aws
        .s3()
        .list_object_versions()
        .bucket(SITE_BUCKET)
        .send()
        .await
        .unwrap();
    let app_versions: Vec<String> = versions
        .versions()
        .iter()
        .filter(|v| v.key() == Some("assets/app.js"))
        .filter_map(|v| v.version_id().map(str::to_owned))
        .collect();
    assert_eq!(
        app_versions,
        [manifest.objects["assets/app.js"].version_id.clone()]
    );
    for (key, object) in &manifest.objects {
        let (version, ..) = world.object(key).await.unwrap();
        assert_eq!(version, object.version_id, "{key} still served");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletion_disables_and_deletes_the_distribution_and_empties_and_deletes_the_bucket() {
    let (world, site) = deployed().await;
    let distribution = site.status.clone().unwrap().distribution.unwrap().id;
    let mut object = site.object.clone();
    object.status = site.status.clone();
    let scope = TeardownScope {
        bucket: true,
        distribution: true,
    };
    let mut done = false;
    for _ in 0..8 {
        let (plan, report) =
            teardown_round(&world.inventory, &object, scope, world.options(), |_| {})
                .await
                .unwrap();
        assert!(report.failure.is_none(), "{:?}", report.failure);
        if plan.actions.is_empty() && plan.waits.is_empty() {
            done = true;
            break;
        }
    }
    assert!(done, "teardown never finished");
    let s3 = world.aws.s3();
    assert!(s3.head_bucket().bucket(SITE_BUCKET).send().await.is_err());
    let cloudfront = aws_sdk_cloudfront::Client::new(&world.aws.sdk);
    assert!(
        cloudfront
            .get_distribution()
            .id(&distribution)
            .send()
            .await
            .is_err()
    );
    assert!(
        s3.head_bucket().bucket(BUILDS).send().await.is_ok(),
        "the source stays"
    );
}
