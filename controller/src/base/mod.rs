//! The pure vocabulary every layer shares, and nothing else: error classes, conditions, the
//! gate that says whether an object may be acted on, and the intent records that let a resource
//! created untagged be found again after a crash. No I/O, no clock, no Kubernetes client:
//! the AWS adapters, the runtime, the kinds and their pure `plan`s all build on it.

pub mod class;
pub mod conditions;
pub mod duration;
pub mod gates;
pub mod intent;
pub mod plan;

pub use class::{Classify, ErrorClass};
pub use conditions::{ConditionStatus, DesiredCondition, ReconcileOutcome, set_condition};
pub use gates::{ActGate, may_act};
