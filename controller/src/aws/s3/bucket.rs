//! A site's bucket: created private in its region, and every setting read back as a plain fact.
//!
//! Each setting has its own call (S3 has no "describe bucket"). A setting that was never
//! configured answers with its own not-found code (`NoSuchTagSet`, `NoSuchBucketPolicy`,
//! `OwnershipControlsNotFoundError`, ...): that is `None`, while a missing *bucket*
//! (`NoSuchBucket`) stays an error.

use std::collections::BTreeMap;
use std::future::Future;

use aws_sdk_s3::operation::get_bucket_notification_configuration::GetBucketNotificationConfigurationOutput;
use aws_sdk_s3::types::{
    BucketLocationConstraint, BucketVersioningStatus, CreateBucketConfiguration,
    EventBridgeConfiguration, NotificationConfiguration, ObjectOwnership, OwnershipControls,
    OwnershipControlsRule, PublicAccessBlockConfiguration, ServerSideEncryption,
    ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration, ServerSideEncryptionRule,
    Tag, Tagging, VersioningConfiguration,
};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::types::{BucketCreated, BucketHead, BucketSettings, PublicAccessBlock, Versioning};
use super::{S3, invalid_input};
use crate::aws::AwsError;

/// The region whose buckets take no `LocationConstraint` (S3 refuses one naming it).
const DEFAULT_REGION: &str = "us-east-1";

/// S3's answer to creating a bucket this account already has (outside us-east-1, where the
/// answer is a plain success).
const ALREADY_OWNED: &str = "BucketAlreadyOwnedByYou";

/// The not-configured codes of each bucket setting.
const NO_PUBLIC_ACCESS_BLOCK: &str = "NoSuchPublicAccessBlockConfiguration";
const NO_OWNERSHIP_CONTROLS: &str = "OwnershipControlsNotFoundError";
const NO_ENCRYPTION: &str = "ServerSideEncryptionConfigurationNotFoundError";
const NO_TAG_SET: &str = "NoSuchTagSet";
const NO_POLICY: &str = "NoSuchBucketPolicy";

impl S3 {
    /// Whether the bucket exists (and this account may use it), with its region; `None` when
    /// it does not exist. A bucket of another account is `AccessDenied` (HTTP 403).
    pub async fn head_bucket(&self, bucket: &str) -> Result<Option<BucketHead>, AwsError> {
        let request = self.client.head_bucket().bucket(bucket).send();
        let output = self
            .caller
            .call_optional("HeadBucket", Some(bucket), request)
            .await?;
        Ok(output.map(|o| BucketHead {
            region: o.bucket_region().map(str::to_owned),
        }))
    }

    /// Creates the bucket in this adapter's region (with the `LocationConstraint` every region
    /// but us-east-1 needs). Creating it again from this account is `AlreadyOwned`, not an
    /// error: a crash between create and status write finds its bucket.
    pub async fn create_bucket(&self, bucket: &str) -> Result<BucketCreated, AwsError> {
        let region = self.region();
        let configuration = (region != DEFAULT_REGION).then(|| {
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(region))
                .build()
        });
        let request = self
            .client
            .create_bucket()
            .bucket(bucket)
            .set_create_bucket_configuration(configuration)
            .send();
        match self
            .caller
            .call("CreateBucket", Some(bucket), request)
            .await
        {
            Ok(_) => Ok(BucketCreated::Created),
            Err(err) if err.code.as_deref() == Some(ALREADY_OWNED) => {
                Ok(BucketCreated::AlreadyOwned)
            }
            Err(err) => Err(err),
        }
    }

    /// Deletes an empty bucket; `false` when it did not exist. A bucket with versions left is
    /// `BucketNotEmpty` (a conflict): [`S3::empty_bucket`] first.
    pub async fn delete_bucket(&self, bucket: &str) -> Result<bool, AwsError> {
        let request = self.client.delete_bucket().bucket(bucket).send();
        let deleted = self
            .caller
            .call_optional("DeleteBucket", Some(bucket), request)
            .await?;
        Ok(deleted.is_some())
    }

    /// Turns versioning on (rollback restores object versions; it cannot be turned off, only
    /// suspended).
    pub async fn enable_versioning(&self, bucket: &str) -> Result<(), AwsError> {
        let request = self
            .client
            .put_bucket_versioning()
            .bucket(bucket)
            .versioning_configuration(
                VersioningConfiguration::builder()
                    .status(BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send();
        self.caller
            .call("PutBucketVersioning", Some(bucket), request)
            .await?;
        Ok(())
    }

    /// The versioning state; `None` on a bucket that never had versioning.
    pub async fn get_versioning(&self, bucket: &str) -> Result<Option<Versioning>, AwsError> {
        let request = self.client.get_bucket_versioning().bucket(bucket).send();
        let output = self
            .caller
            .call("GetBucketVersioning", Some(bucket), request)
            .await?;
        Ok(match output.status() {
            Some(BucketVersioningStatus::Enabled) => Some(Versioning::Enabled),
            Some(BucketVersioningStatus::Suspended) => Some(Versioning::Suspended),
            _ => None,
        })
    }

    /// Sets the four Block Public Access switches.
    pub async fn put_public_access_block(
        &self,
        bucket: &str,
        block: PublicAccessBlock,
    ) -> Result<(), AwsError> {
        let configuration = PublicAccessBlockConfiguration::builder()
            .block_public_acls(block.block_public_acls)
            .ignore_public_acls(block.ignore_public_acls)
            .block_public_policy(block.block_public_policy)
            .restrict_public_buckets(block.restrict_public_buckets)
            .build();
        let request = self
            .client
            .put_public_access_block()
            .bucket(bucket)
            .public_access_block_configuration(configuration)
            .send();
        self.caller
            .call("PutPublicAccessBlock", Some(bucket), request)
            .await?;
        Ok(())
    }

    pub async fn get_public_access_block(
        &self,
        bucket: &str,
    ) -> Result<Option<PublicAccessBlock>, AwsError> {
        let request = self.client.get_public_access_block().bucket(bucket).send();
        let output = self
            .setting(
                "GetPublicAccessBlock",
                bucket,
                NO_PUBLIC_ACCESS_BLOCK,
                request,
            )
            .await?;
        Ok(output.map(|o| {
            let c = o.public_access_block_configuration();
            let on = |get: fn(&PublicAccessBlockConfiguration) -> Option<bool>| {
                c.and_then(get).unwrap_or(false)
            };
            PublicAccessBlock {
                block_public_acls: on(PublicAccessBlockConfiguration::block_public_acls),
                ignore_public_acls: on(PublicAccessBlockConfiguration::ignore_public_acls),
                block_public_policy: on(PublicAccessBlockConfiguration::block_public_policy),
                restrict_public_buckets: on(
                    PublicAccessBlockConfiguration::restrict_public_buckets,
                ),
            }
        }))
    }

    /// Object Ownership `BucketOwnerEnforced`: ACLs are off, the bucket owner owns every
    /// object (CloudFront's OAC and the bucket policy are the only access).
    pub async fn enforce_bucket_owner(&self, bucket: &str) -> Result<(), AwsError> {
        let rule = OwnershipControlsRule::builder()
            .object_ownership(ObjectOwnership::BucketOwnerEnforced)
            .build()
            .map_err(|err| invalid_input("PutBucketOwnershipControls", bucket, &err))?;
        let controls = OwnershipControls::builder()
            .rules(rule)
            .build()
            .map_err(|err| invalid_input("PutBucketOwnershipControls", bucket, &err))?;
        let request = self
            .client
            .put_bucket_ownership_controls()
            .bucket(bucket)
            .ownership_controls(controls)
            .send();
        self.caller
            .call("PutBucketOwnershipControls", Some(bucket), request)
            .await?;
        Ok(())
    }

    /// The object ownership setting (`BucketOwnerEnforced`, ...); `None` when not configured.
    pub async fn get_object_ownership(&self, bucket: &str) -> Result<Option<String>, AwsError> {
        let request = self
            .client
            .get_bucket_ownership_controls()
            .bucket(bucket)
            .send();
        let output = self
            .setting(
                "GetBucketOwnershipControls",
                bucket,
                NO_OWNERSHIP_CONTROLS,
                request,
            )
            .await?;
        Ok(output.and_then(|o| {
            o.ownership_controls()?
                .rules()
                .first()
                .map(|r| r.object_ownership().as_str().to_owned())
        }))
    }

    /// Default encryption with S3-managed keys (SSE-S3, `AES256`).
    pub async fn encrypt_by_default(&self, bucket: &str) -> Result<(), AwsError> {
        let by_default = ServerSideEncryptionByDefault::builder()
            .sse_algorithm(ServerSideEncryption::Aes256)
            .build()
            .map_err(|err| invalid_input("PutBucketEncryption", bucket, &err))?;
        let configuration = ServerSideEncryptionConfiguration::builder()
            .rules(
                ServerSideEncryptionRule::builder()
                    .apply_server_side_encryption_by_default(by_default)
                    .build(),
            )
            .build()
            .map_err(|err| invalid_input("PutBucketEncryption", bucket, &err))?;
        let request = self
            .client
            .put_bucket_encryption()
            .bucket(bucket)
            .server_side_encryption_configuration(configuration)
            .send();
        self.caller
            .call("PutBucketEncryption", Some(bucket), request)
            .await?;
        Ok(())
    }

    /// The default encryption algorithm (`AES256`, `aws:kms`, ...); `None` when not configured.
    pub async fn get_default_encryption(&self, bucket: &str) -> Result<Option<String>, AwsError> {
        let request = self.client.get_bucket_encryption().bucket(bucket).send();
        let output = self
            .setting("GetBucketEncryption", bucket, NO_ENCRYPTION, request)
            .await?;
        Ok(output.and_then(|o| {
            o.server_side_encryption_configuration()?
                .rules()
                .iter()
                .find_map(|r| r.apply_server_side_encryption_by_default())
                .map(|d| d.sse_algorithm().as_str().to_owned())
        }))
    }

    /// The bucket's tags (empty when it has none).
    pub async fn get_bucket_tags(
        &self,
        bucket: &str,
    ) -> Result<BTreeMap<String, String>, AwsError> {
        let request = self.client.get_bucket_tagging().bucket(bucket).send();
        let output = self
            .setting("GetBucketTagging", bucket, NO_TAG_SET, request)
            .await?;
        Ok(output
            .map(|o| {
                o.tag_set()
                    .iter()
                    .map(|t| (t.key().to_owned(), t.value().to_owned()))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Replaces the bucket's whole tag set with `tags` (S3 has no per-tag write: merge with
    /// [`S3::get_bucket_tags`] to keep other tools' tags).
    pub async fn put_bucket_tags(
        &self,
        bucket: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), AwsError> {
        let tag_set = tags
            .iter()
            .map(|(key, value)| Tag::builder().key(key).value(value).build())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| invalid_input("PutBucketTagging", bucket, &err))?;
        let tagging = Tagging::builder()
            .set_tag_set(Some(tag_set))
            .build()
            .map_err(|err| invalid_input("PutBucketTagging", bucket, &err))?;
        let request = self
            .client
            .put_bucket_tagging()
            .bucket(bucket)
            .tagging(tagging)
            .send();
        self.caller
            .call("PutBucketTagging", Some(bucket), request)
            .await?;
        Ok(())
    }

    /// The bucket policy document; `None` when the bucket has none.
    pub async fn get_bucket_policy(&self, bucket: &str) -> Result<Option<String>, AwsError> {
        let request = self.client.get_bucket_policy().bucket(bucket).send();
        let output = self
            .setting("GetBucketPolicy", bucket, NO_POLICY, request)
            .await?;
        Ok(output.and_then(|o| o.policy().map(str::to_owned)))
    }

    /// Replaces the bucket policy (build it with [`super::cloudfront_read_policy`]).
    pub async fn put_bucket_policy(&self, bucket: &str, policy: &str) -> Result<(), AwsError> {
        let request = self
            .client
            .put_bucket_policy()
            .bucket(bucket)
            .policy(policy)
            .send();
        self.caller
            .call("PutBucketPolicy", Some(bucket), request)
            .await?;
        Ok(())
    }

    /// Turns delivery of the bucket's events to EventBridge on or off, keeping the bucket's
    /// other notifications (SNS, SQS, Lambda): S3 replaces the whole configuration on a put,
    /// so it is read first.
    pub async fn set_eventbridge_notifications(
        &self,
        bucket: &str,
        on: bool,
    ) -> Result<(), AwsError> {
        let request = self
            .client
            .get_bucket_notification_configuration()
            .bucket(bucket)
            .send();
        let current = self
            .caller
            .call("GetBucketNotificationConfiguration", Some(bucket), request)
            .await?;
        let configuration = with_eventbridge(&current, on);
        let request = self
            .client
            .put_bucket_notification_configuration()
            .bucket(bucket)
            .notification_configuration(configuration)
            .send();
        self.caller
            .call("PutBucketNotificationConfiguration", Some(bucket), request)
            .await?;
        Ok(())
    }

    /// Whether the bucket's events go to EventBridge.
    pub async fn eventbridge_notifications(&self, bucket: &str) -> Result<bool, AwsError> {
        let request = self
            .client
            .get_bucket_notification_configuration()
            .bucket(bucket)
            .send();
        let output = self
            .caller
            .call("GetBucketNotificationConfiguration", Some(bucket), request)
            .await?;
        Ok(output.event_bridge_configuration().is_some())
    }

    /// Every setting at once (seven reads, concurrently; each boxed, so the whole future
    /// stays small for its callers).
    pub async fn bucket_settings(&self, bucket: &str) -> Result<BucketSettings, AwsError> {
        let (versioning, public_access_block, object_ownership, default_encryption) = futures::try_join!(
            Box::pin(self.get_versioning(bucket)),
            Box::pin(self.get_public_access_block(bucket)),
            Box::pin(self.get_object_ownership(bucket)),
            Box::pin(self.get_default_encryption(bucket)),
        )?;
        let (tags, policy, eventbridge_notifications) = futures::try_join!(
            Box::pin(self.get_bucket_tags(bucket)),
            Box::pin(self.get_bucket_policy(bucket)),
            Box::pin(self.eventbridge_notifications(bucket)),
        )?;
        Ok(BucketSettings {
            versioning,
            public_access_block,
            object_ownership,
            default_encryption,
            tags,
            policy,
            eventbridge_notifications,
        })
    }

    /// A setting's read: its own not-configured code is `None`, every other error (a missing
    /// bucket included) stays an error.
    async fn setting<T, E, F>(
        &self,
        operation: &'static str,
        bucket: &str,
        not_configured: &str,
        request: F,
    ) -> Result<Option<T>, AwsError>
    where
        F: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        match self.caller.call(operation, Some(bucket), request).await {
            Ok(output) => Ok(Some(output)),
            Err(err) if err.code.as_deref() == Some(not_configured) => Ok(None),
            Err(err) => Err(err),
        }
    }
}

/// The bucket's notification configuration with EventBridge delivery `on` or off and every
/// other destination as it was.
pub(super) fn with_eventbridge(
    current: &GetBucketNotificationConfigurationOutput,
    on: bool,
) -> NotificationConfiguration {
    NotificationConfiguration::builder()
        .set_topic_configurations(Some(current.topic_configurations().to_vec()))
        .set_queue_configurations(Some(current.queue_configurations().to_vec()))
        .set_lambda_function_configurations(Some(current.lambda_function_configurations().to_vec()))
        .set_event_bridge_configuration(on.then(|| EventBridgeConfiguration::builder().build()))
        .build()
}
