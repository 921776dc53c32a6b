//! moto 5.2.5 ignores paging on `ListFunctions`: whatever `MaxItems` says, it answers every
//! function of the region in one page and never a `NextMarker`. AWS answers at most 50 a page. At
//! benchmark sizes that is not a detail: 18,000 functions are one 14 MB answer that moto takes
//! up to 12 s to build (it serialises every function's configuration on every call), and a
//! client reading it holds the whole body and its parse at once, where against AWS it would hold
//! one 50-function page at a time. So the proxy answers `ListFunctions` itself, in AWS's pages:
//!
//! - `MaxItems` 1–50, default 50; more than 50 gives 50 (Lambda's documented cap), less than 1
//!   or not a number is `InvalidParameterValueException` (400), as is a `FunctionVersion` other
//!   than `ALL`;
//! - `Marker` / `NextMarker`: the last page has no `NextMarker`; a marker the proxy did not hand
//!   out (or one of a snapshot it no longer keeps) is `InvalidParameterValueException`;
//! - `FunctionVersion=ALL` (every published version too) and `MasterRegion` are passed to moto
//!   as sent (moto honours the first and ignores the second).
//!
//! **Snapshots.** The first page of a sequence (no `Marker`) is served from a snapshot of
//! moto's full listing for the request's region and parameters; its `NextMarker` names the
//! snapshot and the offset, so the rest of the sequence pages through the same listing, as a
//! consistent read of AWS would. A new first page takes a new snapshot only if a write that can
//! change the functions went through the proxy since the last one was taken (any Lambda or
//! CloudFormation call that is not a `Get`/`List`/`Describe`, or a reset of moto); otherwise it
//! reuses the snapshot, which is how the stand-in avoids moto's 12 s listing at every sequence.
//! That is faithful because in the tests and benchmarks every write reaches moto through the
//! proxy: what is seeded straight into moto (benchmarks, the soak's driver) is seeded before the
//! first listing, and the soak's driver writes S3 objects and SQS queues only. Writes are counted
//! before they are forwarded and again after moto answered, so a snapshot taken while one was in
//! flight is not reused after it. The last [`KEPT_SNAPSHOTS`] snapshots are kept.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use hyper::http::{HeaderMap, Uri, header};

use super::classify::{CallId, query_param};

/// AWS's page size for `ListFunctions`: the default and the most it returns.
pub const MAX_ITEMS: usize = 50;

/// Snapshots kept for sequences still paging (each is one region's listing, ≈ 0.8 KB a function).
pub const KEPT_SNAPSHOTS: usize = 4;

const MARKER_PREFIX: &str = "stagehand-testenv-";

/// Which listing a request reads: the same region and parameters share a snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Scope {
    region: String,
    all_versions: bool,
    master_region: Option<String>,
}

/// A `ListFunctions` request, read from the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageRequest {
    scope: Scope,
    max_items: usize,
    /// (snapshot, offset) of a `Marker` this proxy handed out.
    marker: Option<(u64, usize)>,
}

impl PageRequest {
    /// The page `uri` asks for when `id` is Lambda's `ListFunctions` (`None` otherwise); `Err`
    /// with Lambda's message for parameters Lambda refuses.
    pub fn parse(id: &CallId, uri: &Uri, headers: &HeaderMap) -> Option<Result<Self, String>> {
        if id.service != "lambda" || id.operation != "ListFunctions" {
            return None;
        }
        let query = uri.query().unwrap_or("");
        Some(Self::from_query(query, signing_region(headers)))
    }

    fn from_query(query: &str, region: String) -> Result<Self, String> {
        let max_items = match query_param(query, "MaxItems") {
            None => MAX_ITEMS,
            Some(text) => match text.parse::<usize>() {
                Ok(n) if n >= 1 => n.min(MAX_ITEMS),
                _ => return Err(format!("MaxItems must be at least 1, not {text:?}")),
            },
        };
        let all_versions = match query_param(query, "FunctionVersion").as_deref() {
            None => false,
            Some("ALL") => true,
            Some(other) => return Err(format!("FunctionVersion must be ALL, not {other:?}")),
        };
        let marker = match query_param(query, "Marker").filter(|m| !m.is_empty()) {
            None => None,
            Some(text) => {
                Some(parse_marker(&text).ok_or_else(|| format!("invalid Marker {text:?}"))?)
            }
        };
        Ok(Self {
            scope: Scope {
                region,
                all_versions,
                master_region: query_param(query, "MasterRegion"),
            },
            max_items,
            marker,
        })
    }

    /// The path and query of moto's full listing for this request's scope.
    pub fn listing_path(&self) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        if self.scope.all_versions {
            query.append_pair("FunctionVersion", "ALL");
        }
        if let Some(region) = &self.scope.master_region {
            query.append_pair("MasterRegion", region);
        }
        format!("/2015-03-31/functions/?{}", query.finish())
    }
}

/// The region of the SigV4 credential scope (`Credential=AKID/DATE/REGION/SERVICE/aws4_request`);
/// empty for an unsigned request (moto then uses its default region).
fn signing_region(headers: &HeaderMap) -> String {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|auth| auth.split("Credential=").nth(1))
        .and_then(|credential| credential.split([',', ' ']).next())
        .and_then(|scope| scope.split('/').nth(2))
        .unwrap_or_default()
        .to_owned()
}

fn marker(snapshot: u64, offset: usize) -> String {
    format!("{MARKER_PREFIX}{snapshot}-{offset}")
}

fn parse_marker(text: &str) -> Option<(u64, usize)> {
    let (snapshot, offset) = text.strip_prefix(MARKER_PREFIX)?.split_once('-')?;
    Some((snapshot.parse().ok()?, offset.parse().ok()?))
}

/// Whether `id` can change what `ListFunctions` answers: a Lambda or CloudFormation call
/// (stacks create, update and delete functions) that is not a read.
pub fn changes_functions(id: &CallId) -> bool {
    let read = ["Get", "List", "Describe"]
        .iter()
        .any(|prefix| id.operation.starts_with(prefix));
    matches!(id.service.as_str(), "lambda" | "cloudformation") && !read
}

/// One listing of moto's, each function as its JSON text.
#[derive(Debug)]
struct Snapshot {
    id: u64,
    scope: Scope,
    /// The write count when the listing was asked for.
    writes: u64,
    functions: Vec<String>,
}

impl Snapshot {
    /// The page of `max_items` functions from `offset`, with a `NextMarker` unless it is the last.
    fn page(&self, offset: usize, max_items: usize) -> Vec<u8> {
        let end = offset.saturating_add(max_items).min(self.functions.len());
        let items = self
            .functions
            .get(offset..end)
            .unwrap_or_default()
            .join(",");
        let next = if end < self.functions.len() {
            format!(",\"NextMarker\":\"{}\"", marker(self.id, end))
        } else {
            String::new()
        };
        format!("{{\"Functions\":[{items}]{next}}}").into_bytes()
    }
}

#[derive(Debug, Default)]
struct Pages {
    /// Writes counted so far (each write twice: before it is forwarded, after its answer).
    writes: u64,
    taken: u64,
    snapshots: VecDeque<Arc<Snapshot>>,
}

/// What the proxy answers a `ListFunctions` page with.
#[derive(Debug)]
pub enum Answer<E> {
    /// A page in Lambda's JSON.
    Page(Vec<u8>),
    /// `InvalidParameterValueException` with this message.
    Invalid(String),
    /// moto's full listing failed: its answer, to pass on.
    Upstream(E),
}

/// The snapshots and the write count (see the module documentation).
#[derive(Debug, Default)]
pub struct LambdaPages {
    pages: Mutex<Pages>,
    /// Held while a snapshot is taken: first pages arriving meanwhile wait and share it.
    taking: tokio::sync::Mutex<()>,
}

impl LambdaPages {
    fn pages(&self) -> MutexGuard<'_, Pages> {
        self.pages.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts `id` if it is a write that can change the functions; call it before forwarding a
    /// call and again after moto answered.
    pub fn note(&self, id: &CallId) {
        if changes_functions(id) {
            self.pages().writes += 1;
        }
    }

    /// moto was reset: no snapshot is reused from now on.
    pub fn note_reset(&self) {
        self.pages().writes += 1;
    }

    /// The page `request` asks for; `list_all(path)` reads moto's full listing when a new
    /// snapshot is needed.
    pub async fn answer<E, Fut>(
        &self,
        request: &PageRequest,
        list_all: impl FnOnce(String) -> Fut,
    ) -> Answer<E>
    where
        Fut: Future<Output = Result<Vec<u8>, E>>,
    {
        let (snapshot, offset) = match request.marker {
            Some((id, offset)) => match self.kept(id) {
                Some(snapshot) if offset <= snapshot.functions.len() => (snapshot, offset),
                _ => return Answer::Invalid(format!("invalid Marker {}", marker(id, offset))),
            },
            None => match self.first_page_snapshot(request, list_all).await {
                Ok(snapshot) => (snapshot, 0),
                Err(answer) => return answer,
            },
        };
        Answer::Page(snapshot.page(offset, request.max_items))
    }

    fn kept(&self, id: u64) -> Option<Arc<Snapshot>> {
        self.pages().snapshots.iter().find(|s| s.id == id).cloned()
    }

    /// The newest snapshot of `scope` if no write went through since it was asked for.
    fn reusable(&self, scope: &Scope) -> Option<Arc<Snapshot>> {
        let pages = self.pages();
        pages
            .snapshots
            .iter()
            .rev()
            .find(|s| &s.scope == scope)
            .filter(|s| s.writes == pages.writes)
            .cloned()
    }

    async fn first_page_snapshot<E, Fut>(
        &self,
        request: &PageRequest,
        list_all: impl FnOnce(String) -> Fut,
    ) -> Result<Arc<Snapshot>, Answer<E>>
    where
        Fut: Future<Output = Result<Vec<u8>, E>>,
    {
        if let Some(snapshot) = self.reusable(&request.scope) {
            return Ok(snapshot);
        }
        let _taking = self.taking.lock().await;
        if let Some(snapshot) = self.reusable(&request.scope) {
            return Ok(snapshot);
        }
        let writes = self.pages().writes;
        let body = list_all(request.listing_path())
            .await
            .map_err(Answer::Upstream)?;
        let functions = split_functions(&body).map_err(Answer::Invalid)?;
        let mut pages = self.pages();
        pages.taken += 1;
        let snapshot = Arc::new(Snapshot {
            id: pages.taken,
            scope: request.scope.clone(),
            writes,
            functions,
        });
        if pages.snapshots.len() == KEPT_SNAPSHOTS {
            pages.snapshots.pop_front();
        }
        pages.snapshots.push_back(snapshot.clone());
        Ok(snapshot)
    }
}

/// Each function of moto's `{"Functions": [...]}` as its JSON text.
fn split_functions(body: &[u8]) -> Result<Vec<String>, String> {
    #[derive(serde::Deserialize)]
    struct Listing {
        #[serde(rename = "Functions", default)]
        functions: Vec<serde_json::Value>,
    }
    let listing: Listing = serde_json::from_slice(body)
        .map_err(|e| format!("stagehand-testenv proxy: moto's ListFunctions answer: {e}"))?;
    Ok(listing
        .functions
        .iter()
        .map(serde_json::Value::to_string)
        .collect())
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use super::*;
    use crate::aws::classify::Protocol;

    fn id(service: &str, operation: &str) -> CallId {
        CallId {
            service: service.into(),
            operation: operation.into(),
            protocol: Protocol::RestJson,
        }
    }

    fn request(query: &str) -> PageRequest {
        PageRequest::from_query(query, "us-east-1".into()).unwrap()
    }

    fn moto(names: &[&str]) -> Vec<u8> {
        let functions: Vec<_> = names
            .iter()
            .map(|n| serde_json::json!({"FunctionName": n}))
            .collect();
        serde_json::to_vec(&serde_json::json!({"Functions": functions})).unwrap()
    }

    async fn page(pages: &LambdaPages, query: &str, names: &[&str]) -> serde_json::Value {
        let body = moto(names);
        match pages
            .answer(
                &request(query),
                |_| async move { Ok::<_, Infallible>(body) },
            )
            .await
        {
            Answer::Page(page) => serde_json::from_slice(&page).unwrap(),
            other => panic!("{other:?}"),
        }
    }

    fn names(page: &serde_json::Value) -> Vec<&str> {
        page["Functions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["FunctionName"].as_str().unwrap())
            .collect()
    }

    #[test]
    fn parameters_are_read_as_lambda_reads_them() {
        assert_eq!(request("").max_items, 50);
        assert_eq!(request("MaxItems=7").max_items, 7);
        assert_eq!(
            request("MaxItems=500").max_items,
            50,
            "capped, as Lambda does"
        );
        assert!(PageRequest::from_query("MaxItems=0", String::new()).is_err());
        assert!(PageRequest::from_query("FunctionVersion=LATEST", String::new()).is_err());
        assert!(PageRequest::from_query("Marker=abc", String::new()).is_err());
        let all =
            request("FunctionVersion=ALL&MasterRegion=eu-west-1&Marker=stagehand-testenv-3-100");
        assert_eq!(all.marker, Some((3, 100)));
        assert_eq!(
            all.listing_path(),
            "/2015-03-31/functions/?FunctionVersion=ALL&MasterRegion=eu-west-1"
        );
        assert_eq!(request("").listing_path(), "/2015-03-31/functions/?");
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            "AWS4-HMAC-SHA256 Credential=testing/20261201/eu-west-1/lambda/aws4_request, SignedHeaders=host"
                .parse()
                .unwrap(),
        );
        assert_eq!(signing_region(&headers), "eu-west-1");
        let uri: Uri = "/2015-03-31/functions/?MaxItems=3".parse().unwrap();
        assert!(PageRequest::parse(&id("lambda", "GetFunction"), &uri, &headers).is_none());
        assert!(changes_functions(&id("cloudformation", "ExecuteChangeSet")));
        assert!(changes_functions(&id("lambda", "TagResource")));
        assert!(!changes_functions(&id("lambda", "ListTags")));
        assert!(!changes_functions(&id("s3", "PutObject")));
    }

    #[tokio::test]
    async fn a_sequence_pages_one_snapshot_reused_until_a_write() {
        let pages = LambdaPages::default();
        let first = page(&pages, "MaxItems=2", &["a", "b", "c"]).await;
        assert_eq!(names(&first), ["a", "b"]);
        let marker = first["NextMarker"].as_str().unwrap().to_owned();
        // moto now lists another function, but the sequence pages its own snapshot.
        let last = page(&pages, &format!("MaxItems=2&Marker={marker}"), &["x"]).await;
        assert_eq!(names(&last), ["c"]);
        assert!(last.get("NextMarker").is_none(), "the last page has none");
        // No write since: a new sequence reuses the snapshot (moto is not asked).
        let reused = pages
            .answer(&request(""), |_| async { Err::<Vec<u8>, _>("moto asked") })
            .await;
        assert!(matches!(reused, Answer::Page(_)), "{reused:?}");
        pages.note(&id("lambda", "GetFunction"));
        assert_eq!(names(&page(&pages, "", &["x"]).await), ["a", "b", "c"]);
        pages.note(&id("lambda", "CreateFunction"));
        assert_eq!(names(&page(&pages, "", &["a", "d"]).await), ["a", "d"]);
        // Another scope has its own snapshot.
        assert_eq!(
            names(&page(&pages, "FunctionVersion=ALL", &["v"]).await),
            ["v"]
        );
        let stale = pages
            .answer(&request("Marker=stagehand-testenv-99-2"), |_| async {
                Ok::<_, Infallible>(Vec::new())
            })
            .await;
        assert!(matches!(stale, Answer::Invalid(_)), "{stale:?}");
    }
}
