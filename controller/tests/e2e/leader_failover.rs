//! Two real `stagehand run --leader-election` processes against the API stand-in and moto, with
//! short timings (lease 4 s, renew deadline 3 s, renewals every 1 s, retry 250 ms), while a driver keeps changing a
//! LambdaStage's spec so that whoever leads keeps writing to AWS:
//! - a leader frozen with SIGSTOP is replaced, and once thawed writes nothing and exits;
//! - a leader cut off from the API server (its own door to the stand-in shut) stops before the
//!   standby takes over;
//! - clocks skewed a minute apart both ways never let the standby take a live lease, and a
//!   killed leader is replaced within one lease duration.
//!
//! Each asserts from the records of what the replicas did — the proxy's log of AWS writes,
//! tagged per process by the SDK's user agent (`AWS_SDK_UA_APP_ID`) — that no two replicas
//! wrote in overlapping intervals, and measures the takeover from the lease as the test saw it.

#![allow(
    clippy::unwrap_used,
    clippy::too_many_lines,
    reason = "a test module: a panic with its location is the failure report we want"
)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;
use serde_json::json;
use stagehand_testenv::aws::CallRecord;
use stagehand_testenv::door::{Door, Passage};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::support::soak::replica::{LeaderTimings, Replica, ReplicaOptions, writes};
use crate::support::{Env, REGION, TIMEOUT, chalice_stage, merge_spec, ready, seed};

const LEASE: &str = "stagehand-leader";
const LEASE_DURATION: Duration = Duration::from_secs(4);
const RETRY_PERIOD: Duration = Duration::from_millis(250);
const STAGE: &str = "shop-api-dev";

/// Leader election as the failover suites time it.
const TIMINGS: LeaderTimings = LeaderTimings {
    lease_duration: "4s",
    renew_deadline: "3s",
    retry_period: "250ms",
};

/// Starts replica `name` of `stagehand run --leader-election` on the floor of `env`, talking
/// to the API server at `kubeconfig`.
fn start_replica(
    env: &Env,
    name: &'static str,
    kubeconfig: &Path,
    extra_env: &[(&str, &str)],
) -> Replica {
    let options = ReplicaOptions {
        aws_endpoint_url: env.floor.endpoint_url(),
        region: REGION.to_owned(),
        namespace: crate::support::NAMESPACE.to_owned(),
        timings: TIMINGS,
        inventory_max_age: "1s",
        extra_env: extra_env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    };
    Replica::start(crate::cli::stagehand(), name, kubeconfig, &options)
}

/// The real-process suites run one at a time: each runs two controllers, moto and the
/// stand-in, and on a loaded machine three at once starve the renewals they are timing.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// This suite's turn (the chaos soak runs two replicas too, and takes turns with it).
pub async fn one_at_a_time() -> tokio::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().await
}

/// The lease's holder and a version that changes with every renewal.
async fn lease(env: &Env) -> (Option<String>, Option<String>) {
    let lease = Api::<Lease>::namespaced(env.server.client(), "default")
        .get_opt(LEASE)
        .await
        .unwrap();
    let holder = lease
        .as_ref()
        .and_then(|l| l.spec.as_ref())
        .and_then(|s| s.holder_identity.clone());
    let version = lease.and_then(|l| l.metadata.resource_version);
    (holder, version)
}

/// Watches the lease until `replica` holds it; returns once the watch has seen a renewal
/// (so that the old holder's last renewal is timed by the test, not guessed) with the handle
/// giving the takeover time: from the old holder's last renewal to the new holder, both as the
/// test saw them (20 ms polls).
async fn watch_takeover(
    env: &Arc<Env>,
    replica: &'static str,
) -> tokio::task::JoinHandle<Duration> {
    let env = env.clone();
    let (armed, watching) = tokio::sync::oneshot::channel();
    let watch = tokio::spawn(async move {
        let mut armed = Some(armed);
        let mut last_change = Instant::now();
        let mut last_version = lease(&env).await.1;
        let waited = tokio::time::timeout(TIMEOUT, async {
            loop {
                let (holder, version) = lease(&env).await;
                if holder.as_deref() == Some(replica) {
                    return last_change.elapsed();
                }
                if version != last_version {
                    last_version = version;
                    last_change = Instant::now();
                    if let Some(armed) = armed.take() {
                        let _ = armed.send(());
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        waited.unwrap_or_else(|_| panic!("{replica} never took the lease"))
    });
    tokio::time::timeout(TIMEOUT, watching)
        .await
        .expect("the leader renews")
        .expect("the watch saw a renewal");
    watch
}

/// The takeover (see [`watch_takeover`]) took at most one lease duration (plus the standby's
/// retry period and the test's polling).
async fn assert_takeover(watch: tokio::task::JoinHandle<Duration>, what: &str) -> Duration {
    let takeover = watch.await.unwrap();
    eprintln!("{what}: replaced {takeover:?} after its last renewal");
    assert!(
        takeover <= LEASE_DURATION + RETRY_PERIOD + Duration::from_millis(500),
        "{what}: takeover took {takeover:?}"
    );
    takeover
}

/// Keeps changing the stage's spec (a new `EPOCH` in its environment), each change once the
/// previous one is in AWS, so that whoever leads keeps writing.
fn drive(env: &Arc<Env>) -> (tokio::task::JoinHandle<u64>, Arc<Notify>) {
    let stop = Arc::new(Notify::new());
    let (env, stopped) = (env.clone(), stop.clone());
    let driver = tokio::spawn(async move {
        let mut epoch = 0_u64;
        loop {
            epoch += 1;
            merge_spec(
                &env,
                STAGE,
                json!({"environment": {"EPOCH": epoch.to_string()}}),
            )
            .await;
            let applied = async {
                loop {
                    let function = env.function(crate::support::API).await;
                    let value = function
                        .environment()
                        .and_then(|e| e.variables())
                        .and_then(|v| v.get("EPOCH").cloned());
                    if value == Some(epoch.to_string()) {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            };
            tokio::select! {
                () = applied => {}
                () = stopped.notified() => return epoch,
            }
        }
    });
    (driver, stop)
}

/// How each failover test ends: replica-a's writes all came before replica-b's (the proxy's
/// whole log), and replica-b, the leader now, stops cleanly on SIGTERM.
async fn end_with_no_overlap(env: &Env, b: &mut Replica) {
    assert_no_overlap(
        &env.floor.admin().log().await.unwrap(),
        "replica-a",
        "replica-b",
    );
    b.signal("-TERM");
    assert_eq!(b.exited(TIMEOUT).await, Some(0));
}

/// Every write of `first` came before every write of `second` (the proxy's sequence).
fn assert_no_overlap(log: &[CallRecord], first: &str, second: &str) {
    let (a, b) = (writes(log, first), writes(log, second));
    assert!(
        !a.is_empty() && !b.is_empty(),
        "both replicas must have written: {first} {}, {second} {}",
        a.len(),
        b.len()
    );
    let last_a = a.iter().map(|r| r.seq).max().unwrap();
    let first_b = b.iter().map(|r| r.seq).min().unwrap();
    assert!(
        last_a < first_b,
        "{first} wrote (seq {last_a}) after {second} started writing (seq {first_b}): {:#?}",
        log.iter()
            .filter(|r| r.seq >= first_b && r.seq <= last_a)
            .collect::<Vec<_>>()
    );
    eprintln!(
        "writes: {first} {} (last seq {last_a}), {second} {} (first seq {first_b})",
        a.len(),
        b.len()
    );
}

/// The stand-in with the CRDs, moto seeded with the Chalice account, the stage created.
async fn floor() -> (Arc<Env>, tokio::sync::MutexGuard<'static, ()>) {
    let turn = one_at_a_time().await;
    let env = Env::start().await;
    seed(&env).await;
    env.create(&chalice_stage(STAGE, "Retain", None)).await;
    (Arc::new(env), turn)
}

fn kubeconfig(name: &str, yaml: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("failover-{}-{name}.kubeconfig", std::process::id()));
    std::fs::write(&path, yaml).unwrap();
    path
}

/// Starts `a` (leading once it logs so) then `b` (standby), both through their own doors.
async fn pair(
    env: &Env,
    a_env: &[(&str, &str)],
    b_env: &[(&str, &str)],
) -> (Replica, Door, Replica) {
    let door = env.server.door().await.unwrap();
    let a = start_replica(
        env,
        "replica-a",
        &kubeconfig("a", &door.kubeconfig_yaml()),
        a_env,
    );
    a.wait_log("leading: starting controllers", TIMEOUT).await;
    let b = start_replica(
        env,
        "replica-b",
        &kubeconfig("b", &env.server.kubeconfig_yaml()),
        b_env,
    );
    b.wait_log("standby: another replica leads", TIMEOUT).await;
    env.wait_for(STAGE, "Ready under replica-a", ready).await;
    (a, door, b)
}

/// Waits until the driver's changes are written by `replica`.
async fn wait_writing(env: &Env, replica: &str) {
    let floor = env.floor.admin();
    env.wait_aws(&format!("{replica} writing"), || async {
        let log = floor.log().await.unwrap();
        writes(&log, replica)
            .iter()
            .any(|r| r.operation == "UpdateFunctionConfiguration")
            .then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_leader_is_replaced_and_writes_nothing_once_thawed() {
    let (env, _turn) = floor().await;
    let (mut a, _door, mut b) = pair(&env, &[], &[]).await;
    let (driver, stop) = drive(&env);
    wait_writing(&env, "replica-a").await;

    let watch = watch_takeover(&env, "replica-b").await;
    a.signal("-STOP");
    assert_takeover(watch, "frozen leader").await;
    wait_writing(&env, "replica-b").await;

    // Thawed: its timers have all fired; its queued reconciles meet a closed fence, its next
    // renewal finds the lease taken, and it exits for a restart as a standby.
    a.signal("-CONT");
    assert_ne!(
        a.exited(TIMEOUT).await,
        Some(0),
        "a deposed leader exits non-zero"
    );
    a.wait_log("leadership lost", TIMEOUT).await;
    stop.notify_one();
    let epochs = driver.await.unwrap();
    eprintln!(
        "driver: {epochs} spec changes; fence refusals logged by the thawed leader: {}",
        a.count("AWS write refused by the leader fence")
    );
    env.wait_for(STAGE, "Ready under replica-b", ready).await;
    end_with_no_overlap(&env, &mut b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_off_from_the_api_server_stops_before_the_standby_leads() {
    let (env, _turn) = floor().await;
    let (mut a, door, mut b) = pair(&env, &[], &[]).await;
    let (driver, stop) = drive(&env);
    wait_writing(&env, "replica-a").await;

    // Only replica-a's way to the API server is cut: its renewals hang, AWS stays reachable.
    let watch = watch_takeover(&env, "replica-b").await;
    door.set(Passage::Shut);
    assert_takeover(watch, "partitioned leader").await;
    let lost = a.wait_log("leadership lost", TIMEOUT).await;
    let leading = b.wait_log("leading: starting controllers", TIMEOUT).await;
    // Same machine, same clock: the old leader had stopped writing before the new one led.
    let (lost_at, leading_at) = (
        lost["timestamp"].as_str().unwrap(),
        leading["timestamp"].as_str().unwrap(),
    );
    eprintln!("replica-a lost at {lost_at}, replica-b leading at {leading_at}");
    assert!(
        lost_at < leading_at,
        "replica-a lost at {lost_at}, replica-b led at {leading_at}"
    );
    assert_eq!(
        lost["reason"],
        "the lease could not be renewed within the renew deadline"
    );
    assert_ne!(a.exited(TIMEOUT).await, Some(0));
    wait_writing(&env, "replica-b").await;
    stop.notify_one();
    driver.await.unwrap();
    end_with_no_overlap(&env, &mut b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skewed_clocks_never_let_a_standby_take_a_live_lease() {
    let (env, _turn) = floor().await;
    // replica-a's clock a minute behind, replica-b's a minute ahead: to a rule comparing wall
    // clocks, replica-a's fresh renewals look two minutes old.
    let offset = stagehand::runtime::leader::CLOCK_OFFSET_ENV;
    let (mut a, _door, mut b) = pair(&env, &[(offset, "-60s")], &[(offset, "60s")]).await;
    let (driver, stop) = drive(&env);

    // Three lease durations of renewals by replica-a, replica-b standing by all along.
    let watched = Instant::now();
    let mut renewals = 0;
    let mut last = lease(&env).await.1;
    while watched.elapsed() < 3 * LEASE_DURATION {
        let (holder, version) = lease(&env).await;
        assert_eq!(
            holder.as_deref(),
            Some("replica-a"),
            "the standby took a live lease"
        );
        if version != last {
            renewals += 1;
            last = version;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        renewals >= 5,
        "{renewals} renewals in {:?}",
        watched.elapsed()
    );
    assert!(
        b.find("leading").is_none(),
        "replica-b led beside replica-a"
    );
    wait_writing(&env, "replica-a").await;

    // A dead leader (SIGKILL: no release) is replaced within a lease duration all the same.
    let watch = watch_takeover(&env, "replica-b").await;
    a.signal("-KILL");
    assert_takeover(watch, "killed skewed leader").await;
    a.exited(TIMEOUT).await;
    wait_writing(&env, "replica-b").await;
    stop.notify_one();
    driver.await.unwrap();
    end_with_no_overlap(&env, &mut b).await;
}
