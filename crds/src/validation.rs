//! Validation of Stagehand objects as the Kubernetes API server does it for custom resources:
//! nulls of non-nullable fields dropped, defaults applied, unknown fields pruned, then OpenAPI
//! value validation (types, required, enum, pattern, ranges, lengths, list types) and the CEL
//! rules (`x-kubernetes-validations`, transition rules included), with field errors worded as
//! the API server words them.
//!
//! One implementation serves the test API server (`stagehand-testenv`) and `stagehand plan` /
//! `stagehand apply`, which validate manifests offline before touching AWS: an invalid manifest
//! is refused there exactly as `kubectl apply` would be refused by a cluster.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

use kube::core::cel::{
    CompilationError, CompiledSchema, RootContext, ValidationError, Validator, apply_defaults,
    compile_schema,
};
use serde_json::{Map, Value};

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn is_true(schema: &Value, key: &str) -> bool {
    schema.get(key).and_then(Value::as_bool) == Some(true)
}

/// Drops nulls of non-nullable fields and prunes fields the schema does not know.
/// `root` keeps `apiVersion`, `kind` and `metadata` (handled by the generic metadata code).
pub fn prune(schema: &Value, value: &mut Value, root: bool) {
    match value {
        Value::Object(obj) => prune_object(schema, obj, root),
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for item in items {
                    prune(item_schema, item, false);
                }
            }
        }
        _ => {}
    }
}

fn prune_object(schema: &Value, obj: &mut Map<String, Value>, root: bool) {
    let props = schema.get("properties").and_then(Value::as_object);
    let preserve = is_true(schema, "x-kubernetes-preserve-unknown-fields");
    let embedded = is_true(schema, "x-kubernetes-embedded-resource");
    let additional = schema.get("additionalProperties");
    let keys: Vec<String> = obj.keys().cloned().collect();
    for key in keys {
        let keep_always =
            (root || embedded) && matches!(key.as_str(), "apiVersion" | "kind" | "metadata");
        let prop_schema = props.and_then(|p| p.get(&key));
        let child_schema = match (prop_schema, additional) {
            (Some(s), _) => Some(s),
            (None, Some(a)) if a.is_object() => Some(a),
            _ => None,
        };
        if let Some(child) = child_schema {
            if obj.get(&key).is_some_and(Value::is_null) && !is_true(child, "nullable") {
                obj.remove(&key);
                continue;
            }
            if root && key == "metadata" {
                continue;
            }
            if let Some(v) = obj.get_mut(&key) {
                prune(child, v, false);
            }
        } else {
            let additional_true = additional.and_then(Value::as_bool) == Some(true);
            if !(keep_always || preserve || additional_true) {
                obj.remove(&key);
            }
        }
    }
}

/// The fields of `original` that pruning removed (`spec.notAField`), for `fieldValidation=Strict`.
pub fn unknown_fields(original: &Value, pruned: &Value, path: &str, out: &mut Vec<String>) {
    match (original, pruned) {
        (Value::Object(o), Value::Object(p)) => {
            for (k, v) in o {
                let child = join(path, k);
                match p.get(k) {
                    Some(pv) => unknown_fields(v, pv, &child, out),
                    None if !v.is_null() => out.push(child),
                    None => {}
                }
            }
        }
        (Value::Array(o), Value::Array(p)) => {
            for (i, (v, pv)) in o.iter().zip(p).enumerate() {
                unknown_fields(v, pv, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// Drop nulls, apply defaults, prune unknown fields: the decoding steps of a custom object.
pub fn normalize(schema: &Value, object: &Value) -> Value {
    let mut v = object.clone();
    prune(schema, &mut v, true);
    let mut v = apply_defaults(schema, &v);
    prune(schema, &mut v, true);
    v
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn number_text(n: &Value) -> String {
    match n.as_f64() {
        // `minimum: 1.0` (as schemars writes bounds) reads "1", as the API server prints it.
        Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < 1e15 => format!("{f:.0}"),
        _ => n.to_string(),
    }
}

/// OpenAPI value validation of `value` at `path`.
pub fn validate(schema: &Value, value: &Value, path: &str, errors: &mut Vec<FieldError>) {
    if value.is_null() {
        if !is_true(schema, "nullable") && schema.get("type").is_some() {
            errors.push(FieldError::new(
                path,
                FieldErrorKind::TypeInvalid,
                Some(Value::String("null".to_owned())),
                format!(
                    "{path} in body must be of type {}: \"null\"",
                    schema
                        .get("type")
                        .and_then(Value::as_str)
                        .unwrap_or("object")
                ),
            ));
        }
        return;
    }
    let int_or_string = is_true(schema, "x-kubernetes-int-or-string");
    if int_or_string {
        if !(value.is_string() || value.is_i64() || value.is_u64()) {
            errors.push(FieldError::new(
                path,
                FieldErrorKind::TypeInvalid,
                Some(Value::String(json_type(value).to_owned())),
                format!(
                    "{path} in body must be of type integer,string: \"{}\"",
                    json_type(value)
                ),
            ));
            return;
        }
    } else if let Some(ty) = schema.get("type").and_then(Value::as_str) {
        let actual = json_type(value);
        let ok = match ty {
            "number" => value.is_number(),
            "integer" => {
                value.is_i64() || value.is_u64() || value.as_f64().is_some_and(|f| f.fract() == 0.0)
            }
            other => other == actual,
        };
        if !ok {
            errors.push(FieldError::new(
                path,
                FieldErrorKind::TypeInvalid,
                Some(Value::String(actual.to_owned())),
                format!("{path} in body must be of type {ty}: \"{actual}\""),
            ));
            return;
        }
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        let list = allowed
            .iter()
            .map(render_value)
            .collect::<Vec<_>>()
            .join(", ");
        errors.push(FieldError::new(
            path,
            FieldErrorKind::NotSupported,
            Some(value.clone()),
            format!("supported values: {list}"),
        ));
    }
    match value {
        Value::String(s) => validate_string(schema, s, value, path, errors),
        Value::Number(_) => validate_number(schema, value, path, errors),
        Value::Array(items) => validate_array(schema, items, value, path, errors),
        Value::Object(obj) => validate_object(schema, obj, path, errors),
        _ => {}
    }
    for key in ["allOf", "anyOf", "oneOf"] {
        let Some(branches) = schema.get(key).and_then(Value::as_array) else {
            continue;
        };
        let results: Vec<Vec<FieldError>> = branches
            .iter()
            .map(|b| {
                let mut errs = Vec::new();
                validate(b, value, path, &mut errs);
                errs
            })
            .collect();
        let passing = results.iter().filter(|r| r.is_empty()).count();
        match key {
            "allOf" => errors.extend(results.into_iter().flatten()),
            "anyOf" if passing == 0 => errors.push(FieldError::invalid(
                path,
                value.clone(),
                format!("{path} in body must validate at least one schema (anyOf)"),
            )),
            "oneOf" if passing != 1 => errors.push(FieldError::invalid(
                path,
                value.clone(),
                format!("{path} in body must validate one and only one schema (oneOf)"),
            )),
            _ => {}
        }
    }
    if let Some(not) = schema.get("not") {
        let mut errs = Vec::new();
        validate(not, value, path, &mut errs);
        if errs.is_empty() {
            errors.push(FieldError::invalid(
                path,
                value.clone(),
                format!("{path} in body must not validate the schema (not)"),
            ));
        }
    }
}

fn validate_string(
    schema: &Value,
    s: &str,
    value: &Value,
    path: &str,
    errors: &mut Vec<FieldError>,
) {
    let len = s.chars().count() as u64;
    if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
        && len > max
    {
        errors.push(FieldError::new(
            path,
            FieldErrorKind::TooLong,
            None,
            format!("may not be more than {max} bytes"),
        ));
    }
    if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
        && len < min
    {
        errors.push(FieldError::invalid(
            path,
            value.clone(),
            format!("{path} in body should be at least {min} chars long"),
        ));
    }
    if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
        match compiled_pattern(pattern) {
            Ok(re) if !re.is_match(s) => errors.push(FieldError::invalid(
                path,
                value.clone(),
                format!("{path} in body should match '{pattern}'"),
            )),
            Ok(_) => {}
            Err(e) => errors.push(FieldError::invalid(
                path,
                value.clone(),
                format!("pattern {pattern:?} does not compile: {e}"),
            )),
        }
    }
    if let Some(format) = schema.get("format").and_then(Value::as_str)
        && format == "date-time"
        && s.parse::<jiff::Timestamp>().is_err()
    {
        errors.push(FieldError::invalid(
            path,
            value.clone(),
            format!("{path} in body must be of type date-time: {value}"),
        ));
    }
}

/// Compiles (once per thread) a schema `pattern`. Go's RE2 classes such as `\w` are ASCII-only,
/// so ASCII mode is tried first (it also keeps `\w{1,128}` small).
fn compiled_pattern(pattern: &str) -> Result<regex::Regex, regex::Error> {
    thread_local! {
        static CACHE: std::cell::RefCell<std::collections::HashMap<String, Result<regex::Regex, regex::Error>>> =
            std::cell::RefCell::new(std::collections::HashMap::new());
    }
    CACHE.with(|cache| {
        cache
            .borrow_mut()
            .entry(pattern.to_owned())
            .or_insert_with(|| {
                regex::RegexBuilder::new(pattern)
                    .unicode(false)
                    .build()
                    .or_else(|_| {
                        regex::RegexBuilder::new(pattern)
                            .size_limit(64 << 20)
                            .build()
                    })
            })
            .clone()
    })
}

fn validate_number(schema: &Value, value: &Value, path: &str, errors: &mut Vec<FieldError>) {
    let Some(n) = value.as_f64() else { return };
    if let Some(min) = schema.get("minimum") {
        let m = min.as_f64().unwrap_or(f64::MIN);
        if is_true(schema, "exclusiveMinimum") {
            if n <= m {
                errors.push(FieldError::invalid(
                    path,
                    value.clone(),
                    format!("{path} in body should be greater than {}", number_text(min)),
                ));
            }
        } else if n < m {
            errors.push(FieldError::invalid(
                path,
                value.clone(),
                format!(
                    "{path} in body should be greater than or equal to {}",
                    number_text(min)
                ),
            ));
        }
    }
    if let Some(max) = schema.get("maximum") {
        let m = max.as_f64().unwrap_or(f64::MAX);
        if is_true(schema, "exclusiveMaximum") {
            if n >= m {
                errors.push(FieldError::invalid(
                    path,
                    value.clone(),
                    format!("{path} in body should be less than {}", number_text(max)),
                ));
            }
        } else if n > m {
            errors.push(FieldError::invalid(
                path,
                value.clone(),
                format!(
                    "{path} in body should be less than or equal to {}",
                    number_text(max)
                ),
            ));
        }
    }
    if let Some(multiple) = schema.get("multipleOf").and_then(Value::as_f64)
        && multiple > 0.0
        && (n / multiple).fract() != 0.0
    {
        errors.push(FieldError::invalid(
            path,
            value.clone(),
            format!("{path} in body should be a multiple of {multiple}"),
        ));
    }
}

fn validate_array(
    schema: &Value,
    items: &[Value],
    value: &Value,
    path: &str,
    errors: &mut Vec<FieldError>,
) {
    let len = items.len() as u64;
    if let Some(max) = schema.get("maxItems").and_then(Value::as_u64)
        && len > max
    {
        errors.push(FieldError::new(
            path,
            FieldErrorKind::TooMany,
            Some(Value::from(len)),
            format!("must have at most {max} items"),
        ));
    }
    if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
        && len < min
    {
        errors.push(FieldError::invalid(
            path,
            value.clone(),
            format!("{path} in body should have at least {min} items"),
        ));
    }
    if let Some(item_schema) = schema.get("items") {
        for (i, item) in items.iter().enumerate() {
            validate(item_schema, item, &format!("{path}[{i}]"), errors);
        }
    }
    match schema.get("x-kubernetes-list-type").and_then(Value::as_str) {
        Some("set") => {
            let mut seen = HashSet::new();
            for (i, item) in items.iter().enumerate() {
                if !seen.insert(item.to_string()) {
                    errors.push(FieldError::new(
                        format!("{path}[{i}]"),
                        FieldErrorKind::Duplicate,
                        Some(item.clone()),
                        "",
                    ));
                }
            }
        }
        Some("map") => {
            let keys: Vec<&str> = schema
                .get("x-kubernetes-list-map-keys")
                .and_then(Value::as_array)
                .map(|k| k.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let mut seen = HashSet::new();
            for (i, item) in items.iter().enumerate() {
                let key: Map<String, Value> = keys
                    .iter()
                    .filter_map(|k| item.get(*k).map(|v| ((*k).to_owned(), v.clone())))
                    .collect();
                if !seen.insert(Value::Object(key.clone()).to_string()) {
                    errors.push(FieldError::new(
                        format!("{path}[{i}]"),
                        FieldErrorKind::Duplicate,
                        Some(Value::Object(key)),
                        "",
                    ));
                }
            }
        }
        _ => {}
    }
}

fn validate_object(
    schema: &Value,
    obj: &Map<String, Value>,
    path: &str,
    errors: &mut Vec<FieldError>,
) {
    if let Some(required) = schema.get("required").and_then(Value::as_array) {
        for r in required.iter().filter_map(Value::as_str) {
            if !obj.contains_key(r) {
                errors.push(FieldError::required(join(path, r), ""));
            }
        }
    }
    let count = obj.len() as u64;
    if let Some(max) = schema.get("maxProperties").and_then(Value::as_u64)
        && count > max
    {
        errors.push(FieldError::new(
            path,
            FieldErrorKind::TooMany,
            Some(Value::from(count)),
            format!("must have at most {max} items"),
        ));
    }
    if let Some(min) = schema.get("minProperties").and_then(Value::as_u64)
        && count < min
    {
        errors.push(FieldError::invalid(
            path,
            Value::from(count),
            format!("{path} in body should have at least {min} properties"),
        ));
    }
    let props = schema.get("properties").and_then(Value::as_object);
    let additional = schema.get("additionalProperties").filter(|a| a.is_object());
    for (key, v) in obj {
        if path.is_empty() && key == "metadata" {
            continue;
        }
        let child = props.and_then(|p| p.get(key)).or(additional);
        if let Some(child) = child {
            validate(child, v, &join(path, key), errors);
        }
    }
}

/// The value at a field path such as `spec.functions[0].code` (used to name the type of the value
/// in CEL errors, as the real server does: `Invalid value: "object"`).
fn value_at<'a>(root: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = root;
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (name, rest) = part.split_once('[').map_or((part, ""), |(n, r)| (n, r));
        if !name.is_empty() {
            cur = cur.get(name)?;
        }
        for idx in rest.split('[') {
            let idx = idx.trim_end_matches(']');
            if idx.is_empty() {
                continue;
            }
            cur = match idx.parse::<usize>() {
                Ok(i) => cur.get(i)?,
                Err(_) => cur.get(idx.trim_matches(|c| c == '\'' || c == '"'))?,
            };
        }
    }
    Some(cur)
}

/// Evaluates the `x-kubernetes-validations` rules of `schema` (with transition rules against
/// `old`). The rules are compiled the first time a schema is seen and reused for every later
/// call with an equal schema; a caller that validates many objects against one schema can keep
/// a [`CelRules`] itself and skip the lookup.
pub fn validate_cel(
    schema: &Value,
    object: &Value,
    old: Option<&Value>,
    root: &RootContext,
    errors: &mut Vec<FieldError>,
) {
    CelRules::cached(schema).validate(object, old, root, errors);
}

/// How deep kube's CEL validator walks a schema (its `MAX_SCHEMA_DEPTH`); deeper schemas get a
/// "schema nesting exceeds the maximum depth" error from it.
const KUBE_CEL_MAX_SCHEMA_DEPTH: usize = 64;

/// How many schemas [`validate_cel`] and [`check_object`] keep compiled rules for.
const CACHED_SCHEMAS: usize = 16;

thread_local! {
    /// kube's validator: the CEL context with the Kubernetes functions registered (about 20 µs
    /// to build). It holds no rules, so one per thread serves every schema.
    static VALIDATOR: Validator = Validator::new();
}

/// The CEL rules (`x-kubernetes-validations`) of one structural schema, compiled once and
/// evaluated against any number of objects with the same results as kube's
/// `Validator::validate_with_context` (which compiles every rule on every call): same messages,
/// `messageExpression`s, field paths, reasons, transition rules, in the same order.
///
/// kube's own compiled form (`compile_schema` + `validate_compiled_with_context`) is not used
/// as is: it visits the properties of an object in hash order, so the order of the errors
/// would change from one process to the next. Here each schema node with rules gets its own
/// compiled schema (that node's rules; below it, only what converts values to CEL: formats,
/// maps, embedded resources), and the nodes are visited in the order the uncompiled validator
/// visits them.
#[derive(Debug)]
pub struct CelRules {
    /// The schema the rules come from (defaults are applied with it before the rules run).
    schema: Value,
    /// The nodes of the schema that have rules, or have descendants with rules.
    root: Option<RuleNode>,
    /// Schemas the node-by-node evaluation cannot reproduce exactly (nesting deeper than kube's
    /// limit, a rule with an empty `fieldPath`): evaluated by kube's per-call compilation.
    per_call: bool,
}

/// One schema node on the way to CEL rules.
#[derive(Debug)]
struct RuleNode {
    /// This node's rules, compiled with a copy of the node's schema that has no rules below it.
    rules: Option<CompiledSchema>,
    /// `properties`, in schema order.
    properties: Vec<(String, RuleNode)>,
    items: Option<Box<RuleNode>>,
    /// `additionalProperties` (unless `x-kubernetes-preserve-unknown-fields`), with the names
    /// of the declared properties it does not apply to.
    additional: Option<(Box<RuleNode>, HashSet<String>)>,
    /// `allOf`, `oneOf`, `anyOf` branches, in that order (evaluated against the same value).
    branches: Vec<RuleNode>,
}

impl CelRules {
    /// Compiles every rule of `schema` (a CRD version's `openAPIV3Schema`).
    pub fn new(schema: &Value) -> Self {
        let mut per_call = false;
        let root = RuleNode::build(schema, 0, &mut per_call);
        Self {
            schema: schema.clone(),
            root,
            per_call,
        }
    }

    /// The schema these rules were compiled from.
    pub fn schema(&self) -> &Value {
        &self.schema
    }

    /// The rules at the root of the schema that do not compile, as kube's
    /// `compile_schema(schema).compilation_errors()` lists them (root rules only).
    pub fn root_compilation_errors(&self) -> Vec<&CompilationError> {
        self.root
            .as_ref()
            .and_then(|node| node.rules.as_ref())
            .map(CompiledSchema::compilation_errors)
            .unwrap_or_default()
    }

    /// The compiled rules of a schema equal to `schema`, compiling them the first time.
    fn cached(schema: &Value) -> Arc<Self> {
        static CACHE: Mutex<Vec<Arc<CelRules>>> = Mutex::new(Vec::new());
        let mut cache = CACHE.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(rules) = cache.iter().find(|rules| rules.schema == *schema) {
            return Arc::clone(rules);
        }
        let rules = Arc::new(Self::new(schema));
        if cache.len() >= CACHED_SCHEMAS {
            cache.remove(0);
        }
        cache.push(Arc::clone(&rules));
        rules
    }

    /// Evaluates the rules against `object` (with transition rules against `old`), as
    /// [`validate_cel`] does.
    pub fn validate(
        &self,
        object: &Value,
        old: Option<&Value>,
        root: &RootContext,
        errors: &mut Vec<FieldError>,
    ) {
        let failures = VALIDATOR.with(|validator| {
            if self.per_call {
                return match validator.validate_with_context(&self.schema, object, old, Some(root))
                {
                    Ok(()) => Vec::new(),
                    Err(failures) => failures.into_vec(),
                };
            }
            let Some(node) = &self.root else {
                return Vec::new();
            };
            // As kube's validator does: the rules see both objects with the defaults applied.
            let defaulted = apply_defaults(&self.schema, object);
            let defaulted_old = old.map(|o| apply_defaults(&self.schema, o));
            let mut failures = Vec::new();
            node.evaluate(
                validator,
                &defaulted,
                defaulted_old.as_ref(),
                "",
                Some(root),
                &mut failures,
            );
            failures
        });
        for f in failures {
            let type_name = value_at(object, &f.field_path).map_or("object", json_type);
            let kind = match f.reason.as_deref() {
                Some("FieldValueForbidden") => FieldErrorKind::Forbidden,
                Some("FieldValueRequired") => FieldErrorKind::Required,
                Some("FieldValueDuplicate") => FieldErrorKind::Duplicate,
                _ => FieldErrorKind::Invalid,
            };
            let value = (kind == FieldErrorKind::Invalid || kind == FieldErrorKind::Duplicate)
                .then(|| Value::String(type_name.to_owned()));
            errors.push(FieldError::new(f.field_path, kind, value, f.message));
        }
    }

    /// [`check_object`] against these rules' schema.
    pub fn check_object(
        &self,
        object: &Value,
        old: Option<&Value>,
        root: &RootContext,
    ) -> (Value, Vec<FieldError>) {
        let schema = &self.schema;
        let normalized = normalize(schema, object);
        let mut errors = Vec::new();
        let mut unknown = Vec::new();
        unknown_fields(object, &normalized, "", &mut unknown);
        for field in unknown {
            errors.push(FieldError::new(
                field,
                FieldErrorKind::Invalid,
                None,
                "unknown field",
            ));
        }
        let mut schema_errors = Vec::new();
        validate(schema, &normalized, "", &mut schema_errors);
        if schema_errors.is_empty() {
            let old_normalized = old.map(|o| normalize(schema, o));
            self.validate(&normalized, old_normalized.as_ref(), root, &mut errors);
        }
        errors.extend(schema_errors);
        (normalized, errors)
    }
}

impl RuleNode {
    /// The node for `schema` at `depth`, or `None` when neither it nor anything below it has
    /// rules. Sets `per_call` for what only per-call compilation reproduces exactly.
    fn build(schema: &Value, depth: usize, per_call: &mut bool) -> Option<Self> {
        if depth > KUBE_CEL_MAX_SCHEMA_DEPTH {
            *per_call = true;
            return None;
        }
        let rules = schema
            .get("x-kubernetes-validations")
            .and_then(Value::as_array)
            .filter(|rules| !rules.is_empty())
            .map(|rules| {
                // kube reports a rule's error at `<node path>.<fieldPath>`; an empty fieldPath
                // gives `<node path>.`, which the error paths of a node evaluated on its own
                // cannot tell apart from a rule without fieldPath.
                if rules
                    .iter()
                    .any(|r| r.get("fieldPath").and_then(Value::as_str) == Some(""))
                {
                    *per_call = true;
                }
                compile_schema(&value_schema(schema, true))
            });
        let children = |key: &str, per_call: &mut bool| -> Vec<Self> {
            schema
                .get(key)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|s| Self::build(s, depth + 1, per_call))
                .collect()
        };
        let declared = schema.get("properties").and_then(Value::as_object);
        let properties: Vec<(String, Self)> = declared
            .into_iter()
            .flatten()
            .filter_map(|(name, s)| Some((name.clone(), Self::build(s, depth + 1, per_call)?)))
            .collect();
        let items = schema
            .get("items")
            .and_then(|s| Self::build(s, depth + 1, per_call))
            .map(Box::new);
        let additional = schema
            .get("additionalProperties")
            .filter(|a| a.is_object() && !is_true(schema, "x-kubernetes-preserve-unknown-fields"))
            .and_then(|s| Self::build(s, depth + 1, per_call))
            .map(|node| {
                let known = declared.into_iter().flatten().map(|(k, _)| k.clone());
                (Box::new(node), known.collect())
            });
        let mut branches = children("allOf", per_call);
        branches.extend(children("oneOf", per_call));
        branches.extend(children("anyOf", per_call));
        let node = Self {
            rules,
            properties,
            items,
            additional,
            branches,
        };
        let empty = node.rules.is_none()
            && node.properties.is_empty()
            && node.items.is_none()
            && node.additional.is_none()
            && node.branches.is_empty();
        (!empty).then_some(node)
    }

    /// Evaluates this node's rules, then those below it, in the order kube's uncompiled
    /// validator walks the schema: properties (schema order), items, additional properties,
    /// then the `allOf`/`oneOf`/`anyOf` branches.
    fn evaluate(
        &self,
        validator: &Validator,
        value: &Value,
        old: Option<&Value>,
        path: &str,
        root: Option<&RootContext>,
        out: &mut Vec<ValidationError>,
    ) {
        if let Some(rules) = &self.rules {
            // `apiVersion`, `apiGroup` and `kind` are bound at the root of the object only.
            let root = root.filter(|_| path.is_empty());
            if let Err(failures) = validator.validate_compiled_with_context(rules, value, old, root)
            {
                for mut f in failures {
                    f.field_path = under(path, &f.field_path);
                    out.push(f);
                }
            }
        }
        if let Some(obj) = value.as_object() {
            for (name, node) in &self.properties {
                if let Some(child) = obj.get(name) {
                    let child_old = old.and_then(|o| o.get(name));
                    node.evaluate(validator, child, child_old, &join(path, name), None, out);
                }
            }
        }
        if let (Some(node), Some(items)) = (&self.items, value.as_array()) {
            for (i, item) in items.iter().enumerate() {
                let item_old = old.and_then(Value::as_array).and_then(|a| a.get(i));
                let item_path = if path.is_empty() {
                    format!("[{i}]")
                } else {
                    format!("{path}[{i}]")
                };
                node.evaluate(validator, item, item_old, &item_path, None, out);
            }
        }
        if let (Some((node, known)), Some(obj)) = (&self.additional, value.as_object()) {
            for (key, child) in obj {
                if !known.contains(key) {
                    let child_old = old.and_then(|o| o.get(key));
                    node.evaluate(validator, child, child_old, &join(path, key), None, out);
                }
            }
        }
        for branch in &self.branches {
            branch.evaluate(validator, value, old, path, root, out);
        }
    }
}

/// A field path reported by a node evaluated on its own (`""`, `.field` or `field` from the
/// rule's `fieldPath`) as the path under the node at `path`.
fn under(path: &str, relative: &str) -> String {
    if path.is_empty() {
        relative.to_owned()
    } else if relative.is_empty() {
        path.to_owned()
    } else if relative.starts_with('.') {
        format!("{path}{relative}")
    } else {
        format!("{path}.{relative}")
    }
}

/// A copy of a schema node with what kube's CEL validator needs to convert a value to CEL
/// (types, formats, maps, embedded resources) and, with `own_rules`, the node's own rules; the
/// rules of the nodes below it, defaults (already applied) and descriptions are left out.
fn value_schema(schema: &Value, own_rules: bool) -> Value {
    let Value::Object(node) = schema else {
        return schema.clone();
    };
    let mut out = Map::new();
    for (key, value) in node {
        let value = match key.as_str() {
            "x-kubernetes-validations" if own_rules => value.clone(),
            "x-kubernetes-validations" | "default" | "description" => continue,
            "properties" => match value {
                Value::Object(props) => Value::Object(
                    props
                        .iter()
                        .map(|(name, s)| (name.clone(), value_schema(s, false)))
                        .collect(),
                ),
                other => other.clone(),
            },
            "items" | "additionalProperties" => value_schema(value, false),
            "allOf" | "oneOf" | "anyOf" => match value {
                Value::Array(branches) => {
                    Value::Array(branches.iter().map(|s| value_schema(s, false)).collect())
                }
                other => other.clone(),
            },
            _ => value.clone(),
        };
        out.insert(key.clone(), value);
    }
    Value::Object(out)
}

const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const DNS1123_LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";

fn is_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// `metadata.name` (and `metadata.namespace`) validation.
pub fn validate_name(name: &str, label_only: bool, field: &str, errors: &mut Vec<FieldError>) {
    if label_only {
        if !is_label(name) {
            errors.push(FieldError::invalid(
                field,
                Value::String(name.to_owned()),
                DNS1123_LABEL_MSG,
            ));
        }
    } else if name.len() > 253 || !name.split('.').all(is_label) {
        errors.push(FieldError::invalid(
            field,
            Value::String(name.to_owned()),
            DNS1123_SUBDOMAIN_MSG,
        ));
    }
}

/// The kind of one field error, as in `k8s.io/apimachinery/pkg/util/validation/field`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldErrorKind {
    Required,
    Invalid,
    TypeInvalid,
    NotSupported,
    Forbidden,
    TooLong,
    TooMany,
    Duplicate,
}

impl FieldErrorKind {
    /// The `reason` of this kind in a `Status` cause (`FieldValueRequired`, ...).
    pub fn reason(self) -> &'static str {
        match self {
            Self::Required => "FieldValueRequired",
            Self::Invalid => "FieldValueInvalid",
            Self::TypeInvalid => "FieldValueTypeInvalid",
            Self::NotSupported => "FieldValueNotSupported",
            Self::Forbidden => "FieldValueForbidden",
            Self::TooLong => "FieldValueTooLong",
            Self::TooMany => "FieldValueTooMany",
            Self::Duplicate => "FieldValueDuplicate",
        }
    }
}

/// One field error (`field.Error`): a path such as `spec.functions[0].code`, the kind, the
/// offending value where the real server prints one, and a detail.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    pub field: String,
    pub kind: FieldErrorKind,
    pub value: Option<Value>,
    pub detail: String,
}

/// Go's `%v`/`%q`-like rendering of a value inside an error message.
pub fn render_value(value: &Value) -> String {
    match value {
        Value::String(s) => serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\"")),
        Value::Null => "null".to_owned(),
        other => other.to_string(),
    }
}

impl FieldError {
    pub fn new(
        field: impl Into<String>,
        kind: FieldErrorKind,
        value: Option<Value>,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            field: field.into(),
            kind,
            value,
            detail: detail.into(),
        }
    }

    pub fn required(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(field, FieldErrorKind::Required, None, detail)
    }

    pub fn invalid(field: impl Into<String>, value: Value, detail: impl Into<String>) -> Self {
        Self::new(field, FieldErrorKind::Invalid, Some(value), detail)
    }

    pub fn forbidden(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(field, FieldErrorKind::Forbidden, None, detail)
    }

    /// The message without the field prefix (`ErrorBody()` in Go).
    pub fn body(&self) -> String {
        let value = self.value.as_ref().map(render_value);
        let mut s = match self.kind {
            FieldErrorKind::Required => "Required value".to_owned(),
            FieldErrorKind::Forbidden => "Forbidden".to_owned(),
            FieldErrorKind::TooLong => "Too long".to_owned(),
            FieldErrorKind::TooMany => match &value {
                Some(v) => format!("Too many: {v}"),
                None => "Too many".to_owned(),
            },
            FieldErrorKind::Duplicate => format!("Duplicate value: {}", value.unwrap_or_default()),
            FieldErrorKind::NotSupported => {
                format!("Unsupported value: {}", value.unwrap_or_default())
            }
            FieldErrorKind::Invalid | FieldErrorKind::TypeInvalid => match &value {
                Some(v) => format!("Invalid value: {v}"),
                None => "Invalid value".to_owned(),
            },
        };
        if !self.detail.is_empty() {
            s.push_str(": ");
            s.push_str(&self.detail);
        }
        s
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}", self.body())
        } else {
            write!(f, "{}: {}", self.field, self.body())
        }
    }
}

/// The `openAPIV3Schema` of the first version of `crd`, as JSON.
pub fn schema_of(
    crd: &k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
) -> Option<Value> {
    let schema = crd
        .spec
        .versions
        .first()?
        .schema
        .as_ref()?
        .open_api_v3_schema
        .as_ref()?;
    serde_json::to_value(schema).ok()
}

/// Every problem with `object` (a whole manifest, as JSON) against `schema` (the CRD version's
/// `openAPIV3Schema`), and the object as the API server would store it (defaults applied,
/// unknown fields pruned). Unknown fields are reported as errors too (kubectl's strict field
/// validation). `old`: the stored object, for transition rules. The CEL rules are compiled once
/// per schema (see [`validate_cel`]).
pub fn check_object(
    schema: &Value,
    object: &Value,
    old: Option<&Value>,
    root: &RootContext,
) -> (Value, Vec<FieldError>) {
    CelRules::cached(schema).check_object(object, old, root)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn float_bounds_are_printed_as_integers() {
        let schema = json!({"type": "integer", "minimum": 1.0, "maximum": 10000.0});
        let mut errors = Vec::new();
        validate(&schema, &json!(0), "spec.batchSize", &mut errors);
        validate(&schema, &json!(10001), "spec.batchSize", &mut errors);
        let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            messages,
            [
                "spec.batchSize: Invalid value: 0: spec.batchSize in body should be greater than or equal to 1",
                "spec.batchSize: Invalid value: 10001: spec.batchSize in body should be less than or equal to 10000",
            ]
        );
    }

    fn schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "required": ["region"],
                    "properties": {
                        "region": {"type": "string", "pattern": "^[a-z]+-[a-z]+-[0-9]$"},
                        "policy": {"type": "string", "enum": ["Delete", "Retain"], "default": "Retain"},
                        "memory": {"type": "integer", "minimum": 128, "maximum": 10240},
                        "tags": {"type": "object", "additionalProperties": {"type": "string", "maxLength": 3}},
                        "items": {"type": "array", "maxItems": 2, "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
                        "code": {
                            "type": "object",
                            "properties": {"s3": {"type": "string"}, "image": {"type": "string"}},
                            "x-kubernetes-validations": [{"rule": "has(self.s3) != has(self.image)", "message": "set exactly one of code.s3 and code.image"}]
                        },
                        "stack": {"type": "string", "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "stack is immutable"}]}
                    }
                }
            }
        })
    }

    #[test]
    fn prunes_unknown_fields_and_applies_defaults() {
        let obj = json!({"apiVersion": "x/v1", "kind": "K", "metadata": {"name": "a", "x": 1}, "spec": {"region": "eu-west-1", "bogus": 1, "memory": null}, "extra": true});
        let out = normalize(&schema(), &obj);
        assert_eq!(
            out,
            json!({"apiVersion": "x/v1", "kind": "K", "metadata": {"name": "a", "x": 1}, "spec": {"region": "eu-west-1", "policy": "Retain"}})
        );
    }

    #[test]
    fn value_validation_messages_match_the_apiserver() {
        let obj = json!({"spec": {"region": "EU", "policy": "Keep", "memory": 64, "tags": {"a": "long"}, "items": ["a", "a", "b"]}});
        let mut errors = Vec::new();
        validate(&schema(), &obj, "", &mut errors);
        let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert!(messages.contains(&"spec.region: Invalid value: \"EU\": spec.region in body should match '^[a-z]+-[a-z]+-[0-9]$'".to_owned()), "{messages:?}");
        assert!(messages.contains(&"spec.policy: Unsupported value: \"Keep\": supported values: \"Delete\", \"Retain\"".to_owned()), "{messages:?}");
        assert!(messages.contains(&"spec.memory: Invalid value: 64: spec.memory in body should be greater than or equal to 128".to_owned()), "{messages:?}");
        assert!(
            messages.contains(&"spec.tags.a: Too long: may not be more than 3 bytes".to_owned()),
            "{messages:?}"
        );
        assert!(
            messages.contains(&"spec.items: Too many: 3: must have at most 2 items".to_owned()),
            "{messages:?}"
        );
        assert!(
            messages.contains(&"spec.items[1]: Duplicate value: \"a\"".to_owned()),
            "{messages:?}"
        );

        let mut errors = Vec::new();
        validate(
            &schema(),
            &json!({"spec": {"memory": "x"}}),
            "",
            &mut errors,
        );
        let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert!(
            messages.contains(&"spec.region: Required value".to_owned()),
            "{messages:?}"
        );
        assert!(messages.contains(&"spec.memory: Invalid value: \"string\": spec.memory in body must be of type integer: \"string\"".to_owned()), "{messages:?}");
    }

    #[test]
    fn cel_rules_and_transition_rules() {
        let root = RootContext::default();
        let mut errors = Vec::new();
        let obj = json!({"spec": {"region": "eu-west-1", "code": {"s3": "a", "image": "b"}, "stack": "new"}});
        validate_cel(&schema(), &obj, None, &root, &mut errors);
        assert_eq!(
            errors.iter().map(ToString::to_string).collect::<Vec<_>>(),
            vec!["spec.code: Invalid value: \"object\": set exactly one of code.s3 and code.image"]
        );
        let mut errors = Vec::new();
        let old = json!({"spec": {"region": "eu-west-1", "code": {"s3": "a"}, "stack": "old"}});
        let new = json!({"spec": {"region": "eu-west-1", "code": {"s3": "a"}, "stack": "new"}});
        validate_cel(&schema(), &new, Some(&old), &root, &mut errors);
        assert_eq!(
            errors.iter().map(ToString::to_string).collect::<Vec<_>>(),
            vec!["spec.stack: Invalid value: \"string\": stack is immutable"]
        );
    }

    #[test]
    fn names() {
        let mut errors = Vec::new();
        validate_name("ok.name-1", false, "metadata.name", &mut errors);
        validate_name("ns-1", true, "metadata.name", &mut errors);
        assert!(errors.is_empty());
        validate_name("Bad_Name", false, "metadata.name", &mut errors);
        assert_eq!(errors.len(), 1);
        assert!(errors[0].to_string().starts_with(
            "metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain"
        ));
    }
}
