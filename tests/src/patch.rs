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

/// How a list of a built-in kind merges in a strategic merge patch (`patchStrategy` in the Go
/// types). Every list of the built-in kinds stored here is atomic except these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ListMerge {
    /// Replaced as a whole.
    Replace,
    /// A list of primitives merged as a union (`metadata.finalizers`).
    Primitives,
    /// A list of objects merged by a key (`metadata.ownerReferences` by `uid`).
    ByKey(&'static str),
}

fn list_merge(path: &[&str]) -> ListMerge {
    match path {
        ["metadata", "finalizers"] => ListMerge::Primitives,
        ["metadata", "ownerReferences"] => ListMerge::ByKey("uid"),
        _ => ListMerge::Replace,
    }
}

/// Strategic merge patch for the built-in kinds stored here (Namespaces, ConfigMaps, Secrets,
/// Events, Leases): maps merge recursively and `null` deletes; `$patch: replace` / `$patch:
/// delete` in a map replace or delete it; `metadata.finalizers` merges as a set (with
/// `$deleteFromPrimitiveList/finalizers`), `metadata.ownerReferences` by `uid` (items with
/// `$patch: delete` are removed, a `{"$patch": "replace"}` item replaces the list); other lists
/// are replaced. `$setElementOrder/...` and `$retainKeys` are accepted and ignored (order of
/// merged lists: live items first, then new ones). Custom resources do not get here: the
/// server answers 415 for them, as the real one does.
pub fn strategic_merge(doc: &Value, patch: &Value) -> Result<Value, String> {
    let mut out = doc.clone();
    merge_map(&mut out, patch, &mut Vec::new())?;
    Ok(out)
}

fn merge_map(target: &mut Value, patch: &Value, path: &mut Vec<String>) -> Result<(), String> {
    let Some(p) = patch.as_object() else {
        *target = patch.clone();
        return Ok(());
    };
    match p.get("$patch").and_then(Value::as_str) {
        Some("replace") => {
            let mut replaced = p.clone();
            replaced.remove("$patch");
            let mut v = Value::Object(Map::new());
            merge_map(&mut v, &Value::Object(replaced), path)?;
            *target = v;
            return Ok(());
        }
        Some("delete") | None => {}
        Some(other) => return Err(format!("unknown patch type: {other}")),
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    for (k, v) in p {
        if k == "$patch" || k == "$retainKeys" || k.starts_with("$setElementOrder/") {
            continue;
        }
        if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
            let remove = v.as_array().cloned().unwrap_or_default();
            if let Some(Value::Array(items)) = target.get_mut(field) {
                items.retain(|x| !remove.contains(x));
            }
            continue;
        }
        if k.starts_with('$') {
            return Err(format!("unknown directive {k}"));
        }
        let Some(t) = target.as_object_mut() else {
            continue;
        };
        if v.is_null() {
            t.remove(k);
            continue;
        }
        if v.get("$patch").and_then(Value::as_str) == Some("delete") {
            t.remove(k);
            continue;
        }
        path.push(k.clone());
        let refs: Vec<&str> = path.iter().map(String::as_str).collect();
        let strategy = list_merge(&refs);
        match (t.get_mut(k), v) {
            (Some(existing), Value::Object(_)) if existing.is_object() => {
                merge_map(existing, v, path)?;
            }
            (existing, Value::Array(items)) if strategy != ListMerge::Replace => {
                let mut merged = match existing {
                    Some(Value::Array(live)) => live.clone(),
                    _ => Vec::new(),
                };
                merge_list(&mut merged, items, strategy, path)?;
                t.insert(k.clone(), Value::Array(merged));
            }
            _ => {
                let mut fresh = Value::Null;
                if v.is_object() {
                    merge_map(&mut fresh, v, path)?;
                } else {
                    fresh = strip_directives(v);
                }
                t.insert(k.clone(), fresh);
            }
        }
        path.pop();
    }
    Ok(())
}

fn merge_list(
    live: &mut Vec<Value>,
    items: &[Value],
    strategy: ListMerge,
    path: &mut Vec<String>,
) -> Result<(), String> {
    if items
        .iter()
        .any(|i| i.get("$patch").and_then(Value::as_str) == Some("replace"))
    {
        *live = items
            .iter()
            .filter(|i| i.get("$patch").is_none())
            .map(strip_directives)
            .collect();
        return Ok(());
    }
    for item in items {
        match strategy {
            ListMerge::Primitives => {
                if !live.contains(item) {
                    live.push(item.clone());
                }
            }
            ListMerge::ByKey(key) => {
                let Some(kv) = item.get(key) else {
                    return Err(format!(
                        "map: {item} does not contain declared merge key: {key}"
                    ));
                };
                let pos = live.iter().position(|l| l.get(key) == Some(kv));
                let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
                match (pos, delete) {
                    (Some(i), true) => {
                        live.remove(i);
                    }
                    (None, true) => {}
                    (Some(i), false) => merge_map(&mut live[i], item, path)?,
                    (None, false) => {
                        let mut fresh = Value::Null;
                        merge_map(&mut fresh, item, path)?;
                        live.push(fresh);
                    }
                }
            }
            ListMerge::Replace => live.push(item.clone()),
        }
    }
    Ok(())
}

/// A value with `$`-directives removed (for values stored as a whole).
fn strip_directives(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !k.starts_with('$'))
                .map(|(k, v)| (k.clone(), strip_directives(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(strip_directives).collect()),
        other => other.clone(),
    }
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
    }

    #[test]
    fn strategic_merge_of_built_in_kinds() {
        let doc = json!({
            "metadata": {"name": "c", "labels": {"a": "1", "b": "2"}, "finalizers": ["x", "y"],
                         "ownerReferences": [{"uid": "u1", "name": "one"}, {"uid": "u2", "name": "two"}]},
            "data": {"k": "v", "l": "w"}, "spec": {"finalizers": ["kubernetes"]},
        });
        let patched = strategic_merge(&doc, &json!({
            "$setElementOrder/x": [],
            "metadata": {"labels": {"a": null, "c": "3"}, "finalizers": ["z"],
                         "$deleteFromPrimitiveList/finalizers": ["x"],
                         "ownerReferences": [{"uid": "u1", "$patch": "delete"}, {"uid": "u2", "name": "deux"}, {"uid": "u3", "name": "three"}]},
            "data": {"$patch": "replace", "n": "new"},
            "spec": {"finalizers": []},
        })).unwrap();
        assert_eq!(
            patched,
            json!({
                "metadata": {"name": "c", "labels": {"b": "2", "c": "3"}, "finalizers": ["y", "z"],
                             "ownerReferences": [{"uid": "u2", "name": "deux"}, {"uid": "u3", "name": "three"}]},
                "data": {"n": "new"}, "spec": {"finalizers": []},
            })
        );
        let deleted = strategic_merge(&doc, &json!({"data": {"$patch": "delete"}})).unwrap();
        assert!(deleted.get("data").is_none());
        let replaced = strategic_merge(
            &doc,
            &json!({"metadata": {"ownerReferences": [{"$patch": "replace"}, {"uid": "u9"}]}}),
        )
        .unwrap();
        assert_eq!(
            replaced["metadata"]["ownerReferences"],
            json!([{"uid": "u9"}])
        );
        assert!(
            strategic_merge(
                &doc,
                &json!({"metadata": {"ownerReferences": [{"name": "no-uid"}]}})
            )
            .is_err()
        );
    }

    #[test]
    fn bodies() {
        assert_eq!(parse_body(b"a: 1\n", true).unwrap(), json!({"a": 1}));
        assert!(parse_body(b"a: 1\n", false).is_err());
    }
}
