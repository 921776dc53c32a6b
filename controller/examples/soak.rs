//! The chaos soak (`make soak`): N objects (default 200: LambdaStages, SpotFleets and
//! StaticSites in equal parts) reconciled by two `stagehand run --leader-election` replicas
//! while the proxy injects ~20% AWS faults, the leader is SIGKILLed and restarted and specs
//! change; then faults off, convergence, the invariants, deletion and the orphan check (see
//! `soak_support`). Prints the figures as a Markdown table (docs/benchmarks.md, "Chaos soak")
//! and exits non-zero when an invariant broke.
//!
//! `cargo run -p stagehand --example soak -- [--objects N] [--seed S] [--chaos SECONDS]`; runs
//! the `stagehand` binary built beside it (`cargo build -p stagehand` first, as `make soak`
//! does) or `$STAGEHAND_BIN`.

#![allow(
    clippy::unwrap_used,
    reason = "a benchmark binary: a panic with its location is the report we want"
)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[allow(
    dead_code,
    reason = "shared with the e2e suites, which use other parts of it"
)]
mod soak_support;

use soak_support::SoakConfig;
use soak_support::replica::LeaderTimings;

/// `--name value` from the command line, parsed.
fn arg<T: std::str::FromStr>(name: &str, default: T) -> T {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map_or(default, |v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name} {v}: not a valid value"))
        })
}

/// The `stagehand` binary: `$STAGEHAND_BIN`, else the one cargo built beside this example
/// (`target/debug/stagehand` for `target/debug/examples/soak`).
fn stagehand_binary() -> PathBuf {
    std::env::var_os("STAGEHAND_BIN").map_or_else(
        || {
            let exe = std::env::current_exe().unwrap();
            exe.parent()
                .and_then(|p| p.parent())
                .unwrap()
                .join("stagehand")
        },
        PathBuf::from,
    )
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()))
        .init();
    let binary = stagehand_binary();
    assert!(
        binary.exists(),
        "{} missing: cargo build -p stagehand",
        binary.display()
    );
    let scratch = std::env::temp_dir().join(format!("stagehand-soak-{}", std::process::id()));
    let home = scratch.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let command = move || {
        let mut command = std::process::Command::new(&binary);
        command
            .env_clear()
            .env("HOME", &home)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("RUST_BACKTRACE", "1");
        command
    };
    let objects = arg("--objects", 200);
    let config = SoakConfig {
        objects,
        seed: arg("--seed", 14),
        chaos: Duration::from_secs(arg("--chaos", 180)),
        kill_every: (Duration::from_secs(15), Duration::from_secs(40)),
        restart_after: (Duration::ZERO, Duration::from_secs(30)),
        change_every: Duration::from_millis(500),
        settle: Duration::from_secs(arg("--settle", 600)),
        // `stagehand run`'s defaults: a soak of 200 objects on a shared 2-core machine starves
        // the replicas now and then, and shorter leases would turn that into failovers.
        timings: LeaderTimings {
            lease_duration: "15s",
            renew_deadline: "10s",
            retry_period: "2s",
        },
        command: Arc::new(command),
        scratch: scratch.clone(),
    };
    let report = soak_support::run(config).await;
    println!("## Chaos soak: {objects} objects\n\n{}", report.render());
    std::fs::remove_dir_all(&scratch).ok();
    if !report.violations.is_empty() {
        std::process::exit(1);
    }
}
