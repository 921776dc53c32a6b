//! The changes a plan asks for. What is known about each kind of change — its name, metric
//! label, Event, what the inventory must read again — is one row of [`Action::facts`]; only its
//! message (`Display`) is written apart.

use std::collections::BTreeMap;
use std::fmt;

use super::replacement::ReplacementReason;
use crate::spot_fleet::observed::Offering;

/// One change to make in EC2. Variant names are what operators read in Events and logs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Write the ownership tags on untagged instances (`adopt: true`). They carry no spec hash,
    /// so they are then replaced like any out-of-date instance.
    Adopt {
        ids: Vec<String>,
        tags: BTreeMap<String, String>,
    },
    /// Write the current spec hash and version on instances tagged under another hash version:
    /// the hashing scheme changed, not the instances, so none is replaced.
    Restamp {
        ids: Vec<String>,
        tags: BTreeMap<String, String>,
    },
    /// Terminate instances, all for one reason.
    Terminate {
        ids: Vec<String>,
        reason: TerminateReason,
    },
    /// Launch `count` instances from the spec, tagged at launch, avoiding offerings a recent
    /// launch found without capacity.
    Launch {
        count: u32,
        avoid: Vec<Offering>,
        reason: LaunchReason,
    },
    /// Delete versions of the fleet's launch template that no live instance uses.
    PruneVersions {
        template_id: String,
        versions: Vec<i64>,
    },
}

/// Why instances are terminated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum TerminateReason {
    /// Out of date: replaced.
    Replaced(ReplacementReason),
    /// More in-date instances than `capacity`.
    ScaleDown,
}

impl TerminateReason {
    /// The `reason` label of the replacement and termination metrics.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Replaced(reason) => reason.as_str(),
            Self::ScaleDown => "scale_down",
        }
    }
}

/// Why instances are launched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LaunchReason {
    /// Fewer in-date instances than `capacity` and nothing to replace: a new fleet, a scale-up,
    /// or capacity restored after instances went away.
    Capacity,
    /// Replacements for out-of-date instances.
    Replacement,
}

impl LaunchReason {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Capacity => "capacity",
            Self::Replacement => "replacement",
        }
    }
}

/// Everything known about one kind of action besides its message: gathered in
/// [`Action::facts`] so that a new variant is described in one place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ActionFacts<'a> {
    /// The variant name, as operators read it (`Launch`).
    pub kind: &'static str,
    /// The `action` label of `stagehand_actions_total`.
    pub metric_label: &'static str,
    /// The reason of the Kubernetes Event reporting it (`InstancesLaunched`).
    pub event_reason: &'static str,
    /// The action of that Event: the AWS call made (`CreateFleet`).
    pub event_verb: &'static str,
    /// What the inventory must read again instead of trusting a listing taken before.
    pub written: Written<'a>,
}

/// What an action changed in EC2, as far as the inventory's listings are concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Written<'a> {
    /// These instances' tags or state.
    Instances(&'a [String]),
    /// The fleet's instances, whichever they are: a launch creates instances not yet known by
    /// id.
    Fleet,
    /// No instance: the fleet's launch template (the launch cache is told by the action).
    Template,
}

impl Action {
    /// The facts of this action, one row per variant.
    pub const fn facts(&self) -> ActionFacts<'_> {
        match self {
            Self::Adopt { ids, .. } => ActionFacts {
                kind: "Adopt",
                metric_label: "adopt",
                event_reason: "InstancesAdopted",
                event_verb: "CreateTags",
                written: Written::Instances(ids.as_slice()),
            },
            Self::Restamp { ids, .. } => ActionFacts {
                kind: "Restamp",
                metric_label: "restamp",
                event_reason: "InstancesRestamped",
                event_verb: "CreateTags",
                written: Written::Instances(ids.as_slice()),
            },
            Self::Terminate { ids, .. } => ActionFacts {
                kind: "Terminate",
                metric_label: "terminate",
                event_reason: "InstancesTerminated",
                event_verb: "TerminateInstances",
                written: Written::Instances(ids.as_slice()),
            },
            Self::Launch { .. } => ActionFacts {
                kind: "Launch",
                metric_label: "launch",
                event_reason: "InstancesLaunched",
                event_verb: "CreateFleet",
                written: Written::Fleet,
            },
            Self::PruneVersions { .. } => ActionFacts {
                kind: "PruneVersions",
                metric_label: "prune_versions",
                event_reason: "TemplateVersionsDeleted",
                event_verb: "DeleteLaunchTemplateVersions",
                written: Written::Template,
            },
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Adopt { ids, .. } => write!(f, "adopt {}", ids.join(", ")),
            Self::Restamp { ids, .. } => {
                write!(
                    f,
                    "re-stamp {} with the new spec hash version",
                    ids.join(", ")
                )
            }
            Self::Terminate { ids, reason } => {
                write!(f, "terminate {} ({})", ids.join(", "), reason.as_str())
            }
            Self::Launch {
                count,
                avoid,
                reason,
            } => {
                write!(f, "launch {count} instance(s) ({})", reason.as_str())?;
                if !avoid.is_empty() {
                    let offerings: Vec<String> = avoid
                        .iter()
                        .map(|o| format!("{} in {}", o.instance_type, o.zone))
                        .collect();
                    write!(f, ", avoiding {}", offerings.join(", "))?;
                }
                Ok(())
            }
            Self::PruneVersions {
                template_id,
                versions,
            } => {
                let numbers: Vec<String> = versions.iter().map(i64::to_string).collect();
                write!(
                    f,
                    "delete unused version(s) {} of launch template {template_id}",
                    numbers.join(", ")
                )
            }
        }
    }
}
