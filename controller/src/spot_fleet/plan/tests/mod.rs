//! Tables of (spec, observed) → actions, one module per concern of the plan, over the shared
//! scenario builders of [`fixtures`]; and a multi-round simulator (`convergence`) that applies
//! each plan's actions to the observed state and checks the strategies' bounds on every round.

mod fixtures;

mod actions;
mod conditions;
mod convergence;
mod ownership;
mod predicates;
mod prune;
mod recreate;
mod surge;
