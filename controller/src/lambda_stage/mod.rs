//! `LambdaStage`: keeps a stage's Lambda functions at exactly the declared code, layers,
//! environment, event-source mappings and alias (issue 6, DESIGN.md "LambdaStage").
//!
//! The reconcile has the shape every kind shares: observe → plan → act → report.
//! - [`observed`]: the AWS facts (plus the few status fields) a plan needs, as plain data.
//! - [`plan`]: the pure decision — `plan(spec, context, observed) -> Plan`: no I/O, no clock,
//!   no randomness. Every reason Stagehand acts on a LambdaStage is a named predicate there.
//!
//! `observe.rs` (gathering [`observed::Observed`] through `crate::aws`), `act.rs` (executing
//! [`plan::Action`]s) and the reconciler wiring come later.

pub mod observed;
pub mod plan;
