//! Logging: human-readable lines (colored in a terminal) by default, one JSON object per line
//! with `--log-format json`. Levels come from `RUST_LOG`, default `info,stagehand=info`.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::util::TryInitError;

use crate::settings::LogFormat;

/// Filter used when `RUST_LOG` is unset.
pub const DEFAULT_FILTER: &str = "info,stagehand=info";

/// The AWS SDK modules whose debug and trace lines print the resolved credentials: the endpoint
/// parameters and the identity they log carry `Credentials`, whose `Debug` redacts the secret
/// but shows the access key id. Capped at `info` whatever `RUST_LOG` asks, so that no log level
/// shows a credential (found and proved by `controller/tests/e2e/credentials.rs`).
const CREDENTIAL_LOGGING_TARGETS: [&str; 2] = [
    "aws_smithy_runtime::client::orchestrator::endpoints",
    "aws_smithy_runtime::client::orchestrator::auth",
];

/// `filter` with [`CREDENTIAL_LOGGING_TARGETS`] capped at `info` (a directive naming a module
/// wins over less specific ones, such as `debug` or `aws_smithy_runtime=trace`).
fn without_credential_logging(filter: EnvFilter) -> EnvFilter {
    CREDENTIAL_LOGGING_TARGETS
        .iter()
        .fold(filter, |filter, target| {
            match format!("{target}=info").parse() {
                Ok(directive) => filter.add_directive(directive),
                Err(_) => filter,
            }
        })
}

/// The level filter: `RUST_LOG` when set and valid, else [`DEFAULT_FILTER`], never showing
/// credentials. An invalid `RUST_LOG` is reported on stderr rather than silently ignored.
fn env_filter() -> EnvFilter {
    without_credential_logging(requested_filter())
}

fn requested_filter() -> EnvFilter {
    match std::env::var("RUST_LOG") {
        Ok(value) if !value.trim().is_empty() => {
            EnvFilter::try_new(&value).unwrap_or_else(|error| {
                eprintln!(
                    "warning: ignoring invalid RUST_LOG={value:?} ({error}); using {DEFAULT_FILTER}"
                );
                EnvFilter::new(DEFAULT_FILTER)
            })
        }
        _ => EnvFilter::new(DEFAULT_FILTER),
    }
}

/// Installs the global subscriber. Fails only if one is already installed.
pub fn init(format: LogFormat) -> Result<(), TryInitError> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;

    let registry = tracing_subscriber::registry().with(env_filter());
    match format {
        LogFormat::Text => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(std::io::stdout().is_terminal())
                    .with_target(false),
            )
            .try_init(),
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false),
            )
            .try_init(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    /// A writer that keeps what the fmt layer writes.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_sdks_credential_printing_modules_stay_quiet_at_any_level() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::registry()
            .with(without_credential_logging(EnvFilter::new(
                "trace,aws_smithy_runtime=trace",
            )))
            .with(tracing_subscriber::fmt::layer().with_writer(move || writer.clone()));
        tracing::subscriber::with_default(subscriber, || {
            tracing::debug!(
                target: "aws_smithy_runtime::client::orchestrator::endpoints",
                "resolving endpoint AKIDHIDDEN"
            );
            tracing::trace!(
                target: "aws_smithy_runtime::client::orchestrator::auth",
                "resolved identity AKIDHIDDEN"
            );
            tracing::debug!(
                target: "aws_smithy_runtime::client::orchestrator",
                "other SDK lines still show"
            );
        });
        let logged = String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned();
        assert!(!logged.contains("AKIDHIDDEN"), "{logged}");
        assert!(logged.contains("other SDK lines still show"), "{logged}");
    }
}
