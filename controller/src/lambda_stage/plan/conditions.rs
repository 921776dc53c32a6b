//! The domain conditions `CodeInSync`, `LayersAttached` and `MappingsHealthy`, summarised from
//! what the other concerns found (`Validated` is validation's).

use stagehand_crds::condition::{CODE_IN_SYNC, LAYERS_ATTACHED, MAPPINGS_HEALTHY};

use super::{FunctionSummary, Planner, reason};
use crate::base::conditions::{ConditionStatus, DesiredCondition};

/// A condition's status, reason and message.
type Verdict = (ConditionStatus, &'static str, String);

impl Planner<'_> {
    /// Pushes `CodeInSync`, `LayersAttached` and `MappingsHealthy` before `Validated`.
    pub(super) fn push_domain_conditions(&mut self) {
        let code = self.code_in_sync();
        let layers = self.layers_attached();
        let mappings = self.mappings_healthy();
        // Validated was pushed by `validate`; keep the documented order.
        let validated = self.plan.conditions.drain(..).collect::<Vec<_>>();
        for (type_, (status, reason, message)) in [
            (CODE_IN_SYNC, code),
            (LAYERS_ATTACHED, layers),
            (MAPPINGS_HEALTHY, mappings),
        ] {
            self.plan.conditions.push(DesiredCondition {
                type_,
                status,
                reason: reason.to_owned(),
                message,
            });
        }
        self.plan.conditions.extend(validated);
    }

    /// Unknown while an artifact is being hashed; else whether every function that declares
    /// code runs it.
    fn code_in_sync(&self) -> Verdict {
        let managed: Vec<&FunctionSummary> = self
            .plan
            .functions
            .iter()
            .filter(|f| f.desired_code_sha256.is_some())
            .collect();
        if self.code_hash_pending {
            return (
                ConditionStatus::Unknown,
                reason::ARTIFACT_HASH_PENDING,
                "an artifact without an S3 checksum is being hashed".to_owned(),
            );
        }
        if managed.is_empty() {
            return (
                ConditionStatus::True,
                reason::NO_CODE_DECLARED,
                "no function declares code".to_owned(),
            );
        }
        let differing: Vec<&str> = managed
            .iter()
            .filter(|f| !f.code_in_sync)
            .map(|f| f.name.as_str())
            .collect();
        if differing.is_empty() {
            (
                ConditionStatus::True,
                reason::CODE_MATCHES,
                format!(
                    "{}/{} functions run the desired code",
                    managed.len(),
                    managed.len()
                ),
            )
        } else {
            (
                ConditionStatus::False,
                reason::CODE_DRIFT,
                format!(
                    "{}/{} functions differ from the desired code: {}",
                    differing.len(),
                    managed.len(),
                    differing.join(", ")
                ),
            )
        }
    }

    /// Whether every function has the declared layers (and none of those dropped from the spec).
    fn layers_attached(&self) -> Verdict {
        if self.spec.layers.is_empty() && self.observed.previous.declared_layers.is_empty() {
            (
                ConditionStatus::True,
                reason::NO_LAYERS_DECLARED,
                String::new(),
            )
        } else if self.layers_drifted.is_empty() {
            (
                ConditionStatus::True,
                reason::LAYERS_ATTACHED,
                "declared layers attached to every function".to_owned(),
            )
        } else {
            (
                ConditionStatus::False,
                reason::LAYERS_DRIFTED,
                format!("layers differ on {}", self.layers_drifted.join(", ")),
            )
        }
    }

    /// Whether every declared mapping exists as declared, counting what planning and
    /// validation found wrong with it once.
    fn mappings_healthy(&self) -> Verdict {
        let mut problems = self.mapping_problems.clone();
        problems.extend(self.plan.validation.unhealthy_mappings.iter().cloned());
        problems.sort();
        problems.dedup();
        if self.spec.event_source_mappings.is_empty() {
            (
                ConditionStatus::True,
                reason::NO_MAPPINGS_DECLARED,
                String::new(),
            )
        } else if problems.is_empty() {
            (
                ConditionStatus::True,
                reason::MAPPINGS_HEALTHY,
                format!(
                    "{} mappings present and as declared",
                    self.spec.event_source_mappings.len()
                ),
            )
        } else {
            (
                ConditionStatus::False,
                reason::MAPPINGS_DRIFTED,
                problems.join("; "),
            )
        }
    }
}

/// A condition that is `True` when `ok`.
pub(super) fn condition(
    type_: &'static str,
    ok: bool,
    reason: &str,
    message: String,
) -> DesiredCondition {
    DesiredCondition {
        type_,
        status: ConditionStatus::from(ok),
        reason: reason.to_owned(),
        message,
    }
}

/// Overrides the condition of `type_` already pushed, if any.
pub(super) fn set_condition(
    conditions: &mut [DesiredCondition],
    type_: &str,
    status: ConditionStatus,
    reason: &str,
    message: &str,
) {
    if let Some(existing) = conditions.iter_mut().find(|c| c.type_ == type_) {
        existing.status = status;
        reason.clone_into(&mut existing.reason);
        message.clone_into(&mut existing.message);
    }
}
