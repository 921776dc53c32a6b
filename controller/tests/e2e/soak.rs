//! The chaos soak's short variant (`make soak` runs the long one, see
//! `controller/examples/soak_support`): 9 objects (three of each kind) reconciled by two real
//! `stagehand run --leader-election` processes for a 30 s window of ~20% AWS faults, leader
//! SIGKILLs and spec changes; then faults off, and every invariant of the soak holds: all Ready,
//! no duplicate mapping, version, distribution or invalidation, no fleet above capacity +
//! maxSurge, every site file right, nothing left after deletion, no panic.

#![allow(
    clippy::unwrap_used,
    reason = "a test module: a panic with its location is the failure report we want"
)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::support::soak::replica::LeaderTimings;
use crate::support::soak::{SoakConfig, run};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nine_objects_survive_faults_kills_and_spec_changes_without_duplicates_or_orphans() {
    let _turn = crate::leader_failover::one_at_a_time().await;
    let report = run(SoakConfig {
        objects: 9,
        seed: 14,
        chaos: Duration::from_secs(30),
        kill_every: (Duration::from_secs(6), Duration::from_secs(10)),
        restart_after: (Duration::ZERO, Duration::from_secs(8)),
        change_every: Duration::from_millis(1500),
        settle: Duration::from_secs(90),
        timings: LeaderTimings {
            lease_duration: "4s",
            renew_deadline: "3s",
            retry_period: "250ms",
        },
        command: Arc::new(crate::cli::stagehand),
        scratch: PathBuf::from(env!("CARGO_TARGET_TMPDIR")),
    })
    .await;
    eprintln!("{}", report.render());
    assert!(report.violations.is_empty(), "{}", report.render());
    assert!(
        report.kills >= 2,
        "the leader was killed {} times",
        report.kills
    );
    assert!(report.changes >= 10, "{} spec changes", report.changes);
    assert!(report.faults_fired >= 50, "{} faults", report.faults_fired);
}
