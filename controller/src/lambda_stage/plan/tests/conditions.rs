//! The domain conditions and the outcome a plan reports.

use stagehand_crds::condition::{CODE_IN_SYNC, LAYERS_ATTACHED, MAPPINGS_HEALTHY, VALIDATED};

use super::fixtures::*;
use crate::base::conditions::{ConditionStatus, ReconcileOutcome};
use crate::base::gates::ActGate;
use crate::lambda_stage::plan::{DriftField, reason};

#[test]
fn converged_stage_reports_every_condition_true() {
    let plan = plan_with(|_, _| {}, ActGate::Act);
    for type_ in [CODE_IN_SYNC, LAYERS_ATTACHED, MAPPINGS_HEALTHY, VALIDATED] {
        assert_eq!(
            condition_of(&plan, type_).0,
            ConditionStatus::True,
            "{type_}"
        );
    }
    assert!(matches!(plan.outcome(), ReconcileOutcome::Converged { .. }));
    assert!(plan.drift.is_empty());
}

#[test]
fn artifact_mismatch_names_both_hashes() {
    let plan = plan_with(
        |s, o| {
            artifact(o).head = Some(head(Some("v2")));
            s.code.as_mut().expect("code").sha256 = Some(b64("v1"));
        },
        ActGate::Act,
    );
    let stall = plan.stalled.as_ref().expect("stalled");
    assert!(
        stall.message.contains(&sha("v1").to_hex()),
        "{}",
        stall.message
    );
    assert!(
        stall.message.contains(&sha("v2").to_hex()),
        "{}",
        stall.message
    );
    let (status, reason, _) = condition_of(&plan, CODE_IN_SYNC);
    assert_eq!(
        (status, reason.as_str()),
        (ConditionStatus::False, reason::ARTIFACT_MISMATCH)
    );
    assert!(
        matches!(plan.outcome(), ReconcileOutcome::Stalled { reason, .. } if reason == "ArtifactMismatch")
    );
}

#[test]
fn code_drift_is_reported_per_function() {
    let plan = plan_with(
        |_, o| {
            artifact(o).head = Some(head(Some("v2")));
            function(o, "api").info.code_sha256 = Some(b64("v2"));
        },
        ActGate::Act,
    );
    let (status, reason, message) = condition_of(&plan, CODE_IN_SYNC);
    assert_eq!(
        (status, reason.as_str()),
        (ConditionStatus::False, reason::CODE_DRIFT)
    );
    assert!(message.starts_with("1/2 functions differ"), "{message}");
    assert_eq!(plan.drift.len(), 1);
    assert_eq!(
        (plan.drift[0].field, plan.drift[0].subject.as_str()),
        (DriftField::Code, "worker")
    );
    let summary: Vec<bool> = plan.functions.iter().map(|f| f.code_in_sync).collect();
    assert_eq!(summary, [true, false]);
}

#[test]
fn hash_pending_makes_code_in_sync_unknown() {
    let plan = plan_with(|_, o| artifact(o).head = Some(head(None)), ActGate::Act);
    assert_eq!(
        condition_of(&plan, CODE_IN_SYNC).0,
        ConditionStatus::Unknown
    );
}

#[test]
fn observe_only_reports_drift_without_acting() {
    let plan = plan_with(
        |_, o| artifact(o).head = Some(head(Some("v2"))),
        ActGate::ObserveOnly,
    );
    assert!(plan.actions.is_empty());
    assert_eq!(plan.drift.len(), 2);
    assert!(
        matches!(plan.outcome(), ReconcileOutcome::ObserveOnlyDrift { fields, .. } if fields == ["code"])
    );
    let mixed = plan_with(
        |s, o| {
            s.environment = env(&[("LOG_LEVEL", "info")]);
            artifact(o).head = Some(head(Some("v2")));
        },
        ActGate::ObserveOnly,
    );
    assert!(
        matches!(mixed.outcome(), ReconcileOutcome::ObserveOnlyDrift { fields, .. } if fields == ["code", "environment"])
    );
    let paused = plan_with(
        |_, o| artifact(o).head = Some(head(Some("v2"))),
        ActGate::Paused,
    );
    assert_eq!(paused.outcome(), ReconcileOutcome::Paused);
}
