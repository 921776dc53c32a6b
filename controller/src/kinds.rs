//! The kinds this build reconciles. A kind is added here (`Registry::with::<Kind, _>(..)`) in
//! the same change that adds its reconciler; until then it is not served.

use stagehand_crds::{LambdaStage, SpotFleet, StaticSite};

use crate::lambda_stage::LambdaStageReconciler;
use crate::runtime::Registry;
use crate::spot_fleet::SpotFleetReconciler;
use crate::static_site::StaticSiteReconciler;

/// The controllers `stagehand run` starts.
pub fn registry() -> Registry {
    Registry::new()
        .with::<LambdaStage, _>(LambdaStageReconciler::new())
        .with::<SpotFleet, _>(SpotFleetReconciler::new())
        .with::<StaticSite, _>(StaticSiteReconciler::new())
}

#[cfg(test)]
mod tests {
    #[test]
    fn this_build_serves_lambda_stages_spot_fleets_and_static_sites() {
        assert!(!super::registry().is_empty());
        assert_eq!(
            super::registry().kinds(),
            ["LambdaStage", "SpotFleet", "StaticSite"]
        );
    }
}
