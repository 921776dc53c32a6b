//! A real `stagehand run` process for the benchmarks that measure the controller as it runs in
//! a cluster: started from the binary cargo built next to the examples, its memory read from
//! `/proc/<pid>/status`, its own `/metrics` scraped over HTTP, stopped with SIGTERM.

#![allow(
    dead_code,
    reason = "only the benchmarks that run the controller as a process use this"
)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

/// One `stagehand run` process.
pub struct StagehandProcess {
    child: Child,
    pid: u32,
    metrics_addr: SocketAddr,
}

/// The `stagehand` binary of the same build as this example (`target/<profile>/stagehand`;
/// examples live in `target/<profile>/examples/`; `make bench-scale` builds both), or
/// `BENCH_STAGEHAND_BIN` (to compare two builds).
pub fn stagehand_binary() -> PathBuf {
    if let Some(binary) = std::env::var_os("BENCH_STAGEHAND_BIN") {
        return binary.into();
    }
    let example = std::env::current_exe().unwrap();
    let profile_dir = example.parent().and_then(|examples| examples.parent());
    let binary = profile_dir.unwrap().join("stagehand");
    assert!(
        binary.exists(),
        "{} is missing: `cargo build -p stagehand --bin stagehand` first",
        binary.display()
    );
    binary
}

/// A port of 127.0.0.1 free a moment ago (the controller binds it for `/metrics`).
pub fn free_local_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

impl StagehandProcess {
    /// Starts `stagehand run ARGS` with `--metrics-addr` on a free loopback port, the dummy
    /// credentials of the test floor and `envs`; its log goes to `log_path` (warnings only by
    /// default: at 10,000 objects an info line per reconcile would be the benchmark). The
    /// environment is cleared but for `MALLOC_ARENA_MAX`, passed on when set (to measure
    /// glibc's allocator with fewer arenas).
    pub fn start(args: &[String], envs: &[(&str, &str)], log_path: &std::path::Path) -> Self {
        let metrics_addr = free_local_addr();
        let log = std::fs::File::create(log_path).unwrap();
        let mut command = Command::new(stagehand_binary());
        command
            .env_clear()
            .env("HOME", std::env::temp_dir())
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("RUST_LOG", "warn")
            .envs(std::env::var_os("MALLOC_ARENA_MAX").map(|arenas| ("MALLOC_ARENA_MAX", arenas)))
            .envs(envs.iter().copied())
            .arg("run")
            .args(["--metrics-addr", &metrics_addr.to_string()])
            .args(args)
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .kill_on_drop(true);
        let child = command.spawn().unwrap();
        let pid = child.id().unwrap();
        Self {
            child,
            pid,
            metrics_addr,
        }
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// `(VmHWM, VmRSS)` of the process in KiB: its peak and current resident memory.
    pub fn memory_kib(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).unwrap();
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
                .unwrap_or(0)
        };
        (field("VmHWM:"), field("VmRSS:"))
    }

    /// CPU time the process used so far (user + system), from `/proc/<pid>/stat`.
    pub fn cpu_time(&self) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)).unwrap();
        // Fields after the command name (which may hold spaces, in parentheses): utime is the
        // 14th field of the line, stime the 15th, in clock ticks (100 per second on Linux).
        let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        let fields: Vec<&str> = after.split_whitespace().collect();
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        Duration::from_millis(ticks * 10)
    }

    /// The text of its `/metrics`, or `None` while the server does not answer yet.
    pub async fn scrape(&self) -> Option<String> {
        let mut stream = tokio::net::TcpStream::connect(self.metrics_addr)
            .await
            .ok()?;
        stream
            .write_all(b"GET /metrics HTTP/1.0\r\nHost: stagehand\r\n\r\n")
            .await
            .ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).await.ok()?;
        let (head, body) = response.split_once("\r\n\r\n")?;
        head.lines()
            .next()
            .is_some_and(|status| status.contains(" 200 "))
            .then(|| body.to_owned())
    }

    /// Whether it still runs.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGTERM (a graceful shutdown, as a pod's), then waits for the exit (bounded: killed
    /// after 30 s).
    pub async fn stop(mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        if tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}

/// The sum of every sample of metric `name` (any labels) in a Prometheus text exposition.
pub fn metric_sum(text: &str, name: &str) -> f64 {
    samples(text, name).map(|(_, value)| value).sum()
}

/// The samples of metric `name`: (label text inside the braces, value).
pub fn samples<'a>(text: &'a str, name: &'a str) -> impl Iterator<Item = (&'a str, f64)> + 'a {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(move |line| {
            let rest = line.strip_prefix(name)?;
            let (labels, value) = if let Some(braced) = rest.strip_prefix('{') {
                let (labels, value) = braced.split_once('}')?;
                (labels, value)
            } else if rest.starts_with(' ') {
                ("", rest)
            } else {
                return None;
            };
            Some((labels, value.trim().parse().ok()?))
        })
}

/// Series per metric family (`name` → number of sample lines), to see label sets grow.
pub fn series_counts(text: &str) -> std::collections::BTreeMap<String, usize> {
    let mut counts = std::collections::BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let name = line.split(['{', ' ']).next().unwrap_or(line);
        *counts.entry(name.to_owned()).or_insert(0) += 1;
    }
    counts
}
