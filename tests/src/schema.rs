//! Structural-schema handling of custom objects: the implementation lives in
//! `stagehand_crds::validation`, shared with `stagehand plan` / `apply`.

pub use stagehand_crds::validation::{
    CelRules, normalize, prune, unknown_fields, validate, validate_cel, validate_name,
};
