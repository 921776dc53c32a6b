//! `SpotFleet`: immutable spot instances launched from one spec.
//!
//! Built so far, all pure:
//! - `cloud_init`: `files`, `services` and `userData` rendered into one deterministic document,
//!   checked against EC2's 16 KB limit;
//! - `spec_hash`: the versioned hash of what defines an instance, and `desired()` (render, then
//!   hash) — the one way to the hash the plan compares and a launch tags;
//! - `observed`: the plain data observe will gather, clock-dependent facts precomputed;
//! - `plan/`: `plan(spec, context, observed) -> Plan` with its tables and a multi-round
//!   simulator.
//!
//! Not built yet: observe (through an EC2 inventory), act, status, error, the round and the
//! reconciler; nothing serves the kind until those exist and it is registered in `kinds.rs`.

pub mod cloud_init;
pub mod observed;
pub mod plan;
pub mod spec_hash;
