//! `validation.http[]`: one GET per check, every reconcile, bounded by the check's
//! `timeoutSeconds` (connect, TLS and response headers together). Only the status code counts;
//! the body is not read. The checks of a stage run concurrently.
//!
//! The client is hyper with rustls (already in the tree through kube): `http://` and
//! `https://` URLs, the system's root certificates, no redirects followed (a 301 is what the
//! check receives, so `expectedStatus: 301` can assert one).

use std::collections::BTreeMap;
use std::sync::LazyLock;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Empty;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use stagehand_crds::lambda_stage::HttpCheck;

use super::observed::HttpCheckOutcome;

type HttpsClient = Client<HttpsConnector<HttpConnector>, Empty<Bytes>>;
type PlainClient = Client<HttpConnector, Empty<Bytes>>;

/// The clients, built once per process (loading the root certificates is not free).
struct Clients {
    /// `None` when the system has no usable root certificates: https checks then fail with
    /// that reason, http checks still run.
    https: Result<HttpsClient, String>,
    http: PlainClient,
}

static CLIENTS: LazyLock<Clients> = LazyLock::new(|| {
    let builder = || Client::builder(TokioExecutor::new());
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()
        .map(|b| builder().build(b.https_or_http().enable_http1().build()))
        .map_err(|e| format!("no TLS root certificates: {e}"));
    let mut plain = HttpConnector::new();
    plain.enforce_http(true);
    Clients {
        https,
        http: builder().build(plain),
    }
});

/// Runs every check; the outcome per check name.
pub async fn run_http_checks(checks: &[HttpCheck]) -> BTreeMap<String, HttpCheckOutcome> {
    let outcomes = futures::future::join_all(checks.iter().map(run_check)).await;
    checks
        .iter()
        .map(|c| c.name.clone())
        .zip(outcomes)
        .collect()
}

async fn run_check(check: &HttpCheck) -> HttpCheckOutcome {
    let failed = |error: String| HttpCheckOutcome {
        status: None,
        error: Some(error),
    };
    let uri: hyper::Uri = match check.url.parse() {
        Ok(uri) => uri,
        Err(e) => return failed(format!("invalid URL {}: {e}", check.url)),
    };
    let timeout = Duration::from_secs(u64::try_from(check.timeout_seconds.max(1)).unwrap_or(5));
    let response = match uri.scheme_str() {
        Some("https") => match &CLIENTS.https {
            Ok(client) => tokio::time::timeout(timeout, client.get(uri)).await,
            Err(error) => return failed(error.clone()),
        },
        Some("http") => tokio::time::timeout(timeout, CLIENTS.http.get(uri)).await,
        _ => return failed(format!("not an http(s) URL: {}", check.url)),
    };
    match response {
        Ok(Ok(response)) => HttpCheckOutcome {
            status: Some(i32::from(response.status().as_u16())),
            error: None,
        },
        Ok(Err(error)) => failed(format!("GET {} failed: {}", check.url, error_chain(&error))),
        Err(_) => failed(format!(
            "GET {} timed out after {}s",
            check.url,
            timeout.as_secs()
        )),
    }
}

/// The error and its causes, as one line ("client error (Connect): tcp connect error:
/// Connection refused").
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::http::StatusCode;
    use axum::routing::get;

    use super::*;

    fn check(name: &str, url: String, expected_status: i32) -> HttpCheck {
        HttpCheck {
            name: name.to_owned(),
            url,
            expected_status,
            timeout_seconds: 1,
        }
    }

    /// A stage's endpoint: healthy, unavailable, and one that never answers.
    async fn serve() -> std::net::SocketAddr {
        let app = Router::new()
            .route("/ok", get(|| async { "ok" }))
            .route(
                "/unavailable",
                get(|| async { (StatusCode::SERVICE_UNAVAILABLE, "down") }),
            )
            .route("/hang", get(std::future::pending::<&'static str>));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        addr
    }

    #[tokio::test]
    async fn status_codes_errors_and_timeouts_are_recorded() {
        let addr = serve().await;
        // A port nothing listens on: bound, then released.
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap_or_else(|e| panic!("{e}"));
        let checks = [
            check("ok", format!("http://{addr}/ok"), 200),
            check("down", format!("http://{addr}/unavailable"), 200),
            check("hang", format!("http://{addr}/hang"), 200),
            check("refused", format!("http://{closed}/"), 200),
            check("bad", "ftp://example.com/".to_owned(), 200),
        ];
        let outcomes = run_http_checks(&checks).await;
        assert_eq!(outcomes.len(), 5);
        assert_eq!(
            outcomes["ok"],
            HttpCheckOutcome {
                status: Some(200),
                error: None
            }
        );
        assert_eq!(
            outcomes["down"],
            HttpCheckOutcome {
                status: Some(503),
                error: None
            }
        );
        assert_eq!(outcomes["hang"].status, None);
        assert_eq!(
            outcomes["hang"].error.as_deref(),
            Some(format!("GET http://{addr}/hang timed out after 1s").as_str())
        );
        let refused = outcomes["refused"].error.as_deref().unwrap_or_default();
        assert!(refused.contains("refused"), "{refused}");
        assert_eq!(
            outcomes["bad"].error.as_deref(),
            Some("not an http(s) URL: ftp://example.com/")
        );
    }

    #[tokio::test]
    async fn https_is_supported() {
        // TLS to a plain HTTP server fails in the handshake: the https path is taken (and
        // reports the failure) rather than the URL being refused.
        let addr = serve().await;
        let outcomes = run_http_checks(&[check("tls", format!("https://{addr}/ok"), 200)]).await;
        let outcome = &outcomes["tls"];
        assert_eq!(outcome.status, None);
        let error = outcome.error.as_deref().unwrap_or_default();
        assert!(!error.is_empty(), "{outcome:?}");
        assert!(!error.contains("not an http(s) URL"), "{error}");
    }
}
