//! The controller runtime every kind's reconciler uses: shared context, error classification,
//! conditions and status, finalizer, events, gates, requeue policy, metrics, HTTP server and
//! the generic controller wiring.

pub mod conditions;
pub mod context;
pub mod controller;
pub mod error;
pub mod events;
pub mod finalizer;
pub mod gates;
pub mod leader;
pub mod manager;
pub mod metrics;
pub mod registry;
pub mod requeue;
pub mod server;
pub mod shutdown;
pub mod status;

pub use conditions::{ConditionStatus, ReconcileOutcome, set_condition};
pub use context::{Context, Readiness};
pub use controller::{Reconciler, run_controller};
pub use error::{Classify, Error, ErrorClass, ReconcileError, backoff};
pub use finalizer::effective_deletion_policy;
pub use gates::{ActGate, may_act};
pub use manager::run;
pub use metrics::Metrics;
pub use registry::Registry;
pub use shutdown::Shutdown;
