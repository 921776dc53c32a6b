//! The status a SpotFleet round writes: capacity wanted and ready, the spec hash, one row per
//! live instance of the fleet with why it is being replaced, the phase in the message, and the
//! conditions. Pure: the caller passes the clock. Nothing in it changes while the fleet is
//! converged, so a stable fleet produces no watch traffic.

use std::collections::BTreeSet;

use jiff::Timestamp;
use stagehand_crds::CommonStatus;
use stagehand_crds::condition::INTERRUPTION_QUEUE_READY;
use stagehand_crds::spot_fleet::{InstanceStatus, SpotFleetStatus};

use super::act::ActReport;
use super::observed::{Observed, QueueFeedState};
use super::plan::{Plan, ReplacementReason};
use super::spec_hash::SPEC_HASH_VERSION;
use crate::base::conditions::{ConditionStatus, ReconcileOutcome, set_condition};
use crate::runtime::round::KindStatus;
use crate::runtime::status::next_common_status;

impl KindStatus for SpotFleetStatus {
    fn common(&self) -> &CommonStatus {
        &self.common
    }

    fn common_mut(&mut self) -> &mut CommonStatus {
        &mut self.common
    }
}

/// Everything a status is built from.
#[derive(Debug)]
pub struct StatusInputs<'a> {
    pub previous: Option<&'a SpotFleetStatus>,
    pub observed: &'a Observed,
    pub plan: &'a Plan,
    pub report: &'a ActReport,
    pub outcome: &'a ReconcileOutcome,
    /// The desired spec hash.
    pub spec_hash: &'a str,
    pub generation: Option<i64>,
    pub now: Timestamp,
}

/// The next status.
pub fn next_status(inputs: &StatusInputs<'_>) -> SpotFleetStatus {
    let StatusInputs {
        previous,
        observed,
        plan,
        report,
        outcome,
        spec_hash,
        generation,
        now,
    } = *inputs;
    let mut common = next_common_status(previous.map(|p| &p.common), outcome, generation, now);
    for condition in &plan.conditions {
        set_condition(
            &mut common.conditions,
            condition.type_,
            condition.status,
            &condition.reason,
            &condition.message,
            generation,
            now,
        );
    }
    match interruption_queue_condition(observed) {
        Some((status, reason, message)) => {
            set_condition(
                &mut common.conditions,
                INTERRUPTION_QUEUE_READY,
                status,
                reason,
                &message,
                generation,
                now,
            );
        }
        None => common
            .conditions
            .retain(|c| c.type_ != INTERRUPTION_QUEUE_READY),
    }
    if let Some(message) = &common.message
        && !report.launched.is_empty()
    {
        let version = report
            .template_version
            .map(|v| format!(" from launch template version {v}"))
            .unwrap_or_default();
        common.message = Some(format!(
            "{message} (launched {}{version})",
            report.launched.join(", ")
        ));
    }
    SpotFleetStatus {
        common,
        desired_capacity: plan.desired_capacity,
        ready_capacity: plan.ready_capacity,
        phase: Some(plan.phase.as_str().to_owned()),
        spec_hash: Some(spec_hash.to_owned()),
        spec_hash_version: Some(SPEC_HASH_VERSION.to_owned()),
        instances: instance_rows(observed, plan),
        interruptions: interruptions_seen(previous, observed),
    }
}

/// `InterruptionQueueReady` of a fleet naming a queue: whether the event feed polls it, or why
/// it cannot (the queue is missing, access is denied): a fleet that counts on reacting to
/// interruptions says so when it cannot. `None` without a queue.
fn interruption_queue_condition(observed: &Observed) -> Option<(ConditionStatus, &str, String)> {
    Some(match observed.interruption_queue.as_ref()? {
        QueueFeedState::Starting => (
            ConditionStatus::Unknown,
            "Starting",
            "the interruption queue has not been polled yet".to_owned(),
        ),
        QueueFeedState::Polling => (
            ConditionStatus::True,
            "Polling",
            "interruption events are received from the queue".to_owned(),
        ),
        QueueFeedState::Failing { reason, message } => {
            (ConditionStatus::False, reason.as_str(), message.clone())
        }
    })
}

/// Interruptions seen since the fleet was created: the previous count plus the warnings for
/// instances the previous status did not already show as interrupted.
fn interruptions_seen(previous: Option<&SpotFleetStatus>, observed: &Observed) -> i64 {
    let interrupted = ReplacementReason::InterruptionNotice.as_str();
    let known: BTreeSet<&str> = previous
        .map(|p| {
            p.instances
                .iter()
                .filter(|i| i.replacement.as_deref() == Some(interrupted))
                .map(|i| i.instance_id.as_str())
                .collect()
        })
        .unwrap_or_default();
    let new = observed
        .interruption_notices
        .iter()
        .filter(|id| !known.contains(id.as_str()))
        .count();
    previous.map_or(0, |p| p.interruptions) + i64::try_from(new).unwrap_or(0)
}

/// One row per live instance the plan judged, in the order observed.
fn instance_rows(observed: &Observed, plan: &Plan) -> Vec<InstanceStatus> {
    plan.instances
        .iter()
        .filter_map(|verdict| {
            let instance = observed.instance(&verdict.id)?;
            Some(InstanceStatus {
                instance_id: instance.id.clone(),
                instance_type: instance.instance_type.clone(),
                state: Some(instance.state.as_str().to_owned()),
                spec_hash: instance.tags.get(stagehand_crds::SPEC_HASH_TAG).cloned(),
                healthy: verdict.healthy,
                launched_at: instance.launched_at.map(|t| t.to_string()),
                replacement: verdict.replacement.map(|r| r.as_str().to_owned()),
            })
        })
        .collect()
}

/// The EC2 state of every instance that is the fleet's, for `stagehand_fleet_instances`: its
/// live members as the plan judged them (adopted ones included) and its instances going away;
/// not an untagged instance it only stalled on, nor another owner's.
pub fn fleet_states<'a>(observed: &'a Observed, plan: &Plan) -> Vec<&'a str> {
    let members: BTreeSet<&str> = plan.instances.iter().map(|i| i.id.as_str()).collect();
    observed
        .instances
        .iter()
        .filter(|i| members.contains(i.id.as_str()) || !i.state.is_live())
        .map(|i| i.state.as_str())
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use serde_json::json;
    use stagehand_crds::SpotFleetSpec;
    use stagehand_crds::condition::CAPACITY_READY;

    use super::*;
    use crate::base::ActGate;
    use crate::base::conditions::ConditionStatus;
    use crate::spot_fleet::observed::{Ec2Checks, InstanceState, ObservedInstance};
    use crate::spot_fleet::plan::{PlanContext, plan};
    use crate::spot_fleet::spec_hash::spec_hash_tags;

    const OWNER: &str = "ml/SpotFleet/gpu";

    fn spec() -> SpotFleetSpec {
        serde_json::from_value(json!({
            "region": "us-east-1",
            "capacity": 2,
            "instanceTypes": ["t3.small"],
            "imageId": "ami-12345678",
            "subnetIds": ["subnet-0000000a"],
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    fn instance(id: &str, hash: &str) -> ObservedInstance {
        let mut tags = spec_hash_tags(hash);
        tags.extend(crate::aws::tags::ownership_tags(OWNER, "c1"));
        ObservedInstance {
            id: id.into(),
            state: InstanceState::Running,
            instance_type: Some("t3.small".into()),
            image_id: Some("ami-12345678".into()),
            tags,
            ec2_checks: Ec2Checks::Ok,
            ..ObservedInstance::default()
        }
    }

    fn context() -> PlanContext {
        PlanContext {
            owner: OWNER.into(),
            cluster_id: "c1".into(),
            generation: 1,
            gate: ActGate::Act,
            desired_hash: "new".into(),
            hash_version: SPEC_HASH_VERSION.into(),
        }
    }

    fn status_of(observed: &Observed) -> SpotFleetStatus {
        status_after(None, observed)
    }

    /// The status after `previous` of a round that observed `observed`.
    fn status_after(previous: Option<&SpotFleetStatus>, observed: &Observed) -> SpotFleetStatus {
        let context = context();
        let plan = plan(&spec(), &context, observed);
        next_status(&StatusInputs {
            previous,
            observed,
            plan: &plan,
            report: &ActReport::default(),
            outcome: &plan.outcome(),
            spec_hash: "new",
            generation: Some(1),
            now: Timestamp::UNIX_EPOCH,
        })
    }

    #[test]
    fn the_instance_metric_counts_only_the_fleet_s_instances() {
        let untagged = ObservedInstance {
            tags: BTreeMap::new(),
            ..instance("i-9", "new")
        };
        let gone = ObservedInstance {
            state: InstanceState::Terminated,
            ..instance("i-2", "new")
        };
        let observed = Observed {
            instances: vec![instance("i-1", "new"), untagged, gone],
            ..Observed::default()
        };
        let context = context();
        // Without adopt the untagged instance only stalls the fleet; with it, it is a member.
        let stalled = plan(&spec(), &context, &observed);
        assert_eq!(fleet_states(&observed, &stalled), ["running", "terminated"]);
        let mut adopting = spec();
        adopting.lifecycle.adopt = true;
        let adopted = plan(&adopting, &context, &observed);
        assert_eq!(
            fleet_states(&observed, &adopted),
            ["running", "running", "terminated"]
        );
    }

    #[test]
    fn every_instance_has_a_row_saying_why_it_is_replaced() {
        let observed = Observed {
            instances: vec![instance("i-1", "new"), instance("i-2", "old")],
            ..Observed::default()
        };
        let status = status_of(&observed);
        assert_eq!(status.desired_capacity, 2);
        assert_eq!(status.ready_capacity, 1);
        assert_eq!(status.spec_hash.as_deref(), Some("new"));
        assert_eq!(status.spec_hash_version.as_deref(), Some(SPEC_HASH_VERSION));
        let rows: BTreeMap<&str, (bool, Option<&str>)> = status
            .instances
            .iter()
            .map(|r| {
                (
                    r.instance_id.as_str(),
                    (r.healthy, r.replacement.as_deref()),
                )
            })
            .collect();
        assert_eq!(
            rows,
            BTreeMap::from([("i-1", (true, None)), ("i-2", (true, Some("spec_hash")))])
        );
        let capacity = status
            .common
            .conditions
            .iter()
            .find(|c| c.type_ == CAPACITY_READY)
            .map(|c| c.status.clone());
        assert_eq!(capacity.as_deref(), Some(ConditionStatus::False.as_str()));
    }

    #[test]
    fn a_converged_fleet_is_ready() {
        let observed = Observed {
            instances: vec![instance("i-1", "new"), instance("i-2", "new")],
            ..Observed::default()
        };
        let status = status_of(&observed);
        assert_eq!(status.ready_capacity, 2);
        assert_eq!(status.phase.as_deref(), Some("Stable"));
        let ready = status
            .common
            .conditions
            .iter()
            .find(|c| c.type_ == "Ready")
            .map(|c| c.status.clone());
        assert_eq!(ready.as_deref(), Some("True"));
        // The same round again writes the same status.
        assert_eq!(status_of(&observed), status);
    }

    #[test]
    fn the_interruption_queue_and_interruptions_show_in_status() {
        let condition = |status: &SpotFleetStatus| {
            status
                .common
                .conditions
                .iter()
                .find(|c| c.type_ == INTERRUPTION_QUEUE_READY)
                .map(|c| (c.status.clone(), c.reason.clone()))
        };
        let mut observed = Observed {
            instances: vec![instance("i-1", "new"), instance("i-2", "new")],
            ..Observed::default()
        };
        assert_eq!(condition(&status_of(&observed)), None, "no queue named");
        for (state, want) in [
            (QueueFeedState::Starting, ("Unknown", "Starting")),
            (QueueFeedState::Polling, ("True", "Polling")),
            (
                QueueFeedState::Failing {
                    reason: "QueueNotFound".into(),
                    message: "SQS queue spot-events does not exist in us-east-1".into(),
                },
                ("False", "QueueNotFound"),
            ),
        ] {
            observed.interruption_queue = Some(state);
            assert_eq!(
                condition(&status_of(&observed)),
                Some((want.0.to_owned(), want.1.to_owned()))
            );
        }

        // A warning counts once, however many rounds show it.
        observed.interruption_notices = BTreeSet::from(["i-2".to_owned()]);
        let first = status_of(&observed);
        assert_eq!(first.interruptions, 1);
        let second = status_after(Some(&first), &observed);
        assert_eq!(second.interruptions, 1);
    }
}
