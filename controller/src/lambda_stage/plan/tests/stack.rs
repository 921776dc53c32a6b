//! The stage's CloudFormation stack: change sets, waiting, failed stacks.

use super::fixtures::*;
use crate::aws::cloudformation::ChangeSetKind;
use crate::aws::tags::ownership_tags;
use crate::base::gates::ActGate;
use crate::lambda_stage::plan::{Action, reason};

#[test]
fn stack_table() {
    check_table(&[
        waiting(
            "no stack: create it through a change set, functions untouched",
            |s, o| {
                with_stack(s, "Stall");
                o.stack = Some(observed_stack(None, None, false));
                artifact(o).head = Some(head(Some("v2")));
            },
            vec![create_change_set(ChangeSetKind::Create)],
            &[],
        ),
        case(
            "create change set computed: execute it",
            |s, o| {
                with_stack(s, "Stall");
                o.stack = Some(observed_stack(
                    Some("REVIEW_IN_PROGRESS"),
                    Some(change_set("CREATE_COMPLETE", Some("AVAILABLE"), None)),
                    false,
                ));
            },
            vec![Action::ExecuteChangeSet {
                stack_name: "shop-dev".into(),
                change_set_name: "stagehand-abc123".into(),
            }],
        ),
        waiting(
            "change set still computing",
            |s, o| {
                with_stack(s, "Stall");
                o.stack = Some(observed_stack(
                    Some("UPDATE_COMPLETE"),
                    Some(change_set("CREATE_PENDING", None, None)),
                    false,
                ));
            },
            vec![],
            &[reason::CHANGE_SET_PENDING],
        ),
        waiting(
            "stack operation in progress: wait, touch no function",
            |s, o| {
                with_stack(s, "Stall");
                o.stack = Some(observed_stack(Some("UPDATE_IN_PROGRESS"), None, true));
                artifact(o).head = Some(head(Some("v2")));
            },
            vec![],
            &[reason::STACK_IN_PROGRESS],
        ),
        waiting(
            "a stack status Stagehand does not know: wait, change nothing",
            |s, o| {
                with_stack(s, "Stall");
                o.stack = Some(observed_stack(Some("FUTURE_COMPLETE"), None, true));
                artifact(o).head = Some(head(Some("v2")));
            },
            vec![],
            &[reason::STACK_STATUS_UNKNOWN],
        ),
        waiting(
            "functions of a stack being created may not exist yet",
            |s, o| {
                with_stack(s, "Stall");
                o.stack = Some(observed_stack(Some("CREATE_IN_PROGRESS"), None, true));
                o.functions[0].deployed = None;
            },
            vec![],
            &[reason::STACK_IN_PROGRESS],
        ),
        case(
            "ROLLBACK_COMPLETE with Recreate: delete it",
            |s, o| {
                with_stack(s, "Recreate");
                o.stack = Some(observed_stack(Some("ROLLBACK_COMPLETE"), None, false));
            },
            vec![Action::DeleteFailedStack {
                stack_name: "shop-dev".into(),
            }],
        ),
        stalled(
            "ROLLBACK_COMPLETE with Stall",
            |s, o| {
                with_stack(s, "Stall");
                o.stack = Some(observed_stack(Some("ROLLBACK_COMPLETE"), None, false));
            },
            reason::STACK_ROLLBACK_COMPLETE,
        ),
        stalled(
            "UPDATE_ROLLBACK_FAILED",
            |s, o| {
                with_stack(s, "Recreate");
                o.stack = Some(observed_stack(Some("UPDATE_ROLLBACK_FAILED"), None, true));
                artifact(o).head = Some(head(Some("v2")));
            },
            reason::STACK_UPDATE_ROLLBACK_FAILED,
        ),
        case(
            "template changed: update change set first, functions next round",
            |s, o| {
                with_stack(s, "Stall");
                o.stack = Some(observed_stack(Some("UPDATE_COMPLETE"), None, false));
                artifact(o).head = Some(head(Some("v2")));
            },
            vec![create_change_set(ChangeSetKind::Update)],
        ),
        case(
            "empty change set is success: functions are fixed directly",
            |s, o| {
                with_stack(s, "Stall");
                o.stack = Some(observed_stack(
                    Some("UPDATE_COMPLETE"),
                    Some(change_set(
                        "FAILED",
                        Some("UNAVAILABLE"),
                        Some("The submitted information didn't contain changes."),
                    )),
                    false,
                ));
                artifact(o).head = Some(head(Some("v2")));
            },
            vec![code("api", "v2"), code("worker", "v2")],
        ),
        stalled(
            "change set failed for a real reason",
            |s, o| {
                with_stack(s, "Stall");
                o.stack = Some(observed_stack(
                    Some("UPDATE_COMPLETE"),
                    Some(change_set("FAILED", None, Some("Template format error"))),
                    false,
                ));
            },
            reason::CHANGE_SET_FAILED,
        ),
        case(
            "obsolete change set is replaced",
            |s, o| {
                with_stack(s, "Stall");
                o.stack = Some(observed_stack(
                    Some("UPDATE_COMPLETE"),
                    Some(change_set("CREATE_COMPLETE", Some("OBSOLETE"), None)),
                    false,
                ));
            },
            vec![create_change_set(ChangeSetKind::Update)],
        ),
        stalled(
            "stack owned by another stage",
            |s, o| {
                with_stack(s, "Stall");
                let mut other = observed_stack(Some("UPDATE_COMPLETE"), None, true);
                if let Some(st) = other.stack.as_mut() {
                    st.tags = ownership_tags("shop/LambdaStage/prod", CLUSTER);
                }
                o.stack = Some(other);
            },
            reason::OWNERSHIP_CONFLICT,
        ),
    ]);
}

#[test]
fn update_rollback_failed_carries_the_stacks_reason() {
    let plan = plan_with(
        |s, o| {
            with_stack(s, "Recreate");
            o.stack = Some(observed_stack(Some("UPDATE_ROLLBACK_FAILED"), None, true));
        },
        ActGate::Act,
    );
    assert!(
        plan.stalled
            .expect("stalled")
            .message
            .contains("role not found")
    );
}
