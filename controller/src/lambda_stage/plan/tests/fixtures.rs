//! The scenario every test starts from, a converged two-function stage (`base_spec`,
//! `base_observed`), and small builders that each state one difference from it, so a table row
//! reads as its scenario.

use std::collections::BTreeMap;

use serde_json::json;
use stagehand_crds::lambda_stage::{PublishedVersion as StatusVersion, VersionRollback};
use stagehand_crds::{LambdaStageSpec, S3ObjectRef};

use crate::aws::cloudformation::{ChangeSetInfo, ChangeSetKind, StackInfo};
use crate::aws::lambda::{
    self, Alias, CodeSource as CodeLocation, ConfigUpdate, EventSourceMapping, MappingSettings,
    PublishedVersion,
};
use crate::aws::s3::{ObjectHead, Sha256Digest};
use crate::aws::sqs::QueueInfo;
use crate::aws::tags::ownership_tags;
use crate::base::conditions::ConditionStatus;
use crate::base::gates::ActGate;
use crate::lambda_stage::observed::{
    DeclaredAs, DeployedFunction, Observed, ObservedArtifact, ObservedFunction, ObservedStack,
};
use crate::lambda_stage::plan::{Action, AliasRouting, CanaryRoute, Plan, PlanContext, plan};

pub(super) const OWNER: &str = "shop/LambdaStage/dev";
pub(super) const CLUSTER: &str = "cluster-1";
pub(super) const ACCOUNT_LAYER: &str = "arn:aws:lambda:eu-west-1:123456789012:layer";
pub(super) const QUEUE_ARN: &str = "arn:aws:sqs:eu-west-1:123456789012:orders";

// ----- the stage and what AWS holds -------------------------------------------------------------

pub(super) fn sha(content: &str) -> Sha256Digest {
    Sha256Digest::of(content.as_bytes())
}

pub(super) fn b64(content: &str) -> String {
    sha(content).to_base64()
}

pub(super) fn context(gate: ActGate) -> PlanContext {
    PlanContext {
        owner: OWNER.to_owned(),
        cluster_id: CLUSTER.to_owned(),
        generation: 3,
        gate,
    }
}

/// Two zip functions sharing `s3://artifacts/app.zip`, nothing else.
pub(super) fn base_spec() -> LambdaStageSpec {
    spec_from(&json!({
        "region": "eu-west-1",
        "code": {"s3": {"bucket": "artifacts", "key": "app.zip"}},
        "functions": [{"name": "api"}, {"name": "worker"}]
    }))
}

pub(super) fn spec_from(value: &serde_json::Value) -> LambdaStageSpec {
    serde_json::from_value(value.clone()).expect("test spec is valid")
}

pub(super) fn artifact_ref() -> S3ObjectRef {
    S3ObjectRef {
        bucket: "artifacts".into(),
        key: "app.zip".into(),
        version_id: None,
    }
}

pub(super) fn head(checksum_content: Option<&str>) -> ObjectHead {
    ObjectHead {
        e_tag: Some("\"etag-1\"".into()),
        version_id: None,
        checksum_sha256: checksum_content.map(b64),
        size: Some(1024),
        ..ObjectHead::default()
    }
}

pub(super) fn deployed_function(name: &str, code_content: &str) -> ObservedFunction {
    ObservedFunction {
        name: name.to_owned(),
        declared_as: Some(DeclaredAs::Name(name.to_owned())),
        deployed: Some(DeployedFunction {
            info: lambda::FunctionInfo {
                name: name.to_owned(),
                arn: format!("arn:aws:lambda:eu-west-1:123456789012:function:{name}"),
                code_sha256: Some(b64(code_content)),
                last_update_status: Some("Successful".into()),
                state: Some("Active".into()),
                package_type: Some("Zip".into()),
                ..lambda::FunctionInfo::default()
            },
            tags: ownership_tags(OWNER, CLUSTER),
            ..DeployedFunction::default()
        }),
    }
}

/// `api` and `worker` run build `v1`, which is also what S3 holds: converged.
pub(super) fn base_observed() -> Observed {
    Observed {
        functions: vec![
            deployed_function("api", "v1"),
            deployed_function("worker", "v1"),
        ],
        artifacts: vec![ObservedArtifact {
            source: artifact_ref(),
            head: Some(head(Some("v1"))),
            bucket_missing: false,
            cached_sha256: None,
        }],
        ..Observed::default()
    }
}

pub(super) fn function<'o>(observed: &'o mut Observed, name: &str) -> &'o mut DeployedFunction {
    observed
        .functions
        .iter_mut()
        .find(|f| f.name == name)
        .and_then(|f| f.deployed.as_mut())
        .expect("fixture function exists")
}

pub(super) fn artifact(observed: &mut Observed) -> &mut ObservedArtifact {
    observed.artifacts.first_mut().expect("fixture artifact")
}

pub(super) fn layer(name: &str, version: u32) -> String {
    format!("{ACCOUNT_LAYER}:{name}:{version}")
}

pub(super) fn queue(visible: u64, in_flight: u64) -> QueueInfo {
    QueueInfo {
        url: "https://sqs.eu-west-1.amazonaws.com/123456789012/orders".into(),
        arn: QUEUE_ARN.into(),
        visible,
        in_flight,
    }
}

pub(super) fn mapping(uuid: &str, state: &str, batch_size: i32) -> EventSourceMapping {
    EventSourceMapping {
        uuid: uuid.to_owned(),
        event_source_arn: Some(QUEUE_ARN.into()),
        function_arn: None,
        batch_size: Some(batch_size),
        batching_window_seconds: Some(0),
        state: Some(state.to_owned()),
        max_concurrency: None,
    }
}

pub(super) fn stack(status: &str) -> StackInfo {
    StackInfo {
        id: "arn:aws:cloudformation:eu-west-1:123456789012:stack/shop-dev/1".into(),
        name: "shop-dev".into(),
        status: status.to_owned(),
        status_reason: Some("Resource handler returned message: role not found".into()),
        tags: ownership_tags(OWNER, CLUSTER),
        ..StackInfo::default()
    }
}

pub(super) fn change_set(
    status: &str,
    execution_status: Option<&str>,
    reason: Option<&str>,
) -> ChangeSetInfo {
    ChangeSetInfo {
        id: Some("cs-1".into()),
        status: status.to_owned(),
        status_reason: reason.map(str::to_owned),
        execution_status: execution_status.map(str::to_owned),
        change_count: 1,
    }
}

pub(super) fn with_stack(spec: &mut LambdaStageSpec, policy: &str) {
    spec.infrastructure = Some(
        serde_json::from_value(json!({
            "stackName": "shop-dev",
            "template": {"bucket": "artifacts", "key": "template.yaml"},
            "onRollbackComplete": policy
        }))
        .expect("valid infrastructure"),
    );
}

pub(super) fn observed_stack(
    status: Option<&str>,
    change: Option<ChangeSetInfo>,
    applied: bool,
) -> ObservedStack {
    ObservedStack {
        stack: status.map(stack),
        change_set_name: "stagehand-abc123".into(),
        change_set: change,
        desired_template_applied: applied,
        function_names: std::collections::BTreeSet::new(),
    }
}

pub(super) fn with_mapping(spec: &mut LambdaStageSpec, extra: &serde_json::Value) {
    let mut value = json!({"function": "worker", "queue": "orders"});
    if let (Some(target), Some(fields)) = (value.as_object_mut(), extra.as_object()) {
        target.extend(fields.clone());
    }
    spec.event_source_mappings
        .push(serde_json::from_value(value).expect("valid mapping"));
}

pub(super) fn with_alias(spec: &mut LambdaStageSpec, extra: &serde_json::Value) {
    let mut value = json!({"name": "live"});
    if let (Some(target), Some(fields)) = (value.as_object_mut(), extra.as_object()) {
        target.extend(fields.clone());
    }
    spec.alias = Some(serde_json::from_value(value).expect("valid alias"));
}

pub(super) fn published(version: &str, content: &str) -> PublishedVersion {
    PublishedVersion {
        version: version.to_owned(),
        arn: format!("arn:aws:lambda:eu-west-1:123456789012:function:api:{version}"),
        code_sha256: Some(b64(content)),
        description: Some(crate::aws::lambda::VERSION_DESCRIPTION.to_owned()),
    }
}

pub(super) fn alias_at(version: &str, canary: Option<(&str, f64)>) -> Alias {
    Alias {
        name: "live".into(),
        arn: "arn:aws:lambda:eu-west-1:123456789012:function:api:live".into(),
        function_version: version.to_owned(),
        routing_weights: canary.map(|(v, w)| (v.to_owned(), w)).into_iter().collect(),
        revision_id: None,
    }
}

/// Only `api` is selected (alias cases stay small).
pub(super) fn only_api(spec: &mut LambdaStageSpec, observed: &mut Observed) {
    spec.functions.truncate(1);
    observed.functions.truncate(1);
}

pub(super) fn image_spec(s: &mut LambdaStageSpec, o: &mut Observed, deployed_digest: &str) {
    let digest = "a".repeat(64);
    s.code = Some(
        serde_json::from_value(
            json!({"image": format!("123.dkr.ecr.eu-west-1.amazonaws.com/app@sha256:{digest}")}),
        )
        .expect("valid image code"),
    );
    only_api(s, o);
    let api = function(o, "api");
    api.info.package_type = Some("Image".into());
    api.image_digest = Some(format!("sha256:{deployed_digest}"));
}

// ----- rollbackOnValidationFailure --------------------------------------------------------------

/// `api` alone with an alias; the deployed code (`v1`) is version 2, version 1 (`v0`) is known.
pub(super) fn rollback_setup(s: &mut LambdaStageSpec, o: &mut Observed, extra: &serde_json::Value) {
    with_alias(s, extra);
    only_api(s, o);
    let api = function(o, "api");
    api.published_versions = vec![published("1", "v0"), published("2", "v1")];
    api.alias = Some(alias_at("2", None));
}

pub(super) fn status_version(version: &str, content: &str, validated: bool) -> StatusVersion {
    StatusVersion {
        function_name: "api".into(),
        version: version.to_owned(),
        code_sha256: b64(content),
        validated,
        rolled_back: None,
    }
}

/// Validation fails: a required variable is missing everywhere.
pub(super) fn failing_validation(s: &mut LambdaStageSpec) {
    s.validation = Some(
        serde_json::from_value(json!({"requiredEnvironment": ["DB_URL"]})).expect("validation"),
    );
}

pub(super) fn rolled_back_from_2(o: &mut Observed) {
    let mut rejected = status_version("2", "v1", false);
    rejected.rolled_back = Some(VersionRollback {
        to_version: "1".into(),
        reason: "missing environment: api: DB_URL".into(),
        at: None,
    });
    o.previous.versions = vec![rejected, status_version("1", "v0", true)];
}

pub(super) fn roll_back_2_to_1() -> Action {
    Action::RollBackAlias {
        function: "api".into(),
        alias: "live".into(),
        from_version: "2".into(),
        from_code_sha256: b64("v1"),
        to_version: "1".into(),
        reason: "missing environment: api: DB_URL".into(),
    }
}

const ROLLBACK: &str = r#"{"rollbackOnValidationFailure": true}"#;

pub(super) fn rollback_flag() -> serde_json::Value {
    serde_json::from_str(ROLLBACK).expect("json")
}

// ----- expected actions ------------------------------------------------------------------------

pub(super) fn code(function: &str, content: &str) -> Action {
    code_from(function, content, None)
}

pub(super) fn code_from(function: &str, content: &str, version_id: Option<&str>) -> Action {
    Action::UpdateFunctionCode {
        function: function.to_owned(),
        source: CodeLocation::S3 {
            bucket: "artifacts".into(),
            key: "app.zip".into(),
            version_id: version_id.map(str::to_owned),
        },
        expected_code_sha256: Some(b64(content)),
    }
}

pub(super) fn configure(function: &str, change: ConfigUpdate) -> Action {
    Action::UpdateFunctionConfiguration {
        function: function.to_owned(),
        change,
    }
}

pub(super) fn layers_change(layers: &[String]) -> ConfigUpdate {
    ConfigUpdate {
        layers: Some(layers.to_vec()),
        ..ConfigUpdate::default()
    }
}

pub(super) fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

pub(super) fn update_alias(version: &str, canary: Option<(&str, i32)>) -> Action {
    Action::UpdateAlias {
        function: "api".into(),
        alias: "live".into(),
        routing: AliasRouting {
            function_version: version.to_owned(),
            canary: canary.map(|(v, w)| CanaryRoute {
                version: v.to_owned(),
                weight_percent: w,
            }),
        },
    }
}

pub(super) fn update_mapping(uuid: &str, settings: MappingSettings) -> Action {
    Action::UpdateMapping {
        function: "worker".into(),
        queue: "orders".into(),
        uuid: uuid.to_owned(),
        settings,
    }
}

pub(super) fn create_change_set(kind: ChangeSetKind) -> Action {
    Action::CreateChangeSet {
        stack_name: "shop-dev".into(),
        change_set_name: "stagehand-abc123".into(),
        kind,
    }
}

// ----- the table -------------------------------------------------------------------------------

pub(super) type Setup = fn(&mut LambdaStageSpec, &mut Observed);

pub(super) struct Case {
    pub(super) name: &'static str,
    pub(super) setup: Setup,
    pub(super) gate: ActGate,
    pub(super) actions: Vec<Action>,
    pub(super) stalled: Option<&'static str>,
    pub(super) waits: &'static [&'static str],
}

pub(super) fn case(name: &'static str, setup: Setup, actions: Vec<Action>) -> Case {
    Case {
        name,
        setup,
        gate: ActGate::Act,
        actions,
        stalled: None,
        waits: &[],
    }
}

pub(super) fn stalled(name: &'static str, setup: Setup, reason: &'static str) -> Case {
    Case {
        stalled: Some(reason),
        ..case(name, setup, vec![])
    }
}

pub(super) fn waiting(
    name: &'static str,
    setup: Setup,
    actions: Vec<Action>,
    waits: &'static [&'static str],
) -> Case {
    Case {
        waits,
        ..case(name, setup, actions)
    }
}

pub(super) fn run(case: &Case) -> Plan {
    let mut spec = base_spec();
    let mut observed = base_observed();
    (case.setup)(&mut spec, &mut observed);
    plan(&spec, &context(case.gate), &observed)
}

pub(super) fn check_table(cases: &[Case]) {
    for case in cases {
        let plan = run(case);
        assert_eq!(plan.actions, case.actions, "{}: actions", case.name);
        assert_eq!(
            plan.stalled.as_ref().map(|s| s.reason),
            case.stalled,
            "{}: stall {:?}",
            case.name,
            plan.stalled
        );
        let waits: Vec<&str> = plan.waits.iter().map(|w| w.reason).collect();
        assert_eq!(waits, case.waits, "{}: waits", case.name);
    }
}

pub(super) fn plan_with(setup: Setup, gate: ActGate) -> Plan {
    let mut spec = base_spec();
    let mut observed = base_observed();
    setup(&mut spec, &mut observed);
    plan(&spec, &context(gate), &observed)
}

pub(super) fn condition_of(plan: &Plan, type_: &str) -> (ConditionStatus, String, String) {
    let c = plan.condition(type_).expect("condition present");
    (c.status, c.reason.clone(), c.message.clone())
}
