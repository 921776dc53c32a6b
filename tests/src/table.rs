//! Server-side printing: `meta.k8s.io/v1` Tables from a CRD's `additionalPrinterColumns`, with
//! the small JSONPath subset printer columns use (`.a.b`, `.a[0]`, `.a[*].b`,
//! `.a[?(@.type=="Ready")].status`).

use serde_json::{Value, json};

use crate::registry::ResourceType;

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Field(String),
    Index(usize),
    All,
    Filter {
        path: Vec<String>,
        op_eq: bool,
        value: Value,
    },
}

fn parse_filter(expr: &str) -> Option<Step> {
    // ?(@.type=="Ready")
    let inner = expr.strip_prefix("?(")?.strip_suffix(')')?.trim();
    let (lhs, op_eq, rhs) = if let Some((l, r)) = inner.split_once("==") {
        (l, true, r)
    } else {
        let (l, r) = inner.split_once("!=")?;
        (l, false, r)
    };
    let lhs = lhs.trim().strip_prefix('@')?;
    let path = lhs
        .split('.')
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect();
    let rhs = rhs.trim();
    let value = if let Some(s) = rhs
        .strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .or_else(|| rhs.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')))
    {
        Value::String(s.to_owned())
    } else {
        serde_json::from_str(rhs).ok()?
    };
    Some(Step::Filter { path, op_eq, value })
}

/// Parses a JSONPath such as `.status.conditions[?(@.type=="Ready")].status` (with or without
/// the surrounding `{}`); `None` if it uses features outside the subset.
fn parse(path: &str) -> Option<Vec<Step>> {
    let p = path.trim();
    let p = p
        .strip_prefix('{')
        .and_then(|r| r.strip_suffix('}'))
        .unwrap_or(p);
    let p = p.strip_prefix('$').unwrap_or(p);
    let mut steps = Vec::new();
    let chars: Vec<char> = p.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '.' => {
                let start = i + 1;
                let mut j = start;
                while j < chars.len() && chars[j] != '.' && chars[j] != '[' {
                    j += 1;
                }
                let name: String = chars[start..j].iter().collect();
                if !name.is_empty() {
                    steps.push(if name == "*" {
                        Step::All
                    } else {
                        Step::Field(name)
                    });
                }
                i = j;
            }
            '[' => {
                let mut depth = 0;
                let mut j = i;
                while j < chars.len() {
                    match chars[j] {
                        '[' => depth += 1,
                        ']' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                    j += 1;
                }
                let inner: String = chars.get(i + 1..j)?.iter().collect();
                let inner = inner.trim();
                let step = if inner == "*" {
                    Step::All
                } else if let Ok(n) = inner.parse::<usize>() {
                    Step::Index(n)
                } else if inner.starts_with('?') {
                    parse_filter(inner)?
                } else {
                    Step::Field(inner.trim_matches(|c| c == '\'' || c == '"').to_owned())
                };
                steps.push(step);
                i = j + 1;
            }
            _ => return None,
        }
    }
    Some(steps)
}

fn get_path<'a>(v: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(v, |cur, k| cur.get(k))
}

/// Evaluates the JSONPath subset; returns every match.
pub fn eval(path: &str, root: &Value) -> Vec<Value> {
    let Some(steps) = parse(path) else {
        return Vec::new();
    };
    let mut current = vec![root];
    for step in &steps {
        let mut next = Vec::new();
        for v in current {
            match step {
                Step::Field(name) => next.extend(v.get(name)),
                Step::Index(i) => next.extend(v.get(*i)),
                Step::All => match v {
                    Value::Array(a) => next.extend(a.iter()),
                    Value::Object(o) => next.extend(o.values()),
                    _ => {}
                },
                Step::Filter { path, op_eq, value } => {
                    if let Value::Array(a) = v {
                        next.extend(
                            a.iter()
                                .filter(|item| (get_path(item, path) == Some(value)) == *op_eq),
                        );
                    }
                }
            }
        }
        current = next;
    }
    current.into_iter().cloned().collect()
}

/// `HumanDuration` of `k8s.io/apimachinery/pkg/util/duration`.
pub fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".to_owned();
    }
    let s = seconds.max(0);
    if s < 60 * 2 {
        return format!("{s}s");
    }
    let minutes = s / 60;
    if minutes < 10 {
        let rem = s % 60;
        return if rem == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{rem}s")
        };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = s / 3600;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    let days = hours / 24;
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{days}d")
        } else {
            format!("{days}d{h}h")
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{days}d");
    }
    let years = days / 365;
    if hours < 24 * 365 * 8 {
        let d = days % 365;
        return if d == 0 {
            format!("{years}y")
        } else {
            format!("{years}y{d}d")
        };
    }
    format!("{years}y")
}

fn age(timestamp: &str) -> Value {
    match timestamp.parse::<jiff::Timestamp>() {
        Ok(t) => Value::String(human_duration(
            jiff::Timestamp::now().as_second() - t.as_second(),
        )),
        Err(_) => Value::String("<unknown>".to_owned()),
    }
}

/// What the Table rows carry in `object` (`includeObject`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncludeObject {
    None,
    Metadata,
    Object,
}

impl IncludeObject {
    pub fn parse(s: Option<&str>) -> Self {
        match s {
            Some("None") => Self::None,
            Some("Object") => Self::Object,
            _ => Self::Metadata,
        }
    }
}

fn cell(column_type: &str, results: &[Value]) -> Value {
    let Some(first) = results.first() else {
        return Value::Null;
    };
    match (column_type, first) {
        ("date", Value::String(s)) => age(s),
        ("string", Value::String(_))
        | ("integer" | "number", Value::Number(_))
        | ("boolean", Value::Bool(_)) => first.clone(),
        ("string", other) => Value::String(other.to_string()),
        _ => first.clone(),
    }
}

/// Renders objects as a `Table`.
pub fn render(
    rt: &ResourceType,
    items: &[Value],
    resource_version: Option<String>,
    continue_token: Option<String>,
    include: IncludeObject,
) -> Value {
    let mut columns = vec![json!({
        "name": "Name", "type": "string", "format": "name", "priority": 0,
        "description": "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names"
    })];
    let printer = if rt.printer_columns.is_empty() {
        vec![crate::registry::PrinterColumn {
            name: "Age".to_owned(),
            type_: "date".to_owned(),
            format: String::new(),
            description: "CreationTimestamp is a timestamp representing the server time when this object was created.".to_owned(),
            priority: 0,
            json_path: ".metadata.creationTimestamp".to_owned(),
        }]
    } else {
        rt.printer_columns.clone()
    };
    for c in &printer {
        columns.push(json!({
            "name": c.name, "type": c.type_, "format": c.format,
            "description": c.description, "priority": c.priority
        }));
    }
    let rows: Vec<Value> = items
        .iter()
        .map(|obj| {
            let mut cells = vec![
                obj.pointer("/metadata/name")
                    .cloned()
                    .unwrap_or(Value::Null),
            ];
            for c in &printer {
                cells.push(cell(&c.type_, &eval(&c.json_path, obj)));
            }
            let mut row = json!({"cells": cells});
            let object = match include {
                IncludeObject::None => None,
                IncludeObject::Metadata => Some(json!({
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
                })),
                IncludeObject::Object => Some(obj.clone()),
            };
            if let (Some(o), Some(r)) = (object, row.as_object_mut()) {
                r.insert("object".to_owned(), o);
            }
            row
        })
        .collect();
    let mut metadata = serde_json::Map::new();
    if let Some(rv) = resource_version {
        metadata.insert("resourceVersion".to_owned(), Value::String(rv));
    }
    if let Some(c) = continue_token {
        metadata.insert("continue".to_owned(), Value::String(c));
    }
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": columns,
        "rows": rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonpath_subset() {
        let obj = json!({"status": {"conditions": [
            {"type": "Reconciling", "status": "False"},
            {"type": "Ready", "status": "True", "reason": "InSync"}
        ], "n": 3}, "spec": {"items": [{"a": 1}, {"a": 2}]}});
        assert_eq!(
            eval(".status.conditions[?(@.type==\"Ready\")].status", &obj),
            vec![json!("True")]
        );
        assert_eq!(eval(".status.n", &obj), vec![json!(3)]);
        assert_eq!(eval(".spec.items[*].a", &obj), vec![json!(1), json!(2)]);
        assert_eq!(eval(".spec.items[1].a", &obj), vec![json!(2)]);
        assert_eq!(
            eval("{.status.conditions[0].type}", &obj),
            vec![json!("Reconciling")]
        );
        assert!(eval(".status.missing", &obj).is_empty());
    }

    #[test]
    fn durations() {
        assert_eq!(human_duration(5), "5s");
        assert_eq!(human_duration(150), "2m30s");
        assert_eq!(human_duration(3600 * 5 + 60), "5h1m");
        assert_eq!(human_duration(86400 * 3), "3d");
    }
}
