//! Which launch template versions a plan deletes: those no live instance carries the hash of,
//! never the desired one, never the default one, and nothing while stalled or not acting.

use std::collections::BTreeMap;

use super::fixtures::*;
use crate::base::gates::ActGate;
use crate::spot_fleet::observed::{InstanceState, Observed, TemplateVersions};
use crate::spot_fleet::plan::{Action, plan, unused_versions};

/// Versions 1 (default, the first spec), 2 (`OLD_HASH`), 3 (`HASH`), 4 (a spec tried between).
fn template() -> TemplateVersions {
    TemplateVersions {
        template_id: "lt-1".into(),
        default_version: Some(1),
        versions: BTreeMap::from([
            ("hash-first".to_owned(), 1),
            (OLD_HASH.to_owned(), 2),
            (HASH.to_owned(), 3),
            ("hash-between".to_owned(), 4),
        ]),
    }
}

fn with_template(instances: Vec<crate::spot_fleet::observed::ObservedInstance>) -> Observed {
    Observed {
        template: Some(template()),
        ..fleet(instances)
    }
}

fn pruned(observed: &Observed) -> Vec<i64> {
    plan_for(&spec(), observed)
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::PruneVersions {
                template_id,
                versions,
            } => {
                assert_eq!(template_id, "lt-1");
                Some(versions.clone())
            }
            _ => None,
        })
        .flatten()
        .collect()
}

#[test]
fn unused_versions_table() {
    let rows: [(&str, Vec<_>, Vec<i64>); 4] = [
        (
            "in date: every other non-default version goes",
            steady(),
            vec![2, 4],
        ),
        (
            "mid-replacement: the old instance keeps its version",
            vec![healthy("i-1").outdated(), healthy("i-2"), healthy("i-3")],
            vec![4],
        ),
        (
            "a stopped instance is live: its version stays",
            vec![healthy("i-1").outdated().in_state(InstanceState::Stopped)],
            vec![4],
        ),
        (
            "shutting down or terminated uses nothing",
            vec![
                healthy("i-1")
                    .outdated()
                    .in_state(InstanceState::ShuttingDown),
                healthy("i-2")
                    .outdated()
                    .in_state(InstanceState::Terminated),
            ],
            vec![2, 4],
        ),
    ];
    for (name, instances, want) in rows {
        assert_eq!(
            unused_versions(&template(), HASH, &instances),
            want,
            "{name}"
        );
    }
    // The desired version stays even with no instance yet (it is about to be launched).
    assert_eq!(unused_versions(&template(), "hash-between", &[]), [2, 3]);
    // The default version stays even when it is the desired-for-nobody first spec.
    assert!(!unused_versions(&template(), HASH, &[]).contains(&1));
}

#[test]
fn the_plan_prunes_last_and_only_when_it_may_act() {
    let observed = with_template(vec![healthy("i-1"), healthy("i-2")]);
    let actions = plan_for(&spec(), &observed).actions;
    assert!(
        matches!(actions.first(), Some(Action::Launch { .. })),
        "{actions:?}"
    );
    assert!(
        matches!(actions.last(), Some(Action::PruneVersions { .. })),
        "{actions:?}"
    );
    assert_eq!(pruned(&observed), [2, 4]);

    // Nothing known of the template: nothing pruned (observe makes no call for it).
    assert_eq!(pruned(&fleet(steady())), Vec::<i64>::new());

    // Not acting: nothing pruned.
    let observe_only = plan(
        &spec(),
        &crate::spot_fleet::plan::PlanContext {
            gate: ActGate::ObserveOnly,
            ..context()
        },
        &with_template(steady()),
    );
    assert!(observe_only.actions.is_empty(), "{observe_only:?}");

    // Stalled on an instance of another owner: nothing at all.
    let stalled = with_template(vec![
        healthy("i-1"),
        healthy("i-2"),
        healthy("i-3"),
        healthy("i-9").owned_by("shop/SpotFleet/other", CLUSTER),
    ]);
    let plan = plan_for(&spec(), &stalled);
    assert!(
        plan.stalled.is_some() && plan.actions.is_empty(),
        "{plan:?}"
    );
}

#[test]
fn a_converged_fleet_with_nothing_to_prune_plans_nothing() {
    let mut observed = with_template(steady());
    if let Some(t) = observed.template.as_mut() {
        t.versions
            .retain(|hash, _| hash == HASH || hash == "hash-first");
    }
    let plan = plan_for(&spec(), &observed);
    assert!(plan.actions.is_empty(), "{plan:?}");
}
