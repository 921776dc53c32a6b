//! The scale benchmark (issue 14): ONE real `stagehand run` process serving 10,000 objects —
//! LambdaStages, StaticSites and SpotFleets — against the Kubernetes API stand-in and moto
//! behind the counting proxy. It measures what an operator of a big cluster asks:
//! - the controller's peak resident memory (`VmHWM` of the process);
//! - the time from the process's start until every object was observed once (a status whose
//!   `observedGeneration` is the object's generation, with conditions) and until every object
//!   is Ready;
//! - AWS calls per object over one resync interval after convergence (the proxy's counts);
//! - status writes over that interval, and how many of them changed nothing (the stand-in
//!   logs every request; a write that changed something is a watch event);
//! - the controller's own metrics (reconcile counts and durations, series per family).
//!
//! Not a test: `cargo run -p stagehand --example bench_scale [-- STAGES SITES FLEETS
//! FUNCTIONS_PER_STAGE RESYNC_SECS]` (default 9000 500 500 2 300), or `make bench-scale`.
//! moto is seeded directly (not through the proxy) with what deploy tools left: every stage's
//! functions already run its build and carry its owner tag, so the controller's first round
//! of a stage observes and acts on nothing; sites and fleets are created by the controller.
//! `BENCH_RATE_LIMITS` (e.g. `cloudfront=50/50,ec2=50/50`) passes `--aws-rate-limit` on.

#![allow(
    clippy::unwrap_used,
    clippy::cast_precision_loss,
    clippy::too_many_lines,
    reason = "a benchmark binary: a panic with its location is the report we want"
)]

use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_lambda::types::{FunctionCode, Runtime};
use futures::{StreamExt, TryStreamExt, stream};
use kube::api::{Api, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use stagehand::base::conditions::find_condition;
use stagehand::inventory::function_listing::FunctionListingBuilder;
use stagehand_crds::{CLUSTER_TAG, CommonStatus, LambdaStage, OWNER_TAG, SpotFleet, StaticSite};
use stagehand_testenv::TestApiServer;
use stagehand_testenv::aws::seed::{Seeder, deterministic_zip};
use stagehand_testenv::aws::{AwsFloor, REGION};

mod bench_support;

use bench_support::process::{StagehandProcess, metric_sum, samples, series_counts};

const NAMESPACE: &str = "scale";
const CLUSTER: &str = "bench";
/// Stages share a few artifact buckets, each stage its own key, as CI pipelines lay them out.
const ARTIFACT_BUCKETS: usize = 10;
const SOURCES: &str = "scale-site-sources";
const IMAGE: &str = "ami-12c6146b";
/// Requests in flight while seeding moto and creating objects (moto is one Python process:
/// ~430 requests/s with 4 callers, no better with more).
const SEED_CONCURRENCY: usize = 8;
/// How long the whole run may wait for the objects to be observed, and then to be Ready.
const PHASE_TIMEOUT: Duration = Duration::from_secs(60 * 60);

/// The objects of the run.
#[derive(Clone, Copy, Debug)]
struct Mix {
    stages: usize,
    sites: usize,
    fleets: usize,
    functions_per_stage: usize,
    resync: Duration,
}

impl Mix {
    fn from_args() -> Self {
        let args: Vec<u64> = std::env::args()
            .skip(1)
            .map(|a| a.parse().unwrap())
            .collect();
        let arg = |i: usize, default: u64| args.get(i).copied().unwrap_or(default);
        Self {
            stages: usize::try_from(arg(0, 9000)).unwrap(),
            sites: usize::try_from(arg(1, 500)).unwrap(),
            fleets: usize::try_from(arg(2, 500)).unwrap(),
            functions_per_stage: usize::try_from(arg(3, 2)).unwrap(),
            resync: Duration::from_secs(arg(4, 300)),
        }
    }

    fn objects(&self) -> usize {
        self.stages + self.sites + self.fleets
    }
}

fn stage_name(i: usize) -> String {
    format!("stage-{i:05}")
}

fn function_name(i: usize, f: usize) -> String {
    format!("scale-s{i:05}-fn{f}")
}

fn artifact_bucket(i: usize) -> String {
    format!("scale-artifacts-{}", i % ARTIFACT_BUCKETS)
}

fn artifact_key(i: usize) -> String {
    format!("stage-{i:05}/app.zip")
}

fn package(i: usize) -> Vec<u8> {
    deterministic_zip(&[("app.py", format!("STAGE = {i}\n").as_bytes())])
}

fn owner(kind: &str, name: &str) -> String {
    format!("{NAMESPACE}/{kind}/{name}")
}

fn lambda_stage(i: usize, mix: &Mix) -> LambdaStage {
    let functions: Vec<_> = (0..mix.functions_per_stage)
        .map(|f| json!({"name": function_name(i, f)}))
        .collect();
    let spec = json!({
        "region": REGION,
        "code": {"s3": {"bucket": artifact_bucket(i), "key": artifact_key(i)}},
        "functions": functions,
    });
    let mut object = LambdaStage::new(&stage_name(i), serde_json::from_value(spec).unwrap());
    object.metadata.namespace = Some(NAMESPACE.into());
    object
}

fn site_archive(i: usize) -> Vec<u8> {
    let index =
        format!("<!doctype html><title>site {i}</title><script src=/assets/app.js></script>");
    let script = format!("console.log('site {i}');\n");
    deterministic_zip(&[
        ("index.html", index.as_bytes()),
        ("assets/app.js", script.as_bytes()),
        ("favicon.ico", &[0_u8; 64]),
    ])
}

fn static_site(i: usize) -> StaticSite {
    let spec = json!({
        "region": REGION,
        "bucket": {"name": format!("scale-site-{i:04}"), "create": true},
        "source": {"bucket": SOURCES, "archive": format!("site-{i:04}/dist.zip")},
        "distribution": {"create": true, "spaFallback": true},
        "cacheControl": [
            {"pattern": "assets/**", "value": "public, max-age=31536000, immutable"},
            {"pattern": "*.html", "value": "no-cache"},
        ],
        "keepRevisions": 3,
    });
    let mut object = StaticSite::new(
        &format!("site-{i:04}"),
        serde_json::from_value(spec).unwrap(),
    );
    object.metadata.namespace = Some(NAMESPACE.into());
    object
}

fn spot_fleet(i: usize, subnets: &[String], group: &str) -> SpotFleet {
    let spec = json!({
        "region": REGION,
        "capacity": 1 + i % 2,
        "instanceTypes": ["t3.small", "t3a.small"],
        "imageId": IMAGE,
        "subnetIds": subnets,
        "securityGroupIds": [group],
        "files": [{"path": "/etc/worker/env", "content": format!("FLEET={i}\n")}],
        "services": [{
            "name": "worker.service",
            "unit": "[Service]\nEnvironmentFile=/etc/worker/env\nExecStart=/usr/local/bin/worker\n",
        }],
    });
    let mut object = SpotFleet::new(
        &format!("fleet-{i:04}"),
        serde_json::from_value(spec).unwrap(),
    );
    object.metadata.namespace = Some(NAMESPACE.into());
    object
}

/// Runs `work` for every item, `SEED_CONCURRENCY` at a time.
async fn each<T, F>(items: impl IntoIterator<Item = T>, work: impl Fn(T) -> F)
where
    F: Future<Output = ()>,
{
    stream::iter(items)
        .map(work)
        .buffer_unordered(SEED_CONCURRENCY)
        .for_each(|()| async {})
        .await;
}

/// What a deploy pipeline left for the stages: artifact buckets, one build per stage, every
/// function running its stage's build and tagged for it.
async fn seed_lambda(seeder: &Seeder, mix: &Mix) {
    let role = seeder.role().await.unwrap();
    for bucket in 0..ARTIFACT_BUCKETS {
        seeder.bucket(&artifact_bucket(bucket)).await.unwrap();
    }
    each(0..mix.stages, |i| async move {
        seeder
            .upload(&artifact_bucket(i), &artifact_key(i), package(i))
            .await
            .unwrap();
    })
    .await;
    let functions = (0..mix.stages).flat_map(|i| (0..mix.functions_per_stage).map(move |f| (i, f)));
    each(functions, |(i, f)| {
        let role = role.clone();
        async move {
            seeder
                .lambda()
                .create_function()
                .function_name(function_name(i, f))
                .runtime(Runtime::Python312)
                .role(role)
                .handler("app.handler")
                .code(FunctionCode::builder().zip_file(package(i).into()).build())
                .tags(OWNER_TAG, owner("LambdaStage", &stage_name(i)))
                .tags(CLUSTER_TAG, CLUSTER)
                .send()
                .await
                .unwrap();
        }
    })
    .await;
}

/// The sites' builds: one small archive each in a shared source bucket.
async fn seed_sites(seeder: &Seeder, mix: &Mix) {
    seeder.bucket(SOURCES).await.unwrap();
    each(0..mix.sites, |i| async move {
        seeder
            .upload(SOURCES, &format!("site-{i:04}/dist.zip"), site_archive(i))
            .await
            .unwrap();
    })
    .await;
}

/// Two subnets of moto's default VPC and a security group for the fleets.
async fn seed_network(ec2: &aws_sdk_ec2::Client) -> (Vec<String>, String) {
    let subnets = ec2.describe_subnets().send().await.unwrap();
    let mut subnets: Vec<(String, String)> = subnets
        .subnets()
        .iter()
        .filter_map(|s| Some((s.availability_zone()?.to_owned(), s.subnet_id()?.to_owned())))
        .collect();
    subnets.sort();
    let subnets = subnets.into_iter().take(2).map(|(_, id)| id).collect();
    let vpcs = ec2.describe_vpcs().send().await.unwrap();
    let group = ec2
        .create_security_group()
        .group_name("scale-fleets")
        .description("scale benchmark fleets")
        .vpc_id(vpcs.vpcs()[0].vpc_id().unwrap())
        .send()
        .await
        .unwrap();
    (subnets, group.group_id().unwrap().to_owned())
}

async fn create_all<K>(api: &Api<K>, objects: Vec<K>)
where
    K: Resource + Clone + Serialize + DeserializeOwned + Debug,
{
    each(objects, |object| async move {
        api.create(&PostParams::default(), &object).await.unwrap();
    })
    .await;
}

/// What the watchers saw of one kind's objects.
#[derive(Debug, Default)]
struct Census {
    /// By name: when its status first described its generation (since the controller's
    /// start), and its `Ready` condition now (status and reason).
    objects: HashMap<String, Seen>,
    /// Watch events after the initial list: each is a write that changed the object.
    changes: u64,
}

#[derive(Debug, Default)]
struct Seen {
    observed: Option<Duration>,
    ready: Option<(String, String)>,
}

impl Census {
    fn observed(&self) -> usize {
        self.objects
            .values()
            .filter(|s| s.observed.is_some())
            .count()
    }

    fn ready(&self) -> usize {
        self.objects
            .values()
            .filter(|s| s.ready.as_ref().is_some_and(|(status, _)| status == "True"))
            .count()
    }

    /// Not Ready, by `Ready` reason.
    fn not_ready(&self) -> BTreeMap<String, usize> {
        let mut reasons = BTreeMap::new();
        for seen in self.objects.values() {
            let reason = match &seen.ready {
                Some((status, _)) if status == "True" => continue,
                Some((_, reason)) => reason.clone(),
                None => "NoStatus".into(),
            };
            *reasons.entry(reason).or_insert(0) += 1;
        }
        reasons
    }

    /// Percentile `p` (0–100) of the first-observed times.
    fn observed_percentile(&self, p: usize) -> Duration {
        let mut times: Vec<Duration> = self.objects.values().filter_map(|s| s.observed).collect();
        times.sort();
        let index = times.len().saturating_sub(1) * p / 100;
        times.get(index).copied().unwrap_or_default()
    }
}

/// The common status of a kind's object.
trait Observed:
    Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static
{
    fn common(&self) -> Option<&CommonStatus>;
}

impl Observed for LambdaStage {
    fn common(&self) -> Option<&CommonStatus> {
        self.status.as_ref().map(|s| &s.common)
    }
}

impl Observed for StaticSite {
    fn common(&self) -> Option<&CommonStatus> {
        self.status.as_ref().map(|s| &s.common)
    }
}

impl Observed for SpotFleet {
    fn common(&self) -> Option<&CommonStatus> {
        self.status.as_ref().map(|s| &s.common)
    }
}

/// Watches `api` into a census; `since` is the controller's start (set once it starts).
fn track<K: Observed>(api: Api<K>, since: Arc<Mutex<Option<Instant>>>) -> Arc<Mutex<Census>> {
    let census = Arc::new(Mutex::new(Census::default()));
    let sink = census.clone();
    tokio::spawn(async move {
        let mut events = watcher(api, watcher::Config::default())
            .default_backoff()
            .boxed();
        while let Ok(Some(event)) = events.try_next().await {
            let (object, change) = match event {
                watcher::Event::Apply(object) => (object, true),
                watcher::Event::InitApply(object) => (object, false),
                _ => continue,
            };
            let started = *since.lock().unwrap();
            let mut census = sink.lock().unwrap();
            census.changes += u64::from(change);
            let seen = census.objects.entry(object.name_any()).or_default();
            let Some(common) = object.common() else {
                continue;
            };
            if seen.observed.is_none()
                && common.observed_generation == object.meta().generation
                && !common.conditions.is_empty()
            {
                seen.observed = started.map(|s| s.elapsed());
            }
            seen.ready = find_condition(&common.conditions, "Ready")
                .map(|c| (c.status.clone(), c.reason.clone()));
        }
    });
    census
}

struct Censuses {
    kinds: Vec<(&'static str, Arc<Mutex<Census>>)>,
}

impl Censuses {
    fn sum(&self, f: impl Fn(&Census) -> usize) -> usize {
        self.kinds.iter().map(|(_, c)| f(&c.lock().unwrap())).sum()
    }

    fn changes(&self) -> u64 {
        self.kinds
            .iter()
            .map(|(_, c)| c.lock().unwrap().changes)
            .sum()
    }

    /// Waits (bounded) until `done` holds for every kind, printing progress every 30 s.
    async fn wait(
        &self,
        what: &str,
        controller: &mut StagehandProcess,
        done: impl Fn(&Census) -> usize,
        want: usize,
    ) -> bool {
        let deadline = Instant::now() + PHASE_TIMEOUT;
        let mut last_print = Instant::now();
        loop {
            let have = self.sum(&done);
            if have >= want {
                return true;
            }
            assert!(controller.running(), "the controller exited");
            if Instant::now() > deadline {
                return false;
            }
            if last_print.elapsed() > Duration::from_secs(30) {
                let (hwm, rss) = controller.memory_kib();
                eprintln!(
                    "  {what}: {have}/{want}; controller VmHWM {} MiB, VmRSS {} MiB",
                    hwm / 1024,
                    rss / 1024
                );
                last_print = Instant::now();
            }
            // A benchmark polling its own in-memory census: no condition to await.
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

fn total(report: &stagehand_testenv::aws::CallsReport) -> u64 {
    bench_support::by_operation(report).values().sum()
}

/// The controller's per-object state without moto or the stand-in in the way: the converged
/// objects, as the API server serves them, scaled up `factor` times under new names and held
/// typed as kube's reflector caches hold them — with their managed fields, and without (what
/// the controller caches). Each figure comes from a child process of its own (`bench_scale
/// alone KIND FILE FACTOR STRIP`), so that memory freed by one measurement is not reused by the
/// next: resident memory growth per object, in KiB.
async fn controller_alone<K: Observed + Serialize>(
    api: &Api<K>,
    dir: &std::path::Path,
    factor: usize,
) -> (usize, f64, f64) {
    let listed = api
        .list(&kube::api::ListParams::default())
        .await
        .unwrap()
        .items;
    let file = dir.join(format!("{}.jsonl", K::kind(&())));
    let lines: Vec<String> = listed
        .iter()
        .map(|o| serde_json::to_string(o).unwrap())
        .collect();
    std::fs::write(&file, lines.join("\n")).unwrap();
    let child = |strip: &str| {
        let output = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "alone",
                &K::kind(&()),
                file.to_str().unwrap(),
                &factor.to_string(),
                strip,
            ])
            .output()
            .unwrap();
        String::from_utf8(output.stdout)
            .unwrap()
            .trim()
            .parse::<f64>()
            .unwrap()
    };
    (lines.len() * factor, child("keep"), child("strip"))
}

/// Child mode: holds FILE's objects FACTOR times as typed `K`s (managed fields stripped or
/// kept) and prints the resident-memory growth per object in KiB.
fn hold_alone<K: Observed>(file: &str, factor: usize, strip: bool) {
    let text = std::fs::read_to_string(file).unwrap();
    let (_, before) = bench_support::memory_kib();
    let mut cache: Vec<Arc<K>> = Vec::with_capacity(text.lines().count() * factor);
    for copy in 0..factor {
        for line in text.lines() {
            let mut object: K = serde_json::from_str(line).unwrap();
            let name = format!("{}-{copy}", object.name_any());
            object.meta_mut().name = Some(name);
            if strip {
                object.managed_fields_mut().clear();
            }
            cache.push(Arc::new(object));
        }
    }
    let (_, after) = bench_support::memory_kib();
    println!(
        "{}",
        after.saturating_sub(before) as f64 / cache.len().max(1) as f64
    );
}

/// Child mode: the region's function listing FACTOR times over, as the Lambda inventory keeps
/// it; prints the resident-memory growth per function in KiB and the count.
async fn listing_alone(endpoint_url: &str, factor: usize) {
    let aws = bench_support::unlimited_provider_at(endpoint_url).await;
    let listed = aws.lambda(REGION).list_functions().await.unwrap();
    let (_, before) = bench_support::memory_kib();
    // Page by page, as the inventory builds it: never held whole as `FunctionInfo`s.
    let mut listing = FunctionListingBuilder::default();
    for copy in 0..factor {
        listing.extend(listed.iter().map(|function| {
            let mut function = function.clone();
            function.name = format!("{}-{copy}", function.name);
            function.arn = format!("{}-{copy}", function.arn);
            function
        }));
    }
    let listing = listing.build();
    let (_, after) = bench_support::memory_kib();
    println!(
        "{} {}",
        after.saturating_sub(before) as f64 / listing.len().max(1) as f64,
        listing.len()
    );
}

/// Runs the child modes; whether this process was one.
async fn child_mode() -> bool {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("alone") => {
            let factor = args[4].parse().unwrap();
            let strip = args[5] == "strip";
            match args[2].as_str() {
                "LambdaStage" => hold_alone::<LambdaStage>(&args[3], factor, strip),
                "StaticSite" => hold_alone::<StaticSite>(&args[3], factor, strip),
                _ => hold_alone::<SpotFleet>(&args[3], factor, strip),
            }
            true
        }
        Some("listing") => {
            listing_alone(&args[2], args[3].parse().unwrap()).await;
            true
        }
        _ => false,
    }
}

/// The listing child for `endpoint_url`: (KiB per function, functions).
fn listing_child(endpoint_url: &str, factor: usize) -> (f64, usize) {
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["listing", endpoint_url, &factor.to_string()])
        .output()
        .unwrap();
    let text = String::from_utf8(output.stdout).unwrap();
    let mut fields = text.split_whitespace();
    (
        fields.next().unwrap().parse().unwrap(),
        fields.next().unwrap().parse().unwrap(),
    )
}

/// Waits (bounded) until the restarted controller has finished `objects` reconciles.
async fn restart_reconciles(controller: &mut StagehandProcess, objects: usize) -> bool {
    let deadline = Instant::now() + PHASE_TIMEOUT;
    loop {
        let finished = controller.scrape().await.map_or(0.0, |m| {
            metric_sum(&m, "controller_runtime_reconcile_total")
        });
        if finished >= objects as f64 {
            return true;
        }
        assert!(controller.running(), "the restarted controller exited");
        if Instant::now() > deadline {
            return false;
        }
        // A benchmark polling the controller's own counter: no condition to await.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if child_mode().await {
        return;
    }
    let mix = Mix::from_args();
    eprintln!("mix: {mix:?} ({} objects)", mix.objects());
    let floor = AwsFloor::start().await.unwrap();
    let server = TestApiServer::builder()
        .history_limit(100_000)
        .start()
        .await
        .unwrap();
    server.install_stagehand_crds().await.unwrap();
    server.create_namespace(NAMESPACE).await.unwrap();
    let client = server.client();

    // Seed moto directly: the proxy counts the controller's calls only.
    let seeder = Seeder::new(&floor.moto().url(), REGION).await;
    let seeding = Instant::now();
    seed_lambda(&seeder, &mix).await;
    let lambda_seeded = seeding.elapsed();
    seed_sites(&seeder, &mix).await;
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(floor.moto().url())
        .region(aws_config::Region::new(REGION))
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "test", "test", None, None, "static",
        ))
        .load()
        .await;
    let (subnets, group) = seed_network(&aws_sdk_ec2::Client::new(&sdk)).await;
    let seeded = seeding.elapsed();
    eprintln!("seeded moto in {seeded:?} (Lambda part {lambda_seeded:?})");

    let creating = Instant::now();
    let stages: Api<LambdaStage> = Api::namespaced(client.clone(), NAMESPACE);
    let sites: Api<StaticSite> = Api::namespaced(client.clone(), NAMESPACE);
    let fleets: Api<SpotFleet> = Api::namespaced(client.clone(), NAMESPACE);
    create_all(
        &stages,
        (0..mix.stages).map(|i| lambda_stage(i, &mix)).collect(),
    )
    .await;
    create_all(&sites, (0..mix.sites).map(static_site).collect()).await;
    create_all(
        &fleets,
        (0..mix.fleets)
            .map(|i| spot_fleet(i, &subnets, &group))
            .collect(),
    )
    .await;
    let created = creating.elapsed();
    eprintln!(
        "created {} objects in the stand-in in {created:?}",
        mix.objects()
    );

    let since = Arc::new(Mutex::new(None));
    let censuses = Censuses {
        kinds: vec![
            ("LambdaStage", track(stages.clone(), since.clone())),
            ("StaticSite", track(sites.clone(), since.clone())),
            ("SpotFleet", track(fleets.clone(), since.clone())),
        ],
    };

    let dir = std::env::temp_dir().join(format!("bench-scale-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = dir.join("kubeconfig");
    server.write_kubeconfig(&kubeconfig).unwrap();
    let mut args: Vec<String> = [
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
        "--aws-endpoint-url",
        &floor.endpoint_url(),
        "--aws-region",
        REGION,
        "--cluster-id",
        CLUSTER,
        "--loopback-only",
        "true",
        "--log-format",
        "json",
        "--default-resync",
        &format!("{}s", mix.resync.as_secs()),
    ]
    .iter()
    .map(|&s| s.to_owned())
    .collect();
    if let Ok(limits) = std::env::var("BENCH_RATE_LIMITS") {
        args.extend(["--aws-rate-limit".to_owned(), limits]);
    }
    let requests_before_start = server.requests().len();
    let mut controller = StagehandProcess::start(&args, &[], &dir.join("stagehand.log"));
    let started = Instant::now();
    *since.lock().unwrap() = Some(started);
    eprintln!(
        "controller pid {} (log {})",
        controller.pid(),
        dir.join("stagehand.log").display()
    );

    let all_observed = censuses
        .wait("observed", &mut controller, Census::observed, mix.objects())
        .await;
    let observed_after = started.elapsed();
    let (hwm_observed, rss_observed) = controller.memory_kib();
    let calls_to_observe = total(&floor.calls().await.unwrap());
    eprintln!("observed all: {all_observed} after {observed_after:?}");

    let all_ready = censuses
        .wait("ready", &mut controller, Census::ready, mix.objects())
        .await;
    let ready_after = started.elapsed();
    let (hwm_ready, rss_ready) = controller.memory_kib();
    let calls_to_ready = floor.calls().await.unwrap();
    eprintln!("ready all: {all_ready} after {ready_after:?}");

    // One resync interval (+10 %: resyncs are jittered ±10 %) after convergence.
    floor.reset_calls().await.unwrap();
    let requests_before = server.requests().len();
    let changes_before = censuses.changes();
    let cpu_before = controller.cpu_time();
    let window = mix.resync + mix.resync / 10;
    eprintln!("resync window of {window:?}");
    // A benchmark: waiting out one resync interval is the measurement.
    tokio::time::sleep(window).await;
    let resync_calls = floor.calls().await.unwrap();
    let cpu_resync = controller.cpu_time().saturating_sub(cpu_before);
    let requests = server.requests();
    let status_writes = requests[requests_before..]
        .iter()
        .filter(|r| r.starts_with("PATCH") && r.contains("/status"))
        .count();
    let kube_requests = requests.len() - requests_before;
    let changes = censuses.changes() - changes_before;
    let startup_requests = requests_before - requests_before_start;
    let (hwm, rss) = controller.memory_kib();
    let metrics = controller.scrape().await.unwrap_or_default();
    controller.stop().await;

    // The controller alone at 10,000 objects, however many moto could serve.
    let factor = (10_000 / mix.objects()).max(1);
    let alone = [
        ("LambdaStage", controller_alone(&stages, &dir, factor).await),
        ("StaticSite", controller_alone(&sites, &dir, factor).await),
        ("SpotFleet", controller_alone(&fleets, &dir, factor).await),
    ];
    // Through the proxy: in Lambda's pages, from its snapshot (moto's one page is ~12 s).
    let (listing_kib, listed) = listing_child(&floor.endpoint_url(), factor);

    // A restart over the converged objects (a new pod after a rollout): how long until every
    // object was reconciled once, with what memory. Converged statuses are not rewritten, so
    // the controller's own count of finished reconciles is the clock.
    let restarted_requests = server.requests().len();
    let mut restarted = StagehandProcess::start(&args, &[], &dir.join("restarted.log"));
    let restarting = Instant::now();
    let reconciled_once = restart_reconciles(&mut restarted, mix.objects()).await;
    let restart_after = restarting.elapsed();
    let (restart_hwm, _) = restarted.memory_kib();
    let restart_metrics = restarted.scrape().await.unwrap_or_default();
    let restart_status_writes = server.requests()[restarted_requests..]
        .iter()
        .filter(|r| r.starts_with("PATCH") && r.contains("/status"))
        .count();
    restarted.stop().await;

    println!(
        "## bench_scale: {} objects in one `stagehand run` ({})",
        mix.objects(),
        bench_support::process::stagehand_binary().display()
    );
    println!();
    println!(
        "mix: {} LambdaStages × {} functions ({} functions, {} artifact buckets), {} StaticSites (3 files each), {} SpotFleets (1–2 instances); resync {}s",
        mix.stages,
        mix.functions_per_stage,
        mix.stages * mix.functions_per_stage,
        ARTIFACT_BUCKETS,
        mix.sites,
        mix.fleets,
        mix.resync.as_secs()
    );
    println!(
        "seeding moto directly: {seeded:.1?} (Lambda {lambda_seeded:.1?}); creating the objects in the stand-in: {created:.1?}"
    );
    println!();
    println!("| what | figure |");
    println!("|---|---|");
    println!(
        "| every object observed once (status of its generation) | {observed_after:.1?} ({all_observed}) |"
    );
    for (kind, census) in &censuses.kinds {
        let census = census.lock().unwrap();
        println!(
            "| {kind}: first observed p50 / p90 / max | {:.1?} / {:.1?} / {:.1?} |",
            census.observed_percentile(50),
            census.observed_percentile(90),
            census.observed_percentile(100)
        );
    }
    println!("| every object Ready | {ready_after:.1?} ({all_ready}) |");
    println!(
        "| AWS calls until all observed / all Ready | {calls_to_observe} / {} |",
        total(&calls_to_ready)
    );
    println!(
        "| peak RSS (VmHWM) when all observed / Ready / after the resync | {:.1} / {:.1} / {:.1} MiB |",
        mib(hwm_observed),
        mib(hwm_ready),
        mib(hwm)
    );
    println!(
        "| RSS when all observed / Ready / after the resync | {:.1} / {:.1} / {:.1} MiB |",
        mib(rss_observed),
        mib(rss_ready),
        mib(rss)
    );
    let resync_total = total(&resync_calls);
    println!(
        "| AWS calls over one resync interval ({window:.0?}) | {resync_total} ({:.3} per object) |",
        resync_total as f64 / mix.objects() as f64
    );
    println!("| controller CPU over that interval | {cpu_resync:.1?} |");
    println!(
        "| Kubernetes requests over that interval | {kube_requests} (status writes {status_writes}, writes that changed an object {changes}) |"
    );
    println!("| Kubernetes requests from start to the resync | {startup_requests} |");
    for (kind, census) in &censuses.kinds {
        let census = census.lock().unwrap();
        println!(
            "| {kind}: observed / Ready / not Ready by reason | {} / {} / {:?} |",
            census.observed(),
            census.ready(),
            census.not_ready()
        );
    }
    println!(
        "| restart over the converged objects: every object reconciled once | {restart_after:.1?} ({reconciled_once}), peak RSS {:.1} MiB, status writes {restart_status_writes} |",
        mib(restart_hwm)
    );
    for (kind, (count, served, stripped)) in alone {
        println!(
            "| alone: {count} {kind}s held typed, heap per object with / without managed fields | {served:.1} / {stripped:.1} KiB ({:.1} / {:.1} MiB) |",
            served * count as f64 / 1024.0,
            stripped * count as f64 / 1024.0
        );
    }
    println!(
        "| alone: {listed} functions listed, as the Lambda inventory holds them | {listing_kib:.2} KiB each ({:.1} MiB) |",
        listing_kib * listed as f64 / 1024.0
    );
    println!();
    println!(
        "resync calls by operation: {}",
        bench_support::breakdown(&bench_support::by_operation(&resync_calls))
    );
    println!();
    println!(
        "calls until Ready by operation: {}",
        bench_support::breakdown(&bench_support::by_operation(&calls_to_ready))
    );
    println!();
    println!(
        "slowest operations until Ready (total wait): {}",
        bench_support::slowest(&calls_to_ready, 8)
    );
    println!();
    for (labels, value) in samples(&metrics, "controller_runtime_reconcile_total") {
        println!("reconcile_total{{{labels}}} {value}");
    }
    for (labels, value) in samples(&metrics, "controller_runtime_reconcile_time_seconds_sum") {
        let count = samples(&metrics, "controller_runtime_reconcile_time_seconds_count")
            .find(|(l, _)| *l == labels)
            .map_or(0.0, |(_, c)| c);
        println!(
            "reconcile time {{{labels}}}: {count} reconciles, mean {:.3} s",
            value / count.max(1.0)
        );
    }
    for (labels, value) in samples(&metrics, "stagehand_reconcile_queue_seconds_sum") {
        let count = samples(&metrics, "stagehand_reconcile_queue_seconds_count")
            .find(|(l, _)| *l == labels)
            .map_or(0.0, |(_, c)| c);
        println!(
            "queue wait {{{labels}}}: {count} reconciles, mean {:.3} s",
            value / count.max(1.0)
        );
    }
    for (labels, value) in samples(&restart_metrics, "stagehand_reconcile_queue_seconds_sum") {
        let count = samples(&restart_metrics, "stagehand_reconcile_queue_seconds_count")
            .find(|(l, _)| *l == labels)
            .map_or(0.0, |(_, c)| c);
        println!(
            "after the restart, queue wait {{{labels}}}: {count} reconciles, mean {:.3} s",
            value / count.max(1.0)
        );
    }
    println!();
    println!("series per metric family (more than 20):");
    for (family, count) in series_counts(&metrics).into_iter().filter(|(_, c)| *c > 20) {
        println!("  {family} {count}");
    }
    std::fs::remove_dir_all(&dir).ok();
}
