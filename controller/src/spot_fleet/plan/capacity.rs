//! Which instances go first when the fleet has more than it needs.

use std::cmp::Reverse;

use super::{Judged, TerminateReason};
use crate::spot_fleet::observed::ObservedInstance;

/// The sort key of removal, first removed first: unhealthy instances (they serve nothing), then
/// out-of-date ones (they would be replaced anyway), then the newest (the oldest have proven
/// themselves; a new one may still be settling), then by id so the choice is stable.
pub fn removal_order(
    healthy: bool,
    out_of_date: bool,
    instance: &ObservedInstance,
) -> (bool, bool, Reverse<Option<jiff::Timestamp>>, &str) {
    (
        healthy,
        !out_of_date,
        Reverse(instance.launched_at),
        instance.id.as_str(),
    )
}

/// The `excess` in-date instances to terminate for a scale-down, in removal order.
pub(super) fn scale_down<'a>(
    in_date: &[Judged<'a>],
    excess: usize,
) -> Vec<(&'a ObservedInstance, TerminateReason)> {
    let mut candidates = in_date.to_vec();
    candidates.sort_by(|a, b| {
        removal_order(a.healthy, false, a.instance)
            .cmp(&removal_order(b.healthy, false, b.instance))
    });
    candidates
        .into_iter()
        .take(excess)
        .map(|j| (j.instance, TerminateReason::ScaleDown))
        .collect()
}
