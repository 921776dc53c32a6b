//! Whose resources these are. A function or stack tagged for another object is never touched;
//! an untagged one only with `adopt: true`, or when the stage's own stack created it.

use super::action::Action;
use super::{DriftField, Planner, reason};
use crate::aws::tags::{self, Ownership};
use crate::lambda_stage::observed::{DeployedFunction, ObservedFunction};

impl Planner<'_> {
    /// Functions and the stack must be ours, or adoptable.
    pub(super) fn check_ownership(&mut self) {
        let owner = self.context.owner.as_str();
        let cluster = self.context.cluster_id.as_str();
        if let Some(stack) = self.observed.stack.as_ref().and_then(|s| s.stack.as_ref()) {
            let what = format!("stack {}", stack.name);
            self.check_owner_of(&what, tags::ownership(&stack.tags, owner, cluster));
        }
        for function in &self.observed.functions {
            if let Some(deployed) = &function.deployed {
                let what = format!("function {}", function.name);
                let ownership = tags::ownership(&deployed.tags, owner, cluster);
                if ownership == Ownership::Untagged && self.in_own_stack(function) {
                    // Created by the stage's own stack: ours, tagged before it is modified.
                    continue;
                }
                self.check_owner_of(&what, ownership);
            }
        }
    }

    /// Tags an untagged function the stage may manage (adopted, or created by its own stack) as
    /// the stage's before anything else changes it.
    pub(super) fn tag_if_untagged(
        &mut self,
        function: &ObservedFunction,
        deployed: &DeployedFunction,
    ) {
        let ownership = tags::ownership(
            &deployed.tags,
            &self.context.owner,
            &self.context.cluster_id,
        );
        if ownership == Ownership::Untagged
            && (self.spec.lifecycle.adopt || self.in_own_stack(function))
        {
            self.act(Action::TagFunction {
                function: function.name.clone(),
                arn: deployed.info.arn.clone(),
                tags: tags::missing_ownership_tags(
                    &deployed.tags,
                    &self.context.owner,
                    &self.context.cluster_id,
                ),
            });
        }
    }

    /// The function is a resource of the stage's stack (however the spec selects it: `fromStack`,
    /// `functionSelector.stackResources`, by name or by prefix) and that stack carries this
    /// stage's ownership tags: the stage created it through its stack, so it is the stage's own
    /// without `adopt`. (Real CloudFormation propagates the stack's tags to its functions;
    /// emulators and stacks tagged after creation do not.)
    fn in_own_stack(&self, function: &ObservedFunction) -> bool {
        self.observed.stack.as_ref().is_some_and(|observed| {
            observed.function_names.contains(&function.name)
                && observed.stack.as_ref().is_some_and(|stack| {
                    tags::ownership(&stack.tags, &self.context.owner, &self.context.cluster_id)
                        == Ownership::Ours
                })
        })
    }

    /// Another owner's resource stalls the plan; so does an untagged one the stage may not adopt.
    fn check_owner_of(&mut self, what: &str, ownership: Ownership) {
        match ownership {
            Ownership::OtherOwner(other) => {
                self.drift(DriftField::Ownership, what, format!("owned by {other}"));
                self.stall(
                    reason::OWNERSHIP_CONFLICT,
                    format!("{what} is owned by {other}; Stagehand never changes another owner's resources"),
                );
            }
            Ownership::Untagged if !self.spec.lifecycle.adopt => {
                self.drift(
                    DriftField::Ownership,
                    what,
                    "not tagged as owned by this stage".to_owned(),
                );
                self.stall(
                    reason::ADOPTION_REQUIRED,
                    format!("{what} exists without a {} tag; set spec.adopt: true to let this stage manage it", tags::OWNER_TAG),
                );
            }
            // Ours, or adoptable: an untagged function is tagged before it is modified.
            Ownership::Ours | Ownership::Untagged => {}
        }
    }
}
