//! The GitOps health checks shipped in `charts/stagehand/gitops/`: the Argo CD Lua script (run
//! in a real Lua 5.4) and the Flux `healthCheckExprs` (run in a CEL interpreter) agree with the
//! kstatus reading of Stagehand's conditions, over the same table of objects.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use kube::core::cel::cel::{Context, Program, Value as CelValue};
use mlua::{Lua, LuaSerdeExt};
use serde_json::{Value, json};

fn gitops_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../charts/stagehand/gitops")
}

fn condition(type_: &str, status: &str, reason: &str, message: &str) -> Value {
    json!({"type": type_, "status": status, "reason": reason, "message": message,
           "lastTransitionTime": "2026-11-25T12:00:00Z", "observedGeneration": 3})
}

fn object(generation: i64, status: impl Into<Option<Value>>, paused: bool) -> Value {
    let mut metadata = json!({"name": "shopping-assistant-api-dev", "namespace": "shop", "generation": generation});
    if paused {
        metadata["annotations"] = json!({"stagehand.dev/paused": "true"});
    }
    let mut obj = json!({"apiVersion": "stagehand.dev/v1alpha1", "kind": "LambdaStage", "metadata": metadata, "spec": {}});
    if let Some(status) = status.into() {
        obj["status"] = status;
    }
    obj
}

fn status(observed_generation: i64, conditions: &[Value]) -> Value {
    json!({"observedGeneration": observed_generation, "conditions": conditions})
}

/// (case, object, Argo CD health, Flux verdict)
fn cases() -> Vec<(&'static str, Value, &'static str, &'static str)> {
    let ready = condition("Ready", "True", "Converged", "3/3 functions in sync");
    let not_reconciling = condition("Reconciling", "False", "Converged", "");
    let not_stalled = condition("Stalled", "False", "Converged", "");
    vec![
        (
            "no status yet",
            object(3, None, false),
            "Progressing",
            "inProgress",
        ),
        (
            "status for an older generation",
            object(
                4,
                status(
                    3,
                    &[ready.clone(), not_reconciling.clone(), not_stalled.clone()],
                ),
                false,
            ),
            "Progressing",
            "inProgress",
        ),
        (
            "converged",
            object(
                3,
                status(
                    3,
                    &[ready.clone(), not_reconciling.clone(), not_stalled.clone()],
                ),
                false,
            ),
            "Healthy",
            "current",
        ),
        (
            "deploying",
            object(
                3,
                status(
                    3,
                    &[
                        condition("Ready", "False", "CodeUpdating", "updating 1 function"),
                        condition("Reconciling", "True", "CodeUpdating", "updating 1 function"),
                        not_stalled.clone(),
                    ],
                ),
                false,
            ),
            "Progressing",
            "inProgress",
        ),
        (
            "stalled on a hash mismatch",
            object(
                3,
                status(
                    3,
                    &[
                        condition(
                            "Ready",
                            "False",
                            "ArtifactMismatch",
                            "pinned abc, artifact def",
                        ),
                        not_reconciling.clone(),
                        condition(
                            "Stalled",
                            "True",
                            "ArtifactMismatch",
                            "pinned abc, artifact def",
                        ),
                    ],
                ),
                false,
            ),
            "Degraded",
            "failed",
        ),
        (
            "drift reported in ObserveOnly mode",
            object(
                3,
                status(
                    3,
                    &[
                        condition(
                            "Ready",
                            "False",
                            "DriftDetected",
                            "code drifted on 1 function",
                        ),
                        condition("Reconciling", "False", "ObserveOnly", ""),
                        condition("Stalled", "False", "ObserveOnly", ""),
                    ],
                ),
                false,
            ),
            "Degraded",
            "failed",
        ),
        (
            "paused",
            object(
                3,
                status(3, &[condition("Ready", "Unknown", "Paused", "")]),
                true,
            ),
            "Suspended",
            "inProgress",
        ),
    ]
}

#[test]
fn argo_cd_lua_health_check_reads_the_conditions() {
    let script = std::fs::read_to_string(gitops_dir().join("health.lua")).unwrap();
    for (case, obj, want, _) in cases() {
        let lua = Lua::new();
        lua.globals()
            .set("obj", lua.to_value(&obj).unwrap())
            .unwrap();
        let result: mlua::Table = lua
            .load(&script)
            .eval()
            .unwrap_or_else(|e| panic!("{case}: {e}"));
        let health: String = result.get("status").unwrap();
        let message: String = result.get("message").unwrap();
        assert_eq!(health, want, "{case}: {message}");
        assert!(
            !message.is_empty(),
            "{case}: Argo CD shows the message; it must say something"
        );
    }
}

#[test]
fn the_argocd_cm_snippet_embeds_exactly_health_lua() {
    let script = std::fs::read_to_string(gitops_dir().join("health.lua")).unwrap();
    let snippet = std::fs::read_to_string(gitops_dir().join("argocd-cm.yaml")).unwrap();
    let cm: Value = serde_saphyr::from_str(&snippet).unwrap();
    let embedded = cm["data"]["resource.customizations.health.stagehand.dev_*"]
        .as_str()
        .unwrap();
    assert_eq!(
        embedded, script,
        "argocd-cm.yaml is out of date with health.lua"
    );
}

/// Flux evaluates each expression with the object's top-level fields as variables; the first of
/// failed / inProgress / current that holds decides (a missing field means "not yet").
fn flux_verdict(checks: &Value, obj: &Value) -> &'static str {
    let mut context = Context::default();
    for (key, value) in obj.as_object().unwrap() {
        context.add_variable(key.as_str(), value.clone()).unwrap();
    }
    let holds = |name: &str| -> bool {
        let source = checks[name].as_str().unwrap();
        let program =
            Program::compile(source).unwrap_or_else(|e| panic!("{name} does not compile: {e:?}"));
        matches!(program.execute(&context), Ok(CelValue::Bool(true)))
    };
    if holds("failed") {
        "failed"
    } else if holds("inProgress") {
        "inProgress"
    } else if holds("current") {
        "current"
    } else {
        "inProgress"
    }
}

#[test]
fn flux_health_check_exprs_agree_with_the_argo_cd_script() {
    let text = std::fs::read_to_string(gitops_dir().join("flux-health-checks.yaml")).unwrap();
    let checks: Vec<Value> = serde_saphyr::from_str(&text).unwrap();
    let kinds: Vec<&str> = checks.iter().map(|c| c["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["LambdaStage", "SpotFleet", "StaticSite"]);
    for check in &checks {
        assert_eq!(check["apiVersion"], "stagehand.dev/v1alpha1");
        for (case, obj, _, want) in cases() {
            assert_eq!(flux_verdict(check, &obj), want, "{}: {case}", check["kind"]);
        }
    }
}
