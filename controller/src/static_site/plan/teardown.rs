//! What deleting a StaticSite does to AWS, one round at a time (the finalizer stays until a
//! round plans nothing and waits on nothing).
//!
//! `deletionPolicy: Delete` (the default for what Stagehand created) disables the
//! distribution, waits with requeues until CloudFront has deployed that (minutes on AWS: never a
//! blocking loop), deletes it `If-Match` its ETag, then deletes the OAC; it empties the bucket
//! of every version and delete marker, 1,000 a call, then deletes it. `Retain` leaves both.
//! Only resources tagged as this site's are touched, whatever the policy — and the empty,
//! untagged bucket its intent record names (created, not tagged yet); `ObserveOnly` and a
//! paused object never write.

use std::collections::BTreeMap;

use stagehand_crds::StaticSiteSpec;

use super::action::Action;
use super::ownership::bucket_is_own_creation;
use super::revisions::PRUNE_BATCH;
use super::{Plan, PlanContext, Wait, reason, requeue};
use crate::aws::tags::{self, Ownership};
use crate::static_site::observed::Observed;

/// Which resources deletion removes: each `true` when its effective deletion policy is
/// `Delete` (`runtime::effective_deletion_policy` with whether Stagehand created it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TeardownScope {
    pub bucket: bool,
    pub distribution: bool,
}

/// The next step of deleting the site. Observe must have listed every version of the bucket
/// (`observed.versions`, latest ones included) when the bucket is to be emptied.
pub fn teardown(
    spec: &StaticSiteSpec,
    context: &PlanContext,
    scope: TeardownScope,
    observed: &Observed,
) -> Plan {
    let mut plan = Plan::empty(context.gate);
    if !context.gate.may_act() {
        return plan;
    }
    let ours = |tags| tags::ownership(tags, &context.owner, &context.cluster_id) == Ownership::Ours;
    if scope.distribution {
        match &observed.distribution {
            Some(distribution) if ours(&distribution.tags) => {
                let subject = format!("distribution {}", distribution.id);
                if distribution.config.enabled {
                    let mut config = distribution.config.clone();
                    config.enabled = false;
                    plan.actions.push(Action::UpdateDistribution {
                        id: distribution.id.clone(),
                        if_match: distribution.e_tag.clone(),
                        config,
                    });
                    plan.waits
                        .push(wait(reason::DISTRIBUTION_DISABLING, subject));
                } else if !distribution.is_deployed() {
                    plan.waits
                        .push(wait(reason::DISTRIBUTION_DISABLING, subject));
                } else {
                    plan.actions.push(Action::DeleteDistribution {
                        id: distribution.id.clone(),
                        if_match: distribution.e_tag.clone(),
                    });
                }
            }
            Some(_) => {}
            None => {
                if let Some(oac) = &observed.origin_access_control {
                    plan.actions
                        .push(Action::DeleteOriginAccessControl { id: oac.id.clone() });
                }
            }
        }
    }
    if scope.bucket
        && let Some(bucket) = &observed.bucket
        && bucket_is_the_sites(spec, context, observed, &bucket.tags)
        && let Some(versions) = &observed.versions
    {
        let name = spec.bucket.name.clone();
        if versions.is_empty() {
            plan.actions.push(Action::DeleteBucket { bucket: name });
        } else {
            for chunk in versions.chunks(PRUNE_BATCH) {
                plan.actions.push(Action::EmptyBucket {
                    bucket: name.clone(),
                    versions: chunk
                        .iter()
                        .map(|v| {
                            // An object written before versioning was enabled has version
                            // `null`, which is how S3 names it in a delete too.
                            let version = v.version_id.clone().unwrap_or_else(|| "null".to_owned());
                            (v.key.clone(), version)
                        })
                        .collect(),
                });
            }
        }
    }
    plan
}

/// Whether the bucket is the site's to delete: tagged as its own, or untagged and its own
/// creation (a crash between `CreateBucket` and the tagging, then deletion before a round
/// tagged it).
fn bucket_is_the_sites(
    spec: &StaticSiteSpec,
    context: &PlanContext,
    observed: &Observed,
    tags: &BTreeMap<String, String>,
) -> bool {
    match tags::ownership(tags, &context.owner, &context.cluster_id) {
        Ownership::Ours => true,
        Ownership::Untagged => bucket_is_own_creation(spec, observed),
        Ownership::OtherOwner(_) => false,
    }
}

fn wait(reason: &'static str, subject: String) -> Wait {
    Wait {
        reason,
        subject,
        requeue_after_seconds: requeue::DISTRIBUTION_SECONDS,
    }
}
