//! Stagehand's API (`stagehand.dev/v1alpha1`): the `LambdaStage`, `SpotFleet` and `StaticSite`
//! custom resources, their validation (OpenAPI schema + CEL rules) and the names every part of
//! Stagehand agrees on (finalizer, annotations, tags, condition types).
//!
//! The doc comments on the types are the text `kubectl explain` shows.

pub mod common;
pub mod lambda_stage;
pub mod spot_fleet;
pub mod static_site;
pub mod validation;

pub use common::{
    CommonStatus, DeletionPolicy, Lifecycle, Management, PendingCreate, S3ObjectIdentity,
    S3ObjectRef,
};
pub use lambda_stage::{LambdaStage, LambdaStageSpec, LambdaStageStatus};
pub use spot_fleet::{SpotFleet, SpotFleetSpec, SpotFleetStatus};
pub use static_site::{StaticSite, StaticSiteSpec, StaticSiteStatus};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

/// The API group.
pub const GROUP: &str = "stagehand.dev";
/// The API version.
pub const VERSION: &str = "v1alpha1";
/// The finalizer Stagehand puts on every object it manages.
pub const FINALIZER: &str = "stagehand.dev/cleanup";
/// Annotation that stops Stagehand from acting on an object while set to `"true"`.
pub const PAUSED_ANNOTATION: &str = "stagehand.dev/paused";
/// Annotation asking for a fresh look at AWS: whenever its value changes (a timestamp, a build
/// id), the next reconcile reads AWS again instead of reusing listings up to
/// `--inventory-max-age` old. What a pipeline sets right after uploading a build in follow mode.
pub const REFRESH_ANNOTATION: &str = "stagehand.dev/refresh";
/// Tag naming the object that owns an AWS resource: `<namespace>/<kind>/<name>`.
pub const OWNER_TAG: &str = "stagehand.dev/owner";
/// Tag naming the cluster (controller `--cluster-id`) that manages an AWS resource.
pub const CLUSTER_TAG: &str = "stagehand.dev/cluster";
/// Tag with the hash of the spec fields that define an instance (SpotFleet).
pub const SPEC_HASH_TAG: &str = "stagehand.dev/spec-hash";
/// Tag with the version of the spec-hash scheme (SpotFleet).
pub const SPEC_HASH_VERSION_TAG: &str = "stagehand.dev/spec-hash-version";

/// Condition types. `Ready`, `Reconciling` and `Stalled` follow kstatus; the rest are domain
/// conditions of one kind.
pub mod condition {
    /// The object matches its spec in AWS and passed validation.
    pub const READY: &str = "Ready";
    /// A change is being applied or awaited (abnormal-true).
    pub const RECONCILING: &str = "Reconciling";
    /// A human or a spec change is needed (abnormal-true).
    pub const STALLED: &str = "Stalled";
    /// LambdaStage: every function's deployed code hash equals the desired hash.
    pub const CODE_IN_SYNC: &str = "CodeInSync";
    /// LambdaStage: declared layers attached to every function.
    pub const LAYERS_ATTACHED: &str = "LayersAttached";
    /// LambdaStage: declared event-source mappings exist and are enabled.
    pub const MAPPINGS_HEALTHY: &str = "MappingsHealthy";
    /// LambdaStage: post-deploy validation passed.
    pub const VALIDATED: &str = "Validated";
    /// SpotFleet: the desired number of healthy, current instances run.
    pub const CAPACITY_READY: &str = "CapacityReady";
    /// SpotFleet with `interruptionQueue`: the event feed polls that queue.
    pub const INTERRUPTION_QUEUE_READY: &str = "InterruptionQueueReady";
    /// LambdaStage with `--event-queue`: the controller-wide event feed is healthy, so changes
    /// are seen within seconds and drift-only reads run at the slow backstop cadence.
    pub const EVENT_FEED_READY: &str = "EventFeedReady";
    /// StaticSite: the bucket holds exactly the declared revision.
    pub const CONTENT_IN_SYNC: &str = "ContentInSync";
}

/// The three CustomResourceDefinitions, in a stable order.
pub fn crds() -> Vec<CustomResourceDefinition> {
    vec![LambdaStage::crd(), SpotFleet::crd(), StaticSite::crd()]
}

/// One CRD as YAML (a single document, without the leading `---`).
pub fn crd_yaml(crd: &CustomResourceDefinition) -> Result<String, serde_saphyr::ser::Error> {
    serde_saphyr::to_string(crd)
}

/// The three CRDs as one multi-document YAML stream (`stagehand crds` prints it); each document
/// is the content of one committed file in `crds/yaml/` and `charts/stagehand/crds/`.
pub fn crds_yaml() -> Result<String, serde_saphyr::ser::Error> {
    let mut out = String::new();
    for crd in crds() {
        out.push_str("---\n");
        out.push_str(&crd_yaml(&crd)?);
    }
    Ok(out)
}
