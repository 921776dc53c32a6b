//! The operations Stagehand itself made through the proxies of this process, for the IAM
//! coverage check of `make test`.
//!
//! Stagehand's SDK clients carry the app name `stagehand` (`app/stagehand` in the
//! `x-amz-user-agent` header); the tests' own setup clients do not, so seeding a bucket or
//! reading a queue for an assertion is not counted. With `STAGEHAND_TESTENV_CALLS_FILE` set, the
//! first call of each `service Operation` appends that line to the file; `stagehand iam-policy
//! --check-calls FILE` then fails on any the policy does not grant.

use std::collections::BTreeSet;
use std::io::Write;
use std::sync::{Mutex, PoisonError};

use hyper::http::HeaderMap;

/// The environment variable naming the file the calls are appended to.
pub const CALLS_FILE_ENV: &str = "STAGEHAND_TESTENV_CALLS_FILE";

/// The User-Agent token of Stagehand's SDK clients (`stagehand::aws::APP_NAME`).
const STAGEHAND_APP: &str = "app/stagehand";

/// Lines already written by this process (each proxy of the process shares it).
static WRITTEN: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

/// Whether the request came from Stagehand's SDK clients.
pub fn from_stagehand(headers: &HeaderMap) -> bool {
    ["x-amz-user-agent", "user-agent"].iter().any(|name| {
        headers
            .get_all(*name)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .any(|value| {
                value.split_whitespace().any(|token| {
                    token == STAGEHAND_APP
                        || token
                            .strip_prefix(STAGEHAND_APP)
                            .is_some_and(|replica| replica.starts_with('.'))
                })
            })
    })
}

/// Appends `service operation` to the calls file when Stagehand made it and the line is new.
pub fn note(service: &str, operation: &str, headers: &HeaderMap) {
    let Some(path) = std::env::var_os(CALLS_FILE_ENV) else {
        return;
    };
    if !from_stagehand(headers) {
        return;
    }
    let line = format!("{service} {operation}");
    if !WRITTEN
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(line.clone())
    {
        return;
    }
    // One short O_APPEND write per line: concurrent test processes do not interleave it.
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut file| file.write_all(format!("{line}\n").as_bytes()));
    if let Err(error) = written {
        tracing::warn!(%error, path = %path.to_string_lossy(), "cannot record a controller call");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn only_requests_with_stagehands_app_name_count() {
        assert!(from_stagehand(&headers(&[(
            "x-amz-user-agent",
            "aws-sdk-rust/1.3.9 ua/2.1 api/s3/1.100.0 os/linux lang/rust/1.95.0 m/E app/stagehand"
        )])));
        assert!(!from_stagehand(&headers(&[(
            "x-amz-user-agent",
            "aws-sdk-rust/1.3.9 ua/2.1 api/s3/1.100.0 os/linux lang/rust/1.95.0"
        )])));
        assert!(!from_stagehand(&headers(&[(
            "user-agent",
            "aws-cli/1.46.2 app/stagehand-demo"
        )])));
        assert!(from_stagehand(&headers(&[(
            "x-amz-user-agent",
            "aws-sdk-rust/1.3.9 ua/2.1 api/s3/1.100.0 app/stagehand.replica-a"
        )])));
        assert!(!from_stagehand(&HeaderMap::new()));
    }
}
