//! The parts every Stagehand kind shares: lifecycle policy (adoption, deletion, management mode,
//! resync), S3 object references, and the status envelope (observedGeneration + conditions).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Lifecycle settings shared by every Stagehand kind. Flattened into each `spec`, so the fields
/// appear directly as `spec.adopt`, `spec.deletionPolicy`, `spec.management` and
/// `spec.resyncInterval`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Lifecycle {
    /// Take over existing AWS resources that carry no `stagehand.dev/owner` tag. Without it an
    /// untagged resource with the declared name is reported (condition `Stalled`, reason
    /// `AdoptionRequired`) and left alone. Adopted resources are tagged on first write. Resources
    /// tagged for another object are never adopted.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub adopt: bool,

    /// What happens to AWS resources when this object is deleted. `Delete` removes what
    /// Stagehand manages for this object; `Retain` leaves AWS exactly as it is and only removes
    /// the finalizer. When unset, resources Stagehand created are deleted and resources it
    /// adopted are retained.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_policy: Option<DeletionPolicy>,

    /// `Full` observes, plans and acts. `ObserveOnly` observes and reports drift in status and
    /// metrics but never changes anything in AWS (a safe way to introduce Stagehand next to
    /// existing deploy scripts).
    #[serde(default)]
    pub management: Management,

    /// How often a converged object is re-checked against AWS, as a Go-style duration
    /// (`90s`, `5m`, `1h30m`). Jittered by ±10% so that many objects do not resync together.
    /// Minimum 30s. Defaults to the controller's `--default-resync` (5m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"))]
    #[schemars(extend("x-kubernetes-validations" = [
        {"rule": "duration(self) >= duration('30s')", "message": "resyncInterval must be at least 30s"}
    ]))]
    pub resync_interval: Option<String>,
}

/// What happens to AWS resources when the Kubernetes object is deleted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum DeletionPolicy {
    /// Delete the AWS resources this object manages (only those tagged as owned by it).
    Delete,
    /// Leave AWS untouched; only the finalizer is removed.
    Retain,
}

/// Whether Stagehand may change AWS for this object.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum Management {
    /// Observe, plan and act.
    #[default]
    Full,
    /// Observe, plan and report drift; never act.
    ObserveOnly,
}

/// One S3 object's content, as HEAD identifies it: what a hash or a checked build read from the
/// object stays valid for.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct S3ObjectIdentity {
    /// Bucket name.
    pub bucket: String,
    /// Object key.
    pub key: String,
    /// The object version when it was read (versioned buckets, or a pinned `versionId`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    /// The object's ETag when it was read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e_tag: Option<String>,
}

/// A reference to one object in S3.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct S3ObjectRef {
    /// Bucket name.
    #[schemars(regex(pattern = r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$"))]
    pub bucket: String,
    /// Object key.
    #[schemars(length(min = 1, max = 1024))]
    pub key: String,
    /// Pin one object version (versioned buckets). Without it the current version is used and
    /// a new upload under the same key is picked up on the next reconcile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024))]
    pub version_id: Option<String>,
}

/// The status fields every Stagehand kind reports. Flattened into each kind's status.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CommonStatus {
    /// The `metadata.generation` this status describes. While it differs from the object's
    /// generation the object is still being reconciled (kstatus: InProgress).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// kstatus conditions (`Ready`, `Reconciling`, `Stalled`) and the kind's domain conditions.
    /// Transition times change only when a condition's status changes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,

    /// A one-line human summary of the last reconcile (what was done, or what is wrong and how
    /// to fix it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// An intent record: an AWS resource this object is about to create that AWS cannot tag in the
/// creating call (S3 `CreateBucket` takes no tags; `PutBucketTagging` follows it). Written to
/// status, and accepted by the API server, before the create is sent; cleared once the
/// resource carries its `stagehand.dev/owner` tag. A process killed between the create and the
/// tagging leaves an untagged resource: with this record it is recognised as the object's own
/// creation (tagged, used, deleted with the object) instead of a stranger's needing `adopt`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PendingCreate {
    /// What is being created (`Bucket`).
    pub kind: String,
    /// Its name in AWS.
    pub name: String,
}

/// Region names such as `us-east-1`, `eu-central-2`, `us-gov-west-1`, `cn-north-1`.
pub const REGION_PATTERN: &str = r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]+$";
