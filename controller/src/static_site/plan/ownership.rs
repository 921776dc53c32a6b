//! Whose bucket and distribution these are. Another owner's bucket or distribution is never
//! touched and stalls the site (a second site cannot take over the first one's bucket); an
//! untagged bucket is managed only with `adopt: true`, unless it is the site's own creation
//! (its intent record names it and it holds nothing: a crash came between `CreateBucket` and
//! the tagging), which is tagged without `adopt`. An untagged distribution named by
//! `distribution.id` is the one exception that does not stall: without `adopt` it is only read
//! and invalidated, never reconfigured.

use stagehand_crds::StaticSiteSpec;

use super::action::Action;
use super::{DriftField, Planner, reason};
use crate::aws::tags::{self, Ownership};
use crate::base::intent;
use crate::static_site::observed::Observed;

/// The `kind` of the site bucket's intent record (`status.pendingCreate.kind`).
pub const PENDING_BUCKET: &str = "Bucket";

/// Whether the site's bucket, found untagged, is the site's own creation: the intent record
/// names it and it holds no version (a bucket the site creates is written only once tagged).
pub fn bucket_is_own_creation(spec: &StaticSiteSpec, observed: &Observed) -> bool {
    let empty = observed.versions.as_ref().is_some_and(Vec::is_empty);
    intent::is_own_creation(
        observed.pending_create.as_ref(),
        PENDING_BUCKET,
        &spec.bucket.name,
        empty,
    )
}

impl Planner<'_> {
    pub(super) fn check_ownership(&mut self) {
        let owner = self.context.owner.clone();
        let cluster = self.context.cluster_id.clone();
        if let Some(bucket) = &self.observed.bucket {
            let what = format!("bucket {}", self.bucket());
            match tags::ownership(&bucket.tags, &owner, &cluster) {
                Ownership::Ours => {}
                Ownership::Untagged if bucket_is_own_creation(self.spec, self.observed) => {
                    self.plan
                        .pending_create
                        .clone_from(&self.observed.pending_create);
                    self.act(Action::ClaimBucket {
                        bucket: self.bucket().to_owned(),
                        tags: tags::missing_ownership_tags(&bucket.tags, &owner, &cluster),
                    });
                }
                Ownership::Untagged if self.spec.lifecycle.adopt => {
                    self.act(Action::AdoptBucket {
                        bucket: self.bucket().to_owned(),
                        tags: tags::missing_ownership_tags(&bucket.tags, &owner, &cluster),
                    });
                }
                Ownership::Untagged => {
                    self.drift(
                        DriftField::Ownership,
                        &what,
                        "not tagged as owned by this site".to_owned(),
                    );
                    let recorded = intent::records(
                        self.observed.pending_create.as_ref(),
                        PENDING_BUCKET,
                        self.bucket(),
                    );
                    let holds = if recorded {
                        " and holds objects this site never wrote"
                    } else {
                        ""
                    };
                    self.stall(
                        reason::ADOPTION_REQUIRED,
                        format!(
                            "{what} exists without a {} tag{holds}; set spec.adopt: true to let this site manage it",
                            tags::OWNER_TAG
                        ),
                    );
                }
                Ownership::OtherOwner(other) => self.conflict(&what, &other),
            }
        }
        if let Some(distribution) = &self.observed.distribution {
            let what = format!("distribution {}", distribution.id);
            match tags::ownership(&distribution.tags, &owner, &cluster) {
                Ownership::Untagged if self.spec.lifecycle.adopt => {
                    self.act(Action::AdoptDistribution {
                        arn: distribution.arn.clone(),
                        tags: tags::missing_ownership_tags(&distribution.tags, &owner, &cluster),
                    });
                }
                Ownership::OtherOwner(other) => self.conflict(&what, &other),
                Ownership::Ours | Ownership::Untagged => {}
            }
        }
    }

    /// Whether the site may change the distribution's configuration: it is tagged as the
    /// site's, or being adopted.
    pub(super) fn manages_distribution(&self) -> bool {
        self.observed.distribution.as_ref().is_some_and(|d| {
            match tags::ownership(&d.tags, &self.context.owner, &self.context.cluster_id) {
                Ownership::Ours => true,
                Ownership::Untagged => self.spec.lifecycle.adopt,
                Ownership::OtherOwner(_) => false,
            }
        })
    }

    fn conflict(&mut self, what: &str, other: &str) {
        self.drift(DriftField::Ownership, what, format!("owned by {other}"));
        self.stall(
            reason::OWNERSHIP_CONFLICT,
            format!(
                "{what} is owned by {other}; Stagehand never changes another owner's resources"
            ),
        );
    }
}
