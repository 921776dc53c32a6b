//! Every AWS operation the adapters call, and the IAM permissions each one needs: the one table
//! `stagehand iam-policy` turns into the least-privilege policy (`charts/stagehand/iam/policy.json`
//! and the table of `docs/iam.md` are its output, checked equal by tests).
//!
//! Why a table in code rather than a hand-written policy: the policy has to follow the adapters.
//! A test reads every `call("Operation", ..)` of `controller/src/aws/` and fails when one is not
//! listed here (or listed and no longer called), and `make test` checks every operation the
//! controller made through the test proxy against it, so a new call cannot ship without its
//! permission.
//!
//! An operation grants IAM actions in [`Scope`]s. A scope is one policy statement: its `Sid`, the
//! resource ARNs it covers and the condition that narrows it (the ownership tags where AWS
//! evaluates them). Several operations share a scope; one operation may need actions in several
//! (`RunInstances` launches tagged instances *using* untagged subnets, images and groups).

use super::Service;

/// The cluster id placeholder of the shipped policy (`stagehand iam-policy --cluster-id` fills
/// it in).
pub const CLUSTER_ID_PLACEHOLDER: &str = "STAGEHAND_CLUSTER_ID";

/// The kinds whose reconcilers make a call (`stagehand iam-policy --kind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    LambdaStage,
    SpotFleet,
    StaticSite,
}

impl Kind {
    pub const ALL: [Self; 3] = [Self::LambdaStage, Self::SpotFleet, Self::StaticSite];

    /// The Kubernetes kind name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::LambdaStage => "LambdaStage",
            Self::SpotFleet => "SpotFleet",
            Self::StaticSite => "StaticSite",
        }
    }
}

impl std::str::FromStr for Kind {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.as_str().eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                format!("unknown kind {name:?}: expected LambdaStage, SpotFleet or StaticSite")
            })
    }
}

/// What narrows a statement beyond its resource ARNs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Condition {
    /// The action has no usable condition (reads of whole regions, or resources AWS cannot
    /// match by tag): narrow the ARNs for your account instead.
    None,
    /// The resource carries this cluster's `stagehand.dev/cluster` tag and an owner tag: writes to
    /// what Stagehand created or adopted, never to anyone else's.
    OwnedByThisCluster,
    /// The request tags the new resource with this cluster's id (creation with tags).
    TaggedAtCreation,
    /// Tagging may add only the two ownership tags, with this cluster's id (adoption).
    OnlyOwnershipTags,
    /// Tags may be written only by these creating calls (EC2 tag-on-create).
    CreatingAction(&'static [&'static str]),
    /// A role may be passed only to this service.
    PassedToService(&'static str),
    /// Service-linked roles of these services only.
    ServiceLinkedRoleOf(&'static [&'static str]),
}

/// One statement of the policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scope {
    /// Starts with the kind that needs it (shared ones name what they cover).
    pub sid: &'static str,
    pub resources: &'static [&'static str],
    pub condition: Condition,
}

/// One IAM action in one statement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grant {
    pub action: &'static str,
    pub scope: &'static Scope,
}

/// One operation an adapter calls (the `operation` label of `stagehand_aws_api_requests_total`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Operation {
    pub service: Service,
    pub name: &'static str,
    pub kinds: &'static [Kind],
    pub grants: &'static [Grant],
    /// Why the call is made, or why its permission is shaped the way it is.
    pub note: &'static str,
}

impl Operation {
    /// Whether a reconciler of one of `kinds` makes this call.
    pub fn used_by_any(&self, kinds: &[Kind]) -> bool {
        self.kinds.iter().any(|kind| kinds.contains(kind))
    }
}

/// The operation `service`/`name` of the table, if listed.
pub fn find(service: Service, name: &str) -> Option<&'static Operation> {
    OPERATIONS
        .iter()
        .find(|op| op.service == service && op.name == name)
}

const fn grant(action: &'static str, scope: &'static Scope) -> Grant {
    Grant { action, scope }
}

const ANY: &[&str] = &["*"];
const FUNCTIONS: &[&str] = &["arn:aws:lambda:*:*:function:*"];
const STACKS: &[&str] = &["arn:aws:cloudformation:*:*:stack/*/*"];
const OBJECTS: &[&str] = &["arn:aws:s3:::*/*"];
const BUCKETS: &[&str] = &["arn:aws:s3:::*"];
const QUEUES: &[&str] = &["arn:aws:sqs:*:*:*"];
const INSTANCES_AND_TEMPLATES: &[&str] = &[
    "arn:aws:ec2:*:*:instance/*",
    "arn:aws:ec2:*:*:launch-template/*",
];
/// EC2 resource types a launch creates; the rest of a launch's resources are only used.
const LAUNCHED: &[&str] = &[
    "arn:aws:ec2:*:*:instance/*",
    "arn:aws:ec2:*:*:volume/*",
    "arn:aws:ec2:*:*:fleet/*",
    "arn:aws:ec2:*:*:launch-template/*",
];
const LAUNCHED_USING: &[&str] = &[
    "arn:aws:ec2:*:*:subnet/*",
    "arn:aws:ec2:*:*:security-group/*",
    "arn:aws:ec2:*::image/*",
    "arn:aws:ec2:*:*:key-pair/*",
    "arn:aws:ec2:*:*:network-interface/*",
    "arn:aws:ec2:*:*:launch-template/*",
    "arn:aws:ec2:*:*:spot-instances-request/*",
];
const LAUNCHING_CALLS: &[&str] = &["RunInstances", "CreateFleet", "CreateLaunchTemplate"];

const fn scope(
    sid: &'static str,
    resources: &'static [&'static str],
    condition: Condition,
) -> Scope {
    Scope {
        sid,
        resources,
        condition,
    }
}

// The statements, in the order the policy lists them.
pub const LAMBDA_READ: Scope = scope("LambdaStageRead", ANY, Condition::None);
pub const LAMBDA_OWN: Scope = scope(
    "LambdaStageChangeOwnFunctions",
    FUNCTIONS,
    Condition::OwnedByThisCluster,
);
pub const LAMBDA_ADOPT: Scope = scope(
    "LambdaStageTagFunctionsAsOwned",
    FUNCTIONS,
    Condition::OnlyOwnershipTags,
);
/// `CreateEventSourceMapping` authorizes on the mapping, which has no tags yet.
pub const LAMBDA_MAPPINGS: Scope = scope("LambdaStageEventSourceMappings", ANY, Condition::None);
pub const STACKS_READ: Scope = scope("LambdaStageStacksRead", ANY, Condition::None);
/// The stack may not exist yet when its first change set is created.
pub const STACKS_CHANGE_SETS: Scope =
    scope("LambdaStageStacksCreateChangeSets", STACKS, Condition::None);
pub const STACKS_OWN: Scope = scope(
    "LambdaStageStacksChangeOwn",
    STACKS,
    Condition::OwnedByThisCluster,
);
pub const OBJECTS_READ: Scope = scope("ArtifactsAndSiteObjectsRead", OBJECTS, Condition::None);
/// Listing an artifact or site bucket and reading whether it sends events to EventBridge.
pub const BUCKETS_READ: Scope = scope("ArtifactAndSiteBucketsRead", BUCKETS, Condition::None);
pub const QUEUES_READ: Scope = scope("QueuesRead", QUEUES, Condition::None);
pub const EVENT_QUEUE: Scope = scope("EventQueue", QUEUES, Condition::None);
/// `sts:GetCallerIdentity` is allowed whatever the policy says; listed so the policy names every
/// call Stagehand makes.
pub const IDENTITY: Scope = scope("Identity", ANY, Condition::None);
pub const FLEET_READ: Scope = scope("SpotFleetRead", ANY, Condition::None);
pub const FLEET_LAUNCH: Scope = scope(
    "SpotFleetLaunchTaggedInstances",
    LAUNCHED,
    Condition::TaggedAtCreation,
);
pub const FLEET_LAUNCH_USING: Scope =
    scope("SpotFleetLaunchUsing", LAUNCHED_USING, Condition::None);
pub const FLEET_TAG_AT_LAUNCH: Scope = scope(
    "SpotFleetTagAtLaunch",
    &["arn:aws:ec2:*:*:*/*"],
    Condition::CreatingAction(LAUNCHING_CALLS),
);
pub const FLEET_OWN: Scope = scope(
    "SpotFleetChangeOwn",
    INSTANCES_AND_TEMPLATES,
    Condition::OwnedByThisCluster,
);
pub const FLEET_PASS_ROLE: Scope = scope(
    "SpotFleetPassInstanceRole",
    &["arn:aws:iam::*:role/*"],
    Condition::PassedToService("ec2.amazonaws.com"),
);
pub const FLEET_SERVICE_LINKED_ROLES: Scope = scope(
    "SpotFleetServiceLinkedRoles",
    ANY,
    Condition::ServiceLinkedRoleOf(&["spot.amazonaws.com", "ec2fleet.amazonaws.com"]),
);
pub const SITE_BUCKETS: Scope = scope("StaticSiteBuckets", BUCKETS, Condition::None);
pub const SITE_OBJECTS_WRITE: Scope = scope("StaticSiteObjectsWrite", OBJECTS, Condition::None);
pub const SITE_DISTRIBUTIONS: Scope = scope(
    "StaticSiteDistributions",
    &["arn:aws:cloudfront::*:distribution/*"],
    Condition::None,
);
pub const SITE_ORIGIN_ACCESS: Scope = scope(
    "StaticSiteOriginAccessControls",
    &["arn:aws:cloudfront::*:origin-access-control/*"],
    Condition::None,
);
/// List calls of CloudFront authorize on no resource.
pub const SITE_LIST: Scope = scope("StaticSiteList", ANY, Condition::None);

/// Every statement, in policy order.
pub const SCOPES: [&Scope; 24] = [
    &LAMBDA_READ,
    &LAMBDA_OWN,
    &LAMBDA_ADOPT,
    &LAMBDA_MAPPINGS,
    &STACKS_READ,
    &STACKS_CHANGE_SETS,
    &STACKS_OWN,
    &OBJECTS_READ,
    &BUCKETS_READ,
    &QUEUES_READ,
    &EVENT_QUEUE,
    &IDENTITY,
    &FLEET_READ,
    &FLEET_LAUNCH,
    &FLEET_LAUNCH_USING,
    &FLEET_TAG_AT_LAUNCH,
    &FLEET_OWN,
    &FLEET_PASS_ROLE,
    &FLEET_SERVICE_LINKED_ROLES,
    &SITE_BUCKETS,
    &SITE_OBJECTS_WRITE,
    &SITE_DISTRIBUTIONS,
    &SITE_ORIGIN_ACCESS,
    &SITE_LIST,
];

use Kind::{LambdaStage, SpotFleet, StaticSite};
use Service::{CloudFormation, CloudFront, Ec2, Lambda, S3, Sqs, Sts};

const LAMBDA: &[Kind] = &[LambdaStage];
const FLEET: &[Kind] = &[SpotFleet];
const SITE: &[Kind] = &[StaticSite];
const ALL: &[Kind] = &[LambdaStage, SpotFleet, StaticSite];

const fn op(
    service: Service,
    name: &'static str,
    kinds: &'static [Kind],
    grants: &'static [Grant],
    note: &'static str,
) -> Operation {
    Operation {
        service,
        name,
        kinds,
        grants,
        note,
    }
}

/// Reading an object or one of its versions (artifacts, site sources, rollback copies).
const READ_OBJECT: &[Grant] = &[
    grant("s3:GetObject", &OBJECTS_READ),
    grant("s3:GetObjectVersion", &OBJECTS_READ),
];
/// Launching spot instances: tagged at launch, the instance profile's role passed, and the
/// spot service-linked roles created by the first launch in an account.
const LAUNCH: &[Grant] = &[
    grant("ec2:RunInstances", &FLEET_LAUNCH),
    grant("ec2:RunInstances", &FLEET_LAUNCH_USING),
    grant("ec2:CreateTags", &FLEET_TAG_AT_LAUNCH),
    grant("iam:PassRole", &FLEET_PASS_ROLE),
    grant("iam:CreateServiceLinkedRole", &FLEET_SERVICE_LINKED_ROLES),
];
/// An instant EC2 fleet launches its instances with `RunInstances` permissions.
const CREATE_FLEET: &[Grant] = &[
    grant("ec2:CreateFleet", &FLEET_LAUNCH),
    grant("ec2:CreateFleet", &FLEET_LAUNCH_USING),
    grant("ec2:RunInstances", &FLEET_LAUNCH),
    grant("ec2:RunInstances", &FLEET_LAUNCH_USING),
    grant("ec2:CreateTags", &FLEET_TAG_AT_LAUNCH),
    grant("iam:PassRole", &FLEET_PASS_ROLE),
    grant("iam:CreateServiceLinkedRole", &FLEET_SERVICE_LINKED_ROLES),
];

/// Every operation the adapters call.
#[rustfmt::skip]
pub static OPERATIONS: &[Operation] = &[
    // Lambda
    op(Lambda, "ListFunctions", LAMBDA, &[grant("lambda:ListFunctions", &LAMBDA_READ)], "inventory listing (paged, shared per region)"),
    op(Lambda, "GetFunction", LAMBDA, &[grant("lambda:GetFunction", &LAMBDA_READ)], "a function not in the last listing"),
    op(Lambda, "ListTags", LAMBDA, &[grant("lambda:ListTags", &LAMBDA_READ)], "ownership tags"),
    op(Lambda, "TagResource", LAMBDA, &[grant("lambda:TagResource", &LAMBDA_ADOPT)], "adoption: only the ownership tags, before any change"),
    op(Lambda, "UpdateFunctionCode", LAMBDA, &[grant("lambda:UpdateFunctionCode", &LAMBDA_OWN)], "tag-scoped"),
    op(Lambda, "UpdateFunctionConfiguration", LAMBDA, &[grant("lambda:UpdateFunctionConfiguration", &LAMBDA_OWN), grant("lambda:GetLayerVersion", &LAMBDA_READ)], "tag-scoped; attaching a layer version needs GetLayerVersion on it"),
    op(Lambda, "ListLayerVersions", LAMBDA, &[grant("lambda:ListLayerVersions", &LAMBDA_READ)], "`version: latest`"),
    op(Lambda, "ListEventSourceMappings", LAMBDA, &[grant("lambda:ListEventSourceMappings", &LAMBDA_READ)], ""),
    op(Lambda, "CreateEventSourceMapping", LAMBDA, &[grant("lambda:CreateEventSourceMapping", &LAMBDA_MAPPINGS)], "the function's execution role reads the queue, not Stagehand"),
    op(Lambda, "UpdateEventSourceMapping", LAMBDA, &[grant("lambda:UpdateEventSourceMapping", &LAMBDA_MAPPINGS)], ""),
    op(Lambda, "DeleteEventSourceMapping", LAMBDA, &[grant("lambda:DeleteEventSourceMapping", &LAMBDA_MAPPINGS)], "deletion"),
    op(Lambda, "PublishVersion", LAMBDA, &[grant("lambda:PublishVersion", &LAMBDA_OWN)], "tag-scoped"),
    op(Lambda, "DeleteFunction", LAMBDA, &[grant("lambda:DeleteFunction", &LAMBDA_OWN)], "tag-scoped; deletion"),
    op(Lambda, "ListVersionsByFunction", LAMBDA, &[grant("lambda:ListVersionsByFunction", &LAMBDA_READ)], "aliases"),
    op(Lambda, "GetAlias", LAMBDA, &[grant("lambda:GetAlias", &LAMBDA_READ)], ""),
    op(Lambda, "CreateAlias", LAMBDA, &[grant("lambda:CreateAlias", &LAMBDA_OWN)], "tag-scoped"),
    op(Lambda, "UpdateAlias", LAMBDA, &[grant("lambda:UpdateAlias", &LAMBDA_OWN)], "tag-scoped"),
    // CloudFormation
    op(CloudFormation, "DescribeStacks", LAMBDA, &[grant("cloudformation:DescribeStacks", &STACKS_READ)], ""),
    op(CloudFormation, "ListStackResources", LAMBDA, &[grant("cloudformation:ListStackResources", &STACKS_READ)], ""),
    op(CloudFormation, "CreateChangeSet", LAMBDA, &[grant("cloudformation:CreateChangeSet", &STACKS_CHANGE_SETS), grant("s3:GetObject", &OBJECTS_READ)], "the template is read from S3 with Stagehand's credentials"),
    op(CloudFormation, "DescribeChangeSet", LAMBDA, &[grant("cloudformation:DescribeChangeSet", &STACKS_READ)], ""),
    op(CloudFormation, "ExecuteChangeSet", LAMBDA, &[grant("cloudformation:ExecuteChangeSet", &STACKS_OWN)], "tag-scoped"),
    op(CloudFormation, "DeleteChangeSet", LAMBDA, &[grant("cloudformation:DeleteChangeSet", &STACKS_OWN)], "tag-scoped"),
    op(CloudFormation, "DeleteStack", LAMBDA, &[grant("cloudformation:DeleteStack", &STACKS_OWN)], "tag-scoped; deletion"),
    // S3
    op(S3, "HeadObject", &[LambdaStage, StaticSite], READ_OBJECT, "artifact checksums; site objects"),
    op(S3, "GetObject", &[LambdaStage, StaticSite], READ_OBJECT, "streamed hash of an artifact without a stored SHA-256; site sources and manifests"),
    op(S3, "ListObjectsV2", &[LambdaStage, StaticSite], &[grant("s3:ListBucket", &BUCKETS_READ)], "artifact listings (the inventory: one per bucket and prefix); paged listings of a site bucket"),
    op(S3, "ListObjectVersions", SITE, &[grant("s3:ListBucketVersions", &SITE_BUCKETS)], "the versions a revision's manifest names"),
    op(S3, "PutObject", SITE, &[grant("s3:PutObject", &SITE_OBJECTS_WRITE)], "site objects and revision manifests"),
    op(S3, "CopyObject", SITE, &[grant("s3:PutObject", &SITE_OBJECTS_WRITE), grant("s3:GetObject", &OBJECTS_READ), grant("s3:GetObjectVersion", &OBJECTS_READ)], "metadata changes; rollback copies a version over the current object"),
    op(S3, "DeleteObjects", SITE, &[grant("s3:DeleteObject", &SITE_OBJECTS_WRITE), grant("s3:DeleteObjectVersion", &SITE_OBJECTS_WRITE)], "removed files (after the new ones are in place); deletion"),
    op(S3, "HeadBucket", SITE, &[grant("s3:ListBucket", &SITE_BUCKETS)], ""),
    op(S3, "CreateBucket", SITE, &[grant("s3:CreateBucket", &SITE_BUCKETS)], ""),
    op(S3, "DeleteBucket", SITE, &[grant("s3:DeleteBucket", &SITE_BUCKETS)], "deletion"),
    op(S3, "PutBucketVersioning", SITE, &[grant("s3:PutBucketVersioning", &SITE_BUCKETS)], ""),
    op(S3, "GetBucketVersioning", SITE, &[grant("s3:GetBucketVersioning", &SITE_BUCKETS)], ""),
    op(S3, "GetPublicAccessBlock", SITE, &[grant("s3:GetBucketPublicAccessBlock", &SITE_BUCKETS)], "bucket settings are read before they are written"),
    op(S3, "PutPublicAccessBlock", SITE, &[grant("s3:PutBucketPublicAccessBlock", &SITE_BUCKETS)], ""),
    op(S3, "GetBucketOwnershipControls", SITE, &[grant("s3:GetBucketOwnershipControls", &SITE_BUCKETS)], ""),
    op(S3, "PutBucketOwnershipControls", SITE, &[grant("s3:PutBucketOwnershipControls", &SITE_BUCKETS)], ""),
    op(S3, "GetBucketEncryption", SITE, &[grant("s3:GetEncryptionConfiguration", &SITE_BUCKETS)], ""),
    op(S3, "PutBucketEncryption", SITE, &[grant("s3:PutEncryptionConfiguration", &SITE_BUCKETS)], ""),
    op(S3, "GetBucketTagging", SITE, &[grant("s3:GetBucketTagging", &SITE_BUCKETS)], "ownership tags"),
    op(S3, "PutBucketTagging", SITE, &[grant("s3:PutBucketTagging", &SITE_BUCKETS)], ""),
    op(S3, "GetBucketPolicy", SITE, &[grant("s3:GetBucketPolicy", &SITE_BUCKETS)], ""),
    op(S3, "PutBucketPolicy", SITE, &[grant("s3:PutBucketPolicy", &SITE_BUCKETS)], "the CloudFront-only read policy"),
    op(S3, "GetBucketNotificationConfiguration", &[LambdaStage, StaticSite], &[grant("s3:GetBucketNotification", &BUCKETS_READ)], "LambdaStage: with `--event-queue`, whether artifact buckets send events to EventBridge (hourly)"),
    op(S3, "PutBucketNotificationConfiguration", SITE, &[grant("s3:PutBucketNotification", &SITE_BUCKETS)], "EventBridge notifications"),
    // CloudFront
    op(CloudFront, "GetDistribution", SITE, &[grant("cloudfront:GetDistribution", &SITE_DISTRIBUTIONS)], ""),
    op(CloudFront, "GetDistributionConfig", SITE, &[grant("cloudfront:GetDistributionConfig", &SITE_DISTRIBUTIONS)], ""),
    op(CloudFront, "CreateDistributionWithTags", SITE, &[grant("cloudfront:CreateDistribution", &SITE_DISTRIBUTIONS), grant("cloudfront:TagResource", &SITE_DISTRIBUTIONS)], "tagged at creation"),
    op(CloudFront, "UpdateDistribution", SITE, &[grant("cloudfront:UpdateDistribution", &SITE_DISTRIBUTIONS)], ""),
    op(CloudFront, "DeleteDistribution", SITE, &[grant("cloudfront:DeleteDistribution", &SITE_DISTRIBUTIONS)], "deletion"),
    op(CloudFront, "ListDistributions", SITE, &[grant("cloudfront:ListDistributions", &SITE_LIST)], "finding a distribution after a repeated CallerReference"),
    op(CloudFront, "TagResource", SITE, &[grant("cloudfront:TagResource", &SITE_DISTRIBUTIONS)], ""),
    op(CloudFront, "ListTagsForResource", SITE, &[grant("cloudfront:ListTagsForResource", &SITE_DISTRIBUTIONS)], "ownership tags"),
    op(CloudFront, "CreateInvalidation", SITE, &[grant("cloudfront:CreateInvalidation", &SITE_DISTRIBUTIONS)], ""),
    op(CloudFront, "GetInvalidation", SITE, &[grant("cloudfront:GetInvalidation", &SITE_DISTRIBUTIONS)], ""),
    op(CloudFront, "ListInvalidations", SITE, &[grant("cloudfront:ListInvalidations", &SITE_DISTRIBUTIONS)], ""),
    op(CloudFront, "CreateOriginAccessControl", SITE, &[grant("cloudfront:CreateOriginAccessControl", &SITE_ORIGIN_ACCESS)], ""),
    op(CloudFront, "ListOriginAccessControls", SITE, &[grant("cloudfront:ListOriginAccessControls", &SITE_LIST)], ""),
    op(CloudFront, "GetOriginAccessControl", SITE, &[grant("cloudfront:GetOriginAccessControl", &SITE_ORIGIN_ACCESS)], ""),
    op(CloudFront, "DeleteOriginAccessControl", SITE, &[grant("cloudfront:DeleteOriginAccessControl", &SITE_ORIGIN_ACCESS)], "deletion"),
    // SQS
    op(Sqs, "GetQueueUrl", ALL, &[grant("sqs:GetQueueUrl", &QUEUES_READ)], "validation queues, mapping sources, the event queues"),
    op(Sqs, "GetQueueAttributes", ALL, &[grant("sqs:GetQueueAttributes", &QUEUES_READ)], "backlog (validation), queue ARN"),
    op(Sqs, "ReceiveMessage", ALL, &[grant("sqs:ReceiveMessage", &EVENT_QUEUE)], "the event feed (long polls of `interruptionQueue` and `--event-queue`)"),
    op(Sqs, "DeleteMessageBatch", ALL, &[grant("sqs:DeleteMessage", &EVENT_QUEUE)], "the event feed"),
    // STS
    op(Sts, "GetCallerIdentity", ALL, &[grant("sts:GetCallerIdentity", &IDENTITY)], "the event feed learns whose CloudTrail calls are Stagehand's own (allowed whatever the policy says)"),
    // EC2
    op(Ec2, "DescribeInstances", FLEET, &[grant("ec2:DescribeInstances", &FLEET_READ)], ""),
    op(Ec2, "DescribeInstanceStatus", FLEET, &[grant("ec2:DescribeInstanceStatus", &FLEET_READ)], "EC2 status checks"),
    op(Ec2, "DescribeSubnets", FLEET, &[grant("ec2:DescribeSubnets", &FLEET_READ)], ""),
    op(Ec2, "DescribeImages", FLEET, &[grant("ec2:DescribeImages", &FLEET_READ)], "the spec's image, looked up before launching"),
    op(Ec2, "DescribeSecurityGroups", FLEET, &[grant("ec2:DescribeSecurityGroups", &FLEET_READ)], "the spec's security groups, looked up before launching"),
    op(Ec2, "DescribeLaunchTemplates", FLEET, &[grant("ec2:DescribeLaunchTemplates", &FLEET_READ)], ""),
    op(Ec2, "DescribeLaunchTemplateVersions", FLEET, &[grant("ec2:DescribeLaunchTemplateVersions", &FLEET_READ)], ""),
    op(Ec2, "CreateLaunchTemplate", FLEET, &[grant("ec2:CreateLaunchTemplate", &FLEET_LAUNCH), grant("ec2:CreateTags", &FLEET_TAG_AT_LAUNCH)], "tagged at creation"),
    op(Ec2, "CreateLaunchTemplateVersion", FLEET, &[grant("ec2:CreateLaunchTemplateVersion", &FLEET_OWN)], "tag-scoped"),
    op(Ec2, "DeleteLaunchTemplateVersions", FLEET, &[grant("ec2:DeleteLaunchTemplateVersions", &FLEET_OWN)], "tag-scoped"),
    op(Ec2, "DeleteLaunchTemplate", FLEET, &[grant("ec2:DeleteLaunchTemplate", &FLEET_OWN)], "tag-scoped; deletion"),
    op(Ec2, "CreateFleet", FLEET, CREATE_FLEET, "instances tagged at launch; the instance profile's role is passed; the first spot launch creates the spot service-linked roles"),
    op(Ec2, "RunInstances", FLEET, LAUNCH, "instances tagged at launch; the instance profile's role is passed"),
    op(Ec2, "CreateTags", FLEET, &[grant("ec2:CreateTags", &FLEET_OWN)], "re-stamping own instances (tag-scoped)"),
    op(Ec2, "TerminateInstances", FLEET, &[grant("ec2:TerminateInstances", &FLEET_OWN)], "tag-scoped"),
];

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::{Path, PathBuf};

    use super::*;

    fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                rust_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    /// The functions that pass an `operation: &'static str` on to the caller (`call`,
    /// `call_optional`, and adapter helpers such as S3's `setting`): their first literal
    /// argument is an operation name.
    fn operation_taking_functions(texts: &[String]) -> BTreeSet<String> {
        let mut names = BTreeSet::from(["call".to_owned(), "call_optional".to_owned()]);
        for text in texts {
            for (at, _) in text.match_indices("fn ") {
                let rest = &text[at + 3..];
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                let signature = rest.split('{').next().unwrap_or_default();
                if signature.contains("operation: &'static str") {
                    names.insert(name);
                }
            }
        }
        names
    }

    /// `service Operation` of every string literal passed first to an operation-taking function
    /// in an adapter's source (the literal may start on the next line).
    fn called_in_source() -> BTreeSet<String> {
        let aws = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/aws");
        let mut files = Vec::new();
        rust_files(&aws, &mut files);
        let adapters: Vec<(Service, String)> = files
            .iter()
            .filter_map(|file| {
                let service = file
                    .strip_prefix(&aws)
                    .ok()?
                    .components()
                    .next()?
                    .as_os_str()
                    .to_str()?
                    .trim_end_matches(".rs")
                    .parse::<Service>()
                    .ok()?;
                Some((service, std::fs::read_to_string(file).unwrap()))
            })
            .collect();
        let texts: Vec<String> = adapters.iter().map(|(_, text)| text.clone()).collect();
        let functions = operation_taking_functions(&texts);
        let mut called = BTreeSet::new();
        for (service, text) in &adapters {
            for function in &functions {
                let marker = format!("{function}(");
                for (at, _) in text.match_indices(&marker) {
                    let preceded_by_name = text[..at]
                        .chars()
                        .next_back()
                        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
                    let rest = text[at + marker.len()..].trim_start();
                    let Some(literal) = rest.strip_prefix('"') else {
                        continue;
                    };
                    let name: String = literal.chars().take_while(|c| *c != '"').collect();
                    if !preceded_by_name
                        && !name.is_empty()
                        && name.chars().all(|c| c.is_ascii_alphanumeric())
                    {
                        called.insert(format!("{service} {name}"));
                    }
                }
            }
        }
        called
    }

    #[test]
    fn the_table_lists_exactly_the_operations_the_adapters_call() {
        let called = called_in_source();
        assert!(
            called.contains("lambda UpdateFunctionCode")
                && called.contains("ec2 TerminateInstances")
                && called.contains("cloudfront DeleteOriginAccessControl")
                && called.contains("s3 GetBucketPolicy"),
            "the adapters' calls were not found: {called:?}"
        );
        let listed: BTreeSet<String> = OPERATIONS
            .iter()
            .map(|op| format!("{} {}", op.service, op.name))
            .collect();
        let missing: Vec<_> = called.difference(&listed).collect();
        assert!(
            missing.is_empty(),
            "called by an adapter, not in OPERATIONS: {missing:?}"
        );
        let gone: Vec<_> = listed.difference(&called).collect();
        assert!(
            gone.is_empty(),
            "in OPERATIONS, called by no adapter: {gone:?}"
        );
        assert_eq!(
            listed.len(),
            OPERATIONS.len(),
            "an operation is listed twice"
        );
    }

    #[test]
    fn every_operation_grants_its_own_service_action_to_a_kind() {
        for op in OPERATIONS {
            assert!(!op.kinds.is_empty(), "{}", op.name);
            assert!(
                op.grants
                    .iter()
                    .any(|g| g.action.starts_with(&format!("{}:", op.service))),
                "{} {} grants no {} action",
                op.service,
                op.name,
                op.service
            );
            for grant in op.grants {
                assert!(
                    SCOPES.contains(&grant.scope),
                    "{}: scope {} not in SCOPES",
                    op.name,
                    grant.scope.sid
                );
            }
        }
    }

    #[test]
    fn every_scope_is_used_and_named_once() {
        let sids: BTreeSet<&str> = SCOPES.iter().map(|s| s.sid).collect();
        assert_eq!(sids.len(), SCOPES.len());
        for scope in SCOPES {
            assert!(
                OPERATIONS
                    .iter()
                    .flat_map(|op| op.grants)
                    .any(|g| g.scope == scope),
                "{} grants nothing",
                scope.sid
            );
        }
    }

    #[test]
    fn lookup_by_service_and_name() {
        assert_eq!(
            find(Service::S3, "CopyObject").map(|op| op.kinds),
            Some(SITE)
        );
        assert!(find(Service::Lambda, "CopyObject").is_none());
        assert_eq!("staticsite".parse::<Kind>(), Ok(Kind::StaticSite));
        assert!("Pod".parse::<Kind>().is_err());
    }
}
