//! `Surge`: launch replacements first, terminate out-of-date instances once they are no longer
//! needed for `capacity - maxUnavailable` healthy instances, and never run more than
//! `capacity + maxSurge` live instances.
//!
//! With `maxUnavailable: 0` (the default) an old healthy instance goes only once a replacement
//! is healthy: it is terminated only when the healthy count exceeds `capacity`. Out-of-date
//! instances that are not healthy (stopped, impaired, never came up) go at once: they serve
//! nothing, and the room they free lets replacements launch. A replacement that is not healthy
//! past its grace period is out of date itself, so it is terminated and launched again while the
//! old instance keeps serving.

use super::action::{LaunchReason, TerminateReason};
use super::capacity::scale_down;
use super::{Judged, Phase, Planner, reason, requeue};
use crate::spot_fleet::observed::ObservedInstance;

impl<'a> Planner<'a> {
    pub(super) fn plan_surge(&mut self) {
        let capacity = self.capacity();
        let max_surge = usize::try_from(self.spec.replacement.max_surge).unwrap_or(0);
        let max_unavailable = usize::try_from(self.spec.replacement.max_unavailable).unwrap_or(0);
        let judged = self.judged.clone();
        let (out_of_date, in_date): (Vec<Judged<'a>>, Vec<Judged<'a>>) =
            judged.iter().partition(|j| j.reason.is_some());
        if max_surge == 0 && max_unavailable == 0 && out_of_date.iter().any(|j| j.healthy) {
            // The schema refuses this for Surge; a spec that slipped through must not wait forever.
            self.stall(
                reason::NO_ROOM_TO_REPLACE,
                "replacement.maxSurge and replacement.maxUnavailable are both 0: a healthy out-of-date instance can neither be replaced first nor terminated first; set maxSurge to at least 1".to_owned(),
            );
        }

        let mut terminate: Vec<(&'a ObservedInstance, TerminateReason)> = out_of_date
            .iter()
            .filter(|j| !j.healthy)
            .filter_map(replaced)
            .collect();

        let healthy = judged.iter().filter(|j| j.healthy).count();
        let min_healthy = capacity.saturating_sub(max_unavailable);
        let mut healthy_out_of_date: Vec<Judged<'a>> =
            out_of_date.iter().copied().filter(|j| j.healthy).collect();
        // The most urgent first (an interrupted instance is going anyway), then the oldest.
        healthy_out_of_date.sort_by_key(|j| (j.reason, j.instance.launched_at));
        terminate.extend(
            healthy_out_of_date
                .iter()
                .take(healthy.saturating_sub(min_healthy))
                .filter_map(replaced),
        );

        let excess = in_date.len().saturating_sub(capacity);
        terminate.extend(scale_down(&in_date, excess));
        let terminated = terminate.len();
        self.terminate(terminate);

        let live_after = judged.len() - terminated;
        let in_date_after = in_date.len() - excess;
        let needed = capacity.saturating_sub(in_date_after);
        let room = (capacity + max_surge).saturating_sub(live_after);
        let launch = needed.min(room);
        let launch_reason = if out_of_date.is_empty() {
            LaunchReason::Capacity
        } else {
            LaunchReason::Replacement
        };
        self.launch(launch, launch_reason);

        let settling = in_date.iter().any(|j| !j.healthy) || launch > 0;
        // The most telling first.
        self.plan.phase = [
            (!out_of_date.is_empty(), Phase::Replacing),
            (excess > 0, Phase::ScalingDown),
            (launch > 0, Phase::Launching),
            (settling, Phase::WaitingForHealth),
        ]
        .into_iter()
        .find_map(|(applies, phase)| applies.then_some(phase))
        .unwrap_or(Phase::Stable);
        if settling || healthy_out_of_date.len() > healthy.saturating_sub(min_healthy) {
            self.wait(
                reason::WAITING_FOR_HEALTH,
                "new instances",
                requeue::HEALTH_SECONDS,
            );
        }
        if needed > launch && launch == 0 && !settling {
            self.wait(
                reason::WAITING_FOR_CAPACITY,
                "fleet",
                requeue::CAPACITY_SECONDS,
            );
        }
    }
}

/// An out-of-date instance with its termination reason.
pub(super) fn replaced<'a>(judged: &Judged<'a>) -> Option<(&'a ObservedInstance, TerminateReason)> {
    judged
        .reason
        .map(|reason| (judged.instance, TerminateReason::Replaced(reason)))
}
