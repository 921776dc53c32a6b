//! The stage's CloudFormation stack, changed only through change sets. While it is being
//! created, updated or replaced, its functions are left alone: CloudFormation may be writing
//! them too.

use stagehand_crds::lambda_stage::RollbackCompletePolicy;

use super::action::Action;
use super::{DriftField, Planner, reason, requeue};
use crate::aws::cloudformation::{ChangeSetInfo, ChangeSetKind};
use crate::lambda_stage::observed::ObservedStack;

impl Planner<'_> {
    /// Plans the stack; returns whether it is settled (functions may be changed this round).
    pub(super) fn plan_stack(&mut self) -> bool {
        let Some(infrastructure) = &self.spec.infrastructure else {
            return true;
        };
        let default_stack = ObservedStack::default();
        let observed = self.observed.stack.as_ref().unwrap_or(&default_stack);
        let stack_name = infrastructure.stack_name.clone();
        let Some(stack) = &observed.stack else {
            self.drift(DriftField::Stack, &stack_name, "does not exist".to_owned());
            return self.plan_change_set(&stack_name, observed, ChangeSetKind::Create);
        };
        let stack_reason = stack
            .status_reason
            .clone()
            .unwrap_or_else(|| "no reason given".to_owned());
        match stack_phase(&stack.status) {
            StackPhase::AwaitingCreateChangeSet => {
                self.plan_change_set(&stack_name, observed, ChangeSetKind::Create)
            }
            StackPhase::InProgress => {
                self.wait(
                    reason::STACK_IN_PROGRESS,
                    format!("stack {stack_name} {}", stack.status),
                    requeue::STACK_SECONDS,
                );
                false
            }
            StackPhase::RollbackComplete => {
                match infrastructure.on_rollback_complete {
                    RollbackCompletePolicy::Recreate => {
                        self.drift(DriftField::Stack, &stack_name, "ROLLBACK_COMPLETE: to be recreated".to_owned());
                        self.act(Action::DeleteFailedStack { stack_name });
                    }
                    RollbackCompletePolicy::Stall => self.stall(
                        reason::STACK_ROLLBACK_COMPLETE,
                        format!("stack {stack_name} is ROLLBACK_COMPLETE ({stack_reason}); delete it or set onRollbackComplete: Recreate"),
                    ),
                }
                false
            }
            StackPhase::UpdateRollbackFailed => {
                self.stall(
                    reason::STACK_UPDATE_ROLLBACK_FAILED,
                    format!("stack {stack_name} is UPDATE_ROLLBACK_FAILED: {stack_reason}"),
                );
                false
            }
            StackPhase::Failed => {
                self.stall(
                    reason::STACK_FAILED,
                    format!("stack {stack_name} is {}: {stack_reason}", stack.status),
                );
                false
            }
            StackPhase::Unrecognised => {
                self.wait(
                    reason::STACK_STATUS_UNKNOWN,
                    format!("stack {stack_name} is {}, a status Stagehand does not know; reading it again", stack.status),
                    requeue::STACK_SECONDS,
                );
                false
            }
            StackPhase::Stable if observed.desired_template_applied => true,
            StackPhase::Stable => {
                self.plan_change_set(&stack_name, observed, ChangeSetKind::Update)
            }
        }
    }

    /// Drives the desired change set; returns whether the stack is settled (empty change set).
    fn plan_change_set(
        &mut self,
        stack_name: &str,
        observed: &ObservedStack,
        kind: ChangeSetKind,
    ) -> bool {
        let change_set_name = observed.change_set_name.clone();
        let subject = format!("change set {change_set_name} of stack {stack_name}");
        match observed.change_set.as_ref().map(change_set_phase) {
            None | Some(ChangeSetPhase::Replace) => {
                if kind == ChangeSetKind::Update {
                    self.drift(
                        DriftField::Stack,
                        stack_name,
                        "template or parameters changed".to_owned(),
                    );
                }
                self.act(Action::CreateChangeSet {
                    stack_name: stack_name.to_owned(),
                    change_set_name,
                    kind,
                });
                false
            }
            Some(ChangeSetPhase::Empty) => true,
            Some(ChangeSetPhase::Computing | ChangeSetPhase::Executing) => {
                self.wait(reason::CHANGE_SET_PENDING, subject, requeue::STACK_SECONDS);
                false
            }
            Some(ChangeSetPhase::Ready) => {
                self.act(Action::ExecuteChangeSet {
                    stack_name: stack_name.to_owned(),
                    change_set_name,
                });
                false
            }
            Some(ChangeSetPhase::Failed(why)) => {
                self.stall(
                    reason::CHANGE_SET_FAILED,
                    format!("{subject} failed: {why}"),
                );
                false
            }
        }
    }
}

/// Where a stack is in its lifecycle, as far as the plan cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StackPhase {
    /// `REVIEW_IN_PROGRESS`: a Create change set exists (or must), nothing was executed yet.
    AwaitingCreateChangeSet,
    /// Any other `*_IN_PROGRESS`: wait.
    InProgress,
    /// A failed creation was rolled back; the stack can only be deleted.
    RollbackComplete,
    /// An update failed and so did its rollback: a human must continue the rollback.
    UpdateRollbackFailed,
    /// Another `*_FAILED` state.
    Failed,
    /// A `*_COMPLETE` status CloudFormation documents as settled: updatable.
    Stable,
    /// A status this code does not know (one CloudFormation added after this SDK, parsed into
    /// its `Unknown` variant): not taken for settled — wait and read it again.
    Unrecognised,
}

/// The phase of a stack status.
pub fn stack_phase(status: &str) -> StackPhase {
    match status {
        "REVIEW_IN_PROGRESS" => StackPhase::AwaitingCreateChangeSet,
        "ROLLBACK_COMPLETE" => StackPhase::RollbackComplete,
        "UPDATE_ROLLBACK_FAILED" => StackPhase::UpdateRollbackFailed,
        s if s.ends_with("_IN_PROGRESS") => StackPhase::InProgress,
        s if s.ends_with("_FAILED") => StackPhase::Failed,
        "CREATE_COMPLETE"
        | "UPDATE_COMPLETE"
        | "UPDATE_ROLLBACK_COMPLETE"
        | "IMPORT_COMPLETE"
        | "IMPORT_ROLLBACK_COMPLETE" => StackPhase::Stable,
        _ => StackPhase::Unrecognised,
    }
}

/// Where the desired change set is.
#[derive(Clone, Debug, PartialEq, Eq)]
enum ChangeSetPhase {
    /// Nothing to change: success.
    Empty,
    /// CloudFormation is computing it.
    Computing,
    /// Computed and executable.
    Ready,
    /// Being executed (the stack status says so too).
    Executing,
    /// Obsolete or failed to execute: create it again.
    Replace,
    /// Creation failed for a reason other than "no changes".
    Failed(String),
}

/// The phase of the desired change set. CloudFormation reports a change set with nothing to
/// change as `FAILED`: that one is `Empty`, not `Failed`.
fn change_set_phase(change_set: &ChangeSetInfo) -> ChangeSetPhase {
    if change_set.is_empty() {
        return ChangeSetPhase::Empty;
    }
    if change_set.pending() {
        return ChangeSetPhase::Computing;
    }
    if change_set.status == "FAILED" {
        return ChangeSetPhase::Failed(
            change_set
                .status_reason
                .clone()
                .unwrap_or_else(|| "no reason given".to_owned()),
        );
    }
    match change_set.execution_status.as_deref() {
        Some("AVAILABLE") => ChangeSetPhase::Ready,
        Some("OBSOLETE" | "EXECUTE_FAILED") => ChangeSetPhase::Replace,
        _ => ChangeSetPhase::Executing,
    }
}
