//! Code, configuration and layers: what each function runs and how it is configured.

use serde_json::json;
use stagehand_crds::LambdaStageSpec;

use super::fixtures::*;
use crate::aws::lambda::{CodeSource as CodeLocation, ConfigUpdate};
use crate::lambda_stage::observed::Observed;
use crate::lambda_stage::plan::{Action, reason};

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

/// A missing bucket is the user's to fix: a stall naming the bucket, not an AWS error.
#[test]
fn a_missing_artifact_bucket_stalls_naming_the_bucket() {
    let plan = run(&stalled(
        "missing bucket",
        |_, o| {
            let missing = artifact(o);
            missing.head = None;
            missing.bucket_missing = true;
        },
        reason::ARTIFACT_NOT_FOUND,
    ));
    let stall = plan.stalled.expect("stalled");
    assert_eq!(stall.reason, reason::ARTIFACT_NOT_FOUND);
    assert!(
        stall
            .message
            .contains("bucket \"artifacts\" does not exist"),
        "{}",
        stall.message
    );
    assert!(plan.actions.is_empty());
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
