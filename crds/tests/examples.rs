//! Validates the manifests under `examples/` the way the Kubernetes API server would, without
//! an API server:
//!
//! 1. schema defaults are applied (the API server defaults before it validates);
//! 2. the object is checked against the CRD's OpenAPI schema with the `jsonschema` crate, using
//!    the `regex` engine, which like Go's RE2 has no lookaround or backreferences;
//! 3. the CRD's CEL rules (`x-kubernetes-validations`) are evaluated with kube's CEL validator,
//!    including transition rules against an old object.
//!
//! Every example in `examples/*.yaml` must pass. Every manifest in `examples/invalid/*.yaml` must
//! be rejected, and the errors must contain the substring given on its first line
//! (`# expect: ...`), so each case fails for the reason it was written for.
//! `examples/invalid/transitions/<case>.old.yaml` + `<case>.new.yaml` are updates: both are valid
//! on their own, and the update from old to new must be rejected with the new file's `# expect:`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use jsonschema::{Draft, PatternOptions};
use kube::core::cel::{CompiledSchema, RootContext, Validator, apply_defaults, compile_schema};
use serde_json::{Map, Value, json};

const API_VERSION: &str = "stagehand.dev/v1alpha1";
const MIN_INVALID_CASES: usize = 25;
const MIN_TRANSITION_CASES: usize = 3;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("crds/ has a parent directory")
        .to_path_buf()
}

fn examples_dir() -> PathBuf {
    workspace_root().join("examples")
}

/// The `*.yaml` files directly in `dir`, sorted.
fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

/// A path relative to the workspace root, for messages.
fn display(path: &Path) -> String {
    path.strip_prefix(workspace_root())
        .unwrap_or(path)
        .display()
        .to_string()
}

/// One manifest file: its parsed content and its `# expect:` line, if any.
struct Manifest {
    path: PathBuf,
    object: Value,
    expect: Option<String>,
}

fn load(path: &Path) -> Manifest {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: cannot read: {e}", display(path)));
    let object: Value = serde_saphyr::from_str(&text)
        .unwrap_or_else(|e| panic!("{}: not valid YAML: {e}", display(path)));
    let expect = text
        .lines()
        .next()
        .and_then(|first| first.strip_prefix("# expect:"))
        .map(|s| s.trim().to_owned());
    Manifest {
        path: path.to_path_buf(),
        object,
        expect,
    }
}

/// Turns a CRD's structural OpenAPI v3 schema into a JSON Schema (draft 4) that `jsonschema`
/// checks the way the API server does:
///
/// - `nullable: true` becomes `"null"` in `type` (OpenAPI 3.0 has no null type);
/// - `x-kubernetes-*` extensions are dropped (CEL rules are checked separately), and so are the
///   OpenAPI-only numeric formats `int32`, `int64`, `float`, `double`, `byte`;
/// - objects with `properties` reject unknown fields (`additionalProperties: false`), as
///   `kubectl apply` does with its default strict field validation, unless they preserve
///   unknown fields;
/// - the root accepts `apiVersion`, `kind` and `metadata`, which the API server adds to every
///   CRD schema implicitly.
///
/// The walk follows schema keywords only (`properties`, `items`, `additionalProperties`,
/// `allOf`/`anyOf`/`oneOf`/`not`), so a field that happens to be named `pattern` or `format`
/// is never mistaken for a keyword, and `default` values are left alone.
fn to_json_schema(openapi: &Value) -> Value {
    let mut root = convert_node(openapi);
    let props = root
        .as_object_mut()
        .expect("root schema is an object")
        .entry("properties")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .expect("root properties is an object");
    props.insert("apiVersion".into(), json!({"type": "string"}));
    props.insert("kind".into(), json!({"type": "string"}));
    props.insert("metadata".into(), json!({"type": "object"}));
    root
}

fn convert_node(node: &Value) -> Value {
    let Some(obj) = node.as_object() else {
        return node.clone();
    };
    let mut out = Map::new();
    for (key, value) in obj {
        match key.as_str() {
            k if k.starts_with("x-kubernetes-") => {}
            "nullable" => {}
            "format"
                if matches!(
                    value.as_str(),
                    Some("int32" | "int64" | "float" | "double" | "byte")
                ) => {}
            "properties" => {
                let props = value
                    .as_object()
                    .expect("properties is an object")
                    .iter()
                    .map(|(name, schema)| (name.clone(), convert_node(schema)))
                    .collect();
                out.insert(key.clone(), Value::Object(props));
            }
            "items" | "additionalProperties" | "not" => {
                out.insert(key.clone(), convert_node(value));
            }
            "allOf" | "anyOf" | "oneOf" => {
                let branches = value
                    .as_array()
                    .expect("junctor is an array")
                    .iter()
                    .map(convert_node)
                    .collect();
                out.insert(key.clone(), Value::Array(branches));
            }
            _ => {
                out.insert(key.clone(), value.clone());
            }
        }
    }
    if obj.get("nullable") == Some(&Value::Bool(true))
        && let Some(Value::String(ty)) = obj.get("type")
    {
        out.insert("type".into(), json!([ty, "null"]));
    }
    let preserves_unknown =
        obj.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
    if obj.contains_key("properties")
        && !obj.contains_key("additionalProperties")
        && !preserves_unknown
    {
        out.insert("additionalProperties".into(), Value::Bool(false));
    }
    Value::Object(out)
}

/// A JSON Schema validator whose `pattern`s use the `regex` crate: like RE2 it rejects
/// lookaround and backreferences, so a pattern the API server could not compile fails here too.
fn json_schema_validator(schema: &Value) -> Result<jsonschema::Validator, String> {
    jsonschema::options()
        .with_draft(Draft::Draft4)
        .with_pattern_options(PatternOptions::regex())
        .build(schema)
        .map_err(|e| e.to_string())
}

/// Everything needed to validate objects of one kind.
struct KindValidator {
    kind: String,
    openapi: Value,
    json_schema: jsonschema::Validator,
    cel: CompiledSchema,
}

/// What the API server would say about an object, as `<path>: <message>` lines.
struct Verdict {
    /// OpenAPI schema errors (types, patterns, bounds, enums, required and unknown fields).
    schema: Vec<String>,
    /// CEL rule failures.
    cel: Vec<String>,
}

impl Verdict {
    fn all(&self) -> Vec<String> {
        self.schema.iter().chain(&self.cel).cloned().collect()
    }
}

impl KindValidator {
    /// Validates `object`, created or (with `old`) updated. Both checks run on the object with
    /// schema defaults applied, as in the API server.
    fn verdict(&self, object: &Value, old: Option<&Value>) -> Verdict {
        let defaulted = apply_defaults(&self.openapi, object);
        let schema = self
            .json_schema
            .iter_errors(&defaulted)
            .map(|error| format!("schema: {}: {error}", error.instance_path()))
            .collect();
        let root = RootContext {
            api_version: API_VERSION.into(),
            api_group: "stagehand.dev".into(),
            kind: self.kind.clone(),
        };
        // `validate_compiled_with_context` applies the schema defaults to both objects itself.
        let cel = match Validator::new().validate_compiled_with_context(
            &self.cel,
            object,
            old,
            Some(&root),
        ) {
            Ok(()) => Vec::new(),
            Err(errors) => errors.iter().map(|e| format!("cel: {e}")).collect(),
        };
        Verdict { schema, cel }
    }

    /// All errors for `object`; empty when the API server would accept it.
    fn errors(&self, object: &Value, old: Option<&Value>) -> Vec<String> {
        self.verdict(object, old).all()
    }
}

/// One validator per kind, from the CRDs `stagehand_crds::crds()` generates.
fn validators() -> BTreeMap<String, KindValidator> {
    stagehand_crds::crds()
        .into_iter()
        .map(|crd| {
            let kind = crd.spec.names.kind.clone();
            assert_eq!(crd.spec.group, "stagehand.dev", "{kind}: wrong group");
            let version = crd
                .spec
                .versions
                .first()
                .unwrap_or_else(|| panic!("{kind}: CRD has no version"));
            assert_eq!(
                format!("{}/{}", crd.spec.group, version.name),
                API_VERSION,
                "{kind}: wrong version"
            );
            let schema = version
                .schema
                .as_ref()
                .and_then(|s| s.open_api_v3_schema.as_ref())
                .unwrap_or_else(|| panic!("{kind}: CRD has no openAPIV3Schema"));
            let openapi = serde_json::to_value(schema).expect("schema serializes");
            let json_schema = json_schema_validator(&to_json_schema(&openapi))
                .unwrap_or_else(|e| panic!("{kind}: the schema is not usable as JSON Schema: {e}"));
            let cel = compile_schema(&openapi);
            (
                kind.clone(),
                KindValidator {
                    kind,
                    openapi,
                    json_schema,
                    cel,
                },
            )
        })
        .collect()
}

/// The validator for a manifest's `kind`, or why there is none.
fn validator_for<'a>(
    validators: &'a BTreeMap<String, KindValidator>,
    manifest: &Manifest,
) -> Result<&'a KindValidator, String> {
    let kind = manifest
        .object
        .get("kind")
        .and_then(Value::as_str)
        .ok_or("no kind")?;
    validators.get(kind).ok_or_else(|| {
        format!(
            "kind {kind} is not one of {:?}",
            validators.keys().collect::<Vec<_>>()
        )
    })
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns_label)
}

/// What is wrong with an example's `apiVersion`, `kind` and `metadata`.
fn envelope_problems(object: &Value, validators: &BTreeMap<String, KindValidator>) -> Vec<String> {
    let mut problems = Vec::new();
    match object.get("apiVersion").and_then(Value::as_str) {
        Some(API_VERSION) => {}
        other => problems.push(format!("apiVersion is {other:?}, want {API_VERSION:?}")),
    }
    match object.get("kind").and_then(Value::as_str) {
        Some(kind) if validators.contains_key(kind) => {}
        other => problems.push(format!(
            "kind {other:?} is not one of {:?}",
            validators.keys().collect::<Vec<_>>()
        )),
    }
    let Some(metadata) = object.get("metadata").and_then(Value::as_object) else {
        problems.push("no metadata".into());
        return problems;
    };
    for key in metadata.keys() {
        if !["name", "namespace", "labels", "annotations"].contains(&key.as_str()) {
            problems.push(format!("metadata.{key} does not belong in a manifest"));
        }
    }
    match metadata.get("name").and_then(Value::as_str) {
        Some(name) if is_dns_subdomain(name) => {}
        other => problems.push(format!(
            "metadata.name {other:?} is not a DNS-1123 subdomain"
        )),
    }
    // All three kinds are namespaced; examples say where they belong.
    match metadata.get("namespace").and_then(Value::as_str) {
        Some(ns) if is_dns_label(ns) => {}
        other => problems.push(format!(
            "metadata.namespace {other:?} is not a DNS-1123 label"
        )),
    }
    for field in ["labels", "annotations"] {
        if let Some(map) = metadata.get(field) {
            let all_strings = map
                .as_object()
                .is_some_and(|m| m.values().all(Value::is_string));
            if !all_strings {
                problems.push(format!("metadata.{field} must map strings to strings"));
            }
        }
    }
    if object.get("status").is_some() {
        problems.push("status is written by the controller, not by manifests".into());
    }
    problems
}

#[test]
fn every_example_is_valid() {
    let validators = validators();
    let files = yaml_files(&examples_dir());
    let mut failures = String::new();
    let mut kinds_seen = BTreeMap::<String, usize>::new();
    for path in &files {
        let manifest = load(path);
        let mut problems = envelope_problems(&manifest.object, &validators);
        if let Ok(validator) = validator_for(&validators, &manifest) {
            *kinds_seen.entry(validator.kind.clone()).or_default() += 1;
            problems.extend(validator.errors(&manifest.object, None));
            // Re-applying an unchanged manifest is an update whose transition rules must pass.
            for error in validator.errors(&manifest.object, Some(&manifest.object)) {
                problems.push(format!("unchanged update: {error}"));
            }
        }
        if manifest.expect.is_some() {
            problems.push("valid examples carry no `# expect:` line".into());
        }
        if !problems.is_empty() {
            let _ = writeln!(
                failures,
                "{}:\n    {}",
                display(path),
                problems.join("\n    ")
            );
        }
    }
    assert!(
        failures.is_empty(),
        "examples that the API server would reject:\n{failures}"
    );
    for kind in validators.keys() {
        assert!(
            kinds_seen.contains_key(kind),
            "no example of kind {kind} in examples/ (found {kinds_seen:?})"
        );
    }
}

#[test]
fn every_invalid_manifest_is_rejected_with_the_expected_error() {
    let validators = validators();
    let files = yaml_files(&examples_dir().join("invalid"));
    let mut failures = String::new();
    for path in &files {
        let manifest = load(path);
        if let Some(problem) = check_rejected(&validators, &manifest, None) {
            let _ = writeln!(failures, "{}: {problem}", display(path));
        }
    }
    assert!(
        failures.is_empty(),
        "invalid manifests not rejected as expected:\n{failures}"
    );
    assert!(
        files.len() >= MIN_INVALID_CASES,
        "examples/invalid/ holds {} cases, want at least {MIN_INVALID_CASES}",
        files.len()
    );
}

/// Why `manifest` (created, or updated from `old`) is not rejected with its `# expect:`
/// substring; `None` when it is.
fn check_rejected(
    validators: &BTreeMap<String, KindValidator>,
    manifest: &Manifest,
    old: Option<&Value>,
) -> Option<String> {
    let Some(expect) = manifest.expect.as_deref().filter(|e| !e.is_empty()) else {
        return Some("the first line must be `# expect: <substring of the expected error>`".into());
    };
    let validator = match validator_for(validators, manifest) {
        Ok(v) => v,
        Err(e) => return Some(e),
    };
    let errors = validator.errors(&manifest.object, old);
    if errors.is_empty() {
        return Some(format!("accepted, but should be rejected with {expect:?}"));
    }
    let combined = errors.join("\n");
    (!combined.contains(expect)).then(|| {
        format!(
            "rejected, but no error contains {expect:?}; the errors were:\n    {}",
            errors.join("\n    ")
        )
    })
}

#[test]
fn every_transition_case_is_rejected_with_the_expected_error() {
    let validators = validators();
    let dir = examples_dir().join("invalid").join("transitions");
    let files = yaml_files(&dir);
    let mut failures = String::new();
    let mut cases = 0;
    for new_path in files
        .iter()
        .filter(|p| p.to_string_lossy().ends_with(".new.yaml"))
    {
        cases += 1;
        let case = new_path
            .to_string_lossy()
            .trim_end_matches(".new.yaml")
            .to_owned();
        let old_path = PathBuf::from(format!("{case}.old.yaml"));
        if !old_path.is_file() {
            let _ = writeln!(
                failures,
                "{}: no matching {}",
                display(new_path),
                display(&old_path)
            );
            continue;
        }
        let old = load(&old_path);
        let new = load(new_path);
        // Both objects are valid when created, so only the transition can be at fault.
        for m in [&old, &new] {
            match validator_for(&validators, m) {
                Ok(v) => {
                    let errors = v.errors(&m.object, None);
                    if !errors.is_empty() {
                        let _ = writeln!(
                            failures,
                            "{}: invalid even on create:\n    {}",
                            display(&m.path),
                            errors.join("\n    ")
                        );
                    }
                }
                Err(e) => {
                    let _ = writeln!(failures, "{}: {e}", display(&m.path));
                }
            }
        }
        if old.object.get("kind") != new.object.get("kind") {
            let _ = writeln!(
                failures,
                "{}: kind differs from {}",
                display(new_path),
                display(&old_path)
            );
        }
        if let Some(problem) = check_rejected(&validators, &new, Some(&old.object)) {
            let _ = writeln!(
                failures,
                "{} (update from {}): {problem}",
                display(new_path),
                display(&old_path)
            );
        }
    }
    for path in files
        .iter()
        .filter(|p| p.to_string_lossy().ends_with(".old.yaml"))
    {
        let new_path = PathBuf::from(path.to_string_lossy().replace(".old.yaml", ".new.yaml"));
        if !new_path.is_file() {
            let _ = writeln!(
                failures,
                "{}: no matching {}",
                display(path),
                display(&new_path)
            );
        }
    }
    assert!(
        failures.is_empty(),
        "transition cases not rejected as expected:\n{failures}"
    );
    assert!(
        cases >= MIN_TRANSITION_CASES,
        "{} holds {cases} transition cases, want at least {MIN_TRANSITION_CASES}",
        display(&dir)
    );
}

/// A CEL rule found in a CRD schema, with where it is.
struct FoundRule {
    kind: String,
    path: String,
    rule: Value,
}

/// Every `x-kubernetes-validations` entry of every CRD, walking schema keywords only.
fn all_rules() -> Vec<FoundRule> {
    fn walk(kind: &str, node: &Value, path: &str, out: &mut Vec<FoundRule>) {
        if let Some(rules) = node
            .get("x-kubernetes-validations")
            .and_then(Value::as_array)
        {
            out.extend(rules.iter().map(|rule| FoundRule {
                kind: kind.into(),
                path: path.into(),
                rule: rule.clone(),
            }));
        }
        if let Some(props) = node.get("properties").and_then(Value::as_object) {
            for (name, child) in props {
                walk(kind, child, &format!("{path}.{name}"), out);
            }
        }
        if let Some(items) = node.get("items") {
            walk(kind, items, &format!("{path}[]"), out);
        }
        if let Some(additional) = node.get("additionalProperties").filter(|a| a.is_object()) {
            walk(kind, additional, &format!("{path}{{}}"), out);
        }
    }
    let mut out = Vec::new();
    for (kind, v) in validators() {
        walk(&kind, &v.openapi, "", &mut out);
    }
    out
}

/// Every CEL rule of the three CRDs compiles and carries a message. kube's CEL (the `cel` crate)
/// parses but does not type-check, so this catches syntax errors, not type errors; the
/// examples and the invalid corpus evaluate every rule, which catches most of the rest.
#[test]
fn every_cel_rule_compiles() {
    let rules = all_rules();
    let mut failures = String::new();
    for found in &rules {
        let compiled = compile_schema(&json!({ "x-kubernetes-validations": [found.rule] }));
        for error in compiled.compilation_errors() {
            let _ = writeln!(failures, "{} {}: {error}", found.kind, found.path);
        }
        if found
            .rule
            .get("message")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            let _ = writeln!(
                failures,
                "{} {}: rule {} has no message",
                found.kind, found.path, found.rule
            );
        }
    }
    assert!(
        failures.is_empty(),
        "CEL rules the API server would refuse:\n{failures}"
    );
    assert!(
        rules.len() >= 20,
        "expected the CRDs to carry at least 20 CEL rules, found {}",
        rules.len()
    );
}

/// Each CEL rule is live: some invalid manifest passes the OpenAPI schema and is rejected with
/// the rule's message. A rule that only fires on objects the schema already rejects (say, one
/// a `pattern` makes impossible) is dead weight, or a sign the pattern is wrong.
#[test]
fn every_cel_rule_is_triggered_by_some_invalid_manifest() {
    let validators = validators();
    let invalid = examples_dir().join("invalid");
    let mut cel_only_failures = Vec::new();
    let mut paths = yaml_files(&invalid);
    paths.extend(
        yaml_files(&invalid.join("transitions"))
            .into_iter()
            .filter(|p| p.to_string_lossy().ends_with(".new.yaml")),
    );
    for path in paths {
        let manifest = load(&path);
        let old = path
            .to_string_lossy()
            .strip_suffix(".new.yaml")
            .map(|case| load(Path::new(&format!("{case}.old.yaml"))).object);
        if let Ok(v) = validator_for(&validators, &manifest) {
            let verdict = v.verdict(&manifest.object, old.as_ref());
            if verdict.schema.is_empty() {
                cel_only_failures.push(verdict.cel.join("\n"));
            }
        }
    }
    let mut untriggered = Vec::new();
    for found in all_rules() {
        let message = found
            .rule
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !cel_only_failures.iter().any(|t| t.contains(message)) {
            untriggered.push(format!("{} {}: {message:?}", found.kind, found.path));
        }
    }
    assert!(
        untriggered.is_empty(),
        "CEL rules that no schema-valid invalid manifest triggers:\n  {}",
        untriggered.join("\n  ")
    );
}

/// Alias names follow Lambda's rule (`(?!^[0-9]+$)([a-zA-Z0-9-_]+)`, 1–128 characters), split
/// into an RE2-compatible pattern and a CEL rule.
#[test]
fn alias_names_follow_lambda_rules() {
    let validators = validators();
    let validator = &validators["LambdaStage"];
    let example = load(&examples_dir().join("lambda-stage-chalice.yaml")).object;
    let with_alias = |name: &str| {
        let mut object = example.clone();
        object["spec"]["alias"]["name"] = json!(name);
        validator.errors(&object, None)
    };
    for name in ["live", "2024-spring", "v2", "blue_green", &"a".repeat(128)] {
        let errors = with_alias(name);
        assert!(
            errors.is_empty(),
            "alias name {name:?} is valid in Lambda but rejected: {errors:?}"
        );
    }
    for name in ["42", "$LATEST", "", "live.v2", &"a".repeat(129)] {
        assert!(
            !with_alias(name).is_empty(),
            "alias name {name:?} is invalid in Lambda but accepted"
        );
    }
}

/// The RE2 check above is only as good as the engine: make sure the `regex` engine really
/// refuses what RE2 refuses.
#[test]
fn pattern_engine_refuses_what_re2_refuses() {
    for pattern in [r"^(?!\d+$)[a-z0-9]+$", r"^(a)\1$", r"^a(?<=a)$"] {
        let schema = json!({"type": "string", "pattern": pattern});
        assert!(
            json_schema_validator(&schema).is_err(),
            "pattern {pattern} should be refused like RE2 does"
        );
    }
    let schema = json!({"type": "string", "pattern": r"^(?:[a-z]+)-[0-9]{2}$"});
    assert!(
        json_schema_validator(&schema).is_ok(),
        "RE2-compatible patterns are accepted"
    );
}

/// The API server defaults before it runs CEL; so do these tests. The SAM example relies on it:
/// its canary needs `alias.publishVersions`, which it leaves to the default.
#[test]
fn defaults_are_applied_before_cel_rules() {
    let validators = validators();
    let manifest = load(&examples_dir().join("lambda-stage-sam.yaml"));
    let validator = &validators["LambdaStage"];
    let defaulted = apply_defaults(&validator.openapi, &manifest.object);
    assert_eq!(defaulted["spec"]["alias"]["publishVersions"], json!(true));
    assert_eq!(defaulted["spec"]["management"], json!("Full"));
    assert_eq!(
        defaulted["spec"]["validation"]["http"][0]["timeoutSeconds"],
        json!(5)
    );
    assert!(validator.errors(&manifest.object, None).is_empty());
}
