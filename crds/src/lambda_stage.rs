//! `LambdaStage`: the Lambda functions of one application stage, their code, shared layers, SQS
//! event-source mappings, alias and post-deploy validation, with an optional CloudFormation stack
//! for the infrastructure around them.

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{CommonStatus, Lifecycle, S3ObjectIdentity, S3ObjectRef};

/// A stage of a serverless application: Lambda functions kept at exactly the declared code,
/// layers, environment and event-source mappings, continuously.
///
/// Code is updated whenever a function's deployed `CodeSha256` differs from the declared
/// artifact, whatever CloudFormation or a deploy tool believes.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[expect(
    clippy::duplicated_attributes,
    reason = "false positive: each kube(printcolumn(...)) repeats keys such as `type_ = \"string\"`"
)]
#[kube(
    group = "stagehand.dev",
    version = "v1alpha1",
    kind = "LambdaStage",
    namespaced,
    status = "LambdaStageStatus",
    shortname = "ls",
    shortname = "lstage",
    category = "stagehand",
    doc = "A stage of a serverless application whose Lambda functions, layers, SQS mappings and alias Stagehand keeps exactly as declared.",
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
    printcolumn(
        name = "Functions",
        type_ = "string",
        json_path = ".status.functionsInSync",
        description = "Functions whose deployed code matches the desired hash / functions selected"
    ),
    printcolumn(
        name = "Code",
        type_ = "string",
        json_path = ".status.codeSha256",
        description = "Desired code hash (first 12 base64 chars) when all functions share one artifact"
    ),
    printcolumn(
        name = "Stack",
        type_ = "string",
        json_path = ".status.stack.status",
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
    {"rule": "size(self.functions) > 0 || has(self.functionSelector)",
     "message": "declare at least one function in spec.functions or select functions with spec.functionSelector"},
    {"rule": "!has(self.functionSelector) || !has(self.functionSelector.stackResources) || !self.functionSelector.stackResources || has(self.infrastructure)",
     "message": "functionSelector.stackResources requires spec.infrastructure (the stack whose functions are selected)"},
    {"rule": "self.functions.all(f, !has(f.fromStack) || has(self.infrastructure))",
     "message": "functions[].fromStack requires spec.infrastructure (the stack that defines the function)"},
    {"rule": "!has(self.alias) || !has(self.alias.canary) || self.alias.publishVersions",
     "message": "alias.canary needs alias.publishVersions: true (a canary routes between two published versions)"}
]))]
pub struct LambdaStageSpec {
    /// AWS region of every resource in this stage. Immutable: create a new LambdaStage to move
    /// a stage to another region.
    #[schemars(regex(pattern = crate::common::REGION_PATTERN))]
    #[schemars(extend("x-kubernetes-validations" = [{"rule": "self == oldSelf", "message": "region is immutable"}]))]
    pub region: String,

    /// Adoption, deletion policy, management mode and resync interval.
    #[serde(flatten)]
    pub lifecycle: Lifecycle,

    /// Default code for every function that declares none of its own, and for functions found
    /// by `functionSelector` (a Chalice app deploys one package to all of its functions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<CodeSource>,

    /// Environment variables enforced on every function of the stage. Declared keys are kept at
    /// the declared value; variables not declared here are left as they are.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("x-kubernetes-validations" = [
        {"rule": "self.all(k, k.matches('^[a-zA-Z][a-zA-Z0-9_]*$'))",
         "message": "environment variable names must start with a letter and contain only letters, digits and underscores"}
    ]))]
    #[schemars(extend("maxProperties" = 64))]
    pub environment: BTreeMap<String, String>,

    /// The functions of the stage, each identified by its Lambda name or by its logical id in
    /// the stage's CloudFormation stack.
    // The uniqueness rule compares every pair of entries; `maxItems` here and `maxLength` on
    // `name` and `fromStack` keep the API server's static cost estimate of it bounded. Entries
    // with neither field are left to FunctionSpec's own rule instead of being called duplicates.
    #[serde(default)]
    #[schemars(length(max = 200))]
    #[schemars(extend("x-kubernetes-validations" = [
        {"rule": "self.all(f, !(has(f.name) || has(f.fromStack)) || self.exists_one(g, (has(f.name) && has(g.name) && f.name == g.name) || (has(f.fromStack) && has(g.fromStack) && f.fromStack == g.fromStack)))",
         "message": "each function may be declared only once (duplicate name or fromStack)"}
    ]))]
    pub functions: Vec<FunctionSpec>,

    /// Selects further functions to manage besides `functions`: all Lambda functions of the
    /// stack, or all whose name starts with a prefix (e.g. `shopping-assistant-api-dev`, which
    /// matches `shopping-assistant-api-dev-worker` too). Selected functions get the stage's
    /// `code` (if set), `environment`, `layers` and `alias`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function_selector: Option<FunctionSelector>,

    /// Optional CloudFormation stack holding the stage's infrastructure (roles, queues, APIs,
    /// the functions themselves for SAM-style stages). Applied through change sets.
    ///
    /// While the stack carries this stage's ownership tags (Stagehand created it), its Lambda
    /// functions (`fromStack`, `functionSelector.stackResources`) are the stage's own without
    /// `adopt`: untagged ones get the ownership tags before any other change. A function tagged
    /// for another owner is never touched, stack or not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub infrastructure: Option<Infrastructure>,

    /// Lambda layers attached to every function of the stage. Older versions of the same layer
    /// are replaced; layers not listed here are kept, in their order. A layer removed from this
    /// list is detached.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 5))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub layers: Vec<LayerRef>,

    /// SQS event-source mappings. An existing mapping for the same function and queue is reused
    /// and updated in place; a mapping is created only when none exists.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["function", "queue"]))]
    pub event_source_mappings: Vec<EventSourceMapping>,

    /// Optional alias (e.g. `live`) pointing at a published version, with weighted canaries
    /// and one-step rollback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<AliasSpec>,

    /// Checks run after every reconcile. A failed check sets `Validated=False` and
    /// `Ready=False` with the measured values; it rolls nothing back unless
    /// `alias.rollbackOnValidationFailure` says so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation: Option<ValidationSpec>,
}

/// One function of the stage.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "has(self.name) != has(self.fromStack)",
     "message": "set exactly one of name (the Lambda function name) and fromStack (its logical id in the stack)"}
]))]
pub struct FunctionSpec {
    /// The Lambda function name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[a-zA-Z0-9_-]{1,64}$"), length(max = 64))]
    pub name: Option<String>,

    /// The logical id of an `AWS::Lambda::Function` or `AWS::Serverless::Function` resource in
    /// `spec.infrastructure`'s stack; the physical name is read from the stack.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[a-zA-Z0-9]{1,255}$"), length(max = 255))]
    pub from_stack: Option<String>,

    /// The function's code. Defaults to `spec.code`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<CodeSource>,

    /// Runtime identifier such as `python3.12` (zip functions only). Unset: left as deployed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[a-z][a-z0-9.]+$"))]
    pub runtime: Option<String>,

    /// Handler such as `app.handler` (zip functions only). Unset: left as deployed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128))]
    pub handler: Option<String>,

    /// Memory in MiB (128–10240). Unset: left as deployed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 128, max = 10240))]
    pub memory_mb: Option<i32>,

    /// Timeout in seconds (1–900). Unset: left as deployed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 900))]
    pub timeout_seconds: Option<i32>,

    /// Environment variables for this function, merged over `spec.environment`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("x-kubernetes-validations" = [
        {"rule": "self.all(k, k.matches('^[a-zA-Z][a-zA-Z0-9_]*$'))",
         "message": "environment variable names must start with a letter and contain only letters, digits and underscores"}
    ]))]
    #[schemars(extend("maxProperties" = 64))]
    pub environment: BTreeMap<String, String>,
}

/// Where a function's code comes from: a zip in S3 or a container image pinned by digest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "has(self.s3) != has(self.image)", "message": "set exactly one of code.s3 and code.image"},
    {"rule": "!has(self.sha256) || has(self.s3)",
     "message": "code.sha256 pins a zip artifact in S3; an image is already pinned by the digest in its URI"}
]))]
pub struct CodeSource {
    /// A deployment package (zip) in S3. Lambda reads it directly; Stagehand never streams it
    /// through itself except to compute a hash when S3 has no SHA-256 checksum for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<S3ObjectRef>,

    /// A container image pinned by digest: `<repository-uri>@sha256:<64 hex>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[a-z0-9][a-z0-9._\-/:]*@sha256:[0-9a-f]{64}$"))]
    pub image: Option<String>,

    /// Pin: the SHA-256 the artifact must have, as 64 hex characters or 44 base64 characters
    /// (Lambda's `CodeSha256` form). Without a pin the desired hash follows the artifact (a new
    /// build under the same key is deployed on the next reconcile). With a pin an artifact whose
    /// checksum differs is refused (`Stalled`, reason `ArtifactMismatch`) and nothing changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9a-fA-F]{64}|[A-Za-z0-9+/]{43}=)$"))]
    pub sha256: Option<String>,
}

/// Selects functions beyond those listed in `spec.functions`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "has(self.namePrefix) != (has(self.stackResources) && self.stackResources)",
     "message": "set exactly one of functionSelector.namePrefix and functionSelector.stackResources: true"}
]))]
pub struct FunctionSelector {
    /// Every function whose name starts with this prefix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[a-zA-Z0-9_-]{3,64}$"))]
    pub name_prefix: Option<String>,

    /// Every Lambda function resource of `spec.infrastructure`'s stack.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack_resources: Option<bool>,
}

/// A CloudFormation stack managed through change sets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Infrastructure {
    /// Stack name. Immutable.
    #[schemars(regex(pattern = r"^[a-zA-Z][-a-zA-Z0-9]{0,127}$"))]
    #[schemars(extend("x-kubernetes-validations" = [{"rule": "self == oldSelf", "message": "infrastructure.stackName is immutable"}]))]
    pub stack_name: String,

    /// The template, stored in S3.
    pub template: S3ObjectRef,

    /// Stack parameters. Parameters the template declares but this map omits keep their
    /// previous value.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 200))]
    pub parameters: BTreeMap<String, String>,

    /// Capabilities acknowledged for the change set.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    pub capabilities: Vec<Capability>,

    /// What to do when the stack is found in `ROLLBACK_COMPLETE` (its creation failed and
    /// CloudFormation rolled it back; such a stack cannot be updated). `Recreate` deletes it,
    /// waits, and creates it again; `Stall` reports `Stalled` and waits for a human.
    #[serde(default)]
    pub on_rollback_complete: RollbackCompletePolicy,
}

/// A CloudFormation capability.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[allow(clippy::enum_variant_names)]
pub enum Capability {
    /// `CAPABILITY_IAM`
    #[serde(rename = "CAPABILITY_IAM")]
    Iam,
    /// `CAPABILITY_NAMED_IAM`
    #[serde(rename = "CAPABILITY_NAMED_IAM")]
    NamedIam,
    /// `CAPABILITY_AUTO_EXPAND` (needed for SAM transforms and macros)
    #[serde(rename = "CAPABILITY_AUTO_EXPAND")]
    AutoExpand,
}

/// Handling of a stack in `ROLLBACK_COMPLETE`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum RollbackCompletePolicy {
    /// Report `Stalled` and wait for a human.
    #[default]
    Stall,
    /// Delete the failed stack and create it again.
    Recreate,
}

/// A Lambda layer attached to every function of the stage.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LayerRef {
    /// Layer name, or layer ARN without version
    /// (`arn:aws:lambda:<region>:<account>:layer:<name>`) for layers of another account.
    #[schemars(regex(
        pattern = r"^([a-zA-Z0-9_-]{1,140}|arn:aws[a-z-]*:lambda:[a-z0-9-]+:[0-9]{12}:layer:[a-zA-Z0-9_-]{1,140})$"
    ))]
    pub name: String,

    /// `latest` (resolved with ListLayerVersions on every reconcile) or a version number.
    #[serde(default = "default_layer_version")]
    #[schemars(regex(pattern = r"^(latest|[1-9][0-9]{0,9})$"))]
    pub version: String,
}

fn default_layer_version() -> String {
    "latest".to_owned()
}

/// An SQS event-source mapping.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventSourceMapping {
    /// The function: a name from `spec.functions[].name`, a `fromStack` logical id, or the
    /// Lambda name of a selected function.
    #[schemars(length(min = 1, max = 255))]
    pub function: String,

    /// The queue: its name (same account and region) or its ARN.
    #[schemars(regex(
        pattern = r"^([a-zA-Z0-9_-]{1,80}(\.fifo)?|arn:aws[a-z-]*:sqs:[a-z0-9-]+:[0-9]{12}:[a-zA-Z0-9_-]{1,80}(\.fifo)?)$"
    ))]
    pub queue: String,

    /// Records per batch (1–10000).
    #[serde(default = "default_batch_size")]
    #[schemars(range(min = 1, max = 10000))]
    pub batch_size: i32,

    /// Maximum batching window in seconds (0–300).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 300))]
    pub maximum_batching_window_seconds: Option<i32>,

    /// Maximum concurrent function instances the queue may invoke (2–1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 2, max = 1000))]
    pub maximum_concurrency: Option<i32>,

    /// Whether the mapping polls the queue.
    #[serde(default = "default_true")]
    pub enabled: bool,
}

fn default_batch_size() -> i32 {
    10
}

fn default_true() -> bool {
    true
}

/// An alias with published versions, weighted canaries and rollback.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "!(has(self.rollbackTo) && has(self.canary))",
     "message": "alias.rollbackTo and alias.canary cannot be combined: a rollback points the whole alias at one version"},
    {"rule": "!has(self.rollbackOnValidationFailure) || !self.rollbackOnValidationFailure || self.publishVersions",
     "message": "alias.rollbackOnValidationFailure needs alias.publishVersions: true (it goes back to a published version)"}
]))]
pub struct AliasSpec {
    /// Alias name, e.g. `live` or `2024-spring`: letters, digits, `-` and `_`, but not only
    /// digits (Lambda reserves numbers for versions).
    // Lambda's own pattern, `(?!^[0-9]+$)([a-zA-Z0-9-_]+)`, needs a lookahead that the API
    // server's RE2 cannot compile, so the "not only digits" part is a CEL rule.
    #[schemars(regex(pattern = r"^[a-zA-Z0-9_-]{1,128}$"))]
    #[schemars(extend("x-kubernetes-validations" = [
        {"rule": "!self.matches('^[0-9]+$')", "message": "alias.name must not be a number: Lambda reserves numbers for versions"}
    ]))]
    pub name: String,

    /// Publish a new version whenever a function's code or configuration changes and point the
    /// alias at it.
    #[serde(default = "default_true")]
    pub publish_versions: bool,

    /// Route a share of traffic to the new version before promoting it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<CanarySpec>,

    /// Point the alias at this previously published version (its code hash must be in
    /// `status.versions`). Remove the field to resume normal deploys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub rollback_to: Option<i64>,

    /// Move the alias back to the last good version when post-deploy validation fails while
    /// the alias serves the newest build (needs `publishVersions`).
    ///
    /// - A version is *good* (`status.versions[].validated`) once validation passed while the
    ///   alias sent it all of its traffic.
    /// - Validation fails while the alias sends all traffic to the newest version: the alias
    ///   goes back to the newest good version older than it whose code differs. While a canary
    ///   runs, all traffic goes back to the canary's stable (primary) version. With no good
    ///   version to go back to, nothing moves (`Validated=False` only, as without this flag).
    /// - The version left is marked `status.versions[].rolledBack` (target and the failed
    ///   check) and the alias stays on the good version, whatever validation says later, as
    ///   long as the function's code is that build: `Ready=False`, reason `RolledBack`. A new
    ///   build (different code hash) is deployed and tried as usual; to retry the same build,
    ///   set this field to false.
    /// - A rollback never cascades: only the newest build is ever rolled back.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rollback_on_validation_failure: bool,

    /// How many of the versions Stagehand published it keeps per function (`status.versions`
    /// remembers them). Older ones are deleted once the alias points where it should — never
    /// one the alias or a canary routes to, the one `rollbackTo` names, or the newest validated
    /// one (what `rollbackOnValidationFailure` goes back to); versions published by anyone else
    /// are never deleted (Stagehand recognises its own by their description).
    #[serde(default = "default_keep_versions")]
    #[schemars(range(min = 1, max = 100))]
    pub keep_versions: i32,
}

fn default_keep_versions() -> i32 {
    5
}

/// A weighted canary: the new version gets `weight` percent of traffic for `promoteAfter`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CanarySpec {
    /// Percent of traffic routed to the new version while the canary runs (0–100).
    #[schemars(range(min = 0, max = 100))]
    pub weight: i32,

    /// How long the canary runs (and must pass validation) before the alias is promoted, as a
    /// Go-style duration such as `10m`.
    #[schemars(regex(pattern = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"))]
    pub promote_after: String,
}

/// Post-deploy validation.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ValidationSpec {
    /// Environment variables that must be present on every function (declared in the spec or
    /// already deployed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    #[schemars(inner(regex(pattern = r"^[a-zA-Z][a-zA-Z0-9_]*$")))]
    pub required_environment: Vec<String>,

    /// Require every declared event-source mapping to exist and be enabled.
    #[serde(default = "default_true")]
    pub mappings_enabled: bool,

    /// Queue backlog limits.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["queue"]))]
    pub queues: Vec<QueueCheck>,

    /// HTTP checks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub http: Vec<HttpCheck>,
}

/// Backlog limits for one queue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct QueueCheck {
    /// Queue name or ARN.
    #[schemars(regex(
        pattern = r"^([a-zA-Z0-9_-]{1,80}(\.fifo)?|arn:aws[a-z-]*:sqs:[a-z0-9-]+:[0-9]{12}:[a-zA-Z0-9_-]{1,80}(\.fifo)?)$"
    ))]
    pub queue: String,
    /// Maximum `ApproximateNumberOfMessages` (waiting, visible).
    #[serde(default = "default_max_visible")]
    #[schemars(range(min = 0))]
    pub max_visible: i64,
    /// Maximum `ApproximateNumberOfMessagesNotVisible` (in flight).
    #[serde(default = "default_max_in_flight")]
    #[schemars(range(min = 0))]
    pub max_in_flight: i64,
}

fn default_max_visible() -> i64 {
    10
}

fn default_max_in_flight() -> i64 {
    5
}

/// An HTTP check against the deployed stage.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HttpCheck {
    /// Name of the check, shown in status.
    #[schemars(regex(pattern = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"))]
    pub name: String,
    /// URL to GET.
    #[schemars(regex(pattern = r"^https?://[^\s]+$"))]
    pub url: String,
    /// Expected HTTP status code.
    #[serde(default = "default_expected_status")]
    #[schemars(range(min = 100, max = 599))]
    pub expected_status: i32,
    /// Timeout in seconds (1–60).
    #[serde(default = "default_http_timeout")]
    #[schemars(range(min = 1, max = 60))]
    pub timeout_seconds: i32,
}

fn default_expected_status() -> i32 {
    200
}

fn default_http_timeout() -> i32 {
    5
}

/// What Stagehand last observed and did for a LambdaStage.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LambdaStageStatus {
    /// observedGeneration, conditions and message.
    #[serde(flatten)]
    pub common: CommonStatus,

    /// `<in sync>/<selected>` functions, e.g. `3/3`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub functions_in_sync: Option<String>,

    /// The desired code hash shortened to 12 characters when every function shares one
    /// artifact, `mixed` otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_sha256: Option<String>,

    /// Per-function observed state.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["functionName"]))]
    pub functions: Vec<FunctionStatus>,

    /// Event-source mappings found or created, by function and queue.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["function", "queue"]))]
    pub mappings: Vec<MappingStatus>,

    /// The CloudFormation stack.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack: Option<StackStatus>,

    /// Versions published for the alias, newest first (at most `alias.keepVersions`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub versions: Vec<PublishedVersion>,

    /// The alias as last observed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<AliasStatus>,

    /// Results of the last post-deploy validation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation: Option<ValidationStatus>,

    /// The layers (ARN without version, or name) `spec.layers` declared when they were last
    /// attached everywhere. A layer listed here but no longer in the spec is detached from
    /// every function; layers never declared are left alone. Kept until the detachment is done.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub declared_layers: Vec<String>,

    /// The SHA-256 Stagehand streamed for each artifact that has no S3 `ChecksumSHA256`, by the
    /// object's identity (bucket, key, version id, ETag). A restarted controller takes the hash
    /// from here instead of downloading the artifact again, and so does not report the stage
    /// as `Applying` while it re-hashes code it already knew. Only entries for the artifacts the
    /// spec names now are kept; an object whose ETag or version changed is hashed afresh.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub artifact_hashes: Vec<ArtifactHash>,
}

/// The hash of one artifact's content, valid for exactly this object identity.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactHash {
    /// The artifact object as it was hashed.
    #[serde(flatten)]
    pub object: S3ObjectIdentity,
    /// SHA-256 of the content, base64 (as Lambda's `CodeSha256`).
    pub sha256: String,
}

/// Observed state of one function.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FunctionStatus {
    /// Lambda function name.
    pub function_name: String,
    /// Deployed `CodeSha256` (base64), or the image digest for image functions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployed_code_sha256: Option<String>,
    /// The hash the function should have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired_code_sha256: Option<String>,
    /// Lambda's `LastUpdateStatus` (`Successful`, `InProgress`, `Failed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_update_status: Option<String>,
    /// Version the alias points at for this function.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Attached layer version ARNs, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<String>,
}

/// Observed state of one event-source mapping.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MappingStatus {
    /// Function as named in the spec.
    pub function: String,
    /// Queue as named in the spec.
    pub queue: String,
    /// The mapping's UUID (stable for the mapping's lifetime).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    /// Lambda's mapping state (`Enabled`, `Disabled`, `Creating`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Resolved queue ARN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_source_arn: Option<String>,
    /// Stagehand created this mapping (rather than finding it): `deletionPolicy: Delete`
    /// removes it with the object. Stagehand tags every mapping it creates with its ownership
    /// tags, so this holds even when the controller died before it could record the creation.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub created_by_stagehand: bool,
}

/// Observed state of the stage's CloudFormation stack.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StackStatus {
    /// Stack name.
    pub name: String,
    /// Stack id (ARN).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack_id: Option<String>,
    /// CloudFormation stack status, e.g. `UPDATE_COMPLETE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// CloudFormation's own status reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Whether Stagehand created the stack (decides the default deletion behaviour).
    #[serde(default)]
    pub created_by_stagehand: bool,
}

/// A version published by Stagehand.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PublishedVersion {
    /// Function name.
    pub function_name: String,
    /// Version number.
    pub version: String,
    /// Code hash of the version.
    pub code_sha256: String,
    /// Post-deploy validation passed while the alias sent this version all of its traffic: a
    /// version `alias.rollbackOnValidationFailure` may go back to.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub validated: bool,
    /// `alias.rollbackOnValidationFailure` moved the alias away from this version. Kept while
    /// the function's code is this version's: the alias is not moved back to this build.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rolled_back: Option<VersionRollback>,
}

/// Why and where the alias was rolled back from a version.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VersionRollback {
    /// The version the alias was moved to.
    pub to_version: String,
    /// The failed validation, as the `Validated` condition said it.
    pub reason: String,
    /// When (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
}

/// The alias as last observed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AliasStatus {
    /// Alias name.
    pub name: String,
    /// Primary version per function.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub versions: BTreeMap<String, String>,
    /// Canary in progress: the version receiving `weight` percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary_version: Option<String>,
    /// Canary weight in percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary_weight: Option<i32>,
    /// When the canary started (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary_started_at: Option<String>,
}

/// Results of post-deploy validation.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ValidationStatus {
    /// Required environment variables missing, as `function: KEY` entries.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing_environment: Vec<String>,
    /// Mappings that are missing or not enabled.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unhealthy_mappings: Vec<String>,
    /// Measured queue backlogs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub queues: Vec<QueueBacklog>,
    /// HTTP check results.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub http: Vec<HttpCheckResult>,
}

/// A measured queue backlog.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct QueueBacklog {
    /// Queue as named in the spec.
    pub queue: String,
    /// `ApproximateNumberOfMessages`.
    pub visible: i64,
    /// `ApproximateNumberOfMessagesNotVisible`.
    pub in_flight: i64,
    /// Whether both are within limits.
    pub ok: bool,
}

/// One HTTP check result.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HttpCheckResult {
    /// Check name.
    pub name: String,
    /// Status code received, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<i32>,
    /// Error (timeout, connection refused, unexpected status).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Whether the check passed.
    pub ok: bool,
}
