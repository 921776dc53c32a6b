//! The run the RBAC and credentials suites watch: one real `stagehand run --leader-election`
//! process (JSON logs at the level the suite asks) talking to the API stand-in through a named
//! door (every request it makes is recorded as an RBAC access) and to moto through the proxy,
//! with recognisable dummy AWS credentials. It takes every kind through its life: a LambdaStage, a SpotFleet and a
//! StaticSite created, reconciled to Ready, changed and reconciled again, then deleted through
//! their finalizers; a LambdaStage stalled on a pinned build that does not match, and a
//! SpotFleet whose launches AWS refuses with `UnauthorizedOperation` (access denied); Events for
//! all of it, the leader Lease taken, renewed and released on SIGTERM.

#![allow(
    clippy::unwrap_used,
    clippy::too_many_lines,
    reason = "a test module: a panic with its location is the failure report we want"
)]

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::core::{DynamicObject, GroupVersionKind};
use serde_json::{Value, json};
use stagehand_crds::{SpotFleet, StaticSite};
use stagehand_testenv::aws::{FaultAction, FaultRule};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

use crate::spot_fleet::{fleet, wait_fleet, wait_gone};
use crate::spot_fleet_round::{fleet_spec, network};
use crate::static_site_lifecycle::builds_bucket;
use crate::static_site_round::site_spec;
use crate::support::{
    BUCKET, Env, KEY, NAMESPACE, REGION, TIMEOUT, chalice_stage, condition, ready, seed, stage,
};

/// The namespace the chart is installed in: the leader Lease lives there.
pub const RELEASE_NAMESPACE: &str = "stagehand";
/// The door's client name, under which the stand-in records the controller's requests.
pub const CLIENT: &str = "stagehand";

/// Dummy credentials no log line, Event or status may ever show. moto accepts any.
pub const ACCESS_KEY_ID: &str = "AKIASTAGEHANDMARK3R7";
pub const SECRET_ACCESS_KEY: &str = "Zq8sEcReT-stagehand-marker-secret-5f1d2c";
pub const SESSION_TOKEN: &str = "IQoJb3JpZ2luX2VjE-stagehand-marker-session-token-9a7e";

/// What the run left behind for the suites to examine.
pub struct Run {
    pub env: Env,
    /// Every line `stagehand run` wrote, stdout and stderr.
    pub logs: Vec<String>,
    /// Every Stagehand object as JSON, taken while the failing ones were failing and again
    /// when all were Ready after their change (status included).
    pub objects: Vec<Value>,
    /// Every Event in the stand-in at the end, as JSON.
    pub events: Vec<Value>,
    pub exit_code: Option<i32>,
}

/// Prints the controller's last log lines when the scenario fails.
struct ShowLogsOnFailure(Arc<Mutex<Vec<String>>>);

impl Drop for ShowLogsOnFailure {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let logs = self
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let interesting: Vec<&String> = logs
                .iter()
                .filter(|l| {
                    !l.contains("\"level\":\"DEBUG\"") && !l.contains("\"level\":\"TRACE\"")
                })
                .collect();
            let tail = &interesting[interesting.len().saturating_sub(40)..];
            eprintln!("--- stagehand run logged last (above debug):\n{tail:#?}");
        }
    }
}

/// Collects the lines of `reader` into `sink` until it closes.
fn collect(
    reader: impl AsyncRead + Unpin + Send + 'static,
    sink: Arc<Mutex<Vec<String>>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut lines = BufReader::new(reader).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            sink.lock().unwrap().push(line);
        }
    })
}

/// Every LambdaStage, SpotFleet and StaticSite in the stand-in, as JSON.
async fn all_objects(env: &Env) -> Vec<Value> {
    let mut objects = Vec::new();
    for kind in ["LambdaStage", "SpotFleet", "StaticSite"] {
        let gvk = GroupVersionKind::gvk("stagehand.dev", "v1alpha1", kind);
        let resource = kube::api::ApiResource::from_gvk(&gvk);
        let api: Api<DynamicObject> = Api::all_with(env.server.client(), &resource);
        for object in api.list(&ListParams::default()).await.unwrap() {
            objects.push(serde_json::to_value(object).unwrap());
        }
    }
    objects
}

async fn wait_condition(env: &Env, kind: &str, name: &str, check: impl Fn(&Value) -> bool) {
    let gvk = GroupVersionKind::gvk("stagehand.dev", "v1alpha1", kind);
    let resource = kube::api::ApiResource::from_gvk(&gvk);
    let api: Api<DynamicObject> = Api::namespaced_with(env.server.client(), NAMESPACE, &resource);
    let mut last = None;
    let waited = tokio::time::timeout(TIMEOUT, async {
        loop {
            last = api
                .get_opt(name)
                .await
                .unwrap()
                .map(|o| serde_json::to_value(o).unwrap());
            if last.as_ref().is_some_and(&check) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    waited.unwrap_or_else(|_| panic!("{kind} {name} never got there; last: {last:#?}"));
}

/// `type` of the object's conditions has `status` and, when given, `reason`.
fn has_condition(object: &Value, type_: &str, status: &str, reason: Option<&str>) -> bool {
    object["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| {
            c["type"] == type_ && c["status"] == status && reason.is_none_or(|r| c["reason"] == r)
        })
}

fn ready_at_generation(object: &Value) -> bool {
    object["status"]["observedGeneration"] == object["metadata"]["generation"]
        && has_condition(object, "Ready", "True", None)
}

/// Starts `stagehand run` as the chart runs it (leader election in the release namespace,
/// every namespace watched) through the named door, with the marker credentials.
fn start_controller(
    env: &Env,
    kubeconfig: &std::path::Path,
    log_filter: &str,
) -> tokio::process::Child {
    let mut command = tokio::process::Command::from(crate::cli::stagehand());
    command
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY)
        .env("AWS_SESSION_TOKEN", SESSION_TOKEN)
        .env("POD_NAME", "stagehand-0")
        .env("RUST_LOG", log_filter)
        .args([
            "run",
            "--log-format",
            "json",
            "--metrics-addr",
            "127.0.0.1:0",
        ])
        .args([
            "--aws-region",
            REGION,
            "--aws-endpoint-url",
            &env.floor.endpoint_url(),
        ])
        .args(["--cluster-id", "e2e", "--loopback-only", "true"])
        .args(["--inventory-max-age", "1s"])
        .args([
            "--leader-election",
            "--leader-election-namespace",
            RELEASE_NAMESPACE,
        ])
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command.spawn().unwrap()
}

/// The two suites' runs take turns: each is a controller process, moto and the stand-in, and
/// (at debug level) enough CPU that running both beside the timing-sensitive leader suites
/// starves them on a 2-core machine.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Runs the scenario to its end (every object deleted, the process stopped by SIGTERM), the
/// controller logging at `log_filter` (`RUST_LOG`).
pub async fn run(log_filter: &str) -> Run {
    let _turn = ONE_AT_A_TIME.lock().await;
    let env = Env::start().await;
    env.server
        .create_namespace(RELEASE_NAMESPACE)
        .await
        .unwrap();
    seed(&env.aws).await;
    let network = network(&env.aws).await;
    builds_bucket(&env).await;
    // The fleet named "denied" is refused every launch, as a role without ec2:CreateFleet is.
    let mut denied = FaultRule::new(FaultAction::Error {
        status: 403,
        code: Some("UnauthorizedOperation".into()),
        message: Some("You are not authorized to perform this operation.".into()),
        plain: false,
    });
    denied.service = Some("ec2".into());
    denied.operation = Some("CreateFleet".into());
    denied.resource = Some("denied".into());
    env.floor.admin().add_fault(&denied).await.unwrap();

    let door = env.server.client_door(CLIENT).await.unwrap();
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("rbac-scenario-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = dir.join(format!(
        "kubeconfig-{}",
        door.url().replace([':', '/'], "_")
    ));
    door.write_kubeconfig(&kubeconfig).unwrap();
    let mut child = start_controller(&env, &kubeconfig, log_filter);
    let logs = Arc::new(Mutex::new(Vec::new()));
    let _show = ShowLogsOnFailure(logs.clone());
    let readers = [
        collect(child.stdout.take().unwrap(), logs.clone()),
        collect(child.stderr.take().unwrap(), logs.clone()),
    ];

    let client = env.server.client();
    let stages = env.stages();
    let fleets: Api<SpotFleet> = Api::namespaced(client.clone(), NAMESPACE);
    let sites: Api<StaticSite> = Api::namespaced(client.clone(), NAMESPACE);
    let post = PostParams::default();
    stages
        .create(&post, &chalice_stage("shop-api", "Delete", None))
        .await
        .unwrap();
    // A stage pinned to a build that is not the one in S3, for a function of its own: it
    // stalls without touching anything.
    let pinned = stage(
        "pinned",
        json!({
            "code": {"s3": {"bucket": BUCKET, "key": KEY}, "sha256": "0".repeat(64)},
            "functions": [{"name": "shop-reports-dev"}],
        }),
    );
    stages.create(&post, &pinned).await.unwrap();
    let delete = json!({"deletionPolicy": "Delete"});
    fleets
        .create(&post, &fleet("workers", &fleet_spec(&network, 1, &delete)))
        .await
        .unwrap();
    fleets
        .create(&post, &fleet("denied", &fleet_spec(&network, 1, &delete)))
        .await
        .unwrap();
    let site = serde_json::from_value::<StaticSite>(json!({
        "apiVersion": "stagehand.dev/v1alpha1", "kind": "StaticSite",
        "metadata": {"name": "storefront", "namespace": NAMESPACE},
        "spec": site_spec(&delete),
    }))
    .unwrap();
    sites.create(&post, &site).await.unwrap();

    env.wait_for("shop-api", "Ready", ready).await;
    env.wait_for("pinned", "Stalled", |s| condition(s, "Stalled").0 == "True")
        .await;
    wait_fleet(&fleets, "workers", "became Ready", crate::spot_fleet::ready).await;
    // The refusal is reported on the fleet as an Event (its status says it backs off).
    let events: Api<Event> = Api::namespaced(client.clone(), NAMESPACE);
    tokio::time::timeout(TIMEOUT, async {
        loop {
            let listed = events.list(&ListParams::default()).await.unwrap();
            if listed.items.iter().any(|e| {
                e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("denied")
                    && e.note
                        .as_deref()
                        .is_some_and(|n| n.contains("UnauthorizedOperation"))
            }) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no Event reports the denied fleet's UnauthorizedOperation"));
    wait_condition(&env, "StaticSite", "storefront", ready_at_generation).await;
    let mut objects = all_objects(&env).await;

    // Every kind changed by its owner and reconciled again.
    let merge = |spec: Value| Patch::Merge(json!({ "spec": spec }));
    let params = PatchParams::default();
    stages
        .patch(
            "shop-api",
            &params,
            &merge(json!({"resyncInterval": "90s"})),
        )
        .await
        .unwrap();
    fleets
        .patch("workers", &params, &merge(json!({"capacity": 2})))
        .await
        .unwrap();
    sites
        .patch("storefront", &params, &merge(json!({"keepRevisions": 2})))
        .await
        .unwrap();
    env.wait_for("shop-api", "Ready again", ready).await;
    wait_fleet(&fleets, "workers", "became Ready at 2", |f| {
        crate::spot_fleet::ready(f) && f.status.as_ref().is_some_and(|s| s.ready_capacity == 2)
    })
    .await;
    wait_condition(&env, "StaticSite", "storefront", ready_at_generation).await;
    objects.extend(all_objects(&env).await);

    // Deleted through their finalizers.
    let gone = DeleteParams::default();
    for name in ["shop-api", "pinned"] {
        stages.delete(name, &gone).await.unwrap();
    }
    for name in ["workers", "denied"] {
        fleets.delete(name, &gone).await.unwrap();
    }
    sites.delete("storefront", &gone).await.unwrap();
    for name in ["shop-api", "pinned"] {
        tokio::time::timeout(TIMEOUT, async {
            while stages.get_opt(name).await.unwrap().is_some() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{name} was never deleted"));
    }
    wait_gone(&fleets, "workers").await;
    wait_gone(&fleets, "denied").await;
    tokio::time::timeout(TIMEOUT, async {
        while sites.get_opt("storefront").await.unwrap().is_some() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("storefront was never deleted"));

    // A graceful stop releases the lease.
    let pid = child.id().unwrap().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = tokio::time::timeout(TIMEOUT, child.wait())
        .await
        .unwrap()
        .unwrap();
    // The readers end once they have read everything the process wrote.
    for reader in readers {
        tokio::time::timeout(TIMEOUT, reader)
            .await
            .unwrap()
            .unwrap();
    }
    let events: Vec<Value> = Api::<Event>::all(env.server.client())
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|e| serde_json::to_value(e).unwrap())
        .collect();
    let logs = logs.lock().unwrap().clone();
    let _ = std::fs::remove_dir_all(&dir);
    Run {
        env,
        logs,
        objects,
        events,
        exit_code: status.code(),
    }
}
