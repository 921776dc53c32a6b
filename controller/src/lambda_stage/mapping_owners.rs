//! Which event-source mappings are this stage's: the ownership tags Stagehand writes on every
//! mapping it creates (`CreateEventSourceMapping` with `Tags`), read back with `ListTags`.
//!
//! Why tags and not only `status.mappings[].createdByStagehand`: status is written after the
//! actions, so a controller killed between a successful create and the status write would
//! otherwise find "its" mapping later and take it for one that already existed — never deleted
//! with `deletionPolicy: Delete`. The tag is written by the create itself, atomically.
//!
//! Reads cost one `ListTags` per mapping, and only for mappings status has not recorded yet
//! (once per mapping in its life: afterwards status remembers the answer), plus at deletion
//! for the mappings status does not call Stagehand's.

use std::collections::BTreeSet;

use stagehand_crds::lambda_stage::{LambdaStageStatus, MappingStatus};

use super::observed::Observed;
use crate::aws::lambda::{EventSourceMapping, Lambda};
use crate::aws::tags::{self, Ownership};
use crate::aws::{AwsError, ErrorKind};

/// The ARN of mapping `uuid` of the function `function_arn` (same partition, region and
/// account): `arn:aws:lambda:<region>:<account>:event-source-mapping:<uuid>`.
pub fn mapping_arn(function_arn: &str, uuid: &str) -> Option<String> {
    let parts: Vec<&str> = function_arn.splitn(6, ':').collect();
    match parts.as_slice() {
        ["arn", partition, "lambda", region, account, _] => Some(format!(
            "arn:{partition}:lambda:{region}:{account}:event-source-mapping:{uuid}"
        )),
        _ => None,
    }
}

/// The found mappings whose ownership status does not know: in no group (function, queue)
/// whose UUID status recorded. Pure.
pub fn unrecorded_mappings<'o>(
    observed: &'o Observed,
    status: Option<&LambdaStageStatus>,
) -> Vec<&'o EventSourceMapping> {
    let recorded: BTreeSet<&str> = status
        .map_or(&[][..], |s| s.mappings.as_slice())
        .iter()
        .filter_map(|m| m.uuid.as_deref())
        .collect();
    observed
        .mappings
        .values()
        .filter(|found| !found.iter().any(|m| recorded.contains(m.uuid.as_str())))
        .flatten()
        .collect()
}

/// The UUIDs of the mappings status has not recorded whose tags name this stage.
pub async fn mappings_tagged_ours(
    lambda: &Lambda,
    observed: &Observed,
    status: Option<&LambdaStageStatus>,
    owner: &str,
    cluster_id: &str,
) -> Result<BTreeSet<String>, AwsError> {
    let mut ours = BTreeSet::new();
    for mapping in unrecorded_mappings(observed, status) {
        if is_ours(lambda, mapping, owner, cluster_id).await? {
            ours.insert(mapping.uuid.clone());
        }
    }
    Ok(ours)
}

async fn is_ours(
    lambda: &Lambda,
    mapping: &EventSourceMapping,
    owner: &str,
    cluster_id: &str,
) -> Result<bool, AwsError> {
    let Some(arn) = mapping
        .function_arn
        .as_deref()
        .and_then(|function_arn| mapping_arn(function_arn, &mapping.uuid))
    else {
        return Ok(false);
    };
    match lambda.list_tags(&arn).await {
        Ok(found) => Ok(tags::ownership(&found, owner, cluster_id) == Ownership::Ours),
        // Deleted since it was listed: nobody's.
        Err(error) if error.is_not_found() => Ok(false),
        Err(error) => Err(error),
    }
}

/// The mappings to delete with the stage (`deletionPolicy: Delete`), as (UUID, status entry):
/// those status says Stagehand created, and those its tags say are this stage's — found
/// through the function and queue of each status entry, so a mapping whose creation never
/// reached status is not left behind.
pub async fn mappings_to_delete<'s>(
    lambda: &Lambda,
    status: &'s LambdaStageStatus,
    owner: &str,
    cluster_id: &str,
) -> Result<Vec<(String, &'s MappingStatus)>, AwsError> {
    let mut doomed: Vec<(String, &MappingStatus)> = Vec::new();
    for entry in &status.mappings {
        if entry.created_by_stagehand
            && let Some(uuid) = &entry.uuid
        {
            doomed.push((uuid.clone(), entry));
            continue;
        }
        let Some(queue_arn) = &entry.event_source_arn else {
            continue;
        };
        // `function` is as the spec names it; a `fromStack` id is no Lambda name: nothing is
        // found (such mappings are deleted through status only). A refusal of the name must
        // not hold the finalizer forever.
        let found = match lambda
            .list_event_source_mappings(&entry.function, Some(queue_arn))
            .await
        {
            Ok(found) => found,
            Err(error) if error.is_not_found() || error.kind == ErrorKind::Validation => Vec::new(),
            Err(error) => return Err(error),
        };
        for mapping in found {
            if !doomed.iter().any(|(uuid, _)| *uuid == mapping.uuid)
                && is_ours(lambda, &mapping, owner, cluster_id).await?
            {
                doomed.push((mapping.uuid.clone(), entry));
            }
        }
    }
    Ok(doomed)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::lambda_stage::observed::MappingKey;

    fn mapping(uuid: &str) -> EventSourceMapping {
        EventSourceMapping {
            uuid: uuid.to_owned(),
            event_source_arn: Some("arn:aws:sqs:eu-west-1:123456789012:orders".into()),
            function_arn: Some("arn:aws:lambda:eu-west-1:123456789012:function:worker".into()),
            batch_size: Some(10),
            batching_window_seconds: None,
            state: Some("Enabled".into()),
            max_concurrency: None,
        }
    }

    #[test]
    fn mapping_arns_follow_the_functions_partition_region_and_account() {
        assert_eq!(
            mapping_arn(
                "arn:aws:lambda:eu-west-1:123456789012:function:worker",
                "u-1"
            )
            .as_deref(),
            Some("arn:aws:lambda:eu-west-1:123456789012:event-source-mapping:u-1")
        );
        assert_eq!(
            mapping_arn(
                "arn:aws-cn:lambda:cn-north-1:123456789012:function:worker:live",
                "u-2"
            )
            .as_deref(),
            Some("arn:aws-cn:lambda:cn-north-1:123456789012:event-source-mapping:u-2")
        );
        assert_eq!(mapping_arn("worker", "u-3"), None);
        assert_eq!(
            mapping_arn("arn:aws:sqs:eu-west-1:123456789012:orders", "u-4"),
            None
        );
    }

    #[test]
    fn only_mappings_status_has_not_recorded_are_looked_up() {
        let key = |queue: &str| MappingKey {
            function_name: "worker".into(),
            queue_arn: format!("arn:aws:sqs:eu-west-1:123456789012:{queue}"),
        };
        let observed = Observed {
            mappings: BTreeMap::from([
                (key("orders"), vec![mapping("u-recorded"), mapping("u-dup")]),
                (key("refunds"), vec![mapping("u-new")]),
            ]),
            ..Observed::default()
        };
        let status = LambdaStageStatus {
            mappings: vec![MappingStatus {
                function: "worker".into(),
                queue: "orders".into(),
                uuid: Some("u-recorded".into()),
                ..MappingStatus::default()
            }],
            ..LambdaStageStatus::default()
        };
        let uuids = |found: Vec<&EventSourceMapping>| -> Vec<String> {
            found.into_iter().map(|m| m.uuid.clone()).collect()
        };
        assert_eq!(
            uuids(unrecorded_mappings(&observed, Some(&status))),
            ["u-new"]
        );
        assert_eq!(
            uuids(unrecorded_mappings(&observed, None)),
            ["u-recorded", "u-dup", "u-new"]
        );
    }
}
