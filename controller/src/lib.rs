//! Stagehand: a Kubernetes controller that keeps serverless stages on AWS exactly as declared.
//!
//! - [`settings`]: `stagehand run` flags and their environment fallbacks.
//! - [`telemetry`]: logging setup.
//! - [`runtime`]: what every kind's reconciler runs on (context, errors, conditions, status,
//!   finalizer, events, metrics, HTTP server, controller wiring).
//! - [`kinds`]: which kinds this build serves.
//! - [`lambda_stage`]: the LambdaStage decision core (observed facts → plan).
//! - [`spot_fleet`]: SpotFleet, the same shape.
//! - [`static_site`]: the StaticSite decision core (build reading, manifests, the plan).
//! - [`probe`]: TCP health probes of the instances a kind runs (loopback-only guard, dial log).
//! - [`cli`]: `stagehand plan -f` / `apply -f`: the LambdaStage and SpotFleet reconcile without
//!   a cluster.

pub mod aws;
pub mod base;
pub mod cli;
pub mod feed;
pub mod inventory;
pub mod kinds;
pub mod lambda_stage;
pub mod probe;
pub mod runtime;
pub mod settings;
pub mod spot_fleet;
pub mod static_site;
pub mod telemetry;

#[cfg(test)]
mod layers;

/// The crate version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Version string of `stagehand version`: the crate version, plus the git commit when the
/// build set `STAGEHAND_GIT_SHA` (release builds do).
pub fn version_string() -> String {
    match option_env!("STAGEHAND_GIT_SHA") {
        Some(sha) if !sha.is_empty() => format!("{VERSION} ({sha})"),
        _ => VERSION.to_owned(),
    }
}
