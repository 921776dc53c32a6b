//! Convergence: applying a plan's actions to a tiny pure simulator of AWS and planning again
//! reaches a plan with nothing left to do; over many rounds with status, rollbacks do not flap.

use std::collections::BTreeMap;

use serde_json::json;
use stagehand_crds::LambdaStageSpec;
use stagehand_crds::condition::{CODE_IN_SYNC, LAYERS_ATTACHED, MAPPINGS_HEALTHY, VALIDATED};

use super::fixtures::*;
use crate::aws::cloudformation::{ChangeSetKind, StackInfo};
use crate::aws::lambda::{self, Alias, CodeSource as CodeLocation, PublishedVersion};
use crate::base::conditions::ConditionStatus;
use crate::base::gates::ActGate;
use crate::lambda_stage::observed::{MappingKey, Observed, ObservedStack};
use crate::lambda_stage::plan::{Action, Plan, plan, reason};

/// What AWS would look like after `action` (a tiny model: writes land, updates start
/// `InProgress`, stacks and change sets move one step per tick).
fn apply(observed: &mut Observed, action: &Action, artifact_contents: &BTreeMap<String, String>) {
    match action {
        Action::HashArtifact {
            artifact: object, ..
        } => {
            let content = artifact_contents
                .get(&object.key)
                .expect("content of hashed artifact");
            for a in observed
                .artifacts
                .iter_mut()
                .filter(|a| a.source.key == object.key)
            {
                a.cached_sha256 = Some(sha(content));
            }
        }
        Action::CreateChangeSet { kind, .. } => {
            let stack = observed.stack.get_or_insert_with(ObservedStack::default);
            stack.change_set = Some(change_set("CREATE_PENDING", None, None));
            if *kind == ChangeSetKind::Create {
                stack.stack = Some(StackInfo {
                    status: "REVIEW_IN_PROGRESS".into(),
                    ..self::stack("REVIEW_IN_PROGRESS")
                });
            }
        }
        Action::ExecuteChangeSet { .. } => {
            let stack = observed.stack.as_mut().expect("stack observed");
            if let Some(info) = stack.stack.as_mut() {
                info.status = if info.status == "REVIEW_IN_PROGRESS" {
                    "CREATE_IN_PROGRESS"
                } else {
                    "UPDATE_IN_PROGRESS"
                }
                .into();
            }
            stack.change_set = Some(change_set(
                "CREATE_COMPLETE",
                Some("EXECUTE_IN_PROGRESS"),
                None,
            ));
            stack.desired_template_applied = true;
        }
        Action::DeleteFailedStack { .. } => {
            let stack = observed.stack.as_mut().expect("stack observed");
            if let Some(info) = stack.stack.as_mut() {
                info.status = "DELETE_IN_PROGRESS".into();
            }
            stack.change_set = None;
            stack.desired_template_applied = false;
        }
        Action::TagFunction {
            function: name,
            tags,
            ..
        } => {
            function(observed, name).tags.extend(tags.clone());
        }
        Action::DeleteVersion {
            function: name,
            version,
        } => {
            function(observed, name)
                .published_versions
                .retain(|v| v.version != *version);
        }
        Action::UpdateFunctionCode {
            function: name,
            source,
            expected_code_sha256,
        } => {
            let f = function(observed, name);
            match source {
                CodeLocation::S3 { .. } => f.info.code_sha256.clone_from(expected_code_sha256),
                CodeLocation::Image { uri } => {
                    f.image_digest = lambda::image_digest(uri).map(str::to_owned);
                }
            }
            f.info.last_update_status = Some("InProgress".into());
        }
        Action::UpdateFunctionConfiguration {
            function: name,
            change,
        } => {
            let info = &mut function(observed, name).info;
            if let Some(layers) = &change.layers {
                info.layers.clone_from(layers);
            }
            if let Some(environment) = &change.environment {
                info.environment.clone_from(environment);
            }
            info.runtime = change.runtime.clone().or(info.runtime.take());
            info.handler = change.handler.clone().or(info.handler.take());
            info.memory_mb = change.memory_mb.or(info.memory_mb);
            info.timeout_seconds = change.timeout_seconds.or(info.timeout_seconds);
            info.last_update_status = Some("InProgress".into());
        }
        Action::PublishVersion {
            function: name,
            expected_code_sha256,
        } => {
            let f = function(observed, name);
            let next = f.published_versions.len() + 1;
            f.published_versions.push(PublishedVersion {
                version: next.to_string(),
                arn: format!("{}:{next}", f.info.arn),
                code_sha256: Some(expected_code_sha256.clone()),
                description: Some(crate::aws::lambda::VERSION_DESCRIPTION.to_owned()),
            });
        }
        Action::CreateAlias {
            function: name,
            alias,
            routing,
        }
        | Action::UpdateAlias {
            function: name,
            alias,
            routing,
        } => {
            function(observed, name).alias = Some(Alias {
                name: alias.clone(),
                function_version: routing.function_version.clone(),
                routing_weights: routing
                    .canary
                    .iter()
                    .map(|c| (c.version.clone(), f64::from(c.weight_percent) / 100.0))
                    .collect(),
                ..Alias::default()
            });
        }
        Action::RollBackAlias {
            function: name,
            alias,
            to_version,
            ..
        } => {
            function(observed, name).alias = Some(Alias {
                name: alias.clone(),
                function_version: to_version.clone(),
                ..Alias::default()
            });
        }
        Action::CreateMapping {
            function: name,
            event_source_arn,
            settings,
            ..
        } => {
            let found = observed
                .mappings
                .entry(MappingKey::new(name, event_source_arn))
                .or_default();
            let mut created = mapping(
                &format!("u-new-{}", found.len()),
                "Creating",
                settings.batch_size.unwrap_or(10),
            );
            created.batching_window_seconds = settings.batching_window_seconds.or(Some(0));
            created.max_concurrency = settings.max_concurrency;
            if settings.enabled == Some(false) {
                created.state = Some("Disabled".into());
            }
            found.push(created);
        }
        Action::UpdateMapping { uuid, settings, .. } => {
            let existing = observed
                .mappings
                .values_mut()
                .flatten()
                .find(|m| m.uuid == *uuid)
                .expect("updated mapping exists");
            existing.batch_size = settings.batch_size.or(existing.batch_size);
            existing.batching_window_seconds = settings
                .batching_window_seconds
                .or(existing.batching_window_seconds);
            existing.max_concurrency = settings.max_concurrency.or(existing.max_concurrency);
            if let Some(enabled) = settings.enabled {
                existing.state = Some(if enabled { "Enabled" } else { "Disabled" }.into());
            }
        }
    }
}

/// Time passes: AWS finishes what it was doing.
fn tick(observed: &mut Observed) {
    for f in observed
        .functions
        .iter_mut()
        .filter_map(|f| f.deployed.as_mut())
    {
        f.info.last_update_status = Some("Successful".into());
    }
    for m in observed.mappings.values_mut().flatten() {
        if m.state.as_deref() == Some("Creating") {
            m.state = Some("Enabled".into());
        }
    }
    if let Some(stack) = observed.stack.as_mut() {
        if let Some(cs) = stack.change_set.as_mut() {
            if cs.pending() {
                *cs = change_set("CREATE_COMPLETE", Some("AVAILABLE"), None);
            } else if cs.execution_status.as_deref() == Some("EXECUTE_IN_PROGRESS") {
                cs.execution_status = Some("EXECUTE_COMPLETE".into());
            }
        }
        let finished = stack.stack.as_ref().map(|s| s.status.clone());
        match finished.as_deref() {
            Some("DELETE_IN_PROGRESS") => stack.stack = None,
            Some(status) if status != "REVIEW_IN_PROGRESS" && status.ends_with("_IN_PROGRESS") => {
                if let Some(info) = stack.stack.as_mut() {
                    info.status = status.replace("_IN_PROGRESS", "_COMPLETE");
                }
            }
            _ => {}
        }
    }
}

/// Plans and applies until nothing is left to do; returns the actions of every round.
fn converge(
    spec: &LambdaStageSpec,
    mut observed: Observed,
    contents: &BTreeMap<String, String>,
) -> Vec<Vec<Action>> {
    let mut rounds = Vec::new();
    for _ in 0..12 {
        let plan = plan(spec, &context(ActGate::Act), &observed);
        assert!(
            plan.stalled.is_none(),
            "stalled: {:?}\nrounds: {rounds:#?}",
            plan.stalled
        );
        if plan.actions.is_empty() && plan.waits.is_empty() {
            for type_ in [CODE_IN_SYNC, LAYERS_ATTACHED, MAPPINGS_HEALTHY, VALIDATED] {
                assert_eq!(
                    condition_of(&plan, type_).0,
                    ConditionStatus::True,
                    "{type_} after {rounds:#?}"
                );
            }
            assert!(plan.drift.is_empty(), "drift left: {:?}", plan.drift);
            return rounds;
        }
        if plan
            .waits
            .iter()
            .any(|w| w.reason == reason::CANARY_RUNNING)
        {
            // The caller's clock: the canary has now run long enough.
            observed.canary_promotion_due = true;
        }
        for action in &plan.actions {
            apply(&mut observed, action, contents);
        }
        rounds.push(plan.actions);
        tick(&mut observed);
    }
    panic!("did not converge in 12 rounds: {rounds:#?}");
}

fn contents(content: &str) -> BTreeMap<String, String> {
    BTreeMap::from([("app.zip".to_owned(), content.to_owned())])
}

#[test]
fn first_deploy_with_layer_environment_mappings_and_alias_converges() {
    let mut spec = base_spec();
    spec.environment = env(&[("LOG_LEVEL", "info")]);
    spec.layers = vec![serde_json::from_value(json!({"name": "shared"})).expect("layer")];
    with_mapping(&mut spec, &json!({"batchSize": 5}));
    with_mapping(
        &mut spec,
        &json!({"function": "api", "queue": "orders", "enabled": false}),
    );
    with_alias(&mut spec, &json!({}));
    let mut observed = base_observed();
    artifact(&mut observed).head = Some(head(Some("v2")));
    observed
        .layer_versions
        .insert("shared".into(), layer("shared", 3));
    observed.queues.insert("orders".into(), queue(0, 0));
    function(&mut observed, "api").info.layers = vec![layer("shared", 1), layer("datadog", 42)];
    let rounds = converge(&spec, observed, &contents("v2"));
    let code_updates = rounds
        .iter()
        .flatten()
        .filter(|a| a.metric_label() == "code_update")
        .count();
    assert_eq!(code_updates, 2);
    let mapping_creates = rounds
        .iter()
        .flatten()
        .filter(|a| a.metric_label() == "mapping_create")
        .count();
    assert_eq!(mapping_creates, 2, "one per declared mapping, never more");
}

#[test]
fn follow_mode_without_checksum_hashes_once_and_converges() {
    let mut observed = base_observed();
    artifact(&mut observed).head = Some(head(None));
    let rounds = converge(&base_spec(), observed, &contents("v2"));
    assert_eq!(
        rounds[0],
        [Action::HashArtifact {
            artifact: artifact_ref(),
            e_tag: Some("\"etag-1\"".into())
        }]
    );
    assert_eq!(rounds[1], [code("api", "v2"), code("worker", "v2")]);
}

#[test]
fn rollback_complete_stack_is_recreated_and_converges() {
    let mut spec = base_spec();
    with_stack(&mut spec, "Recreate");
    let mut observed = base_observed();
    observed.stack = Some(observed_stack(Some("ROLLBACK_COMPLETE"), None, false));
    let rounds = converge(&spec, observed, &contents("v1"));
    let labels: Vec<&str> = rounds.iter().flatten().map(Action::metric_label).collect();
    assert_eq!(labels, ["stack_delete", "stack_change_set", "stack_update"]);
}

#[test]
fn canary_rollout_publishes_routes_and_promotes() {
    let mut spec = base_spec();
    let mut observed = base_observed();
    only_api(&mut spec, &mut observed);
    with_alias(
        &mut spec,
        &json!({"canary": {"weight": 20, "promoteAfter": "5m"}}),
    );
    let api = function(&mut observed, "api");
    api.published_versions = vec![published("1", "v1")];
    api.alias = Some(alias_at("1", None));
    artifact(&mut observed).head = Some(head(Some("v2")));
    let rounds = converge(&spec, observed, &contents("v2"));
    let flat: Vec<Action> = rounds.into_iter().flatten().collect();
    assert_eq!(
        flat,
        [
            code("api", "v2"),
            Action::PublishVersion {
                function: "api".into(),
                expected_code_sha256: b64("v2")
            },
            update_alias("1", Some(("2", 20))),
            update_alias("2", None),
        ]
    );
}

#[test]
fn adoption_duplicates_and_image_converge() {
    let mut spec = base_spec();
    spec.lifecycle.adopt = true;
    with_mapping(&mut spec, &json!({}));
    let mut observed = base_observed();
    function(&mut observed, "api").tags.clear();
    observed.queues.insert("orders".into(), queue(0, 0));
    observed.mappings.insert(
        MappingKey::new("worker", QUEUE_ARN),
        vec![mapping("u-2", "Disabled", 3), mapping("u-3", "Enabled", 10)],
    );
    // Duplicates stay (reported), so convergence here means: no more actions.
    let plan_after = {
        let mut observed = observed.clone();
        for _ in 0..3 {
            let p = plan(&spec, &context(ActGate::Act), &observed);
            for action in &p.actions {
                apply(&mut observed, action, &contents("v1"));
            }
            tick(&mut observed);
        }
        plan(&spec, &context(ActGate::Act), &observed)
    };
    assert!(plan_after.actions.is_empty(), "{:?}", plan_after.actions);
    assert_eq!(
        plan_after.drift.len(),
        1,
        "only the duplicate is left: {:?}",
        plan_after.drift
    );

    let mut image_spec_ = base_spec();
    let mut image_observed = base_observed();
    image_spec(&mut image_spec_, &mut image_observed, &"b".repeat(64));
    assert_eq!(
        converge(&image_spec_, image_observed, &contents("v1")).len(),
        1
    );
}

/// One reconcile: plan, apply the actions to `observed`, write the next status from them, and
/// carry what status remembers into the next round's `observed.previous` (as observe does).
fn reconcile_round(
    spec: &LambdaStageSpec,
    observed: &mut Observed,
    status: &mut Option<stagehand_crds::LambdaStageStatus>,
    contents: &BTreeMap<String, String>,
    round: i64,
) -> Plan {
    use crate::lambda_stage::act::ActReport;
    use crate::lambda_stage::status::{StatusInputs, next_status};
    let plan = plan(spec, &context(ActGate::Act), observed);
    let mut report = ActReport::default();
    for action in &plan.actions {
        apply(observed, action, contents);
        if let Action::PublishVersion { function: name, .. } = action
            && let Some(version) = function(observed, name).published_versions.last()
        {
            report.published.push((name.clone(), version.clone()));
        }
        report.done.push(action.clone());
    }
    let outcome = plan.outcome();
    let next = next_status(&StatusInputs {
        previous: status.as_ref(),
        spec,
        observed,
        plan: &plan,
        report: &report,
        outcome: &outcome,
        generation: Some(1),
        now: jiff::Timestamp::from_second(1_700_000_000 + round).expect("timestamp"),
    });
    observed.previous.versions.clone_from(&next.versions);
    *status = Some(next);
    tick(observed);
    plan
}

fn alias_updates(plan: &Plan) -> usize {
    plan.actions
        .iter()
        .filter(|a| matches!(a, Action::UpdateAlias { .. } | Action::RollBackAlias { .. }))
        .count()
}

#[test]
fn rollback_on_validation_failure_holds_until_a_new_build_and_never_flaps() {
    let mut spec = base_spec();
    let mut observed = base_observed();
    only_api(&mut spec, &mut observed);
    with_alias(&mut spec, &rollback_flag());
    spec.validation = Some(
        serde_json::from_value(json!({"queues": [{"queue": "orders", "maxVisible": 3}]}))
            .expect("validation"),
    );
    observed.queues.insert("orders".into(), queue(0, 0));
    let api = function(&mut observed, "api");
    api.published_versions = vec![published("1", "v0")];
    api.alias = Some(alias_at("1", None));
    let mut status = None;
    let v1 = contents("v1");

    // Version 1 (v0) serves alone while validation passes: good.
    let first = reconcile_round(&spec, &mut observed, &mut status, &v1, 0);
    assert_eq!(
        first.actions,
        [Action::PublishVersion {
            function: "api".into(),
            expected_code_sha256: b64("v1")
        }]
    );
    let versions = |status: &Option<stagehand_crds::LambdaStageStatus>| {
        status.as_ref().expect("status").versions.clone()
    };
    // Version 1 was not published by Stagehand here: remember it as the seed would.
    observed
        .previous
        .versions
        .push(status_version("1", "v0", true));
    status.as_mut().expect("status").versions = observed.previous.versions.clone();
    let moved = reconcile_round(&spec, &mut observed, &mut status, &v1, 1);
    assert_eq!(moved.actions, [update_alias("2", None)]);
    reconcile_round(&spec, &mut observed, &mut status, &v1, 2);
    assert!(
        versions(&status)
            .iter()
            .any(|v| v.version == "2" && v.validated),
        "version 2 served alone while validation passed: {:?}",
        versions(&status)
    );

    // The backlog builds up on version 2: back to 1, remembered.
    observed.queues.insert("orders".into(), queue(50, 0));
    let rolled = reconcile_round(&spec, &mut observed, &mut status, &v1, 3);
    assert!(
        matches!(&rolled.actions[..], [Action::RollBackAlias { from_version, to_version, reason, .. }]
            if from_version == "2" && to_version == "1" && reason.contains("50 visible (max 3)")),
        "{:?}",
        rolled.actions
    );
    let two = versions(&status)
        .into_iter()
        .find(|v| v.version == "2")
        .expect("version 2 remembered");
    assert!(!two.validated);
    assert_eq!(
        two.rolled_back.as_ref().map(|r| r.to_version.as_str()),
        Some("1")
    );

    // Whatever validation says from now on, the alias stays on 1 as long as the code is v1.
    for (round, backlog) in [(4, 0), (5, 50), (6, 0), (7, 0), (8, 50)] {
        observed.queues.insert("orders".into(), queue(backlog, 0));
        let plan = reconcile_round(&spec, &mut observed, &mut status, &v1, round);
        assert_eq!(alias_updates(&plan), 0, "round {round}: {:?}", plan.actions);
        assert_eq!(
            plan.stalled.as_ref().map(|s| s.reason),
            Some(reason::ROLLED_BACK),
            "round {round}"
        );
        assert_eq!(
            function(&mut observed, "api")
                .alias
                .as_ref()
                .map(|a| a.function_version.clone()),
            Some("1".to_owned())
        );
    }

    // A new build: deployed, published and tried; the old rollback record is dropped.
    observed.queues.insert("orders".into(), queue(0, 0));
    artifact(&mut observed).head = Some(head(Some("v2")));
    let v2 = contents("v2");
    let mut actions = Vec::new();
    for round in 9..14 {
        actions.extend(reconcile_round(&spec, &mut observed, &mut status, &v2, round).actions);
    }
    assert_eq!(
        actions,
        [
            code("api", "v2"),
            Action::PublishVersion {
                function: "api".into(),
                expected_code_sha256: b64("v2")
            },
            update_alias("3", None),
        ]
    );
    assert!(
        versions(&status).iter().all(|v| v.rolled_back.is_none()),
        "{:?}",
        versions(&status)
    );
}
