//! `validation::CelRules` compiles a schema's CEL rules once; these tests hold it to what kube's
//! validator reports when it compiles the rules on every call (`validate_with_context`): the same
//! errors — field paths, messages, reasons — in the same order, for the examples, the invalid
//! corpus, transitions, an object breaking many rules at once, and a schema exercising every
//! feature of the rules (fieldPath, messageExpression, reasons, oldSelf, optionalOldSelf, maps,
//! lists, allOf branches, root variables, rules that do not compile or do not return a bool).

use std::path::{Path, PathBuf};

use kube::core::cel::{RootContext, Validator};
use serde_json::{Value, json};
use stagehand_crds::validation::{self, CelRules, FieldErrorKind};

/// One error as `(field path, message, kind)`.
type Reported = (String, String, FieldErrorKind);

/// What `validate_cel` reported before the rules were compiled once: kube's validator compiling
/// every rule on every call, its failures mapped to field errors as `validate_cel` maps them.
fn per_call(
    schema: &Value,
    object: &Value,
    old: Option<&Value>,
    root: &RootContext,
) -> Vec<Reported> {
    match Validator::new().validate_with_context(schema, object, old, Some(root)) {
        Ok(()) => Vec::new(),
        Err(failures) => failures
            .into_iter()
            .map(|f| {
                let kind = match f.reason.as_deref() {
                    Some("FieldValueForbidden") => FieldErrorKind::Forbidden,
                    Some("FieldValueRequired") => FieldErrorKind::Required,
                    Some("FieldValueDuplicate") => FieldErrorKind::Duplicate,
                    _ => FieldErrorKind::Invalid,
                };
                (f.field_path, f.message, kind)
            })
            .collect(),
    }
}

fn compiled(
    rules: &CelRules,
    object: &Value,
    old: Option<&Value>,
    root: &RootContext,
) -> Vec<Reported> {
    let mut errors = Vec::new();
    rules.validate(object, old, root, &mut errors);
    errors
        .into_iter()
        .map(|e| (e.field, e.detail, e.kind))
        .collect()
}

/// Both ways agree on `object` (created, and updated from `old` when given).
fn assert_same(
    what: &str,
    schema: &Value,
    rules: &CelRules,
    object: &Value,
    old: Option<&Value>,
    root: &RootContext,
) -> Vec<Reported> {
    let expected = per_call(schema, object, old, root);
    let actual = compiled(rules, object, old, root);
    assert_eq!(actual, expected, "{what}");
    // The free function (rules cached per schema) reports the same.
    let mut errors = Vec::new();
    validation::validate_cel(schema, object, old, root, &mut errors);
    let cached: Vec<Reported> = errors
        .into_iter()
        .map(|e| (e.field, e.detail, e.kind))
        .collect();
    assert_eq!(cached, expected, "{what} (validate_cel)");
    actual
}

fn root_of(kind: &str) -> RootContext {
    RootContext {
        api_version: "stagehand.dev/v1alpha1".into(),
        api_group: "stagehand.dev".into(),
        kind: kind.into(),
    }
}

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

fn load(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: cannot read: {e}", path.display()));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// JSON merge of `patch` into `target` (objects merged, everything else replaced).
fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                merge(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (t, p) => *t = p.clone(),
    }
}

#[test]
fn the_stagehand_crds_report_exactly_what_per_call_compilation_reports() {
    let manifests: Vec<(PathBuf, Value)> = [examples_dir(), examples_dir().join("invalid")]
        .iter()
        .flat_map(|dir| yaml_files(dir))
        .map(|p| {
            let v = load(&p);
            (p, v)
        })
        .collect();
    let transitions = examples_dir().join("invalid/transitions");
    let mut rejected = 0;
    for crd in stagehand_crds::crds() {
        let kind = crd.spec.names.kind.clone();
        let schema = validation::schema_of(&crd).expect("the CRD has a schema");
        let rules = CelRules::new(&schema);
        assert!(rules.root_compilation_errors().is_empty(), "{kind}");
        let root = root_of(&kind);
        let mut all_broken: Option<Value> = None;
        for (path, manifest) in manifests.iter().filter(|(_, m)| m["kind"] == kind.as_str()) {
            let object = validation::normalize(&schema, manifest);
            let what = path.display().to_string();
            rejected +=
                usize::from(!assert_same(&what, &schema, &rules, &object, None, &root).is_empty());
            assert_same(&what, &schema, &rules, &object, Some(&object), &root);
            if path.parent().is_some_and(|d| d.ends_with("invalid")) {
                match &mut all_broken {
                    Some(all) => merge(all, &object),
                    None => all_broken = Some(object),
                }
            }
        }
        // Every invalid manifest of the kind at once: errors from many nodes, whose order is
        // the order of the schema's properties.
        let all_broken = all_broken.expect("invalid examples of every kind");
        let errors = assert_same(&kind, &schema, &rules, &all_broken, None, &root);
        assert!(errors.len() >= 2, "{kind}: {errors:?}");
        for new_path in yaml_files(&transitions)
            .into_iter()
            .filter(|p| p.to_string_lossy().ends_with(".new.yaml"))
        {
            let old_path =
                PathBuf::from(new_path.to_string_lossy().replace(".new.yaml", ".old.yaml"));
            let (new, old) = (load(&new_path), load(&old_path));
            if new["kind"] != kind.as_str() {
                continue;
            }
            let new = validation::normalize(&schema, &new);
            let old = validation::normalize(&schema, &old);
            let what = new_path.display().to_string();
            let errors = assert_same(&what, &schema, &rules, &new, Some(&old), &root);
            assert!(!errors.is_empty(), "{what}");
        }
    }
    assert!(
        rejected >= 20,
        "only {rejected} manifests were rejected by CEL rules"
    );
}

fn every_feature_schema() -> Value {
    let failing = |name: &str| json!({"type": "integer", "x-kubernetes-validations": [{"rule": "self > 0", "message": format!("{name} must be positive")}]});
    let mut properties = serde_json::Map::new();
    for name in [
        "zeta", "alpha", "mike", "bravo", "yankee", "charlie", "xray", "delta", "echo",
    ] {
        properties.insert(name.into(), failing(name));
    }
    properties.insert(
        "items".into(),
        json!({
            "type": "array",
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name"],
            "x-kubernetes-validations": [
                {"rule": "self.all(x, self.exists_one(y, y.name == x.name))", "message": "duplicate", "reason": "FieldValueDuplicate"},
                {"rule": "size(self) < 3", "messageExpression": "'has ' + string(size(self)) + ' items'"}
            ],
            "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "when": {"type": "string", "format": "date-time"},
                    "every": {"type": "string", "format": "duration"},
                    "size": failing("size")
                },
                "x-kubernetes-validations": [
                    {"rule": "self.name != 'forbidden'", "message": "forbidden name", "reason": "FieldValueForbidden", "fieldPath": ".name"},
                    {"rule": "!has(self.when) || self.when > timestamp('2020-01-01T00:00:00Z')", "message": "too early"},
                    {"rule": "!has(self.every) || self.every >= duration('30s')", "message": "too short", "fieldPath": "every"},
                    {"rule": "has(self.size)", "message": "size required", "reason": "FieldValueRequired"}
                ]
            }
        }),
    );
    properties.insert(
        "labels".into(),
        json!({
            "type": "object",
            "additionalProperties": {"type": "string", "x-kubernetes-validations": [{"rule": "self.startsWith('ok')", "message": "label must start with ok"}]},
            "x-kubernetes-validations": [{"rule": "!('bad-key' in self)", "message": "bad-key is reserved"}]
        }),
    );
    properties.insert(
        "immutable".into(),
        json!({"type": "string", "x-kubernetes-validations": [
            {"rule": "self == oldSelf", "message": "immutable"},
            {"rule": "oldSelf.hasValue() ? self == oldSelf.value() : self != 'x'", "optionalOldSelf": true, "message": "optional old self"}
        ]}),
    );
    properties.insert(
        "branches".into(),
        json!({"type": "object", "properties": {"a": {"type": "integer"}}, "allOf": [
            {"x-kubernetes-validations": [{"rule": "self.a != 1", "message": "allOf branch"}]},
            {"properties": {"a": {"x-kubernetes-validations": [{"rule": "self != 1", "message": "allOf property"}]}}}
        ]}),
    );
    properties.insert(
        "broken".into(),
        json!({"type": "string", "x-kubernetes-validations": [
            {"rule": "self ==", "message": "does not compile"},
            {"rule": "self", "message": "not a bool"},
            {"rule": "self.noSuchField == 1", "message": "evaluation error"}
        ]}),
    );
    properties.insert("defaulted".into(), json!({"type": "integer", "default": 0, "x-kubernetes-validations": [{"rule": "self > 0", "message": "defaulted must be positive"}]}));
    json!({
        "type": "object",
        "properties": {"spec": {"type": "object", "properties": properties, "x-kubernetes-validations": [
            {"rule": "kind == 'Thing' && apiVersion == 'stagehand.dev/v1alpha1'", "message": "root variables are not bound below the root"},
            {"rule": "self.alpha != 7", "message": "alpha is not 7", "fieldPath": ".alpha"}
        ]}},
        "x-kubernetes-validations": [
            {"rule": "kind != 'Thing' || apiGroup != 'stagehand.dev'", "message": "root variables are bound at the root"}
        ]
    })
}

fn every_feature_object(immutable: &str, items: usize) -> Value {
    let mut spec = json!({
        "labels": {"ok1": "okay", "b": "nope", "bad-key": "okay", "a": "nope"},
        "immutable": immutable,
        "branches": {"a": 1},
        "broken": "text",
    });
    for (i, name) in [
        "zeta", "alpha", "mike", "bravo", "yankee", "charlie", "xray", "delta", "echo",
    ]
    .iter()
    .enumerate()
    {
        spec[*name] = json!(if i % 2 == 0 { -1 } else { 7 });
    }
    let list: Vec<Value> = (0..items)
        .map(|i| {
            json!({"name": if i == 0 { "forbidden".to_owned() } else { format!("n{}", i % 2) }, "when": "2019-05-01T00:00:00Z", "every": "10s", "size": -1})
        })
        .collect();
    spec["items"] = Value::Array(list);
    json!({"apiVersion": "stagehand.dev/v1alpha1", "kind": "Thing", "metadata": {"name": "t"}, "spec": spec})
}

#[test]
fn every_rule_feature_reports_exactly_what_per_call_compilation_reports() {
    let schema = every_feature_schema();
    let root = RootContext {
        api_version: "stagehand.dev/v1alpha1".into(),
        api_group: "stagehand.dev".into(),
        kind: "Thing".into(),
    };
    // Several compilations: nothing may depend on the hash order of one of them.
    for round in 0..8 {
        let rules = CelRules::new(&schema);
        assert_eq!(rules.root_compilation_errors().len(), 0);
        let created = every_feature_object("x", 4);
        let errors = assert_same(
            &format!("create, round {round}"),
            &schema,
            &rules,
            &created,
            None,
            &root,
        );
        assert!(errors.len() >= 20, "{errors:?}");
        let updated = every_feature_object("y", 3);
        assert_same(
            &format!("update, round {round}"),
            &schema,
            &rules,
            &updated,
            Some(&created),
            &root,
        );
        assert_same(
            &format!("no spec, round {round}"),
            &schema,
            &rules,
            &json!({"kind": "Thing"}),
            None,
            &root,
        );
    }
}

#[test]
fn a_rule_with_an_empty_field_path_and_rules_deeper_than_kube_walks_are_reported_as_kube_reports_them()
 {
    let root = root_of("Thing");
    let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {"a": {"type": "integer"}}, "x-kubernetes-validations": [
        {"rule": "self.a > 0", "message": "a must be positive", "fieldPath": ""}
    ]}}});
    let rules = CelRules::new(&schema);
    let errors = assert_same(
        "empty fieldPath",
        &schema,
        &rules,
        &json!({"spec": {"a": 0}}),
        None,
        &root,
    );
    assert_eq!(errors.len(), 1);

    let mut deep = json!({"type": "integer", "x-kubernetes-validations": [{"rule": "self > 0", "message": "deep"}]});
    let mut object = json!(0);
    for _ in 0..70 {
        deep = json!({"type": "object", "properties": {"x": deep}});
        object = json!({"x": object});
    }
    let rules = CelRules::new(&deep);
    let errors = assert_same("deep schema", &deep, &rules, &object, None, &root);
    assert!(!errors.is_empty());
}

#[test]
fn root_rules_that_do_not_compile_are_listed_as_kube_lists_them() {
    let schema = json!({"type": "object", "x-kubernetes-validations": [{"rule": "self ==", "message": "x"}, {"rule": "true"}],
        "properties": {"a": {"type": "string", "x-kubernetes-validations": [{"rule": "self ==", "message": "x"}]}}});
    let rules = CelRules::new(&schema);
    let ours: Vec<String> = rules
        .root_compilation_errors()
        .iter()
        .map(ToString::to_string)
        .collect();
    let kube = kube::core::cel::compile_schema(&schema);
    let theirs: Vec<String> = kube
        .compilation_errors()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(ours, theirs);
    assert_eq!(ours.len(), 1);
}
