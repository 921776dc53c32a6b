//! Tables of (spec, observed) → plan, split by concern over one fixtures module.

mod content;
mod convergence;
mod fixtures;
mod infrastructure;
mod intent;
mod rollback;
mod teardown;
