//! `CapacityReady` with the shortfall and EC2's error codes, and the kstatus outcome.

use stagehand_crds::condition::CAPACITY_READY;

use super::fixtures::*;
use crate::base::conditions::{ConditionStatus, ReconcileOutcome};
use crate::spot_fleet::observed::{LaunchError, Observed};
use crate::spot_fleet::plan::reason;

#[test]
fn capacity_ready_table() {
    let capacity_error = |code: &str, instance_type: &str| LaunchError {
        code: code.to_owned(),
        message: "no capacity".to_owned(),
        offering: Some(offering(instance_type, "eu-west-1a")),
    };
    let rows: [(&str, Observed, ConditionStatus, &str, &[&str]); 4] = [
        (
            "all ready",
            fleet(steady()),
            ConditionStatus::True,
            reason::CAPACITY_MET,
            &["3/3 instances ready"],
        ),
        (
            "replacements settling count only in-date healthy instances",
            fleet(vec![
                healthy("i-1"),
                healthy("i-2").outdated(),
                pending("i-3"),
            ]),
            ConditionStatus::False,
            reason::CAPACITY_SHORTFALL,
            &["1/3 instances ready, 2 short"],
        ),
        (
            "launch errors named by code and offering, each once",
            Observed {
                launch_errors: vec![
                    capacity_error("InsufficientInstanceCapacity", "t3.small"),
                    capacity_error("InsufficientInstanceCapacity", "t3.small"),
                    LaunchError {
                        code: "MaxSpotInstanceCountExceeded".into(),
                        ..LaunchError::default()
                    },
                ],
                ..fleet(vec![healthy("i-1")])
            },
            ConditionStatus::False,
            reason::LAUNCH_ERRORS,
            &[
                "1/3 instances ready, 2 short; last launch: InsufficientInstanceCapacity (t3.small in eu-west-1a), MaxSpotInstanceCountExceeded",
            ],
        ),
        (
            "launch errors no longer matter once capacity is met",
            Observed {
                launch_errors: vec![capacity_error("InsufficientInstanceCapacity", "t3.small")],
                ..fleet(steady())
            },
            ConditionStatus::True,
            reason::CAPACITY_MET,
            &["3/3 instances ready"],
        ),
    ];
    for (name, observed, status, want_reason, needles) in rows {
        let plan = plan_for(&spec(), &observed);
        let condition = plan.condition(CAPACITY_READY).expect(name);
        assert_eq!(condition.status, status, "{name}");
        assert_eq!(condition.reason, want_reason, "{name}");
        for needle in needles {
            assert_eq!(condition.message, *needle, "{name}");
        }
    }
}

#[test]
fn outcome_table() {
    let converged = plan_for(&spec(), &fleet(steady()));
    assert_eq!(
        converged.outcome(),
        ReconcileOutcome::Converged {
            message: "3/3 instances ready".into()
        }
    );
    assert_eq!(converged.requeue_after_seconds(), None);

    let launching = plan_for(&spec(), &fleet(vec![]));
    assert_eq!(
        launching.outcome(),
        ReconcileOutcome::Progressing {
            reason: reason::APPLYING.into(),
            message: "launch 3 instance(s) (capacity)".into(),
        }
    );

    let settling = plan_for(
        &spec(),
        &fleet(vec![healthy("i-1"), healthy("i-2"), pending("i-3")]),
    );
    assert!(matches!(
        settling.outcome(),
        ReconcileOutcome::Progressing { reason, .. } if reason == "WaitingForHealth"
    ));
}
