//! A real Prometheus (Debian's package, installed by `scripts/ensure-prometheus`) scrapes the
//! controller's `/metrics` server — the one `stagehand run` serves — every second while the
//! main job runs (the Chalice stage deployed to Ready). Then every dashboard panel query and
//! every alert expression of the chart is evaluated through Prometheus's HTTP API: each must
//! parse and run, and the panels this scenario exercises must return series. A panel reading a
//! metric the controller does not export comes back empty and fails here.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test module: a panic with its location is the failure report we want"
)]

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use stagehand::runtime::server::{self, ServerState};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{Env, TIMEOUT, chalice_stage, ready, seed};

/// Panels this scenario (one LambdaStage deployed: code drift found and repaired, layers
/// attached, mappings created, queues validated) must show data in. The others (SpotFleet, StaticSite, throttling, the feed, leader election) are
/// only required to run.
const EXERCISED_PANELS: [&str; 13] = [
    "Stalled objects",
    "Not Ready objects",
    "Replicas scraped",
    "Objects by kind and condition",
    "Reconciles by result",
    "Reconcile duration",
    "Workers busy (queue pressure)",
    "Calls by service and operation",
    "Calls by result",
    "Call latency p90",
    "Actions by kind",
    "Drift found by kind",
    "SQS backlog (post-deploy validation)",
];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `application/x-www-form-urlencoded` value.
fn form_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// One HTTP/1.1 request to Prometheus; (status, body).
async fn http(addr: SocketAddr, method: &str, path: &str, form: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
        form.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let response = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    // Prometheus answers small bodies with Content-Length and large ones chunked.
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    (status, body)
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

/// Runs an instant query; the `data.result` array, or the error Prometheus gave.
async fn query(addr: SocketAddr, promql: &str) -> Result<Vec<Value>, String> {
    let (status, body) = http(
        addr,
        "POST",
        "/api/v1/query",
        &format!("query={}", form_encode(promql)),
    )
    .await;
    let answer: Value =
        serde_json::from_str(&body).map_err(|e| format!("HTTP {status}: {e}: {body}"))?;
    if answer["status"] != "success" {
        return Err(format!(
            "HTTP {status}: {} {}",
            answer["errorType"], answer["error"]
        ));
    }
    Ok(answer["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default())
}

/// A Prometheus server on a free loopback port, scraping `target` every second; killed on drop.
struct Prometheus {
    addr: SocketAddr,
    _child: tokio::process::Child,
    _dir: TempDir,
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Prometheus {
    async fn start(target: SocketAddr) -> Self {
        let ensure = tokio::process::Command::new(repo().join("scripts/ensure-prometheus"))
            .output()
            .await
            .unwrap();
        assert!(
            ensure.status.success(),
            "scripts/ensure-prometheus: {}",
            String::from_utf8_lossy(&ensure.stderr)
        );
        let promtool = PathBuf::from(String::from_utf8(ensure.stdout).unwrap().trim());
        let binary = promtool.with_file_name("prometheus");
        assert!(
            binary.exists(),
            "{} missing (Debian's prometheus package ships both)",
            binary.display()
        );

        let dir = TempDir(std::env::temp_dir().join(format!(
            "stagehand-prometheus-{}-{}",
            std::process::id(),
            target.port()
        )));
        std::fs::create_dir_all(dir.0.join("data")).unwrap();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: stagehand\n    static_configs:\n      - targets: ['{target}']\n        labels: {{namespace: stagehand, pod: stagehand-0}}\n"
        );
        std::fs::write(dir.0.join("prometheus.yml"), config).unwrap();
        // A free port: taken and released (Prometheus cannot report an ephemeral port back).
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let child = tokio::process::Command::new(binary)
            .arg(format!(
                "--config.file={}",
                dir.0.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.0.join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let prometheus = Self {
            addr,
            _child: child,
            _dir: dir,
        };
        tokio::time::timeout(TIMEOUT, async {
            while TcpStream::connect(addr).await.is_err()
                || http(addr, "GET", "/-/ready", "").await.0 != 200
            {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
        .await
        .expect("Prometheus ready");
        prometheus
    }

    /// Waits (bounded) until `promql` returns a series.
    async fn wait_for_series(&self, promql: &str) {
        tokio::time::timeout(TIMEOUT, async {
            while query(self.addr, promql)
                .await
                .map_or(true, |r| r.is_empty())
            {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no series for {promql}"));
    }
}

/// (panel title, query) of every dashboard target, Grafana's variables replaced by what
/// Grafana would send for this short run.
fn dashboard_queries() -> Vec<(String, String)> {
    let text =
        std::fs::read_to_string(repo().join("charts/stagehand/dashboards/stagehand.json")).unwrap();
    let dashboard: Value = serde_json::from_str(&text).unwrap();
    dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["type"] != "row")
        .flat_map(|panel| {
            panel["targets"].as_array().unwrap().iter().map(|t| {
                let expr = t["expr"]
                    .as_str()
                    .unwrap()
                    .replace("$__rate_interval", "30s");
                (panel["title"].as_str().unwrap().to_owned(), expr)
            })
        })
        .collect()
}

fn alert_expressions() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(repo().join("charts/stagehand/rules/alerts.yaml")).unwrap();
    let rules: Value = serde_saphyr::from_str(&text).unwrap();
    rules["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap())
        .map(|r| {
            (
                r["alert"].as_str().unwrap().to_owned(),
                r["expr"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_the_controller_and_every_panel_and_alert_runs() {
    let mut env = Env::start().await;
    seed(&env).await;
    let listener = server::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let metrics_addr = listener.local_addr().unwrap();
    let state = ServerState {
        metrics: env.ctx.metrics.clone(),
        readiness: env.ctx.readiness.clone(),
    };
    let metrics_server = tokio::spawn(server::serve(listener, state, env.shutdown.wait()));
    let prometheus = Prometheus::start(metrics_addr).await;

    env.start_controllers().await;
    let name = "shop-api-dev";
    env.create(&chalice_stage(name, "Retain", None)).await;
    env.wait_for(name, "Ready", ready).await;
    // The deploy's actions and a Ready census, scraped, and enough samples for rate().
    prometheus
        .wait_for_series(r#"stagehand_actions_total{kind="LambdaStage",action="code_update"}"#)
        .await;
    prometheus
        .wait_for_series(
            r#"stagehand_resources{kind="LambdaStage",condition="Ready",status="True"} > 0"#,
        )
        .await;
    prometheus
        .wait_for_series("count_over_time(stagehand_build_info[30s]) > 3")
        .await;

    let mut failures = Vec::new();
    let mut with_data = BTreeSet::new();
    for (title, expr) in dashboard_queries() {
        match query(prometheus.addr, &expr).await {
            Ok(result) if !result.is_empty() => {
                with_data.insert(title);
            }
            Ok(_) => {}
            Err(error) => failures.push(format!("panel {title}: {expr}: {error}")),
        }
    }
    for (alert, expr) in alert_expressions() {
        if let Err(error) = query(prometheus.addr, &expr).await {
            failures.push(format!("alert {alert}: {expr}: {error}"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    let empty: Vec<&str> = EXERCISED_PANELS
        .iter()
        .copied()
        .filter(|title| !with_data.contains(*title))
        .collect();
    assert!(
        empty.is_empty(),
        "panels without data after a deploy: {empty:?} (with data: {with_data:?})"
    );
    // A healthy, Ready stage: the object alerts' expressions find nothing to page about.
    let stalled = alert_expressions()
        .into_iter()
        .find(|(a, _)| a == "StagehandObjectsStalled")
        .unwrap()
        .1;
    assert_eq!(
        query(prometheus.addr, &stalled).await.unwrap(),
        Vec::<Value>::new()
    );

    env.stop_controllers().await;
    metrics_server.await.unwrap().unwrap();
    env.stop().await;
}
