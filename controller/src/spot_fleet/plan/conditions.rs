//! `CapacityReady`: whether `capacity` in-date instances are healthy, and if not, how many are
//! missing and what EC2 said when the last launch fell short.

use stagehand_crds::condition::CAPACITY_READY;

use super::{Planner, reason};
use crate::base::conditions::{ConditionStatus, DesiredCondition};

impl Planner<'_> {
    pub(super) fn push_capacity_condition(&mut self) {
        let ready = self.plan.ready_capacity;
        let desired = self.spec.capacity;
        let (status, reason, message) = if ready >= desired {
            (
                ConditionStatus::True,
                reason::CAPACITY_MET,
                format!("{ready}/{desired} instances ready"),
            )
        } else if self.observed.launch_errors.is_empty() {
            (
                ConditionStatus::False,
                reason::CAPACITY_SHORTFALL,
                format!(
                    "{ready}/{desired} instances ready, {} short",
                    desired - ready
                ),
            )
        } else {
            (
                ConditionStatus::False,
                reason::LAUNCH_ERRORS,
                format!(
                    "{ready}/{desired} instances ready, {} short; last launch: {}",
                    desired - ready,
                    self.launch_errors()
                ),
            )
        };
        self.plan.conditions.push(DesiredCondition {
            type_: CAPACITY_READY,
            status,
            reason: reason.to_owned(),
            message,
        });
    }

    /// The last launch's errors, by AWS code and offering, each once.
    fn launch_errors(&self) -> String {
        let mut described: Vec<String> = self
            .observed
            .launch_errors
            .iter()
            .map(|e| match &e.offering {
                Some(o) => format!("{} ({} in {})", e.code, o.instance_type, o.zone),
                None => e.code.clone(),
            })
            .collect();
        described.sort();
        described.dedup();
        described.join(", ")
    }
}
