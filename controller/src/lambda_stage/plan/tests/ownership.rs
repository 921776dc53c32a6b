//! Whose resources these are: conflicts, adoption, the stage's own stack, and the act gate.

use serde_json::json;
use stagehand_crds::LambdaStageSpec;

use super::fixtures::*;
use crate::aws::tags::ownership_tags;
use crate::base::gates::ActGate;
use crate::lambda_stage::observed::{DeclaredAs, Observed};
use crate::lambda_stage::plan::{Action, reason};

#[test]
fn ownership_and_gate_table() {
    check_table(&[
        stalled(
            "function owned by another stage",
            |_, o| {
                artifact(o).head = Some(head(Some("v2")));
                function(o, "worker").tags = ownership_tags("shop/LambdaStage/prod", CLUSTER);
            },
            reason::OWNERSHIP_CONFLICT,
        ),
        stalled(
            "function managed by another cluster",
            |_, o| function(o, "worker").tags = ownership_tags(OWNER, "cluster-2"),
            reason::OWNERSHIP_CONFLICT,
        ),
        stalled(
            "untagged function without adopt",
            |_, o| function(o, "worker").tags.clear(),
            reason::ADOPTION_REQUIRED,
        ),
        case(
            "untagged function with adopt: tagged before it is modified",
            |s, o| {
                s.lifecycle.adopt = true;
                artifact(o).head = Some(head(Some("v2")));
                function(o, "worker").tags = env(&[("team", "shop")]);
            },
            vec![
                code("api", "v2"),
                Action::TagFunction {
                    function: "worker".into(),
                    arn: "arn:aws:lambda:eu-west-1:123456789012:function:worker".into(),
                    tags: ownership_tags(OWNER, CLUSTER),
                },
                code("worker", "v2"),
            ],
        ),
        Case {
            gate: ActGate::ObserveOnly,
            ..case(
                "ObserveOnly: no actions",
                |_, o| artifact(o).head = Some(head(Some("v2"))),
                vec![],
            )
        },
        Case {
            gate: ActGate::Paused,
            ..case(
                "Paused: no actions",
                |_, o| artifact(o).head = Some(head(Some("v2"))),
                vec![],
            )
        },
    ]);
}

/// `api` is the stack's `Api` resource (the stack carries this stage's tags) and untagged.
fn own_stack_function(s: &mut LambdaStageSpec, o: &mut Observed) {
    with_stack(s, "Stall");
    o.stack = Some(observed_stack(Some("UPDATE_COMPLETE"), None, true));
    if let Some(stack) = o.stack.as_mut() {
        stack.function_names.insert("api".into());
    }
    s.functions[0].name = None;
    s.functions[0].from_stack = Some("Api".into());
    o.functions[0].declared_as = Some(DeclaredAs::FromStack("Api".into()));
    function(o, "api").tags.clear();
    artifact(o).head = Some(head(Some("v2")));
}

fn tag_api() -> Action {
    Action::TagFunction {
        function: "api".into(),
        arn: "arn:aws:lambda:eu-west-1:123456789012:function:api".into(),
        tags: ownership_tags(OWNER, CLUSTER),
    }
}

#[test]
fn functions_of_the_stages_own_stack_table() {
    check_table(&[
        case(
            "fromStack function of our stack, untagged: ours without adopt, tagged first",
            own_stack_function,
            vec![tag_api(), code("api", "v2"), code("worker", "v2")],
        ),
        case(
            "stackResources selector found it: ours too",
            |s, o| {
                own_stack_function(s, o);
                s.functions.remove(0);
                s.function_selector = Some(
                    serde_json::from_value(json!({"stackResources": true})).expect("selector"),
                );
                o.functions[0].declared_as = None;
                o.functions.rotate_left(1);
            },
            vec![code("worker", "v2"), tag_api(), code("api", "v2")],
        ),
        stalled(
            "tagged for another owner: never touched, even in our stack",
            |s, o| {
                own_stack_function(s, o);
                function(o, "api").tags = ownership_tags("shop/LambdaStage/prod", CLUSTER);
            },
            reason::OWNERSHIP_CONFLICT,
        ),
        stalled(
            "the stack is another stage's: its functions are not ours",
            |s, o| {
                own_stack_function(s, o);
                if let Some(stack) = o.stack.as_mut().and_then(|st| st.stack.as_mut()) {
                    stack.tags = ownership_tags("shop/LambdaStage/prod", CLUSTER);
                }
            },
            reason::OWNERSHIP_CONFLICT,
        ),
        stalled(
            "the stack is untagged (not ours): adoption required",
            |s, o| {
                own_stack_function(s, o);
                if let Some(stack) = o.stack.as_mut().and_then(|st| st.stack.as_mut()) {
                    stack.tags.clear();
                }
            },
            reason::ADOPTION_REQUIRED,
        ),
        case(
            "a stack function declared by name is the stack's too",
            |s, o| {
                own_stack_function(s, o);
                s.functions[0].from_stack = None;
                s.functions[0].name = Some("api".into());
                o.functions[0].declared_as = Some(DeclaredAs::Name("api".into()));
            },
            vec![tag_api(), code("api", "v2"), code("worker", "v2")],
        ),
        stalled(
            "a function declared by name that is not in the stack needs adopt",
            |s, o| {
                own_stack_function(s, o);
                s.functions[0].from_stack = None;
                s.functions[0].name = Some("api".into());
                o.functions[0].declared_as = Some(DeclaredAs::Name("api".into()));
                if let Some(stack) = o.stack.as_mut() {
                    stack.function_names.clear();
                }
            },
            reason::ADOPTION_REQUIRED,
        ),
        stalled(
            "found by a name prefix, not in the stack: needs adopt",
            |s, o| {
                own_stack_function(s, o);
                s.functions.remove(0);
                s.function_selector =
                    Some(serde_json::from_value(json!({"namePrefix": "api"})).expect("selector"));
                o.functions[0].declared_as = None;
                if let Some(stack) = o.stack.as_mut() {
                    stack.function_names.clear();
                }
            },
            reason::ADOPTION_REQUIRED,
        ),
    ]);
}

#[test]
fn ownership_conflict_names_the_owner() {
    let plan = plan_with(
        |_, o| function(o, "worker").tags = ownership_tags("shop/LambdaStage/prod", CLUSTER),
        ActGate::Act,
    );
    let stall = plan.stalled.expect("stalled");
    assert!(
        stall.message.contains("shop/LambdaStage/prod"),
        "{}",
        stall.message
    );
    assert!(stall.message.contains("worker"), "{}", stall.message);
}
