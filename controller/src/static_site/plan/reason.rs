//! Condition, wait and stall reasons: CamelCase, a fixed set (they are metric labels too).

pub use crate::base::plan::APPLYING;
pub const OWNERSHIP_CONFLICT: &str = "OwnershipConflict";
pub const ADOPTION_REQUIRED: &str = "AdoptionRequired";
pub const BUCKET_NOT_FOUND: &str = "BucketNotFound";
pub const DISTRIBUTION_NOT_FOUND: &str = "DistributionNotFound";
pub const SOURCE_NOT_FOUND: &str = "SourceNotFound";
/// `spec.rollbackTo` names a revision whose manifest is not in the bucket.
pub const REVISION_NOT_FOUND: &str = "RevisionNotFound";
/// `spec.revision` names a stored revision whose content differs from the source's.
pub const REVISION_REUSED: &str = "RevisionReused";
/// `ContentInSync=True`.
pub const CONTENT_MATCHES: &str = "ContentMatches";
/// `ContentInSync=False` while the bucket differs from the revision.
pub const CONTENT_DRIFT: &str = "ContentDrift";
/// `ContentInSync=Unknown` while prefix objects are being hashed.
pub const SOURCE_HASH_PENDING: &str = "SourceHashPending";
pub const DISTRIBUTION_DEPLOYING: &str = "DistributionDeploying";
/// The bucket to create is being recorded in status; the next round creates it.
pub const CREATE_RECORDED: &str = "CreateRecorded";
pub const INVALIDATION_IN_PROGRESS: &str = "InvalidationInProgress";
/// Deletion: the distribution is being disabled (CloudFront deletes only disabled ones).
pub const DISTRIBUTION_DISABLING: &str = "DistributionDisabling";
