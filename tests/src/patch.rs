//! The patch formats: JSON patch (RFC 6902, with the apiserver's missing-path-is-null `test`),
//! JSON merge patch (RFC 7386), strategic merge (approximated, see [`strategic_merge`]). Server-side apply
//! lives in [`crate::fieldmanager`].

use serde_json::{Map, Value};

/// The patch type named by the request's `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    Json,
    Merge,
    Strategic,
    Apply,
}

impl PatchType {
    pub fn from_content_type(ct: &str) -> Option<Self> {
        let base = ct.split(';').next().unwrap_or_default().trim();
        match base {
            "application/json-patch+json" => Some(Self::Json),
            "application/merge-patch+json" => Some(Self::Merge),
            "application/strategic-merge-patch+json" => Some(Self::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+json" => Some(Self::Apply),
            _ => None,
        }
    }
}

/// Applies a JSON patch. A `test` whose path does not exist compares against `null`, as the
/// apiserver's json-patch library does (kube's finalizer helper relies on it).
/// Errors carry the message of a 422 response.
pub fn json_patch(doc: &Value, patch: &Value) -> Result<Value, String> {
    let ops: Vec<json_patch::PatchOperation> =
        serde_json::from_value(patch.clone()).map_err(|e| {
            format!("the server rejected our request due to an error in our request: {e}")
        })?;
    let mut out = doc.clone();
    for op in &ops {
        if let json_patch::PatchOperation::Test(test) = op {
            let actual = out.pointer(test.path.as_str()).unwrap_or(&Value::Null);
            if *actual != test.value {
                return Err(format!(
                    "the server rejected our request due to an error in our request: testing value {} failed: test failed",
                    test.path.as_str()
                ));
            }
            continue;
        }
        json_patch::patch(&mut out, std::slice::from_ref(op)).map_err(|e| {
            format!("the server rejected our request due to an error in our request: {e}")
        })?;
    }
    Ok(out)
}

/// RFC 7386 merge patch.
pub fn merge_patch(doc: &Value, patch: &Value) -> Value {
    let mut out = doc.clone();
    json_patch::merge(&mut out, patch);
    out
}

/// Removes strategic-merge directives (`$patch`, `$setElementOrder/...`, `$retainKeys`,
/// `$deleteFromPrimitiveList/...`) so the rest can be applied as a merge patch.
fn strip_directives(v: &mut Value) {
    match v {
        Value::Object(map) => {
            map.retain(|k, _| !k.starts_with('$'));
            for child in map.values_mut() {
                strip_directives(child);
            }
        }
        Value::Array(items) => {
            for item in items {
                strip_directives(item);
            }
        }
        _ => {}
    }
}

/// Strategic merge patch, phase 1: a merge patch after dropping the directives (lists are
/// replaced as a whole rather than merged by their patch merge keys).
pub fn strategic_merge(doc: &Value, patch: &Value) -> Value {
    let mut patch = patch.clone();
    strip_directives(&mut patch);
    merge_patch(doc, &patch)
}

/// Parses a request body: JSON, or YAML for `application/yaml` and apply patches.
pub fn parse_body(bytes: &[u8], yaml_allowed: bool) -> Result<Value, String> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(v) => Ok(v),
        Err(json_err) if yaml_allowed => {
            let text = std::str::from_utf8(bytes).map_err(|e| e.to_string())?;
            serde_saphyr::from_str::<Value>(text).map_err(|e| format!("{json_err}; as YAML: {e}"))
        }
        Err(e) => Err(e.to_string()),
    }
}

/// Removes keys whose value is `null` from every map (merge semantics of applied configs).
pub fn without_nulls(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), without_nulls(v)))
                .collect::<Map<_, _>>(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_patch_test_on_missing_path_compares_with_null() {
        let doc = json!({"metadata": {"name": "a"}});
        let patch = json!([
            {"op": "test", "path": "/metadata/finalizers", "value": null},
            {"op": "add", "path": "/metadata/finalizers", "value": ["x"]}
        ]);
        assert_eq!(
            json_patch(&doc, &patch).unwrap(),
            json!({"metadata": {"name": "a", "finalizers": ["x"]}})
        );
        let failing = json!([{"op": "test", "path": "/metadata/name", "value": null}]);
        assert!(json_patch(&doc, &failing).is_err());
        let remove_missing = json!([{"op": "remove", "path": "/metadata/labels"}]);
        assert!(json_patch(&doc, &remove_missing).is_err());
    }

    #[test]
    fn merge_and_apply() {
        let doc = json!({"spec": {"a": 1, "b": [1, 2]}, "metadata": {"finalizers": ["x"]}});
        assert_eq!(
            merge_patch(&doc, &json!({"spec": {"a": null, "b": [3]}})),
            json!({"spec": {"b": [3]}, "metadata": {"finalizers": ["x"]}})
        );
        assert_eq!(
            strategic_merge(&doc, &json!({"$setElementOrder/x": [], "spec": {"a": 5}})),
            json!({"spec": {"a": 5, "b": [1, 2]}, "metadata": {"finalizers": ["x"]}})
        );
    }

    #[test]
    fn bodies() {
        assert_eq!(parse_body(b"a: 1\n", true).unwrap(), json!({"a": 1}));
        assert!(parse_body(b"a: 1\n", false).is_err());
    }
}
