//! StaticSite benchmark: a generated 5,000-file site (hashed assets of varied sizes, HTML pages,
//! a few large media files), deployed from a zip archive in moto by the reconciler's own round
//! (`static_site::round::round`, without Kubernetes), side by side with the team's script —
//! `aws s3 sync --delete` of the same build unpacked to disk with fresh timestamps (as a CI
//! job produces it), then an invalidation of `/*` — on a second bucket of the same moto.
//!
//! Phases: (a) first deploy; (b) a resync with no change; (c) the same build rebuilt (new
//! timestamps, identical content); (d) one file changed; (e) a rebuild that changes 50 hashed
//! assets (new names, the old ones removed) and `index.html`; (f) a rollback to (d)'s
//! revision (the script deploys (d)'s build again). For each: AWS calls by operation (counted
//! by the proxy), uploads, copies, deletes, bytes uploaded, invalidation paths, wall time.
//!
//! Then memory: for each size (default 5,000 objects) a child process of this binary
//! (`bench_site memory N URL`) deploys the site through the parent's proxy (the proxy runs in
//! the parent and buffers whole bodies, so it is not counted) and reports the peak RSS
//! (`VmHWM`, reset through `/proc/self/clear_refs` before each phase) of a first deploy, a
//! no-change resync and a one-file change; then (`memory-parts`, default 5,000 and 50,000) the
//! archive check alone and observe + plan as a dry run.
//!
//! Not a test and not timed by CI: `make bench` (or `cargo run -p stagehand --example
//! bench_site [-- N...]`). Results go to stdout as Markdown tables (docs/benchmarks.md).

#![allow(
    clippy::unwrap_used,
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::large_futures,
    reason = "a benchmark binary: a panic with its location is the report we want, sizes are \
              small and positive, and its futures (the round's, ≈ 25 KB) are awaited once"
)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use jiff::Timestamp;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use stagehand::aws::AwsProvider;
use stagehand::base::ActGate;
use stagehand::inventory::Inventory;
use stagehand::static_site::build::{ArchiveFormat, ArchiveLimits, Discard, read_archive};
use stagehand::static_site::cache::SiteCache;
use stagehand::static_site::metadata::MetadataRules;
use stagehand::static_site::plan::{Action, PlanContext, plan};
use stagehand::static_site::round::{Round, RoundOptions, round};
use stagehand_crds::{StaticSite, StaticSiteStatus};
use stagehand_testenv::aws::moto::aws_cli_bin;
use stagehand_testenv::aws::{AwsFloor, CallsReport, REGION};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

mod bench_support;

const BUILDS: &str = "bench-builds";
const ARCHIVE: &str = "shop/build.zip";
const SITE_BUCKET: &str = "bench-site";
/// The script's bucket (unversioned, as the team's is).
const SYNC_BUCKET: &str = "bench-sync";
/// The controller's default `--inventory-max-age`.
const INVENTORY_MAX_AGE: Duration = Duration::from_secs(30);
const MAX_ROUNDS: usize = 10;

// ---------------------------------------------------------------------------------------------
// The generated site.

/// One build of the site: which content each changeable file has, and when it was built.
#[derive(Clone, Copy, Debug)]
struct Build {
    /// `data/prices.json`'s content version: the "one file changed".
    prices: u32,
    /// How many hashed assets (spread over every kind) carry new content, hence new names.
    changed_assets: usize,
    /// `index.html`'s content version.
    index: u32,
    /// Days after 2026-01-01 stamped on every archive entry: a rebuild stamps anew.
    day: u8,
}

const FIRST: Build = Build {
    prices: 0,
    changed_assets: 0,
    index: 0,
    day: 1,
};

/// A deterministic site of `files` files: 6 fixed files, 3 large media files, one HTML page
/// per ten files, the rest content-hashed assets (`name-<8 hex of sha256>.ext`: a changed
/// asset is a new key). Asset sizes are log-uniform between 200 B and `max_asset`.
#[derive(Clone, Copy, Debug)]
struct Site {
    files: usize,
    max_asset: u64,
}

/// How an asset kind is stored in the archive and what its bytes look like.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Body {
    /// Words: compresses like JS, CSS and HTML do.
    Text,
    /// Random bytes: images, fonts and media are compressed already.
    Binary,
}

/// Hashed asset kinds, by asset ordinal modulo 10.
const ASSET_KINDS: [(&str, &str, Body); 10] = [
    ("assets/js", "js", Body::Text),
    ("assets/js", "js", Body::Text),
    ("assets/js", "js", Body::Text),
    ("assets/js", "js", Body::Text),
    ("assets/css", "css", Body::Text),
    ("assets/img", "webp", Body::Binary),
    ("assets/img", "webp", Body::Binary),
    ("assets/img", "svg", Body::Text),
    ("assets/data", "json", Body::Text),
    ("assets/img", "png", Body::Binary),
];

impl Site {
    /// 5,000-file sites have assets up to 48 KiB (≈ 65 MB in all); larger ones stay within
    /// what moto can hold in memory on a shared machine (up to 8 KiB).
    fn new(files: usize) -> Self {
        let max_asset = if files <= 10_000 { 48 << 10 } else { 8 << 10 };
        Self { files, max_asset }
    }

    fn pages(&self) -> usize {
        self.files / 10
    }

    fn assets(&self) -> usize {
        self.files - 9 - self.pages()
    }

    /// Calls `file(key, content, body)` for every file of `build`, one at a time (memory holds
    /// one file, never the site).
    fn for_each(&self, build: Build, mut file: impl FnMut(&str, &[u8], Body)) {
        let fixed: [(&str, u64, u32, Body); 6] = [
            ("index.html", 3_000, build.index, Body::Text),
            ("404.html", 1_500, 0, Body::Text),
            ("robots.txt", 60, 0, Body::Text),
            ("favicon.ico", 5_000, 0, Body::Binary),
            ("manifest.webmanifest", 400, 0, Body::Text),
            ("data/prices.json", 20_000, build.prices, Body::Text),
        ];
        for (ordinal, (key, size, version, body)) in fixed.into_iter().enumerate() {
            file(key, &content(seed(ordinal, version), size, body), body);
        }
        let large: [(&str, &str, u64); 3] = [
            ("media/intro", "mp4", 12 << 20),
            ("media/hero", "webp", 3 << 20),
            ("downloads/catalogue", "pdf", 6 << 20),
        ];
        for (i, (stem, ext, size)) in large.into_iter().enumerate() {
            let bytes = content(seed(100 + i, 0), size, Body::Binary);
            file(&hashed(stem, ext, &bytes), &bytes, Body::Binary);
        }
        for page in 0..self.pages() {
            let ordinal = 1_000 + page;
            let size = log_uniform(ordinal, 1_000, 24_000);
            let key = format!("docs/s{:03}/p{:02}/index.html", page / 20, page % 20);
            file(
                &key,
                &content(seed(ordinal, 0), size, Body::Text),
                Body::Text,
            );
        }
        let step = match build.changed_assets {
            0 => usize::MAX,
            k => self.assets() / k,
        };
        for asset in 0..self.assets() {
            let ordinal = 1_000_000 + asset;
            let changed = asset % step == 0 && asset / step < build.changed_assets;
            let (dir, ext, body) = ASSET_KINDS[asset % ASSET_KINDS.len()];
            let size = log_uniform(ordinal, 200, self.max_asset);
            let bytes = content(seed(ordinal, u32::from(changed)), size, body);
            file(
                &hashed(&format!("{dir}/a{asset}"), ext, &bytes),
                &bytes,
                body,
            );
        }
    }

    /// Writes `build` as a zip (text deflated, binaries stored, as `zip -r` leaves them) to
    /// `path`.
    fn write_zip(&self, build: Build, path: &Path) {
        let file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
        let mut writer = ZipWriter::new(file);
        let stamp = DateTime::from_date_and_time(2026, 1, build.day, 12, 0, 0).unwrap();
        self.for_each(build, |key, bytes, body| {
            let method = match body {
                Body::Text => CompressionMethod::Deflated,
                Body::Binary => CompressionMethod::Stored,
            };
            let options = SimpleFileOptions::default()
                .compression_method(method)
                .last_modified_time(stamp);
            writer.start_file(key, options).unwrap();
            writer.write_all(bytes).unwrap();
        });
        writer.finish().unwrap().flush().unwrap();
    }

    /// Writes `build` into an empty `dir` (a CI job's fresh `dist/`: every file newly written).
    fn write_dir(&self, build: Build, dir: &Path) {
        if dir.exists() {
            std::fs::remove_dir_all(dir).unwrap();
        }
        self.for_each(build, |key, bytes, _| {
            let path = dir.join(key);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, bytes).unwrap();
        });
    }
}

/// A file's content seed from its ordinal and content version.
fn seed(ordinal: usize, version: u32) -> u64 {
    (ordinal as u64) << 20 | u64::from(version)
}

/// splitmix64: a fixed, dependency-free generator (the site must be the same on every run).
fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A size between `low` and `high`, log-uniform: many small files, a few big ones.
fn log_uniform(ordinal: usize, low: u64, high: u64) -> u64 {
    let mut state = ordinal as u64 ^ 0x5EED;
    let unit = (next(&mut state) >> 11) as f64 / (1u64 << 53) as f64;
    ((low as f64).ln() + unit * ((high as f64).ln() - (low as f64).ln())).exp() as u64
}

fn content(seed: u64, size: u64, body: Body) -> Vec<u8> {
    const WORDS: [&str; 16] = [
        "const ", "function", "return ", "export ", "import ", "div", "class=", "{", "}", "\n",
        "price", "product", "=>", "null", "window.", "0.5;",
    ];
    let mut state = seed;
    let mut bytes = Vec::with_capacity(size as usize + 16);
    while (bytes.len() as u64) < size {
        let r = next(&mut state);
        match body {
            Body::Binary => bytes.extend_from_slice(&r.to_le_bytes()),
            Body::Text => {
                bytes.extend_from_slice(WORDS[(r & 15) as usize].as_bytes());
                write!(bytes, "{}", r >> 54).unwrap();
            }
        }
    }
    bytes.truncate(size as usize);
    bytes
}

/// `stem-<8 hex of sha256>.ext`, as bundlers name assets.
fn hashed(stem: &str, ext: &str, bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut name = format!("{stem}-");
    for byte in &digest[..4] {
        write!(name, "{byte:02x}").unwrap();
    }
    write!(name, ".{ext}").unwrap();
    name
}

// ---------------------------------------------------------------------------------------------
// Stagehand's side.

/// The StaticSite object and the status its last round wrote.
struct SiteObject {
    object: StaticSite,
    status: Option<StaticSiteStatus>,
}

impl SiteObject {
    fn new() -> Self {
        let object: StaticSite = serde_json::from_value(json!({
            "apiVersion": "stagehand.dev/v1alpha1",
            "kind": "StaticSite",
            "metadata": {"name": "shop", "namespace": "bench", "uid": "uid-bench-shop", "generation": 1},
            "spec": spec(&json!({})),
        }))
        .unwrap();
        Self {
            object,
            status: None,
        }
    }

    fn change(&mut self, extra: &Value) {
        self.object.spec = serde_json::from_value(spec(extra)).unwrap();
        let generation = self.object.metadata.generation.unwrap_or(1);
        self.object.metadata.generation = Some(generation + 1);
    }

    fn revision(&self) -> String {
        self.status.as_ref().unwrap().revision.clone().unwrap()
    }
}

fn spec(extra: &Value) -> Value {
    let mut spec = json!({
        "region": REGION,
        "bucket": {"name": SITE_BUCKET, "create": true},
        "source": {"bucket": BUILDS, "archive": ARCHIVE},
        "distribution": {"create": true, "spaFallback": true},
        "cacheControl": [
            {"pattern": "assets/**", "value": "public, max-age=31536000, immutable"},
            {"pattern": "media/**", "value": "public, max-age=31536000, immutable"},
            {"pattern": "**/*.html", "value": "no-cache"},
            {"pattern": "*.html", "value": "no-cache"},
        ],
        "keepRevisions": 5,
    });
    for (key, value) in extra.as_object().unwrap() {
        spec[key] = value.clone();
    }
    spec
}

/// What one phase cost, on either side.
#[derive(Default)]
struct Cost {
    calls: u64,
    rounds: usize,
    uploads: u64,
    /// Content bytes of the uploads.
    bytes: u64,
    /// Request bytes of every `PutObject`/`UploadPart` on the wire (records and part framing
    /// included).
    wire_bytes: u64,
    copies: u64,
    deletes: u64,
    invalidation_paths: Vec<String>,
    wall: Duration,
    /// Sum of the proxy's latencies of `s3/PutObject` and their count: moto's time per upload.
    put_latency: (f64, u64),
    by_operation: BTreeMap<String, u64>,
    /// Sum of the proxy's latencies (ms) by operation: the time spent waiting on moto (calls
    /// in flight at once overlap).
    latency_by_operation: BTreeMap<String, f64>,
    /// The kinds of action each round ran.
    rounds_done: Vec<Vec<&'static str>>,
}

impl Cost {
    fn from_calls(report: &CallsReport, wall: Duration) -> Self {
        let wire = |op: &str| report.get("s3", op).map_or(0, |s| s.request_bytes);
        let put = report.get("s3", "PutObject");
        Self {
            calls: report.total,
            wire_bytes: wire("PutObject") + wire("UploadPart"),
            wall,
            put_latency: put.map_or((0.0, 0), |s| (s.total_latency_ms, s.count)),
            by_operation: bench_support::by_operation(report),
            latency_by_operation: report
                .calls
                .iter()
                .map(|(op, stats)| (op.clone(), stats.total_latency_ms))
                .collect(),
            ..Self::default()
        }
    }

    /// Adds what a round's executed actions transferred.
    fn add_round(&mut self, round: &Round) {
        self.rounds += 1;
        let kinds = round.report.done.iter().map(|a| a.facts().kind).collect();
        self.rounds_done.push(kinds);
        for action in &round.report.done {
            match action {
                Action::UploadObjects { objects } => {
                    self.uploads += objects.len() as u64;
                    self.bytes += objects.iter().map(|o| o.size).sum::<u64>();
                }
                Action::UpdateMetadata { objects } | Action::RestoreVersions { objects } => {
                    self.copies += objects.len() as u64;
                }
                Action::DeleteObjects { keys } => self.deletes += keys.len() as u64,
                Action::Invalidate { paths, .. } => {
                    self.invalidation_paths.extend(paths.iter().cloned());
                }
                _ => {}
            }
        }
    }
}

/// moto (behind the proxy, or not), the controller's shared state, scratch space.
struct Bench {
    floor: Option<AwsFloor>,
    s3: aws_sdk_s3::Client,
    inventory: Inventory,
    cache: SiteCache,
    scratch: tempfile::TempDir,
    site: Site,
}

impl Bench {
    async fn new(aws: AwsProvider, floor: Option<AwsFloor>, site: Site) -> Self {
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(aws.sdk_config())
                .force_path_style(true)
                .build(),
        );
        s3.create_bucket().bucket(BUILDS).send().await.unwrap();
        Self {
            floor,
            s3,
            inventory: Inventory::new(aws, INVENTORY_MAX_AGE),
            cache: SiteCache::new(),
            scratch: tempfile::tempdir().unwrap(),
            site,
        }
    }

    fn floor(&self) -> &AwsFloor {
        self.floor.as_ref().unwrap()
    }

    /// CI uploads the build's archive (streamed from a scratch file, removed after).
    async fn publish(&self, build: Build) {
        let path = self.scratch.path().join("build.zip");
        self.site.write_zip(build, &path);
        let body = ByteStream::from_path(&path).await.unwrap();
        self.s3
            .put_object()
            .bucket(BUILDS)
            .key(ARCHIVE)
            .body(body)
            .send()
            .await
            .unwrap();
        std::fs::remove_file(path).unwrap();
    }

    fn options(&self, dry_run: bool) -> RoundOptions<'_> {
        RoundOptions {
            cluster_id: "bench",
            gate: ActGate::Act,
            refresh: false,
            now: Timestamp::now(),
            dry_run,
            cache: &self.cache,
            scratch: self.scratch.path(),
            limits: ArchiveLimits::default(),
        }
    }

    /// One reconcile, as the controller runs it.
    async fn round(&self, site: &mut SiteObject) -> Round {
        let round = round(
            &self.inventory,
            &site.object,
            site.status.as_ref(),
            self.options(false),
            |_| {},
        )
        .await
        .unwrap();
        assert!(round.plan.stalled.is_none(), "{:?}", round.plan.stalled);
        assert!(round.report.failure.is_none(), "{:?}", round.report.failure);
        site.status = Some(round.status.clone());
        round
    }

    /// Rounds until one has nothing to do and waits on nothing (the requeue after actions
    /// does this in `stagehand run`); what they transferred. The inventory's listings have
    /// expired when it starts, as at a resync minutes after the last one.
    async fn converge(&self, site: &mut SiteObject) -> Cost {
        self.inventory.forget(REGION);
        let mut cost = Cost::default();
        for _ in 0..MAX_ROUNDS {
            let round = self.round(site).await;
            cost.add_round(&round);
            if round.plan.actions.is_empty() && round.plan.waits.is_empty() {
                return cost;
            }
        }
        panic!("no convergence in {MAX_ROUNDS} rounds");
    }

    /// [`Bench::converge`] counted by the proxy.
    async fn stagehand(&self, site: &mut SiteObject) -> Cost {
        self.floor().reset_calls().await.unwrap();
        let start = Instant::now();
        let converged = self.converge(site).await;
        let mut cost = Cost::from_calls(&self.floor().calls().await.unwrap(), start.elapsed());
        cost.rounds = converged.rounds;
        cost.uploads = converged.uploads;
        cost.bytes = converged.bytes;
        cost.copies = converged.copies;
        cost.deletes = converged.deletes;
        cost.invalidation_paths = converged.invalidation_paths;
        cost.rounds_done = converged.rounds_done;
        cost
    }

    /// How long the pure plan takes on what a round of the converged site observed.
    async fn plan_time(&self, site: &SiteObject) -> Duration {
        let round = self
            .round(&mut SiteObject {
                object: site.object.clone(),
                status: site.status.clone(),
            })
            .await;
        let spec = &site.object.spec;
        let rules = MetadataRules::compile(&spec.cache_control).unwrap();
        let context = PlanContext {
            owner: "bench/StaticSite/shop".to_owned(),
            cluster_id: "bench".to_owned(),
            uid: "uid-bench-shop".to_owned(),
            generation: site.object.metadata.generation.unwrap_or(1),
            gate: ActGate::Act,
            now: Timestamp::now().to_string(),
        };
        let start = Instant::now();
        for _ in 0..10 {
            let plan = plan(spec, &context, &rules, &round.observed);
            assert!(plan.actions.is_empty(), "{:?}", plan.actions);
        }
        start.elapsed() / 10
    }

    /// The team's deploy of `build`: a fresh `dist/`, `aws s3 sync --delete`, `/*`.
    async fn scripted(&self, build: Build, distribution_id: &str) -> Cost {
        let dist = self.scratch.path().join("dist");
        self.site.write_dir(build, &dist);
        self.floor().reset_calls().await.unwrap();
        let start = Instant::now();
        let source = dist.to_str().unwrap().to_owned();
        let target = format!("s3://{SYNC_BUCKET}");
        self.aws_cli(&[
            "s3",
            "sync",
            &source,
            &target,
            "--delete",
            "--only-show-errors",
        ])
        .await;
        self.aws_cli(&[
            "cloudfront",
            "create-invalidation",
            "--distribution-id",
            distribution_id,
            "--paths",
            "/*",
        ])
        .await;
        let report = self.floor().calls().await.unwrap();
        let mut cost = Cost::from_calls(&report, start.elapsed());
        cost.uploads =
            report.count("s3", "PutObject") + report.count("s3", "CreateMultipartUpload");
        cost.bytes = cost.wire_bytes;
        cost.deletes = report.count("s3", "DeleteObject") + report.count("s3", "DeleteObjects");
        cost.invalidation_paths = vec!["/*".to_owned()];
        cost
    }

    /// The AWS CLI of the venv against the proxy; its own output is left out of the report.
    async fn aws_cli(&self, args: &[&str]) {
        let mut command = std::process::Command::new(aws_cli_bin().unwrap());
        command
            .args(args)
            .args(["--endpoint-url", &self.floor().endpoint_url()])
            .envs(self.floor().env())
            .stdout(std::process::Stdio::null());
        let status = tokio::task::spawn_blocking(move || command.status())
            .await
            .unwrap()
            .unwrap();
        assert!(status.success(), "aws {args:?}: {status}");
    }
}

// ---------------------------------------------------------------------------------------------
// The comparison.

fn mb(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / 1e6)
}

fn paths(cost: &Cost) -> String {
    match cost.invalidation_paths.len() {
        0 => "0".to_owned(),
        n if n <= 3 => format!("{n} (`{}`)", cost.invalidation_paths.join("`, `")),
        n => format!("{n}"),
    }
}

fn row(table: &mut String, phase: &str, who: &str, cost: &Cost) {
    writeln!(
        table,
        "| {phase} | {who} | {} | {} | {} | {} | {} | {} | {} | {} | {:.1} | {:.1} |",
        cost.calls,
        if cost.rounds == 0 {
            "—".to_owned()
        } else {
            cost.rounds.to_string()
        },
        cost.uploads,
        mb(cost.bytes),
        mb(cost.wire_bytes),
        cost.copies,
        cost.deletes,
        paths(cost),
        cost.wall.as_secs_f64(),
        cost.latency_by_operation.values().sum::<f64>() / 1000.0,
    )
    .unwrap();
}

fn details(out: &mut String, phase: &str, who: &str, cost: &Cost) {
    let (latency, puts) = cost.put_latency;
    let per_put = if puts == 0 {
        0.0
    } else {
        latency / puts as f64
    };
    writeln!(
        out,
        "{phase}, {who}: {} — PutObject {per_put:.1} ms each at moto",
        bench_support::breakdown(&cost.by_operation)
    )
    .unwrap();
    let mut slowest: Vec<(&String, &f64)> = cost.latency_by_operation.iter().collect();
    slowest.sort_by(|a, b| b.1.total_cmp(a.1));
    let slowest: Vec<String> = slowest
        .iter()
        .take(3)
        .map(|(op, ms)| format!("{op} {:.1} s", **ms / 1000.0))
        .collect();
    writeln!(out, "  waiting on moto: {}", slowest.join(", ")).unwrap();
    if !cost.rounds_done.is_empty() {
        writeln!(out, "  rounds: {:?}", cost.rounds_done).unwrap();
    }
    if cost.invalidation_paths.len() > 3 {
        writeln!(out, "  invalidated: {}", cost.invalidation_paths.join(" ")).unwrap();
    }
}

async fn compare(floor: AwsFloor, files: usize) -> AwsFloor {
    let aws = bench_support::unlimited_provider(&floor).await;
    let bench = Bench::new(aws, Some(floor), Site::new(files)).await;
    bench
        .s3
        .create_bucket()
        .bucket(SYNC_BUCKET)
        .send()
        .await
        .unwrap();
    let mut site = SiteObject::new();
    let rebuilt = Build { day: 2, ..FIRST };
    let one_file = Build {
        prices: 1,
        day: 3,
        ..FIRST
    };
    let fifty = Build {
        changed_assets: 50,
        index: 1,
        day: 4,
        ..one_file
    };
    let rollback = Build { day: 5, ..one_file };

    bench.publish(FIRST).await;
    let first = bench.stagehand(&mut site).await;
    let distribution = site
        .status
        .as_ref()
        .unwrap()
        .distribution
        .clone()
        .unwrap()
        .id;
    let resync = bench.stagehand(&mut site).await;
    bench.publish(rebuilt).await;
    let same = bench.stagehand(&mut site).await;
    bench.publish(one_file).await;
    let one = bench.stagehand(&mut site).await;
    let one_revision = site.revision();
    bench.publish(fifty).await;
    let many = bench.stagehand(&mut site).await;
    site.change(&json!({"rollbackTo": one_revision}));
    let back = bench.stagehand(&mut site).await;
    // The controller alone: checking and hashing the archive from local disk (no AWS).
    let local = bench.scratch.path().join("local.zip");
    bench.site.write_zip(FIRST, &local);
    let start = Instant::now();
    let read = read_archive(
        std::fs::File::open(&local).unwrap(),
        ArchiveFormat::Zip,
        ArchiveLimits::default(),
        &mut Discard,
    )
    .unwrap();
    let check = start.elapsed();
    std::fs::remove_file(&local).unwrap();
    let planning = bench.plan_time(&site).await;

    let phases = [
        ("(a) first deploy", Some(FIRST), first),
        ("(b) resync, no change", None, resync),
        (
            "(c) same build rebuilt (new timestamps)",
            Some(rebuilt),
            same,
        ),
        ("(d) 1 file changed", Some(one_file), one),
        ("(e) 50 hashed assets + index.html", Some(fifty), many),
        ("(f) rollback to (d)", Some(rollback), back),
    ];
    let mut table = String::from(
        "| phase | who | AWS calls | rounds | uploads | content MB | wire MB | copies | deletes | invalidation paths | wall s | Σ call latency s |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    let mut notes = String::new();
    for (phase, build, cost) in &phases {
        row(&mut table, phase, "Stagehand", cost);
        details(&mut notes, phase, "Stagehand", cost);
        let script = match build {
            Some(build) => bench.scripted(*build, &distribution).await,
            None => continue,
        };
        row(&mut table, phase, "s3 sync + `/*`", &script);
        details(&mut notes, phase, "s3 sync", &script);
    }
    println!(
        "{files} files, {:.1} MB of content\n",
        read.total_bytes as f64 / 1e6
    );
    println!("{table}");
    println!("{notes}");
    println!(
        "controller alone: checking and hashing the {files}-file archive from local disk: {:.2} s",
        check.as_secs_f64()
    );
    println!(
        "controller alone: planning the converged {files}-key site (pure `plan`, mean of 10): {:.1} ms",
        planning.as_secs_f64() * 1000.0
    );
    std::fs::remove_dir_all(bench.scratch.path().join("dist")).ok();
    bench.floor.unwrap()
}

// ---------------------------------------------------------------------------------------------
// Memory.

/// `bench_site memory N URL` in a child process: a fresh process per size, so one size's peak
/// is not hidden under another's, and without the proxy in it (the proxy holds whole request
/// and response bodies; moto's answers need its corrections, so the child still goes through
/// the parent's proxy, on a freshly reset moto).
async fn measure_memory_in_child(floor: &AwsFloor, mode: &str, files: usize) {
    floor.reset().await.unwrap();
    let mut command = std::process::Command::new(std::env::current_exe().unwrap());
    command.args([mode, &files.to_string(), &floor.endpoint_url()]);
    let status = tokio::task::spawn_blocking(move || command.status())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "memory {files}: {status}");
}

/// Prints one memory row: the peak of what `run` did, and what it started from.
async fn measured<F: std::future::Future<Output = u64>>(files: usize, phase: &str, run: F) {
    let (_, before) = bench_support::memory_kib();
    bench_support::reset_peak_memory();
    let start = Instant::now();
    let uploads = run.await;
    let wall = start.elapsed();
    let (peak, _) = bench_support::memory_kib();
    println!(
        "| {files} | {phase} | {:.1} | {:.1} | {:.1} | {uploads} | {:.1} |",
        peak as f64 / 1024.0,
        before as f64 / 1024.0,
        (peak.saturating_sub(before)) as f64 / 1024.0,
        wall.as_secs_f64()
    );
}

/// What the parts of a first deploy cost alone (`bench_site memory-parts N URL`): checking
/// the archive (the zip reader, from a local file), then observe + plan (a dry run: the
/// archive downloaded and checked, 5,000 uploads planned), without act.
async fn memory_parts(files: usize, endpoint_url: &str) {
    let aws = bench_support::unlimited_provider_at(endpoint_url).await;
    let bench = Bench::new(aws, None, Site::new(files)).await;
    let local = bench.scratch.path().join("local.zip");
    bench.site.write_zip(FIRST, &local);
    measured(files, "part: check the archive (local file)", async {
        let file = std::fs::File::open(&local).unwrap();
        read_archive(
            file,
            ArchiveFormat::Zip,
            ArchiveLimits::default(),
            &mut Discard,
        )
        .unwrap();
        0
    })
    .await;
    std::fs::remove_file(&local).unwrap();
    bench.publish(FIRST).await;
    let site = SiteObject::new();
    measured(files, "part: observe + plan (dry run)", async {
        let options = bench.options(true);
        let round = round(&bench.inventory, &site.object, None, options, |_| {})
            .await
            .unwrap();
        round.plan.sync.uploaded as u64
    })
    .await;
}

async fn memory(files: usize, endpoint_url: &str) {
    let aws = bench_support::unlimited_provider_at(endpoint_url).await;
    let bench = Bench::new(aws, None, Site::new(files)).await;
    let mut site = SiteObject::new();
    let phases = [
        ("first deploy", Some(FIRST)),
        ("resync, no change", None),
        (
            "1 file changed",
            Some(Build {
                prices: 1,
                day: 2,
                ..FIRST
            }),
        ),
    ];
    for (phase, build) in phases {
        if let Some(build) = build {
            bench.publish(build).await;
        }
        measured(files, phase, async {
            bench.converge(&mut site).await.uploads
        })
        .await;
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("memory") => return memory(args[1].parse().unwrap(), &args[2]).await,
        Some("memory-parts") => return memory_parts(args[1].parse().unwrap(), &args[2]).await,
        _ => {}
    }
    // `--memory-only N...`: the memory measurements without the comparison; `--parts-only
    // N...`: only the parts of a first deploy.
    let flag = args.first().filter(|a| a.starts_with("--")).cloned();
    let memory_only = flag.is_some();
    let parts_only = flag.as_deref() == Some("--parts-only");
    let sizes: Vec<usize> = args
        .iter()
        .skip(usize::from(memory_only))
        .map(|a| a.parse().expect("N: a number of files, at least 100"))
        .collect();
    // By default the whole deploy is measured at 5,000 objects only: at 50,000, one page of
    // moto's version listing outlasts the adapters' 30 s attempt timeout on a loaded machine
    // (docs/benchmarks.md); the parts that list nothing are measured at both sizes.
    let (sizes, parts) = if sizes.is_empty() {
        (vec![5_000], vec![5_000, 50_000])
    } else {
        (sizes.clone(), sizes)
    };
    assert!(sizes.iter().all(|n| *n >= 100), "N must be at least 100");
    let mut floor = AwsFloor::start().await.unwrap();
    if !memory_only {
        floor = compare(floor, sizes[0]).await;
    }
    println!(
        "\n| objects | phase | peak RSS MiB | RSS before MiB | growth MiB | uploads | wall s |\n|---|---|---|---|---|---|---|"
    );
    for files in sizes.iter().filter(|_| !parts_only) {
        measure_memory_in_child(&floor, "memory", *files).await;
    }
    for files in parts {
        measure_memory_in_child(&floor, "memory-parts", files).await;
    }
}
