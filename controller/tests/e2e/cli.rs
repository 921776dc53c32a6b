//! The `stagehand` binary as a user meets it: help, exit codes, error messages, and a full
//! `run` against the Kubernetes API stand-in of `stagehand-testenv` (startup, readiness, metrics,
//! graceful shutdown on SIGTERM).
//!
//! Every child runs with a cleared environment and an empty HOME, so no kubeconfig, AWS profile
//! or instance metadata of the machine running the tests can leak in.

#![allow(
    clippy::unwrap_used,
    reason = "a test module: a panic with its location is the failure report we want"
)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};

/// `stagehand` with a cleared environment and an empty HOME (also what `leader_failover` runs).
pub(crate) fn stagehand() -> Command {
    let home = scratch_dir("home");
    let mut command = Command::new(env!("CARGO_BIN_EXE_stagehand"));
    command
        .env_clear()
        .env("HOME", &home)
        .env("AWS_CONFIG_FILE", home.join("aws-config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", home.join("aws-credentials"))
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("RUST_BACKTRACE", "1");
    command
}

fn scratch_dir(name: &str) -> PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "cli-{}-{}-{name}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn run(command: &mut Command) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = command.output().unwrap();
    (
        status.code().unwrap(),
        String::from_utf8(stdout).unwrap(),
        String::from_utf8(stderr).unwrap(),
    )
}

#[test]
fn help_lists_the_subcommands() {
    let (code, stdout, _) = run(stagehand().arg("--help"));
    assert_eq!(code, 0);
    for subcommand in ["run", "plan", "apply", "crds", "version"] {
        assert!(
            stdout
                .lines()
                .any(|l| l.trim_start().starts_with(subcommand)),
            "{subcommand} missing from:\n{stdout}"
        );
    }
}

#[test]
fn run_help_documents_flags_and_env_fallbacks() {
    let (code, stdout, _) = run(stagehand().args(["run", "--help"]));
    assert_eq!(code, 0);
    for flag in [
        "--namespace",
        "--concurrency",
        "--default-resync",
        "--cluster-id",
        "--metrics-addr",
        "--log-format",
        "--aws-endpoint-url",
        "--aws-region",
        "--kubeconfig",
        "--leader-election",
        "--leader-election-namespace",
        "--leader-election-lease-name",
        "STAGEHAND_LEADER_ELECTION",
        "[default: stagehand-leader]",
        "STAGEHAND_NAMESPACE",
        "STAGEHAND_DEFAULT_RESYNC",
        "--inventory-max-age",
        "STAGEHAND_INVENTORY_MAX_AGE",
        "[default: 30s]",
        "--feed-backstop-max-age",
        "STAGEHAND_FEED_BACKSTOP_MAX_AGE",
        "[default: 10m]",
        "AWS_ENDPOINT_URL",
        "[default: 5m]",
        "[default: 8]",
        "--loopback-only",
        "STAGEHAND_LOOPBACK_ONLY",
    ] {
        assert!(stdout.contains(flag), "{flag} missing from:\n{stdout}");
    }
}

#[test]
fn version_prints_the_crate_version() {
    let (code, stdout, _) = run(stagehand().arg("version"));
    assert_eq!(code, 0);
    assert!(
        stdout.starts_with(&format!("stagehand {}", env!("CARGO_PKG_VERSION"))),
        "{stdout}"
    );
}

#[test]
fn crds_prints_the_three_definitions() {
    let (code, stdout, _) = run(stagehand().arg("crds"));
    assert_eq!(code, 0);
    assert_eq!(stdout, stagehand_crds::crds_yaml().unwrap());
    assert_eq!(stdout.matches("kind: CustomResourceDefinition").count(), 3);
    for name in [
        "lambdastages.stagehand.dev",
        "spotfleets.stagehand.dev",
        "staticsites.stagehand.dev",
    ] {
        assert!(stdout.contains(name), "{name}");
    }
}

#[test]
fn usage_errors_exit_2_with_clap_guidance() {
    let cases: &[&[&str]] = &[
        &["--frobnicate"],
        &["deploy"],
        &["run", "--default-resync", "10s"],
        &["run", "--concurrency", "many"],
        &[],
    ];
    for args in cases {
        let (code, _, stderr) = run(stagehand().args(*args));
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(
            stderr.contains("Usage:") || stderr.contains("--help"),
            "{args:?}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
    let (_, _, stderr) = run(stagehand().args(["run", "--default-resync", "10s"]));
    assert!(
        stderr.contains("shorter than the minimum of 30s"),
        "{stderr}"
    );
}

/// Runs `stagehand run` with `args` and expects a runtime failure.
fn run_fails(args: &[&str]) -> String {
    let (code, stdout, stderr) = run(stagehand()
        .args(["run", "--metrics-addr", "127.0.0.1:0"])
        .args(args));
    assert_eq!(code, 1, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let error_lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect();
    assert_eq!(error_lines.len(), 1, "one error line expected:\n{stderr}");
    stderr
}

#[test]
fn missing_aws_region_is_explained() {
    let stderr = run_fails(&[]);
    assert!(
        stderr.contains("error: no AWS region configured: set --aws-region or AWS_REGION"),
        "{stderr}"
    );
    assert!(stderr.contains("hint:"), "{stderr}");
}

#[test]
fn aws_region_from_the_environment_is_used() {
    // With AWS_REGION set, startup gets past AWS and fails at Kubernetes instead.
    let (code, _, stderr) = run(stagehand()
        .args(["run", "--metrics-addr", "127.0.0.1:0"])
        .env("AWS_REGION", "eu-west-1"));
    assert_eq!(code, 1);
    assert!(!stderr.contains("no AWS region"), "{stderr}");
    assert!(stderr.contains("Kubernetes"), "{stderr}");
}

#[test]
fn missing_kubeconfig_is_explained() {
    let stderr = run_fails(&["--aws-region", "eu-west-1"]);
    assert!(
        stderr.contains(
            "error: cannot reach a Kubernetes API: no kubeconfig found (set KUBECONFIG or run in-cluster)"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("hint:"), "{stderr}");
}

#[test]
fn unreachable_api_server_is_explained() {
    // Nothing listens on port 1, so the connection is refused at once.
    let kubeconfig = write_kubeconfig("http://127.0.0.1:1");
    let stderr = run_fails(&[
        "--aws-region",
        "eu-west-1",
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
    ]);
    assert!(
        stderr.contains("error: cannot reach the Kubernetes API at http://127.0.0.1:1/"),
        "{stderr}"
    );
    assert!(stderr.contains("kubectl cluster-info"), "{stderr}");
}

#[test]
fn taken_metrics_port_is_explained() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (code, _, stderr) =
        run(stagehand().args(["run", "--aws-region", "eu-west-1", "--metrics-addr", &addr]));
    assert_eq!(code, 1);
    assert!(
        stderr.contains(&format!("error: cannot listen on {addr}")),
        "{stderr}"
    );
    assert!(stderr.contains("--metrics-addr"), "{stderr}");
}

fn write_kubeconfig(server: &str) -> PathBuf {
    let path = scratch_dir("kube").join("config");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: {server}
contexts:
- name: test
  context: {{cluster: test, user: test}}
current-context: test
users:
- name: test
  user: {{token: not-a-secret}}
"
        ),
    )
    .unwrap();
    path
}

fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    (
        head.split(' ').nth(1).unwrap().parse().unwrap(),
        body.to_owned(),
    )
}

/// The child's JSON log lines, in the order they were written.
struct Logs<R> {
    lines: std::io::Lines<R>,
    seen: Vec<serde_json::Value>,
}

impl<R: BufRead> Logs<R> {
    /// The first entry with `message`, reading further lines as needed (blocks until the
    /// child writes it; panics if the child exits first).
    fn wait_for(&mut self, message: &str) -> serde_json::Value {
        if let Some(entry) = self.seen.iter().find(|e| e["message"] == message) {
            return entry.clone();
        }
        for line in self.lines.by_ref() {
            let line = line.unwrap();
            let entry: serde_json::Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
            self.seen.push(entry.clone());
            if entry["message"] == message {
                return entry;
            }
        }
        panic!(
            "stagehand exited before logging {message:?}; it logged:\n{:#?}",
            self.seen
        );
    }
}

struct KillOnDrop(Child);
impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn run_serves_health_and_metrics_then_stops_on_sigterm() {
    // The stand-in runs on its own Tokio runtime for the whole test; the child talks to it over
    // 127.0.0.1 like it would to a real API server.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let api = runtime
        .block_on(stagehand_testenv::TestApiServer::start())
        .unwrap();
    // The served kinds' CRDs, as the chart installs them: without them the watches never sync.
    runtime.block_on(async {
        let crds: kube::Api<
            k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
        > = kube::Api::all(api.client());
        for crd in stagehand_crds::crds() {
            let name = crd.metadata.name.clone().unwrap();
            crds.patch(
                &name,
                &kube::api::PatchParams::apply("stagehand-tests"),
                &kube::api::Patch::Apply(&crd),
            )
            .await
            .unwrap();
        }
    });
    let kubeconfig = scratch_dir("kube").join("config");
    api.write_kubeconfig(&kubeconfig).unwrap();
    let child = stagehand()
        .args([
            "run",
            "--aws-region",
            "eu-west-1",
            "--metrics-addr",
            "127.0.0.1:0",
            "--log-format",
            "json",
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = KillOnDrop(child);
    let mut logs = Logs {
        lines: BufReader::new(child.0.stdout.take().unwrap()).lines(),
        seen: Vec::new(),
    };
    // Safety net only (not synchronisation): a hung child must fail the test, not the CI job.
    let pid = child.0.id();
    std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_secs(120));
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
    });

    let serving_kinds = logs.wait_for("serving kinds");
    assert_eq!(serving_kinds["level"], "INFO");
    assert_eq!(
        serving_kinds["kinds"],
        r#"["LambdaStage", "SpotFleet", "StaticSite"]"#
    );
    let serving = logs.wait_for("serving /metrics, /healthz and /readyz");
    let addr: SocketAddr = serving["addr"].as_str().unwrap().parse().unwrap();
    let connected = logs.wait_for("connected");
    assert_eq!(connected["kubernetes_version"], "v1.33.0");
    assert_eq!(connected["kubernetes"], format!("{}/", api.url()));
    assert_eq!(connected["aws_region"], "eu-west-1");
    logs.wait_for("caches synced: ready");

    assert_eq!(http_get(addr, "/healthz").0, 200);
    assert_eq!(http_get(addr, "/readyz").0, 200);
    let (status, metrics) = http_get(addr, "/metrics");
    assert_eq!(status, 200);
    assert!(
        metrics.contains(&format!(
            "stagehand_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        )),
        "{metrics}"
    );

    let killed = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    logs.wait_for("stopped");
    let status = child.0.wait().unwrap();
    assert_eq!(status.code(), Some(0), "graceful shutdown must exit 0");
    assert!(
        TcpStream::connect(addr).is_err(),
        "metrics server still listening"
    );
    runtime.block_on(api.shutdown());
}
