//! `Surge`: capacity up and down, replacements within `capacity + maxSurge` live instances and
//! `capacity - maxUnavailable` healthy ones, and the order instances go in.

use std::collections::BTreeSet;

use super::fixtures::*;
use crate::spot_fleet::observed::{InstanceState, Observed};
use crate::spot_fleet::plan::{
    Action, HandEdit, LaunchReason, Phase, ReplacementReason, TerminateReason, reason, requeue,
};
use crate::spot_fleet::spec_hash::spec_hash_tags;

use LaunchReason::{Capacity, Replacement};
use ReplacementReason::*;

fn all_outdated() -> Vec<crate::spot_fleet::observed::ObservedInstance> {
    steady().into_iter().map(Scenario::outdated).collect()
}

fn with(
    mut instances: Vec<crate::spot_fleet::observed::ObservedInstance>,
    more: &[crate::spot_fleet::observed::ObservedInstance],
) -> Observed {
    instances.extend_from_slice(more);
    fleet(instances)
}

#[test]
fn capacity_table() {
    check_table(&[
        case("steady: nothing to do", spec(), fleet(steady()), vec![]),
        case(
            "new fleet: launch capacity",
            spec(),
            fleet(vec![]),
            vec![launch(3, Capacity)],
        ),
        case(
            "scale up: launch the difference, not bounded by maxSurge",
            spec_with(|s| s.capacity = 5),
            fleet(steady()),
            vec![launch(2, Capacity)],
        ),
        case(
            "scale down: the newest go first",
            spec_with(|s| s.capacity = 1),
            fleet(steady()),
            vec![terminate(&["i-3", "i-2"], TerminateReason::ScaleDown)],
        ),
        case(
            "scale down: an unhealthy instance goes before a newer healthy one",
            spec_with(|s| s.capacity = 2),
            fleet(vec![
                healthy("i-1").impaired().within_grace(),
                healthy("i-2"),
                healthy("i-3"),
            ]),
            vec![terminate(&["i-1"], TerminateReason::ScaleDown)],
        ),
        case(
            "capacity 0: every instance goes, the fleet stays",
            spec_with(|s| s.capacity = 0),
            fleet(steady()),
            vec![terminate(
                &["i-3", "i-2", "i-1"],
                TerminateReason::ScaleDown,
            )],
        ),
        case(
            "terminated by someone else: capacity restored",
            spec(),
            fleet(vec![
                healthy("i-1"),
                healthy("i-2"),
                healthy("i-3").in_state(InstanceState::Terminated),
            ]),
            vec![launch(1, Capacity)],
        ),
        case(
            "shutting down by someone else: not counted, replaced at once",
            spec(),
            fleet(vec![
                healthy("i-1"),
                healthy("i-2"),
                healthy("i-3").in_state(InstanceState::ShuttingDown),
            ]),
            vec![launch(1, Capacity)],
        ),
        case(
            "launch avoids offerings without capacity (of the spec's types only)",
            spec(),
            Observed {
                unavailable_offerings: BTreeSet::from([
                    offering("t3.small", "eu-west-1a"),
                    offering("m5.large", "eu-west-1b"),
                ]),
                ..fleet(vec![])
            },
            vec![Action::Launch {
                count: 3,
                avoid: vec![offering("t3.small", "eu-west-1a")],
                reason: Capacity,
            }],
        ),
    ]);
}

#[test]
fn replacement_table() {
    check_table(&[
        case(
            "spec change: launch maxSurge replacements, terminate nothing yet",
            spec(),
            fleet(all_outdated()),
            vec![launch(1, Replacement)],
        ),
        case(
            "replacement still pending: wait (capacity + maxSurge reached)",
            spec(),
            with(all_outdated(), &[pending("i-4")]),
            vec![],
        ),
        case(
            "replacement healthy: the oldest old one goes, the next replacement launches",
            spec(),
            with(all_outdated(), &[healthy("i-4")]),
            vec![replaced(&["i-1"], SpecHashDrifted), launch(1, Replacement)],
        ),
        case(
            "maxUnavailable 1: one old instance goes before any replacement is healthy",
            spec_with(|s| s.replacement.max_unavailable = 1),
            fleet(all_outdated()),
            vec![replaced(&["i-1"], SpecHashDrifted), launch(2, Replacement)],
        ),
        case(
            "maxSurge 3: all replacements at once",
            spec_with(|s| s.replacement.max_surge = 3),
            fleet(all_outdated()),
            vec![launch(3, Replacement)],
        ),
        case(
            "a replacement that never came up is terminated and launched again",
            spec(),
            with(
                all_outdated(),
                &[pending("i-4").edit(|i| i.past_grace = true)],
            ),
            vec![
                replaced(&["i-4"], UnhealthyPastGrace),
                launch(1, Replacement),
            ],
        ),
        case(
            "stopped: serves nothing, goes at once",
            spec(),
            fleet(vec![
                healthy("i-1").in_state(InstanceState::Stopped),
                healthy("i-2"),
                healthy("i-3"),
            ]),
            vec![replaced(&["i-1"], Stopped), launch(1, Replacement)],
        ),
        case(
            "impaired past grace: goes at once",
            spec(),
            fleet(vec![
                healthy("i-1").impaired(),
                healthy("i-2"),
                healthy("i-3"),
            ]),
            vec![
                replaced(&["i-1"], UnhealthyPastGrace),
                launch(1, Replacement),
            ],
        ),
        case(
            "impaired within grace: given time",
            spec(),
            fleet(vec![
                healthy("i-1").impaired().within_grace(),
                healthy("i-2"),
                healthy("i-3"),
            ]),
            vec![],
        ),
        case(
            "hand-changed instance type: a healthy instance, replaced surge-first",
            spec(),
            fleet(vec![
                healthy("i-1").edit(|i| i.instance_type = Some("m5.large".into())),
                healthy("i-2"),
                healthy("i-3"),
            ]),
            vec![launch(1, Replacement)],
        ),
        case(
            "hand edit, replacement healthy: the edited one goes",
            spec(),
            fleet(vec![
                healthy("i-1"),
                healthy("i-2").edit(|i| i.image_id = Some("ami-0fedcba9876543210".into())),
                healthy("i-3"),
                healthy("i-4"),
            ]),
            vec![replaced(&["i-2"], HandEdited(HandEdit::Image))],
        ),
    ]);
}

#[test]
fn interruption_table() {
    let notice = |ids: &[&str]| ids.iter().map(|&id| id.to_owned()).collect::<BTreeSet<_>>();
    check_table(&[
        case(
            "interruption notice: the replacement launches at once",
            spec(),
            Observed {
                interruption_notices: notice(&["i-2"]),
                ..fleet(steady())
            },
            vec![launch(1, Replacement)],
        ),
        case(
            "interruption notice, replacement healthy: the interrupted one goes",
            spec(),
            Observed {
                interruption_notices: notice(&["i-2"]),
                ..fleet(vec![
                    healthy("i-1"),
                    healthy("i-2"),
                    healthy("i-3"),
                    healthy("i-4"),
                ])
            },
            vec![replaced(&["i-2"], InterruptionNotice)],
        ),
        case(
            "during a rollout the interrupted instance goes before older out-of-date ones",
            spec(),
            Observed {
                interruption_notices: notice(&["i-3"]),
                ..with(all_outdated(), &[healthy("i-4")])
            },
            vec![
                replaced(&["i-3"], InterruptionNotice),
                launch(1, Replacement),
            ],
        ),
        case(
            "rebalance recommendation: replaced early, surge-first",
            spec(),
            Observed {
                rebalance_recommendations: notice(&["i-1"]),
                ..fleet(steady())
            },
            vec![launch(1, Replacement)],
        ),
    ]);
}

#[test]
fn a_new_hash_version_restamps_and_replaces_nothing() {
    let observed = fleet(
        steady()
            .into_iter()
            .map(|i| i.outdated().hash_version("0"))
            .collect(),
    );
    let plan = plan_for(&spec(), &observed);
    assert_eq!(
        plan.actions,
        vec![Action::Restamp {
            ids: vec!["i-1".into(), "i-2".into(), "i-3".into()],
            tags: spec_hash_tags(HASH),
        }]
    );
    assert_eq!(plan.phase, Phase::Stable);
    assert_eq!(plan.ready_capacity, 3);
}

#[test]
fn phases_and_waits() {
    let rows: [(&str, Observed, Phase, Option<&str>); 5] = [
        ("steady", fleet(steady()), Phase::Stable, None),
        (
            "new",
            fleet(vec![]),
            Phase::Launching,
            Some(reason::WAITING_FOR_HEALTH),
        ),
        (
            "rollout",
            fleet(all_outdated()),
            Phase::Replacing,
            Some(reason::WAITING_FOR_HEALTH),
        ),
        (
            "settling",
            fleet(vec![healthy("i-1"), healthy("i-2"), pending("i-3")]),
            Phase::WaitingForHealth,
            Some(reason::WAITING_FOR_HEALTH),
        ),
        (
            "scale down",
            fleet(vec![
                healthy("i-1"),
                healthy("i-2"),
                healthy("i-3"),
                healthy("i-4"),
            ]),
            Phase::ScalingDown,
            None,
        ),
    ];
    for (name, observed, phase, wait) in rows {
        let plan = plan_for(&spec(), &observed);
        assert_eq!(plan.phase, phase, "{name}");
        assert_eq!(plan.waits.first().map(|w| w.reason), wait, "{name}");
        if wait.is_some() {
            assert_eq!(
                plan.requeue_after_seconds(),
                Some(requeue::HEALTH_SECONDS),
                "{name}"
            );
        }
    }
}

#[test]
fn a_launch_backoff_holds_launches_not_terminations() {
    let observed = Observed {
        launch_backoff_seconds: Some(40),
        ..with(
            all_outdated(),
            &[pending("i-4").edit(|i| i.past_grace = true)],
        )
    };
    let plan = plan_for(&spec(), &observed);
    assert_eq!(plan.actions, vec![replaced(&["i-4"], UnhealthyPastGrace)]);
    let backoff = plan
        .waits
        .iter()
        .find(|w| w.reason == reason::LAUNCH_BACKOFF)
        .expect("backoff wait");
    assert_eq!(backoff.requeue_after_seconds, 40);
}

#[test]
fn surge_without_surge_or_unavailability_stalls_instead_of_waiting_forever() {
    let spec = spec_with(|s| s.replacement.max_surge = 0);
    let plan = plan_for(&spec, &fleet(all_outdated()));
    assert_eq!(
        plan.stalled.map(|s| s.reason),
        Some(reason::NO_ROOM_TO_REPLACE)
    );
    assert!(plan.actions.is_empty());
    // Nothing out of date: nothing to stall on.
    assert_eq!(plan_for(&spec, &fleet(steady())).stalled, None);
}

#[test]
fn a_hash_version_bump_still_sees_hand_edits() {
    let observed = fleet(vec![
        healthy("i-1").outdated().hash_version("0"),
        healthy("i-2")
            .outdated()
            .hash_version("0")
            .edit(|i| i.instance_type = Some("m5.large".into())),
        healthy("i-3").outdated().hash_version("0"),
    ]);
    let plan = plan_for(&spec(), &observed);
    assert_eq!(
        plan.actions,
        vec![
            Action::Restamp {
                ids: vec!["i-1".into(), "i-3".into()],
                tags: spec_hash_tags(HASH),
            },
            launch(1, Replacement),
        ]
    );
    assert_eq!(
        plan.instances[1].replacement,
        Some(HandEdited(HandEdit::InstanceType))
    );
}

#[test]
fn no_launch_into_certain_failure() {
    let zones = || {
        std::collections::BTreeMap::from([
            ("subnet-0aaaaaaaa".to_owned(), "eu-west-1a".to_owned()),
            ("subnet-0bbbbbbbb".to_owned(), "eu-west-1b".to_owned()),
        ])
    };
    let every = BTreeSet::from([
        offering("t3.small", "eu-west-1a"),
        offering("t3a.small", "eu-west-1a"),
        offering("t3.small", "eu-west-1b"),
        offering("t3a.small", "eu-west-1b"),
    ]);
    let dead = Observed {
        unavailable_offerings: every.clone(),
        subnet_zones: zones(),
        ..fleet(vec![healthy("i-1")])
    };
    let plan = plan_for(&spec(), &dead);
    assert_eq!(plan.actions, vec![]);
    assert_eq!(
        plan.requeue_after_seconds(),
        Some(requeue::HEALTH_SECONDS.min(requeue::CAPACITY_SECONDS))
    );
    assert!(
        plan.waits
            .iter()
            .any(|w| w.reason == reason::WAITING_FOR_CAPACITY)
    );

    // One offering left: launch, avoiding the others.
    let mut almost = every.clone();
    almost.remove(&offering("t3a.small", "eu-west-1b"));
    let plan = plan_for(
        &spec(),
        &Observed {
            unavailable_offerings: almost.clone(),
            subnet_zones: zones(),
            ..fleet(vec![healthy("i-1")])
        },
    );
    assert_eq!(
        plan.actions,
        vec![Action::Launch {
            count: 2,
            avoid: almost.into_iter().collect(),
            reason: Capacity,
        }]
    );

    // A subnet whose zone is unknown may still have capacity: try.
    let plan = plan_for(
        &spec(),
        &Observed {
            unavailable_offerings: every,
            ..fleet(vec![healthy("i-1")])
        },
    );
    assert_eq!(plan.actions.len(), 1);
}

#[test]
fn a_refused_spec_stalls_naming_the_field_until_the_spec_changes() {
    let refusal = |hash: &str| crate::aws::ec2::SpecRefusal {
        spec_hash: hash.to_owned(),
        field: "imageId",
        code: "InvalidAMIID.NotFound".to_owned(),
        message: "The image id '[ami-gone]' does not exist".to_owned(),
    };
    let short = |hash: &str| Observed {
        spec_refusal: Some(refusal(hash)),
        ..fleet(vec![healthy("i-1")])
    };
    let plan = plan_for(&spec(), &short(HASH));
    let stall = plan.stalled.expect("stalled on the refused spec");
    assert_eq!(stall.reason, reason::LAUNCH_SPEC_REFUSED);
    assert!(
        stall.message.contains("spec.imageId") && stall.message.contains("ami-gone"),
        "{}",
        stall.message
    );
    assert!(plan.actions.is_empty(), "{:?}", plan.actions);
    // A refusal of an older spec says nothing about this one: launched at once.
    let plan = plan_for(&spec(), &short(OLD_HASH));
    assert_eq!(plan.stalled, None);
    assert_eq!(plan.actions, vec![launch(2, Capacity)]);
}
