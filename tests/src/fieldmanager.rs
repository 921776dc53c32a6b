//! Server-side apply field ownership, modelled on the apiserver's field manager
//! (sigs.k8s.io/structured-merge-diff): field sets, their `FieldsV1` encoding in
//! `metadata.managedFields`, the schema-aware apply merge, conflicts and removal of fields a
//! manager stops applying.
//!
//! Field sets are computed from the OpenAPI schema of the kind: `x-kubernetes-list-type: map`
//! lists are keyed by their `x-kubernetes-list-map-keys` (`k:{...}`), `set` lists by value
//! (`v:...`), other lists are atomic; object keys that are not declared `properties` (labels,
//! ConfigMap data, ...) are map entries and own themselves as well as their children. Built-in
//! kinds, which are stored without a schema here, use a small schema of the `ObjectMeta` parts
//! that matter (labels/annotations maps, finalizers as a set, ownerReferences keyed by uid).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde_json::{Map, Value, json};

use crate::error::ApiError;

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PathElement {
    /// `f:name`.
    Field(String),
    /// `k:{"name":"a"}`: an item of a map-type list; the canonical JSON of its key fields.
    Key(String),
    /// `v:"x"`: an item of a set-type list; its canonical JSON.
    Value(String),
    /// `i:0`: an item of a list addressed by position.
    Index(usize),
}

impl PathElement {
    fn encode(&self) -> String {
        match self {
            Self::Field(f) => format!("f:{f}"),
            Self::Key(k) => format!("k:{k}"),
            Self::Value(v) => format!("v:{v}"),
            Self::Index(i) => format!("i:{i}"),
        }
    }

    fn decode(s: &str) -> Option<Self> {
        let (prefix, rest) = s.split_once(':')?;
        match prefix {
            "f" => Some(Self::Field(rest.to_owned())),
            "k" => serde_json::from_str::<Value>(rest)
                .ok()
                .map(|v| Self::Key(canonical(&v))),
            "v" => serde_json::from_str::<Value>(rest)
                .ok()
                .map(|v| Self::Value(canonical(&v))),
            "i" => rest.parse().ok().map(Self::Index),
            _ => None,
        }
    }
}

/// A field path.
pub type Path = Vec<PathElement>;

/// `.spec.functions[name="a"].memory`, as the apiserver prints paths in conflict messages.
pub fn path_string(path: &[PathElement]) -> String {
    let mut s = String::new();
    for pe in path {
        match pe {
            PathElement::Field(f) => {
                s.push('.');
                s.push_str(f);
            }
            PathElement::Key(k) => {
                let fields = serde_json::from_str::<Value>(k)
                    .ok()
                    .and_then(|v| v.as_object().cloned())
                    .unwrap_or_default();
                let parts: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
                let _ = write!(s, "[{}]", parts.join(","));
            }
            PathElement::Value(v) => {
                let _ = write!(s, "[={v}]");
            }
            PathElement::Index(i) => {
                let _ = write!(s, "[{i}]");
            }
        }
    }
    s
}

/// JSON with object keys sorted, compact: the form keys and set values are compared in.
pub fn canonical(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let sorted: BTreeMap<&String, &Value> = m.iter().collect();
            let parts: Vec<String> = sorted
                .into_iter()
                .map(|(k, v)| format!("{}:{}", Value::String(k.clone()), canonical(v)))
                .collect();
            format!("{{{}}}", parts.join(","))
        }
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(canonical).collect::<Vec<_>>().join(",")
        ),
        other => other.to_string(),
    }
}

/// A set of field paths (the members; a member's ancestors are implied containers).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSet(pub BTreeSet<Path>);

impl FieldSet {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, p: &[PathElement]) -> bool {
        self.0.contains(p)
    }

    /// Whether `p` or anything below it is a member.
    pub fn contains_prefix(&self, p: &[PathElement]) -> bool {
        self.0.iter().any(|m| m.starts_with(p))
    }

    #[must_use]
    pub fn union(&self, other: &Self) -> Self {
        Self(self.0.union(&other.0).cloned().collect())
    }

    #[must_use]
    pub fn difference(&self, other: &Self) -> Self {
        Self(self.0.difference(&other.0).cloned().collect())
    }

    #[must_use]
    pub fn intersection(&self, other: &Self) -> Self {
        Self(self.0.intersection(&other.0).cloned().collect())
    }

    /// The `fieldsV1` tree.
    pub fn to_fields_v1(&self) -> Value {
        #[derive(Default)]
        struct Node {
            member: bool,
            children: BTreeMap<String, Node>,
        }
        fn render(n: &Node) -> Value {
            let mut m = Map::new();
            if n.member && !n.children.is_empty() {
                m.insert(".".to_owned(), json!({}));
            }
            for (k, c) in &n.children {
                m.insert(k.clone(), render(c));
            }
            Value::Object(m)
        }
        let mut root = Node::default();
        for path in &self.0 {
            let mut node = &mut root;
            for pe in path {
                node = node.children.entry(pe.encode()).or_default();
            }
            node.member = true;
        }
        render(&root)
    }

    /// Parses a `fieldsV1` tree; unparseable entries are skipped.
    pub fn from_fields_v1(v: &Value) -> Self {
        fn walk(v: &Value, path: &mut Path, out: &mut BTreeSet<Path>) {
            let Some(m) = v.as_object() else { return };
            for (k, child) in m {
                if k == "." {
                    if !path.is_empty() {
                        out.insert(path.clone());
                    }
                    continue;
                }
                let Some(pe) = PathElement::decode(k) else {
                    continue;
                };
                path.push(pe);
                if child.as_object().is_none_or(Map::is_empty) {
                    out.insert(path.clone());
                } else {
                    walk(child, path, out);
                }
                path.pop();
            }
        }
        let mut out = BTreeSet::new();
        walk(v, &mut Vec::new(), &mut out);
        Self(out)
    }
}

/// The schema used for `metadata` of every kind (the parts with merge semantics).
fn object_meta_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "name": {"type": "string"}, "namespace": {"type": "string"},
            "generateName": {"type": "string"},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
            "finalizers": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
            "ownerReferences": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["uid"],
                "items": {"type": "object", "properties": {"apiVersion": {}, "kind": {}, "name": {}, "uid": {}, "controller": {}, "blockOwnerDeletion": {}}}},
        }
    })
}

/// A schema for the built-in kinds stored without one: declared top-level fields, granular
/// `data`-like maps, everything else untyped (object keys are map entries, lists atomic).
pub fn builtin_schema() -> Value {
    let string_map = json!({"type": "object", "additionalProperties": {"type": "string"}});
    json!({
        "type": "object",
        "properties": {
            "apiVersion": {"type": "string"}, "kind": {"type": "string"},
            "metadata": object_meta_schema(),
            "data": string_map, "binaryData": string_map, "stringData": string_map,
            "type": {"type": "string"}, "immutable": {"type": "boolean"},
            "spec": {"type": "object", "properties": {
                "holderIdentity": {}, "leaseDurationSeconds": {}, "acquireTime": {}, "renewTime": {},
                "leaseTransitions": {}, "strategy": {}, "preferredHolder": {},
                "finalizers": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
            }},
            "status": {"type": "object"},
        }
    })
}

/// A schema node and whether the key was a declared property.
fn child<'a>(schema: Option<&'a Value>, key: &str, root: bool) -> (Option<&'a Value>, bool) {
    let Some(s) = schema else {
        return (None, false);
    };
    if let Some(p) = s.get("properties").and_then(|p| p.get(key)) {
        return (Some(p), true);
    }
    if root && key == "metadata" {
        return (None, true);
    }
    match s.get("additionalProperties") {
        Some(ap) if ap.is_object() => (Some(ap), false),
        _ => (None, false),
    }
}

/// How a list is merged.
enum ListType<'a> {
    Atomic,
    Set,
    Map(Vec<&'a str>),
}

fn list_type(schema: Option<&Value>) -> ListType<'_> {
    let Some(s) = schema else {
        return ListType::Atomic;
    };
    match s.get("x-kubernetes-list-type").and_then(Value::as_str) {
        Some("set") => ListType::Set,
        Some("map") => ListType::Map(
            s.get("x-kubernetes-list-map-keys")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default(),
        ),
        _ => ListType::Atomic,
    }
}

fn items(schema: Option<&Value>) -> Option<&Value> {
    schema.and_then(|s| s.get("items"))
}

fn is_atomic_map(schema: Option<&Value>) -> bool {
    schema
        .and_then(|s| s.get("x-kubernetes-map-type"))
        .and_then(Value::as_str)
        == Some("atomic")
}

/// The path element of a list item.
fn item_element(lt: &ListType<'_>, item: &Value, index: usize) -> PathElement {
    match lt {
        ListType::Set => PathElement::Value(canonical(item)),
        ListType::Map(keys) => {
            let mut k = Map::new();
            for key in keys {
                if let Some(v) = item.get(*key) {
                    k.insert((*key).to_owned(), v.clone());
                }
            }
            if k.is_empty() {
                PathElement::Index(index)
            } else {
                PathElement::Key(canonical(&Value::Object(k)))
            }
        }
        ListType::Atomic => PathElement::Index(index),
    }
}

/// Replaces `metadata`'s schema with [`object_meta_schema`] at the root.
pub fn effective_schema(schema: Option<&Value>) -> Value {
    let mut s = schema.cloned().unwrap_or_else(builtin_schema);
    if let Some(props) = s
        .as_object_mut()
        .map(|o| o.entry("properties").or_insert_with(|| json!({})))
        .and_then(Value::as_object_mut)
    {
        props.insert("metadata".to_owned(), object_meta_schema());
    }
    s
}

/// The set of fields an object (or an applied configuration) sets.
pub fn field_set(schema: &Value, obj: &Value) -> FieldSet {
    fn walk(schema: Option<&Value>, v: &Value, path: &mut Path, out: &mut BTreeSet<Path>) {
        match v {
            Value::Object(m) => {
                if is_atomic_map(schema) {
                    out.insert(path.clone());
                    return;
                }
                for (k, cv) in m {
                    let (cs, declared) = child(schema, k, false);
                    path.push(PathElement::Field(k.clone()));
                    walk(cs, cv, path, out);
                    if cv.is_null() || cv.as_object().is_some_and(Map::is_empty) || !declared {
                        out.insert(path.clone());
                    }
                    path.pop();
                }
            }
            Value::Array(a) => {
                let lt = list_type(schema);
                if matches!(lt, ListType::Atomic) {
                    out.insert(path.clone());
                    return;
                }
                for (i, item) in a.iter().enumerate() {
                    path.push(item_element(&lt, item, i));
                    if matches!(lt, ListType::Map(_)) {
                        walk(items(schema), item, path, out);
                    }
                    out.insert(path.clone());
                    path.pop();
                }
            }
            _ => {
                out.insert(path.clone());
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(Some(schema), obj, &mut Vec::new(), &mut out);
    FieldSet(out)
}

/// The value at a path.
pub fn value_at<'a>(obj: &'a Value, path: &[PathElement]) -> Option<&'a Value> {
    let mut cur = obj;
    for pe in path {
        cur = match pe {
            PathElement::Field(f) => cur.get(f)?,
            PathElement::Index(i) => cur.get(*i)?,
            PathElement::Value(v) => cur.as_array()?.iter().find(|x| canonical(x) == *v)?,
            PathElement::Key(k) => {
                let key: Map<String, Value> = serde_json::from_str(k).ok()?;
                cur.as_array()?
                    .iter()
                    .find(|x| key.iter().all(|(kk, kv)| x.get(kk) == Some(kv)))?
            }
        };
    }
    Some(cur)
}

/// Removes the value at a path (a map entry or a list item); a missing path is left alone.
pub fn remove_at(obj: &mut Value, path: &[PathElement]) {
    let Some((last, parent_path)) = path.split_last() else {
        return;
    };
    let mut cur = obj;
    for pe in parent_path {
        let next = match pe {
            PathElement::Field(f) => cur.get_mut(f),
            PathElement::Index(i) => cur.get_mut(*i),
            PathElement::Value(_) | PathElement::Key(_) => {
                let pos = value_at(cur, std::slice::from_ref(pe)).and_then(|target| {
                    cur.as_array()
                        .and_then(|a| a.iter().position(|x| std::ptr::eq(x, target)))
                });
                match pos {
                    Some(p) => cur.get_mut(p),
                    None => None,
                }
            }
        };
        match next {
            Some(n) => cur = n,
            None => return,
        }
    }
    match last {
        PathElement::Field(f) => {
            if let Some(o) = cur.as_object_mut() {
                o.remove(f);
            }
        }
        PathElement::Index(_) => {}
        pe @ (PathElement::Value(_) | PathElement::Key(_)) => {
            let pos = value_at(cur, std::slice::from_ref(pe)).and_then(|target| {
                cur.as_array()
                    .and_then(|a| a.iter().position(|x| std::ptr::eq(x, target)))
            });
            if let (Some(p), Some(a)) = (pos, cur.as_array_mut()) {
                a.remove(p);
            }
        }
    }
}

/// Merges an applied configuration into the live object: maps recursively, map-type lists by
/// key, sets as a union, atomic lists and scalars replaced.
pub fn apply_merge(schema: &Value, live: &Value, applied: &Value) -> Value {
    fn merge(schema: Option<&Value>, live: &mut Value, applied: &Value) {
        match (live, applied) {
            (Value::Object(l), Value::Object(a)) if !is_atomic_map(schema) => {
                for (k, av) in a {
                    let (cs, _) = child(schema, k, false);
                    match l.get_mut(k) {
                        Some(lv) => merge(cs, lv, av),
                        None => {
                            l.insert(k.clone(), av.clone());
                        }
                    }
                }
            }
            (Value::Array(l), Value::Array(a)) => match list_type(schema) {
                ListType::Set => {
                    for v in a {
                        if !l.contains(v) {
                            l.push(v.clone());
                        }
                    }
                }
                lt @ ListType::Map(_) => {
                    for (i, av) in a.iter().enumerate() {
                        let pe = item_element(&lt, av, i);
                        let pos = l
                            .iter()
                            .enumerate()
                            .position(|(j, lv)| item_element(&lt, lv, j) == pe);
                        match pos {
                            Some(p) => merge(items(schema), &mut l[p], av),
                            None => l.push(av.clone()),
                        }
                    }
                }
                ListType::Atomic => l.clone_from(a),
            },
            (l, a) => *l = a.clone(),
        }
    }
    let mut out = live.clone();
    merge(Some(schema), &mut out, applied);
    out
}

/// Fields the apiserver never tracks (`apiVersion`, `kind`, identity and server-set metadata).
fn is_stripped(p: &[PathElement]) -> bool {
    let f = |s: &str| PathElement::Field(s.to_owned());
    if p.len() == 1 {
        return [f("apiVersion"), f("kind"), f("metadata")].contains(&p[0]);
    }
    p.len() >= 2
        && p[0] == f("metadata")
        && [
            "name",
            "namespace",
            "uid",
            "resourceVersion",
            "generation",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "managedFields",
            "selfLink",
        ]
        .iter()
        .any(|n| p[1] == f(n))
}

/// Which part of an object a write may own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The main resource of a kind without a status subresource: everything.
    Whole,
    /// The main resource of a kind with a status subresource: everything but `.status`.
    Main,
    /// The `/status` subresource: `.status` only.
    Status,
}

impl Scope {
    #[must_use]
    pub fn restrict(self, set: FieldSet) -> FieldSet {
        let status = PathElement::Field("status".to_owned());
        FieldSet(
            set.0
                .into_iter()
                .filter(|p| !is_stripped(p))
                .filter(|p| match self {
                    Self::Whole => true,
                    Self::Main => p.first() != Some(&status),
                    Self::Status => p.first() == Some(&status),
                })
                .collect(),
        )
    }

    fn subresource(self) -> Option<&'static str> {
        (self == Self::Status).then_some("status")
    }
}

/// One `metadata.managedFields` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct ManagedEntry {
    pub manager: String,
    /// `Apply` or `Update`.
    pub operation: String,
    pub api_version: String,
    pub time: String,
    pub subresource: Option<String>,
    pub fields: FieldSet,
}

impl ManagedEntry {
    fn same_identity(&self, other: &Self) -> bool {
        self.manager == other.manager
            && self.operation == other.operation
            && self.subresource == other.subresource
            && (self.operation == "Apply" || self.api_version == other.api_version)
    }

    fn to_json(&self) -> Value {
        let mut v = json!({
            "manager": self.manager,
            "operation": self.operation,
            "apiVersion": self.api_version,
            "time": self.time,
            "fieldsType": "FieldsV1",
            "fieldsV1": self.fields.to_fields_v1(),
        });
        if let (Some(s), Some(o)) = (&self.subresource, v.as_object_mut()) {
            o.insert("subresource".to_owned(), Value::String(s.clone()));
        }
        v
    }

    /// How the apiserver names a manager in conflict messages.
    fn describe(&self) -> String {
        let mut s = format!("{:?}", self.manager);
        if let Some(sub) = &self.subresource {
            let _ = write!(s, " with subresource {sub:?}");
        }
        if self.operation == "Update" {
            let _ = write!(s, " using {}", self.api_version);
        }
        s
    }
}

/// The managed fields of an object.
pub fn read_managed(obj: &Value) -> Vec<ManagedEntry> {
    obj.pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|e| {
                    Some(ManagedEntry {
                        manager: e.get("manager")?.as_str()?.to_owned(),
                        operation: e.get("operation")?.as_str()?.to_owned(),
                        api_version: e
                            .get("apiVersion")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned(),
                        time: e
                            .get("time")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned(),
                        subresource: e
                            .get("subresource")
                            .and_then(Value::as_str)
                            .map(str::to_owned),
                        fields: FieldSet::from_fields_v1(e.get("fieldsV1").unwrap_or(&Value::Null)),
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Writes managed fields into an object (removing the key when there are none).
pub fn write_managed(obj: &mut Value, entries: &[ManagedEntry]) {
    let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    if entries.is_empty() {
        meta.remove("managedFields");
    } else {
        meta.insert(
            "managedFields".to_owned(),
            Value::Array(entries.iter().map(ManagedEntry::to_json).collect()),
        );
    }
}

/// Whether two entry lists are the same but for timestamps.
pub fn same_ignoring_time(a: &[ManagedEntry], b: &[ManagedEntry]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            x.manager == y.manager
                && x.operation == y.operation
                && x.api_version == y.api_version
                && x.subresource == y.subresource
                && x.fields == y.fields
        })
}

fn upsert(entries: &mut Vec<ManagedEntry>, entry: ManagedEntry) {
    match entries.iter_mut().find(|e| e.same_identity(&entry)) {
        Some(e) => *e = entry,
        None => entries.push(entry),
    }
    entries.retain(|e| !e.fields.is_empty());
}

/// A leaf-level difference at `p` between two objects (containers compare by their children).
fn differs(old: &Value, new: &Value, p: &[PathElement]) -> bool {
    match (value_at(old, p), value_at(new, p)) {
        (Some(Value::Object(_)), Some(Value::Object(_))) => false,
        (a, b) => a != b,
    }
}

/// Ownership after an Update operation (create, PUT, non-apply PATCH): `manager` takes every
/// field it added or changed, from everyone; fields that disappeared are nobody's any more.
#[allow(clippy::too_many_arguments)]
pub fn update(
    schema: &Value,
    scope: Scope,
    old: Option<&Value>,
    new: &Value,
    entries: &[ManagedEntry],
    manager: &str,
    api_version: &str,
    time: &str,
) -> Vec<ManagedEntry> {
    let new_set = scope.restrict(field_set(schema, new));
    let old_set = old.map_or_else(FieldSet::default, |o| scope.restrict(field_set(schema, o)));
    let added = new_set.difference(&old_set);
    let removed = old_set.difference(&new_set);
    let modified = FieldSet(
        new_set
            .intersection(&old_set)
            .0
            .into_iter()
            .filter(|p| old.is_some_and(|o| differs(o, new, p)))
            .collect(),
    );
    let taken = added.union(&modified);
    let mut out: Vec<ManagedEntry> = entries
        .iter()
        .map(|e| ManagedEntry {
            fields: e.fields.difference(&taken).difference(&removed),
            ..e.clone()
        })
        .collect();
    let mine = ManagedEntry {
        manager: manager.to_owned(),
        operation: "Update".to_owned(),
        api_version: api_version.to_owned(),
        time: time.to_owned(),
        subresource: scope.subresource().map(str::to_owned),
        fields: FieldSet::default(),
    };
    let previous = entries
        .iter()
        .find(|e| e.same_identity(&mine))
        .map(|e| e.fields.difference(&removed))
        .unwrap_or_default();
    if taken.is_empty() {
        // Nothing changed hands: keep this manager's entry (and its time) as it was.
        out.retain(|e| !e.fields.is_empty());
        return out;
    }
    upsert(
        &mut out,
        ManagedEntry {
            fields: previous.union(&taken),
            ..mine
        },
    );
    out
}

/// The result of an apply: the object to admit and the new managed fields.
#[derive(Debug, Clone)]
pub struct Applied {
    pub object: Value,
    pub entries: Vec<ManagedEntry>,
}

/// Server-side apply of `applied` (nulls already removed) by `manager` over `live`.
#[allow(clippy::too_many_arguments)]
pub fn apply(
    schema: &Value,
    scope: Scope,
    live: &Value,
    applied: &Value,
    entries: &[ManagedEntry],
    manager: &str,
    force: bool,
    api_version: &str,
    time: &str,
) -> Result<Applied, ApiError> {
    let applied_set = scope.restrict(field_set(schema, applied));
    let mut merged = apply_merge(schema, live, applied);
    let mine = ManagedEntry {
        manager: manager.to_owned(),
        operation: "Apply".to_owned(),
        api_version: api_version.to_owned(),
        time: time.to_owned(),
        subresource: scope.subresource().map(str::to_owned),
        fields: applied_set.clone(),
    };
    let mut conflicts: Vec<(&ManagedEntry, Path)> = Vec::new();
    for e in entries.iter().filter(|e| !e.same_identity(&mine)) {
        for p in &e.fields.intersection(&applied_set).0 {
            if differs(live, &merged, p) {
                conflicts.push((e, p.clone()));
            }
        }
    }
    if !conflicts.is_empty() && !force {
        return Err(conflict_error(&conflicts));
    }
    let lost: BTreeMap<usize, FieldSet> =
        conflicts.iter().fold(BTreeMap::new(), |mut m, (e, p)| {
            let idx = entries
                .iter()
                .position(|x| std::ptr::eq(x, *e))
                .unwrap_or(0);
            m.entry(idx)
                .or_insert_with(FieldSet::default)
                .0
                .insert(p.clone());
            m
        });
    let mut out: Vec<ManagedEntry> = entries
        .iter()
        .enumerate()
        .map(|(i, e)| match lost.get(&i) {
            Some(l) => ManagedEntry {
                fields: e.fields.difference(l),
                ..e.clone()
            },
            None => e.clone(),
        })
        .collect();
    // Fields this manager applied before and no longer does go, unless someone else owns them.
    let previous = entries
        .iter()
        .find(|e| e.same_identity(&mine))
        .map(|e| e.fields.clone())
        .unwrap_or_default();
    let others: FieldSet = out
        .iter()
        .filter(|e| !e.same_identity(&mine))
        .fold(FieldSet::default(), |acc, e| acc.union(&e.fields));
    let dropped = previous.difference(&applied_set);
    let removable: Vec<&Path> = dropped
        .0
        .iter()
        .filter(|p| !others.contains_prefix(p) && !applied_set.contains_prefix(p))
        .collect();
    // Remove outermost paths only (their descendants go with them).
    for p in &removable {
        let covered = removable
            .iter()
            .any(|q| q.len() < p.len() && p.starts_with(q));
        if !covered {
            remove_at(&mut merged, p);
            // Containers this removal emptied go too, unless someone owns them as such.
            for len in (1..p.len()).rev() {
                let parent = &p[..len];
                let emptied = value_at(&merged, parent).is_some_and(|v| {
                    v.as_object().is_some_and(Map::is_empty)
                        || v.as_array().is_some_and(Vec::is_empty)
                });
                if !emptied || others.contains(parent) || applied_set.contains_prefix(parent) {
                    break;
                }
                remove_at(&mut merged, parent);
            }
        }
    }
    upsert(&mut out, mine);
    Ok(Applied {
        object: merged,
        entries: out,
    })
}

/// 409 Conflict as the apiserver words it.
fn conflict_error(conflicts: &[(&ManagedEntry, Path)]) -> ApiError {
    let causes: Vec<Value> = conflicts
        .iter()
        .map(|(e, p)| {
            json!({
                "reason": "FieldManagerConflict",
                "message": format!("conflict with {}", e.describe()),
                "field": path_string(p),
            })
        })
        .collect();
    let message = if let [(e, p)] = conflicts {
        format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            e.describe(),
            path_string(p)
        )
    } else {
        let mut by_manager: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (e, p) in conflicts {
            by_manager
                .entry(e.describe())
                .or_default()
                .push(path_string(p));
        }
        let mut lines = Vec::new();
        for (m, paths) in by_manager {
            lines.push(format!("conflicts with {m}:"));
            lines.extend(paths.into_iter().map(|p| format!("- {p}")));
        }
        format!(
            "Apply failed with {} conflicts: {}",
            conflicts.len(),
            lines.join("\n")
        )
    };
    ApiError::new(409, "Conflict", message).with_details(json!({"causes": causes}))
}

/// The manager of a non-apply write: the `fieldManager` parameter, else the User-Agent up to
/// its first `/` (as the apiserver does: `kubectl/v1.32.0 (...)` → `kubectl`).
pub fn default_manager(param: Option<&str>, user_agent: Option<&str>) -> String {
    if let Some(p) = param.filter(|p| !p.is_empty()) {
        return p.to_owned();
    }
    let prefix: String = user_agent
        .unwrap_or_default()
        .split('/')
        .next()
        .unwrap_or_default()
        .chars()
        .take(128)
        .collect();
    if prefix.is_empty() {
        "unknown".to_owned()
    } else {
        prefix
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Value {
        effective_schema(Some(&json!({
            "type": "object",
            "properties": {
                "spec": {"type": "object", "properties": {
                    "capacity": {"type": "integer"},
                    "tags": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
                    "args": {"type": "array", "items": {"type": "string"}},
                    "functions": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                        "items": {"type": "object", "properties": {"name": {"type": "string"}, "memory": {"type": "integer"}}}},
                    "env": {"type": "object", "additionalProperties": {"type": "string"}},
                }},
                "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}},
            }
        })))
    }

    fn p(s: &[PathElement]) -> Path {
        s.to_vec()
    }

    fn f(s: &str) -> PathElement {
        PathElement::Field(s.to_owned())
    }

    #[test]
    fn field_sets_follow_list_types_and_encode_as_fields_v1() {
        let obj = json!({
            "apiVersion": "x/v1", "kind": "K",
            "metadata": {"name": "a", "labels": {"app": "x"}, "finalizers": ["f1"]},
            "spec": {"capacity": 3, "tags": ["b", "a"], "args": ["1", "2"],
                     "functions": [{"name": "fa", "memory": 128}], "env": {"A": "1"}},
        });
        let set = Scope::Main.restrict(field_set(&schema(), &obj));
        let key = PathElement::Key(r#"{"name":"fa"}"#.to_owned());
        let expected: BTreeSet<Path> = [
            p(&[f("metadata"), f("labels"), f("app")]),
            p(&[
                f("metadata"),
                f("finalizers"),
                PathElement::Value("\"f1\"".to_owned()),
            ]),
            p(&[f("spec"), f("capacity")]),
            p(&[f("spec"), f("tags"), PathElement::Value("\"a\"".to_owned())]),
            p(&[f("spec"), f("tags"), PathElement::Value("\"b\"".to_owned())]),
            p(&[f("spec"), f("args")]),
            p(&[f("spec"), f("functions"), key.clone()]),
            p(&[f("spec"), f("functions"), key.clone(), f("name")]),
            p(&[f("spec"), f("functions"), key.clone(), f("memory")]),
            p(&[f("spec"), f("env"), f("A")]),
        ]
        .into_iter()
        .collect();
        assert_eq!(set.0, expected);
        let v1 = set.to_fields_v1();
        assert_eq!(
            v1,
            json!({
                "f:metadata": {"f:finalizers": {"v:\"f1\"": {}}, "f:labels": {"f:app": {}}},
                "f:spec": {
                    "f:args": {}, "f:capacity": {}, "f:env": {"f:A": {}},
                    "f:functions": {"k:{\"name\":\"fa\"}": {".": {}, "f:memory": {}, "f:name": {}}},
                    "f:tags": {"v:\"a\"": {}, "v:\"b\"": {}},
                }
            })
        );
        assert_eq!(FieldSet::from_fields_v1(&v1), set);
        assert_eq!(
            path_string(&[f("spec"), f("functions"), key, f("memory")]),
            ".spec.functions[name=\"fa\"].memory"
        );
        // Status is owned only through the subresource.
        let status = Scope::Status.restrict(field_set(
            &schema(),
            &json!({"status": {"ready": true}, "spec": {"capacity": 1}}),
        ));
        assert_eq!(
            status.0.into_iter().collect::<Vec<_>>(),
            vec![p(&[f("status"), f("ready")])]
        );
    }

    #[test]
    fn apply_merges_by_list_type() {
        let live = json!({"spec": {"tags": ["a"], "args": ["1"], "functions": [{"name": "fa", "memory": 1}, {"name": "fb", "memory": 2}]}});
        let applied = json!({"spec": {"tags": ["b"], "args": ["2"], "functions": [{"name": "fb", "memory": 3}, {"name": "fc"}]}});
        assert_eq!(
            apply_merge(&schema(), &live, &applied),
            json!({"spec": {"tags": ["a", "b"], "args": ["2"], "functions": [{"name": "fa", "memory": 1}, {"name": "fb", "memory": 3}, {"name": "fc"}]}})
        );
    }

    #[test]
    fn conflicts_force_and_removal_of_unapplied_fields() {
        let s = schema();
        let t = "2026-01-01T00:00:00Z";
        let obj = |spec: Value| json!({"apiVersion": "x/v1", "kind": "K", "metadata": {"name": "a"}, "spec": spec});
        // An Update manager sets capacity and a label.
        let created = obj(json!({"capacity": 1, "env": {"A": "1"}}));
        let entries = update(
            &s,
            Scope::Main,
            None,
            &created,
            &[],
            "kubectl-client-side-apply",
            "x/v1",
            t,
        );
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].operation, "Update");
        // An applier setting the same value shares it; a different value conflicts.
        let shared = apply(
            &s,
            Scope::Main,
            &created,
            &obj(json!({"capacity": 1})),
            &entries,
            "ops",
            false,
            "x/v1",
            t,
        )
        .unwrap();
        assert_eq!(shared.entries.len(), 2);
        let err = apply(
            &s,
            Scope::Main,
            &created,
            &obj(json!({"capacity": 2})),
            &entries,
            "ops",
            false,
            "x/v1",
            t,
        )
        .unwrap_err();
        assert_eq!((err.code, err.reason), (409, "Conflict"));
        assert_eq!(
            err.message,
            "Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" using x/v1: .spec.capacity"
        );
        let details = err.details.unwrap();
        assert_eq!(details["causes"][0]["reason"], "FieldManagerConflict");
        assert_eq!(details["causes"][0]["field"], ".spec.capacity");
        let err = apply(
            &s,
            Scope::Main,
            &created,
            &obj(json!({"capacity": 2, "env": {"A": "2"}})),
            &entries,
            "ops",
            false,
            "x/v1",
            t,
        )
        .unwrap_err();
        assert!(err.message.starts_with("Apply failed with 2 conflicts: conflicts with \"kubectl-client-side-apply\" using x/v1:\n- .spec.capacity\n- .spec.env.A"), "{}", err.message);
        // Forced: ownership moves.
        let forced = apply(
            &s,
            Scope::Main,
            &created,
            &obj(json!({"capacity": 2})),
            &entries,
            "ops",
            true,
            "x/v1",
            t,
        )
        .unwrap();
        assert_eq!(forced.object["spec"]["capacity"], 2);
        let ops = forced.entries.iter().find(|e| e.manager == "ops").unwrap();
        let csa = forced.entries.iter().find(|e| e.manager != "ops").unwrap();
        assert!(ops.fields.contains(&[f("spec"), f("capacity")]));
        assert!(!csa.fields.contains(&[f("spec"), f("capacity")]));
        assert!(csa.fields.contains(&[f("spec"), f("env"), f("A")]));
        // ops stops applying capacity: nobody owns it any more, so it goes; env stays (csa's).
        let after = apply(
            &s,
            Scope::Main,
            &forced.object,
            &obj(json!({"env": {"B": "1"}})),
            &forced.entries,
            "ops",
            false,
            "x/v1",
            t,
        )
        .unwrap();
        assert_eq!(after.object["spec"], json!({"env": {"A": "1", "B": "1"}}));
        // A field someone else still owns stays when one co-owner stops applying it.
        let a1 = apply(
            &s,
            Scope::Main,
            &after.object,
            &obj(json!({"env": {"B": "1"}})),
            &after.entries,
            "other",
            false,
            "x/v1",
            t,
        )
        .unwrap();
        let a2 = apply(
            &s,
            Scope::Main,
            &a1.object,
            &obj(json!({})),
            &a1.entries,
            "ops",
            false,
            "x/v1",
            t,
        )
        .unwrap();
        assert_eq!(a2.object["spec"]["env"]["B"], "1");
        // Removing a keyed list item by no longer applying it.
        let with_fn = apply(
            &s,
            Scope::Main,
            &a2.object,
            &obj(json!({"functions": [{"name": "fa", "memory": 1}]})),
            &a2.entries,
            "ops",
            false,
            "x/v1",
            t,
        )
        .unwrap();
        assert_eq!(with_fn.object["spec"]["functions"][0]["name"], "fa");
        let without = apply(
            &s,
            Scope::Main,
            &with_fn.object,
            &obj(json!({})),
            &with_fn.entries,
            "ops",
            false,
            "x/v1",
            t,
        )
        .unwrap();
        assert_eq!(without.object["spec"].get("functions"), None);
    }

    #[test]
    fn update_takes_changed_fields_from_other_managers() {
        let s = schema();
        let t = "2026-01-01T00:00:00Z";
        let v1 = json!({"spec": {"capacity": 1, "args": ["a"]}});
        let entries = apply(
            &s,
            Scope::Main,
            &json!({}),
            &v1,
            &[],
            "ops",
            false,
            "x/v1",
            t,
        )
        .unwrap()
        .entries;
        let v2 = json!({"spec": {"capacity": 2, "args": ["a"]}});
        let entries = update(
            &s,
            Scope::Main,
            Some(&v1),
            &v2,
            &entries,
            "kubectl-edit",
            "x/v1",
            t,
        );
        let ops = entries.iter().find(|e| e.manager == "ops").unwrap();
        let edit = entries
            .iter()
            .find(|e| e.manager == "kubectl-edit")
            .unwrap();
        assert!(!ops.fields.contains(&[f("spec"), f("capacity")]));
        assert!(ops.fields.contains(&[f("spec"), f("args")]));
        assert!(edit.fields.contains(&[f("spec"), f("capacity")]));
        assert_eq!(
            default_manager(None, Some("kubectl/v1.32.0 (linux/amd64)")),
            "kubectl"
        );
        assert_eq!(
            default_manager(Some("kubectl-edit"), Some("kubectl/v1")),
            "kubectl-edit"
        );
    }
}
