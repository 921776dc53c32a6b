//! `Recreate`: the team's own procedure, made safe. Terminate every out-of-date instance, wait
//! until none of the fleet's instances is listed any more, not even shutting down, then launch,
//! then wait until the new ones are healthy. Capacity drops to the in-date instances for the
//! time of it; that is what the strategy is chosen for (nothing old and new side by side).

use super::action::LaunchReason;
use super::capacity::scale_down;
use super::surge::replaced;
use super::{Judged, Phase, Planner, reason, requeue};

impl<'a> Planner<'a> {
    pub(super) fn plan_recreate(&mut self) {
        let capacity = self.capacity();
        let judged = self.judged.clone();
        let (out_of_date, in_date): (Vec<Judged<'a>>, Vec<Judged<'a>>) =
            judged.iter().partition(|j| j.reason.is_some());

        if !out_of_date.is_empty() {
            self.terminate(out_of_date.iter().filter_map(replaced).collect());
            self.plan.phase = Phase::Terminating;
            let ids: Vec<&str> = out_of_date.iter().map(|j| j.instance.id.as_str()).collect();
            self.wait(
                reason::WAITING_FOR_TERMINATION,
                ids.join(", "),
                requeue::TERMINATION_SECONDS,
            );
            return;
        }
        let shutting_down = self.shutting_down();
        if !shutting_down.is_empty() {
            // Not gone yet: a launch now would run old and new side by side.
            self.plan.phase = Phase::WaitingForTermination;
            let ids: Vec<&str> = shutting_down.iter().map(|i| i.id.as_str()).collect();
            self.wait(
                reason::WAITING_FOR_TERMINATION,
                ids.join(", "),
                requeue::TERMINATION_SECONDS,
            );
            return;
        }

        let excess = in_date.len().saturating_sub(capacity);
        if excess > 0 {
            let picked = scale_down(&in_date, excess);
            self.terminate(picked);
            self.plan.phase = Phase::ScalingDown;
        }
        let launch = capacity.saturating_sub(in_date.len());
        if launch > 0 {
            self.launch(launch, LaunchReason::Capacity);
            self.plan.phase = Phase::Launching;
        }
        if launch > 0 || in_date.iter().any(|j| !j.healthy) {
            if self.plan.phase == Phase::Stable {
                self.plan.phase = Phase::WaitingForHealth;
            }
            self.wait(
                reason::WAITING_FOR_HEALTH,
                "new instances",
                requeue::HEALTH_SECONDS,
            );
        }
    }
}
