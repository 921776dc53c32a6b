//! `Recreate`: terminate every out-of-date instance, wait until none is listed (not even
//! shutting down), launch, wait healthy; the phase says which step the fleet is at.

use super::fixtures::*;
use crate::spot_fleet::observed::InstanceState;
use crate::spot_fleet::plan::{LaunchReason, Phase, ReplacementReason, TerminateReason, reason};

#[test]
fn recreate_table() {
    let rows = [
        (
            "steady: nothing to do",
            recreate(3),
            fleet(steady()),
            vec![],
            Phase::Stable,
        ),
        (
            "spec change: every out-of-date instance goes, nothing launches",
            recreate(3),
            fleet(steady().into_iter().map(Scenario::outdated).collect()),
            vec![replaced(
                &["i-1", "i-2", "i-3"],
                ReplacementReason::SpecHashDrifted,
            )],
            Phase::Terminating,
        ),
        (
            "mixed reasons: one action per reason, still no launch",
            recreate(3),
            fleet(vec![
                healthy("i-1").outdated(),
                healthy("i-2").in_state(InstanceState::Stopped),
                healthy("i-3"),
            ]),
            vec![
                replaced(&["i-2"], ReplacementReason::Stopped),
                replaced(&["i-1"], ReplacementReason::SpecHashDrifted),
            ],
            Phase::Terminating,
        ),
        (
            "old instances shutting down: still listed, no launch",
            recreate(3),
            fleet(
                steady()
                    .into_iter()
                    .map(|i| i.outdated().in_state(InstanceState::ShuttingDown))
                    .collect(),
            ),
            vec![],
            Phase::WaitingForTermination,
        ),
        (
            "old instances terminated: launch capacity",
            recreate(3),
            fleet(
                steady()
                    .into_iter()
                    .map(|i| i.outdated().in_state(InstanceState::Terminated))
                    .collect(),
            ),
            vec![launch(3, LaunchReason::Capacity)],
            Phase::Launching,
        ),
        (
            "new instances proving health: wait",
            recreate(3),
            fleet(vec![pending("i-4"), pending("i-5"), healthy("i-6")]),
            vec![],
            Phase::WaitingForHealth,
        ),
        (
            "capacity 0: everything goes",
            recreate(0),
            fleet(steady()),
            vec![terminate(
                &["i-3", "i-2", "i-1"],
                TerminateReason::ScaleDown,
            )],
            Phase::ScalingDown,
        ),
    ];
    for (name, spec, observed, want, phase) in rows {
        let plan = plan_for(&spec, &observed);
        assert_eq!(plan.actions, want, "{name}");
        assert_eq!(plan.phase, phase, "{name}");
        if phase == Phase::WaitingForTermination || phase == Phase::Terminating {
            assert_eq!(
                plan.waits.first().map(|w| w.reason),
                Some(reason::WAITING_FOR_TERMINATION),
                "{name}"
            );
        }
    }
}
