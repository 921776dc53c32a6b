//! The facts table: one row per variant, names and labels fit for Events and metrics, and the
//! messages operators read.

use std::collections::BTreeSet;

use super::fixtures::*;
use crate::base::conditions::is_valid_reason;
use crate::spot_fleet::plan::{
    Action, HandEdit, LaunchReason, ReplacementReason, TerminateReason, Written,
};

fn one_of_each() -> Vec<Action> {
    vec![
        Action::Adopt {
            ids: vec!["i-9".into()],
            tags: current_tags(),
        },
        Action::Restamp {
            ids: vec!["i-1".into()],
            tags: current_tags(),
        },
        replaced(
            &["i-1", "i-2"],
            ReplacementReason::HandEdited(HandEdit::Subnet),
        ),
        Action::Launch {
            count: 2,
            avoid: vec![offering("t3.small", "eu-west-1a")],
            reason: LaunchReason::Replacement,
        },
        Action::PruneVersions {
            template_id: "lt-1".into(),
            versions: vec![2, 3],
        },
    ]
}

#[test]
fn facts_are_one_row_per_variant() {
    let actions = one_of_each();
    let mut labels = BTreeSet::new();
    for action in &actions {
        let facts = action.facts();
        assert!(
            format!("{action:?}").starts_with(facts.kind),
            "{action:?} is not {}",
            facts.kind
        );
        assert!(
            labels.insert(facts.metric_label),
            "{} twice",
            facts.metric_label
        );
        assert!(
            is_valid_reason(facts.event_reason),
            "{}",
            facts.event_reason
        );
        let written_ids = match facts.written {
            Written::Instances(ids) => ids.to_vec(),
            Written::Fleet | Written::Template => Vec::new(),
        };
        match action {
            Action::Launch { .. } => assert_eq!(facts.written, Written::Fleet),
            Action::PruneVersions { .. } => assert_eq!(facts.written, Written::Template),
            Action::Adopt { ids, .. }
            | Action::Restamp { ids, .. }
            | Action::Terminate { ids, .. } => {
                assert_eq!(&written_ids, ids);
            }
        }
    }
}

#[test]
fn messages_say_what_and_why() {
    let described: Vec<String> = one_of_each().iter().map(ToString::to_string).collect();
    assert_eq!(
        described,
        [
            "adopt i-9",
            "re-stamp i-1 with the new spec hash version",
            "terminate i-1, i-2 (hand_edit_subnet)",
            "launch 2 instance(s) (replacement), avoiding t3.small in eu-west-1a",
            "delete unused version(s) 2, 3 of launch template lt-1",
        ]
    );
    assert_eq!(TerminateReason::ScaleDown.as_str(), "scale_down");
}

#[test]
fn replacement_labels_are_distinct() {
    let reasons = [
        ReplacementReason::InterruptionNotice,
        ReplacementReason::Stopped,
        ReplacementReason::HandEdited(HandEdit::InstanceType),
        ReplacementReason::HandEdited(HandEdit::Image),
        ReplacementReason::HandEdited(HandEdit::Subnet),
        ReplacementReason::HandEdited(HandEdit::SecurityGroups),
        ReplacementReason::HandEdited(HandEdit::InstanceProfile),
        ReplacementReason::SpecHashDrifted,
        ReplacementReason::UnhealthyPastGrace,
        ReplacementReason::RebalanceRecommendation,
    ];
    let labels: BTreeSet<&str> = reasons.iter().map(|r| r.as_str()).collect();
    assert_eq!(labels.len(), reasons.len());
}
