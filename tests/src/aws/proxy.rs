//! The fault-injecting, counting HTTP proxy in front of moto.
//!
//! Listens on `127.0.0.1:PORT` and forwards every request to moto unchanged (the `Host` header
//! too, so URLs moto hands out — SQS queue URLs — point back at the proxy). Clients need only
//! `AWS_ENDPOINT_URL=http://127.0.0.1:PORT` (S3: path-style addressing).
//!
//! Admin API under the reserved prefix [`ADMIN_PREFIX`] of the same port (`$ADMIN` below; no S3
//! bucket name can start with `_`, so it never shadows an AWS request):
//!
//! | request | effect |
//! |---|---|
//! | `GET $ADMIN/calls` | per `service/operation`: count, errors, injected, request/response body bytes, total/max latency (ms) — [`CallsReport`] |
//! | `POST $ADMIN/calls/reset` | zero the counts and the log |
//! | `GET $ADMIN/log` | the last 10 000 calls in order — [`CallRecord`] |
//! | `GET $ADMIN/faults` | the rules with `matched` / `fired` / `remaining` — `FaultStatus` |
//! | `POST $ADMIN/faults` | add one rule or an array of rules ([`FaultRule`] JSON) → `{"ids":[..]}` |
//! | `DELETE $ADMIN/faults` | remove all rules |
//! | `POST $ADMIN/reset` | reset moto (`/moto-api/reset`), the counts, the log and the rules |
//! | `GET $ADMIN/health` | `{"upstream": "<moto url>"}` |
//!
//! Requests to `/moto-api/...` are forwarded but neither counted nor subject to faults.
//! Latency recorded per call is the proxy's whole handling time (injected delay included).

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::http::{HeaderMap, Method, Request, Response, StatusCode, header};
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};

use super::classify::{self, CallId};
use super::faults::{self, FaultRule, FaultSet, Terminal};
use super::moto_fixes;

/// Path prefix of the admin API on the proxy's port.
pub const ADMIN_PREFIX: &str = "/__stagehand";

const LOG_LIMIT: usize = 10_000;

/// The plain-HTTP client used to reach moto and the admin API.
pub type HttpClient = Client<HttpConnector, Full<Bytes>>;

pub fn http_client() -> HttpClient {
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(5))
        .build_http()
}

/// Counters of one `service/operation`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CallStats {
    pub service: String,
    pub operation: String,
    pub count: u64,
    /// Responses with status ≥ 400 or reset connections (injected or from moto).
    pub errors: u64,
    /// Calls answered (or reset) by a fault rule instead of moto.
    pub injected: u64,
    pub request_bytes: u64,
    pub response_bytes: u64,
    pub total_latency_ms: f64,
    pub max_latency_ms: f64,
}

/// `GET $ADMIN/calls`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CallsReport {
    pub total: u64,
    /// Keyed by `service/operation`.
    pub calls: BTreeMap<String, CallStats>,
}

impl CallsReport {
    /// Calls to `service/operation` (0 if none).
    pub fn count(&self, service: &str, operation: &str) -> u64 {
        self.get(service, operation).map_or(0, |s| s.count)
    }

    pub fn get(&self, service: &str, operation: &str) -> Option<&CallStats> {
        self.calls.get(&format!("{service}/{operation}"))
    }

    /// Calls to every operation of `service`.
    pub fn service_total(&self, service: &str) -> u64 {
        self.calls
            .values()
            .filter(|s| s.service == service)
            .map(|s| s.count)
            .sum()
    }
}

/// One entry of `GET $ADMIN/log`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallRecord {
    pub seq: u64,
    pub service: String,
    pub operation: String,
    pub method: String,
    pub path: String,
    /// HTTP status returned to the client; 0 for a reset connection.
    pub status: u16,
    /// What a rule did: `throttle:<code>`, `error:<status>`, `reset`, `latency`, `rewrite`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub injected: Vec<String>,
    pub latency_ms: f64,
    pub request_bytes: u64,
    pub response_bytes: u64,
    /// The caller's application id (`app/<id>` of the SDK's user agent, set with
    /// `AWS_SDK_UA_APP_ID`): tells which process made the call when several share the floor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
}

#[derive(Debug, Default)]
struct Stats {
    report: CallsReport,
    log: VecDeque<CallRecord>,
    seq: u64,
}

#[derive(Debug)]
struct ProxyState {
    upstream: String,
    client: HttpClient,
    stats: Mutex<Stats>,
    faults: Mutex<FaultSet>,
    /// What moto forgets of CloudFront origins (see [`super::moto_oac`]).
    origin_access_controls: super::moto_oac::OriginAccessControls,
    /// What moto does not show of S3 EventBridge notifications (see [`super::moto_s3_events`]).
    eventbridge_buckets: super::moto_s3_events::EventBridgeBuckets,
    /// The launch template versions deleted here (see [`super::moto_lt_versions`]).
    template_versions: super::moto_lt_versions::LaunchTemplateVersions,
    /// `ListFunctions` in AWS's pages (see [`super::moto_lambda_pages`]).
    lambda_pages: super::moto_lambda_pages::LambdaPages,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl ProxyState {
    fn record(&self, id: &CallId, mut record: CallRecord) {
        let mut stats = lock(&self.stats);
        stats.seq += 1;
        record.seq = stats.seq;
        stats.report.total += 1;
        let entry = stats
            .report
            .calls
            .entry(id.key())
            .or_insert_with(|| CallStats {
                service: id.service.clone(),
                operation: id.operation.clone(),
                ..CallStats::default()
            });
        entry.count += 1;
        if record.status == 0 || record.status >= 400 {
            entry.errors += 1;
        }
        if record
            .injected
            .iter()
            .any(|i| i == "reset" || i.starts_with("throttle") || i.starts_with("error"))
        {
            entry.injected += 1;
        }
        entry.request_bytes += record.request_bytes;
        entry.response_bytes += record.response_bytes;
        entry.total_latency_ms += record.latency_ms;
        entry.max_latency_ms = entry.max_latency_ms.max(record.latency_ms);
        if stats.log.len() == LOG_LIMIT {
            stats.log.pop_front();
        }
        stats.log.push_back(record);
    }

    fn reset_stats(&self) {
        *lock(&self.stats) = Stats::default();
    }
}

/// A running proxy; stops when dropped.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    state: Arc<ProxyState>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// Starts a proxy on a free port of 127.0.0.1 forwarding to `upstream` (`http://host:port`).
    pub async fn start(upstream: &str) -> std::io::Result<Self> {
        Self::start_on(0, upstream).await
    }

    /// Starts a proxy on `127.0.0.1:port` (0 = a free port).
    pub async fn start_on(port: u16, upstream: &str) -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(ProxyState {
            upstream: upstream.trim_end_matches('/').to_owned(),
            client: http_client(),
            stats: Mutex::default(),
            faults: Mutex::default(),
            origin_access_controls: super::moto_oac::OriginAccessControls::default(),
            eventbridge_buckets: super::moto_s3_events::EventBridgeBuckets::default(),
            template_versions: super::moto_lt_versions::LaunchTemplateVersions::default(),
            lambda_pages: super::moto_lambda_pages::LambdaPages::default(),
        });
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(serve(listener, state.clone(), rx));
        Ok(Self {
            addr,
            state,
            shutdown: Some(tx),
            task: Some(task),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` — the `AWS_ENDPOINT_URL` for clients.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://127.0.0.1:PORT/__stagehand`.
    pub fn admin_url(&self) -> String {
        format!("{}{ADMIN_PREFIX}", self.url())
    }

    /// The counts, read in-process (the same data as `GET $ADMIN/calls`).
    pub fn calls(&self) -> CallsReport {
        lock(&self.state.stats).report.clone()
    }

    /// Adds a rule in-process (the same as `POST $ADMIN/faults`).
    pub fn add_fault(&self, rule: FaultRule) -> Result<u64, String> {
        lock(&self.state.faults).add(rule)
    }

    /// The kept calls numbered after `seq`, in order, read in-process: what a caller keeping
    /// the whole log (beyond the last 10 000 calls) reads every second without copying the
    /// rest (`GET $ADMIN/log` returns all 10 000).
    pub fn log_since(&self, seq: u64) -> Vec<CallRecord> {
        let stats = lock(&self.state.stats);
        let start = stats.log.partition_point(|r| r.seq <= seq);
        stats.log.range(start..).cloned().collect()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

async fn serve(listener: TcpListener, state: Arc<ProxyState>, mut shutdown: oneshot::Receiver<()>) {
    // Connections live in the set, so they end with the accept loop.
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let reset = Arc::new(AtomicBool::new(false));
                let io = TokioIo::new(ResetOnDrop { stream, reset: reset.clone() });
                let state = state.clone();
                connections.spawn(async move {
                    let service = service_fn(move |req| handle(state.clone(), reset.clone(), req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, service)
                        .await;
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// A client connection that is closed with a TCP RST (SO_LINGER 0) when a `reset` fault fired.
struct ResetOnDrop {
    stream: TcpStream,
    reset: Arc<AtomicBool>,
}

impl Drop for ResetOnDrop {
    fn drop(&mut self) {
        if self.reset.load(Ordering::SeqCst) {
            let _ = socket2::SockRef::from(&self.stream).set_linger(Some(Duration::ZERO));
        }
    }
}

impl AsyncRead for ResetOnDrop {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for ResetOnDrop {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// Returned to hyper to abort the connection (a `reset` fault, or an unreadable request).
#[derive(Debug, thiserror::Error)]
enum Abort {
    #[error("connection reset by a fault rule")]
    Reset,
    #[error("reading the request body: {0}")]
    Body(#[from] hyper::Error),
}

type ProxyResponse = Response<Full<Bytes>>;

fn respond(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> ProxyResponse {
    let mut resp = Response::new(Full::new(body.into()));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, faults::header_value(content_type));
    resp
}

fn json_response(status: StatusCode, value: &impl Serialize) -> ProxyResponse {
    let body = serde_json::to_vec(value).unwrap_or_default();
    respond(status, "application/json", body)
}

const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "te",
    "trailer",
];

fn copy_headers(from: &HeaderMap, to: &mut HeaderMap) {
    for (name, value) in from {
        if !HOP_BY_HOP.contains(&name.as_str()) {
            to.append(name.clone(), value.clone());
        }
    }
}

async fn handle(
    state: Arc<ProxyState>,
    reset: Arc<AtomicBool>,
    req: Request<Incoming>,
) -> Result<ProxyResponse, Abort> {
    let started = Instant::now();
    let (parts, body) = req.into_parts();
    let body = body.collect().await?.to_bytes();
    let path = parts.uri.path().to_owned();
    if let Some(sub) = path.strip_prefix(ADMIN_PREFIX) {
        return Ok(admin(&state, &parts.method, sub, &body).await);
    }
    let path_and_query = parts
        .uri
        .path_and_query()
        .map_or_else(|| "/".to_owned(), |pq| pq.as_str().to_owned());
    if path.starts_with("/moto-api") {
        state.lambda_pages.note_reset();
        return Ok(
            forward(&state, &parts.method, &path_and_query, &parts.headers, body)
                .await
                .map_or_else(|e| e, |(resp, _)| resp),
        );
    }

    let id = classify::identify(&parts.method, &parts.uri, &parts.headers, &body);
    super::controller_calls::note(&id.service, &id.operation, &parts.headers);
    let decoded_pq = percent_encoding::percent_decode_str(&path_and_query)
        .decode_utf8_lossy()
        .into_owned();
    let body_text = String::from_utf8_lossy(&body);
    let decoded_body = form_urlencoded::parse(&body)
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let haystacks = [
        path_and_query.as_str(),
        decoded_pq.as_str(),
        &body_text,
        decoded_body.as_str(),
    ];
    let decision = lock(&state.faults).decide(&id, parts.method == Method::HEAD, &haystacks);

    let mut record = CallRecord {
        seq: 0,
        service: id.service.clone(),
        operation: id.operation.clone(),
        method: parts.method.to_string(),
        path: path.clone(),
        status: 0,
        injected: Vec::new(),
        latency_ms: 0.0,
        request_bytes: body.len() as u64,
        response_bytes: 0,
        client: app_id(&parts.headers),
    };
    if !decision.delay.is_zero() {
        // The delay is the injected fault itself, not synchronisation.
        tokio::time::sleep(decision.delay).await;
        record.injected.push("latency".to_owned());
    }
    let finish = |mut record: CallRecord, status: u16, response_bytes: usize| {
        record.status = status;
        record.response_bytes = response_bytes as u64;
        record.latency_ms = started.elapsed().as_secs_f64() * 1000.0;
        state.record(&id, record);
    };
    match decision.terminal {
        Some(Terminal::Reset) => {
            record.injected.push("reset".to_owned());
            finish(record, 0, 0);
            reset.store(true, Ordering::SeqCst);
            return Err(Abort::Reset);
        }
        Some(Terminal::Respond(injected)) => {
            record.injected.push(if injected.throttle {
                format!("throttle:{}", injected.code)
            } else {
                format!("error:{}", injected.status.as_u16())
            });
            finish(record, injected.status.as_u16(), injected.body.len());
            return Ok(injected_response(&injected));
        }
        None => {}
    }

    state.origin_access_controls.remember(&id, &body);
    if let Some(deletion) = super::moto_lt_versions::Deletion::parse(&id, &body) {
        let (resp, len) =
            delete_template_versions(&state, &deletion, &path_and_query, &parts.headers).await;
        finish(record, resp.status().as_u16(), len);
        return Ok(resp);
    }
    let fleet_launch = super::moto_fleet_launch::FleetLaunch::parse(&id, &body);
    let page_request =
        super::moto_lambda_pages::PageRequest::parse(&id, &parts.uri, &parts.headers);
    let request_body = body.clone();
    // Counted before and after: a listing snapshot taken meanwhile is not reused.
    state.lambda_pages.note(&id);
    let answer = match page_request {
        Some(request) => lambda_page(&state, &id, request, &parts.headers).await,
        None => forward(&state, &parts.method, &path_and_query, &parts.headers, body).await,
    };
    state.lambda_pages.note(&id);
    match answer {
        Ok((mut resp, resp_body)) => {
            if resp.status().is_success() {
                state
                    .eventbridge_buckets
                    .remember(&id, &path, &request_body);
            }
            if let Some(launch) = fleet_launch.filter(|_| resp.status().is_success()) {
                apply_fleet_template(&state, &launch, &resp_body, &path_and_query, &parts.headers)
                    .await;
            }
            let mut len = resp_body.len();
            let fixed = resp
                .status()
                .is_success()
                .then(|| {
                    let corrected = moto_fixes::correct(&id, &resp_body);
                    let body = corrected.as_deref().unwrap_or(&resp_body);
                    state
                        .eventbridge_buckets
                        .restore(&id, &path, body)
                        .or(corrected)
                        .or_else(|| state.origin_access_controls.restore(&id, &resp_body))
                        .or_else(|| state.template_versions.hide(&id, &resp_body))
                })
                .flatten();
            // Bodies are copied only when something edits them (object downloads pass as is).
            if fixed.is_some() || (resp.status().is_success() && !decision.rewrites.is_empty()) {
                let mut changed = fixed.is_some();
                let mut new_body = fixed.unwrap_or_else(|| resp_body.to_vec());
                let mut rewritten = false;
                for rewrite in &decision.rewrites {
                    if let Some(b) = faults::apply_rewrite(rewrite, &new_body) {
                        new_body = b;
                        rewritten = true;
                    }
                }
                if rewritten {
                    record.injected.push("rewrite".to_owned());
                    changed = true;
                }
                if changed {
                    len = new_body.len();
                    let status = resp.status();
                    let mut headers = resp.headers().clone();
                    for h in ["content-length", "content-md5", "x-amz-crc32"] {
                        headers.remove(h);
                    }
                    resp = Response::new(Full::new(Bytes::from(new_body)));
                    *resp.status_mut() = status;
                    *resp.headers_mut() = headers;
                }
            }
            finish(record, resp.status().as_u16(), len);
            Ok(resp)
        }
        Err(resp) => {
            finish(record, resp.status().as_u16(), 0);
            Ok(resp)
        }
    }
}

fn injected_response(injected: &faults::InjectedResponse) -> ProxyResponse {
    let mut resp = Response::new(Full::new(injected.body.clone()));
    *resp.status_mut() = injected.status;
    for (name, value) in &injected.headers {
        resp.headers_mut()
            .insert(*name, faults::header_value(value));
    }
    resp
}

/// moto answers `ListFunctions` in one page: the proxy answers it in Lambda's pages from a
/// snapshot of moto's listing ([`super::moto_lambda_pages`]). Like [`forward`]'s result.
async fn lambda_page(
    state: &ProxyState,
    id: &CallId,
    request: Result<super::moto_lambda_pages::PageRequest, String>,
    headers: &HeaderMap,
) -> Result<(ProxyResponse, Bytes), ProxyResponse> {
    use super::moto_lambda_pages::Answer;
    let answer = match request {
        Ok(request) => {
            state
                .lambda_pages
                .answer(&request, |path| async move {
                    match forward(state, &Method::GET, &path, headers, Bytes::new()).await {
                        Ok((resp, body)) if resp.status().is_success() => Ok(body.to_vec()),
                        other => Err(other),
                    }
                })
                .await
        }
        Err(message) => Answer::Invalid(message),
    };
    match answer {
        Answer::Page(page) => {
            let page = Bytes::from(page);
            Ok((
                respond(StatusCode::OK, "application/json", page.clone()),
                page,
            ))
        }
        Answer::Invalid(message) => {
            let invalid = faults::error_response(
                id,
                400,
                Some("InvalidParameterValueException"),
                Some(&message),
                false,
            );
            Ok((injected_response(&invalid), invalid.body))
        }
        Answer::Upstream(moto) => moto,
    }
}

/// moto has not implemented `DeleteLaunchTemplateVersions`: the proxy answers it from moto's
/// listing of the template ([`super::moto_lt_versions`]). The answer and its length.
async fn delete_template_versions(
    state: &ProxyState,
    deletion: &super::moto_lt_versions::Deletion,
    path_and_query: &str,
    headers: &HeaderMap,
) -> (ProxyResponse, usize) {
    let listing = deletion.listing_request().into();
    match forward(state, &Method::POST, path_and_query, headers, listing).await {
        Ok((listed, body)) => {
            let known = listed.status().is_success().then_some(&body[..]);
            let answer = state.template_versions.delete(deletion, known);
            let len = answer.len();
            (respond(StatusCode::OK, "text/xml", answer), len)
        }
        Err(resp) => (resp, 0),
    }
}

/// moto launches fleet instances without their template's security groups and instance
/// profile: the proxy applies them through moto ([`super::moto_fleet_launch`]). A step moto
/// refuses is left out (the instance then shows what moto gave it).
async fn apply_fleet_template(
    state: &ProxyState,
    launch: &super::moto_fleet_launch::FleetLaunch,
    answer: &[u8],
    path_and_query: &str,
    headers: &HeaderMap,
) {
    let instances = super::moto_fleet_launch::launched_instances(answer);
    if instances.is_empty() {
        return;
    }
    let version = launch.template_request().into();
    let Ok((listed, body)) = forward(state, &Method::POST, path_and_query, headers, version).await
    else {
        return;
    };
    if !listed.status().is_success() {
        return;
    }
    let settings = super::moto_fleet_launch::TemplateSettings::parse(&body);
    for instance in &instances {
        for request in settings.requests(instance) {
            let _ = forward(
                state,
                &Method::POST,
                path_and_query,
                headers,
                request.into(),
            )
            .await;
        }
    }
}

/// Forwards to moto; `Err` carries a 502 to return when moto cannot be reached.
async fn forward(
    state: &ProxyState,
    method: &Method,
    path_and_query: &str,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<(ProxyResponse, Bytes), ProxyResponse> {
    let bad_gateway = |e: &dyn std::fmt::Display| {
        respond(
            StatusCode::BAD_GATEWAY,
            "text/plain",
            format!("stagehand-testenv proxy: upstream {}: {e}", state.upstream),
        )
    };
    let mut req = Request::new(Full::new(body));
    *req.method_mut() = method.clone();
    *req.uri_mut() = format!("{}{path_and_query}", state.upstream)
        .parse()
        .map_err(|e| bad_gateway(&e))?;
    copy_headers(headers, req.headers_mut());
    req.headers_mut().remove(header::CONTENT_LENGTH);
    let resp = state
        .client
        .request(req)
        .await
        .map_err(|e| bad_gateway(&e))?;
    let (parts, body) = resp.into_parts();
    let body = body
        .collect()
        .await
        .map_err(|e| bad_gateway(&e))?
        .to_bytes();
    let mut out = Response::new(Full::new(body.clone()));
    *out.status_mut() = parts.status;
    copy_headers(&parts.headers, out.headers_mut());
    Ok((out, body))
}

async fn admin(state: &ProxyState, method: &Method, sub: &str, body: &[u8]) -> ProxyResponse {
    match (method.as_str(), sub.trim_end_matches('/')) {
        ("GET", "/calls") => json_response(StatusCode::OK, &lock(&state.stats).report),
        ("POST", "/calls/reset") => {
            state.reset_stats();
            respond(StatusCode::NO_CONTENT, "text/plain", "")
        }
        ("GET", "/log") => {
            let log: Vec<CallRecord> = lock(&state.stats).log.iter().cloned().collect();
            json_response(StatusCode::OK, &log)
        }
        ("GET", "/faults") => json_response(StatusCode::OK, &lock(&state.faults).list()),
        ("POST", "/faults") => {
            let rules: Vec<FaultRule> = match serde_json::from_slice::<serde_json::Value>(body) {
                Ok(v) if v.is_array() => match serde_json::from_value(v) {
                    Ok(r) => r,
                    Err(e) => return bad_request(&e),
                },
                Ok(v) => match serde_json::from_value(v) {
                    Ok(r) => vec![r],
                    Err(e) => return bad_request(&e),
                },
                Err(e) => return bad_request(&e),
            };
            let mut faults = lock(&state.faults);
            let mut ids = Vec::new();
            for rule in rules {
                match faults.add(rule) {
                    Ok(id) => ids.push(id),
                    Err(e) => return bad_request(&e),
                }
            }
            json_response(StatusCode::CREATED, &serde_json::json!({ "ids": ids }))
        }
        ("DELETE", "/faults") => {
            lock(&state.faults).clear();
            respond(StatusCode::NO_CONTENT, "text/plain", "")
        }
        ("POST", "/reset") => {
            lock(&state.faults).clear();
            state.lambda_pages.note_reset();
            let result = forward(
                state,
                &Method::POST,
                "/moto-api/reset",
                &HeaderMap::new(),
                Bytes::new(),
            )
            .await;
            state.reset_stats();
            match result {
                Ok((resp, _)) if resp.status().is_success() => {
                    respond(StatusCode::NO_CONTENT, "text/plain", "")
                }
                Ok((resp, body)) => respond(
                    StatusCode::BAD_GATEWAY,
                    "text/plain",
                    format!(
                        "moto reset answered {}: {}",
                        resp.status(),
                        String::from_utf8_lossy(&body)
                    ),
                ),
                Err(resp) => resp,
            }
        }
        ("GET", "/health") => json_response(
            StatusCode::OK,
            &serde_json::json!({ "upstream": state.upstream }),
        ),
        _ => respond(
            StatusCode::NOT_FOUND,
            "text/plain",
            format!("no admin endpoint {method} {ADMIN_PREFIX}{sub}"),
        ),
    }
}

fn bad_request(e: &dyn std::fmt::Display) -> ProxyResponse {
    respond(
        StatusCode::BAD_REQUEST,
        "text/plain",
        format!("invalid fault rule: {e}"),
    )
}

/// The `app/<id>` token of the SDK's user agent (`x-amz-user-agent`, else `user-agent`).
fn app_id(headers: &HeaderMap) -> Option<String> {
    ["x-amz-user-agent", "user-agent"]
        .iter()
        .filter_map(|name| headers.get(*name)?.to_str().ok())
        .flat_map(str::split_whitespace)
        .find_map(|token| token.strip_prefix("app/"))
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_report_lookups() {
        let mut report = CallsReport::default();
        for (service, operation, count) in [
            ("lambda", "GetFunction", 2),
            ("lambda", "ListFunctions", 1),
            ("sqs", "ListQueues", 4),
        ] {
            report.calls.insert(
                format!("{service}/{operation}"),
                CallStats {
                    service: service.into(),
                    operation: operation.into(),
                    count,
                    ..CallStats::default()
                },
            );
        }
        assert_eq!(report.count("lambda", "GetFunction"), 2);
        assert_eq!(report.count("lambda", "CreateFunction"), 0);
        assert_eq!(report.service_total("lambda"), 3);
    }
}
