//! The alias: published versions, pruning, canaries, `rollbackTo` and rollbacks on failed
//! validation.

use serde_json::json;
use stagehand_crds::LambdaStageSpec;
use stagehand_crds::lambda_stage::PublishedVersion as StatusVersion;

use super::fixtures::*;
use crate::base::conditions::ReconcileOutcome;
use crate::base::gates::ActGate;
use crate::lambda_stage::observed::Observed;
use crate::lambda_stage::plan::{
    Action, AliasRouting, DriftField, canary_requeue_seconds, reason, requeue,
};

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
