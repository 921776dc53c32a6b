//! Whose instances these are — conflicts, adoption — and the act gate.

use super::fixtures::*;
use crate::aws::tags::ownership_tags;
use crate::base::conditions::ReconcileOutcome;
use crate::base::gates::ActGate;
use crate::spot_fleet::observed::InstanceState;
use crate::spot_fleet::plan::{Action, LaunchReason, ReplacementReason, plan, reason};

fn with_stranger(
    stranger: crate::spot_fleet::observed::ObservedInstance,
) -> crate::spot_fleet::observed::Observed {
    let mut instances = steady();
    instances.push(stranger);
    fleet(instances)
}

#[test]
fn stalls_name_the_instance_and_stop_every_action() {
    let rows = [
        (
            "another fleet's instance",
            healthy("i-9").owned_by("shop/SpotFleet/other", CLUSTER),
            reason::OWNERSHIP_CONFLICT,
            "instance i-9 is owned by shop/SpotFleet/other",
        ),
        (
            "this fleet's name in another cluster",
            healthy("i-9").owned_by(OWNER, "cluster-2"),
            reason::OWNERSHIP_CONFLICT,
            "(cluster cluster-2)",
        ),
        (
            "untagged without adopt",
            healthy("i-9").untagged(),
            reason::ADOPTION_REQUIRED,
            "instance i-9 exists without a stagehand.dev/owner tag and is named for this fleet; set spec.adopt: true",
        ),
    ];
    for (name, stranger, want_reason, want_message) in rows {
        // A scale-up is due too: the stall must stop it.
        let plan = plan_for(&spec_with(|s| s.capacity = 5), &with_stranger(stranger));
        let stall = plan.stalled.clone().expect(name);
        assert_eq!(stall.reason, want_reason, "{name}");
        assert!(
            stall.message.contains(want_message),
            "{name}: {}",
            stall.message
        );
        assert!(plan.actions.is_empty(), "{name}: {:?}", plan.actions);
        assert!(
            matches!(plan.outcome(), ReconcileOutcome::Stalled { .. }),
            "{name}"
        );
    }
}

#[test]
fn what_is_going_away_is_nobody_s_concern() {
    let observed = with_stranger(
        healthy("i-9")
            .owned_by("shop/SpotFleet/other", CLUSTER)
            .in_state(InstanceState::ShuttingDown),
    );
    let plan = plan_for(&spec(), &observed);
    assert_eq!(plan.stalled, None);
    assert_eq!(plan.actions, vec![]);
}

fn adopt_i9() -> Action {
    Action::Adopt {
        ids: vec!["i-9".into()],
        tags: ownership_tags(OWNER, CLUSTER),
    }
}

#[test]
fn adopt_tags_first_then_replaces_like_any_out_of_date_instance() {
    check_table(&[
        case(
            "adopted beyond capacity: tagged, then it is the one to go",
            spec_with(|s| s.lifecycle.adopt = true),
            with_stranger(healthy("i-9").untagged()),
            vec![
                adopt_i9(),
                replaced(&["i-9"], ReplacementReason::SpecHashDrifted),
            ],
        ),
        case(
            "adopted within capacity: tagged, replaced surge-first",
            spec_with(|s| {
                s.lifecycle.adopt = true;
                s.capacity = 4;
            }),
            with_stranger(healthy("i-9").untagged()),
            vec![adopt_i9(), launch(1, LaunchReason::Replacement)],
        ),
        case(
            "adopted under Recreate: tagged, terminated, no launch until it is gone",
            {
                let mut spec = recreate(4);
                spec.lifecycle.adopt = true;
                spec
            },
            with_stranger(healthy("i-9").untagged()),
            vec![
                adopt_i9(),
                replaced(&["i-9"], ReplacementReason::SpecHashDrifted),
            ],
        ),
    ]);
}

#[test]
fn the_gate_removes_actions_and_keeps_drift() {
    let observed = fleet(steady().into_iter().map(Scenario::outdated).collect());
    let observe_only = plan(
        &spec(),
        &crate::spot_fleet::plan::PlanContext {
            gate: ActGate::ObserveOnly,
            ..context()
        },
        &observed,
    );
    assert!(observe_only.actions.is_empty());
    assert!(observe_only.waits.is_empty());
    assert_eq!(observe_only.drift.len(), 4, "{:#?}", observe_only.drift);
    assert_eq!(
        observe_only.outcome(),
        ReconcileOutcome::ObserveOnlyDrift {
            fields: vec!["capacity".into(), "spec_hash".into()],
            message: String::new(),
        }
    );
    let paused = plan(
        &spec(),
        &crate::spot_fleet::plan::PlanContext {
            gate: ActGate::Paused,
            ..context()
        },
        &observed,
    );
    assert!(paused.actions.is_empty());
    assert_eq!(paused.outcome(), ReconcileOutcome::Paused);
}
