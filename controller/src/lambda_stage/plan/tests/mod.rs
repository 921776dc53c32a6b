//! Tables of (spec, observed) → actions, one row per branch of the plan, one module per concern
//! of the plan, over the shared scenario builders of [`fixtures`]; and a convergence property:
//! applying a plan's actions to the observed state (a tiny pure simulator of AWS) and planning
//! again reaches a plan with nothing left to do.

mod fixtures;

mod alias;
mod conditions;
mod convergence;
mod function;
mod mappings;
mod ownership;
mod predicates;
mod stack;
mod validation;
