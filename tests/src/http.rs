//! The HTTP surface: discovery, resource paths (core `/api/v1/...` and `/apis/{group}/{version}/...`,
//! namespaced and cluster-scoped, `/status`), list/watch/get/create/update/patch/delete.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use tokio::sync::Notify;

use crate::audit::Access;
use crate::discovery;
use crate::error::ApiError;
use crate::openapi;
use crate::patch::PatchType;
use crate::registry::Gvr;
use crate::selectors::{FieldSelector, LabelSelector, Selectors};
use crate::store::{EventKind, Store, WriteOptions, parse_rv};
use crate::table::{self, IncludeObject};
use crate::views::View;

/// State shared by the handlers and the [`crate::TestApiServer`] handle.
#[derive(Debug)]
pub struct Shared {
    store: Mutex<Store>,
    notify: Notify,
    server_address: String,
    requests: Mutex<Vec<String>>,
    accesses: Mutex<Vec<Access>>,
}

impl Shared {
    pub fn new(server_address: String, history_limit: usize) -> Self {
        Self {
            store: Mutex::new(Store::new(history_limit)),
            notify: Notify::new(),
            server_address,
            requests: Mutex::new(Vec::new()),
            accesses: Mutex::new(Vec::new()),
        }
    }

    pub fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs a mutation and wakes the watchers.
    pub fn write<T>(&self, f: impl FnOnce(&mut Store) -> T) -> T {
        let out = {
            let mut store = self.store();
            f(&mut store)
        };
        self.notify.notify_waiters();
        out
    }

    /// What the named clients asked for so far, in order.
    pub fn accesses(&self) -> Vec<Access> {
        self.accesses
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn record(&self, access: Access) {
        self.accesses
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(access);
    }

    /// `METHOD path?query` of every request so far (for tests).
    pub fn requests(&self) -> Vec<String> {
        self.requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

type AppState = Arc<Shared>;

pub fn router(shared: AppState) -> Router {
    Router::new()
        .route(
            "/version",
            get(|| async { json_response(StatusCode::OK, &discovery::version()) }),
        )
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(|| async { "ok" }))
        .route("/livez", get(|| async { "ok" }))
        .route(
            "/api",
            get(|State(s): State<AppState>| async move {
                json_response(StatusCode::OK, &discovery::core_versions(&s.server_address))
            }),
        )
        .route(
            "/apis",
            get(|State(s): State<AppState>| async move {
                let list = discovery::group_list(s.store().registry());
                json_response(StatusCode::OK, &list)
            }),
        )
        .route(
            "/openapi/v3",
            get(|State(s): State<AppState>| async move {
                json_response(StatusCode::OK, &openapi::index(s.store().registry()))
            }),
        )
        .route("/openapi/v3/{*path}", get(openapi_group_version))
        .fallback(resource_handler)
        .with_state(shared)
}

/// The router of a named client's door: every request is recorded as an [`Access`] of
/// `client`, then served like any other.
pub fn client_router(shared: AppState, client: String) -> Router {
    let recorder = shared.clone();
    router(shared).layer(axum::middleware::from_fn(
        move |request: axum::extract::Request, next: axum::middleware::Next| {
            recorder.record(access_of(&client, request.method(), request.uri()));
            next.run(request)
        },
    ))
}

/// A request in RBAC's terms.
fn access_of(client: &str, method: &Method, uri: &Uri) -> Access {
    let non_resource = || Access {
        client: client.to_owned(),
        verb: method.as_str().to_lowercase(),
        group: String::new(),
        resource: uri.path().to_owned(),
        namespace: None,
        name: None,
        non_resource: true,
    };
    let Some(Parsed::Resource(target)) = parse_path(uri.path()) else {
        return non_resource();
    };
    let watch = is_true(&query_map(uri), "watch");
    Access {
        client: client.to_owned(),
        verb: Access::verb(method, target.name.is_some(), watch).to_owned(),
        group: target.group,
        resource: match target.subresource {
            Some(sub) => format!("{}/{sub}", target.plural),
            None => target.plural,
        },
        namespace: target.namespace,
        name: target.name,
        non_resource: false,
    }
}

async fn openapi_group_version(
    State(s): State<AppState>,
    axum::extract::Path(path): axum::extract::Path<String>,
) -> Response {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version) = match segs.as_slice() {
        ["api", v] => ("", *v),
        ["apis", g, v] => (*g, *v),
        _ => return ApiError::not_found_path().into_response(),
    };
    match openapi::group_version(s.store().registry(), group, version) {
        Some(doc) => json_response(StatusCode::OK, &doc),
        None => ApiError::not_found_path().into_response(),
    }
}

fn json_response(code: StatusCode, body: &Value) -> Response {
    let mut r = (code, body.to_string()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// A parsed resource path.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    group: String,
    version: String,
    namespace: Option<String>,
    plural: String,
    name: Option<String>,
    subresource: Option<String>,
}

enum Parsed {
    /// `/api/v1` or `/apis/{group}/{version}`.
    GroupVersion(String, String),
    /// `/apis/{group}`.
    Group(String),
    Resource(Target),
}

fn parse_path(path: &str) -> Option<Parsed> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match segs.as_slice() {
        ["api", "v1", rest @ ..] => ("", "v1", rest),
        ["apis", g] => return Some(Parsed::Group((*g).to_owned())),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return None,
    };
    let t = |ns: Option<&str>, plural: &str, name: Option<&str>, sub: Option<&str>| {
        Some(Parsed::Resource(Target {
            group: group.to_owned(),
            version: version.to_owned(),
            namespace: ns.map(str::to_owned),
            plural: plural.to_owned(),
            name: name.map(str::to_owned),
            subresource: sub.map(str::to_owned),
        }))
    };
    match rest {
        [] => Some(Parsed::GroupVersion(group.to_owned(), version.to_owned())),
        [p] => t(None, p, None, None),
        [p, n] => t(None, p, Some(n), None),
        ["namespaces", n, s @ ("status" | "finalize")] => t(None, "namespaces", Some(n), Some(s)),
        ["namespaces", ns, p] => t(Some(ns), p, None, None),
        [p, n, s] => t(None, p, Some(n), Some(s)),
        ["namespaces", ns, p, n] => t(Some(ns), p, Some(n), None),
        ["namespaces", ns, p, n, s] => t(Some(ns), p, Some(n), Some(s)),
        _ => None,
    }
}

async fn resource_handler(
    State(shared): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let line = match uri.query() {
        Some(q) => format!("{method} {}?{q}", uri.path()),
        None => format!("{method} {}", uri.path()),
    };
    tracing::debug!(request = %line, "stand-in request");
    shared
        .requests
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(line);
    match handle(&shared, &method, &uri, &headers, &body) {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

fn query_map(uri: &Uri) -> HashMap<String, String> {
    Query::<HashMap<String, String>>::try_from_uri(uri)
        .map(|q| q.0)
        .unwrap_or_default()
}

fn is_true(q: &HashMap<String, String>, key: &str) -> bool {
    q.get(key).is_some_and(|v| v == "true" || v == "1")
}

fn wants_table(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("as=Table"))
}

fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .to_owned()
}

fn selectors(q: &HashMap<String, String>) -> Result<Selectors, ApiError> {
    Ok(Selectors {
        labels: LabelSelector::parse(q.get("labelSelector").map_or("", String::as_str))?,
        fields: FieldSelector::parse(q.get("fieldSelector").map_or("", String::as_str))?,
    })
}

fn write_options(
    q: &HashMap<String, String>,
    headers: &HeaderMap,
    delete_body: Option<&Value>,
) -> WriteOptions {
    let body_dry_run = delete_body
        .and_then(|b| b.get("dryRun"))
        .and_then(Value::as_array)
        .is_some_and(|a| a.iter().any(|v| v == "All"));
    WriteOptions {
        dry_run: q.get("dryRun").is_some_and(|v| v == "All") || body_dry_run,
        field_manager: q.get("fieldManager").cloned(),
        force: is_true(q, "force"),
        strict: q.get("fieldValidation").is_some_and(|v| v == "Strict"),
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    }
}

fn handle(
    shared: &AppState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Response, ApiError> {
    let parsed = parse_path(uri.path()).ok_or_else(ApiError::not_found_path)?;
    let target = match parsed {
        Parsed::Group(g) => {
            let group = discovery::group(shared.store().registry(), &g)
                .ok_or_else(ApiError::not_found_path)?;
            return Ok(json_response(StatusCode::OK, &group));
        }
        Parsed::GroupVersion(g, v) => {
            let list = discovery::resource_list(shared.store().registry(), &g, &v)
                .ok_or_else(ApiError::not_found_path)?;
            return Ok(json_response(StatusCode::OK, &list));
        }
        Parsed::Resource(t) => t,
    };
    let gvr = Gvr::new(&target.group, &target.version, &target.plural);
    let view = {
        let store = shared.store();
        let served = store
            .registry()
            .get(&gvr)
            .ok_or_else(ApiError::not_found_path)?;
        View::of(store.registry(), served)
    };
    let rt = view.storage.clone();
    if target.namespace.is_some() && !rt.namespaced {
        return Err(ApiError::not_found_path());
    }
    if target.name.is_some() && rt.namespaced && target.namespace.is_none() {
        return Err(ApiError::not_found_path());
    }
    let status = match target.subresource.as_deref() {
        None => false,
        Some("status") if rt.status_subresource => true,
        Some(_) => return Err(ApiError::not_found_path()),
    };
    let q = query_map(uri);
    let ns = target.namespace.as_deref();
    match (method.clone(), target.name.as_deref()) {
        (Method::GET, None) if is_true(&q, "watch") => watch(shared, &view, ns, &q, headers),
        (Method::GET, None) => list(shared, &view, ns, &q, headers),
        (Method::GET, Some(name)) => {
            let obj = view.to_served(shared.store().get(&rt, ns, name)?);
            if wants_table(headers) {
                let rv = obj
                    .pointer("/metadata/resourceVersion")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                let include = IncludeObject::parse(q.get("includeObject").map(String::as_str));
                return Ok(json_response(
                    StatusCode::OK,
                    &table::render(&view.served, &[view.printable(&obj)], rv, None, include),
                ));
            }
            Ok(json_response(StatusCode::OK, &obj))
        }
        (Method::POST, None) => {
            let obj = view.to_storage(request_object(headers, body)?);
            let opts = write_options(&q, headers, None);
            let created = shared.write(|s| s.create(&rt, ns, obj, &opts))?;
            Ok(json_response(StatusCode::CREATED, &view.to_served(created)))
        }
        (Method::PUT, Some(name)) => {
            let obj = view.to_storage(request_object(headers, body)?);
            let opts = write_options(&q, headers, None);
            let updated = shared.write(|s| s.update(&rt, ns, name, obj, status, &opts))?;
            Ok(json_response(StatusCode::OK, &view.to_served(updated)))
        }
        (Method::PATCH, Some(name)) if view.converts() => {
            let ct = content_type(headers);
            let opts = write_options(&q, headers, None);
            let current = view.to_served(shared.store().get(&rt, ns, name)?);
            let patched = view.to_storage(patch_served(&ct, &current, body)?);
            let updated = shared.write(|s| s.update(&rt, ns, name, patched, status, &opts))?;
            Ok(json_response(StatusCode::OK, &view.to_served(updated)))
        }
        (Method::PATCH, Some(name)) => {
            let ct = content_type(headers);
            let patch_type = PatchType::from_content_type(&ct)
                .ok_or_else(|| ApiError::unsupported_media_type(&ct))?;
            let opts = write_options(&q, headers, None);
            let existed = shared.store().get(&rt, ns, name).is_ok();
            let patched =
                shared.write(|s| s.patch(&rt, ns, name, patch_type, body, status, &opts))?;
            let code = if existed {
                StatusCode::OK
            } else {
                StatusCode::CREATED
            };
            Ok(json_response(code, &patched))
        }
        (Method::DELETE, Some(name)) => {
            let options = if body.is_empty() {
                None
            } else {
                Some(
                    crate::patch::parse_body(body, false)
                        .map_err(|e| ApiError::bad_request(format!("error decoding body: {e}")))?,
                )
            };
            let opts = write_options(&q, headers, options.as_ref());
            let preconditions = options.as_ref().and_then(|o| o.get("preconditions"));
            let deleted = shared.write(|s| s.delete(&rt, ns, name, preconditions, &opts))?;
            Ok(json_response(StatusCode::OK, &view.to_served(deleted)))
        }
        (Method::DELETE, None) => {
            let sel = selectors(&q)?;
            let opts = write_options(&q, headers, None);
            let items: Vec<Value> = shared
                .write(|s| s.delete_collection(&rt, ns, &sel, &opts))?
                .into_iter()
                .map(|item| view.to_served(item))
                .collect();
            let rv = shared.store().resource_version();
            Ok(json_response(
                StatusCode::OK,
                &json!({"apiVersion": view.served.api_version(), "kind": view.served.list_kind, "metadata": {"resourceVersion": rv.to_string()}, "items": items}),
            ))
        }
        (m, _) => Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({m})"
        ))),
    }
}

/// The object a POST or PUT carries: JSON, YAML, or the protobuf kubectl's typed clients send.
fn request_object(headers: &HeaderMap, body: &Bytes) -> Result<Value, ApiError> {
    let ct = content_type(headers);
    if crate::protobuf::is_protobuf(&ct) {
        return crate::protobuf::decode(body);
    }
    crate::patch::parse_body(body, ct.contains("yaml"))
        .map_err(|e| ApiError::bad_request(format!("error decoding body: {e}")))
}

/// Applies a patch to an object of a converted view in the client's shape (the store patches
/// objects in its own). Server-side apply is not offered there.
fn patch_served(content_type: &str, current: &Value, body: &Bytes) -> Result<Value, ApiError> {
    let patch = crate::patch::parse_body(body, false)
        .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
    match PatchType::from_content_type(content_type) {
        Some(PatchType::Merge) => Ok(crate::patch::merge_patch(current, &patch)),
        Some(PatchType::Json) => {
            crate::patch::json_patch(current, &patch).map_err(|e| ApiError::new(422, "Invalid", e))
        }
        Some(PatchType::Strategic) => {
            crate::patch::strategic_merge(current, &patch).map_err(ApiError::bad_request)
        }
        _ => Err(ApiError::unsupported_media_type(content_type)),
    }
}

fn list(
    shared: &AppState,
    view: &View,
    ns: Option<&str>,
    q: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let rt = &view.served;
    let sel = selectors(q)?;
    // A converted view's field selectors name the client's fields: they are matched after
    // conversion (a page may then hold fewer items than `limit`; the continue token still works).
    let storage_sel = if view.converts() {
        Selectors {
            labels: sel.labels.clone(),
            fields: FieldSelector::default(),
        }
    } else {
        sel.clone()
    };
    let limit = match q.get("limit").filter(|l| !l.is_empty()) {
        Some(l) => Some(
            l.parse::<usize>()
                .map_err(|_| ApiError::bad_request(format!("invalid limit {l:?}")))?,
        ),
        None => None,
    };
    if let Some(rv) = q.get("resourceVersion").filter(|r| !r.is_empty()) {
        parse_rv(rv)?;
    }
    let mut result = shared.store().list(
        &view.storage,
        ns,
        &storage_sel,
        limit,
        q.get("continue").map(String::as_str),
    )?;
    if view.converts() {
        result.items = std::mem::take(&mut result.items)
            .into_iter()
            .map(|item| view.to_served(item))
            .filter(|item| sel.fields.matches(item))
            .collect();
    }
    let rv = result.resource_version.to_string();
    if wants_table(headers) {
        let include = IncludeObject::parse(q.get("includeObject").map(String::as_str));
        let printable: Vec<Value> = result.items.iter().map(|o| view.printable(o)).collect();
        return Ok(json_response(
            StatusCode::OK,
            &table::render(rt, &printable, Some(rv), result.continue_token, include),
        ));
    }
    let mut metadata = json!({"resourceVersion": rv});
    if let Some(c) = result.continue_token {
        metadata["continue"] = Value::String(c);
    }
    if let Some(r) = result.remaining {
        metadata["remainingItemCount"] = Value::from(r);
    }
    Ok(json_response(
        StatusCode::OK,
        &json!({"apiVersion": rt.api_version(), "kind": rt.list_kind, "metadata": metadata, "items": result.items}),
    ))
}

/// How a watch renders objects.
#[derive(Debug, Clone)]
struct WatchView {
    view: View,
    namespace: Option<String>,
    selectors: Selectors,
    table: Option<IncludeObject>,
}

impl WatchView {
    /// The object as this watch's client sees it, if it matches the watch.
    fn shown(&self, obj: &Value) -> Option<Value> {
        let served = self.view.to_served(obj.clone());
        self.matches(&served).then_some(served)
    }

    fn matches(&self, obj: &Value) -> bool {
        let ns_ok = self.namespace.as_deref().is_none_or(|ns| {
            obj.pointer("/metadata/namespace").and_then(Value::as_str) == Some(ns)
        });
        ns_ok && self.selectors.matches(obj)
    }

    fn line(&self, kind: &str, obj: &Value) -> String {
        let object = match self.table {
            Some(include) => {
                let rv = obj
                    .pointer("/metadata/resourceVersion")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                table::render(
                    &self.view.served,
                    &[self.view.printable(obj)],
                    rv,
                    None,
                    include,
                )
            }
            None => obj.clone(),
        };
        let mut s = json!({"type": kind, "object": object}).to_string();
        s.push('\n');
        s
    }

    fn bookmark(&self, rv: u64, initial_events_end: bool) -> String {
        let mut metadata = json!({"resourceVersion": rv.to_string()});
        if initial_events_end {
            metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let rt = &self.view.served;
        let obj = json!({"kind": rt.kind, "apiVersion": rt.api_version(), "metadata": metadata});
        let mut s = json!({"type": "BOOKMARK", "object": obj}).to_string();
        s.push('\n');
        s
    }
}

fn expired_line(rv: u64) -> String {
    let status = ApiError::expired(format!(
        "too old resource version: {rv} (the requested version is no longer in the watch cache)"
    ))
    .to_status();
    let mut s = json!({"type": "ERROR", "object": status}).to_string();
    s.push('\n');
    s
}

struct WatchState {
    shared: AppState,
    view: WatchView,
    last_rv: u64,
    epoch: u64,
    deadline: tokio::time::Instant,
    bookmarks: bool,
    pending: Option<String>,
    done: bool,
}

fn watch(
    shared: &AppState,
    view: &View,
    ns: Option<&str>,
    q: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let sel = selectors(q)?;
    let rv = match q.get("resourceVersion").filter(|r| !r.is_empty()) {
        Some(r) => Some(parse_rv(r)?),
        None => None,
    };
    let send_initial = is_true(q, "sendInitialEvents");
    let bookmarks = is_true(q, "allowWatchBookmarks");
    if send_initial && q.get("resourceVersionMatch").map(String::as_str) != Some("NotOlderThan") {
        return Err(ApiError::new(
            422,
            "Invalid",
            "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
        ));
    }
    let timeout = q
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .unwrap_or(1800);
    let rt = &view.storage;
    let view = WatchView {
        view: view.clone(),
        namespace: ns.map(str::to_owned),
        selectors: sel,
        table: wants_table(headers)
            .then(|| IncludeObject::parse(q.get("includeObject").map(String::as_str))),
    };
    let (start, epoch) = {
        let store = shared.store();
        (store.watch_start(rt, ns, rv, send_initial), store.epoch())
    };
    let mut first = String::new();
    let done = start.expired;
    if start.expired {
        first.push_str(&expired_line(rv.unwrap_or_default()));
    } else {
        for obj in start.initial.iter().filter_map(|o| view.shown(o)) {
            first.push_str(&view.line("ADDED", &obj));
        }
        if send_initial && bookmarks {
            first.push_str(&view.bookmark(start.last_rv, true));
        }
    }
    let state = WatchState {
        shared: shared.clone(),
        view,
        last_rv: start.last_rv,
        epoch,
        deadline: tokio::time::Instant::now() + Duration::from_secs(timeout),
        bookmarks,
        pending: (!first.is_empty()).then_some(first),
        done,
    };
    let stream = futures::stream::unfold(state, next_chunk);
    let mut response = Response::new(Body::from_stream(stream));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

async fn next_chunk(mut st: WatchState) -> Option<(Result<Bytes, Infallible>, WatchState)> {
    if let Some(p) = st.pending.take() {
        return Some((Ok(Bytes::from(p)), st));
    }
    if st.done {
        return None;
    }
    let shared = st.shared.clone();
    loop {
        let notified = shared.notify.notified();
        let mut notified = std::pin::pin!(notified);
        notified.as_mut().enable();
        let poll = shared
            .store()
            .watch_poll(&st.view.view.storage.gvr, st.last_rv, st.epoch);
        if poll.closed {
            return None;
        }
        if poll.expired {
            st.done = true;
            return Some((Ok(Bytes::from(expired_line(st.last_rv))), st));
        }
        let mut out = String::new();
        for e in &poll.events {
            let shown = st.view.shown(&e.object);
            let now = shown.is_some();
            let before = e
                .prev
                .as_deref()
                .is_some_and(|p| st.view.shown(p).is_some());
            let kind = match (e.kind, before, now) {
                (EventKind::Added, _, true) | (EventKind::Modified, false, true) => Some("ADDED"),
                (EventKind::Modified, true, true) => Some("MODIFIED"),
                (EventKind::Modified, true, false) => Some("DELETED"),
                (EventKind::Deleted, b, n) if b || n => Some("DELETED"),
                _ => None,
            };
            if let Some(kind) = kind {
                let object = shown.unwrap_or_else(|| st.view.view.to_served((*e.object).clone()));
                out.push_str(&st.view.line(kind, &object));
            }
        }
        st.last_rv = poll.last_rv;
        if !out.is_empty() {
            return Some((Ok(Bytes::from(out)), st));
        }
        if tokio::time::timeout_at(st.deadline, notified)
            .await
            .is_err()
        {
            st.done = true;
            if st.bookmarks {
                return Some((Ok(Bytes::from(st.view.bookmark(st.last_rv, false))), st));
            }
            return None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(path: &str) -> Option<Target> {
        match parse_path(path)? {
            Parsed::Resource(t) => Some(t),
            _ => None,
        }
    }

    #[test]
    fn paths() {
        let t = target("/apis/stagehand.dev/v1alpha1/namespaces/default/lambdastages/x/status")
            .unwrap();
        assert_eq!(
            (
                t.group.as_str(),
                t.namespace.as_deref(),
                t.plural.as_str(),
                t.name.as_deref(),
                t.subresource.as_deref()
            ),
            (
                "stagehand.dev",
                Some("default"),
                "lambdastages",
                Some("x"),
                Some("status")
            )
        );
        let t = target("/api/v1/namespaces/foo").unwrap();
        assert_eq!(
            (t.plural.as_str(), t.name.as_deref(), t.namespace),
            ("namespaces", Some("foo"), None)
        );
        let t = target("/api/v1/namespaces/foo/status").unwrap();
        assert_eq!(
            (t.name.as_deref(), t.subresource.as_deref()),
            (Some("foo"), Some("status"))
        );
        let t = target("/api/v1/namespaces/foo/configmaps").unwrap();
        assert_eq!(
            (t.plural.as_str(), t.namespace.as_deref(), t.name),
            ("configmaps", Some("foo"), None)
        );
        let t = target("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/a.b").unwrap();
        assert_eq!(t.name.as_deref(), Some("a.b"));
        assert!(matches!(
            parse_path("/apis/stagehand.dev/v1alpha1"),
            Some(Parsed::GroupVersion(..))
        ));
        assert!(parse_path("/metrics").is_none());
    }
}
