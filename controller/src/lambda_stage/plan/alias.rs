//! The alias: published versions, where the alias points, canaries, `rollbackTo`, rollbacks on
//! failed validation, and pruning of old versions. Planned for a function only once its code
//! and configuration match the spec.

use std::collections::BTreeSet;
use std::fmt;

use stagehand_crds::condition::VALIDATED;
use stagehand_crds::lambda_stage::{AliasSpec, PublishedVersion as StatusVersion, VersionRollback};

use super::action::Action;
use super::{DriftField, Planner, reason, requeue};
use crate::aws::lambda::{Alias, PublishedVersion};
use crate::base::duration::parse_go_duration;
use crate::lambda_stage::observed::{DeployedFunction, ObservedFunction};

/// Where an alias sends traffic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AliasRouting {
    /// The primary version.
    pub function_version: String,
    /// A weighted canary beside it.
    pub canary: Option<CanaryRoute>,
}

impl AliasRouting {
    pub(super) fn single(version: impl Into<String>) -> Self {
        Self {
            function_version: version.into(),
            canary: None,
        }
    }
}

impl fmt::Display for AliasRouting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.canary {
            None => write!(f, "version {}", self.function_version),
            Some(c) => write!(
                f,
                "version {} with {}% to version {}",
                self.function_version, c.weight_percent, c.version
            ),
        }
    }
}

/// A share of an alias's traffic routed to a newer version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CanaryRoute {
    pub version: String,
    pub weight_percent: i32,
}

impl Planner<'_> {
    /// Publish, point the alias, run the canary, or roll back. Called once the function's code
    /// and configuration match.
    pub(super) fn plan_alias(
        &mut self,
        function: &ObservedFunction,
        deployed: &DeployedFunction,
        alias: &AliasSpec,
        validation_passed: bool,
    ) {
        let name = function.name.as_str();
        let routing = if let Some(version) = alias.rollback_to {
            let version = version.to_string();
            let known = self
                .observed
                .previous
                .versions
                .iter()
                .any(|v| v.function_name == name && v.version == version);
            if !known {
                self.stall(
                    reason::ROLLBACK_VERSION_UNKNOWN,
                    format!("alias.rollbackTo {version}: no version {version} of {name} in status.versions"),
                );
                return;
            }
            AliasRouting::single(version)
        } else if alias.publish_versions {
            let Some(code_sha256) = deployed.info.code_sha256.as_deref() else {
                return;
            };
            let Some(newest) = newest_version_with_code(&deployed.published_versions, code_sha256)
            else {
                self.act(Action::PublishVersion {
                    function: name.to_owned(),
                    expected_code_sha256: code_sha256.to_owned(),
                });
                return;
            };
            let Some(routing) = self.routing_for_newest(
                name,
                deployed,
                alias,
                newest,
                code_sha256,
                validation_passed,
            ) else {
                return;
            };
            routing
        } else {
            AliasRouting::single("$LATEST")
        };
        match &deployed.alias {
            None => self.act(Action::CreateAlias {
                function: name.to_owned(),
                alias: alias.name.clone(),
                routing,
            }),
            Some(current) if !alias_routes(current, &routing) => {
                self.drift(
                    DriftField::Alias,
                    name,
                    format!(
                        "{} points at version {}, wanted {routing}",
                        alias.name, current.function_version
                    ),
                );
                self.act(Action::UpdateAlias {
                    function: name.to_owned(),
                    alias: alias.name.clone(),
                    routing,
                });
            }
            Some(_) => {
                if alias.publish_versions {
                    self.prune_versions(name, deployed, alias, &routing);
                }
            }
        }
    }

    /// Versions Stagehand published (recognised by their description) beyond the newest
    /// `alias.keepVersions`, oldest first, except any the alias routes to, `rollbackTo`, and the
    /// newest validated one (what `rollbackOnValidationFailure` goes back to). Planned only once
    /// the alias points where it should. Versions published by others are never deleted.
    fn prune_versions(
        &mut self,
        name: &str,
        deployed: &DeployedFunction,
        alias: &AliasSpec,
        routing: &AliasRouting,
    ) {
        let mut ours: Vec<(u64, &str)> = deployed
            .published_versions
            .iter()
            .filter(|v| v.published_by_stagehand())
            .filter_map(|v| {
                v.version
                    .parse::<u64>()
                    .ok()
                    .map(|n| (n, v.version.as_str()))
            })
            .collect();
        ours.sort_unstable_by_key(|(n, _)| std::cmp::Reverse(*n));
        let keep = usize::try_from(alias.keep_versions).unwrap_or(1).max(1);
        let mut kept: BTreeSet<String> = ours
            .iter()
            .take(keep)
            .map(|(_, v)| (*v).to_owned())
            .collect();
        kept.insert(routing.function_version.clone());
        kept.extend(routing.canary.iter().map(|c| c.version.clone()));
        if let Some(current) = &deployed.alias {
            kept.insert(current.function_version.clone());
            kept.extend(current.routing_weights.keys().cloned());
        }
        kept.extend(alias.rollback_to.map(|v| v.to_string()));
        let newest_validated = self
            .observed
            .previous
            .versions
            .iter()
            .filter(|v| v.function_name == name && v.validated)
            .filter_map(|v| v.version.parse::<u64>().ok())
            .max();
        kept.extend(newest_validated.map(|v| v.to_string()));
        for (_, version) in ours.iter().rev() {
            if !kept.contains(*version) {
                self.act(Action::DeleteVersion {
                    function: name.to_owned(),
                    version: (*version).to_owned(),
                });
            }
        }
    }

    /// Where the alias should point when `newest` is the newest version of the deployed code
    /// (`code_sha256`); `None` when this round rolls the alias back instead (planned here).
    fn routing_for_newest(
        &mut self,
        name: &str,
        deployed: &DeployedFunction,
        alias: &AliasSpec,
        newest: &str,
        code_sha256: &str,
        validation_passed: bool,
    ) -> Option<AliasRouting> {
        if alias.rollback_on_validation_failure {
            let versions = &self.observed.previous.versions;
            if let Some((rejected, rollback)) = rolled_back_build(versions, name, code_sha256) {
                // Stay on the good version whatever validation says now: moving forward to
                // the same build again would flap.
                self.rollbacks_in_effect.push(format!(
                    "alias {} of {name} rolled back from version {} to version {}: {}",
                    alias.name, rejected.version, rollback.to_version, rollback.reason
                ));
                return Some(AliasRouting::single(rollback.to_version.clone()));
            }
            if !validation_passed
                && let Some(current) = &deployed.alias
                && let Some(to_version) =
                    rollback_target(current, newest, code_sha256, name, versions)
            {
                let reason = self
                    .plan
                    .condition(VALIDATED)
                    .map(|c| c.message.clone())
                    .unwrap_or_default();
                self.drift(
                    DriftField::Alias,
                    name,
                    format!("validation failed on version {newest}: back to version {to_version}"),
                );
                self.act(Action::RollBackAlias {
                    function: name.to_owned(),
                    alias: alias.name.clone(),
                    from_version: newest.to_owned(),
                    from_code_sha256: code_sha256.to_owned(),
                    to_version,
                    reason,
                });
                return None;
            }
        }
        Some(self.routing_with_canary(
            name,
            deployed.alias.as_ref(),
            alias,
            newest,
            validation_passed,
        ))
    }

    /// Where the alias should point when `new_version` holds the desired code.
    fn routing_with_canary(
        &mut self,
        name: &str,
        current: Option<&Alias>,
        alias: &AliasSpec,
        new_version: &str,
        validation_passed: bool,
    ) -> AliasRouting {
        let promoted = AliasRouting::single(new_version);
        let (Some(canary), Some(current)) = (&alias.canary, current) else {
            // No canary, or a first deploy (nothing to compare the new version with).
            return promoted;
        };
        if current.function_version == new_version {
            return promoted;
        }
        let running = AliasRouting {
            function_version: current.function_version.clone(),
            canary: Some(CanaryRoute {
                version: new_version.to_owned(),
                weight_percent: canary.weight,
            }),
        };
        if !alias_routes(current, &running) {
            return running;
        }
        if self.observed.canary_promotion_due && validation_passed {
            return promoted;
        }
        self.wait(
            reason::CANARY_RUNNING,
            format!("canary of {name} version {new_version}"),
            canary_requeue_seconds(&canary.promote_after),
        );
        running
    }
}

/// The rollback in effect for a function whose code is `code_sha256`: a version of that code
/// the alias was rolled back from (`status.versions[].rolledBack`), with where it went.
pub fn rolled_back_build<'v>(
    versions: &'v [StatusVersion],
    function: &str,
    code_sha256: &str,
) -> Option<(&'v StatusVersion, &'v VersionRollback)> {
    versions
        .iter()
        .filter(|v| v.function_name == function && v.code_sha256 == code_sha256)
        .find_map(|v| v.rolled_back.as_ref().map(|r| (v, r)))
}

/// Where `alias.rollbackOnValidationFailure` sends the alias when validation fails, if
/// anywhere: while a canary of `newest` runs, its stable (primary) version; while the alias
/// sends all traffic to `newest`, the newest validated version older than it whose code
/// differs. `None` while the alias is elsewhere (mid-deploy, or already rolled back): only the
/// newest build is ever rolled back, so rollbacks never cascade.
pub fn rollback_target(
    current: &Alias,
    newest: &str,
    newest_code_sha256: &str,
    function: &str,
    versions: &[StatusVersion],
) -> Option<String> {
    if current.function_version != newest {
        let canary_of_newest =
            current.routing_weights.len() == 1 && current.routing_weights.contains_key(newest);
        return canary_of_newest.then(|| current.function_version.clone());
    }
    if !current.routing_weights.is_empty() {
        return None;
    }
    let newest_number = newest.parse::<u64>().ok()?;
    versions
        .iter()
        .filter(|v| {
            v.function_name == function && v.validated && v.code_sha256 != newest_code_sha256
        })
        .filter_map(|v| v.version.parse::<u64>().ok().map(|n| (n, v)))
        .filter(|(n, _)| *n < newest_number)
        .max_by_key(|(n, _)| *n)
        .map(|(_, v)| v.version.clone())
}

/// How soon to look at a running canary again: after `promoteAfter` when that is shorter
/// than [`requeue::CANARY_SECONDS`] (a 3s canary is not left running for 30s), never sooner
/// than a second.
pub fn canary_requeue_seconds(promote_after: &str) -> u64 {
    parse_go_duration(promote_after).map_or(requeue::CANARY_SECONDS, |d| {
        d.as_secs().clamp(1, requeue::CANARY_SECONDS)
    })
}

/// Whether the alias routes exactly as `routing` says.
pub fn alias_routes(alias: &Alias, routing: &AliasRouting) -> bool {
    if alias.function_version != routing.function_version {
        return false;
    }
    match &routing.canary {
        None => alias.routing_weights.is_empty(),
        Some(canary) => {
            alias.routing_weights.len() == 1
                && alias
                    .routing_weights
                    .get(&canary.version)
                    .is_some_and(|w| (w - f64::from(canary.weight_percent) / 100.0).abs() < 0.005)
        }
    }
}

/// The newest published version whose code is `code_sha256`.
fn newest_version_with_code<'v>(
    versions: &'v [PublishedVersion],
    code_sha256: &str,
) -> Option<&'v str> {
    versions
        .iter()
        .filter(|v| v.code_sha256.as_deref() == Some(code_sha256))
        .filter_map(|v| {
            v.version
                .parse::<u64>()
                .ok()
                .map(|n| (n, v.version.as_str()))
        })
        .max_by_key(|(n, _)| *n)
        .map(|(_, version)| version)
}
