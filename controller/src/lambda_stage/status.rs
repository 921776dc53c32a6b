//! The status a reconcile writes: what was observed, what the plan concluded and what the
//! actions produced (created mapping UUIDs, published versions). Pure: the caller passes the
//! clock.

use std::collections::BTreeMap;

use jiff::Timestamp;
use stagehand_crds::LambdaStageSpec;
use stagehand_crds::condition::{LAYERS_ATTACHED, VALIDATED};
use stagehand_crds::lambda_stage::{
    AliasStatus, ArtifactHash, FunctionStatus, LambdaStageStatus, MappingStatus, PublishedVersion,
    StackStatus, VersionRollback,
};

use super::act::ActReport;
use super::observed::{DeclaredAs, MappingKey, Observed, ObservedFunction};
use super::plan::{Action, Plan, keep_mapping};
use crate::aws::lambda;
use crate::aws::s3::ObjectHead;
use crate::base::conditions::{ConditionStatus, ReconcileOutcome, set_condition};
use crate::runtime::status::{FeedUse, next_common_status, set_event_feed_condition};

/// What a stage gets from a healthy event feed (`EventFeedReady`'s message).
pub const FEED_USE: FeedUse = FeedUse {
    holding: "artifact",
    while_healthy: "aliases are read hourly and the region's Lambda listings serve for the backstop max age (--feed-backstop-max-age), not the inventory max age",
};

/// Everything a status is built from.
#[derive(Debug)]
pub struct StatusInputs<'a> {
    pub previous: Option<&'a LambdaStageStatus>,
    pub spec: &'a LambdaStageSpec,
    pub observed: &'a Observed,
    pub plan: &'a Plan,
    pub report: &'a ActReport,
    pub outcome: &'a ReconcileOutcome,
    pub generation: Option<i64>,
    pub now: Timestamp,
}

/// The next status.
pub fn next_status(inputs: &StatusInputs<'_>) -> LambdaStageStatus {
    let StatusInputs {
        previous,
        spec,
        observed,
        plan,
        report,
        outcome,
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
    set_event_feed_condition(
        &mut common.conditions,
        &observed.event_feed,
        &observed.buckets_without_events,
        FEED_USE,
        generation,
        now,
    );
    LambdaStageStatus {
        common,
        functions_in_sync: Some(format!(
            "{}/{}",
            plan.functions.iter().filter(|f| f.code_in_sync).count(),
            plan.functions.len()
        )),
        code_sha256: shared_code_hash(plan),
        functions: function_statuses(observed, plan),
        mappings: mapping_statuses(previous, spec, observed, report),
        stack: stack_status(previous, spec, observed, report),
        versions: versions(previous, spec, observed, plan, report, now),
        alias: alias_status(previous, spec, observed, now),
        validation: Some(plan.validation.clone()),
        declared_layers: declared_layers(previous, spec, observed, plan),
        artifact_hashes: artifact_hashes(observed),
    }
}

/// The streamed hashes of the artifacts the spec names now (S3's own checksum needs no record).
fn artifact_hashes(observed: &Observed) -> Vec<ArtifactHash> {
    observed
        .artifacts
        .iter()
        .filter(|a| a.head.as_ref().and_then(ObjectHead::sha256).is_none())
        .filter_map(|a| {
            Some(ArtifactHash {
                sha256: a.cached_sha256?.to_base64(),
                object: a.identity()?.into(),
            })
        })
        .collect()
}

fn shared_code_hash(plan: &Plan) -> Option<String> {
    let mut desired = plan
        .functions
        .iter()
        .filter_map(|f| f.desired_code_sha256.as_deref());
    let first = desired.next()?;
    if desired.all(|d| d == first) {
        Some(first.chars().take(12).collect())
    } else {
        Some("mixed".to_owned())
    }
}

fn function_statuses(observed: &Observed, plan: &Plan) -> Vec<FunctionStatus> {
    observed
        .functions
        .iter()
        .filter_map(|function| {
            let deployed = function.deployed.as_ref()?;
            let summary = plan.functions.iter().find(|s| s.name == function.name);
            Some(FunctionStatus {
                function_name: function.name.clone(),
                deployed_code_sha256: summary
                    .and_then(|s| s.deployed_code_sha256.clone())
                    .or_else(|| deployed.info.code_sha256.clone()),
                desired_code_sha256: summary.and_then(|s| s.desired_code_sha256.clone()),
                last_update_status: deployed.info.last_update_status.clone(),
                version: deployed.alias.as_ref().map(|a| a.function_version.clone()),
                layers: deployed.info.layers.clone(),
            })
        })
        .collect()
}

/// The function a declared mapping names (as the plan resolves it).
fn mapping_function<'o>(observed: &'o Observed, reference: &str) -> Option<&'o ObservedFunction> {
    observed.functions.iter().filter(|f| f.deployed.is_some()).find(|f| {
        f.name == reference
            || matches!(&f.declared_as, Some(DeclaredAs::FromStack(id) | DeclaredAs::Name(id)) if id == reference)
    })
}

fn mapping_statuses(
    previous: Option<&LambdaStageStatus>,
    spec: &LambdaStageSpec,
    observed: &Observed,
    report: &ActReport,
) -> Vec<MappingStatus> {
    let previous_mappings = previous.map_or(&[][..], |p| p.mappings.as_slice());
    spec.event_source_mappings
        .iter()
        .map(|declared| {
            let recorded = previous_mappings
                .iter()
                .find(|m| m.function == declared.function && m.queue == declared.queue);
            let function = mapping_function(observed, &declared.function);
            let queue = observed.queues.get(&declared.queue);
            let created = function.and_then(|f| {
                report
                    .created_mappings
                    .get(&(f.name.clone(), declared.queue.clone()))
            });
            let found = match (function, queue) {
                (Some(f), Some(q)) => observed
                    .mappings
                    .get(&MappingKey::new(&f.name, &q.arn))
                    .map_or(&[][..], Vec::as_slice),
                _ => &[][..],
            };
            let mapping =
                created.or_else(|| keep_mapping(found, recorded.and_then(|r| r.uuid.as_deref())));
            // Created this round, recorded as created, or tagged for this stage (a create whose
            // status write was lost to a crash).
            let created_by_stagehand = created.is_some()
                || recorded.is_some_and(|r| {
                    r.created_by_stagehand
                        && mapping.is_some_and(|m| r.uuid.as_deref() == Some(m.uuid.as_str()))
                })
                || mapping.is_some_and(|m| observed.mappings_tagged_ours.contains(&m.uuid));
            MappingStatus {
                function: declared.function.clone(),
                queue: declared.queue.clone(),
                uuid: mapping.map(|m| m.uuid.clone()),
                state: mapping.and_then(|m| m.state.clone()),
                event_source_arn: queue.map(|q| q.arn.clone()),
                created_by_stagehand,
            }
        })
        .collect()
}

fn stack_status(
    previous: Option<&LambdaStageStatus>,
    spec: &LambdaStageSpec,
    observed: &Observed,
    report: &ActReport,
) -> Option<StackStatus> {
    let infrastructure = spec.infrastructure.as_ref()?;
    let stack = observed.stack.as_ref().and_then(|s| s.stack.as_ref());
    let created_before = previous
        .and_then(|p| p.stack.as_ref())
        .is_some_and(|s| s.created_by_stagehand);
    Some(StackStatus {
        name: infrastructure.stack_name.clone(),
        stack_id: stack.map(|s| s.id.clone()),
        status: stack.map(|s| s.status.clone()),
        reason: stack.and_then(|s| s.status_reason.clone()),
        created_by_stagehand: created_before || report.stack_created,
    })
}

/// Published versions, newest first, at most `alias.keepVersions` per function (plus the
/// newest validated one, a rollback's target), with what validation said about them: a version
/// the alias served alone while validation passed is `validated`; one the alias was rolled
/// back from is `rolledBack` for as long as the function's code is that version's.
fn versions(
    previous: Option<&LambdaStageStatus>,
    spec: &LambdaStageSpec,
    observed: &Observed,
    plan: &Plan,
    report: &ActReport,
    now: Timestamp,
) -> Vec<PublishedVersion> {
    let Some(alias) = &spec.alias else {
        return Vec::new();
    };
    let keep = usize::try_from(alias.keep_versions).unwrap_or(1);
    let mut all: Vec<PublishedVersion> = report
        .published
        .iter()
        .rev()
        .map(|(function, v)| PublishedVersion {
            function_name: function.clone(),
            version: v.version.clone(),
            code_sha256: v.code_sha256.clone().unwrap_or_default(),
            ..PublishedVersion::default()
        })
        .collect();
    all.extend(
        previous
            .map_or(&[][..], |p| p.versions.as_slice())
            .iter()
            .cloned(),
    );
    let mut unique: Vec<PublishedVersion> = Vec::new();
    for version in all {
        if !unique
            .iter()
            .any(|k| k.function_name == version.function_name && k.version == version.version)
        {
            unique.push(version);
        }
    }
    record_rollbacks(&mut unique, report, now);
    record_validated(&mut unique, observed, plan);
    for version in &mut unique {
        let deployed_code = observed
            .functions
            .iter()
            .find(|f| f.name == version.function_name)
            .and_then(|f| f.deployed.as_ref())
            .and_then(|d| d.info.code_sha256.as_deref());
        // A new build replaces the one rolled back from; without the flag nothing is held.
        let still_that_build = deployed_code.is_none_or(|code| code == version.code_sha256);
        if !alias.rollback_on_validation_failure || !still_that_build {
            version.rolled_back = None;
        }
    }
    let mut per_function: BTreeMap<String, usize> = BTreeMap::new();
    let mut newest_validated_kept: BTreeMap<String, bool> = BTreeMap::new();
    let mut kept = Vec::new();
    for version in unique {
        let count = per_function
            .entry(version.function_name.clone())
            .or_default();
        let validated_kept = newest_validated_kept
            .entry(version.function_name.clone())
            .or_default();
        let newest_validated = version.validated && !*validated_kept;
        if version.validated {
            *validated_kept = true;
        }
        if *count < keep || newest_validated {
            *count += 1;
            kept.push(version);
        }
    }
    kept
}

/// Marks the versions the alias was rolled back from this round.
fn record_rollbacks(versions: &mut Vec<PublishedVersion>, report: &ActReport, now: Timestamp) {
    for action in &report.done {
        let Action::RollBackAlias {
            function,
            from_version,
            from_code_sha256,
            to_version,
            reason,
            ..
        } = action
        else {
            continue;
        };
        let index = versions
            .iter()
            .position(|v| v.function_name == *function && v.version == *from_version)
            .unwrap_or_else(|| {
                // Not published by Stagehand (or no longer remembered): remember it now, or
                // the next round would move the alias forward to it again.
                versions.insert(
                    0,
                    PublishedVersion {
                        function_name: function.clone(),
                        version: from_version.clone(),
                        code_sha256: from_code_sha256.clone(),
                        ..PublishedVersion::default()
                    },
                );
                0
            });
        if let Some(version) = versions.get_mut(index) {
            version.validated = false;
            version.rolled_back = Some(VersionRollback {
                to_version: to_version.clone(),
                reason: reason.clone(),
                at: Some(now.to_string()),
            });
        }
    }
}

/// Marks the versions that the alias sent all of its traffic to while validation passed.
fn record_validated(versions: &mut [PublishedVersion], observed: &Observed, plan: &Plan) {
    let passed = plan
        .condition(VALIDATED)
        .is_some_and(|c| c.status == ConditionStatus::True);
    if !passed {
        return;
    }
    for function in &observed.functions {
        let Some(alias) = function.deployed.as_ref().and_then(|d| d.alias.as_ref()) else {
            continue;
        };
        if !alias.routing_weights.is_empty() {
            continue;
        }
        for version in versions.iter_mut().filter(|v| {
            v.function_name == function.name
                && v.version == alias.function_version
                && v.rolled_back.is_none()
        }) {
            version.validated = true;
        }
    }
}

fn alias_status(
    previous: Option<&LambdaStageStatus>,
    spec: &LambdaStageSpec,
    observed: &Observed,
    now: Timestamp,
) -> Option<AliasStatus> {
    let alias = spec.alias.as_ref()?;
    let mut status = AliasStatus {
        name: alias.name.clone(),
        ..AliasStatus::default()
    };
    for function in &observed.functions {
        let Some(current) = function.deployed.as_ref().and_then(|d| d.alias.as_ref()) else {
            continue;
        };
        status
            .versions
            .insert(function.name.clone(), current.function_version.clone());
        if let Some((version, weight)) = current.routing_weights.iter().next() {
            status.canary_version = Some(version.clone());
            // Weights are fractions with two decimals at most; the rounded percent fits.
            #[expect(clippy::cast_possible_truncation, reason = "0..=100 after rounding")]
            let percent = (weight * 100.0).round() as i32;
            status.canary_weight = Some(percent);
        }
    }
    if let Some(canary_version) = &status.canary_version {
        let previous_alias = previous.and_then(|p| p.alias.as_ref());
        status.canary_started_at = previous_alias
            .filter(|a| a.canary_version.as_ref() == Some(canary_version))
            .and_then(|a| a.canary_started_at.clone())
            .or_else(|| Some(now.to_string()));
    }
    Some(status)
}

/// The declared layers as status remembers them: the current spec's once every function has
/// them, else the union with the previous list (a layer dropped from the spec stays listed
/// until it has been detached everywhere).
fn declared_layers(
    previous: Option<&LambdaStageStatus>,
    spec: &LambdaStageSpec,
    observed: &Observed,
    plan: &Plan,
) -> Vec<String> {
    let current: Vec<String> = spec
        .layers
        .iter()
        .map(|layer| {
            observed.layer_versions.get(&layer.name).map_or_else(
                || layer.name.clone(),
                |arn| lambda::layer_arn_without_version(arn).to_owned(),
            )
        })
        .collect();
    let attached = plan
        .condition(LAYERS_ATTACHED)
        .is_some_and(|c| c.status == ConditionStatus::True);
    if attached {
        return current;
    }
    let mut layers = previous
        .map(|p| p.declared_layers.clone())
        .unwrap_or_default();
    for layer in current {
        if !layers.contains(&layer) {
            layers.push(layer);
        }
    }
    layers
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::aws::lambda::EventSourceMapping;
    use crate::aws::sqs::QueueInfo;
    use crate::base::gates::ActGate;
    use crate::lambda_stage::observed::DeployedFunction;
    use crate::lambda_stage::plan::{PlanContext, plan};

    const QUEUE_ARN: &str = "arn:aws:sqs:eu-west-1:123456789012:orders";

    fn spec() -> LambdaStageSpec {
        serde_json::from_value(json!({
            "region": "eu-west-1",
            "adopt": true,
            "functions": [{"name": "worker"}],
            "eventSourceMappings": [{"function": "worker", "queue": "orders"}]
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    /// `worker` with one mapping from `orders`, found by observe.
    fn observed() -> Observed {
        Observed {
            functions: vec![ObservedFunction {
                name: "worker".into(),
                declared_as: Some(DeclaredAs::Name("worker".into())),
                deployed: Some(DeployedFunction::default()),
            }],
            queues: BTreeMap::from([(
                "orders".to_owned(),
                QueueInfo {
                    url: "https://sqs.eu-west-1.amazonaws.com/123456789012/orders".into(),
                    arn: QUEUE_ARN.into(),
                    visible: 0,
                    in_flight: 0,
                },
            )]),
            mappings: BTreeMap::from([(
                MappingKey::new("worker", QUEUE_ARN),
                vec![EventSourceMapping {
                    uuid: "u-1".into(),
                    event_source_arn: Some(QUEUE_ARN.into()),
                    state: Some("Enabled".into()),
                    batch_size: Some(10),
                    ..EventSourceMapping::default()
                }],
            )]),
            ..Observed::default()
        }
    }

    fn status_of(observed: &Observed, previous: Option<&LambdaStageStatus>) -> LambdaStageStatus {
        let spec = spec();
        let context = PlanContext {
            owner: "shop/LambdaStage/dev".into(),
            cluster_id: "c1".into(),
            generation: 1,
            gate: ActGate::Act,
        };
        let plan = plan(&spec, &context, observed);
        next_status(&StatusInputs {
            previous,
            spec: &spec,
            observed,
            plan: &plan,
            report: &ActReport::default(),
            outcome: &plan.outcome(),
            generation: Some(1),
            now: Timestamp::UNIX_EPOCH,
        })
    }

    #[test]
    fn a_mapping_tagged_for_the_stage_is_its_own_even_when_status_lost_its_creation() {
        let mut tagged = observed();
        tagged.mappings_tagged_ours.insert("u-1".into());
        let status = status_of(&tagged, None);
        assert_eq!(status.mappings[0].uuid.as_deref(), Some("u-1"));
        assert!(status.mappings[0].created_by_stagehand);
        // Once recorded, status keeps saying so without looking at tags again.
        let again = status_of(&observed(), Some(&status));
        assert!(again.mappings[0].created_by_stagehand);
    }

    /// An artifact at `etag`, with S3's own checksum or with a hash streamed earlier.
    fn artifact(etag: &str, s3_checksum: bool) -> crate::lambda_stage::observed::ObservedArtifact {
        let sha256 = crate::aws::s3::Sha256Digest::of(etag.as_bytes());
        crate::lambda_stage::observed::ObservedArtifact {
            source: stagehand_crds::S3ObjectRef {
                bucket: "builds".into(),
                key: etag.into(),
                version_id: None,
            },
            head: Some(ObjectHead {
                e_tag: Some(etag.into()),
                checksum_sha256: s3_checksum.then(|| sha256.to_base64()),
                ..ObjectHead::default()
            }),
            bucket_missing: false,
            cached_sha256: (!s3_checksum).then_some(sha256),
        }
    }

    #[test]
    fn streamed_artifact_hashes_are_recorded_by_identity_and_s3_checksums_are_not() {
        let mut observed = observed();
        observed.artifacts = vec![artifact("\"a\"", false), artifact("\"b\"", true)];
        let status = status_of(&observed, None);
        assert_eq!(
            status.artifact_hashes,
            [ArtifactHash {
                object: stagehand_crds::S3ObjectIdentity {
                    bucket: "builds".into(),
                    key: "\"a\"".into(),
                    version_id: None,
                    e_tag: Some("\"a\"".into()),
                },
                sha256: crate::aws::s3::Sha256Digest::of(b"\"a\"").to_base64(),
            }]
        );
        // An artifact no longer named (or not hashed yet) leaves the record.
        observed.artifacts.clear();
        assert!(
            status_of(&observed, Some(&status))
                .artifact_hashes
                .is_empty()
        );
    }

    #[test]
    fn an_untagged_mapping_found_is_not_the_stages() {
        let status = status_of(&observed(), None);
        assert_eq!(status.mappings[0].uuid.as_deref(), Some("u-1"));
        assert!(!status.mappings[0].created_by_stagehand);
    }
}
