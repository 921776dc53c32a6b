//! The chaos soak (issue 14), shared by `make soak` (`controller/examples/soak.rs`, N = 200) and
//! its short variant in `make test` (`controller/tests/e2e/soak.rs`).
//!
//! Two real `stagehand run --leader-election` processes reconcile a mix of LambdaStages (each
//! with its own CloudFormation stack, an SQS mapping and an alias publishing versions),
//! SpotFleets (Surge replacement) and StaticSites (a bucket and a distribution each) against
//! the API stand-in and moto behind the fault proxy. For a bounded window the proxy injects
//! ~20% faults and the in-progress states moto never shows, the leader is SIGKILLed right
//! after it was seen writing and restarted, and specs change (new builds, instance
//! replacements, site revisions and rollbacks). Then, faults off: everything must converge to
//! Ready, with no duplicate, no excess instance, no wrong site file; then everything is deleted
//! and nothing Stagehand owned may remain; and no process may have panicked.

pub mod audit;
pub mod chaos;
pub mod replica;
pub mod world;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::api::{DeleteParams, ListParams};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use self::chaos::{FleetPeaks, Replicas, lock};
use self::replica::{LeaderTimings, ReplicaOptions, writes};
use self::world::{Kind, NAMESPACE, REGION, World};

/// How a soak runs.
pub struct SoakConfig {
    pub objects: usize,
    pub seed: u64,
    /// How long faults, kills and spec changes go on.
    pub chaos: Duration,
    /// Between two kills of the leader: a random time within this range.
    pub kill_every: (Duration, Duration),
    /// From a kill to the restart of the killed replica: a random time within this range
    /// (shorter than the lease, the restarted process resumes its own lease; longer, the other
    /// replica has taken over).
    pub restart_after: (Duration, Duration),
    /// Between two spec changes.
    pub change_every: Duration,
    /// How long everything may take to be Ready once faults are off (and to go once deleted).
    pub settle: Duration,
    pub timings: LeaderTimings,
    /// `stagehand` with a clean environment, ready for `run ...`.
    pub command: Arc<dyn Fn() -> std::process::Command + Send + Sync>,
    /// Where the replicas' kubeconfig is written.
    pub scratch: PathBuf,
}

/// What a soak measured, and every invariant it found broken.
#[derive(Default)]
pub struct SoakReport {
    pub figures: Vec<(String, String)>,
    pub violations: Vec<String>,
    pub kills: u32,
    pub changes: u32,
    pub faults_fired: u64,
}

impl SoakReport {
    fn figure(&mut self, name: &str, value: impl std::fmt::Display) {
        self.figures.push((name.to_owned(), value.to_string()));
    }

    /// The figures as a two-column Markdown table, then the violations.
    pub fn render(&self) -> String {
        let mut out = String::from("| figure | value |\n|---|---|\n");
        for (name, value) in &self.figures {
            let _ = writeln!(out, "| {name} | {value} |");
        }
        let _ = writeln!(out, "\nviolations: {}", self.violations.len());
        for violation in &self.violations {
            let _ = writeln!(out, "- {violation}");
        }
        out
    }
}

/// Runs the soak; the report holds every violation instead of panicking on the first.
pub async fn run(config: SoakConfig) -> SoakReport {
    let mut report = SoakReport::default();
    let mut rng = StdRng::seed_from_u64(config.seed);
    let started = Instant::now();
    let mut world = World::start(config.objects).await;
    report.figure("objects", mix(&world));
    report.figure("seeded in", format!("{:.1?}", started.elapsed()));
    let peaks: FleetPeaks = Arc::default();
    let sampler = chaos::sample_fleets(&world.direct, peaks.clone());
    let mut replicas = replicas(&world, &config);
    replicas.start(0);
    replicas.start(1);

    let rules = chaos::fault_rules(config.seed);
    for rule in &rules {
        world.floor.add_fault(rule).await.unwrap();
    }
    world.create_all().await;
    progress(
        started,
        "objects created; faults on, kills and spec changes begin",
    );
    let chaos_started = Instant::now();
    let changes = chaos_window(&mut world, &mut replicas, &config, &mut rng).await;
    report.changes = changes.values().sum();
    report.figure(
        "spec changes (and instances impaired)",
        format!("{changes:?}"),
    );
    report.figure("chaos window", format!("{:?}", config.chaos));
    faults_figures(&world, &mut report).await;
    world.floor.clear_faults().await.unwrap();
    for slot in 0..2 {
        if replicas.live[slot].is_none() {
            replicas.start(slot);
        }
    }
    report.kills = replicas.kills;
    report.figure(
        "leader kills (SIGKILL, each right after a write was seen)",
        replicas.kills,
    );

    progress(started, "faults off; waiting until every object is Ready");
    let settling = Instant::now();
    let waiting = settle(&mut world, &mut replicas, config.settle).await;
    report.figure(
        "time to converge after faults off",
        format!("{:.1?}", settling.elapsed()),
    );
    report.figure(
        "soak until converged",
        format!("{:.1?}", chaos_started.elapsed()),
    );
    report.figure("objects not Ready when the bound ran out", waiting.len());
    report.violations.extend(listed("not Ready", &waiting));
    world.read_log();
    let peaks_seen = lock(&peaks).clone();
    let converged = audit::converged(&world, &peaks_seen).await;
    report.violations.extend(converged.violations);
    for (name, n) in converged.figures {
        report.figure(name, n);
    }

    progress(started, "audited; deleting every object");
    let deleting = Instant::now();
    delete_all(&world).await;
    let (left, gone_by_kind) = wait_gone(&mut world, &mut replicas, config.settle).await;
    report.figure(
        "deletion of every object",
        format!("{:.1?}", deleting.elapsed()),
    );
    report.figure("deletion, last of each kind gone after", gone_by_kind);
    report.violations.extend(listed("never deleted", &left));
    let orphans = audit::orphans(&world.direct).await;
    report.violations.extend(orphans.violations);

    replicas.stop().await;
    sampler.abort();
    world.read_log();
    calls_figures(&world, &replicas, &mut report).await;
    let panics = replicas.count("panicked");
    report.figure("panics in the replicas' logs", panics);
    if panics > 0 {
        report.violations.push(format!("{panics} panics logged"));
    }
    report
}

/// The first ten of `objects` as violations, then how many more.
fn listed(what: &str, objects: &[String]) -> Vec<String> {
    let mut lines: Vec<String> = objects
        .iter()
        .take(10)
        .map(|o| format!("{what}: {o}"))
        .collect();
    if objects.len() > 10 {
        lines.push(format!("... and {} more {what}", objects.len() - 10));
    }
    lines
}

/// A line on stderr per phase: a soak of 200 objects runs for minutes.
fn progress(started: Instant, what: &str) {
    eprintln!("soak [{:>6.1?}] {what}", started.elapsed());
}

fn replicas(world: &World, config: &SoakConfig) -> Replicas {
    std::fs::create_dir_all(&config.scratch).unwrap();
    let kubeconfig = config
        .scratch
        .join(format!("soak-{}.kubeconfig", std::process::id()));
    std::fs::write(&kubeconfig, world.server.kubeconfig_yaml()).unwrap();
    Replicas {
        names: ["replica-a", "replica-b"],
        live: [None, None],
        retired: Vec::new(),
        command: config.command.clone(),
        options: ReplicaOptions {
            aws_endpoint_url: world.floor.endpoint_url(),
            region: REGION.to_owned(),
            namespace: NAMESPACE.to_owned(),
            timings: config.timings,
            inventory_max_age: "2s",
            extra_env: Vec::new(),
        },
        kubeconfig,
        kills: 0,
        exits: 0,
    }
}

fn mix(world: &World) -> String {
    let count = |kind| world.objects.iter().filter(|o| o.kind == kind).count();
    format!(
        "{} ({} LambdaStages, {} SpotFleets, {} StaticSites)",
        world.objects.len(),
        count(Kind::LambdaStage),
        count(Kind::SpotFleet),
        count(Kind::StaticSite)
    )
}

/// Faults are on: kills the leader at random moments (right after it was seen writing) and
/// restarts it, and changes specs, until the window closes. Returns the changes made by kind.
async fn chaos_window(
    world: &mut World,
    replicas: &mut Replicas,
    config: &SoakConfig,
    rng: &mut StdRng,
) -> BTreeMap<&'static str, u32> {
    let end = Instant::now() + config.chaos;
    let mut changes = BTreeMap::new();
    let mut next_kill = Instant::now() + between(rng, config.kill_every);
    let mut dead: Option<(usize, Instant)> = None;
    while Instant::now() < end {
        tokio::time::sleep(config.change_every).await;
        world.read_log();
        let at = rng.random_range(0..world.objects.len());
        *changes.entry(world.change(at, rng).await).or_default() += 1;
        replicas.restart_exited();
        if rng.random_ratio(1, 20)
            && chaos::impair_one(world.floor.admin(), &world.direct, rng)
                .await
                .is_some()
        {
            *changes.entry("instance impaired").or_default() += 1;
        }
        if let Some((slot, restart_at)) = dead
            && Instant::now() >= restart_at
        {
            replicas.start(slot);
            dead = None;
        }
        if dead.is_none() && Instant::now() >= next_kill {
            dead = kill_leader(world, replicas, rng)
                .await
                .map(|slot| (slot, Instant::now() + between(rng, config.restart_after)));
            next_kill = Instant::now() + between(rng, config.kill_every);
        }
    }
    changes
}

/// SIGKILLs the leader once it is seen writing (within 300 ms of that, at random); the slot
/// killed.
async fn kill_leader(
    world: &mut World,
    replicas: &mut Replicas,
    rng: &mut StdRng,
) -> Option<usize> {
    let leader = chaos::leader(world.server.client()).await?;
    let slot = replicas.slot(&leader)?;
    replicas.live[slot].as_ref()?;
    let before = world.log.last_write_by(&leader);
    let proxy = world.floor.proxy();
    if !chaos::wait_write(
        &mut world.log,
        proxy,
        &leader,
        before,
        Duration::from_secs(5),
    )
    .await
    {
        return None;
    }
    tokio::time::sleep(Duration::from_millis(rng.random_range(0..300))).await;
    replicas.kill(slot).await;
    Some(slot)
}

fn between(rng: &mut StdRng, (low, high): (Duration, Duration)) -> Duration {
    low + high.saturating_sub(low).mul_f64(rng.random::<f64>())
}

/// Waits (at most `within`) until every object is Ready at its generation; what is not.
async fn settle(world: &mut World, replicas: &mut Replicas, within: Duration) -> Vec<String> {
    let deadline = Instant::now() + within;
    loop {
        replicas.restart_exited();
        world.read_log();
        let waiting = audit::not_ready(world).await;
        if waiting.is_empty() || Instant::now() >= deadline {
            return waiting;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn delete_all(world: &World) {
    for object in &world.objects {
        object
            .kind
            .api(world.server.client())
            .delete(&object.name(), &DeleteParams::default())
            .await
            .unwrap();
    }
}

/// Waits (at most `within`) until no object is left; those left (with their status message),
/// and when the last object of each kind went.
async fn wait_gone(
    world: &mut World,
    replicas: &mut Replicas,
    within: Duration,
) -> (Vec<String>, String) {
    let started = Instant::now();
    let deadline = started + within;
    let mut gone: BTreeMap<&'static str, Duration> = BTreeMap::new();
    loop {
        replicas.restart_exited();
        world.read_log();
        let mut left = Vec::new();
        for kind in Kind::ALL {
            let listed = kind
                .api(world.server.client())
                .list(&ListParams::default())
                .await;
            let listed = listed.map(|l| l.items).unwrap_or_default();
            if listed.is_empty() {
                gone.entry(kind.name()).or_insert_with(|| started.elapsed());
            }
            for object in listed {
                let name = object.metadata.name.unwrap_or_default();
                left.push(format!(
                    "{}/{name}: {}",
                    kind.name(),
                    object.data["status"]["message"]
                ));
            }
        }
        if left.is_empty() || Instant::now() >= deadline {
            let gone = gone
                .iter()
                .map(|(kind, after)| format!("{kind} {after:.1?}"));
            return (left, gone.collect::<Vec<_>>().join(", "));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Faults fired during the window, by kind.
async fn faults_figures(world: &World, report: &mut SoakReport) {
    let mut fired: BTreeMap<String, u64> = BTreeMap::new();
    for status in world.floor.faults().await.unwrap() {
        *fired
            .entry(chaos::fault_kind(&status.rule.action))
            .or_default() += status.fired;
    }
    report.faults_fired = fired.values().sum();
    let calls = world.floor.calls().await.map_or(0, |c| c.total);
    report.figure("AWS calls during the fault window", calls);
    report.figure("faults injected", report.faults_fired);
    report.figure("faults by kind", format!("{fired:?}"));
}

/// AWS calls by service and by replica, and the writes the fence refused.
async fn calls_figures(world: &World, replicas: &Replicas, report: &mut SoakReport) {
    let calls = world.floor.calls().await.unwrap();
    let mut by_service: BTreeMap<String, u64> = BTreeMap::new();
    for stats in calls.calls.values() {
        *by_service.entry(stats.service.clone()).or_default() += stats.count;
    }
    report.figure("AWS calls (whole soak)", calls.total);
    report.figure("AWS calls by service", format!("{by_service:?}"));
    let log = &world.log;
    let by_replica: Vec<String> = replicas
        .names
        .iter()
        .map(|name| format!("{name} {} writes", writes(&log.records, name).len()))
        .collect();
    report.figure("AWS writes by replica", by_replica.join(", "));
    report.figure("calls missing from the kept log", log.gaps);
    report.figure(
        "writes refused by the leader fence (log lines)",
        replicas.count("AWS write refused by the leader fence"),
    );
    report.figure("replica processes run", replicas.all().count());
    report.figure("replica exits on their own (restarted)", replicas.exits);
}
