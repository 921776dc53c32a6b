//! Whose instances these are. Another owner's instance is never touched and stalls the fleet
//! (two controllers would fight over it); an untagged one (observe brings only those named for
//! the fleet) is adopted only with `adopt: true`, and stalls the fleet otherwise, as for a
//! LambdaStage: launching beside instances meant to be the fleet's would double it.

use super::action::Action;
use super::replacement::is_gone;
use super::{DriftField, Planner, reason};
use crate::aws::tags::{self, Ownership};

impl Planner<'_> {
    /// Sorts the live instances into the fleet's (ours, and adoptable ones, tagged first) and
    /// stalls on any other. Instances shutting down or terminated are not checked: nothing is
    /// done to them.
    pub(super) fn check_ownership(&mut self) {
        let owner = self.context.owner.as_str();
        let cluster = self.context.cluster_id.as_str();
        let mut adopt = Vec::new();
        for instance in &self.observed.instances {
            if is_gone(instance) {
                if tags::ownership(&instance.tags, owner, cluster) == Ownership::Ours {
                    self.gone.push(instance);
                }
                continue;
            }
            match tags::ownership(&instance.tags, owner, cluster) {
                Ownership::Ours => self.members.push(instance),
                Ownership::Untagged if self.spec.lifecycle.adopt => {
                    adopt.push(instance.id.clone());
                    self.members.push(instance);
                }
                Ownership::Untagged => {
                    self.drift(
                        DriftField::Ownership,
                        &instance.id,
                        "not tagged as owned by this fleet".to_owned(),
                    );
                    self.stall(
                        reason::ADOPTION_REQUIRED,
                        format!(
                            "instance {} exists without a {} tag and is named for this fleet; set spec.adopt: true to let this fleet manage (and replace) it, or rename it",
                            instance.id,
                            tags::OWNER_TAG
                        ),
                    );
                }
                Ownership::OtherOwner(other) => {
                    self.drift(
                        DriftField::Ownership,
                        &instance.id,
                        format!("owned by {other}"),
                    );
                    self.stall(
                        reason::OWNERSHIP_CONFLICT,
                        format!(
                            "instance {} is owned by {other}; Stagehand never changes another owner's instances",
                            instance.id
                        ),
                    );
                }
            }
        }
        if !adopt.is_empty() {
            self.act(Action::Adopt {
                ids: adopt,
                tags: tags::ownership_tags(owner, cluster),
            });
        }
    }
}
