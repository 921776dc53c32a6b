//! Tables of (spec, observed) → actions, one row per branch of the plan, and a convergence
//! property: applying a plan's actions to the observed state (a tiny pure simulator of AWS) and
//! planning again reaches a plan with nothing left to do.

use std::collections::BTreeMap;

use serde_json::json;
use stagehand_crds::LambdaStageSpec;
use stagehand_crds::lambda_stage::{PublishedVersion as StatusVersion, VersionRollback};

use super::*;
use crate::aws::cloudformation::StackInfo;
use crate::aws::s3::ObjectHead;
use crate::aws::sqs::QueueInfo;
use crate::aws::tags::ownership_tags;
use crate::lambda_stage::observed::HttpCheckOutcome;

const OWNER: &str = "shop/LambdaStage/dev";
const CLUSTER: &str = "cluster-1";
const ACCOUNT_LAYER: &str = "arn:aws:lambda:eu-west-1:123456789012:layer";
const QUEUE_ARN: &str = "arn:aws:sqs:eu-west-1:123456789012:orders";

// ----- fixtures --------------------------------------------------------------------------------

fn sha(content: &str) -> Sha256Digest {
    Sha256Digest::of(content.as_bytes())
}

fn b64(content: &str) -> String {
    sha(content).to_base64()
}

fn context(gate: ActGate) -> PlanContext {
    PlanContext {
        owner: OWNER.to_owned(),
        cluster_id: CLUSTER.to_owned(),
        generation: 3,
        gate,
    }
}

/// Two zip functions sharing `s3://artifacts/app.zip`, nothing else.
fn base_spec() -> LambdaStageSpec {
    spec_from(&json!({
        "region": "eu-west-1",
        "code": {"s3": {"bucket": "artifacts", "key": "app.zip"}},
        "functions": [{"name": "api"}, {"name": "worker"}]
    }))
}

fn spec_from(value: &serde_json::Value) -> LambdaStageSpec {
    serde_json::from_value(value.clone()).expect("test spec is valid")
}

fn artifact_ref() -> S3ObjectRef {
    S3ObjectRef {
        bucket: "artifacts".into(),
        key: "app.zip".into(),
        version_id: None,
    }
}

fn head(checksum_content: Option<&str>) -> ObjectHead {
    ObjectHead {
        e_tag: Some("\"etag-1\"".into()),
        version_id: None,
        checksum_sha256: checksum_content.map(b64),
        size: Some(1024),
        last_modified: None,
    }
}

fn deployed_function(name: &str, code_content: &str) -> ObservedFunction {
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
fn base_observed() -> Observed {
    Observed {
        functions: vec![
            deployed_function("api", "v1"),
            deployed_function("worker", "v1"),
        ],
        artifacts: vec![ObservedArtifact {
            source: artifact_ref(),
            head: Some(head(Some("v1"))),
            cached_sha256: None,
        }],
        ..Observed::default()
    }
}

fn function<'o>(observed: &'o mut Observed, name: &str) -> &'o mut DeployedFunction {
    observed
        .functions
        .iter_mut()
        .find(|f| f.name == name)
        .and_then(|f| f.deployed.as_mut())
        .expect("fixture function exists")
}

fn artifact(observed: &mut Observed) -> &mut ObservedArtifact {
    observed.artifacts.first_mut().expect("fixture artifact")
}

fn layer(name: &str, version: u32) -> String {
    format!("{ACCOUNT_LAYER}:{name}:{version}")
}

fn queue(visible: u64, in_flight: u64) -> QueueInfo {
    QueueInfo {
        url: "https://sqs.eu-west-1.amazonaws.com/123456789012/orders".into(),
        arn: QUEUE_ARN.into(),
        visible,
        in_flight,
    }
}

fn mapping(uuid: &str, state: &str, batch_size: i32) -> EventSourceMapping {
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

fn stack(status: &str) -> StackInfo {
    StackInfo {
        id: "arn:aws:cloudformation:eu-west-1:123456789012:stack/shop-dev/1".into(),
        name: "shop-dev".into(),
        status: status.to_owned(),
        status_reason: Some("Resource handler returned message: role not found".into()),
        tags: ownership_tags(OWNER, CLUSTER),
        ..StackInfo::default()
    }
}

fn change_set(status: &str, execution_status: Option<&str>, reason: Option<&str>) -> ChangeSetInfo {
    ChangeSetInfo {
        id: Some("cs-1".into()),
        status: status.to_owned(),
        status_reason: reason.map(str::to_owned),
        execution_status: execution_status.map(str::to_owned),
        change_count: 1,
    }
}

fn with_stack(spec: &mut LambdaStageSpec, policy: &str) {
    spec.infrastructure = Some(
        serde_json::from_value(json!({
            "stackName": "shop-dev",
            "template": {"bucket": "artifacts", "key": "template.yaml"},
            "onRollbackComplete": policy
        }))
        .expect("valid infrastructure"),
    );
}

fn observed_stack(
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

fn with_mapping(spec: &mut LambdaStageSpec, extra: &serde_json::Value) {
    let mut value = json!({"function": "worker", "queue": "orders"});
    if let (Some(target), Some(fields)) = (value.as_object_mut(), extra.as_object()) {
        target.extend(fields.clone());
    }
    spec.event_source_mappings
        .push(serde_json::from_value(value).expect("valid mapping"));
}

fn with_alias(spec: &mut LambdaStageSpec, extra: &serde_json::Value) {
    let mut value = json!({"name": "live"});
    if let (Some(target), Some(fields)) = (value.as_object_mut(), extra.as_object()) {
        target.extend(fields.clone());
    }
    spec.alias = Some(serde_json::from_value(value).expect("valid alias"));
}

fn published(version: &str, content: &str) -> PublishedVersion {
    PublishedVersion {
        version: version.to_owned(),
        arn: format!("arn:aws:lambda:eu-west-1:123456789012:function:api:{version}"),
        code_sha256: Some(b64(content)),
        description: Some(crate::aws::lambda::VERSION_DESCRIPTION.to_owned()),
    }
}

fn alias_at(version: &str, canary: Option<(&str, f64)>) -> Alias {
    Alias {
        name: "live".into(),
        arn: "arn:aws:lambda:eu-west-1:123456789012:function:api:live".into(),
        function_version: version.to_owned(),
        routing_weights: canary.map(|(v, w)| (v.to_owned(), w)).into_iter().collect(),
        revision_id: None,
    }
}

/// Only `api` is selected (alias cases stay small).
fn only_api(spec: &mut LambdaStageSpec, observed: &mut Observed) {
    spec.functions.truncate(1);
    observed.functions.truncate(1);
}

// ----- expected actions ------------------------------------------------------------------------

fn code(function: &str, content: &str) -> Action {
    code_from(function, content, None)
}

fn code_from(function: &str, content: &str, version_id: Option<&str>) -> Action {
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

fn configure(function: &str, change: ConfigUpdate) -> Action {
    Action::UpdateFunctionConfiguration {
        function: function.to_owned(),
        change,
    }
}

fn layers_change(layers: &[String]) -> ConfigUpdate {
    ConfigUpdate {
        layers: Some(layers.to_vec()),
        ..ConfigUpdate::default()
    }
}

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn update_alias(version: &str, canary: Option<(&str, i32)>) -> Action {
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

fn update_mapping(uuid: &str, settings: MappingSettings) -> Action {
    Action::UpdateMapping {
        function: "worker".into(),
        queue: "orders".into(),
        uuid: uuid.to_owned(),
        settings,
    }
}

fn create_change_set(kind: ChangeSetKind) -> Action {
    Action::CreateChangeSet {
        stack_name: "shop-dev".into(),
        change_set_name: "stagehand-abc123".into(),
        kind,
    }
}

// ----- the table -------------------------------------------------------------------------------

type Setup = fn(&mut LambdaStageSpec, &mut Observed);

struct Case {
    name: &'static str,
    setup: Setup,
    gate: ActGate,
    actions: Vec<Action>,
    stalled: Option<&'static str>,
    waits: &'static [&'static str],
}

fn case(name: &'static str, setup: Setup, actions: Vec<Action>) -> Case {
    Case {
        name,
        setup,
        gate: ActGate::Act,
        actions,
        stalled: None,
        waits: &[],
    }
}

fn stalled(name: &'static str, setup: Setup, reason: &'static str) -> Case {
    Case {
        stalled: Some(reason),
        ..case(name, setup, vec![])
    }
}

fn waiting(
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

fn run(case: &Case) -> Plan {
    let mut spec = base_spec();
    let mut observed = base_observed();
    (case.setup)(&mut spec, &mut observed);
    plan(&spec, &context(case.gate), &observed)
}

fn check_table(cases: &[Case]) {
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

#[test]
fn code_drift_table() {
    check_table(&[
        case("converged stage does nothing", |_, _| {}, vec![]),
        case(
            "follow mode: a new build under the same key updates every function",
            |_, o| artifact(o).head = Some(head(Some("v2"))),
            vec![code("api", "v2"), code("worker", "v2")],
        ),
        case(
            "only the differing function is updated",
            |_, o| {
                artifact(o).head = Some(head(Some("v2")));
                function(o, "api").info.code_sha256 = Some(b64("v2"));
            },
            vec![code("worker", "v2")],
        ),
        case(
            "hex pin equal to the artifact deploys it",
            |s, o| {
                artifact(o).head = Some(head(Some("v2")));
                s.code.as_mut().expect("code").sha256 = Some(sha("v2").to_hex());
            },
            vec![code("api", "v2"), code("worker", "v2")],
        ),
        case(
            "base64 pin equal to the artifact deploys it",
            |s, o| {
                artifact(o).head = Some(head(Some("v2")));
                s.code.as_mut().expect("code").sha256 = Some(b64("v2"));
            },
            vec![code("api", "v2"), code("worker", "v2")],
        ),
        stalled(
            "pin differing from the artifact: nothing at all is done",
            |s, o| {
                artifact(o).head = Some(head(Some("v2")));
                s.code.as_mut().expect("code").sha256 = Some(sha("v3").to_hex());
                s.environment = env(&[("LOG_LEVEL", "info")]);
            },
            reason::ARTIFACT_MISMATCH,
        ),
        stalled(
            "old pin, new object under the same key, deployed = pin: refused",
            |s, o| {
                artifact(o).head = Some(head(Some("v2")));
                s.code.as_mut().expect("code").sha256 = Some(sha("v1").to_hex());
            },
            reason::ARTIFACT_MISMATCH,
        ),
        case(
            "no S3 checksum and no cached hash: hash the shared artifact once",
            |_, o| artifact(o).head = Some(head(None)),
            vec![Action::HashArtifact {
                artifact: artifact_ref(),
                e_tag: Some("\"etag-1\"".into()),
            }],
        ),
        case(
            "pinned artifact without checksum: only hash it, change nothing else yet",
            |s, o| {
                artifact(o).head = Some(head(None));
                s.code.as_mut().expect("code").sha256 = Some(sha("v9").to_hex());
                s.environment = env(&[("LOG_LEVEL", "info")]);
            },
            vec![Action::HashArtifact {
                artifact: artifact_ref(),
                e_tag: Some("\"etag-1\"".into()),
            }],
        ),
        case(
            "a multipart checksum is not the object's hash",
            |_, o| {
                let mut multipart = head(None);
                multipart.checksum_sha256 = Some("abc=-3".into());
                artifact(o).head = Some(multipart);
            },
            vec![Action::HashArtifact {
                artifact: artifact_ref(),
                e_tag: Some("\"etag-1\"".into()),
            }],
        ),
        case(
            "a cached streamed hash stands in for the checksum",
            |_, o| {
                artifact(o).head = Some(head(None));
                artifact(o).cached_sha256 = Some(sha("v2"));
            },
            vec![code("api", "v2"), code("worker", "v2")],
        ),
        case(
            "the checked object version is the one deployed",
            |_, o| {
                let mut versioned = head(Some("v2"));
                versioned.version_id = Some("ver-7".into());
                artifact(o).head = Some(versioned);
            },
            vec![
                code_from("api", "v2", Some("ver-7")),
                code_from("worker", "v2", Some("ver-7")),
            ],
        ),
        stalled(
            "missing artifact",
            |_, o| artifact(o).head = None,
            reason::ARTIFACT_NOT_FOUND,
        ),
        waiting(
            "a function whose update is in progress waits; the other proceeds",
            |_, o| {
                artifact(o).head = Some(head(Some("v2")));
                function(o, "api").info.last_update_status = Some("InProgress".into());
            },
            vec![code("worker", "v2")],
            &[reason::FUNCTION_UPDATE_IN_PROGRESS],
        ),
        case(
            "code and configuration differ: code first, configuration next round",
            |s, o| {
                artifact(o).head = Some(head(Some("v2")));
                s.environment = env(&[("LOG_LEVEL", "info")]);
            },
            vec![code("api", "v2"), code("worker", "v2")],
        ),
        stalled(
            "a declared function that does not exist",
            |_, o| o.functions[1].deployed = None,
            reason::FUNCTION_NOT_FOUND,
        ),
        case(
            "functions without declared code are not compared",
            |s, o| {
                s.code = None;
                artifact(o).head = Some(head(Some("v2")));
            },
            vec![],
        ),
    ]);
}

fn image_spec(s: &mut LambdaStageSpec, o: &mut Observed, deployed_digest: &str) {
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

#[test]
fn image_functions_compare_digests() {
    check_table(&[
        case(
            "image digest differs",
            |s, o| image_spec(s, o, &"b".repeat(64)),
            vec![Action::UpdateFunctionCode {
                function: "api".into(),
                source: CodeLocation::Image {
                    uri: format!(
                        "123.dkr.ecr.eu-west-1.amazonaws.com/app@sha256:{}",
                        "a".repeat(64)
                    ),
                },
                expected_code_sha256: None,
            }],
        ),
        case(
            "image digest equal",
            |s, o| image_spec(s, o, &"a".repeat(64)),
            vec![],
        ),
        stalled(
            "an image for a zip function",
            |s, o| {
                image_spec(s, o, &"a".repeat(64));
                function(o, "api").info.package_type = Some("Zip".into());
            },
            reason::PACKAGE_TYPE_MISMATCH,
        ),
    ]);
}

#[test]
fn configuration_table() {
    check_table(&[
        case(
            "declared environment enforced, other keys kept",
            |s, o| {
                s.environment = env(&[("LOG_LEVEL", "info")]);
                function(o, "api").info.environment =
                    env(&[("LOG_LEVEL", "debug"), ("DD_KEY", "x")]);
                function(o, "worker").info.environment =
                    env(&[("LOG_LEVEL", "info"), ("DD_KEY", "y")]);
            },
            vec![configure(
                "api",
                ConfigUpdate {
                    environment: Some(env(&[("LOG_LEVEL", "info"), ("DD_KEY", "x")])),
                    ..ConfigUpdate::default()
                },
            )],
        ),
        case(
            "function environment overrides the stage's",
            |s, o| {
                s.environment = env(&[("LOG_LEVEL", "info")]);
                s.functions[1].environment = env(&[("LOG_LEVEL", "warn")]);
                function(o, "api").info.environment = env(&[("LOG_LEVEL", "info")]);
                function(o, "worker").info.environment = env(&[("LOG_LEVEL", "warn")]);
            },
            vec![],
        ),
        case(
            "runtime, handler, memory and timeout when declared and different",
            |s, o| {
                s.functions[0].runtime = Some("python3.12".into());
                s.functions[0].handler = Some("app.handler".into());
                s.functions[0].memory_mb = Some(512);
                s.functions[0].timeout_seconds = Some(30);
                let api = &mut function(o, "api").info;
                api.runtime = Some("python3.11".into());
                api.handler = Some("app.handler".into());
                api.memory_mb = Some(128);
                api.timeout_seconds = Some(30);
            },
            vec![configure(
                "api",
                ConfigUpdate {
                    runtime: Some("python3.12".into()),
                    memory_mb: Some(512),
                    ..ConfigUpdate::default()
                },
            )],
        ),
    ]);
}

#[test]
fn layer_table() {
    fn declare_shared(s: &mut LambdaStageSpec, o: &mut Observed) {
        s.layers = vec![serde_json::from_value(json!({"name": "shared"})).expect("layer")];
        o.layer_versions.insert("shared".into(), layer("shared", 3));
        only_api(s, o);
    }
    check_table(&[
        case(
            "missing layer appended, others kept in order",
            |s, o| {
                declare_shared(s, o);
                function(o, "api").info.layers = vec![layer("datadog", 42)];
            },
            vec![configure(
                "api",
                layers_change(&[layer("datadog", 42), layer("shared", 3)]),
            )],
        ),
        case(
            "older version replaced in place",
            |s, o| {
                declare_shared(s, o);
                function(o, "api").info.layers = vec![layer("shared", 1), layer("datadog", 42)];
            },
            vec![configure(
                "api",
                layers_change(&[layer("shared", 3), layer("datadog", 42)]),
            )],
        ),
        case(
            "latest already attached",
            |s, o| {
                declare_shared(s, o);
                function(o, "api").info.layers = vec![layer("datadog", 42), layer("shared", 3)];
            },
            vec![],
        ),
        case(
            "a layer removed from the spec is detached, others kept",
            |s, o| {
                declare_shared(s, o);
                o.previous.declared_layers =
                    vec![format!("{ACCOUNT_LAYER}:shared"), "tracing".into()];
                function(o, "api").info.layers = vec![
                    layer("tracing", 2),
                    layer("datadog", 42),
                    layer("shared", 3),
                ];
            },
            vec![configure(
                "api",
                layers_change(&[layer("datadog", 42), layer("shared", 3)]),
            )],
        ),
        stalled(
            "a layer that does not resolve",
            |s, o| {
                declare_shared(s, o);
                o.layer_versions.clear();
            },
            reason::LAYER_NOT_FOUND,
        ),
        stalled(
            "more layers than Lambda allows",
            |s, o| {
                declare_shared(s, o);
                function(o, "api").info.layers =
                    (1..=5).map(|n| layer(&format!("l{n}"), 1)).collect();
            },
            reason::TOO_MANY_LAYERS,
        ),
        case(
            "image functions have no layers",
            |s, o| {
                declare_shared(s, o);
                s.code = None;
                function(o, "api").info.package_type = Some("Image".into());
            },
            vec![],
        ),
    ]);
}

#[test]
fn stack_table() {
    check_table(&[
        waiting(
            "no stack: create it through a change set, functions untouched",
            |s, o| {
                with_stack(s, "Stall");
                o.stack = Some(observed_stack(None, None, false));
                artifact(o).head = Some(head(Some("v2")));
            },
            vec![create_change_set(ChangeSetKind::Create)],
            &[],
        ),
        case(
            "create change set computed: execute it",
            |s, o| {
                with_stack(s, "Stall");
                o.stack = Some(observed_stack(
                    Some("REVIEW_IN_PROGRESS"),
                    Some(change_set("CREATE_COMPLETE", Some("AVAILABLE"), None)),
                    false,
                ));
            },
            vec![Action::ExecuteChangeSet {
                stack_name: "shop-dev".into(),
                change_set_name: "stagehand-abc123".into(),
            }],
        ),
        waiting(
            "change set still computing",
            |s, o| {
                with_stack(s, "Stall");
                o.stack = Some(observed_stack(
                    Some("UPDATE_COMPLETE"),
                    Some(change_set("CREATE_PENDING", None, None)),
                    false,
                ));
            },
            vec![],
            &[reason::CHANGE_SET_PENDING],
        ),
        waiting(
            "stack operation in progress: wait, touch no function",
            |s, o| {
                with_stack(s, "Stall");
                o.stack = Some(observed_stack(Some("UPDATE_IN_PROGRESS"), None, true));
                artifact(o).head = Some(head(Some("v2")));
            },
            vec![],
            &[reason::STACK_IN_PROGRESS],
        ),
        waiting(
            "functions of a stack being created may not exist yet",
            |s, o| {
                with_stack(s, "Stall");
                o.stack = Some(observed_stack(Some("CREATE_IN_PROGRESS"), None, true));
                o.functions[0].deployed = None;
            },
            vec![],
            &[reason::STACK_IN_PROGRESS],
        ),
        case(
            "ROLLBACK_COMPLETE with Recreate: delete it",
            |s, o| {
                with_stack(s, "Recreate");
                o.stack = Some(observed_stack(Some("ROLLBACK_COMPLETE"), None, false));
            },
            vec![Action::DeleteFailedStack {
                stack_name: "shop-dev".into(),
            }],
        ),
        stalled(
            "ROLLBACK_COMPLETE with Stall",
            |s, o| {
                with_stack(s, "Stall");
                o.stack = Some(observed_stack(Some("ROLLBACK_COMPLETE"), None, false));
            },
            reason::STACK_ROLLBACK_COMPLETE,
        ),
        stalled(
            "UPDATE_ROLLBACK_FAILED",
            |s, o| {
                with_stack(s, "Recreate");
                o.stack = Some(observed_stack(Some("UPDATE_ROLLBACK_FAILED"), None, true));
                artifact(o).head = Some(head(Some("v2")));
            },
            reason::STACK_UPDATE_ROLLBACK_FAILED,
        ),
        case(
            "template changed: update change set first, functions next round",
            |s, o| {
                with_stack(s, "Stall");
                o.stack = Some(observed_stack(Some("UPDATE_COMPLETE"), None, false));
                artifact(o).head = Some(head(Some("v2")));
            },
            vec![create_change_set(ChangeSetKind::Update)],
        ),
        case(
            "empty change set is success: functions are fixed directly",
            |s, o| {
                with_stack(s, "Stall");
                o.stack = Some(observed_stack(
                    Some("UPDATE_COMPLETE"),
                    Some(change_set(
                        "FAILED",
                        Some("UNAVAILABLE"),
                        Some("The submitted information didn't contain changes."),
                    )),
                    false,
                ));
                artifact(o).head = Some(head(Some("v2")));
            },
            vec![code("api", "v2"), code("worker", "v2")],
        ),
        stalled(
            "change set failed for a real reason",
            |s, o| {
                with_stack(s, "Stall");
                o.stack = Some(observed_stack(
                    Some("UPDATE_COMPLETE"),
                    Some(change_set("FAILED", None, Some("Template format error"))),
                    false,
                ));
            },
            reason::CHANGE_SET_FAILED,
        ),
        case(
            "obsolete change set is replaced",
            |s, o| {
                with_stack(s, "Stall");
                o.stack = Some(observed_stack(
                    Some("UPDATE_COMPLETE"),
                    Some(change_set("CREATE_COMPLETE", Some("OBSOLETE"), None)),
                    false,
                ));
            },
            vec![create_change_set(ChangeSetKind::Update)],
        ),
        stalled(
            "stack owned by another stage",
            |s, o| {
                with_stack(s, "Stall");
                let mut other = observed_stack(Some("UPDATE_COMPLETE"), None, true);
                if let Some(st) = other.stack.as_mut() {
                    st.tags = ownership_tags("shop/LambdaStage/prod", CLUSTER);
                }
                o.stack = Some(other);
            },
            reason::OWNERSHIP_CONFLICT,
        ),
    ]);
}

#[test]
fn mapping_table() {
    fn orders(s: &mut LambdaStageSpec, o: &mut Observed, found: Vec<EventSourceMapping>) {
        with_mapping(s, &json!({}));
        o.queues.insert("orders".into(), queue(0, 0));
        if !found.is_empty() {
            o.mappings
                .insert(MappingKey::new("worker", QUEUE_ARN), found);
        }
    }
    check_table(&[
        case(
            "none exists: create it",
            |s, o| orders(s, o, vec![]),
            vec![Action::CreateMapping {
                function: "worker".into(),
                queue: "orders".into(),
                event_source_arn: QUEUE_ARN.into(),
                settings: MappingSettings {
                    batch_size: Some(10),
                    batching_window_seconds: None,
                    enabled: Some(true),
                    max_concurrency: None,
                },
            }],
        ),
        case(
            "as declared",
            |s, o| orders(s, o, vec![mapping("u-1", "Enabled", 10)]),
            vec![],
        ),
        case(
            "disabled by hand: re-enabled in place",
            |s, o| orders(s, o, vec![mapping("u-1", "Disabled", 10)]),
            vec![update_mapping(
                "u-1",
                MappingSettings {
                    enabled: Some(true),
                    ..MappingSettings::default()
                },
            )],
        ),
        case(
            "batch size, window and concurrency changed in place",
            |s, o| {
                orders(s, o, vec![mapping("u-1", "Enabled", 10)]);
                let declared = &mut s.event_source_mappings[0];
                declared.batch_size = 25;
                declared.maximum_batching_window_seconds = Some(5);
                declared.maximum_concurrency = Some(4);
            },
            vec![update_mapping(
                "u-1",
                MappingSettings {
                    batch_size: Some(25),
                    batching_window_seconds: Some(5),
                    enabled: None,
                    max_concurrency: Some(4),
                },
            )],
        ),
        case(
            "duplicates: the lowest UUID is kept and updated, none created",
            |s, o| {
                orders(
                    s,
                    o,
                    vec![
                        mapping("u-9", "Enabled", 10),
                        mapping("u-2", "Disabled", 10),
                    ],
                );
            },
            vec![update_mapping(
                "u-2",
                MappingSettings {
                    enabled: Some(true),
                    ..MappingSettings::default()
                },
            )],
        ),
        case(
            "duplicates: the UUID recorded in status wins",
            |s, o| {
                orders(
                    s,
                    o,
                    vec![
                        mapping("u-9", "Enabled", 10),
                        mapping("u-2", "Disabled", 10),
                    ],
                );
                o.previous
                    .mapping_uuids
                    .insert(("worker".into(), "orders".into()), "u-9".into());
            },
            vec![],
        ),
        waiting(
            "mapping between states",
            |s, o| orders(s, o, vec![mapping("u-1", "Updating", 10)]),
            vec![],
            &[reason::MAPPING_TRANSITIONING],
        ),
        stalled(
            "queue does not exist",
            |s, o| {
                orders(s, o, vec![]);
                o.queues.clear();
            },
            reason::QUEUE_NOT_FOUND,
        ),
        stalled(
            "mapping names no selected function",
            |s, o| {
                orders(s, o, vec![]);
                s.event_source_mappings[0].function = "nobody".into();
            },
            reason::MAPPING_FUNCTION_NOT_FOUND,
        ),
        case(
            "function named by its fromStack id",
            |s, o| {
                orders(s, o, vec![mapping("u-1", "Enabled", 10)]);
                o.functions[1].declared_as = Some(DeclaredAs::FromStack("WorkerFunction".into()));
                s.functions[1] =
                    serde_json::from_value(json!({"fromStack": "WorkerFunction"})).expect("entry");
                s.event_source_mappings[0].function = "WorkerFunction".into();
            },
            vec![],
        ),
        case(
            "mappings come after functions",
            |s, o| {
                orders(s, o, vec![mapping("u-1", "Disabled", 10)]);
                artifact(o).head = Some(head(Some("v2")));
            },
            vec![
                code("api", "v2"),
                code("worker", "v2"),
                update_mapping(
                    "u-1",
                    MappingSettings {
                        enabled: Some(true),
                        ..MappingSettings::default()
                    },
                ),
            ],
        ),
    ]);
}

#[test]
fn ownership_and_gate_table() {
    check_table(&[
        stalled(
            "function owned by another stage",
            |_, o| {
                artifact(o).head = Some(head(Some("v2")));
                function(o, "worker").tags = ownership_tags("shop/LambdaStage/prod", CLUSTER);
            },
            reason::OWNERSHIP_CONFLICT,
        ),
        stalled(
            "function managed by another cluster",
            |_, o| function(o, "worker").tags = ownership_tags(OWNER, "cluster-2"),
            reason::OWNERSHIP_CONFLICT,
        ),
        stalled(
            "untagged function without adopt",
            |_, o| function(o, "worker").tags.clear(),
            reason::ADOPTION_REQUIRED,
        ),
        case(
            "untagged function with adopt: tagged before it is modified",
            |s, o| {
                s.lifecycle.adopt = true;
                artifact(o).head = Some(head(Some("v2")));
                function(o, "worker").tags = env(&[("team", "shop")]);
            },
            vec![
                code("api", "v2"),
                Action::TagFunction {
                    function: "worker".into(),
                    arn: "arn:aws:lambda:eu-west-1:123456789012:function:worker".into(),
                    tags: ownership_tags(OWNER, CLUSTER),
                },
                code("worker", "v2"),
            ],
        ),
        Case {
            gate: ActGate::ObserveOnly,
            ..case(
                "ObserveOnly: no actions",
                |_, o| artifact(o).head = Some(head(Some("v2"))),
                vec![],
            )
        },
        Case {
            gate: ActGate::Paused,
            ..case(
                "Paused: no actions",
                |_, o| artifact(o).head = Some(head(Some("v2"))),
                vec![],
            )
        },
    ]);
}

/// `api` is the stack's `Api` resource (the stack carries this stage's tags) and untagged.
fn own_stack_function(s: &mut LambdaStageSpec, o: &mut Observed) {
    with_stack(s, "Stall");
    o.stack = Some(observed_stack(Some("UPDATE_COMPLETE"), None, true));
    if let Some(stack) = o.stack.as_mut() {
        stack.function_names.insert("api".into());
    }
    s.functions[0].name = None;
    s.functions[0].from_stack = Some("Api".into());
    o.functions[0].declared_as = Some(DeclaredAs::FromStack("Api".into()));
    function(o, "api").tags.clear();
    artifact(o).head = Some(head(Some("v2")));
}

fn tag_api() -> Action {
    Action::TagFunction {
        function: "api".into(),
        arn: "arn:aws:lambda:eu-west-1:123456789012:function:api".into(),
        tags: ownership_tags(OWNER, CLUSTER),
    }
}

#[test]
fn functions_of_the_stages_own_stack_table() {
    check_table(&[
        case(
            "fromStack function of our stack, untagged: ours without adopt, tagged first",
            own_stack_function,
            vec![tag_api(), code("api", "v2"), code("worker", "v2")],
        ),
        case(
            "stackResources selector found it: ours too",
            |s, o| {
                own_stack_function(s, o);
                s.functions.remove(0);
                s.function_selector = Some(
                    serde_json::from_value(json!({"stackResources": true})).expect("selector"),
                );
                o.functions[0].declared_as = None;
                o.functions.rotate_left(1);
            },
            vec![code("worker", "v2"), tag_api(), code("api", "v2")],
        ),
        stalled(
            "tagged for another owner: never touched, even in our stack",
            |s, o| {
                own_stack_function(s, o);
                function(o, "api").tags = ownership_tags("shop/LambdaStage/prod", CLUSTER);
            },
            reason::OWNERSHIP_CONFLICT,
        ),
        stalled(
            "the stack is another stage's: its functions are not ours",
            |s, o| {
                own_stack_function(s, o);
                if let Some(stack) = o.stack.as_mut().and_then(|st| st.stack.as_mut()) {
                    stack.tags = ownership_tags("shop/LambdaStage/prod", CLUSTER);
                }
            },
            reason::OWNERSHIP_CONFLICT,
        ),
        stalled(
            "the stack is untagged (not ours): adoption required",
            |s, o| {
                own_stack_function(s, o);
                if let Some(stack) = o.stack.as_mut().and_then(|st| st.stack.as_mut()) {
                    stack.tags.clear();
                }
            },
            reason::ADOPTION_REQUIRED,
        ),
        case(
            "a stack function declared by name is the stack's too",
            |s, o| {
                own_stack_function(s, o);
                s.functions[0].from_stack = None;
                s.functions[0].name = Some("api".into());
                o.functions[0].declared_as = Some(DeclaredAs::Name("api".into()));
            },
            vec![tag_api(), code("api", "v2"), code("worker", "v2")],
        ),
        stalled(
            "a function declared by name that is not in the stack needs adopt",
            |s, o| {
                own_stack_function(s, o);
                s.functions[0].from_stack = None;
                s.functions[0].name = Some("api".into());
                o.functions[0].declared_as = Some(DeclaredAs::Name("api".into()));
                if let Some(stack) = o.stack.as_mut() {
                    stack.function_names.clear();
                }
            },
            reason::ADOPTION_REQUIRED,
        ),
        stalled(
            "found by a name prefix, not in the stack: needs adopt",
            |s, o| {
                own_stack_function(s, o);
                s.functions.remove(0);
                s.function_selector =
                    Some(serde_json::from_value(json!({"namePrefix": "api"})).expect("selector"));
                o.functions[0].declared_as = None;
                if let Some(stack) = o.stack.as_mut() {
                    stack.function_names.clear();
                }
            },
            reason::ADOPTION_REQUIRED,
        ),
    ]);
}

fn delete_version(version: &str) -> Action {
    Action::DeleteVersion {
        function: "api".into(),
        version: version.into(),
    }
}

#[test]
fn version_pruning_table() {
    /// Stagehand's versions 1..=5 (5 holds the deployed code v1), the alias on 5, keep 2.
    fn five(s: &mut LambdaStageSpec, o: &mut Observed, extra: &serde_json::Value) {
        let mut fields = json!({"keepVersions": 2});
        if let (Some(target), Some(more)) = (fields.as_object_mut(), extra.as_object()) {
            target.extend(more.clone());
        }
        with_alias(s, &fields);
        only_api(s, o);
        let api = function(o, "api");
        api.published_versions = (1..=4)
            .map(|n| published(&n.to_string(), &format!("v0.{n}")))
            .chain([published("5", "v1")])
            .collect();
        api.alias = Some(alias_at("5", None));
    }
    check_table(&[
        case(
            "beyond keepVersions: the oldest deleted, oldest first",
            |s, o| five(s, o, &json!({})),
            vec![
                delete_version("1"),
                delete_version("2"),
                delete_version("3"),
            ],
        ),
        case(
            "versions published by others are never deleted",
            |s, o| {
                five(s, o, &json!({}));
                for version in &mut function(o, "api").published_versions[..2] {
                    version.description = Some("release 2024-03".into());
                }
            },
            vec![delete_version("3")],
        ),
        case(
            "the newest validated version (a rollback's target) is kept",
            |s, o| {
                five(s, o, &json!({}));
                o.previous.versions = ["1", "2"]
                    .iter()
                    .map(|v| StatusVersion {
                        function_name: "api".into(),
                        version: (*v).into(),
                        code_sha256: b64("v0"),
                        validated: true,
                        ..StatusVersion::default()
                    })
                    .collect();
            },
            vec![delete_version("1"), delete_version("3")],
        ),
        waiting(
            "a version the alias still routes to is kept (canary primary)",
            |s, o| {
                five(
                    s,
                    o,
                    &json!({"canary": {"weight": 10, "promoteAfter": "10m"}}),
                );
                function(o, "api").alias = Some(alias_at("2", Some(("5", 0.1))));
            },
            vec![delete_version("1"), delete_version("3")],
            &[reason::CANARY_RUNNING],
        ),
        case(
            "nothing is deleted while the alias is being moved",
            |s, o| {
                five(s, o, &json!({}));
                function(o, "api").alias = Some(alias_at("4", None));
            },
            vec![update_alias("5", None)],
        ),
        case(
            "keepVersions covers them all: nothing to delete",
            |s, o| five(s, o, &json!({"keepVersions": 5})),
            vec![],
        ),
    ]);
}

#[test]
fn alias_table() {
    fn aliased(s: &mut LambdaStageSpec, o: &mut Observed, extra: &serde_json::Value) {
        with_alias(s, extra);
        only_api(s, o);
    }
    check_table(&[
        case(
            "no version holds the deployed code: publish it",
            |s, o| aliased(s, o, &json!({})),
            vec![Action::PublishVersion {
                function: "api".into(),
                expected_code_sha256: b64("v1"),
            }],
        ),
        case(
            "code changed: code only, publish on a later round",
            |s, o| {
                aliased(s, o, &json!({}));
                artifact(o).head = Some(head(Some("v2")));
            },
            vec![code("api", "v2")],
        ),
        case(
            "version published, alias missing: create it",
            |s, o| {
                aliased(s, o, &json!({}));
                function(o, "api").published_versions = vec![published("1", "v1")];
            },
            vec![Action::CreateAlias {
                function: "api".into(),
                alias: "live".into(),
                routing: AliasRouting::single("1"),
            }],
        ),
        case(
            "alias at an older version: point it at the new one",
            |s, o| {
                aliased(s, o, &json!({}));
                let api = function(o, "api");
                api.published_versions = vec![published("1", "v0"), published("2", "v1")];
                api.alias = Some(alias_at("1", None));
            },
            vec![update_alias("2", None)],
        ),
        case(
            "alias at the newest version",
            |s, o| {
                aliased(s, o, &json!({}));
                let api = function(o, "api");
                api.published_versions = vec![published("1", "v0"), published("2", "v1")];
                api.alias = Some(alias_at("2", None));
            },
            vec![],
        ),
        case(
            "canary: route the weight to the new version",
            |s, o| {
                aliased(
                    s,
                    o,
                    &json!({"canary": {"weight": 10, "promoteAfter": "10m"}}),
                );
                let api = function(o, "api");
                api.published_versions = vec![published("1", "v0"), published("2", "v1")];
                api.alias = Some(alias_at("1", None));
            },
            vec![update_alias("1", Some(("2", 10)))],
        ),
        waiting(
            "canary running, not yet due",
            |s, o| {
                aliased(
                    s,
                    o,
                    &json!({"canary": {"weight": 10, "promoteAfter": "10m"}}),
                );
                let api = function(o, "api");
                api.published_versions = vec![published("1", "v0"), published("2", "v1")];
                api.alias = Some(alias_at("1", Some(("2", 0.1))));
            },
            vec![],
            &[reason::CANARY_RUNNING],
        ),
        case(
            "canary due and validation passed: promote",
            |s, o| {
                aliased(
                    s,
                    o,
                    &json!({"canary": {"weight": 10, "promoteAfter": "10m"}}),
                );
                o.canary_promotion_due = true;
                let api = function(o, "api");
                api.published_versions = vec![published("1", "v0"), published("2", "v1")];
                api.alias = Some(alias_at("1", Some(("2", 0.1))));
            },
            vec![update_alias("2", None)],
        ),
        waiting(
            "canary due but validation failing: not promoted",
            |s, o| {
                aliased(
                    s,
                    o,
                    &json!({"canary": {"weight": 10, "promoteAfter": "10m"}}),
                );
                s.validation = Some(
                    serde_json::from_value(json!({"requiredEnvironment": ["DB_URL"]}))
                        .expect("validation"),
                );
                o.canary_promotion_due = true;
                let api = function(o, "api");
                api.published_versions = vec![published("1", "v0"), published("2", "v1")];
                api.alias = Some(alias_at("1", Some(("2", 0.1))));
            },
            vec![],
            &[reason::CANARY_RUNNING],
        ),
        case(
            "rollbackTo a version in status",
            |s, o| {
                aliased(s, o, &json!({"rollbackTo": 1}));
                o.previous.versions = vec![StatusVersion {
                    function_name: "api".into(),
                    version: "1".into(),
                    code_sha256: b64("v0"),
                    ..StatusVersion::default()
                }];
                let api = function(o, "api");
                api.published_versions = vec![published("1", "v0"), published("2", "v1")];
                api.alias = Some(alias_at("2", None));
            },
            vec![update_alias("1", None)],
        ),
        stalled(
            "rollbackTo a version status does not know",
            |s, o| aliased(s, o, &json!({"rollbackTo": 7})),
            reason::ROLLBACK_VERSION_UNKNOWN,
        ),
        case(
            "publishVersions false: the alias follows $LATEST",
            |s, o| {
                aliased(s, o, &json!({"publishVersions": false}));
                function(o, "api").alias = Some(alias_at("1", None));
            },
            vec![update_alias("$LATEST", None)],
        ),
    ]);
}

// ----- rollbackOnValidationFailure --------------------------------------------------------------

/// `api` alone with an alias; the deployed code (`v1`) is version 2, version 1 (`v0`) is known.
fn rollback_setup(s: &mut LambdaStageSpec, o: &mut Observed, extra: &serde_json::Value) {
    with_alias(s, extra);
    only_api(s, o);
    let api = function(o, "api");
    api.published_versions = vec![published("1", "v0"), published("2", "v1")];
    api.alias = Some(alias_at("2", None));
}

fn status_version(version: &str, content: &str, validated: bool) -> StatusVersion {
    StatusVersion {
        function_name: "api".into(),
        version: version.to_owned(),
        code_sha256: b64(content),
        validated,
        rolled_back: None,
    }
}

/// Validation fails: a required variable is missing everywhere.
fn failing_validation(s: &mut LambdaStageSpec) {
    s.validation = Some(
        serde_json::from_value(json!({"requiredEnvironment": ["DB_URL"]})).expect("validation"),
    );
}

fn rolled_back_from_2(o: &mut Observed) {
    let mut rejected = status_version("2", "v1", false);
    rejected.rolled_back = Some(VersionRollback {
        to_version: "1".into(),
        reason: "missing environment: api: DB_URL".into(),
        at: None,
    });
    o.previous.versions = vec![rejected, status_version("1", "v0", true)];
}

fn roll_back_2_to_1() -> Action {
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

fn rollback_flag() -> serde_json::Value {
    serde_json::from_str(ROLLBACK).expect("json")
}

#[test]
fn rollback_on_validation_failure_table() {
    check_table(&[
        case(
            "failing on the newest version: back to the newest validated older one",
            |s, o| {
                rollback_setup(s, o, &rollback_flag());
                failing_validation(s);
                o.previous.versions = vec![
                    status_version("2", "v1", true),
                    status_version("1", "v0", true),
                ];
            },
            vec![roll_back_2_to_1()],
        ),
        stalled(
            "without the flag: Validated=False only, the alias stays",
            |s, o| {
                rollback_setup(s, o, &json!({}));
                failing_validation(s);
                o.previous.versions = vec![status_version("1", "v0", true)];
            },
            reason::VALIDATION_FAILED,
        ),
        stalled(
            "no validated older version: nothing to go back to",
            |s, o| {
                rollback_setup(s, o, &rollback_flag());
                failing_validation(s);
                o.previous.versions = vec![status_version("1", "v0", false)];
            },
            reason::VALIDATION_FAILED,
        ),
        stalled(
            "the only validated older version runs the same code: not a rollback",
            |s, o| {
                rollback_setup(s, o, &rollback_flag());
                failing_validation(s);
                o.previous.versions = vec![status_version("1", "v1", true)];
            },
            reason::VALIDATION_FAILED,
        ),
        case(
            "validation passing: nothing to roll back",
            |s, o| {
                rollback_setup(s, o, &rollback_flag());
                o.previous.versions = vec![status_version("1", "v0", true)];
            },
            vec![],
        ),
        case(
            "failing canary: all traffic back to the stable version",
            |s, o| {
                rollback_setup(
                    s,
                    o,
                    &json!({"rollbackOnValidationFailure": true,
                            "canary": {"weight": 10, "promoteAfter": "10m"}}),
                );
                failing_validation(s);
                function(o, "api").alias = Some(alias_at("1", Some(("2", 0.1))));
            },
            vec![roll_back_2_to_1()],
        ),
        waiting(
            "failing canary without the flag: it waits, not promoted",
            |s, o| {
                rollback_setup(
                    s,
                    o,
                    &json!({"canary": {"weight": 10, "promoteAfter": "10m"}}),
                );
                failing_validation(s);
                o.canary_promotion_due = true;
                function(o, "api").alias = Some(alias_at("1", Some(("2", 0.1))));
            },
            vec![],
            &[reason::CANARY_RUNNING],
        ),
        case(
            "alias not on the newest build yet (mid-deploy): moved forward, never cascaded back",
            |s, o| {
                rollback_setup(s, o, &rollback_flag());
                failing_validation(s);
                o.previous.versions = vec![status_version("1", "v0", true)];
                function(o, "api").alias = Some(alias_at("1", None));
            },
            vec![update_alias("2", None)],
        ),
        stalled(
            "rolled back from this build: stays on the good version, RolledBack",
            |s, o| {
                rollback_setup(s, o, &rollback_flag());
                failing_validation(s);
                rolled_back_from_2(o);
                function(o, "api").alias = Some(alias_at("1", None));
            },
            reason::ROLLED_BACK,
        ),
        stalled(
            "rolled back from this build and validation passing again: still no flapping",
            |s, o| {
                rollback_setup(s, o, &rollback_flag());
                rolled_back_from_2(o);
                function(o, "api").alias = Some(alias_at("1", None));
            },
            reason::ROLLED_BACK,
        ),
        case(
            "rolled back, then someone moved the alias forward: back to the good version",
            |s, o| {
                rollback_setup(s, o, &rollback_flag());
                rolled_back_from_2(o);
            },
            vec![update_alias("1", None)],
        ),
        case(
            "rolled back from an older build, a new build deployed: published and tried",
            |s, o| {
                rollback_setup(s, o, &rollback_flag());
                rolled_back_from_2(o);
                function(o, "api").alias = Some(alias_at("1", None));
                function(o, "api").info.code_sha256 = Some(b64("v2"));
                artifact(o).head = Some(head(Some("v2")));
            },
            vec![Action::PublishVersion {
                function: "api".into(),
                expected_code_sha256: b64("v2"),
            }],
        ),
        case(
            "rollback recorded but the flag removed: the alias follows the build again",
            |s, o| {
                rollback_setup(s, o, &json!({}));
                rolled_back_from_2(o);
                function(o, "api").alias = Some(alias_at("1", None));
            },
            vec![update_alias("2", None)],
        ),
        Case {
            gate: ActGate::ObserveOnly,
            ..case(
                "ObserveOnly: the rollback is drift, not an action",
                |s, o| {
                    rollback_setup(s, o, &rollback_flag());
                    failing_validation(s);
                    o.previous.versions = vec![status_version("1", "v0", true)];
                },
                vec![],
            )
        },
    ]);
}

#[test]
fn a_canary_is_looked_at_again_when_it_may_be_due() {
    assert_eq!(canary_requeue_seconds("3s"), 3);
    assert_eq!(canary_requeue_seconds("500ms"), 1);
    assert_eq!(canary_requeue_seconds("10m"), requeue::CANARY_SECONDS);
    assert_eq!(canary_requeue_seconds("nonsense"), requeue::CANARY_SECONDS);
    let plan = plan_with(
        |s, o| {
            with_alias(s, &json!({"canary": {"weight": 20, "promoteAfter": "3s"}}));
            only_api(s, o);
            let api = function(o, "api");
            api.published_versions = vec![published("1", "v0"), published("2", "v1")];
            api.alias = Some(alias_at("1", Some(("2", 0.2))));
        },
        ActGate::Act,
    );
    assert_eq!(plan.requeue_after_seconds(), Some(3));
}

#[test]
fn rolled_back_stage_says_from_where_to_where_and_why() {
    let plan = plan_with(
        |s, o| {
            rollback_setup(s, o, &rollback_flag());
            rolled_back_from_2(o);
            function(o, "api").alias = Some(alias_at("1", None));
        },
        ActGate::Act,
    );
    let stall = plan.stalled.clone().expect("stalled");
    assert_eq!(stall.reason, reason::ROLLED_BACK);
    assert!(
        stall
            .message
            .contains("alias live of api rolled back from version 2 to version 1"),
        "{}",
        stall.message
    );
    assert!(stall.message.contains("api: DB_URL"), "{}", stall.message);
    match plan.outcome() {
        ReconcileOutcome::Stalled { reason, .. } => assert_eq!(reason, reason::ROLLED_BACK),
        other => panic!("{other:?}"),
    }

    let rolling = plan_with(
        |s, o| {
            rollback_setup(s, o, &rollback_flag());
            failing_validation(s);
            o.previous.versions = vec![status_version("1", "v0", true)];
        },
        ActGate::Act,
    );
    assert!(
        rolling
            .drift
            .iter()
            .any(|d| d.field == DriftField::Alias && d.detail.contains("back to version 1")),
        "{:?}",
        rolling.drift
    );
    assert_eq!(
        roll_back_2_to_1().to_string(),
        "roll alias api:live back from version 2 to version 1 (validation failed: missing environment: api: DB_URL)"
    );
    assert_eq!(roll_back_2_to_1().metric_label(), "alias_rollback");
}

// ----- conditions, messages, validation --------------------------------------------------------

fn plan_with(setup: Setup, gate: ActGate) -> Plan {
    let mut spec = base_spec();
    let mut observed = base_observed();
    setup(&mut spec, &mut observed);
    plan(&spec, &context(gate), &observed)
}

fn condition_of(plan: &Plan, type_: &str) -> (ConditionStatus, String, String) {
    let c = plan.condition(type_).expect("condition present");
    (c.status, c.reason.clone(), c.message.clone())
}

#[test]
fn converged_stage_reports_every_condition_true() {
    let plan = plan_with(|_, _| {}, ActGate::Act);
    for type_ in [CODE_IN_SYNC, LAYERS_ATTACHED, MAPPINGS_HEALTHY, VALIDATED] {
        assert_eq!(
            condition_of(&plan, type_).0,
            ConditionStatus::True,
            "{type_}"
        );
    }
    assert!(matches!(plan.outcome(), ReconcileOutcome::Converged { .. }));
    assert!(plan.drift.is_empty());
}

#[test]
fn artifact_mismatch_names_both_hashes() {
    let plan = plan_with(
        |s, o| {
            artifact(o).head = Some(head(Some("v2")));
            s.code.as_mut().expect("code").sha256 = Some(b64("v1"));
        },
        ActGate::Act,
    );
    let stall = plan.stalled.as_ref().expect("stalled");
    assert!(
        stall.message.contains(&sha("v1").to_hex()),
        "{}",
        stall.message
    );
    assert!(
        stall.message.contains(&sha("v2").to_hex()),
        "{}",
        stall.message
    );
    let (status, reason, _) = condition_of(&plan, CODE_IN_SYNC);
    assert_eq!(
        (status, reason.as_str()),
        (ConditionStatus::False, reason::ARTIFACT_MISMATCH)
    );
    assert!(
        matches!(plan.outcome(), ReconcileOutcome::Stalled { reason, .. } if reason == "ArtifactMismatch")
    );
}

#[test]
fn code_drift_is_reported_per_function() {
    let plan = plan_with(
        |_, o| {
            artifact(o).head = Some(head(Some("v2")));
            function(o, "api").info.code_sha256 = Some(b64("v2"));
        },
        ActGate::Act,
    );
    let (status, reason, message) = condition_of(&plan, CODE_IN_SYNC);
    assert_eq!(
        (status, reason.as_str()),
        (ConditionStatus::False, reason::CODE_DRIFT)
    );
    assert!(message.starts_with("1/2 functions differ"), "{message}");
    assert_eq!(plan.drift.len(), 1);
    assert_eq!(
        (plan.drift[0].field, plan.drift[0].subject.as_str()),
        (DriftField::Code, "worker")
    );
    let summary: Vec<bool> = plan.functions.iter().map(|f| f.code_in_sync).collect();
    assert_eq!(summary, [true, false]);
}

#[test]
fn hash_pending_makes_code_in_sync_unknown() {
    let plan = plan_with(|_, o| artifact(o).head = Some(head(None)), ActGate::Act);
    assert_eq!(
        condition_of(&plan, CODE_IN_SYNC).0,
        ConditionStatus::Unknown
    );
}

#[test]
fn observe_only_reports_drift_without_acting() {
    let plan = plan_with(
        |_, o| artifact(o).head = Some(head(Some("v2"))),
        ActGate::ObserveOnly,
    );
    assert!(plan.actions.is_empty());
    assert_eq!(plan.drift.len(), 2);
    assert!(
        matches!(plan.outcome(), ReconcileOutcome::ObserveOnlyDrift { fields, .. } if fields == ["code"])
    );
    let mixed = plan_with(
        |s, o| {
            s.environment = env(&[("LOG_LEVEL", "info")]);
            artifact(o).head = Some(head(Some("v2")));
        },
        ActGate::ObserveOnly,
    );
    assert!(
        matches!(mixed.outcome(), ReconcileOutcome::ObserveOnlyDrift { fields, .. } if fields == ["code", "environment"])
    );
    let paused = plan_with(
        |_, o| artifact(o).head = Some(head(Some("v2"))),
        ActGate::Paused,
    );
    assert_eq!(paused.outcome(), ReconcileOutcome::Paused);
}

#[test]
fn ownership_conflict_names_the_owner() {
    let plan = plan_with(
        |_, o| function(o, "worker").tags = ownership_tags("shop/LambdaStage/prod", CLUSTER),
        ActGate::Act,
    );
    let stall = plan.stalled.expect("stalled");
    assert!(
        stall.message.contains("shop/LambdaStage/prod"),
        "{}",
        stall.message
    );
    assert!(stall.message.contains("worker"), "{}", stall.message);
}

#[test]
fn update_rollback_failed_carries_the_stacks_reason() {
    let plan = plan_with(
        |s, o| {
            with_stack(s, "Recreate");
            o.stack = Some(observed_stack(Some("UPDATE_ROLLBACK_FAILED"), None, true));
        },
        ActGate::Act,
    );
    assert!(
        plan.stalled
            .expect("stalled")
            .message
            .contains("role not found")
    );
}

#[test]
fn validation_reports_missing_environment_with_the_keys() {
    let plan = plan_with(
        |s, o| {
            s.validation = Some(
                serde_json::from_value(json!({"requiredEnvironment": ["DB_URL", "LOG_LEVEL"]}))
                    .expect("validation"),
            );
            s.functions[0].environment = env(&[("DB_URL", "postgres://db")]);
            function(o, "api").info.environment =
                env(&[("DB_URL", "postgres://db"), ("LOG_LEVEL", "info")]);
            function(o, "worker").info.environment = env(&[("LOG_LEVEL", "info")]);
        },
        ActGate::Act,
    );
    assert_eq!(plan.validation.missing_environment, ["worker: DB_URL"]);
    let (status, _, message) = condition_of(&plan, VALIDATED);
    assert_eq!(status, ConditionStatus::False);
    assert!(message.contains("worker: DB_URL"), "{message}");
    // Deployed and converged otherwise: failed validation is the stage's state.
    assert_eq!(
        plan.stalled.expect("stalled").reason,
        reason::VALIDATION_FAILED
    );
}

#[test]
fn validation_reports_backlog_numbers_against_default_limits() {
    let setup: Setup = |s, o| {
        s.validation = Some(
            serde_json::from_value(json!({"queues": [{"queue": "orders"}]})).expect("validation"),
        );
        o.queues.insert("orders".into(), queue(12, 3));
    };
    let plan = plan_with(setup, ActGate::Act);
    let (status, reason, message) = condition_of(&plan, VALIDATED);
    assert_eq!(
        (status, reason.as_str()),
        (ConditionStatus::False, reason::VALIDATION_FAILED)
    );
    assert_eq!(
        message,
        "queue orders: 12 visible (max 10), 3 in flight (max 5)"
    );
    assert_eq!(plan.validation.queues[0].visible, 12);

    let recovered = plan_with(
        |s, o| {
            s.validation = Some(
                serde_json::from_value(json!({"queues": [{"queue": "orders"}]}))
                    .expect("validation"),
            );
            o.queues.insert("orders".into(), queue(10, 5));
        },
        ActGate::Act,
    );
    assert_eq!(condition_of(&recovered, VALIDATED).0, ConditionStatus::True);
    assert!(recovered.stalled.is_none());
}

#[test]
fn validation_checks_mappings_and_http() {
    let plan = plan_with(
        |s, o| {
            with_mapping(s, &json!({}));
            s.validation = Some(
                serde_json::from_value(
                    json!({"http": [{"name": "health", "url": "https://x/health"}]}),
                )
                .expect("validation"),
            );
            o.queues.insert("orders".into(), queue(0, 0));
            o.mappings.insert(
                MappingKey::new("worker", QUEUE_ARN),
                vec![mapping("u-1", "Disabled", 10)],
            );
            o.http_checks.insert(
                "health".into(),
                HttpCheckOutcome {
                    status: Some(503),
                    error: None,
                },
            );
        },
        ActGate::Act,
    );
    assert_eq!(
        plan.validation.unhealthy_mappings,
        ["orders → worker: Disabled"]
    );
    assert_eq!(
        plan.validation.http[0].error.as_deref(),
        Some("expected 200, got 503")
    );
    assert_eq!(
        condition_of(&plan, MAPPINGS_HEALTHY).0,
        ConditionStatus::False
    );
    // The mapping is being fixed: not a stall yet.
    assert!(plan.stalled.is_none());
    assert_eq!(plan.actions.len(), 1);
}

#[test]
fn duplicate_mappings_are_reported_as_drift() {
    let plan = plan_with(
        |s, o| {
            with_mapping(s, &json!({}));
            o.queues.insert("orders".into(), queue(0, 0));
            o.mappings.insert(
                MappingKey::new("worker", QUEUE_ARN),
                vec![mapping("u-2", "Enabled", 10), mapping("u-1", "Enabled", 10)],
            );
        },
        ActGate::Act,
    );
    assert!(plan.actions.is_empty());
    assert_eq!(plan.drift.len(), 1);
    assert!(
        plan.drift[0].detail.contains("duplicates of u-1: u-2"),
        "{}",
        plan.drift[0].detail
    );
    assert_eq!(
        condition_of(&plan, MAPPINGS_HEALTHY).0,
        ConditionStatus::False
    );
}

#[test]
fn predicates() {
    assert!(!code_drifted(Some(&b64("a")), sha("a")));
    assert!(code_drifted(Some(&b64("a")), sha("b")));
    assert!(code_drifted(None, sha("a")));
    assert!(code_drifted(Some("not a hash"), sha("a")));
    assert!(!pin_mismatched(
        Sha256Digest::parse(&sha("a").to_hex()).expect("hex"),
        Sha256Digest::parse(&b64("a")).expect("base64")
    ));
    assert!(!image_drifted(Some("sha256:ABC"), "sha256:abc"));
    assert!(image_drifted(None, "sha256:abc"));
    assert!(!backlog_exceeded(10, 5, 10, 5));
    assert!(backlog_exceeded(11, 0, 10, 5));
    assert!(backlog_exceeded(0, 6, 10, 5));
    assert_eq!(
        environment_drifted(
            &env(&[("A", "1"), ("B", "2")]),
            &env(&[("A", "1"), ("C", "3")])
        ),
        ["C"]
    );
    assert_eq!(
        stack_phase("UPDATE_COMPLETE_CLEANUP_IN_PROGRESS"),
        StackPhase::InProgress
    );
    assert_eq!(stack_phase("IMPORT_ROLLBACK_COMPLETE"), StackPhase::Stable);
    assert_eq!(stack_phase("DELETE_FAILED"), StackPhase::Failed);
    assert_eq!(
        stack_phase("REVIEW_IN_PROGRESS"),
        StackPhase::AwaitingCreateChangeSet
    );
}

// ----- convergence -----------------------------------------------------------------------------

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

#[test]
fn http_check_results_decide_validated() {
    let with_checks = |outcomes: Vec<(&'static str, HttpCheckOutcome)>| {
        let mut spec = base_spec();
        spec.validation = Some(
            serde_json::from_value(json!({"http": [
                {"name": "health", "url": "http://127.0.0.1:1/health"},
                {"name": "ready", "url": "https://x/ready", "expectedStatus": 204},
            ]}))
            .expect("validation"),
        );
        let mut observed = base_observed();
        for (name, outcome) in outcomes {
            observed.http_checks.insert(name.into(), outcome);
        }
        plan(&spec, &context(ActGate::Act), &observed)
    };
    let answered = |status| HttpCheckOutcome {
        status: Some(status),
        error: None,
    };

    // Both answered as expected: Validated, nothing stalled.
    let plan = with_checks(vec![("health", answered(200)), ("ready", answered(204))]);
    assert_eq!(condition_of(&plan, VALIDATED).0, ConditionStatus::True);
    assert!(
        plan.validation
            .http
            .iter()
            .all(|h| h.ok && h.error.is_none())
    );
    assert_eq!(plan.validation.http[1].status, Some(204));
    assert!(plan.stalled.is_none());

    // A transport error is reported as such; a deployed stage then stalls on validation.
    let plan = with_checks(vec![
        ("health", answered(200)),
        (
            "ready",
            HttpCheckOutcome {
                status: None,
                error: Some("GET https://x/ready timed out after 5s".into()),
            },
        ),
    ]);
    let (status, reason_, message) = condition_of(&plan, VALIDATED);
    assert_eq!(status, ConditionStatus::False);
    assert_eq!(reason_, reason::VALIDATION_FAILED);
    assert!(
        message.contains("http ready: GET https://x/ready timed out after 5s"),
        "{message}"
    );
    assert_eq!(plan.validation.http[1].status, None);
    assert!(!plan.validation.http[1].ok);
    assert_eq!(
        plan.stalled.as_ref().map(|s| s.reason),
        Some(reason::VALIDATION_FAILED)
    );

    // A check observe did not run never passes.
    let plan = with_checks(vec![("health", answered(200))]);
    assert_eq!(plan.validation.http[1].error.as_deref(), Some("not run"));
    assert_eq!(condition_of(&plan, VALIDATED).0, ConditionStatus::False);
}

// ----- plan + status over many rounds: rollbacks do not flap ------------------------------------

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
