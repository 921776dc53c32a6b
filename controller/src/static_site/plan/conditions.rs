//! `ContentInSync`: whether the bucket holds exactly the revision to serve, and if not, what
//! this round changes.

use stagehand_crds::condition::CONTENT_IN_SYNC;

use super::{Planner, reason};
use crate::base::conditions::{ConditionStatus, DesiredCondition};

impl Planner<'_> {
    pub(super) fn push_content_condition(&mut self) {
        let sync = &self.plan.sync;
        let changes = self.plan.actions.iter().any(super::Action::is_content);
        let (status, reason, message) = if self.hash_pending {
            (
                ConditionStatus::Unknown,
                reason::SOURCE_HASH_PENDING,
                "source objects without an S3 checksum are being hashed".to_owned(),
            )
        } else if changes {
            (
                ConditionStatus::False,
                reason::CONTENT_DRIFT,
                format!(
                    "{} to upload ({} bytes), {} metadata update(s), {} to restore, {} to delete",
                    sync.uploaded,
                    sync.uploaded_bytes,
                    sync.metadata_updated,
                    sync.restored,
                    sync.deleted
                ),
            )
        } else if let Some(revision) = &self.plan.revision {
            (
                ConditionStatus::True,
                reason::CONTENT_MATCHES,
                format!("the bucket serves revision {revision}"),
            )
        } else {
            (
                ConditionStatus::Unknown,
                reason::CONTENT_DRIFT,
                "the revision to serve is not known".to_owned(),
            )
        };
        self.plan.conditions.push(DesiredCondition {
            type_: CONTENT_IN_SYNC,
            status,
            reason: reason.to_owned(),
            message,
        });
    }
}
