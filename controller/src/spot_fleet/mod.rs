//! `SpotFleet`: immutable spot instances launched from one spec.
//!
//! Built so far, all pure: the cloud-init document (`cloud_init`), the versioned spec hash
//! (`spec_hash`), the plain data observe will gather (`observed`) and the plan (`plan/`), with
//! their tables. Not built yet: observe (through an EC2 inventory), act, status, the round and
//! the reconciler; nothing serves the kind until those exist and it is registered in `kinds.rs`.

pub mod cloud_init;
pub mod observed;
pub mod plan;
pub mod spec_hash;
