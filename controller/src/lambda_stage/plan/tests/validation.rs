//! Post-deploy validation: required environment, queue backlogs, mappings, HTTP checks.

use serde_json::json;
use stagehand_crds::condition::{MAPPINGS_HEALTHY, VALIDATED};

use super::fixtures::*;
use crate::base::conditions::ConditionStatus;
use crate::base::gates::ActGate;
use crate::lambda_stage::observed::{HttpCheckOutcome, MappingKey};
use crate::lambda_stage::plan::{plan, reason};

#[test]
fn validation_reports_missing_environment_with_the_keys() {
    let plan = plan_with(
        |s, o| {
            s.validation = Some(
                serde_json::from_value(json!({"requiredEnvironment": ["DB_URL", "LOG_LEVEL"]}))
                    .expect("validation"),
            );
            s.functions[0].environment = env(&[("DB_URL", "postgres://db")]);
            function(o, "api").info.environment =
                env(&[("DB_URL", "postgres://db"), ("LOG_LEVEL", "info")]);
            function(o, "worker").info.environment = env(&[("LOG_LEVEL", "info")]);
        },
        ActGate::Act,
    );
    assert_eq!(plan.validation.missing_environment, ["worker: DB_URL"]);
    let (status, _, message) = condition_of(&plan, VALIDATED);
    assert_eq!(status, ConditionStatus::False);
    assert!(message.contains("worker: DB_URL"), "{message}");
    // Deployed and converged otherwise: failed validation is the stage's state.
    assert_eq!(
        plan.stalled.expect("stalled").reason,
        reason::VALIDATION_FAILED
    );
}

#[test]
fn validation_reports_backlog_numbers_against_default_limits() {
    let setup: Setup = |s, o| {
        s.validation = Some(
            serde_json::from_value(json!({"queues": [{"queue": "orders"}]})).expect("validation"),
        );
        o.queues.insert("orders".into(), queue(12, 3));
    };
    let plan = plan_with(setup, ActGate::Act);
    let (status, reason, message) = condition_of(&plan, VALIDATED);
    assert_eq!(
        (status, reason.as_str()),
        (ConditionStatus::False, reason::VALIDATION_FAILED)
    );
    assert_eq!(
        message,
        "queue orders: 12 visible (max 10), 3 in flight (max 5)"
    );
    assert_eq!(plan.validation.queues[0].visible, 12);

    let recovered = plan_with(
        |s, o| {
            s.validation = Some(
                serde_json::from_value(json!({"queues": [{"queue": "orders"}]}))
                    .expect("validation"),
            );
            o.queues.insert("orders".into(), queue(10, 5));
        },
        ActGate::Act,
    );
    assert_eq!(condition_of(&recovered, VALIDATED).0, ConditionStatus::True);
    assert!(recovered.stalled.is_none());
}

#[test]
fn validation_checks_mappings_and_http() {
    let plan = plan_with(
        |s, o| {
            with_mapping(s, &json!({}));
            s.validation = Some(
                serde_json::from_value(
                    json!({"http": [{"name": "health", "url": "https://x/health"}]}),
                )
                .expect("validation"),
            );
            o.queues.insert("orders".into(), queue(0, 0));
            o.mappings.insert(
                MappingKey::new("worker", QUEUE_ARN),
                vec![mapping("u-1", "Disabled", 10)],
            );
            o.http_checks.insert(
                "health".into(),
                HttpCheckOutcome {
                    status: Some(503),
                    error: None,
                },
            );
        },
        ActGate::Act,
    );
    assert_eq!(
        plan.validation.unhealthy_mappings,
        ["orders → worker: Disabled"]
    );
    assert_eq!(
        plan.validation.http[0].error.as_deref(),
        Some("expected 200, got 503")
    );
    assert_eq!(
        condition_of(&plan, MAPPINGS_HEALTHY).0,
        ConditionStatus::False
    );
    // The mapping is being fixed: not a stall yet.
    assert!(plan.stalled.is_none());
    assert_eq!(plan.actions.len(), 1);
}

#[test]
fn http_check_results_decide_validated() {
    let with_checks = |outcomes: Vec<(&'static str, HttpCheckOutcome)>| {
        let mut spec = base_spec();
        spec.validation = Some(
            serde_json::from_value(json!({"http": [
                {"name": "health", "url": "http://127.0.0.1:1/health"},
                {"name": "ready", "url": "https://x/ready", "expectedStatus": 204},
            ]}))
            .expect("validation"),
        );
        let mut observed = base_observed();
        for (name, outcome) in outcomes {
            observed.http_checks.insert(name.into(), outcome);
        }
        plan(&spec, &context(ActGate::Act), &observed)
    };
    let answered = |status| HttpCheckOutcome {
        status: Some(status),
        error: None,
    };

    // Both answered as expected: Validated, nothing stalled.
    let plan = with_checks(vec![("health", answered(200)), ("ready", answered(204))]);
    assert_eq!(condition_of(&plan, VALIDATED).0, ConditionStatus::True);
    assert!(
        plan.validation
            .http
            .iter()
            .all(|h| h.ok && h.error.is_none())
    );
    assert_eq!(plan.validation.http[1].status, Some(204));
    assert!(plan.stalled.is_none());

    // A transport error is reported as such; a deployed stage then stalls on validation.
    let plan = with_checks(vec![
        ("health", answered(200)),
        (
            "ready",
            HttpCheckOutcome {
                status: None,
                error: Some("GET https://x/ready timed out after 5s".into()),
            },
        ),
    ]);
    let (status, reason_, message) = condition_of(&plan, VALIDATED);
    assert_eq!(status, ConditionStatus::False);
    assert_eq!(reason_, reason::VALIDATION_FAILED);
    assert!(
        message.contains("http ready: GET https://x/ready timed out after 5s"),
        "{message}"
    );
    assert_eq!(plan.validation.http[1].status, None);
    assert!(!plan.validation.http[1].ok);
    assert_eq!(
        plan.stalled.as_ref().map(|s| s.reason),
        Some(reason::VALIDATION_FAILED)
    );

    // A check observe did not run never passes.
    let plan = with_checks(vec![("health", answered(200))]);
    assert_eq!(plan.validation.http[1].error.as_deref(), Some("not run"));
    assert_eq!(condition_of(&plan, VALIDATED).0, ConditionStatus::False);
}
