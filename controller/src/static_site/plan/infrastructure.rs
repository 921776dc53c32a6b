//! The bucket, the Origin Access Control, the bucket policy and the distribution: each a small
//! named comparison of what the spec needs with what is there.
//!
//! The bucket is private. CloudFront reads it through an OAC, and the bucket policy allows
//! `s3:GetObject` to the CloudFront service principal only for this distribution's ARN
//! (`AWS:SourceArn`); public statements (the old scripts' public-read policy) are dropped
//! when the policy is written, and Block Public Access is always on.

use serde_json::{Value, json};

use super::action::{Action, BucketSetting};
use super::ownership::PENDING_BUCKET;
use super::{DriftField, Planner, reason, requeue};
use crate::base::intent::{self, CreateStep};
use crate::static_site::observed::{DistributionConfig, ObservedBucket};

/// The `Sid` of the site's statement in the bucket policy.
pub const SITE_STATEMENT_SID: &str = "StagehandCloudFrontRead";

/// The OAC's name: OACs carry no tags, so the name is how the site finds its own. CloudFront
/// allows 64 characters; a long owner keeps its end (the object's name).
pub fn oac_name(owner: &str) -> String {
    let name = format!("stagehand-{}", owner.replace('/', "-"));
    let skip = name.len().saturating_sub(64);
    name.chars().skip(skip).collect()
}

/// The distribution's `CallerReference`: the object's uid, so a create retried after a crash
/// (before status recorded the id) returns the first distribution instead of a second.
pub fn distribution_caller_reference(uid: &str) -> String {
    format!("stagehand-{uid}")
}

/// The statement that lets this distribution, and nothing else, read the bucket.
pub fn site_statement(bucket: &str, distribution_arn: &str) -> Value {
    json!({
        "Sid": SITE_STATEMENT_SID,
        "Effect": "Allow",
        "Principal": {"Service": "cloudfront.amazonaws.com"},
        "Action": "s3:GetObject",
        "Resource": format!("arn:aws:s3:::{bucket}/*"),
        "Condition": {"StringEquals": {"AWS:SourceArn": distribution_arn}},
    })
}

/// A statement that grants anyone (`"*"`) anything.
fn is_public(statement: &Value) -> bool {
    let principal = &statement["Principal"];
    statement["Effect"] == "Allow" && (principal == "*" || principal["AWS"] == "*")
}

/// The policy to have: `existing`'s statements without public ones and without an earlier
/// site statement, then the site's statement.
pub fn bucket_policy(existing: Option<&Value>, bucket: &str, distribution_arn: &str) -> Value {
    let mut statements: Vec<Value> = existing
        .and_then(|p| p["Statement"].as_array())
        .map(|all| {
            all.iter()
                .filter(|s| s["Sid"] != SITE_STATEMENT_SID && !is_public(s))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    statements.push(site_statement(bucket, distribution_arn));
    json!({"Version": "2012-10-17", "Statement": statements})
}

/// The settings the site depends on that `bucket` lacks. EventBridge notifications matter only
/// with an event feed to hear them (`with_feed`), and are never turned off: another feed or
/// rule may rely on them.
fn missing_settings(bucket: &ObservedBucket, with_feed: bool) -> Vec<BucketSetting> {
    [
        (bucket.versioning_enabled, BucketSetting::Versioning),
        (
            bucket.public_access_blocked,
            BucketSetting::BlockPublicAccess,
        ),
        (bucket.owner_enforced, BucketSetting::OwnerEnforced),
        (bucket.encrypted, BucketSetting::DefaultEncryption),
        (
            bucket.eventbridge_notifications || !with_feed,
            BucketSetting::EventBridgeNotifications,
        ),
    ]
    .into_iter()
    .filter_map(|(on, setting)| (!on).then_some(setting))
    .collect()
}

impl Planner<'_> {
    pub(super) fn plan_bucket(&mut self) {
        let bucket = self.bucket().to_owned();
        let Some(observed) = &self.observed.bucket else {
            if self.spec.bucket.create {
                self.plan_bucket_create(bucket);
            } else {
                self.stall(
                    reason::BUCKET_NOT_FOUND,
                    format!("bucket {bucket} does not exist; create it or set bucket.create: true"),
                );
            }
            return;
        };
        let settings = missing_settings(observed, self.observed.has_event_feed());
        if !settings.is_empty() {
            let names: Vec<&str> = settings.iter().map(|s| s.as_str()).collect();
            self.drift(
                DriftField::Bucket,
                &bucket,
                format!("{} off", names.join(", ")),
            );
            self.act(Action::ConfigureBucket { bucket, settings });
        }
    }

    /// A bucket to create: S3 cannot tag it at `CreateBucket`, so the intent is recorded in
    /// status first, and the bucket created by a round whose status carries the record.
    fn plan_bucket_create(&mut self, bucket: String) {
        let record = self.observed.pending_create.as_ref();
        if intent::create_step(record, PENDING_BUCKET, &bucket) == CreateStep::Record {
            self.plan.record_first = true;
            self.wait(
                reason::CREATE_RECORDED,
                format!("bucket {bucket}"),
                requeue::CREATE_RECORDED_SECONDS,
            );
        }
        self.plan.pending_create = Some(intent::pending_create(PENDING_BUCKET, &bucket));
        let tags = self.ownership_tags();
        self.act(Action::CreateBucket { bucket, tags });
    }

    /// The distribution configuration the spec asks for, with this OAC.
    fn desired_distribution(&self, oac_id: Option<&str>) -> DistributionConfig {
        let spec = &self.spec.distribution;
        DistributionConfig {
            origin_domain_name: format!("{}.s3.{}.amazonaws.com", self.bucket(), self.spec.region),
            origin_access_control_id: oac_id.map(str::to_owned),
            default_root_object: spec.default_root_object.clone(),
            redirect_to_https: true,
            compress: true,
            aliases: spec.aliases.iter().cloned().collect(),
            spa_fallback: spec.spa_fallback,
            enabled: true,
        }
    }

    pub(super) fn plan_distribution(&mut self) {
        let managed = self.spec.distribution.create || self.manages_distribution();
        let oac_id = self
            .observed
            .origin_access_control
            .as_ref()
            .map(|o| o.id.clone());
        if managed && oac_id.is_none() {
            let name = oac_name(&self.context.owner);
            self.drift(DriftField::OriginAccessControl, &name, "missing".to_owned());
            self.act(Action::CreateOriginAccessControl { name });
        }
        let desired = self.desired_distribution(oac_id.as_deref());
        match (&self.observed.distribution, &self.spec.distribution.id) {
            (None, Some(id)) => {
                self.stall(
                    reason::DISTRIBUTION_NOT_FOUND,
                    format!("distribution {id} does not exist"),
                );
            }
            (None, None) => {
                // The OAC comes first: the distribution is created on the round after it.
                if oac_id.is_some() {
                    self.distribution_created_now = true;
                    self.act(Action::CreateDistribution {
                        caller_reference: distribution_caller_reference(&self.context.uid),
                        config: desired,
                        tags: self.ownership_tags(),
                    });
                }
            }
            (Some(observed), _) => {
                let observed = observed.clone();
                if observed.config != desired {
                    self.drift(
                        DriftField::Distribution,
                        &observed.id,
                        "configuration differs from the spec".to_owned(),
                    );
                    if managed && oac_id.is_some() {
                        self.act(Action::UpdateDistribution {
                            id: observed.id.clone(),
                            if_match: observed.e_tag.clone(),
                            config: desired,
                        });
                    }
                }
                self.plan_policy(&observed.arn);
            }
        }
    }

    /// The bucket policy, once both the bucket and the distribution exist.
    fn plan_policy(&mut self, distribution_arn: &str) {
        let Some(bucket) = &self.observed.bucket else {
            return;
        };
        let desired = bucket_policy(bucket.policy.as_ref(), self.bucket(), distribution_arn);
        if bucket.policy.as_ref() != Some(&desired) {
            let name = self.bucket().to_owned();
            self.drift(
                DriftField::Policy,
                &name,
                "not limited to the distribution's reads".to_owned(),
            );
            self.act(Action::PutBucketPolicy {
                bucket: name,
                policy: desired,
            });
        }
    }
}
