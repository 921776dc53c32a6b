//! CloudFormation: a LambdaStage's optional stack, created and updated through change sets.

use std::collections::BTreeMap;

use aws_sdk_cloudformation::Client;
use aws_sdk_cloudformation::types::{Capability, ChangeSetType, Parameter, Tag};

use super::call::Caller;
use super::{AwsError, Service};

/// A stack as described.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StackInfo {
    pub id: String,
    pub name: String,
    /// `CREATE_COMPLETE`, `UPDATE_IN_PROGRESS`, `ROLLBACK_COMPLETE`, ...
    pub status: String,
    pub status_reason: Option<String>,
    pub outputs: BTreeMap<String, String>,
    pub tags: BTreeMap<String, String>,
    pub parameters: BTreeMap<String, String>,
}

impl StackInfo {
    /// An operation is running: wait (requeue) before anything else.
    pub fn in_progress(&self) -> bool {
        self.status.ends_with("_IN_PROGRESS")
    }
}

/// One resource of a stack.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StackResource {
    pub logical_id: String,
    pub physical_id: Option<String>,
    pub resource_type: String,
    pub status: Option<String>,
}

/// Whether a change set creates the stack or updates it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeSetKind {
    Create,
    Update,
}

/// What a change set should do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangeSetRequest {
    pub stack_name: String,
    pub change_set_name: String,
    pub kind: ChangeSetKind,
    /// `https://` URL of the template in S3.
    pub template_url: String,
    pub parameters: BTreeMap<String, String>,
    /// e.g. `CAPABILITY_IAM`, `CAPABILITY_NAMED_IAM`, `CAPABILITY_AUTO_EXPAND`.
    pub capabilities: Vec<String>,
    pub tags: BTreeMap<String, String>,
}

/// A change set's state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangeSetInfo {
    pub id: Option<String>,
    /// `CREATE_PENDING`, `CREATE_IN_PROGRESS`, `CREATE_COMPLETE`, `FAILED`, ...
    pub status: String,
    pub status_reason: Option<String>,
    /// `AVAILABLE`, `EXECUTE_IN_PROGRESS`, `EXECUTE_COMPLETE`, `UNAVAILABLE`, ...
    pub execution_status: Option<String>,
    pub change_count: usize,
}

impl ChangeSetInfo {
    /// The change set failed only because there was nothing to change: success.
    pub fn is_empty(&self) -> bool {
        self.status == "FAILED"
            && self
                .status_reason
                .as_deref()
                .is_some_and(is_no_changes_reason)
    }

    /// Still being computed: wait. A status this code does not know (one CloudFormation added
    /// after this SDK) is waited on too, never taken for computed.
    pub fn pending(&self) -> bool {
        !matches!(
            self.status.as_str(),
            "CREATE_COMPLETE"
                | "FAILED"
                | "DELETE_PENDING"
                | "DELETE_IN_PROGRESS"
                | "DELETE_COMPLETE"
                | "DELETE_FAILED"
        )
    }
}

/// CloudFormation's words for "nothing to change" (change sets and direct updates).
pub fn is_no_changes_reason(reason: &str) -> bool {
    reason.contains("didn't contain changes")
        || reason.contains("did not contain changes")
        || reason.contains("No updates are to be performed")
}

/// The CloudFormation adapter of one region.
#[derive(Clone, Debug)]
pub struct CloudFormation {
    client: Client,
    caller: Caller,
}

impl CloudFormation {
    pub(crate) fn new(client: Client, caller: Caller) -> Self {
        Self { client, caller }
    }

    /// The stack; `None` when it does not exist (CloudFormation says so with a
    /// `ValidationError`, which [`super::error::kind_of`] maps to not-found).
    pub async fn describe_stack(&self, name: &str) -> Result<Option<StackInfo>, AwsError> {
        let request = self.client.describe_stacks().stack_name(name).send();
        let Some(output) = self
            .caller
            .call_optional("DescribeStacks", Some(name), request)
            .await?
        else {
            return Ok(None);
        };
        Ok(output.stacks().first().map(|s| StackInfo {
            id: s.stack_id().unwrap_or_default().to_owned(),
            name: s.stack_name().unwrap_or(name).to_owned(),
            status: s
                .stack_status()
                .map(|st| st.as_str().to_owned())
                .unwrap_or_default(),
            status_reason: s.stack_status_reason().map(str::to_owned),
            outputs: s
                .outputs()
                .iter()
                .filter_map(|o| Some((o.output_key()?.to_owned(), o.output_value()?.to_owned())))
                .collect(),
            tags: s
                .tags()
                .iter()
                .filter_map(|t| Some((t.key()?.to_owned(), t.value()?.to_owned())))
                .collect(),
            parameters: s
                .parameters()
                .iter()
                .filter_map(|p| {
                    Some((
                        p.parameter_key()?.to_owned(),
                        p.parameter_value().unwrap_or_default().to_owned(),
                    ))
                })
                .collect(),
        }))
    }

    /// Every resource of the stack (all pages).
    pub async fn list_stack_resources(&self, name: &str) -> Result<Vec<StackResource>, AwsError> {
        let mut resources = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let request = self
                .client
                .list_stack_resources()
                .stack_name(name)
                .set_next_token(token.take())
                .send();
            let page = self
                .caller
                .call("ListStackResources", Some(name), request)
                .await?;
            resources.extend(page.stack_resource_summaries().iter().filter_map(|r| {
                Some(StackResource {
                    logical_id: r.logical_resource_id()?.to_owned(),
                    physical_id: r.physical_resource_id().map(str::to_owned),
                    resource_type: r.resource_type().unwrap_or_default().to_owned(),
                    status: r.resource_status().map(|s| s.as_str().to_owned()),
                })
            }));
            match page.next_token() {
                Some(next) if !next.is_empty() => token = Some(next.to_owned()),
                _ => return Ok(resources),
            }
        }
    }

    /// Creates a change set; returns its id.
    pub async fn create_change_set(&self, change: &ChangeSetRequest) -> Result<String, AwsError> {
        let request = self
            .client
            .create_change_set()
            .stack_name(&change.stack_name)
            .change_set_name(&change.change_set_name)
            .change_set_type(match change.kind {
                ChangeSetKind::Create => ChangeSetType::Create,
                ChangeSetKind::Update => ChangeSetType::Update,
            })
            .template_url(&change.template_url)
            .set_parameters(Some(
                change
                    .parameters
                    .iter()
                    .map(|(k, v)| {
                        Parameter::builder()
                            .parameter_key(k)
                            .parameter_value(v)
                            .build()
                    })
                    .collect(),
            ))
            .set_capabilities(Some(
                change
                    .capabilities
                    .iter()
                    .map(|c| Capability::from(c.as_str()))
                    .collect(),
            ))
            .set_tags(Some(
                change
                    .tags
                    .iter()
                    .map(|(k, v)| Tag::builder().key(k).value(v).build())
                    .collect(),
            ))
            .send();
        let output = self
            .caller
            .call("CreateChangeSet", Some(&change.stack_name), request)
            .await?;
        Ok(super::required(
            output.id(),
            Service::CloudFormation,
            "CreateChangeSet",
            Some(&change.stack_name),
            "Id",
        )?
        .to_owned())
    }

    /// A change set's state; `None` when it does not exist.
    pub async fn describe_change_set(
        &self,
        stack_name: &str,
        change_set_name: &str,
    ) -> Result<Option<ChangeSetInfo>, AwsError> {
        let request = self
            .client
            .describe_change_set()
            .stack_name(stack_name)
            .change_set_name(change_set_name)
            .send();
        let output = self
            .caller
            .call_optional("DescribeChangeSet", Some(stack_name), request)
            .await?;
        Ok(output.map(|o| ChangeSetInfo {
            id: o.change_set_id().map(str::to_owned),
            status: o
                .status()
                .map(|s| s.as_str().to_owned())
                .unwrap_or_default(),
            status_reason: o.status_reason().map(str::to_owned),
            execution_status: o.execution_status().map(|s| s.as_str().to_owned()),
            change_count: o.changes().len(),
        }))
    }

    pub async fn execute_change_set(
        &self,
        stack_name: &str,
        change_set_name: &str,
    ) -> Result<(), AwsError> {
        let request = self
            .client
            .execute_change_set()
            .stack_name(stack_name)
            .change_set_name(change_set_name)
            .send();
        self.caller
            .call("ExecuteChangeSet", Some(stack_name), request)
            .await?;
        Ok(())
    }

    /// Deletes a change set (an empty one, before the next attempt); a missing one is fine.
    pub async fn delete_change_set(
        &self,
        stack_name: &str,
        change_set_name: &str,
    ) -> Result<(), AwsError> {
        let request = self
            .client
            .delete_change_set()
            .stack_name(stack_name)
            .change_set_name(change_set_name)
            .send();
        self.caller
            .call_optional("DeleteChangeSet", Some(stack_name), request)
            .await?;
        Ok(())
    }

    /// Starts deleting the stack (poll [`CloudFormation::describe_stack`] for the end).
    pub async fn delete_stack(&self, name: &str) -> Result<(), AwsError> {
        let request = self.client.delete_stack().stack_name(name).send();
        self.caller
            .call_optional("DeleteStack", Some(name), request)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change_set(status: &str, reason: Option<&str>) -> ChangeSetInfo {
        ChangeSetInfo {
            id: None,
            status: status.into(),
            status_reason: reason.map(str::to_owned),
            execution_status: None,
            change_count: 0,
        }
    }

    #[test]
    fn empty_change_sets_are_recognised_in_every_wording() {
        for reason in [
            "The submitted information didn't contain changes. Submit different information to create a change set.",
            "No updates are to be performed.",
        ] {
            assert!(change_set("FAILED", Some(reason)).is_empty(), "{reason}");
        }
        assert!(!change_set("FAILED", Some("Template format error")).is_empty());
        assert!(!change_set("CREATE_COMPLETE", None).is_empty());
        assert!(change_set("CREATE_PENDING", None).pending());
        assert!(!change_set("CREATE_COMPLETE", None).pending());
        assert!(!change_set("FAILED", None).pending());
        // A status CloudFormation added after this SDK: waited on, never executed.
        assert!(change_set("CREATE_QUEUED", None).pending());
    }

    #[test]
    fn in_progress_statuses() {
        let stack = |status: &str| StackInfo {
            status: status.into(),
            ..StackInfo::default()
        };
        assert!(stack("UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS").in_progress());
        assert!(stack("CREATE_IN_PROGRESS").in_progress());
        assert!(!stack("ROLLBACK_COMPLETE").in_progress());
    }
}
