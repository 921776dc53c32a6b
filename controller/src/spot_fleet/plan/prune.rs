//! Which launch template versions the fleet no longer needs.
//!
//! The fleet's template gets one version per spec hash (its description is the hash). A version
//! is deleted once no live instance of the fleet carries its hash, unless it is the version of
//! the desired hash (about to be launched, or launched already) or the template's default
//! version (EC2 refuses to delete it). Deleting a version changes nothing for instances running
//! from it; it keeps the template to the versions that explain what runs, instead of one
//! version per spec change for the life of the fleet.

use std::collections::BTreeSet;

use stagehand_crds::SPEC_HASH_TAG;

use super::Planner;
use super::action::Action;
use crate::spot_fleet::observed::{ObservedInstance, TemplateVersions};

/// The version numbers of `template` no live instance uses, oldest first. Pure.
pub fn unused_versions(
    template: &TemplateVersions,
    desired_hash: &str,
    instances: &[ObservedInstance],
) -> Vec<i64> {
    let in_use: BTreeSet<&str> = instances
        .iter()
        .filter(|i| i.state.is_live())
        .filter_map(|i| i.tags.get(SPEC_HASH_TAG).map(String::as_str))
        .collect();
    let mut unused: Vec<i64> = template
        .versions
        .iter()
        .filter(|(hash, number)| {
            hash.as_str() != desired_hash
                && !in_use.contains(hash.as_str())
                && template.default_version != Some(**number)
        })
        .map(|(_, number)| *number)
        .collect();
    unused.sort_unstable();
    unused
}

impl Planner<'_> {
    /// Deletes the template versions no live instance uses, after every other action of the
    /// round (a failed deletion then holds nothing else back).
    pub(super) fn prune(&mut self) {
        let Some(template) = &self.observed.template else {
            return;
        };
        let versions = unused_versions(
            template,
            &self.context.desired_hash,
            &self.observed.instances,
        );
        if !versions.is_empty() {
            self.act(Action::PruneVersions {
                template_id: template.template_id.clone(),
                versions,
            });
        }
    }
}
