//! `SpotFleet`: a set of immutable EC2 spot instances launched from one spec. Any change to the
//! spec, an interruption or a hand edit replaces instances; nothing is ever patched in place.

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{CommonStatus, Lifecycle};

/// A fleet of immutable EC2 spot instances configured by cloud-init. Its instances carry the
/// `stagehand.dev/owner` tag; with `adopt`, a pending or running instance with no owner tag
/// whose `Name` tag is `<namespace>/<name>` of the fleet is taken over too (tagged, then
/// replaced under `replacement` like any instance without a spec hash), and without `adopt`
/// such an instance stalls the fleet (`AdoptionRequired`).
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[expect(
    clippy::duplicated_attributes,
    reason = "false positive: each kube(printcolumn(...)) repeats keys such as `type_ = \"string\"`"
)]
#[kube(
    group = "stagehand.dev",
    version = "v1alpha1",
    kind = "SpotFleet",
    namespaced,
    status = "SpotFleetStatus",
    shortname = "sf",
    category = "stagehand",
    doc = "A fleet of immutable EC2 spot instances. Spec changes, interruptions and hand edits replace instances; nothing is patched in place.",
    scale(
        spec_replicas_path = ".spec.capacity",
        status_replicas_path = ".status.readyCapacity"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Reason",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].reason"
    ),
    printcolumn(name = "Desired", type_ = "integer", json_path = ".spec.capacity"),
    printcolumn(
        name = "Ready-Capacity",
        type_ = "integer",
        json_path = ".status.readyCapacity"
    ),
    printcolumn(
        name = "Spec-Hash",
        type_ = "string",
        json_path = ".status.specHash",
        priority = 1
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "!has(self.maxPrice) || double(self.maxPrice) > 0.0", "message": "maxPrice must be a positive price in USD per hour"}
]))]
pub struct SpotFleetSpec {
    /// AWS region. Immutable.
    #[schemars(regex(pattern = crate::common::REGION_PATTERN))]
    #[schemars(extend("x-kubernetes-validations" = [{"rule": "self == oldSelf", "message": "region is immutable"}]))]
    pub region: String,

    /// Adoption, deletion policy, management mode and resync interval.
    #[serde(flatten)]
    pub lifecycle: Lifecycle,

    /// Number of running instances wanted. 0 terminates all instances but keeps the fleet.
    #[schemars(range(min = 0, max = 1000))]
    pub capacity: i32,

    /// Instance types to diversify over, in order of preference (e.g. `t3.small`, `t3a.small`).
    #[schemars(length(min = 1, max = 20))]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    #[schemars(inner(regex(pattern = r"^[a-z0-9-]+\.[a-z0-9-]+$")))]
    pub instance_types: Vec<String>,

    /// AMI id.
    #[schemars(regex(pattern = r"^ami-[0-9a-f]{8,17}$"))]
    pub image_id: String,

    /// Subnets to spread instances over.
    #[schemars(length(min = 1, max = 16))]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    #[schemars(inner(regex(pattern = r"^subnet-[0-9a-f]{8,17}$")))]
    pub subnet_ids: Vec<String>,

    /// Security groups.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 5))]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    #[schemars(inner(regex(pattern = r"^sg-[0-9a-f]{8,17}$")))]
    pub security_group_ids: Vec<String>,

    /// Instance profile name or ARN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(
        pattern = r"^([\w+=,.@-]{1,128}|arn:aws[a-z-]*:iam::[0-9]{12}:instance-profile/[\w+=,.@/-]{1,128})$"
    ))]
    pub iam_instance_profile: Option<String>,

    /// EC2 key pair name (for break-glass access only; instances are never patched over SSH).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 255))]
    pub key_name: Option<String>,

    /// Raw cloud-init user data (`#cloud-config ...` or a script). Combined with `files` and
    /// `services` into one multi-part cloud-init document when those are set too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 16384))]
    pub user_data: Option<String>,

    /// Files written by cloud-init before services start.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["path"]))]
    pub files: Vec<FileSpec>,

    /// systemd services installed (from `unit`) and enabled by cloud-init.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub services: Vec<ServiceSpec>,

    /// Tags for instances and volumes (Stagehand adds its ownership and spec-hash tags).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("x-kubernetes-validations" = [
        {"rule": "self.all(k, !k.startsWith('stagehand.dev/') && !k.startsWith('aws:'))",
         "message": "tag keys starting with stagehand.dev/ or aws: are reserved"}
    ]))]
    #[schemars(extend("maxProperties" = 45))]
    pub tags: BTreeMap<String, String>,

    /// Maximum spot price in USD per hour (e.g. `0.0104`). Unset: the on-demand price caps it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9]+(\.[0-9]+)?$"))]
    pub max_price: Option<String>,

    /// How out-of-date instances are replaced.
    #[serde(default)]
    pub replacement: ReplacementSpec,

    /// When a new instance counts as healthy.
    #[serde(default)]
    pub health_check: HealthCheckSpec,

    /// SQS queue (name or ARN) receiving EC2 spot interruption warnings from EventBridge.
    /// Interrupted instances are replaced ahead of their termination.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(
        pattern = r"^([a-zA-Z0-9_-]{1,80}|arn:aws[a-z-]*:sqs:[a-z0-9-]+:[0-9]{12}:[a-zA-Z0-9_-]{1,80})$"
    ))]
    pub interruption_queue: Option<String>,
}

/// A file written by cloud-init.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FileSpec {
    /// Absolute path.
    #[schemars(regex(pattern = r"^/[^\s]*$"))]
    pub path: String,
    /// File content.
    pub content: String,
    /// Octal permissions.
    #[serde(default = "default_permissions")]
    #[schemars(regex(pattern = r"^0?[0-7]{3}$"))]
    pub permissions: String,
    /// Owner as `user:group`.
    #[serde(default = "default_owner")]
    #[schemars(regex(pattern = r"^[a-z_][a-z0-9_-]*:[a-z_][a-z0-9_-]*$"))]
    pub owner: String,
}

fn default_permissions() -> String {
    "0644".to_owned()
}

fn default_owner() -> String {
    "root:root".to_owned()
}

/// A systemd service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceSpec {
    /// Unit name, e.g. `worker.service`.
    #[schemars(regex(pattern = r"^[a-zA-Z0-9@._-]+\.(service|timer|socket)$"))]
    pub name: String,
    /// Unit file content, written to `/etc/systemd/system/<name>`. Unset: the unit must already
    /// exist in the image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// Enable and start the unit at boot.
    #[serde(default = "default_true")]
    pub enabled: bool,
}

fn default_true() -> bool {
    true
}

/// How out-of-date instances are replaced.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "self.strategy != 'Surge' || self.maxSurge >= 1", "message": "replacement.maxSurge must be at least 1 with strategy Surge"}
]))]
pub struct ReplacementSpec {
    /// `Surge` launches replacements, waits until they are healthy, then terminates the old
    /// instances; `Recreate` terminates all out-of-date instances first, then launches.
    #[serde(default)]
    pub strategy: ReplacementStrategy,
    /// Instances that may be missing from `capacity` during a Surge replacement.
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub max_unavailable: i32,
    /// Extra instances that may run above `capacity` during a Surge replacement.
    #[serde(default = "default_max_surge")]
    #[schemars(range(min = 0))]
    pub max_surge: i32,
}

impl Default for ReplacementSpec {
    fn default() -> Self {
        Self {
            strategy: ReplacementStrategy::default(),
            max_unavailable: 0,
            max_surge: default_max_surge(),
        }
    }
}

fn default_max_surge() -> i32 {
    1
}

/// Replacement strategy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ReplacementStrategy {
    /// Create replacements, wait healthy, then terminate old instances.
    #[default]
    Surge,
    /// Terminate old instances, then create replacements.
    Recreate,
}

/// Health of new instances.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheckSpec {
    /// Require both EC2 status checks to pass.
    #[serde(default = "default_true")]
    pub ec2_status_checks: bool,
    /// Also require this TCP port to accept connections.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub tcp_port: Option<i32>,
    /// Seconds a new instance has to become healthy before it is replaced again.
    #[serde(default = "default_grace")]
    #[schemars(range(min = 30, max = 3600))]
    pub grace_period_seconds: i32,
}

impl Default for HealthCheckSpec {
    fn default() -> Self {
        Self {
            ec2_status_checks: true,
            tcp_port: None,
            grace_period_seconds: default_grace(),
        }
    }
}

fn default_grace() -> i32 {
    300
}

/// What Stagehand last observed and did for a SpotFleet.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SpotFleetStatus {
    /// observedGeneration, conditions and message.
    #[serde(flatten)]
    pub common: CommonStatus,
    /// Instances wanted.
    #[serde(default)]
    pub desired_capacity: i32,
    /// Running, healthy instances with the current spec hash.
    #[serde(default)]
    pub ready_capacity: i32,
    /// Where the fleet stands: `Stable`, `Launching`, `WaitingForHealth`, `Replacing`,
    /// `Terminating`, `WaitingForTermination` or `ScalingDown`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// Hash of the fields that define an instance (tag `stagehand.dev/spec-hash`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec_hash: Option<String>,
    /// Version of the hashing scheme (tag `stagehand.dev/spec-hash-version`); a change of
    /// version alone never replaces instances.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec_hash_version: Option<String>,
    /// The fleet's instances.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["instanceId"]))]
    pub instances: Vec<InstanceStatus>,
    /// Spot interruptions seen since the fleet was created.
    #[serde(default)]
    pub interruptions: i64,
}

/// One instance of the fleet.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InstanceStatus {
    /// EC2 instance id.
    pub instance_id: String,
    /// Instance type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_type: Option<String>,
    /// EC2 state (`pending`, `running`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// The instance's spec-hash tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec_hash: Option<String>,
    /// Whether the health check passes.
    #[serde(default)]
    pub healthy: bool,
    /// Launch time (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launched_at: Option<String>,
    /// Why the instance is being replaced (`spec_hash`, `interruption`, `hand_edit_image`,
    /// `unhealthy`, ...); unset while it is in date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replacement: Option<String>,
}
