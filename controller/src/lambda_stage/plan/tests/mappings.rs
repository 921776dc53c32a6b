//! Event-source mappings: created once, updated in place, duplicates left alone.

use serde_json::json;
use stagehand_crds::LambdaStageSpec;
use stagehand_crds::condition::MAPPINGS_HEALTHY;

use super::fixtures::*;
use crate::aws::lambda::{EventSourceMapping, MappingSettings};
use crate::base::conditions::ConditionStatus;
use crate::base::gates::ActGate;
use crate::lambda_stage::observed::{DeclaredAs, MappingKey, Observed};
use crate::lambda_stage::plan::{Action, reason};

#[test]
fn mapping_table() {
    fn orders(s: &mut LambdaStageSpec, o: &mut Observed, found: Vec<EventSourceMapping>) {
        with_mapping(s, &json!({}));
        o.queues.insert("orders".into(), queue(0, 0));
        if !found.is_empty() {
            o.mappings
                .insert(MappingKey::new("worker", QUEUE_ARN), found);
        }
    }
    check_table(&[
        case(
            "none exists: create it",
            |s, o| orders(s, o, vec![]),
            vec![Action::CreateMapping {
                function: "worker".into(),
                queue: "orders".into(),
                event_source_arn: QUEUE_ARN.into(),
                settings: MappingSettings {
                    batch_size: Some(10),
                    batching_window_seconds: None,
                    enabled: Some(true),
                    max_concurrency: None,
                },
            }],
        ),
        case(
            "as declared",
            |s, o| orders(s, o, vec![mapping("u-1", "Enabled", 10)]),
            vec![],
        ),
        case(
            "disabled by hand: re-enabled in place",
            |s, o| orders(s, o, vec![mapping("u-1", "Disabled", 10)]),
            vec![update_mapping(
                "u-1",
                MappingSettings {
                    enabled: Some(true),
                    ..MappingSettings::default()
                },
            )],
        ),
        case(
            "batch size, window and concurrency changed in place",
            |s, o| {
                orders(s, o, vec![mapping("u-1", "Enabled", 10)]);
                let declared = &mut s.event_source_mappings[0];
                declared.batch_size = 25;
                declared.maximum_batching_window_seconds = Some(5);
                declared.maximum_concurrency = Some(4);
            },
            vec![update_mapping(
                "u-1",
                MappingSettings {
                    batch_size: Some(25),
                    batching_window_seconds: Some(5),
                    enabled: None,
                    max_concurrency: Some(4),
                },
            )],
        ),
        case(
            "duplicates: the lowest UUID is kept and updated, none created",
            |s, o| {
                orders(
                    s,
                    o,
                    vec![
                        mapping("u-9", "Enabled", 10),
                        mapping("u-2", "Disabled", 10),
                    ],
                );
            },
            vec![update_mapping(
                "u-2",
                MappingSettings {
                    enabled: Some(true),
                    ..MappingSettings::default()
                },
            )],
        ),
        case(
            "duplicates: the UUID recorded in status wins",
            |s, o| {
                orders(
                    s,
                    o,
                    vec![
                        mapping("u-9", "Enabled", 10),
                        mapping("u-2", "Disabled", 10),
                    ],
                );
                o.previous
                    .mapping_uuids
                    .insert(("worker".into(), "orders".into()), "u-9".into());
            },
            vec![],
        ),
        waiting(
            "mapping between states",
            |s, o| orders(s, o, vec![mapping("u-1", "Updating", 10)]),
            vec![],
            &[reason::MAPPING_TRANSITIONING],
        ),
        stalled(
            "queue does not exist",
            |s, o| {
                orders(s, o, vec![]);
                o.queues.clear();
            },
            reason::QUEUE_NOT_FOUND,
        ),
        stalled(
            "mapping names no selected function",
            |s, o| {
                orders(s, o, vec![]);
                s.event_source_mappings[0].function = "nobody".into();
            },
            reason::MAPPING_FUNCTION_NOT_FOUND,
        ),
        case(
            "function named by its fromStack id",
            |s, o| {
                orders(s, o, vec![mapping("u-1", "Enabled", 10)]);
                o.functions[1].declared_as = Some(DeclaredAs::FromStack("WorkerFunction".into()));
                s.functions[1] =
                    serde_json::from_value(json!({"fromStack": "WorkerFunction"})).expect("entry");
                s.event_source_mappings[0].function = "WorkerFunction".into();
            },
            vec![],
        ),
        case(
            "mappings come after functions",
            |s, o| {
                orders(s, o, vec![mapping("u-1", "Disabled", 10)]);
                artifact(o).head = Some(head(Some("v2")));
            },
            vec![
                code("api", "v2"),
                code("worker", "v2"),
                update_mapping(
                    "u-1",
                    MappingSettings {
                        enabled: Some(true),
                        ..MappingSettings::default()
                    },
                ),
            ],
        ),
    ]);
}

#[test]
fn duplicate_mappings_are_reported_as_drift() {
    let plan = plan_with(
        |s, o| {
            with_mapping(s, &json!({}));
            o.queues.insert("orders".into(), queue(0, 0));
            o.mappings.insert(
                MappingKey::new("worker", QUEUE_ARN),
                vec![mapping("u-2", "Enabled", 10), mapping("u-1", "Enabled", 10)],
            );
        },
        ActGate::Act,
    );
    assert!(plan.actions.is_empty());
    assert_eq!(plan.drift.len(), 1);
    assert!(
        plan.drift[0].detail.contains("duplicates of u-1: u-2"),
        "{}",
        plan.drift[0].detail
    );
    assert_eq!(
        condition_of(&plan, MAPPINGS_HEALTHY).0,
        ConditionStatus::False
    );
}
