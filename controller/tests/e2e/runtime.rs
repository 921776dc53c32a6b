//! The controller runtime end to end, against the `stagehand-testenv` API stand-in: a real
//! `kube::runtime::Controller` built by `run_controller`, driving a scripted test double of a
//! LambdaStage reconciler (it never talks to AWS; it follows the `Reconciler` contract: checks
//! the gate, writes status by SSA on every apply, posts events for actions).
//!
//! Every wait is bounded and on an observed condition (the double's log of applies, or the
//! object as the API server returns it), never a fixed sleep.

#![allow(
    clippy::unwrap_used,
    reason = "a test module: a panic with its location is the failure report we want"
)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::{Region, SdkConfig};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use serde_json::json;
use stagehand::base::conditions::find_condition;
use stagehand::base::{Classify, ErrorClass, ReconcileOutcome, may_act};
use stagehand::runtime::status::{FIELD_MANAGER, apply_status, next_common_status};
use stagehand::runtime::{
    Context, Metrics, Reconciler, Shutdown, effective_deletion_policy, run_controller,
};
use stagehand::settings::Settings;
use stagehand_crds::condition::{READY, RECONCILING, STALLED};
use stagehand_crds::{DeletionPolicy, FINALIZER, LambdaStage, PAUSED_ANNOTATION};
use stagehand_testenv::TestApiServer;
use tokio::sync::watch;

/// Upper bound of every wait. Generous: the recoverable-retry tests wait out a 10s backoff.
const TIMEOUT: Duration = Duration::from_secs(30);
/// An empty or near-empty cache syncs in milliseconds on the stand-in.
const CACHE_SYNC_DEADLINE: Duration = Duration::from_secs(5);
/// How long a `Script::Busy` round keeps its worker.
const BUSY_ROUND: Duration = Duration::from_millis(20);
const NAMESPACE: &str = "shop";
const CHALICE_EXAMPLE: &str = include_str!("../../../examples/lambda-stage-chalice.yaml");

// --- the test double -------------------------------------------------------------------------

/// What the double does for one object (by name; default `Converge`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Script {
    /// Deploy once per generation (an action: event + metric), then report Converged.
    Converge,
    /// Fail with a recoverable error.
    Throttled,
    /// Fail with a stalled error.
    OwnershipConflict,
    /// Work for a while (the time a round against a slow AWS takes), then ask to be
    /// reconciled again at once, writing nothing: an object that keeps a worker busy.
    Busy,
}

#[derive(Debug, thiserror::Error)]
enum DoubleError {
    #[error("AWS is throttling")]
    Throttled,
    #[error("function is owned by another stage")]
    OwnershipConflict,
    #[error(transparent)]
    Runtime(#[from] stagehand::runtime::Error),
}

impl Classify for DoubleError {
    fn class(&self) -> ErrorClass {
        match self {
            Self::Throttled => ErrorClass::Recoverable,
            Self::OwnershipConflict => ErrorClass::Stalled,
            Self::Runtime(e) => e.class(),
        }
    }
    fn reason(&self) -> &'static str {
        match self {
            Self::Throttled => "Throttled",
            Self::OwnershipConflict => "OwnershipConflict",
            Self::Runtime(e) => e.reason(),
        }
    }
}

/// One completed apply, as the double saw it.
#[derive(Clone, Debug)]
struct Applied {
    name: String,
    generation: i64,
    /// resourceVersion of the object the reconcile was given.
    seen_resource_version: String,
    /// resourceVersion the status write returned.
    written_resource_version: String,
    acted: bool,
}

#[derive(Clone, Debug, Default)]
struct Log {
    applies: Vec<Applied>,
    /// Rounds of `Script::Busy` objects, by name.
    busy_rounds: HashMap<String, usize>,
    cleanups: Vec<(String, DeletionPolicy)>,
}

impl Log {
    fn applies_of(&self, name: &str) -> Vec<&Applied> {
        self.applies.iter().filter(|a| a.name == name).collect()
    }
    fn actions_of(&self, name: &str) -> usize {
        self.applies_of(name).iter().filter(|a| a.acted).count()
    }
}

/// Shared between the double (inside the controller) and the test.
#[derive(Debug)]
struct Probe {
    scripts: Mutex<HashMap<String, Script>>,
    /// Generation last "deployed" per object (the double's stand-in for AWS state).
    deployed: Mutex<HashMap<String, i64>>,
    log: watch::Sender<Log>,
}

impl Probe {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            scripts: Mutex::default(),
            deployed: Mutex::default(),
            log: watch::Sender::new(Log::default()),
        })
    }

    fn script(&self, name: &str, script: Script) {
        self.scripts.lock().unwrap().insert(name.to_owned(), script);
    }

    fn log(&self) -> Log {
        self.log.borrow().clone()
    }

    /// Waits (bounded) until the log satisfies `condition`; returns that log.
    async fn wait_for(&self, what: &str, condition: impl Fn(&Log) -> bool) -> Log {
        let mut rx = self.log.subscribe();
        match tokio::time::timeout(TIMEOUT, rx.wait_for(|log| condition(log))).await {
            Ok(Ok(log)) => log.clone(),
            _ => panic!("timed out waiting for {what}; log: {:#?}", self.log()),
        }
    }
}

struct Double {
    probe: Arc<Probe>,
}

impl Reconciler<LambdaStage> for Double {
    type Error = DoubleError;

    async fn apply(
        &self,
        stage: Arc<LambdaStage>,
        ctx: Arc<Context>,
    ) -> Result<Action, DoubleError> {
        let name = stage.name_any();
        let generation = stage.metadata.generation.unwrap_or_default();
        let script = self
            .probe
            .scripts
            .lock()
            .unwrap()
            .get(&name)
            .copied()
            .unwrap_or(Script::Converge);
        if script == Script::Busy {
            tokio::time::sleep(BUSY_ROUND).await;
            self.probe
                .log
                .send_modify(|log| *log.busy_rounds.entry(name).or_default() += 1);
            return Ok(Action::requeue(Duration::from_millis(1)));
        }
        let gate = may_act(stage.annotations(), stage.spec.lifecycle.management);
        let mut acted = false;
        let result = if gate.may_observe() {
            match script {
                Script::Converge => {
                    let deployed = self.probe.deployed.lock().unwrap().get(&name).copied();
                    if gate.may_act() && deployed < Some(generation) {
                        ctx.events()
                            .action(
                                stage.as_ref(),
                                "CodeUpdated",
                                "UpdateFunctionCode",
                                "deployed",
                            )
                            .await;
                        ctx.metrics.record_action("LambdaStage", "code_update");
                        self.probe
                            .deployed
                            .lock()
                            .unwrap()
                            .insert(name.clone(), generation);
                        acted = true;
                    }
                    Ok(ReconcileOutcome::Converged {
                        message: "in sync".into(),
                    })
                }
                Script::Throttled => Err(DoubleError::Throttled),
                Script::OwnershipConflict => Err(DoubleError::OwnershipConflict),
                Script::Busy => unreachable!("answered above"),
            }
        } else {
            Ok(ReconcileOutcome::Paused)
        };
        let outcome = match &result {
            Ok(outcome) => outcome.clone(),
            Err(error) => ReconcileOutcome::from_error(error),
        };
        let previous = stage.status.as_ref().map(|s| &s.common);
        let status = next_common_status(
            previous,
            &outcome,
            stage.metadata.generation,
            Timestamp::now(),
        );
        let api: Api<LambdaStage> =
            Api::namespaced(ctx.client.clone(), &stage.namespace().unwrap());
        let written =
            apply_status(&api, stage.as_ref(), serde_json::to_value(&status).unwrap()).await?;
        self.probe.log.send_modify(|log| {
            log.applies.push(Applied {
                name,
                generation,
                seen_resource_version: stage.resource_version().unwrap_or_default(),
                written_resource_version: written.resource_version().unwrap_or_default(),
                acted,
            });
        });
        result.map(|_| Action::requeue(Duration::from_secs(300)))
    }

    async fn cleanup(
        &self,
        stage: Arc<LambdaStage>,
        _ctx: Arc<Context>,
    ) -> Result<Action, DoubleError> {
        let policy = effective_deletion_policy(
            stage.spec.lifecycle.deletion_policy,
            !stage.spec.lifecycle.adopt,
        );
        self.probe
            .log
            .send_modify(|log| log.cleanups.push((stage.name_any(), policy)));
        Ok(Action::await_change())
    }
}

// --- environment ----------------------------------------------------------------------------

struct Env {
    server: TestApiServer,
    ctx: Arc<Context>,
    probe: Arc<Probe>,
    shutdown: Shutdown,
    controller: Option<tokio::task::JoinHandle<()>>,
}

impl Env {
    /// A stand-in with the Stagehand CRDs and namespace `shop`, and a LambdaStage controller
    /// (watching all namespaces, as by default) running the double, caches synced.
    async fn start() -> Self {
        let mut env = Self::without_controller().await;
        env.start_controller().await;
        env
    }

    /// The stand-in with the CRDs and namespace `shop`; no controller yet.
    async fn without_controller() -> Self {
        Self::without_controller_with(Settings::default()).await
    }

    /// [`Env::without_controller`] with `settings`.
    async fn without_controller_with(settings: Settings) -> Self {
        // The runtime's warnings (failed reconciles, watch errors) in the test's output.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()))
            .with_test_writer()
            .try_init();
        let server = TestApiServer::start().await.unwrap();
        let client = server.client();
        server.install_stagehand_crds().await.unwrap();
        server.create_namespace(NAMESPACE).await.unwrap();
        let aws = SdkConfig::builder()
            .region(Region::new("eu-west-1"))
            .build();
        let ctx = Arc::new(Context::new(client, aws, Metrics::new().unwrap(), settings));
        Self {
            server,
            ctx,
            probe: Probe::new(),
            shutdown: Shutdown::new(),
            controller: None,
        }
    }

    /// Starts the LambdaStage controller (watching all namespaces, as by default) with the
    /// double; returns once its cache is synced.
    async fn start_controller(&mut self) {
        let handle = run_controller::<LambdaStage, _>(
            self.ctx.clone(),
            Double {
                probe: self.probe.clone(),
            },
            &self.shutdown,
        );
        self.controller = Some(tokio::spawn(handle.run));
        // `biased`: the deadline is checked first, so a lost wake-up of `caches_synced` fails
        // here instead of being rescued by the timer's own wake-up.
        tokio::select! {
            biased;
            () = tokio::time::sleep(CACHE_SYNC_DEADLINE) => {
                panic!("cache sync not reported within {CACHE_SYNC_DEADLINE:?}")
            }
            synced = handle.caches_synced => assert!(synced, "controller stopped before syncing"),
        }
    }

    fn stages(&self) -> Api<LambdaStage> {
        Api::namespaced(self.ctx.client.clone(), NAMESPACE)
    }

    async fn create(&self, stage: &LambdaStage) -> LambdaStage {
        self.stages()
            .create(&PostParams::default(), stage)
            .await
            .unwrap()
    }

    async fn get(&self, name: &str) -> LambdaStage {
        self.stages().get(name).await.unwrap()
    }

    /// Polls the object until `condition` holds (bounded); returns it.
    async fn wait_for(
        &self,
        name: &str,
        what: &str,
        condition: impl Fn(&LambdaStage) -> bool,
    ) -> LambdaStage {
        let api = self.stages();
        let mut last = None;
        let found = tokio::time::timeout(TIMEOUT, async {
            loop {
                last = api.get_opt(name).await.ok().flatten();
                if let Some(stage) = last.as_ref().filter(|s| condition(s)) {
                    return stage.clone();
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        found.unwrap_or_else(|_| {
            panic!("timed out waiting for {name} to be {what}; last: {last:#?}")
        })
    }

    /// Merge-patches the spec (bumps the generation).
    async fn patch_spec(&self, name: &str, spec: serde_json::Value) -> LambdaStage {
        self.stages()
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({ "spec": spec })),
            )
            .await
            .unwrap()
    }

    async fn annotate(&self, name: &str, key: &str, value: &str) -> LambdaStage {
        self.stages()
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({ "metadata": { "annotations": { key: value } } })),
            )
            .await
            .unwrap()
    }

    /// The value of `series` once `holds` accepts it. Metrics recorded by the runtime's
    /// reconcile wrapper (results, errors) move just after the reconciler returns, i.e. after
    /// the status write a test waits for: poll (bounded) instead of reading once.
    async fn metric_when(&self, series: &str, holds: impl Fn(&str) -> bool) -> String {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let text = self.ctx.metrics.render().unwrap();
            let value = text
                .lines()
                .find_map(|l| l.strip_prefix(series).map(|v| v.trim().to_owned()));
            match value {
                Some(value) if holds(&value) => return value,
                _ if tokio::time::Instant::now() >= deadline => {
                    panic!("{series} never satisfied the expectation; metrics:\n{text}")
                }
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }

    /// Status writes (`PATCH …/status`) the API server received so far.
    fn status_writes(&self) -> usize {
        self.server
            .requests()
            .iter()
            .filter(|r| {
                r.starts_with("PATCH ")
                    && r.split('?')
                        .next()
                        .is_some_and(|path| path.ends_with("/status"))
            })
            .count()
    }

    fn metric(&self, series: &str) -> String {
        let text = self.ctx.metrics.render().unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(series).map(|v| v.trim().to_owned()))
            .unwrap_or_else(|| panic!("no series {series} in:\n{text}"))
    }

    /// Triggers the graceful shutdown and checks the controller stops.
    async fn stop(self) {
        self.shutdown.trigger();
        if let Some(controller) = self.controller {
            tokio::time::timeout(TIMEOUT, controller)
                .await
                .expect("controller stops on shutdown")
                .unwrap();
        }
        self.server.shutdown().await;
    }
}

/// The Chalice example (namespace `shop`, `deletionPolicy: Retain`, adopted), renamed.
fn chalice_stage(name: &str) -> LambdaStage {
    let mut stage: LambdaStage = serde_saphyr::from_str(CHALICE_EXAMPLE).unwrap();
    stage.metadata.name = Some(name.to_owned());
    stage
}

fn condition<'a>(stage: &'a LambdaStage, type_: &str) -> Option<&'a Condition> {
    stage
        .status
        .as_ref()
        .and_then(|s| find_condition(&s.common.conditions, type_))
}

/// `(status, reason)` of a condition, `("", "")` when absent.
fn state(stage: &LambdaStage, type_: &str) -> (String, String) {
    condition(stage, type_).map_or_else(Default::default, |c| (c.status.clone(), c.reason.clone()))
}

fn observed_generation(stage: &LambdaStage) -> Option<i64> {
    stage
        .status
        .as_ref()
        .and_then(|s| s.common.observed_generation)
}

/// Every condition and the status describe the object's current generation.
fn is_current(stage: &LambdaStage) -> bool {
    let generation = stage.metadata.generation;
    observed_generation(stage) == generation
        && stage.status.as_ref().is_some_and(|s| {
            !s.common.conditions.is_empty()
                && s.common
                    .conditions
                    .iter()
                    .all(|c| c.observed_generation == generation)
        })
}

fn is(stage: &LambdaStage, type_: &str, status: &str, reason: &str) -> bool {
    state(stage, type_) == (status.to_owned(), reason.to_owned())
}

fn transition_time(stage: &LambdaStage, type_: &str) -> Timestamp {
    condition(stage, type_).unwrap().last_transition_time.0
}

// --- tests ----------------------------------------------------------------------------------

/// A long-ago transition time seeded into the status before the controller runs, so "kept" and
/// "moved" are unambiguous whatever second the test runs in.
const SEEDED_TRANSITION: &str = "2020-01-01T00:00:00Z";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn converged_object_gets_finalizer_status_by_ssa_events_and_metrics() {
    let mut env = Env::without_controller().await;
    let name = "shopping-assistant-api-dev";
    env.create(&chalice_stage(name)).await;
    // Status as a previous Stagehand (or a restore) left it: Ready=True since 2020.
    let seeded: Vec<_> = [(READY, "True"), (RECONCILING, "False"), (STALLED, "False")]
        .iter()
        .map(|(type_, status)| {
            json!({"type": type_, "status": status, "reason": "Converged", "message": "",
                   "lastTransitionTime": SEEDED_TRANSITION, "observedGeneration": 1})
        })
        .collect();
    env.stages()
        .patch_status(
            name,
            &PatchParams::apply("restore"),
            &Patch::Apply(json!({
                "apiVersion": "stagehand.dev/v1alpha1", "kind": "LambdaStage",
                "metadata": {"name": name},
                "status": {"conditions": seeded, "observedGeneration": 1},
            })),
        )
        .await
        .unwrap();
    env.start_controller().await;

    // First reconciles: finalizer, then apply (a deploy) with status.
    env.probe
        .wait_for("a first apply", |log| !log.applies_of(name).is_empty())
        .await;
    let stage = env
        .wait_for(name, "written by stagehand", |s| {
            is_current(s)
                && s.status
                    .as_ref()
                    .and_then(|st| st.common.message.as_deref())
                    == Some("in sync")
        })
        .await;
    assert_eq!(stage.finalizers(), [FINALIZER]);
    assert_eq!(stage.metadata.generation, Some(1));
    assert!(is(&stage, READY, "True", "Converged"), "{stage:#?}");
    assert!(is(&stage, RECONCILING, "False", "Converged"), "{stage:#?}");
    assert!(is(&stage, STALLED, "False", "Converged"), "{stage:#?}");
    let seeded_at: Timestamp = SEEDED_TRANSITION.parse().unwrap();
    for type_ in [READY, RECONCILING, STALLED] {
        assert_eq!(
            transition_time(&stage, type_),
            seeded_at,
            "{type_}: status unchanged, so lastTransitionTime must be kept"
        );
    }
    // Status was written by SSA on /status with field manager `stagehand`.
    let managed = stage.metadata.managed_fields.clone().unwrap_or_default();
    let ours: Vec<_> = managed
        .iter()
        .filter(|m| m.manager.as_deref() == Some(FIELD_MANAGER))
        .collect();
    assert!(
        ours.iter().any(|m| m.operation.as_deref() == Some("Apply")
            && m.subresource.as_deref() == Some("status")
            && m.fields_v1
                .as_ref()
                .is_some_and(|f| f.0.pointer("/f:status/f:observedGeneration").is_some())),
        "no stagehand Apply entry on status owning observedGeneration: {managed:#?}"
    );
    // The deploy was reported as an events.k8s.io/v1 Event and counted.
    let events: Api<Event> = Api::namespaced(env.ctx.client.clone(), NAMESPACE);
    let events = events.list(&ListParams::default()).await.unwrap().items;
    let deployed: Vec<_> = events
        .iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
        .collect();
    assert_eq!(deployed.len(), 1, "{events:#?}");
    assert_eq!(deployed[0].reason.as_deref(), Some("CodeUpdated"));
    assert_eq!(deployed[0].action.as_deref(), Some("UpdateFunctionCode"));
    assert_eq!(deployed[0].type_.as_deref(), Some("Normal"));
    assert_eq!(
        deployed[0].reporting_controller.as_deref(),
        Some("stagehand")
    );
    assert_eq!(
        env.metric(r#"stagehand_actions_total{action="code_update",kind="LambdaStage"}"#),
        "1"
    );
    env.metric_when(
        r#"controller_runtime_reconcile_total{controller="lambdastage",result="requeue_after"}"#,
        |v| v.parse::<u64>().is_ok_and(|n| n >= 1),
    )
    .await;
    assert_eq!(
        env.metric(r#"controller_runtime_reconcile_errors_total{controller="lambdastage"}"#),
        "0"
    );

    // A reconcile that changes nothing writes nothing: poke an unrelated annotation and check
    // the reconcile it causes leaves the resourceVersion where the poke put it, and sends no
    // status write at all (a converged resync of 10,000 objects would otherwise be 10,000
    // requests the API server answers as no-ops).
    let status_writes_before = env.status_writes();
    let poked = env.annotate(name, "example.com/poke", "1").await;
    let poked_rv = poked.resource_version().unwrap();
    let log = env
        .probe
        .wait_for("the reconcile of the poke", |log| {
            log.applies_of(name)
                .iter()
                .any(|a| a.seen_resource_version == poked_rv)
        })
        .await;
    let after_poke = log
        .applies_of(name)
        .into_iter()
        .find(|a| a.seen_resource_version == poked_rv)
        .unwrap()
        .clone();
    assert_eq!(
        after_poke.written_resource_version, poked_rv,
        "no-op status write bumped the resourceVersion"
    );
    assert!(!after_poke.acted);
    assert_eq!(env.get(name).await.resource_version().unwrap(), poked_rv);
    assert_eq!(
        env.status_writes(),
        status_writes_before,
        "an unchanged status was sent to the API server"
    );

    // A spec change bumps the generation; the next status carries it (and one more deploy).
    let changed = env.patch_spec(name, json!({"resyncInterval": "10m"})).await;
    assert_eq!(changed.metadata.generation, Some(2));
    let stage = env.wait_for(name, "at generation 2", is_current).await;
    assert_eq!(observed_generation(&stage), Some(2));
    assert!(is(&stage, READY, "True", "Converged"));
    assert_eq!(transition_time(&stage, READY), seeded_at);
    let log = env
        .probe
        .wait_for("the deploy of generation 2", |log| {
            log.actions_of(name) == 2
        })
        .await;
    let deploys: Vec<i64> = log
        .applies_of(name)
        .iter()
        .filter(|a| a.acted)
        .map(|a| a.generation)
        .collect();
    assert_eq!(deploys, [1, 2]);

    // A transition moves lastTransitionTime of the conditions that changed, only those.
    env.probe.script(name, Script::Throttled);
    // Transition times are stored with second precision.
    let before = Timestamp::from_second(Timestamp::now().as_second()).unwrap();
    env.patch_spec(name, json!({"resyncInterval": "15m"})).await;
    let stage = env
        .wait_for(name, "Reconciling=True (Throttled)", |s| {
            is_current(s) && is(s, RECONCILING, "True", "Throttled")
        })
        .await;
    assert!(is(&stage, READY, "False", "Throttled"), "{stage:#?}");
    assert!(is(&stage, STALLED, "False", "Throttled"), "{stage:#?}");
    assert!(transition_time(&stage, READY) >= before, "{stage:#?}");
    assert!(transition_time(&stage, RECONCILING) >= before, "{stage:#?}");
    assert_eq!(transition_time(&stage, STALLED), seeded_at);
    env.metric_when(
        r#"stagehand_reconcile_errors_total{kind="LambdaStage",reason="Throttled"}"#,
        |v| v.parse::<u64>().is_ok_and(|n| n >= 1),
    )
    .await;

    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recoverable_errors_are_retried_stalled_ones_wait_for_a_spec_change() {
    let env = Env::start().await;
    let (retried, stalled) = ("retried", "stalled");
    env.probe.script(retried, Script::Throttled);
    env.probe.script(stalled, Script::OwnershipConflict);
    env.create(&chalice_stage(stalled)).await;
    env.create(&chalice_stage(retried)).await;

    let stage = env
        .wait_for(stalled, "Stalled", |s| {
            is_current(s) && is(s, STALLED, "True", "OwnershipConflict")
        })
        .await;
    assert!(is(&stage, READY, "False", "OwnershipConflict"));
    assert!(is(&stage, RECONCILING, "False", "OwnershipConflict"));
    let settled_rv = stage.resource_version().unwrap();

    // The recoverable one is retried by the timer: two applies of the same, unchanged object
    // (nothing but the backoff can cause the second).
    let log = env
        .probe
        .wait_for("a timed retry of the recoverable object", |log| {
            let applies = log.applies_of(retried);
            applies.iter().enumerate().any(|(i, a)| {
                applies[i + 1..]
                    .iter()
                    .any(|b| b.seen_resource_version == a.seen_resource_version)
            })
        })
        .await;
    // By then (≥ 5s after the stalled error, its first backoff step) the stalled object has
    // not been retried: every apply of it saw a different object version (the status write of
    // the first failure causes one more reconcile, which writes nothing).
    let stalled_applies = log.applies_of(stalled);
    let mut versions: Vec<_> = stalled_applies
        .iter()
        .map(|a| &a.seen_resource_version)
        .collect();
    versions.dedup();
    assert_eq!(
        versions.len(),
        stalled_applies.len(),
        "stalled object retried: {stalled_applies:#?}"
    );
    assert!(stalled_applies.len() <= 2, "{stalled_applies:#?}");
    assert_eq!(
        env.get(stalled).await.resource_version().unwrap(),
        settled_rv
    );
    let terminal = stalled_applies.len().to_string();
    env.metric_when(
        r#"controller_runtime_terminal_reconcile_errors_total{controller="lambdastage"}"#,
        |v| v == terminal,
    )
    .await;

    // A spec change is the next attempt; fixed, it converges.
    env.probe.script(stalled, Script::Converge);
    env.patch_spec(stalled, json!({"resyncInterval": "10m"}))
        .await;
    let stage = env
        .wait_for(stalled, "Ready after the fix", |s| {
            is_current(s) && is(s, READY, "True", "Converged")
        })
        .await;
    assert!(is(&stage, STALLED, "False", "Converged"));
    assert_eq!(observed_generation(&stage), Some(2));

    env.stop().await;
}

/// A controller whose workers never run out of work still reaches every object, in the order
/// they came due: 12 objects that keep its 2 workers busy (each round asks for the next at
/// once) starve neither each other nor 6 objects created meanwhile. kube-runtime's own limit
/// took the objects that came due in the hash order of its pending set, and some were never
/// reconciled (`runtime::workers`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saturated_controller_still_reaches_every_object() {
    let settings = Settings {
        concurrency: 2,
        ..Settings::default()
    };
    let mut env = Env::without_controller_with(settings).await;
    let busy: Vec<String> = (0..12).map(|n| format!("busy-{n}")).collect();
    for name in &busy {
        env.probe.script(name, Script::Busy);
        env.create(&chalice_stage(name)).await;
    }
    env.start_controller().await;
    env.probe
        .wait_for("the workers saturated", |log| {
            log.busy_rounds.values().sum::<usize>() >= 40
        })
        .await;

    let new: Vec<String> = (0..6).map(|n| format!("new-{n}")).collect();
    for name in &new {
        env.create(&chalice_stage(name)).await;
    }
    for name in &new {
        env.wait_for(name, "Ready beside the busy objects", |s| {
            is_current(s) && is(s, READY, "True", "Converged")
        })
        .await;
    }
    env.probe
        .wait_for("every busy object's turn, again and again", |log| {
            busy.iter()
                .all(|name| log.busy_rounds.get(name).copied().unwrap_or(0) >= 3)
        })
        .await;
    // Stopping waits for the two running rounds only, not for the queue behind them.
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_objects_report_paused_and_are_not_acted_on() {
    let env = Env::start().await;
    let name = "paused";
    let mut stage = chalice_stage(name);
    stage
        .annotations_mut()
        .insert(PAUSED_ANNOTATION.into(), "true".into());
    env.create(&stage).await;

    let stage = env
        .wait_for(name, "Paused", |s| {
            is_current(s) && is(s, READY, "Unknown", "Paused")
        })
        .await;
    assert!(is(&stage, RECONCILING, "False", "Paused"));
    assert!(is(&stage, STALLED, "False", "Paused"));
    let log = env
        .probe
        .wait_for("the paused apply", |log| !log.applies_of(name).is_empty())
        .await;
    assert_eq!(log.actions_of(name), 0);
    let events: Api<Event> = Api::namespaced(env.ctx.client.clone(), NAMESPACE);
    assert!(
        events
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );

    // Unpausing (value other than "true") lets it act and converge.
    env.annotate(name, PAUSED_ANNOTATION, "false").await;
    env.wait_for(name, "Ready", |s| is(s, READY, "True", "Converged"))
        .await;
    let log = env
        .probe
        .wait_for("the deploy after unpausing", |log| {
            log.actions_of(name) >= 1
        })
        .await;
    assert_eq!(log.actions_of(name), 1);
    assert_eq!(
        env.metric(r#"stagehand_actions_total{action="code_update",kind="LambdaStage"}"#),
        "1"
    );

    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletion_runs_cleanup_with_the_policy_then_releases_the_object() {
    let env = Env::start().await;
    let retained = chalice_stage("retained"); // deletionPolicy: Retain
    let mut deleted = chalice_stage("deleted");
    deleted.spec.lifecycle.deletion_policy = Some(DeletionPolicy::Delete);
    for stage in [&retained, &deleted] {
        env.create(stage).await;
    }
    for name in ["retained", "deleted"] {
        env.wait_for(name, "Ready with the finalizer", |s| {
            s.finalizers() == [FINALIZER] && is(s, READY, "True", "Converged")
        })
        .await;
        env.stages()
            .delete(name, &DeleteParams::default())
            .await
            .unwrap();
    }
    for name in ["retained", "deleted"] {
        let gone = tokio::time::timeout(TIMEOUT, async {
            while env.stages().get_opt(name).await.unwrap().is_some() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        assert!(
            gone.is_ok(),
            "{name} still there: {:#?}",
            env.stages().get_opt(name).await
        );
    }
    let mut cleanups = env.probe.log().cleanups;
    cleanups.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        cleanups,
        [
            ("deleted".to_owned(), DeletionPolicy::Delete),
            ("retained".to_owned(), DeletionPolicy::Retain)
        ]
    );

    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_event_is_one_series_and_another_note_is_another_event() {
    use k8s_openapi::api::core::v1::ConfigMap;
    use stagehand::runtime::events::{EventPublisher, action_event};

    let server = TestApiServer::start().await.unwrap();
    let maps: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let regarding = maps
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "api-dev"}})).unwrap(),
        )
        .await
        .unwrap();
    let events: Api<Event> = Api::namespaced(server.client(), "default");
    let listed = || async { events.list(&ListParams::default()).await.unwrap().items };
    let publisher = EventPublisher::new(server.client(), "stagehand");
    let deployed = |build: &str| action_event("CodeUpdated", "UpdateFunctionCode", build);

    publisher
        .publish(&regarding, deployed("api: deployed 1a2b"))
        .await;
    publisher
        .publish(&regarding, deployed("api: deployed 1a2b"))
        .await;
    publisher
        .publish(&regarding, deployed("api: deployed 1a2b"))
        .await;
    let first = listed().await;
    assert_eq!(first.len(), 1, "three occurrences, one Event: {first:#?}");
    assert_eq!(first[0].series.as_ref().map(|s| s.count), Some(3));
    assert_eq!(first[0].note.as_deref(), Some("api: deployed 1a2b"));
    assert_eq!(first[0].reporting_controller.as_deref(), Some("stagehand"));
    assert_eq!(
        first[0].regarding.as_ref().and_then(|r| r.uid.clone()),
        regarding.metadata.uid
    );

    // Another build deployed is news, not a repeat of the first.
    publisher
        .publish(&regarding, deployed("api: deployed 3c4d"))
        .await;
    let notes: Vec<_> = listed().await.into_iter().filter_map(|e| e.note).collect();
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert!(
        notes.contains(&"api: deployed 3c4d".to_owned()),
        "{notes:?}"
    );
    assert_eq!(publisher.remembered(), 2);

    // An Event gone from the API server (its TTL) is created again, not patched into nothing.
    events
        .delete(&first[0].name_any(), &DeleteParams::default())
        .await
        .unwrap();
    publisher
        .publish(&regarding, deployed("api: deployed 1a2b"))
        .await;
    let again = listed().await;
    let recreated: Vec<_> = again
        .iter()
        .filter(|e| e.note.as_deref() == Some("api: deployed 1a2b"))
        .collect();
    assert_eq!(recreated.len(), 1, "{again:#?}");
    assert_ne!(recreated[0].name_any(), first[0].name_any());
    assert_eq!(recreated[0].series, None, "a new Event, counted from one");
}
