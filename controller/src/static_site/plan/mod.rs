//! Every reason Stagehand changes a StaticSite in AWS, and in which order.
//!
//! `plan(spec, context, rules, observed)` is pure: no I/O, no clock, no randomness. The
//! predicates live with their concern: `ownership.rs` (whose bucket and distribution these
//! are), `infrastructure.rs` (bucket settings, OAC, policy, distribution), `content.rs` (the
//! revision to serve and how each key gets there), `invalidation.rs` (which paths),
//! `revisions.rs` (what `keepRevisions` lets go); `conditions.rs` sums them up. Deletion of
//! the object is `teardown.rs`'s, a plan of its own.
//!
//! Rules that shape the order:
//! - A stall stops everything: another owner's bucket or distribution, one to adopt without
//!   `adopt`, a refused archive, an unknown `rollbackTo`, a reused `revision` label — the plan
//!   then has no actions at all, and the live site is untouched.
//! - A bucket to create is first recorded in status (`status.pendingCreate`, `base::intent`):
//!   S3 cannot tag it at `CreateBucket`, and the record is how an untagged bucket left by a crash
//!   between the create and the tagging is known as the site's own (tagged, no `adopt`). A plan
//!   whose status lacks the record says so (`record_first`): the round acts on nothing, writes
//!   the record, and the next round creates the bucket. The plan still lists every action, so
//!   `stagehand plan` shows the whole change.
//! - The bucket before anything in it; the OAC before the distribution that uses it; the
//!   distribution before the policy that names its ARN (a new distribution's policy follows on
//!   the next round).
//! - Content, in this order: uploads, metadata copies and version restores (the new revision
//!   complete under its keys), then its manifest, then deletion of keys it does not have, then
//!   the invalidation, then the served record. Act stops at the first failure, so nothing is
//!   deleted before the manifest of a complete revision is written, and a crash anywhere
//!   resumes from what is live: a key whose live object already holds the wanted content and
//!   metadata is never uploaded again.
//! - While prefix objects are hashed, no other content action is planned.
//! - Pruning (manifests beyond `keepRevisions`, unreferenced versions) only in a round with
//!   nothing else to do.
//! - The gate (`ObserveOnly`, paused) removes every action and wait; drift is still reported.

use std::collections::BTreeMap;

use stagehand_crds::{PendingCreate, StaticSiteSpec};

use super::metadata::MetadataRules;
use super::observed::Observed;
use crate::base::conditions::{DesiredCondition, ReconcileOutcome};
use crate::base::gates::ActGate;
pub use crate::base::plan::{Stall, Wait};
use crate::base::plan::{outcome, requeue_after_seconds};

mod action;
mod conditions;
mod content;
mod infrastructure;
pub mod invalidation;
mod ownership;
pub mod reason;
mod revisions;
mod teardown;

pub use self::action::{
    Action, ActionFacts, BucketSetting, Copy, PlannedManifest, PlannedObject, PlannedServed,
    Transfer, VersionRef, Written,
};
pub use self::content::{KeyVerdict, key_verdict};
pub use self::infrastructure::{
    bucket_policy, distribution_caller_reference, oac_name, site_statement,
};
pub use self::ownership::PENDING_BUCKET;
pub use self::revisions::{PRUNE_BATCH, kept_revisions};
pub use self::teardown::{TeardownScope, teardown};

/// How long to wait before looking again, per thing being waited for.
pub mod requeue {
    /// A distribution deploying its configuration (minutes on AWS).
    pub const DISTRIBUTION_SECONDS: u64 = 30;
    /// An invalidation (typically well under a minute).
    pub const INVALIDATION_SECONDS: u64 = 10;
    /// The bucket's intent record was written: create it as soon as the record is read back.
    pub const CREATE_RECORDED_SECONDS: u64 = 1;
}

/// Who is planning, for what, and whether acting is allowed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanContext {
    /// `stagehand.dev/owner` value of this object (`<namespace>/StaticSite/<name>`).
    pub owner: String,
    /// `stagehand.dev/cluster` value of this controller.
    pub cluster_id: String,
    /// `metadata.uid`: the distribution's `CallerReference` derives from it.
    pub uid: String,
    /// `metadata.generation` the plan is for.
    pub generation: i64,
    pub gate: ActGate,
    /// RFC 3339 time of this round (observe reads the clock): a new manifest's `createdAt`.
    pub now: String,
}

/// Something that differs between the spec and AWS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Drift {
    pub field: DriftField,
    /// The bucket, distribution or key concerned.
    pub subject: String,
    pub detail: String,
}

/// What drifted: the `field` label of `stagehand_drift_detected_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum DriftField {
    Ownership,
    Bucket,
    Policy,
    OriginAccessControl,
    Distribution,
    Content,
    Revision,
}

impl DriftField {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Ownership => "ownership",
            Self::Bucket => "bucket",
            Self::Policy => "policy",
            Self::OriginAccessControl => "origin_access_control",
            Self::Distribution => "distribution",
            Self::Content => "content",
            Self::Revision => "revision",
        }
    }
}

/// What this round's content actions amount to (status `lastSync`, the sync metrics).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncSummary {
    pub uploaded: usize,
    pub uploaded_bytes: u64,
    pub metadata_updated: usize,
    pub restored: usize,
    pub deleted: usize,
    pub invalidation_paths: Vec<String>,
}

/// The decision for one reconcile.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// What to do, in order. Empty when stalled, or not allowed to act.
    pub actions: Vec<Action>,
    pub drift: Vec<Drift>,
    /// `ContentInSync`.
    pub conditions: Vec<DesiredCondition>,
    pub waits: Vec<Wait>,
    pub stalled: Option<Stall>,
    /// The revision the site is to serve (`None` until known: source unread or refused).
    pub revision: Option<String>,
    /// Set while `rollbackTo` is in effect: the revision it replaced.
    pub rolled_back_from: Option<String>,
    pub sync: SyncSummary,
    pub gate: ActGate,
    /// The intent record status is to carry after this round (`status.pendingCreate`), unless
    /// an action done this round tagged the bucket.
    pub pending_create: Option<PendingCreate>,
    /// The actions wait for `pending_create` to be in status (written, and read back by the
    /// next round): this round runs none of them.
    pub record_first: bool,
}

impl Plan {
    /// A plan with nothing in it yet.
    pub(crate) fn empty(gate: ActGate) -> Self {
        Self {
            actions: Vec::new(),
            drift: Vec::new(),
            conditions: Vec::new(),
            waits: Vec::new(),
            stalled: None,
            revision: None,
            rolled_back_from: None,
            sync: SyncSummary::default(),
            gate,
            pending_create: None,
            record_first: false,
        }
    }

    pub fn requeue_after_seconds(&self) -> Option<u64> {
        requeue_after_seconds(&self.waits)
    }

    pub fn condition(&self, type_: &str) -> Option<&DesiredCondition> {
        self.conditions.iter().find(|c| c.type_ == type_)
    }

    /// The actions of one kind (`Action::facts().kind`).
    pub fn actions_of(&self, kind: &str) -> Vec<&Action> {
        self.actions
            .iter()
            .filter(|a| a.facts().kind == kind)
            .collect()
    }

    /// What the kstatus conditions say about this plan, before any action ran.
    pub fn outcome(&self) -> ReconcileOutcome {
        outcome(
            self.gate,
            self.stalled.as_ref(),
            self.drift.iter().map(|d| d.field.as_str()),
            &self.actions,
            &self.waits,
            || match &self.revision {
                Some(revision) => format!("serving revision {revision}"),
                None => "nothing to serve".to_owned(),
            },
        )
    }
}

/// Decides what to do for one StaticSite. Pure.
pub fn plan(
    spec: &StaticSiteSpec,
    context: &PlanContext,
    rules: &MetadataRules,
    observed: &Observed,
) -> Plan {
    let mut planner = Planner {
        spec,
        context,
        rules,
        observed,
        plan: Plan::empty(context.gate),
        hash_pending: false,
        distribution_created_now: false,
    };
    planner.check_ownership();
    planner.plan_bucket();
    planner.plan_distribution();
    if let Some(desired) = planner.desired_revision() {
        planner.plan_content(&desired);
    }
    planner.plan_waits();
    planner.plan_pruning();
    planner.finish()
}

/// One plan in the making.
struct Planner<'a> {
    spec: &'a StaticSiteSpec,
    context: &'a PlanContext,
    rules: &'a MetadataRules,
    observed: &'a Observed,
    plan: Plan,
    /// Prefix objects are being hashed: content waits for them.
    hash_pending: bool,
    /// The distribution is created this round: its cache is empty, nothing to invalidate.
    distribution_created_now: bool,
}

impl Planner<'_> {
    fn stall(&mut self, reason: &'static str, message: String) {
        if self.plan.stalled.is_none() {
            self.plan.stalled = Some(Stall { reason, message });
        }
    }

    fn wait(&mut self, reason: &'static str, subject: impl Into<String>, seconds: u64) {
        self.plan.waits.push(Wait {
            reason,
            subject: subject.into(),
            requeue_after_seconds: seconds,
        });
    }

    fn drift(&mut self, field: DriftField, subject: &str, detail: String) {
        self.plan.drift.push(Drift {
            field,
            subject: subject.to_owned(),
            detail,
        });
    }

    fn act(&mut self, action: Action) {
        self.plan.actions.push(action);
    }

    /// The bucket's name.
    fn bucket(&self) -> &str {
        &self.spec.bucket.name
    }

    /// The ownership tags written on what the site creates or adopts.
    fn ownership_tags(&self) -> BTreeMap<String, String> {
        crate::aws::tags::ownership_tags(&self.context.owner, &self.context.cluster_id)
    }

    /// Waits on AWS: a distribution deploying, an invalidation to complete (`wait: true`).
    fn plan_waits(&mut self) {
        if let Some(distribution) = &self.observed.distribution
            && !distribution.is_deployed()
        {
            let subject = format!("distribution {}", distribution.id);
            self.wait(
                reason::DISTRIBUTION_DEPLOYING,
                subject,
                requeue::DISTRIBUTION_SECONDS,
            );
        }
        let content_pending = self.plan.actions.iter().any(Action::is_content);
        if let Some(invalidation) = &self.observed.invalidation
            && self.spec.invalidation.wait
            && !invalidation.is_completed()
            && !content_pending
        {
            let subject = format!("invalidation {}", invalidation.id);
            self.wait(
                reason::INVALIDATION_IN_PROGRESS,
                subject,
                requeue::INVALIDATION_SECONDS,
            );
        }
    }

    /// A stall, or a gate that does not let Stagehand act, leaves no action, and the intent
    /// record as it was.
    fn finish(mut self) -> Plan {
        self.push_content_condition();
        if self.plan.stalled.is_some() || !self.context.gate.may_act() {
            self.plan.actions.clear();
            self.plan.waits.clear();
            self.plan.record_first = false;
            self.plan
                .pending_create
                .clone_from(&self.observed.pending_create);
        }
        self.plan
    }
}

#[cfg(test)]
mod tests;
