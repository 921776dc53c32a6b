//! What the soak does to the replicas while they work: AWS faults through the proxy (seeded
//! probabilities), SIGKILLs of the leader right after it was seen writing, and restarts; and
//! what it records meanwhile: the proxy's whole call log (the proxy keeps only the last 10,000
//! calls, so it is read every second and kept here) and the most instances each fleet ever had.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_ec2::types::{Filter, Reservation};
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;
use rand::Rng;
use rand::rngs::StdRng;
use stagehand_crds::OWNER_TAG;
use stagehand_testenv::aws::{AdminClient, CallRecord, FaultAction, FaultProxy, FaultRule};

use super::replica::{Replica, ReplicaOptions, app_id};

/// The Lease both replicas compete for (`stagehand run`'s default name).
const LEASE: &str = "stagehand-leader";

/// The fault mix: ~20% of AWS calls are affected. Throttling, 5xx and resets end a call before
/// it reaches moto (so a faulted write never happens); latency delays it. Each rule draws from
/// its own seeded RNG, so a seed and a call sequence give the same faults.
pub fn fault_rules(seed: u64) -> Vec<FaultRule> {
    let any = |action: FaultAction, p: f64, n: u64| FaultRule::new(action).probability(p, seed + n);
    vec![
        any(FaultAction::latency(Duration::from_millis(300)), 0.05, 1),
        any(FaultAction::throttle(), 0.07, 2),
        any(FaultAction::error(500), 0.04, 3),
        any(FaultAction::error(503), 0.03, 4),
        any(FaultAction::Reset, 0.03, 5),
        // The in-progress states moto never shows.
        any(FaultAction::lambda_in_progress(), 0.15, 6),
        any(FaultAction::invalidation_in_progress(), 0.5, 7),
        // moto completes an invalidation as it creates it: half are created InProgress, so
        // that the controller waits for them and reads them again (then the rule above).
        any(FaultAction::invalidation_in_progress(), 0.5, 9)
            .service("cloudfront")
            .operation("CreateInvalidation"),
        any(
            FaultAction::stack_status("UPDATE_IN_PROGRESS", None),
            0.1,
            8,
        ),
    ]
}

/// A live fleet instance's status check goes impaired (from now on, as EC2 would report a host
/// gone bad); its id.
pub async fn impair_one(
    admin: &AdminClient,
    direct: &SdkConfig,
    rng: &mut StdRng,
) -> Option<String> {
    let live = live_instances(&aws_sdk_ec2::Client::new(direct)).await?;
    let id = live
        .keys()
        .nth(rng.random_range(0..live.len().max(1)))?
        .clone();
    let rule = FaultRule::new(FaultAction::instance_impaired(&id));
    admin.add_fault(&rule).await.ok()?;
    Some(id)
}

/// The fault kind a rule's fired count is reported under.
pub fn fault_kind(action: &FaultAction) -> String {
    match action {
        FaultAction::Throttle { .. } => "throttle".into(),
        FaultAction::Error { status, .. } => format!("error {status}"),
        FaultAction::Latency { .. } => "latency".into(),
        FaultAction::Reset => "connection reset".into(),
        FaultAction::StackStatus { status, .. } => format!("stack {status}"),
        FaultAction::LambdaStatus { .. } => "lambda InProgress".into(),
        FaultAction::InvalidationStatus { .. } => "invalidation InProgress".into(),
        FaultAction::InstanceStatus { .. } => "instance impaired".into(),
        other => format!("{other:?}"),
    }
}

/// The proxy's call log, kept whole: the proxy keeps the last 10,000 calls, so the soak reads
/// what is new every time it waits (at least every second); `gaps` counts calls that fell out
/// between two reads (then the log-based counts are lower bounds, and the report says so).
#[derive(Default)]
pub struct CallLog {
    pub records: Vec<CallRecord>,
    pub gaps: u64,
}

impl CallLog {
    /// Appends what the proxy logged since the last read.
    pub fn read(&mut self, proxy: &FaultProxy) {
        let last = self.records.last().map_or(0, |r| r.seq);
        let fresh = proxy.log_since(last);
        if let Some(first) = fresh.first() {
            self.gaps += first.seq - last - 1;
        }
        self.records.extend(fresh);
    }

    /// The sequence number of the newest write by replica `name`.
    pub fn last_write_by(&self, name: &str) -> Option<u64> {
        let app = app_id(name);
        self.records
            .iter()
            .rev()
            .find(|r| {
                r.client.as_deref() == Some(app.as_str())
                    && stagehand::aws::fence::is_write(&r.operation)
            })
            .map(|r| r.seq)
    }
}

pub fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Most live (not shutting down or terminated) instances seen per owner.
pub type FleetPeaks = Arc<Mutex<BTreeMap<String, usize>>>;

/// Samples EC2 straight from moto every 500 ms: live instances per owner tag.
pub fn sample_fleets(direct: &SdkConfig, peaks: FleetPeaks) -> tokio::task::JoinHandle<()> {
    let ec2 = aws_sdk_ec2::Client::new(direct);
    tokio::spawn(async move {
        loop {
            if let Some(live) = live_instances(&ec2).await {
                let mut counts: BTreeMap<String, usize> = BTreeMap::new();
                for owner in live.into_values() {
                    *counts.entry(owner).or_default() += 1;
                }
                let mut peaks = lock(&peaks);
                for (owner, count) in counts {
                    let peak = peaks.entry(owner).or_default();
                    *peak = (*peak).max(count);
                }
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    })
}

/// Live instances carrying an owner tag: id → owner.
pub async fn live_instances(ec2: &aws_sdk_ec2::Client) -> Option<BTreeMap<String, String>> {
    let live = Filter::builder()
        .name("instance-state-name")
        .values("pending")
        .values("running")
        .values("stopping")
        .values("stopped")
        .build();
    // Every page: moto, like EC2, answers at most 100 reservations per call (200 objects
    // make more).
    let pages: Vec<_> = ec2
        .describe_instances()
        .filters(Filter::builder().name("tag-key").values(OWNER_TAG).build())
        .filters(live)
        .into_paginator()
        .send()
        .collect()
        .await;
    let mut instances = BTreeMap::new();
    for page in pages {
        for instance in page
            .ok()?
            .reservations()
            .iter()
            .flat_map(Reservation::instances)
        {
            let owner = instance.tags().iter().find(|t| t.key() == Some(OWNER_TAG));
            if let (Some(id), Some(owner)) = (instance.instance_id(), owner.and_then(|t| t.value()))
            {
                instances.insert(id.to_owned(), owner.to_owned());
            }
        }
    }
    Some(instances)
}

/// The two replica slots: what runs now, and every process that ran before (killed ones'
/// logs are part of the audit).
pub struct Replicas {
    pub names: [&'static str; 2],
    pub live: [Option<Replica>; 2],
    pub retired: Vec<Replica>,
    pub command: Arc<dyn Fn() -> std::process::Command + Send + Sync>,
    pub options: ReplicaOptions,
    pub kubeconfig: PathBuf,
    pub kills: u32,
    /// Processes that ended on their own and were restarted (as Kubernetes restarts a
    /// container).
    pub exits: u32,
}

impl Replicas {
    pub fn start(&mut self, slot: usize) {
        let replica = Replica::start(
            (self.command)(),
            self.names[slot],
            &self.kubeconfig,
            &self.options,
        );
        if let Some(old) = self.live[slot].replace(replica) {
            self.retired.push(old);
        }
    }

    /// Restarts every replica whose process ended on its own.
    pub fn restart_exited(&mut self) {
        for slot in 0..2 {
            if self.live[slot].as_mut().is_some_and(Replica::has_exited) {
                self.exits += 1;
                self.start(slot);
            }
        }
    }

    /// The slot of replica `name`.
    pub fn slot(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| *n == name)
    }

    /// SIGKILLs the replica in `slot` (no lease release, requests in flight abandoned).
    pub async fn kill(&mut self, slot: usize) {
        if let Some(mut replica) = self.live[slot].take() {
            replica.signal("-KILL");
            replica.exited(Duration::from_secs(30)).await;
            self.retired.push(replica);
            self.kills += 1;
        }
    }

    /// Every process that ran, live or not.
    pub fn all(&self) -> impl Iterator<Item = &Replica> {
        self.live.iter().flatten().chain(self.retired.iter())
    }

    /// Log lines containing `message`, over every process.
    pub fn count(&self, message: &str) -> usize {
        self.all().map(|r| r.count(message)).sum()
    }

    /// SIGTERMs the live replicas and waits for them.
    pub async fn stop(&mut self) {
        for slot in 0..2 {
            if let Some(mut replica) = self.live[slot].take() {
                replica.signal("-TERM");
                replica.exited(Duration::from_secs(60)).await;
                self.retired.push(replica);
            }
        }
    }
}

/// The lease's holder.
pub async fn leader(client: kube::Client) -> Option<String> {
    Api::<Lease>::namespaced(client, "default")
        .get_opt(LEASE)
        .await
        .ok()
        .flatten()
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity)
}

/// Waits (at most `within`) until the log shows a write by `name` newer than `after`: the
/// moment to kill it in the middle of its actions.
pub async fn wait_write(
    log: &mut CallLog,
    proxy: &FaultProxy,
    name: &str,
    after: Option<u64>,
    within: Duration,
) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < deadline {
        log.read(proxy);
        if log.last_write_by(name) > after {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}
