//! Post-deploy validation against what was observed: required environment, mapping health,
//! queue backlogs and HTTP checks.

use std::collections::BTreeSet;

use stagehand_crds::condition::VALIDATED;
use stagehand_crds::lambda_stage::{
    HttpCheck, HttpCheckResult, QueueBacklog, QueueCheck, ValidationSpec, ValidationStatus,
};

use super::conditions::condition;
use super::function::{declared_environment, spec_entry};
use super::{Planner, reason};

impl Planner<'_> {
    /// Post-deploy validation against what was observed; fills `plan.validation`.
    pub(super) fn validate(&mut self) -> bool {
        let validation = self.spec.validation.clone().unwrap_or_default();
        // Without a validation block the mapping check still applies (its default is on).
        let check_mappings = self
            .spec
            .validation
            .as_ref()
            .is_none_or(|v| v.mappings_enabled);
        let status = ValidationStatus {
            missing_environment: self.missing_environment(&validation.required_environment),
            unhealthy_mappings: if check_mappings {
                self.unhealthy_mappings()
            } else {
                Vec::new()
            },
            queues: validation
                .queues
                .iter()
                .map(|check| self.queue_backlog(check))
                .collect(),
            http: validation
                .http
                .iter()
                .map(|check| self.http_result(check))
                .collect(),
        };
        let passed = validation_passed(&status);
        let queues_found: BTreeSet<String> = validation
            .queues
            .iter()
            .filter(|check| self.observed.queues.contains_key(&check.queue))
            .map(|check| check.queue.clone())
            .collect();
        let message = validation_message(&status, &validation, &queues_found);
        self.plan.conditions.push(condition(
            VALIDATED,
            passed,
            if passed {
                reason::VALIDATION_PASSED
            } else {
                reason::VALIDATION_FAILED
            },
            message,
        ));
        self.plan.validation = status;
        passed
    }

    /// `function: KEY` for each required variable a deployed function has neither in the spec
    /// nor in AWS.
    fn missing_environment(&self, required: &[String]) -> Vec<String> {
        let mut missing = Vec::new();
        for function in &self.observed.functions {
            let Some(deployed) = &function.deployed else {
                continue;
            };
            let declared = declared_environment(self.spec, spec_entry(self.spec, function));
            for key in required {
                if !declared.contains_key(key) && !deployed.info.environment.contains_key(key) {
                    missing.push(format!("{}: {key}", function.name));
                }
            }
        }
        missing
    }

    /// What is wrong with each declared mapping that is not healthy.
    fn unhealthy_mappings(&self) -> Vec<String> {
        self.spec
            .event_source_mappings
            .iter()
            .filter_map(|mapping| self.mapping_health_problem(mapping))
            .collect()
    }

    /// A queue's measured backlog against its limits; a queue that was not found is not ok.
    fn queue_backlog(&self, check: &QueueCheck) -> QueueBacklog {
        let Some(queue) = self.observed.queues.get(&check.queue) else {
            return QueueBacklog {
                queue: check.queue.clone(),
                ok: false,
                ..QueueBacklog::default()
            };
        };
        let visible = i64::try_from(queue.visible).unwrap_or(i64::MAX);
        let in_flight = i64::try_from(queue.in_flight).unwrap_or(i64::MAX);
        QueueBacklog {
            queue: check.queue.clone(),
            visible,
            in_flight,
            ok: !backlog_exceeded(visible, in_flight, check.max_visible, check.max_in_flight),
        }
    }

    /// What an HTTP check answered; a check observe did not run never passes.
    fn http_result(&self, check: &HttpCheck) -> HttpCheckResult {
        let outcome = self.observed.http_checks.get(&check.name);
        let received = outcome.and_then(|o| o.status);
        let error = match outcome {
            None => Some("not run".to_owned()),
            Some(o) if o.error.is_some() => o.error.clone(),
            Some(_) if received != Some(check.expected_status) => Some(format!(
                "expected {}, got {}",
                check.expected_status,
                received.map_or_else(|| "nothing".to_owned(), |s| s.to_string())
            )),
            Some(_) => None,
        };
        HttpCheckResult {
            name: check.name.clone(),
            status: received,
            ok: error.is_none(),
            error,
        }
    }
}

/// Every check passed.
fn validation_passed(status: &ValidationStatus) -> bool {
    status.missing_environment.is_empty()
        && status.unhealthy_mappings.is_empty()
        && status.queues.iter().all(|q| q.ok)
        && status.http.iter().all(|h| h.ok)
}

/// A queue's backlog is over its limits.
pub fn backlog_exceeded(
    visible: i64,
    in_flight: i64,
    max_visible: i64,
    max_in_flight: i64,
) -> bool {
    visible > max_visible || in_flight > max_in_flight
}

/// The `Validated` message: each failed check with what was measured, or that all passed.
fn validation_message(
    status: &ValidationStatus,
    validation: &ValidationSpec,
    queues_found: &BTreeSet<String>,
) -> String {
    let mut problems = Vec::new();
    if !status.missing_environment.is_empty() {
        problems.push(format!(
            "missing environment: {}",
            status.missing_environment.join(", ")
        ));
    }
    if !status.unhealthy_mappings.is_empty() {
        problems.push(format!(
            "mappings: {}",
            status.unhealthy_mappings.join(", ")
        ));
    }
    for (backlog, check) in status.queues.iter().zip(&validation.queues) {
        if !backlog.ok && !queues_found.contains(&backlog.queue) {
            problems.push(format!("queue {}: not found", backlog.queue));
        } else if !backlog.ok {
            problems.push(format!(
                "queue {}: {} visible (max {}), {} in flight (max {})",
                backlog.queue,
                backlog.visible,
                check.max_visible,
                backlog.in_flight,
                check.max_in_flight
            ));
        }
    }
    for http in status.http.iter().filter(|h| !h.ok) {
        problems.push(format!(
            "http {}: {}",
            http.name,
            http.error.as_deref().unwrap_or("failed")
        ));
    }
    if problems.is_empty() {
        "all checks passed".to_owned()
    } else {
        problems.join("; ")
    }
}
