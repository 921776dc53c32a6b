//! `stagehand plan -f` and `stagehand apply -f` as a CI pipeline runs them: the real binary,
//! no Kubernetes cluster, AWS = moto behind the counting proxy (`AwsFloor`), seeded like the
//! LambdaStage end-to-end tests (`support`) or with the SpotFleet network (`spot_fleet_round`).
//! What the binary did is read back from AWS and from the proxy's call counts.
//!
//! Every child runs with a cleared environment: only the floor's endpoint, region and dummy
//! credentials reach it, and `STAGEHAND_LOOPBACK_ONLY=1` (a fleet's health probes never leave
//! the machine), all from the floor's `env()`.

#![allow(
    clippy::unwrap_used,
    clippy::too_many_lines,
    reason = "a test module: a panic with its location is the failure report we want"
)]

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::Command;

use axum::Router;
use axum::routing::get;
use serde_json::{Value, json};
use stagehand::aws::s3::Sha256Digest;
use stagehand_testenv::aws::{FaultAction, FaultRule};

use crate::spot_fleet_health::Service;
use crate::spot_fleet_round::{Network, fleet_spec, live_of, network};
use crate::support::{API, Aws, CHAT, EVAL, b64, build};

const STAGE: &str = "shop-api-dev";

/// The `stagehand <args>` command against the floor, with a cleared environment.
pub fn stagehand_command(aws: &Aws, args: &[&str]) -> Command {
    let home = scratch_dir("home");
    let mut command = Command::new(env!("CARGO_BIN_EXE_stagehand"));
    command
        .env_clear()
        .env("HOME", &home)
        .env("AWS_CONFIG_FILE", home.join("aws-config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", home.join("aws-credentials"))
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("RUST_BACKTRACE", "1")
        .envs(aws.floor.env())
        .args(args);
    command
}

/// `stagehand <args>` against the floor; (exit code, stdout, stderr). Runs on a blocking
/// thread: the proxy serves the child from this test's runtime.
pub async fn stagehand(aws: &Aws, args: &[&str]) -> (i32, String, String) {
    let mut command = stagehand_command(aws, args);
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(!stderr.contains("panicked"), "{stderr}");
    (output.status.code().unwrap(), stdout, stderr)
}

fn scratch_dir(name: &str) -> PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "cli-plan-{}-{}-{name}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes `documents` as one multi-document YAML file.
pub fn manifest(documents: &[Value]) -> String {
    let path = scratch_dir("manifest").join("stage.yaml");
    let text: Vec<String> = documents
        .iter()
        .map(|d| serde_saphyr::to_string(d).unwrap())
        .collect();
    std::fs::write(&path, text.join("---\n")).unwrap();
    path.to_str().unwrap().to_owned()
}

/// The stage's endpoint for its HTTP check: answers 200.
async fn health_endpoint() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().route("/health", get(|| async { "ok" }));
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/health")
}

/// AWS operations that change something, from the proxy's counts.
pub async fn writes(aws: &Aws) -> Vec<String> {
    aws.floor
        .calls()
        .await
        .unwrap()
        .calls
        .into_iter()
        .filter(|(_, stats)| {
            [
                "Update",
                "Create",
                "Tag",
                "Put",
                "Delete",
                "Publish",
                "Execute",
                "Run",
                "Terminate",
            ]
            .iter()
            .any(|verb| stats.operation.starts_with(verb))
        })
        .map(|(key, stats)| format!("{key} x{}", stats.count))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_shows_only_drift_and_writes_nothing_apply_converges() {
    let aws = Aws::start().await;
    crate::support::seed(&aws).await;
    let mut stage = crate::support::chalice_manifest(STAGE, None, "Retain", None);
    stage["spec"]["validation"]["http"] =
        json!([{"name": "health", "url": health_endpoint().await}]);
    let file = manifest(&[stage]);

    // (1) A first plan: every function is on the old build; nothing is written.
    aws.floor.reset_calls().await.unwrap();
    let (code, stdout, stderr) = stagehand(&aws, &["plan", "-f", &file]).await;
    eprintln!("stagehand plan:\n{stdout}");
    assert_eq!(code, 3, "changes pending\n{stdout}\n{stderr}");
    assert!(
        stdout.contains("LambdaStage default/shop-api-dev"),
        "{stdout}"
    );
    assert!(stdout.contains("Actions, in order:"), "{stdout}");
    assert_eq!(
        writes(&aws).await,
        Vec::<String>::new(),
        "plan must not write"
    );
    assert!(aws.code_updates().await.is_empty());

    // (2) apply converges: every round's actions printed, Ready at the end, exit 0.
    let (code, stdout, stderr) = stagehand(&aws, &["apply", "-f", &file]).await;
    eprintln!("stagehand apply:\n{stdout}");
    assert_eq!(code, 0, "apply must reach Ready\n{stdout}\n{stderr}");
    assert!(
        stdout.contains("→ UpdateFunctionCode: update code of"),
        "{stdout}"
    );
    assert!(stdout.contains("Result: Ready"), "{stdout}");
    assert!(stdout.contains("Ready=True"), "{stdout}");
    assert!(stdout.contains("Validated=True"), "{stdout}");
    assert_eq!(aws.code_updates().await, [API, CHAT, EVAL]);
    let v1 = b64(&build("v1"));
    for function in [API, CHAT, EVAL] {
        let deployed = aws.function(function).await;
        assert_eq!(deployed.code_sha256(), Some(v1.as_str()), "{function}");
        let tags = aws
            .lambda()
            .list_tags()
            .resource(deployed.function_arn().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(
            tags.tags().unwrap()["stagehand.dev/owner"],
            "default/LambdaStage/shop-api-dev"
        );
    }

    // (3) In sync now: plan exits 0 with "no changes".
    let (code, stdout, stderr) = stagehand(&aws, &["plan", "-f", &file]).await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("No changes"), "{stdout}");

    // (4) Someone redeploys the old build to one function: plan lists exactly that update.
    aws.lambda()
        .update_function_code()
        .function_name(CHAT)
        .s3_bucket(crate::support::BUCKET)
        .s3_key("old.zip")
        .send()
        .await
        .unwrap();
    aws.floor.reset_calls().await.unwrap();
    let (code, stdout, stderr) = stagehand(&aws, &["plan", "-f", &file, "-o", "json"]).await;
    assert_eq!(code, 3, "{stdout}\n{stderr}");
    let plan: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(plan["exitCode"], 3);
    let stage = &plan["stages"][0];
    assert_eq!(stage["name"], STAGE);
    assert_eq!(stage["namespace"], "default");
    assert_eq!(stage["owner"], "default/LambdaStage/shop-api-dev");
    assert_eq!(stage["result"], "ChangesPending");
    let updated: Vec<&str> = stage["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["kind"] == "UpdateFunctionCode")
        .map(|a| a["function"].as_str().unwrap())
        .collect();
    assert_eq!(updated, [CHAT], "{stage:#}");
    let drifted: Vec<&str> = stage["drift"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["field"] == "code")
        .map(|d| d["subject"].as_str().unwrap())
        .collect();
    assert_eq!(drifted, [CHAT], "{stage:#}");
    assert_eq!(stage["validation"]["http"][0]["status"], 200, "{stage:#}");
    assert!(
        stage["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["type"] == "CodeInSync" && c["status"] == "False"),
        "{stage:#}"
    );
    assert_eq!(
        writes(&aws).await,
        Vec::<String>::new(),
        "plan must not write"
    );

    // (5) apply repairs exactly that function.
    aws.floor.reset_calls().await.unwrap();
    let (code, stdout, stderr) = stagehand(&aws, &["apply", "-f", &file]).await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert_eq!(aws.code_updates().await, [CHAT]);
    assert_eq!(aws.function(CHAT).await.code_sha256(), Some(v1.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pinned_mismatch_fails_apply_with_both_hashes_and_changes_nothing() {
    let aws = Aws::start().await;
    crate::support::seed(&aws).await;
    let pinned = Sha256Digest::of(&build("v9"));
    let actual = Sha256Digest::of(&build("v1"));
    let file = manifest(&[crate::support::chalice_manifest(
        STAGE,
        Some("ci"),
        "Retain",
        Some(&pinned.to_hex()),
    )]);

    aws.floor.reset_calls().await.unwrap();
    let (code, stdout, stderr) = stagehand(&aws, &["apply", "-f", &file]).await;
    assert_eq!(code, 4, "not Ready\n{stdout}\n{stderr}");
    let output = format!("{stdout}\n{stderr}");
    assert!(output.contains("ArtifactMismatch"), "{output}");
    assert!(output.contains(&pinned.to_string()), "{output}");
    assert!(output.contains(&actual.to_string()), "{output}");
    assert!(stdout.contains("Result: Stalled"), "{stdout}");
    assert_eq!(writes(&aws).await, Vec::<String>::new(), "nothing changed");

    // plan says the same, as JSON.
    let (code, stdout, _) = stagehand(&aws, &["plan", "-f", &file, "-o", "json"]).await;
    assert_eq!(code, 4);
    let plan: Value = serde_json::from_str(&stdout).unwrap();
    let stage = &plan["stages"][0];
    assert_eq!(stage["owner"], "ci/LambdaStage/shop-api-dev");
    assert_eq!(stage["stalled"]["reason"], "ArtifactMismatch");
    assert_eq!(stage["actions"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_documents_and_other_kinds_are_refused_before_aws_is_called() {
    let aws = Aws::start().await;
    let config_map = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}});
    let file = manifest(&[
        crate::support::chalice_manifest(STAGE, None, "Retain", None),
        config_map,
    ]);
    aws.floor.reset_calls().await.unwrap();
    for command in ["plan", "apply"] {
        let (code, stdout, stderr) = stagehand(&aws, &[command, "-f", &file]).await;
        assert_eq!(code, 1, "{stdout}\n{stderr}");
        assert!(
            stderr.contains("document 2: ConfigMap (v1) is not a Stagehand kind"),
            "{stderr}"
        );
    }
    let (code, _, stderr) = stagehand(&aws, &["plan", "-f", "/nonexistent/stage.yaml"]).await;
    assert_eq!(code, 1);
    assert!(
        stderr.contains("error: cannot read /nonexistent/stage.yaml"),
        "{stderr}"
    );
    assert_eq!(aws.floor.calls().await.unwrap().total, 0);
}

/// A fleet manifest over `network` whose instances run a service on `port` (files and a unit
/// rendered into cloud-init) and must accept TCP connections there.
fn fleet_manifest(network: &Network, port: u16, user_data: &str) -> Value {
    let mut spec = fleet_spec(
        network,
        2,
        &json!({
            "userData": user_data,
            "files": [{"path": "/etc/web/config.toml", "content": "port = 8080\n"}],
            "services": [{"name": "web.service", "unit": "[Service]\nExecStart=/usr/bin/web\n"}],
            "healthCheck": {"tcpPort": port, "gracePeriodSeconds": 300},
            "deletionPolicy": "Delete",
        }),
    );
    spec["tags"] = json!({"team": "web"});
    json!({
        "apiVersion": "stagehand.dev/v1alpha1",
        "kind": "SpotFleet",
        "metadata": {"name": "web"},
        "spec": spec,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_is_planned_with_its_cloud_init_applied_until_ready_and_a_change_plans_replacements()
 {
    let aws = Aws::start().await;
    let network = network(&aws).await;
    aws.floor
        .add_fault(&FaultRule::new(FaultAction::loopback_addresses()))
        .await
        .unwrap();
    // The instances' service, on the addresses the proxy hands out first.
    let mut service = Service::reserve().await;
    for last in 2..=5 {
        service.serve(Ipv4Addr::new(127, 0, 0, last)).await;
    }
    let owner = "default/SpotFleet/web";
    let file = manifest(&[fleet_manifest(
        &network,
        service.port,
        "#!/bin/sh\necho v1\n",
    )]);

    // (1) plan: two launches, the rendered cloud-init in full (they would boot from it),
    // nothing written.
    aws.floor.reset_calls().await.unwrap();
    let (code, stdout, stderr) = stagehand(&aws, &["plan", "-f", &file]).await;
    eprintln!("stagehand plan:\n{stdout}");
    assert_eq!(code, 3, "changes pending\n{stdout}\n{stderr}");
    for expected in [
        "SpotFleet default/web (owner default/SpotFleet/web, region us-east-1)",
        "Phase: Launching, 0/2 instances ready",
        "1. Launch: launch 2 instance(s) (capacity)",
        "User data (cloud-init,",
        "| Content-Type: multipart/mixed",
        "| write_files:",
        "|   - path: \"/etc/web/config.toml\"",
        "\"enable\", \"--now\", \"web.service\"",
        "| echo v1",
        "Result: ChangesPending",
    ] {
        assert!(stdout.contains(expected), "{expected:?} in\n{stdout}");
    }
    assert_eq!(
        writes(&aws).await,
        Vec::<String>::new(),
        "plan must not write"
    );

    // (2) apply: launched, probed on loopback, Ready.
    let (code, stdout, stderr) = stagehand(&aws, &["apply", "-f", &file]).await;
    eprintln!("stagehand apply:\n{stdout}");
    assert_eq!(code, 0, "apply must reach Ready\n{stdout}\n{stderr}");
    assert!(
        stdout.contains("→ Launch: launch 2 instance(s) (capacity)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Phase: Stable, 2/2 instances ready"),
        "{stdout}"
    );
    assert!(stdout.contains("Result: Ready"), "{stdout}");
    let live = live_of(&aws, owner).await;
    assert_eq!(live.len(), 2);
    for id in &live {
        assert!(
            stdout.contains(&format!("{id}  t3.small")),
            "{id} listed\n{stdout}"
        );
    }

    // (3) In sync: exit 0, the document summed up in one line.
    let (code, stdout, stderr) = stagehand(&aws, &["plan", "-f", &file]).await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("No changes"), "{stdout}");
    assert!(stdout.contains("--show-user-data prints it"), "{stdout}");
    assert!(!stdout.contains("| write_files:"), "{stdout}");
    let (_, stdout, _) = stagehand(&aws, &["plan", "-f", &file, "--show-user-data"]).await;
    assert!(stdout.contains("| write_files:"), "{stdout}");

    // (4) A new build of the user data: every instance would be replaced, and why; nothing
    // written.
    let file = manifest(&[fleet_manifest(
        &network,
        service.port,
        "#!/bin/sh\necho v2\n",
    )]);
    aws.floor.reset_calls().await.unwrap();
    let (code, stdout, stderr) = stagehand(&aws, &["plan", "-f", &file, "-o", "json"]).await;
    assert_eq!(code, 3, "{stdout}\n{stderr}");
    let plan: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(plan["stages"], json!([]));
    let fleet = &plan["fleets"][0];
    assert_eq!(fleet["owner"], owner);
    assert_eq!(fleet["phase"], "Replacing");
    let replaced: BTreeSet<&str> = fleet["instances"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["replacement"] == "spec_hash" && i["healthy"] == true)
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        replaced,
        live.iter().map(String::as_str).collect(),
        "{fleet:#}"
    );
    assert_eq!(
        fleet["actions"],
        json!([{"kind": "Launch", "description": "launch 1 instance(s) (replacement)"}]),
        "Surge: one at a time"
    );
    assert!(
        fleet["userData"].as_str().unwrap().contains("echo v2"),
        "{fleet:#}"
    );
    assert_eq!(
        writes(&aws).await,
        Vec::<String>::new(),
        "plan must not write"
    );

    // (5) Without the address rewrite the instances are on moto's own addresses: the loopback
    // guard (from the floor's env) refuses to dial them, and plan says the fleet is stalled.
    aws.floor.clear_faults().await.unwrap();
    let (code, stdout, stderr) = stagehand(&aws, &["plan", "-f", &file]).await;
    assert_eq!(code, 4, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("Stalled: ProbeNotAllowed: healthCheck.tcpPort: not dialling"),
        "{stdout}"
    );
    assert!(
        stderr.contains("SpotFleet default/web stalled: ProbeNotAllowed"),
        "{stderr}"
    );
}
