//! What an event asks for, decided without I/O: which instances, in which region, whether the
//! region's listing is stale, which notice to record, whether the instance is gone for good,
//! and whether its owner must look now. The consumer carries it out through the inventory.

use super::event::{Detail, Event};
use crate::inventory::ec2::Notice;

/// The kinds of event, as the `kind` label of the feed's metrics names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum EventKind {
    InterruptionWarning,
    RebalanceRecommendation,
    StateChange,
    Health,
    ObjectCreated,
    ObjectDeleted,
    ApiCall,
    Heartbeat,
}

impl EventKind {
    pub const ALL: [Self; 8] = [
        Self::InterruptionWarning,
        Self::RebalanceRecommendation,
        Self::StateChange,
        Self::Health,
        Self::ObjectCreated,
        Self::ObjectDeleted,
        Self::ApiCall,
        Self::Heartbeat,
    ];

    /// The metric label.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::InterruptionWarning => "interruption_warning",
            Self::RebalanceRecommendation => "rebalance_recommendation",
            Self::StateChange => "state_change",
            Self::Health => "health",
            Self::ObjectCreated => "object_created",
            Self::ObjectDeleted => "object_deleted",
            Self::ApiCall => "api_call",
            Self::Heartbeat => "heartbeat",
        }
    }

    /// The kind of a parsed event.
    pub const fn of(detail: &Detail) -> Self {
        match detail {
            Detail::SpotInterruptionWarning { .. } => Self::InterruptionWarning,
            Detail::RebalanceRecommendation { .. } => Self::RebalanceRecommendation,
            Detail::StateChange { .. } => Self::StateChange,
            Detail::Health { .. } => Self::Health,
            Detail::ObjectCreated { .. } => Self::ObjectCreated,
            Detail::ObjectDeleted { .. } => Self::ObjectDeleted,
            Detail::ApiCall(_) => Self::ApiCall,
            Detail::Heartbeat => Self::Heartbeat,
        }
    }
}

/// What one event about EC2 instances asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceEffect {
    pub kind: EventKind,
    /// The region of the event (EventBridge delivers each region's events there).
    pub region: String,
    pub instance_ids: Vec<String>,
    /// Recorded for each instance whose owner is found, for its observe to read.
    pub notice: Option<Notice>,
    /// The region's cached listing no longer describes these instances: read EC2 afresh.
    pub listing_stale: bool,
    /// Terminated: whatever was announced about it has done its work.
    pub gone: bool,
}

/// What `event` asks for; `None` when it concerns nothing Stagehand acts on (an instance
/// starting, a health event of another service or naming no instance).
///
/// An AWS Health *scheduled change* naming an instance (retirement, a stop or reboot for
/// maintenance) is recorded like a rebalance recommendation: AWS will disrupt the instance,
/// and an immutable fleet replaces it early, surge-first, rather than ride the disruption out.
/// Other health events about instances only make the owner look now.
pub fn effect(event: &Event) -> Option<InstanceEffect> {
    let kind = EventKind::of(&event.detail);
    let (instance_ids, notice, listing_stale, gone) = match &event.detail {
        Detail::SpotInterruptionWarning { instance_id, .. } => (
            vec![instance_id.clone()],
            Some(Notice::Interruption),
            false,
            false,
        ),
        Detail::RebalanceRecommendation { instance_id } => (
            vec![instance_id.clone()],
            Some(Notice::Rebalance),
            false,
            false,
        ),
        Detail::StateChange { instance_id, state } => {
            if !state.stops_serving() {
                return None;
            }
            let gone = *state == super::event::InstanceState::Terminated;
            (vec![instance_id.clone()], None, true, gone)
        }
        Detail::Health {
            service,
            category,
            instance_ids,
            ..
        } => {
            if service != "EC2" || instance_ids.is_empty() {
                return None;
            }
            let notice = (category == "scheduledChange").then_some(Notice::Rebalance);
            (instance_ids.clone(), notice, false, false)
        }
        // Not about instances: see `change`.
        Detail::ObjectCreated { .. }
        | Detail::ObjectDeleted { .. }
        | Detail::ApiCall(_)
        | Detail::Heartbeat => return None,
    };
    Some(InstanceEffect {
        kind,
        region: event.envelope.region.clone(),
        instance_ids,
        notice,
        listing_stale,
        gone,
    })
}

#[cfg(test)]
mod tests {
    use jiff::Timestamp;

    use super::*;
    use crate::feed::event::{Envelope, InstanceState};

    fn event(detail: Detail) -> Event {
        Event {
            envelope: Envelope {
                id: "e-1".into(),
                source: "aws.ec2".into(),
                detail_type: "any".into(),
                account: "123456789012".into(),
                region: "eu-west-1".into(),
                time: Timestamp::UNIX_EPOCH,
                resources: Vec::new(),
            },
            detail,
        }
    }

    fn id() -> String {
        "i-0123456789abcdef0".into()
    }

    /// (detail, (notice, listing stale, gone)).
    type Row = (Detail, Option<(Option<Notice>, bool, bool)>);

    #[test]
    fn effects_table() {
        let state = |state| Detail::StateChange {
            instance_id: id(),
            state,
        };
        let health = |service: &str, category: &str, ids: &[&str]| Detail::Health {
            service: service.into(),
            event_type_code: "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED".into(),
            category: category.into(),
            instance_ids: ids.iter().map(|s| (*s).to_owned()).collect(),
        };
        // (detail, (notice, listing stale, gone)); `None`: nothing to do.
        let rows: Vec<Row> = vec![
            (
                Detail::SpotInterruptionWarning {
                    instance_id: id(),
                    action: "terminate".into(),
                },
                Some((Some(Notice::Interruption), false, false)),
            ),
            (
                Detail::RebalanceRecommendation { instance_id: id() },
                Some((Some(Notice::Rebalance), false, false)),
            ),
            (state(InstanceState::Pending), None),
            (state(InstanceState::Running), None),
            (state(InstanceState::Stopping), Some((None, true, false))),
            (state(InstanceState::Stopped), Some((None, true, false))),
            (
                state(InstanceState::ShuttingDown),
                Some((None, true, false)),
            ),
            (state(InstanceState::Terminated), Some((None, true, true))),
            (
                health("EC2", "scheduledChange", &["i-0123456789abcdef0"]),
                Some((Some(Notice::Rebalance), false, false)),
            ),
            (
                health("EC2", "issue", &["i-0123456789abcdef0"]),
                Some((None, false, false)),
            ),
            (health("EC2", "scheduledChange", &[]), None),
            (
                health("LAMBDA", "scheduledChange", &["i-0123456789abcdef0"]),
                None,
            ),
        ];
        for (detail, want) in rows {
            let got = effect(&event(detail.clone()));
            assert_eq!(
                got.as_ref().map(|e| (e.notice, e.listing_stale, e.gone)),
                want,
                "{detail:?}"
            );
            if let Some(got) = got {
                assert_eq!(got.region, "eu-west-1");
                assert_eq!(got.instance_ids, [id()]);
                assert_eq!(got.kind, EventKind::of(&detail));
            }
        }
    }
}
