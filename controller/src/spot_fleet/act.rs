//! Executes a SpotFleet plan's [`Action`]s in order through the EC2 adapter, stopping at the
//! first failure, and tells the EC2 inventory what each one wrote. Each action is safe to
//! repeat after a crash: the launch template is looked for by owner tag and its version by the
//! spec hash in its description before anything is created; instances are tagged at launch (no
//! untagged window); terminating or tagging an instance twice changes nothing. Before a launch
//! the spec's image and security groups are looked up (once per id and region, then
//! remembered): a missing one stalls the fleet naming it. Unused launch template versions are
//! deleted (`PruneVersions`) and the launch cache told.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use sha2::{Digest, Sha256};
use stagehand_crds::SpotFleetSpec;

use super::error::SpotFleetError;
use super::observed::Offering;
use super::plan::{Action, ReplacementReason, TerminateReason, Written};
use super::spec_hash::{Desired, is_spec_hash, spec_hash_tags};
use crate::aws::AwsError;
use crate::aws::ec2::{
    Ec2, FleetLaunch, FleetOverride, FleetRequest, LaunchTemplateInfo, LaunchTemplateSpec,
    SpecRefusal, refused_spec_field,
};
use crate::aws::tags::{self, OWNER_TAG, Ownership};
use crate::inventory::Inventory;
use crate::inventory::launch::FleetTemplate;

/// EC2's limit on a launch template name.
const TEMPLATE_NAME_MAX: usize = 128;

/// Who acts, where, with which shared state.
#[derive(Debug)]
pub struct Actor<'a> {
    pub inventory: &'a Inventory,
    pub spec: &'a SpotFleetSpec,
    /// The rendered user data and the spec hash every launch is tagged with.
    pub desired: &'a Desired,
    /// `stagehand.dev/owner` value of the object.
    pub owner: &'a str,
    pub cluster_id: &'a str,
    /// The round's clock: when a failed launch is recorded as failed.
    pub now: jiff::Timestamp,
}

/// What the executed actions did.
#[derive(Debug, Default)]
pub struct ActReport {
    /// The actions that succeeded, in order.
    pub done: Vec<Action>,
    /// The instances launched this round.
    pub launched: Vec<String>,
    /// The launch template version launched from, when a launch ran.
    pub template_version: Option<i64>,
    /// The AWS error code of every pool the launch's `CreateFleet` refused (for the metric).
    pub launch_errors: Vec<String>,
    /// The action that failed (nothing after it ran).
    pub failure: Option<(Action, SpotFleetError)>,
}

/// The launch template name of the fleet owned by `owner`: the owner tag value itself (EC2
/// allows `/` in names), or a digest of it when that would be too long. The name is only how a
/// first launch creates the template; it is found again by its owner tag.
pub fn template_name(owner: &str) -> String {
    let name = format!("stagehand/{owner}");
    if name.len() <= TEMPLATE_NAME_MAX {
        return name;
    }
    let digest = Sha256::digest(owner.as_bytes());
    let mut hex = String::with_capacity(32);
    for byte in digest.iter().take(16) {
        let _ = write!(hex, "{byte:02x}");
    }
    format!("stagehand/{hex}")
}

/// The pools of a launch: every instance type × subnet of the spec, without those a recent
/// launch found without capacity. A subnet whose zone is unknown is kept: only a known failure
/// is left out.
pub fn overrides(
    spec: &SpotFleetSpec,
    subnet_zones: &BTreeMap<String, String>,
    avoid: &[Offering],
) -> Vec<FleetOverride> {
    let mut pools = Vec::new();
    for instance_type in &spec.instance_types {
        for subnet in &spec.subnet_ids {
            let zone = subnet_zones.get(subnet);
            let unavailable = zone.is_some_and(|zone| {
                avoid
                    .iter()
                    .any(|o| o.instance_type == *instance_type && o.zone == *zone)
            });
            if !unavailable {
                pools.push(FleetOverride {
                    instance_type: instance_type.clone(),
                    subnet_id: subnet.clone(),
                    availability_zone: zone.cloned(),
                });
            }
        }
    }
    pools
}

impl Actor<'_> {
    /// Runs `actions` in order, stopping at the first failure; calls `on_start` before each.
    pub async fn execute_reporting(
        &self,
        actions: &[Action],
        mut on_start: impl FnMut(&Action),
    ) -> ActReport {
        let mut report = ActReport::default();
        for action in actions {
            on_start(action);
            let result = self.run(action, &mut report).await;
            // Also after a failure: a call that timed out may still have happened.
            self.mark_written(action);
            // A refused spec is a stall, not a failed launch: it must not grow the backoff
            // that would still hold the fixed spec back.
            let refused = matches!(result, Err(SpotFleetError::SpecRefused { .. }));
            self.count_failed_launch(action, result.is_ok() || refused);
            match result {
                Ok(()) => report.done.push(action.clone()),
                Err(error) => {
                    report.failure = Some((action.clone(), error));
                    break;
                }
            }
        }
        report
    }

    /// A launch EC2 refused, or the termination of a replacement that never became healthy,
    /// counts as a failed launch: the next one backs off (`inventory::launch`).
    fn count_failed_launch(&self, action: &Action, succeeded: bool) {
        let failed = match action {
            Action::Launch { .. } => !succeeded,
            Action::Terminate {
                reason: TerminateReason::Replaced(ReplacementReason::UnhealthyPastGrace),
                ..
            } => succeeded,
            _ => false,
        };
        if failed {
            self.inventory
                .ec2(&self.spec.region)
                .launch()
                .launch_failed(self.owner, self.now);
        }
    }

    /// Tells the inventory what `action` wrote: instances written by id and a launch
    /// (instances not known by id before) both make the next round read this fleet's own
    /// instances back; a launch also registered its instances in `launch`.
    fn mark_written(&self, action: &Action) {
        let ec2 = self.inventory.ec2(&self.spec.region);
        match action.facts().written {
            Written::Instances(_) | Written::Fleet => ec2.instances_written(self.owner),
            Written::Template => {}
        }
    }

    async fn run(&self, action: &Action, report: &mut ActReport) -> Result<(), SpotFleetError> {
        let step = match action {
            Action::Adopt { ids, tags } | Action::Restamp { ids, tags } => {
                self.tag_instances(ids, tags).await
            }
            Action::Terminate { ids, .. } => self.terminate(ids).await,
            Action::PruneVersions {
                template_id,
                versions,
            } => self.prune_versions(template_id, versions).await,
            Action::Launch { count, avoid, .. } => {
                return self.launch(*count, avoid, report).await;
            }
        };
        step.map_err(|source| SpotFleetError::Action {
            action: action.to_string(),
            source,
        })
    }

    fn ec2(&self) -> Ec2 {
        self.inventory.aws().ec2(&self.spec.region)
    }

    /// `Adopt` (the ownership tags) and `Restamp` (the current spec hash and version).
    async fn tag_instances(
        &self,
        ids: &[String],
        tags: &BTreeMap<String, String>,
    ) -> Result<(), AwsError> {
        self.ec2().create_tags(ids, tags).await
    }

    async fn terminate(&self, ids: &[String]) -> Result<(), AwsError> {
        self.ec2().terminate_instances(ids).await.map(|_| ())
    }

    /// What every instance of the desired spec is tagged with at launch: the user's tags, the
    /// spec hash and its version, and the ownership tags (which win any clash).
    pub fn instance_tags(&self) -> BTreeMap<String, String> {
        let mut tags = spec_hash_tags(&self.desired.hash);
        tags.extend(self.spec.tags.clone());
        tags.extend(tags::ownership_tags(self.owner, self.cluster_id));
        tags
    }

    /// `Launch`: the template version of the desired hash, then one `CreateFleet` for the
    /// whole count over every pool left. What EC2 refused goes to the inventory, so the next
    /// launch (of any fleet) leaves those pools out.
    async fn launch(
        &self,
        count: u32,
        avoid: &[Offering],
        report: &mut ActReport,
    ) -> Result<(), SpotFleetError> {
        let failed = |what: &str, source: AwsError| SpotFleetError::Action {
            action: format!("launch {count} instance(s): {what}"),
            source,
        };
        let ec2 = self.ec2();
        let inventory = self.inventory.ec2(&self.spec.region);
        let subnet_zones = inventory
            .launch()
            .subnet_zones(&self.spec.subnet_ids)
            .await
            .map_err(|source| self.refused_or(source, |s| failed("subnet zones", s)))?;
        let missing = self.look_before_launch().await.map_err(|source| {
            self.refused_or(source, |s| failed("image and security groups", s))
        })?;
        if let Some(refusal) = missing {
            return Err(self.refused(refusal));
        }
        let pools = overrides(self.spec, &subnet_zones, avoid);
        if pools.is_empty() {
            // Every pool is out of capacity: EC2 would refuse a fleet without pools as invalid.
            return Err(SpotFleetError::LaunchFailed {
                count,
                errors: "every instance type × subnet was recently refused for capacity".to_owned(),
            });
        }
        let tags = self.instance_tags();
        let template_spec = LaunchTemplateSpec {
            image_id: self.spec.image_id.clone(),
            user_data: self.desired.user_data.clone(),
            iam_instance_profile: self.spec.iam_instance_profile.clone(),
            key_name: self.spec.key_name.clone(),
            security_group_ids: self.spec.security_group_ids.clone(),
            tags: tags.clone(),
            description: Some(self.desired.hash.clone()),
            ..LaunchTemplateSpec::default()
        };
        let (template, version) = self
            .template_version(&ec2, &template_spec)
            .await
            .inspect_err(|_| {
                // A remembered template may be what EC2 no longer has: find it again.
                inventory.launch().forget_template(self.owner);
            })
            .map_err(|e| match e {
                TemplateError::Aws(source) => {
                    self.refused_or(source, |s| failed("launch template", s))
                }
                TemplateError::NotOurs(name) => SpotFleetError::TemplateNotOurs {
                    name,
                    owner: self.owner.to_owned(),
                },
            })?;
        report.template_version = Some(version);
        let fleet = FleetRequest {
            launch_template_id: template.id.clone(),
            launch_template_version: version,
            overrides: pools,
            target_capacity: i32::try_from(count).unwrap_or(i32::MAX),
            max_price: self.spec.max_price.clone(),
            tags: tags.clone(),
            // No token: a retry after a lost answer is caught by the inventory, which counts
            // what was launched before any listing shows it.
            client_token: None,
        };
        let launch: FleetLaunch = ec2.create_fleet_instant(&fleet).await.map_err(|source| {
            // The remembered template or a subnet may be what EC2 refused: read them again.
            inventory
                .launch()
                .launch_refused(self.owner, &self.spec.subnet_ids);
            self.refused_or(source, |s| failed("CreateFleet", s))
        })?;
        inventory.launch_failed(&launch.errors);
        inventory.launch_finished(self.owner, &launch.errors);
        inventory.instances_launched(&launch.instances, &tags);
        report.launched.extend(launch.instance_ids());
        report
            .launch_errors
            .extend(launch.errors.iter().map(|e| e.code.clone()));
        let refusal = launch.errors.iter().find_map(|e| {
            let field = e.refused_spec_field()?;
            Some(self.refusal(field, &e.code, &e.message))
        });
        if launch.instances.is_empty()
            && let Some(refusal) = refusal
        {
            return Err(self.refused(refusal));
        }
        if !launch.instances.is_empty() {
            inventory.launch().spec_refused(self.owner, None);
        }
        if launch.instances.is_empty() && !launch.errors.is_empty() {
            let codes: BTreeSet<String> = launch
                .errors
                .iter()
                .map(|e| match (&e.instance_type, &e.availability_zone) {
                    (Some(t), Some(z)) => format!("{} ({t} in {z})", e.code),
                    _ => e.code.clone(),
                })
                .collect();
            return Err(SpotFleetError::LaunchFailed {
                count,
                errors: codes.into_iter().collect::<Vec<_>>().join(", "),
            });
        }
        Ok(())
    }

    /// The refusal EC2 would give for the spec's image or security groups, looked up first:
    /// EC2 refuses a launch naming a missing one, but moto launches anyway, and this names
    /// every missing group at once. Ids known to exist cost no call (`inventory::launch`).
    async fn look_before_launch(&self) -> Result<Option<SpecRefusal>, AwsError> {
        let missing = self
            .inventory
            .ec2(&self.spec.region)
            .launch()
            .missing(&self.spec.image_id, &self.spec.security_group_ids)
            .await?;
        Ok(missing.map(|missing| {
            let ids = missing.ids.join(", ");
            let (code, message) = if missing.field == "imageId" {
                (
                    "InvalidAMIID.NotFound",
                    format!("image {ids} does not exist (or is not shared with this account)"),
                )
            } else {
                (
                    "InvalidGroup.NotFound",
                    format!(
                        "security group(s) {ids} do not exist in {}",
                        self.spec.region
                    ),
                )
            };
            self.refusal(missing.field, code, &message)
        }))
    }

    /// `error` as a refusal of the spec when it blames a spec field (remembered for the plan to
    /// stall on), else as `otherwise` makes it.
    fn refused_or(
        &self,
        error: AwsError,
        otherwise: impl FnOnce(AwsError) -> SpotFleetError,
    ) -> SpotFleetError {
        let field = error
            .code
            .as_deref()
            .and_then(|code| refused_spec_field(code, &error.message));
        match (field, &error.code) {
            (Some(field), Some(code)) => self.refused(self.refusal(field, code, &error.message)),
            _ => otherwise(error),
        }
    }

    fn refusal(&self, field: &'static str, code: &str, message: &str) -> SpecRefusal {
        SpecRefusal {
            spec_hash: self.desired.hash.clone(),
            field,
            code: code.to_owned(),
            message: message.to_owned(),
        }
    }

    /// Remembers `refusal` for the fleet's plan and reports it.
    fn refused(&self, refusal: SpecRefusal) -> SpotFleetError {
        self.inventory
            .ec2(&self.spec.region)
            .launch()
            .spec_refused(self.owner, Some(refusal.clone()));
        SpotFleetError::SpecRefused {
            field: refusal.field,
            code: refusal.code,
            message: refusal.message,
        }
    }

    /// The fleet's launch template and the number of its version for the desired spec hash:
    /// from the region's launch cache when both are known, else found or created (and then
    /// remembered with every version of the template that names a spec hash, for pruning).
    async fn template_version(
        &self,
        ec2: &Ec2,
        spec: &LaunchTemplateSpec,
    ) -> Result<(LaunchTemplateInfo, i64), TemplateError> {
        let inventory = self.inventory.ec2(&self.spec.region);
        let cache = inventory.launch();
        let template = match cache.template(self.owner) {
            Some(FleetTemplate { template, versions }) => {
                if let Some(&version) = versions.get(&self.desired.hash) {
                    return Ok((template, version));
                }
                template
            }
            None => self.ensure_template(ec2, spec).await?,
        };
        let (template, versions, version) = self.ensure_version(ec2, template, spec).await?;
        cache.template_found(self.owner, template.clone(), versions);
        Ok((template, version))
    }
    /// The fleet's launch template: found by owner tag, else created under the fleet's name
    /// with the desired spec as version 1. A template of that name tagged for someone else is
    /// refused.
    async fn ensure_template(
        &self,
        ec2: &Ec2,
        first: &LaunchTemplateSpec,
    ) -> Result<LaunchTemplateInfo, TemplateError> {
        let ours = |t: &LaunchTemplateInfo| {
            tags::ownership(&t.tags, self.owner, self.cluster_id) == Ownership::Ours
        };
        let tagged = ec2.launch_templates_with_tag(OWNER_TAG, self.owner).await?;
        if let Some(template) = tagged.into_iter().find(|t| ours(t)) {
            return Ok(template);
        }
        let name = template_name(self.owner);
        let template = ec2
            .create_launch_template(
                &name,
                &tags::ownership_tags(self.owner, self.cluster_id),
                first,
                None,
            )
            .await?;
        if !ours(&template) {
            return Err(TemplateError::NotOurs(name));
        }
        Ok(template)
    }

    /// The number of the template version whose description is the desired spec hash,
    /// created when there is none; with the template (its default version as described) and
    /// every version that names a spec hash, by hash (the newest of a hash written twice).
    async fn ensure_version(
        &self,
        ec2: &Ec2,
        mut template: LaunchTemplateInfo,
        spec: &LaunchTemplateSpec,
    ) -> Result<(LaunchTemplateInfo, BTreeMap<String, i64>, i64), AwsError> {
        let described = ec2.launch_template_versions(&template.id).await?;
        if let Some(default) = described.iter().find(|v| v.is_default) {
            template.default_version = Some(default.number);
        }
        // Oldest first: a hash written twice keeps its newest version. A version whose
        // description is not a spec hash was added by hand: not ours to launch from or prune.
        let mut versions: BTreeMap<String, i64> = described
            .iter()
            .filter_map(|v| Some((v.description.clone().filter(|d| is_spec_hash(d))?, v.number)))
            .collect();
        let hash = &self.desired.hash;
        let number = if let Some(&number) = versions.get(hash) {
            number
        } else {
            let created = ec2
                .create_launch_template_version(&template.id, spec, None)
                .await?;
            versions.insert(hash.clone(), created.number);
            created.number
        };
        Ok((template, versions, number))
    }

    /// `PruneVersions`: deletes the versions, then tells the launch cache they are gone. A
    /// version EC2 refused to delete is forgotten too (logged): it is not asked for again until
    /// the template is read afresh, so a refusal cannot turn into a call every round.
    async fn prune_versions(&self, template_id: &str, versions: &[i64]) -> Result<(), AwsError> {
        let refused = self
            .ec2()
            .delete_launch_template_versions(template_id, versions)
            .await?;
        for (number, code) in &refused {
            tracing::info!(
                owner = self.owner,
                template_id,
                version = number,
                code = code.as_str(),
                "EC2 kept a launch template version Stagehand found unused"
            );
        }
        self.inventory
            .ec2(&self.spec.region)
            .launch()
            .versions_deleted(self.owner, versions);
        Ok(())
    }
}

/// Why the fleet's launch template could not be had.
enum TemplateError {
    Aws(AwsError),
    NotOurs(String),
}

impl From<AwsError> for TemplateError {
    fn from(error: AwsError) -> Self {
        Self::Aws(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_names_are_the_owner_or_a_digest_of_it() {
        assert_eq!(
            template_name("ml/SpotFleet/gpu"),
            "stagehand/ml/SpotFleet/gpu"
        );
        let long = format!("ml/SpotFleet/{}", "x".repeat(200));
        let name = template_name(&long);
        assert_eq!(name.len(), "stagehand/".len() + 32);
        assert_eq!(name, template_name(&long), "stable");
    }

    #[test]
    fn pools_leave_out_only_known_unavailable_offerings() {
        let spec: SpotFleetSpec = serde_json::from_value(serde_json::json!({
            "region": "us-east-1",
            "capacity": 2,
            "instanceTypes": ["t3.small", "t3a.small"],
            "imageId": "ami-12345678",
            "subnetIds": ["subnet-0000000a", "subnet-0000000b"],
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        let zones = BTreeMap::from([("subnet-0000000a".to_owned(), "us-east-1a".to_owned())]);
        let avoid = [
            Offering {
                instance_type: "t3.small".into(),
                zone: "us-east-1a".into(),
            },
            // The zone of subnet b is unknown: it is still tried.
            Offering {
                instance_type: "t3a.small".into(),
                zone: "us-east-1b".into(),
            },
        ];
        let pools: Vec<(String, String)> = overrides(&spec, &zones, &avoid)
            .into_iter()
            .map(|o| (o.instance_type, o.subnet_id))
            .collect();
        assert_eq!(
            pools,
            [
                ("t3.small".to_owned(), "subnet-0000000b".to_owned()),
                ("t3a.small".to_owned(), "subnet-0000000a".to_owned()),
                ("t3a.small".to_owned(), "subnet-0000000b".to_owned()),
            ]
        );
    }
}
