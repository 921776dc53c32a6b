//! The controller runtime every kind's reconciler uses: shared context, error classification,
//! status, finalizer, events, requeue policy, metrics, HTTP server and
//! the generic controller wiring.

pub mod census;
pub mod context;
pub mod controller;
pub mod error;
pub mod events;
pub mod finalizer;
pub mod fleet_metrics;
pub mod leader;
pub mod manager;
pub mod metrics;
#[cfg(test)]
mod metrics_doc;
pub mod queue_clock;
pub mod registry;
pub mod requeue;
pub mod round;
pub mod series;
pub mod server;
pub mod shutdown;
pub mod site_metrics;
pub mod status;
pub mod workers;

pub use context::{Context, Readiness};
pub use controller::{Reconciler, run_controller};
pub use error::{Error, ReconcileError, backoff};
pub use finalizer::effective_deletion_policy;
pub use manager::run;
pub use metrics::Metrics;
pub use registry::Registry;
pub use shutdown::Shutdown;

/// A fixed-key 64-bit hash of `value`: the same value gives the same fingerprint for the
/// process's life. What per-object records keep instead of the value itself, where telling
/// values apart is all they need (the events published lately, the interest declared).
pub(crate) fn fingerprint(value: &(impl std::hash::Hash + ?Sized)) -> u64 {
    use std::hash::Hasher;
    let mut hasher = std::hash::DefaultHasher::new();
    value.hash(&mut hasher);
    hasher.finish()
}
