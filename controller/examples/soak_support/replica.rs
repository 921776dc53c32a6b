//! One real `stagehand run --leader-election` process and what it logged: shared by the
//! failover suites (`controller/tests/e2e/leader_failover.rs`) and the chaos soak, which both run
//! two replicas against the API stand-in and moto behind the proxy and tell their AWS calls apart
//! by the SDK app id each replica sends (`stagehand.<name>`, see [`app_id`]).

use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde_json::{Value, json};
use stagehand_testenv::aws::CallRecord;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::Notify;

/// What a replica is told beside its name: where AWS and the API server are, which namespace
/// it watches, and its leader-election timings.
#[derive(Clone, Debug)]
pub struct ReplicaOptions {
    pub aws_endpoint_url: String,
    pub region: String,
    pub namespace: String,
    pub timings: LeaderTimings,
    /// `--inventory-max-age` (short in tests: rounds after actions read their own writes back).
    pub inventory_max_age: &'static str,
    pub extra_env: Vec<(String, String)>,
}

/// `--leader-election-*` durations, Go style (`4s`, `250ms`).
#[derive(Clone, Copy, Debug)]
pub struct LeaderTimings {
    pub lease_duration: &'static str,
    pub renew_deadline: &'static str,
    pub retry_period: &'static str,
}

/// What the replicas log at info beside warnings: leadership and controller start/stop.
const LOG_FILTER: &str = "warn,stagehand::runtime::leader=info,stagehand::runtime::manager=info";

/// What the replica wrote on stdout (JSON lines) and stderr (a panic's message lands there).
type Logs = Arc<(Mutex<Vec<Value>>, Notify)>;

/// One `stagehand run` process and what it logged (JSON lines; stderr lines as
/// `{"message": .., "stream": "stderr"}`).
pub struct Replica {
    pub name: &'static str,
    child: Child,
    logs: Logs,
}

impl Replica {
    /// Starts `stagehand run --leader-election` as `name` (its Lease identity and its AWS user
    /// agent's app id) from `command` (the binary with a clean environment), talking to the API
    /// server at `kubeconfig`.
    pub fn start(
        command: std::process::Command,
        name: &'static str,
        kubeconfig: &Path,
        options: &ReplicaOptions,
    ) -> Self {
        let mut command = Command::from(command);
        command
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_SDK_UA_APP_ID", app_id(name))
            .env("POD_NAME", name)
            .env("RUST_LOG", LOG_FILTER)
            .envs(options.extra_env.iter().map(|(k, v)| (k, v)))
            .args(["run", "--log-format", "json"])
            .args(["--metrics-addr", "127.0.0.1:0"])
            .args(["--aws-region", &options.region])
            .args(["--aws-endpoint-url", &options.aws_endpoint_url])
            .args(["--cluster-id", "e2e", "--namespace", &options.namespace])
            .args(["--inventory-max-age", options.inventory_max_age])
            .args(["--loopback-only", "true"])
            .args([
                "--leader-election",
                "--leader-election-namespace",
                "default",
            ])
            .args([
                "--leader-election-lease-duration",
                options.timings.lease_duration,
            ])
            .args([
                "--leader-election-renew-deadline",
                options.timings.renew_deadline,
            ])
            .args([
                "--leader-election-retry-period",
                options.timings.retry_period,
            ])
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().unwrap();
        let logs: Logs = Arc::new((Mutex::new(Vec::new()), Notify::new()));
        collect(child.stdout.take().unwrap(), logs.clone(), None);
        collect(child.stderr.take().unwrap(), logs.clone(), Some("stderr"));
        Self { name, child, logs }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, Vec<Value>> {
        self.logs.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn find(&self, message: &str) -> Option<Value> {
        self.entries()
            .iter()
            .find(|e| mentions(e, message))
            .cloned()
    }

    pub fn count(&self, message: &str) -> usize {
        self.entries()
            .iter()
            .filter(|e| mentions(e, message))
            .count()
    }

    /// Waits (at most `timeout`) for a log line containing `message`.
    pub async fn wait_log(&self, message: &str, timeout: Duration) -> Value {
        let waited = tokio::time::timeout(timeout, async {
            loop {
                let notified = self.logs.1.notified();
                if let Some(entry) = self.find(message) {
                    return entry;
                }
                notified.await;
            }
        })
        .await;
        waited.unwrap_or_else(|_| {
            panic!(
                "{} never logged {message:?}; it logged:\n{:#?}",
                self.name,
                self.entries()
            )
        })
    }

    pub fn signal(&self, signal: &str) {
        let pid = self.child.id().unwrap().to_string();
        let sent = std::process::Command::new("kill")
            .args([signal, &pid])
            .status()
            .unwrap();
        assert!(sent.success(), "kill {signal} {pid}");
    }

    /// Whether the process has ended (on its own: a deposed leader exits for a restart).
    pub fn has_exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits (at most `timeout`) for the process to exit; its exit code.
    pub async fn exited(&mut self, timeout: Duration) -> Option<i32> {
        tokio::time::timeout(timeout, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("{} did not exit", self.name))
            .unwrap()
            .code()
    }
}

impl Drop for Replica {
    /// A failing test shows what each replica logged last.
    fn drop(&mut self) {
        if std::thread::panicking() {
            let logs = self.entries();
            let tail = &logs[logs.len().saturating_sub(30)..];
            eprintln!("--- {} logged last:\n{tail:#?}", self.name);
        }
    }
}

/// Appends every line of `stream` to `logs` (JSON as logged; other lines as a message).
fn collect(stream: impl AsyncRead + Unpin + Send + 'static, logs: Logs, tag: Option<&'static str>) {
    let mut lines = BufReader::new(stream).lines();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            let mut entry =
                serde_json::from_str(&line).unwrap_or_else(|_| json!({ "message": line }));
            if let Some(tag) = tag {
                entry["stream"] = json!(tag);
            }
            logs.0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(entry);
            logs.1.notify_waiters();
        }
        logs.1.notify_waiters();
    });
}

fn mentions(entry: &Value, message: &str) -> bool {
    entry["message"]
        .as_str()
        .is_some_and(|m| m.contains(message))
}

/// The user agent's app id of replica `name`: the controller keeps an app id that names
/// Stagehand, and replaces any other with `stagehand`.
pub fn app_id(name: &str) -> String {
    format!("stagehand.{name}")
}

/// AWS writes per replica, in the proxy's order.
pub fn writes<'a>(log: &'a [CallRecord], replica: &str) -> Vec<&'a CallRecord> {
    let app = app_id(replica);
    log.iter()
        .filter(|r| r.client.as_deref() == Some(app.as_str()))
        .filter(|r| stagehand::aws::fence::is_write(&r.operation))
        .collect()
}
