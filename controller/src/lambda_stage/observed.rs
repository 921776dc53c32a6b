//! What the LambdaStage plan decides from: the AWS state of one stage (and the few facts only
//! status remembers), gathered by `observe.rs` as plain data.
//!
//! Nothing here is computed from the spec except *which* things were looked up: observe resolves
//! names (functions from `spec.functions`, `fromStack` through the stack's resources, the
//! `functionSelector`; queues from names to ARNs; layers to version ARNs) and the plan compares.
//! The clock stays outside too: whether a canary has run long enough is decided by the caller
//! and handed in as [`Observed::canary_promotion_due`].

use std::collections::{BTreeMap, BTreeSet};

use stagehand_crds::S3ObjectRef;

use crate::aws::cloudformation::{ChangeSetInfo, StackInfo};
use crate::aws::lambda::{Alias, EventSourceMapping, FunctionInfo, PublishedVersion};
use crate::aws::s3::{ObjectHead, Sha256Digest};
use crate::aws::sqs::QueueInfo;
use crate::inventory::{ArtifactKey, EventFeed};

/// Everything [`super::plan::plan`] needs about one LambdaStage.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Observed {
    /// The CloudFormation stack, when the spec declares `infrastructure`.
    pub stack: Option<ObservedStack>,
    /// The selected functions: `spec.functions` in spec order, then the functions the
    /// `functionSelector` found that the list does not name, in name order.
    pub functions: Vec<ObservedFunction>,
    /// What S3 says about each code artifact the selected functions use.
    pub artifacts: Vec<ObservedArtifact>,
    /// `spec.layers[].name` → the layer version ARN it resolves to (`latest` through
    /// ListLayerVersions, a fixed version as given). A missing entry: the layer (version) does
    /// not exist.
    pub layer_versions: BTreeMap<String, String>,
    /// Queues as the spec names them (mappings and validation) → ARN, URL and backlog. A missing
    /// entry: the queue does not exist.
    pub queues: BTreeMap<String, QueueInfo>,
    /// Event-source mappings found per (Lambda function name, queue ARN), for the declared
    /// mappings. Several when someone created duplicates (emulators accept them).
    pub mappings: BTreeMap<MappingKey, Vec<EventSourceMapping>>,
    /// Results of `validation.http` checks by check name (run by observe, not by the plan).
    pub http_checks: BTreeMap<String, HttpCheckOutcome>,
    /// Facts only the object's status remembers.
    pub previous: PreviousStatus,
    /// The caller's verdict that a running canary has lasted `alias.canary.promoteAfter` (the
    /// plan reads no clock).
    pub canary_promotion_due: bool,
    /// UUIDs of found mappings whose ownership tags name this stage, looked up only for
    /// mappings status has not recorded (see `mapping_owners`): how a mapping created just
    /// before a crash is still known as Stagehand's.
    pub mappings_tagged_ours: BTreeSet<String>,
    /// How the controller-wide event feed of the stage's region stands (`--event-queue`).
    pub event_feed: EventFeed,
    /// With a feed: the artifact buckets that do not send their events to EventBridge (a new
    /// build there is seen at the resync, not at once). Buckets whose setting could not be read
    /// are left out.
    pub buckets_without_events: Vec<String>,
}

/// Which function and queue a mapping connects: the Lambda function name and the queue ARN.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MappingKey {
    pub function_name: String,
    pub queue_arn: String,
}

impl MappingKey {
    pub fn new(function_name: &str, queue_arn: &str) -> Self {
        Self {
            function_name: function_name.to_owned(),
            queue_arn: queue_arn.to_owned(),
        }
    }
}

/// The stage's CloudFormation stack.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObservedStack {
    /// `None`: the stack does not exist (a `DELETE_COMPLETE` stack counts as absent).
    pub stack: Option<StackInfo>,
    /// Name of the change set for the desired template and parameters. Observe derives it from a
    /// fingerprint of both, so a change set for an older template is never executed by mistake.
    pub change_set_name: String,
    /// That change set, when it exists (pending, available, failed, or empty: "no changes").
    pub change_set: Option<ChangeSetInfo>,
    /// The stack was last updated from the desired template and parameters (its fingerprint tag
    /// equals the desired fingerprint): nothing to change.
    pub desired_template_applied: bool,
    /// Physical names of the stack's Lambda functions (from its resources).
    pub function_names: std::collections::BTreeSet<String>,
}

/// How the spec names a function.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeclaredAs {
    /// `spec.functions[].name`.
    Name(String),
    /// `spec.functions[].fromStack` (a logical id in the stack).
    FromStack(String),
}

/// One selected function.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ObservedFunction {
    /// The Lambda function name; for a `fromStack` entry whose resource does not exist yet, the
    /// logical id.
    pub name: String,
    /// The `spec.functions` entry naming it; `None` when only the `functionSelector` found it.
    pub declared_as: Option<DeclaredAs>,
    /// `None`: the function does not exist.
    pub deployed: Option<DeployedFunction>,
}

/// What Lambda reports for an existing function.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DeployedFunction {
    /// Code hash, update status, state, layers, environment, configuration (from ListFunctions).
    pub info: FunctionInfo,
    /// The deployed image's digest (`sha256:<hex>`) for image functions (from GetFunction).
    pub image_digest: Option<String>,
    /// The function's tags (ownership).
    pub tags: BTreeMap<String, String>,
    /// The stage's alias on this function, when `spec.alias` is set and the alias exists.
    pub alias: Option<Alias>,
    /// Published versions (not `$LATEST`), when `spec.alias` is set.
    pub published_versions: Vec<PublishedVersion>,
}

/// What S3 says about one code artifact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedArtifact {
    /// The artifact as the spec references it.
    pub source: S3ObjectRef,
    /// HeadObject's answer; `None` when the object (version) does not exist.
    pub head: Option<ObjectHead>,
    /// S3 said the bucket itself does not exist (`NoSuchBucket`): the stall names the bucket,
    /// not a key in it.
    pub bucket_missing: bool,
    /// A SHA-256 streamed earlier for exactly this bucket/key/versionId/ETag (observe keeps the
    /// cache; the plan only reads it).
    pub cached_sha256: Option<Sha256Digest>,
}

impl ObservedArtifact {
    /// The content identity a streamed hash is valid for (bucket, key, version, ETag); `None`
    /// when the object does not exist.
    pub fn identity(&self) -> Option<ArtifactKey> {
        let head = self.head.as_ref()?;
        Some(ArtifactKey {
            bucket: self.source.bucket.clone(),
            key: self.source.key.clone(),
            version_id: self
                .source
                .version_id
                .clone()
                .or_else(|| head.version_id.clone()),
            e_tag: head.e_tag.clone(),
        })
    }

    /// The artifact's own SHA-256: S3's whole-object checksum, else the cached streamed hash.
    /// `None`: unknown until the object is hashed.
    pub fn sha256(&self) -> Option<Sha256Digest> {
        self.head
            .as_ref()
            .and_then(ObjectHead::sha256)
            .or(self.cached_sha256)
    }
}

/// The outcome of one HTTP check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpCheckOutcome {
    /// Status code received, if any.
    pub status: Option<i32>,
    /// Timeout, connection refused, ...
    pub error: Option<String>,
}

/// Facts from the object's status that AWS cannot tell.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PreviousStatus {
    /// Layers (ARN without version, or name) the spec declared when they were last attached:
    /// what "a layer removed from the spec" is detached by. Other layers are never touched.
    pub declared_layers: Vec<String>,
    /// Mapping UUIDs recorded per (spec function, spec queue): when duplicates exist, the
    /// recorded one is kept so the UUID in status never changes.
    pub mapping_uuids: BTreeMap<(String, String), String>,
    /// Versions published by Stagehand (`status.versions`): what `alias.rollbackTo` may name.
    pub versions: Vec<stagehand_crds::lambda_stage::PublishedVersion>,
}
