//! The in-memory store: one global monotonic resourceVersion, objects keyed by
//! (group, version, plural, namespace, name), a bounded event history per collection for watch
//! resumption, and the write semantics of the real apiserver (generation, `/status`, no-op
//! writes, finalizers, CRD registration, schema + CEL admission of custom objects).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt::Write as _;
use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::error::{ApiError, FieldError};
use crate::fieldmanager;
use crate::patch::{self, PatchType};
use crate::registry::{CRD_GROUP, Gvr, Registry, ResourceType};
use crate::schema;
use crate::selectors::Selectors;

/// The kind of a stored change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Added,
    Modified,
    Deleted,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Added => "ADDED",
            Self::Modified => "MODIFIED",
            Self::Deleted => "DELETED",
        }
    }
}

/// One change in a collection's history.
#[derive(Debug, Clone)]
pub struct Event {
    pub rv: u64,
    pub kind: EventKind,
    pub object: Arc<Value>,
    /// The object before the change (for selector transitions in watches).
    pub prev: Option<Arc<Value>>,
}

#[derive(Debug, Default)]
struct Collection {
    objects: BTreeMap<(String, String), Value>,
    history: VecDeque<Event>,
    /// Events with a resourceVersion up to this one are no longer in `history`.
    compacted_through: u64,
}

/// Options of a write request.
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    pub dry_run: bool,
    pub field_manager: Option<String>,
    pub force: bool,
    /// `fieldValidation=Strict`: unknown fields are a 400 instead of being pruned silently.
    pub strict: bool,
    /// The request's `User-Agent`: names the manager of non-apply writes without `fieldManager`.
    pub user_agent: Option<String>,
}

impl WriteOptions {
    /// The field manager of a non-apply write.
    pub fn update_manager(&self) -> String {
        fieldmanager::default_manager(self.field_manager.as_deref(), self.user_agent.as_deref())
    }
}

/// How a write changes field ownership.
#[derive(Debug, Clone)]
enum Ownership {
    /// Create, PUT, non-apply PATCH: the request's manager takes what changed.
    Update,
    /// Server-side apply: the entries were computed with the merged object.
    Applied(Vec<fieldmanager::ManagedEntry>),
}

fn scope(rt: &ResourceType, status: bool) -> fieldmanager::Scope {
    match (rt.status_subresource, status) {
        (_, true) => fieldmanager::Scope::Status,
        (true, false) => fieldmanager::Scope::Main,
        (false, false) => fieldmanager::Scope::Whole,
    }
}

fn ownership_schema(rt: &ResourceType) -> Value {
    fieldmanager::effective_schema(rt.schema.as_deref())
}

/// Result of a list.
#[derive(Debug, Clone)]
pub struct ListResult {
    pub items: Vec<Value>,
    pub resource_version: u64,
    pub continue_token: Option<String>,
    pub remaining: Option<usize>,
}

/// Where a watch starts.
#[derive(Debug, Clone)]
pub struct WatchStart {
    pub initial: Vec<Value>,
    pub last_rv: u64,
    pub expired: bool,
}

/// What a watch sees when it polls its collection.
#[derive(Debug, Clone, Default)]
pub struct WatchPoll {
    pub events: Vec<Event>,
    pub last_rv: u64,
    pub expired: bool,
    pub closed: bool,
}

/// Parses a resourceVersion string.
pub fn parse_rv(s: &str) -> Result<u64, ApiError> {
    s.parse::<u64>()
        .map_err(|_| ApiError::bad_request(format!("invalid resource version: {s:?}")))
}

/// `2026-11-25T12:00:00Z`.
pub fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn new_uid() -> String {
    let b: [u8; 16] = rand::random();
    let hex = b.iter().fold(String::new(), |mut s, x| {
        let _ = write!(s, "{x:02x}");
        s
    });
    format!(
        "{}-{}-4{}-{:x}{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        (b[8] & 0x3) | 0x8,
        &hex[17..20],
        &hex[20..32]
    )
}

fn random_suffix() -> String {
    const CHARS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..5)
        .map(|_| char::from(CHARS[rand::random_range(0..CHARS.len())]))
        .collect()
}

fn meta(obj: &Value) -> Option<&Map<String, Value>> {
    obj.get("metadata").and_then(Value::as_object)
}

fn meta_str<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    meta(obj).and_then(|m| m.get(key)).and_then(Value::as_str)
}

fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.get("metadata").is_some_and(Value::is_object)
        && let Some(o) = obj.as_object_mut()
    {
        o.insert("metadata".to_owned(), Value::Object(Map::new()));
    }
    match obj.get_mut("metadata") {
        Some(Value::Object(m)) => m,
        _ => unreachable!("metadata was just made an object"),
    }
}

fn finalizers(obj: &Value) -> Vec<String> {
    meta(obj)
        .and_then(|m| m.get("finalizers"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// The object without `metadata` and `status`: what `generation` tracks.
fn spec_part(obj: &Value) -> Value {
    let mut v = obj.clone();
    if let Some(o) = v.as_object_mut() {
        o.remove("metadata");
        o.remove("status");
        o.remove("apiVersion");
        o.remove("kind");
    }
    v
}

const SERVER_META: &[&str] = &[
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
    "managedFields",
    "selfLink",
];

fn ns_key(rt: &ResourceType, ns: Option<&str>) -> String {
    if rt.namespaced {
        ns.unwrap_or_default().to_owned()
    } else {
        String::new()
    }
}

fn namespaces_gvr() -> Gvr {
    Gvr::new("", "v1", "namespaces")
}

/// The store. All methods are synchronous; the HTTP layer holds it in a mutex and wakes
/// watchers after writes.
#[derive(Debug)]
pub struct Store {
    rv: u64,
    registry: Registry,
    collections: HashMap<Gvr, Collection>,
    history_limit: usize,
    /// Bumped to end every open watch (test hook, shutdown).
    epoch: u64,
    closed: bool,
}

impl Store {
    pub fn new(history_limit: usize) -> Self {
        let mut store = Self {
            rv: 1,
            registry: Registry::with_builtins(),
            collections: HashMap::new(),
            history_limit: history_limit.max(1),
            epoch: 0,
            closed: false,
        };
        let ns = store
            .registry
            .get(&namespaces_gvr())
            .expect("namespaces are built in");
        for name in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            let obj = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
            store
                .create(&ns, None, obj, &WriteOptions::default())
                .expect("initial namespaces are valid");
        }
        store
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    pub fn resource_version(&self) -> u64 {
        self.rv
    }

    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Ends every open watch; the server is going away.
    pub fn close(&mut self) {
        self.closed = true;
        self.epoch += 1;
    }

    /// Test hook: forgets every collection's history and ends every open watch, so that a
    /// client resuming from any version it has seen gets `410 Expired`.
    pub fn expire_history(&mut self) {
        self.rv += 1;
        let rv = self.rv;
        for c in self.collections.values_mut() {
            c.history.clear();
            c.compacted_through = rv;
        }
        self.epoch += 1;
    }

    fn collection(&self, gvr: &Gvr) -> Option<&Collection> {
        self.collections.get(gvr)
    }

    fn collection_mut(&mut self, gvr: &Gvr) -> &mut Collection {
        self.collections.entry(gvr.clone()).or_default()
    }

    fn record(&mut self, gvr: &Gvr, kind: EventKind, object: Value, prev: Option<Value>) {
        let rv = self.rv;
        let limit = self.history_limit;
        let c = self.collection_mut(gvr);
        c.history.push_back(Event {
            rv,
            kind,
            object: Arc::new(object),
            prev: prev.map(Arc::new),
        });
        while c.history.len() > limit {
            if let Some(e) = c.history.pop_front() {
                c.compacted_through = e.rv;
            }
        }
    }

    fn next_rv(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }

    pub fn get(&self, rt: &ResourceType, ns: Option<&str>, name: &str) -> Result<Value, ApiError> {
        self.collection(&rt.gvr)
            .and_then(|c| c.objects.get(&(ns_key(rt, ns), name.to_owned())))
            .cloned()
            .ok_or_else(|| ApiError::not_found(&rt.gvr.plural, &rt.gvr.group, name))
    }

    pub fn list(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        selectors: &Selectors,
        limit: Option<usize>,
        continue_token: Option<&str>,
    ) -> Result<ListResult, ApiError> {
        let start = match continue_token.filter(|t| !t.is_empty()) {
            Some(t) => {
                let (ns, name) = t.split_once('/').ok_or_else(|| {
                    ApiError::bad_request(format!("invalid continue token {t:?}"))
                })?;
                Some((ns.to_owned(), name.to_owned()))
            }
            None => None,
        };
        let matching = self
            .collection(&rt.gvr)
            .into_iter()
            .flat_map(|c| c.objects.iter())
            .filter(|((ons, _), _)| !rt.namespaced || ns.is_none_or(|n| n == ons))
            .filter(|(k, _)| start.as_ref().is_none_or(|s| *k > s))
            .filter(|(_, v)| selectors.matches(v));
        let limit = limit.filter(|l| *l > 0);
        let mut items = Vec::new();
        let mut last_key = None;
        let mut remaining = 0usize;
        for (k, v) in matching {
            if limit.is_some_and(|l| items.len() >= l) {
                remaining += 1;
                continue;
            }
            items.push(v.clone());
            last_key = Some(k.clone());
        }
        let (continue_token, remaining) = match last_key {
            Some((ns, name)) if remaining > 0 => (Some(format!("{ns}/{name}")), Some(remaining)),
            _ => (None, None),
        };
        Ok(ListResult {
            items,
            resource_version: self.rv,
            continue_token,
            remaining,
        })
    }

    /// Where a watch begins: `rv` none means "start with ADDED events for everything that
    /// exists" (legacy watch without a version, or a streaming list).
    pub fn watch_start(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        rv: Option<u64>,
        send_initial: bool,
    ) -> WatchStart {
        let c = self.collection(&rt.gvr);
        if let Some(rv) = rv.filter(|_| !send_initial)
            && rv != 0
        {
            let expired = c.is_some_and(|c| rv < c.compacted_through);
            return WatchStart {
                initial: Vec::new(),
                last_rv: rv,
                expired,
            };
        }
        let initial = c
            .into_iter()
            .flat_map(|c| c.objects.iter())
            .filter(|((ons, _), _)| !rt.namespaced || ns.is_none_or(|n| n == ons))
            .map(|(_, v)| v.clone())
            .collect();
        WatchStart {
            initial,
            last_rv: self.rv,
            expired: false,
        }
    }

    pub fn watch_poll(&self, gvr: &Gvr, last_rv: u64, epoch: u64) -> WatchPoll {
        if self.closed || self.epoch != epoch || self.registry.get(gvr).is_none() {
            return WatchPoll {
                closed: true,
                last_rv,
                ..WatchPoll::default()
            };
        }
        let Some(c) = self.collection(gvr) else {
            return WatchPoll {
                last_rv: self.rv.max(last_rv),
                ..WatchPoll::default()
            };
        };
        if last_rv < c.compacted_through {
            return WatchPoll {
                expired: true,
                last_rv,
                ..WatchPoll::default()
            };
        }
        let events: Vec<Event> = c
            .history
            .iter()
            .filter(|e| e.rv > last_rv)
            .cloned()
            .collect();
        WatchPoll {
            events,
            last_rv: self.rv.max(last_rv),
            expired: false,
            closed: false,
        }
    }

    fn check_type_meta(rt: &ResourceType, obj: &mut Value) -> Result<(), ApiError> {
        let api_version = rt.api_version();
        let o = obj
            .as_object_mut()
            .ok_or_else(|| ApiError::bad_request("the body of the request must be an object"))?;
        if let Some(av) = o.get("apiVersion").and_then(Value::as_str)
            && av != api_version
        {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({av}) does not match the expected API version ({api_version})"
            )));
        }
        if let Some(kind) = o.get("kind").and_then(Value::as_str)
            && kind != rt.kind
        {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({kind}) does not match the expected kind ({})",
                rt.kind
            )));
        }
        o.insert("apiVersion".to_owned(), Value::String(api_version));
        o.insert("kind".to_owned(), Value::String(rt.kind.clone()));
        Ok(())
    }

    /// Schema defaults/pruning/validation and CEL rules for custom objects, CRD checks for CRDs,
    /// name validation for everything.
    fn admit(
        rt: &ResourceType,
        obj: Value,
        old: Option<&Value>,
        errors_in: Vec<FieldError>,
        strict: bool,
    ) -> Result<Value, ApiError> {
        let mut errors = errors_in;
        let name = meta_str(&obj, "name").unwrap_or_default().to_owned();
        let is_namespace = rt.gvr == namespaces_gvr();
        if old.is_none() {
            schema::validate_name(&name, is_namespace, "metadata.name", &mut errors);
        }
        let obj = match &rt.schema {
            Some(s) => {
                let normalized = schema::normalize(s, &obj);
                if strict {
                    let mut unknown = Vec::new();
                    schema::unknown_fields(&obj, &normalized, "", &mut unknown);
                    if !unknown.is_empty() {
                        let list = unknown
                            .iter()
                            .map(|f| format!("unknown field \"{f}\""))
                            .collect::<Vec<_>>()
                            .join(", ");
                        return Err(ApiError::bad_request(format!(
                            "{kind} in version \"{version}\" cannot be handled as a {kind}: strict decoding error: {list}",
                            kind = rt.kind,
                            version = rt.gvr.version
                        )));
                    }
                }
                let mut schema_errors = Vec::new();
                schema::validate(s, &normalized, "", &mut schema_errors);
                if schema_errors.is_empty() {
                    let root = kube::core::cel::RootContext {
                        api_version: rt.api_version(),
                        api_group: rt.gvr.group.clone(),
                        kind: rt.kind.clone(),
                    };
                    let old_normalized = old.map(|o| schema::normalize(s, o));
                    let old = old_normalized.as_ref();
                    // The CRD's rules, compiled when it was registered.
                    match &rt.cel_rules {
                        Some(rules) => rules.validate(&normalized, old, &root, &mut errors),
                        None => schema::validate_cel(s, &normalized, old, &root, &mut errors),
                    }
                }
                errors.extend(schema_errors);
                normalized
            }
            None => obj,
        };
        if rt.gvr.group == CRD_GROUP
            && rt.gvr.plural == "customresourcedefinitions"
            && let Err(e) = crate::registry::types_from_crd(&obj)
        {
            errors.extend(e);
        }
        if errors.is_empty() {
            Ok(obj)
        } else {
            Err(ApiError::invalid(&rt.kind, &rt.gvr.group, &name, &errors))
        }
    }

    fn is_crd(rt: &ResourceType) -> bool {
        rt.gvr.group == CRD_GROUP && rt.gvr.plural == "customresourcedefinitions"
    }

    /// What the apiextensions controllers would write into a CRD's status.
    fn crd_status(crd: &Value, old_status: Option<&Value>) -> Value {
        let names = crd
            .pointer("/spec/names")
            .cloned()
            .unwrap_or_else(|| json!({}));
        let mut accepted = names.clone();
        if let Some(a) = accepted.as_object_mut() {
            let kind = names
                .get("kind")
                .and_then(Value::as_str)
                .unwrap_or_default();
            a.entry("listKind")
                .or_insert_with(|| Value::String(format!("{kind}List")));
            a.entry("singular")
                .or_insert_with(|| Value::String(kind.to_lowercase()));
        }
        let conditions = old_status
            .and_then(|s| s.get("conditions"))
            .cloned()
            .unwrap_or_else(|| {
                let t = now();
                json!([
                    {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found", "lastTransitionTime": t},
                    {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted", "lastTransitionTime": t}
                ])
            });
        let stored: Vec<Value> = crd
            .pointer("/spec/versions")
            .and_then(Value::as_array)
            .map(|vs| {
                vs.iter()
                    .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
                    .filter_map(|v| v.get("name").cloned())
                    .collect()
            })
            .unwrap_or_default();
        json!({"acceptedNames": accepted, "conditions": conditions, "storedVersions": stored})
    }

    fn register_crd(&mut self, crd: &Value) {
        if let Ok(types) = crate::registry::types_from_crd(crd) {
            let name = meta_str(crd, "name").unwrap_or_default().to_owned();
            self.registry.remove_crd(&name);
            for t in types {
                self.registry.insert(t);
            }
        }
    }

    /// Built-in fields the real server fills in on create.
    fn builtin_defaults(rt: &ResourceType, obj: &mut Value) {
        if rt.gvr == namespaces_gvr() {
            let name = meta_str(obj, "name").unwrap_or_default().to_owned();
            let labels = meta_mut(obj)
                .entry("labels")
                .or_insert_with(|| Value::Object(Map::new()));
            if let Some(l) = labels.as_object_mut() {
                l.insert(
                    "kubernetes.io/metadata.name".to_owned(),
                    Value::String(name),
                );
            }
            if let Some(o) = obj.as_object_mut() {
                o.entry("spec")
                    .or_insert_with(|| json!({"finalizers": ["kubernetes"]}));
                o.insert("status".to_owned(), json!({"phase": "Active"}));
            }
        }
    }

    pub fn create(
        &mut self,
        rt: &Arc<ResourceType>,
        ns: Option<&str>,
        body: Value,
        opts: &WriteOptions,
    ) -> Result<Value, ApiError> {
        self.create_with(rt, ns, body, opts, Ownership::Update)
    }

    fn create_with(
        &mut self,
        rt: &Arc<ResourceType>,
        ns: Option<&str>,
        body: Value,
        opts: &WriteOptions,
        ownership: Ownership,
    ) -> Result<Value, ApiError> {
        let mut obj = body;
        Self::check_type_meta(rt, &mut obj)?;
        let m = meta_mut(&mut obj);
        if rt.namespaced {
            let path_ns = ns.unwrap_or("default");
            if let Some(body_ns) = m.get("namespace").and_then(Value::as_str)
                && !body_ns.is_empty()
                && body_ns != path_ns
            {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            m.insert("namespace".to_owned(), Value::String(path_ns.to_owned()));
        } else {
            m.remove("namespace");
        }
        let mut errors = Vec::new();
        let mut name = m
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        if name.is_empty() {
            match m.get("generateName").and_then(Value::as_str) {
                Some(prefix) if !prefix.is_empty() => {
                    name = format!("{prefix}{}", random_suffix());
                    m.insert("name".to_owned(), Value::String(name.clone()));
                }
                _ => errors.push(FieldError::required(
                    "metadata.name",
                    "name or generateName is required",
                )),
            }
        }
        for k in SERVER_META {
            m.remove(*k);
        }
        let ns_name = if rt.namespaced {
            let n = ns.unwrap_or("default").to_owned();
            let ns_rt = self.registry.get(&namespaces_gvr());
            if let Some(ns_rt) = ns_rt
                && self.get(&ns_rt, None, &n).is_err()
            {
                return Err(ApiError::not_found("namespaces", "", &n));
            }
            n
        } else {
            String::new()
        };
        if !errors.is_empty() {
            return Err(ApiError::invalid(&rt.kind, &rt.gvr.group, &name, &errors));
        }
        if self
            .collection(&rt.gvr)
            .is_some_and(|c| c.objects.contains_key(&(ns_name.clone(), name.clone())))
        {
            return Err(ApiError::already_exists(
                &rt.gvr.plural,
                &rt.gvr.group,
                &name,
            ));
        }
        if rt.status_subresource
            && let Some(o) = obj.as_object_mut()
        {
            o.remove("status");
        }
        Self::builtin_defaults(rt, &mut obj);
        let m = meta_mut(&mut obj);
        m.insert("uid".to_owned(), Value::String(new_uid()));
        m.insert("creationTimestamp".to_owned(), Value::String(now()));
        if rt.uses_generation {
            m.insert("generation".to_owned(), Value::from(1));
        }
        let mut obj = Self::admit(rt, obj, None, Vec::new(), opts.strict)?;
        if Self::is_crd(rt) {
            let status = Self::crd_status(&obj, None);
            if let Some(o) = obj.as_object_mut() {
                o.insert("status".to_owned(), status);
            }
        }
        let entries = match ownership {
            Ownership::Applied(entries) => entries,
            Ownership::Update => fieldmanager::update(
                &ownership_schema(rt),
                scope(rt, false),
                None,
                &obj,
                &[],
                &opts.update_manager(),
                &rt.api_version(),
                &now(),
            ),
        };
        fieldmanager::write_managed(&mut obj, &entries);
        if opts.dry_run {
            return Ok(obj);
        }
        let rv = self.next_rv();
        meta_mut(&mut obj).insert("resourceVersion".to_owned(), Value::String(rv.to_string()));
        self.collection_mut(&rt.gvr)
            .objects
            .insert((ns_name, name), obj.clone());
        self.record(&rt.gvr, EventKind::Added, obj.clone(), None);
        if Self::is_crd(rt) {
            self.register_crd(&obj);
        }
        Ok(obj)
    }

    /// PUT of the main resource (`status == false`) or of `/status`.
    pub fn update(
        &mut self,
        rt: &Arc<ResourceType>,
        ns: Option<&str>,
        name: &str,
        body: Value,
        status: bool,
        opts: &WriteOptions,
    ) -> Result<Value, ApiError> {
        let old = self.get(rt, ns, name)?;
        let mut body = body;
        Self::check_type_meta(rt, &mut body)?;
        if let Some(body_name) = meta_str(&body, "name")
            && body_name != name
        {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        match meta_str(&body, "resourceVersion").filter(|s| !s.is_empty()) {
            Some(rv) if Some(rv) != meta_str(&old, "resourceVersion") => {
                return Err(ApiError::stale(&rt.gvr.plural, &rt.gvr.group, name));
            }
            None if !rt.unconditional_update => {
                return Err(ApiError::invalid(
                    &rt.kind,
                    &rt.gvr.group,
                    name,
                    &[FieldError::invalid(
                        "metadata.resourceVersion",
                        Value::String("0x0".to_owned()),
                        "must be specified for an update",
                    )],
                ));
            }
            _ => {}
        }
        self.finish_update(rt, ns, name, &old, body, status, opts, Ownership::Update)
    }

    /// Brings a candidate object (a PUT body or a patched copy of the live object) into the
    /// shape the main resource or `/status` write may store, then admits and commits it.
    #[allow(clippy::too_many_arguments)]
    fn finish_update(
        &mut self,
        rt: &Arc<ResourceType>,
        ns: Option<&str>,
        name: &str,
        old: &Value,
        candidate: Value,
        status: bool,
        opts: &WriteOptions,
        ownership: Ownership,
    ) -> Result<Value, ApiError> {
        let mut new = if status {
            let mut n = old.clone();
            if let Some(o) = n.as_object_mut() {
                match candidate.get("status") {
                    Some(s) => {
                        o.insert("status".to_owned(), s.clone());
                    }
                    None => {
                        o.remove("status");
                    }
                }
            }
            n
        } else {
            let mut n = candidate;
            Self::check_type_meta(rt, &mut n)?;
            let old_meta = meta(old).cloned().unwrap_or_default();
            let m = meta_mut(&mut n);
            for k in SERVER_META
                .iter()
                .copied()
                .chain(["name", "namespace"])
                .filter(|k| *k != "resourceVersion" && *k != "managedFields")
            {
                match old_meta.get(k) {
                    Some(v) => {
                        m.insert(k.to_owned(), v.clone());
                    }
                    None => {
                        m.remove(k);
                    }
                }
            }
            m.remove("managedFields");
            m.remove("selfLink");
            if rt.status_subresource
                && let Some(o) = n.as_object_mut()
            {
                match old.get("status") {
                    Some(s) => {
                        o.insert("status".to_owned(), s.clone());
                    }
                    None => {
                        o.remove("status");
                    }
                }
            }
            n
        };
        let mut errors = Vec::new();
        if meta(old).is_some_and(|m| m.contains_key("deletionTimestamp")) {
            let before = finalizers(old);
            let added: Vec<String> = finalizers(&new)
                .into_iter()
                .filter(|f| !before.contains(f))
                .collect();
            if !added.is_empty() {
                errors.push(FieldError::forbidden(
                    "metadata.finalizers",
                    format!(
                        "no new finalizers can be added if the object is being deleted, found new finalizers []string{{{}}}",
                        added
                            .iter()
                            .map(|f| format!("{f:?}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
        }
        let old_rv = meta_str(old, "resourceVersion")
            .unwrap_or_default()
            .to_owned();
        meta_mut(&mut new).insert("resourceVersion".to_owned(), Value::String(old_rv));
        let mut new = Self::admit(rt, new, Some(old), errors, opts.strict)?;
        if Self::is_crd(rt) && !status {
            let s = Self::crd_status(&new, old.get("status"));
            if let Some(o) = new.as_object_mut() {
                o.insert("status".to_owned(), s);
            }
        }
        if rt.uses_generation {
            let gen_old = meta(old)
                .and_then(|m| m.get("generation"))
                .and_then(Value::as_i64)
                .unwrap_or(1);
            let generation = if spec_part(old) == spec_part(&new) {
                gen_old
            } else {
                gen_old + 1
            };
            meta_mut(&mut new).insert("generation".to_owned(), Value::from(generation));
        }
        let old_entries = fieldmanager::read_managed(old);
        let entries = match ownership {
            Ownership::Applied(entries) => entries,
            Ownership::Update => fieldmanager::update(
                &ownership_schema(rt),
                scope(rt, status),
                Some(old),
                &new,
                &old_entries,
                &opts.update_manager(),
                &rt.api_version(),
                &now(),
            ),
        };
        if fieldmanager::same_ignoring_time(&entries, &old_entries) {
            // Nothing changed hands: the timestamps stay (no-op writes stay no-ops).
            match old.pointer("/metadata/managedFields") {
                Some(mf) => {
                    meta_mut(&mut new).insert("managedFields".to_owned(), mf.clone());
                }
                None => {
                    meta_mut(&mut new).remove("managedFields");
                }
            }
        } else {
            fieldmanager::write_managed(&mut new, &entries);
        }
        if new == *old {
            return Ok(old.clone());
        }
        if opts.dry_run {
            return Ok(new);
        }
        let key = (ns_key(rt, ns), name.to_owned());
        let rv = self.next_rv();
        meta_mut(&mut new).insert("resourceVersion".to_owned(), Value::String(rv.to_string()));
        let deleting = meta(&new).is_some_and(|m| m.contains_key("deletionTimestamp"));
        if deleting && finalizers(&new).is_empty() {
            self.remove(rt, &key, new.clone(), old.clone());
            return Ok(new);
        }
        self.collection_mut(&rt.gvr)
            .objects
            .insert(key, new.clone());
        self.record(&rt.gvr, EventKind::Modified, new.clone(), Some(old.clone()));
        if Self::is_crd(rt) {
            self.register_crd(&new);
        }
        Ok(new)
    }

    /// Removes an object for good (its final state already carries the new resourceVersion).
    fn remove(&mut self, rt: &ResourceType, key: &(String, String), last: Value, prev: Value) {
        let name = meta_str(&last, "name").unwrap_or_default().to_owned();
        self.collection_mut(&rt.gvr).objects.remove(key);
        self.record(&rt.gvr, EventKind::Deleted, last, Some(prev));
        if Self::is_crd(rt) {
            let crd_name = name;
            for gvr in self.registry.remove_crd(&crd_name) {
                self.collections.remove(&gvr);
            }
        }
        if rt.gvr == namespaces_gvr() {
            let ns = key.1.clone();
            let namespaced: Vec<Arc<ResourceType>> = self
                .registry
                .all()
                .filter(|t| t.namespaced)
                .cloned()
                .collect();
            for t in namespaced {
                let names: Vec<String> = self
                    .collection(&t.gvr)
                    .map(|c| {
                        c.objects
                            .keys()
                            .filter(|(n, _)| *n == ns)
                            .map(|(_, name)| name.clone())
                            .collect()
                    })
                    .unwrap_or_default();
                for name in names {
                    // Objects with finalizers stay Terminating, like in a real namespace deletion.
                    let _ = self.delete(&t, Some(&ns), &name, None, &WriteOptions::default());
                }
            }
        }
    }

    /// PATCH of the main resource or `/status`; an apply to a missing object creates it.
    #[allow(clippy::too_many_arguments)]
    pub fn patch(
        &mut self,
        rt: &Arc<ResourceType>,
        ns: Option<&str>,
        name: &str,
        patch_type: PatchType,
        body: &[u8],
        status: bool,
        opts: &WriteOptions,
    ) -> Result<Value, ApiError> {
        let patch = patch::parse_body(body, patch_type == PatchType::Apply)
            .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
        if patch_type == PatchType::Apply {
            if opts.field_manager.as_deref().unwrap_or_default().is_empty() {
                return Err(ApiError::bad_request(
                    "PATCH requests of type apply must have a fieldManager",
                ));
            }
            let mut applied = patch.clone();
            Self::check_type_meta(rt, &mut applied)?;
            if patch.get("apiVersion").is_none() || patch.get("kind").is_none() {
                return Err(ApiError::bad_request(
                    "invalid object type: apiVersion and kind must be set in an applied configuration",
                ));
            }
            if let Some(n) = meta_str(&patch, "name")
                && n != name
            {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({n}) does not match the name on the URL ({name})"
                )));
            }
        }
        let time = now();
        let schema = ownership_schema(rt);
        let old = match self.get(rt, ns, name) {
            Ok(o) => o,
            Err(_) if patch_type == PatchType::Apply && !status => {
                let applied = patch::without_nulls(&patch);
                let result = fieldmanager::apply(
                    &schema,
                    scope(rt, false),
                    &json!({}),
                    &applied,
                    &[],
                    opts.field_manager.as_deref().unwrap_or_default(),
                    opts.force,
                    &rt.api_version(),
                    &time,
                )?;
                let mut obj = result.object;
                meta_mut(&mut obj).insert("name".to_owned(), Value::String(name.to_owned()));
                return self.create_with(rt, ns, obj, opts, Ownership::Applied(result.entries));
            }
            Err(e) => return Err(e),
        };
        let mut ownership = Ownership::Update;
        let candidate = match patch_type {
            PatchType::Json => {
                patch::json_patch(&old, &patch).map_err(|m| ApiError::new(422, "Invalid", m))?
            }
            PatchType::Merge => {
                if !patch.is_object() {
                    return Err(ApiError::bad_request(
                        "error decoding patch: a merge patch must be a JSON object",
                    ));
                }
                patch::merge_patch(&old, &patch)
            }
            PatchType::Strategic => {
                if rt.schema.is_some() {
                    return Err(ApiError::new(
                        415,
                        "UnsupportedMediaType",
                        "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
                    ));
                }
                patch::strategic_merge(&old, &patch)
                    .map_err(|m| ApiError::new(422, "Invalid", m))?
            }
            PatchType::Apply => {
                let applied = patch::without_nulls(&patch);
                let result = fieldmanager::apply(
                    &schema,
                    scope(rt, status),
                    &old,
                    &applied,
                    &fieldmanager::read_managed(&old),
                    opts.field_manager.as_deref().unwrap_or_default(),
                    opts.force,
                    &rt.api_version(),
                    &time,
                )?;
                ownership = Ownership::Applied(result.entries);
                result.object
            }
        };
        if meta_str(&candidate, "resourceVersion") != meta_str(&old, "resourceVersion")
            && meta_str(&candidate, "resourceVersion").is_some()
        {
            return Err(ApiError::stale(&rt.gvr.plural, &rt.gvr.group, name));
        }
        self.finish_update(rt, ns, name, &old, candidate, status, opts, ownership)
    }

    /// DELETE: with finalizers the object gets a deletionTimestamp and stays; without, it goes.
    pub fn delete(
        &mut self,
        rt: &Arc<ResourceType>,
        ns: Option<&str>,
        name: &str,
        preconditions: Option<&Value>,
        opts: &WriteOptions,
    ) -> Result<Value, ApiError> {
        let old = self.get(rt, ns, name)?;
        if let Some(p) = preconditions {
            if let Some(uid) = p.get("uid").and_then(Value::as_str)
                && Some(uid) != meta_str(&old, "uid")
            {
                return Err(ApiError::conflict(
                    &rt.gvr.plural,
                    &rt.gvr.group,
                    name,
                    &format!(
                        "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                        meta_str(&old, "uid").unwrap_or_default()
                    ),
                ));
            }
            if let Some(rv) = p.get("resourceVersion").and_then(Value::as_str)
                && Some(rv) != meta_str(&old, "resourceVersion")
            {
                return Err(ApiError::conflict(
                    &rt.gvr.plural,
                    &rt.gvr.group,
                    name,
                    &format!(
                        "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                        meta_str(&old, "resourceVersion").unwrap_or_default()
                    ),
                ));
            }
        }
        let key = (ns_key(rt, ns), name.to_owned());
        if !finalizers(&old).is_empty() {
            if meta(&old).is_some_and(|m| m.contains_key("deletionTimestamp")) {
                return Ok(old);
            }
            let mut new = old.clone();
            let m = meta_mut(&mut new);
            m.insert("deletionTimestamp".to_owned(), Value::String(now()));
            m.insert("deletionGracePeriodSeconds".to_owned(), Value::from(0));
            if rt.uses_generation
                && let Some(g) = m.get("generation").and_then(Value::as_i64)
            {
                m.insert("generation".to_owned(), Value::from(g + 1));
            }
            if opts.dry_run {
                return Ok(new);
            }
            let rv = self.next_rv();
            meta_mut(&mut new).insert("resourceVersion".to_owned(), Value::String(rv.to_string()));
            self.collection_mut(&rt.gvr)
                .objects
                .insert(key, new.clone());
            self.record(&rt.gvr, EventKind::Modified, new.clone(), Some(old));
            return Ok(new);
        }
        if opts.dry_run {
            return Ok(old);
        }
        let rv = self.next_rv();
        let mut last = old.clone();
        meta_mut(&mut last).insert("resourceVersion".to_owned(), Value::String(rv.to_string()));
        self.remove(rt, &key, last.clone(), old);
        Ok(last)
    }

    /// DELETE on a collection: deletes every matching object.
    pub fn delete_collection(
        &mut self,
        rt: &Arc<ResourceType>,
        ns: Option<&str>,
        selectors: &Selectors,
        opts: &WriteOptions,
    ) -> Result<Vec<Value>, ApiError> {
        let listed = self.list(rt, ns, selectors, None, None)?;
        let mut out = Vec::new();
        for item in listed.items {
            let name = meta_str(&item, "name").unwrap_or_default().to_owned();
            let ns = meta_str(&item, "namespace").map(str::to_owned);
            out.push(self.delete(rt, ns.as_deref(), &name, None, opts)?);
        }
        Ok(out)
    }
}
