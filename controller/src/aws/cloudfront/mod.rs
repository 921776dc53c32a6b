//! CloudFront: a StaticSite's distribution, its Origin Access Control and its invalidations.
//!
//! CloudFront is global (its API is in us-east-1) and versions every configuration with an
//! ETag: updates and deletes send `If-Match` with the ETag the decision was made on, and a
//! stale one is `PreconditionFailed` — a [`Conflict`](super::ErrorKind::Conflict), retried
//! after observing again. Creation is made idempotent by the caller's `CallerReference`.

use std::collections::BTreeMap;

use aws_sdk_cloudfront::Client;
use aws_sdk_cloudfront::types::{
    Distribution, DistributionConfig, DistributionConfigWithTags, Tag, Tags,
};
use aws_smithy_types::error::operation::BuildError;

pub use self::types::*;
use super::call::Caller;
use super::{AwsError, ErrorKind, Service};

mod access_control;
mod config;
mod invalidation;
mod types;

#[cfg(test)]
mod tests;

/// `MaxItems` of the listings: CloudFront's maximum.
const PAGE_SIZE: i32 = 100;

/// CloudFront's answer to a second create with a used `CallerReference` and a different
/// configuration (AWS), or any repeated one (moto).
const DISTRIBUTION_EXISTS: &str = "DistributionAlreadyExists";

fn distribution_info(d: &Distribution, e_tag: Option<&str>) -> DistributionInfo {
    DistributionInfo {
        id: d.id().to_owned(),
        arn: d.arn().to_owned(),
        domain_name: d.domain_name().to_owned(),
        status: d.status().to_owned(),
        e_tag: e_tag.map(str::to_owned),
        settings: d
            .distribution_config()
            .map(config::read)
            .unwrap_or_default(),
        in_progress_invalidations: d.in_progress_invalidation_batches(),
    }
}

fn tag_list(tags: &BTreeMap<String, String>) -> Result<Tags, BuildError> {
    let items = tags
        .iter()
        .map(|(key, value)| Tag::builder().key(key).value(value).build())
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Tags::builder().set_items(Some(items)).build())
}

/// A request Stagehand could not build from its input.
fn invalid(operation: &'static str, resource: &str, err: &dyn std::error::Error) -> AwsError {
    AwsError::invalid_request(
        Service::CloudFront,
        operation,
        Some(resource.to_owned()),
        err.to_string(),
    )
}

/// The CloudFront adapter.
#[derive(Clone, Debug)]
pub struct CloudFront {
    client: Client,
    caller: Caller,
}

impl CloudFront {
    pub(crate) fn new(client: Client, caller: Caller) -> Self {
        Self { client, caller }
    }

    /// The distribution, its managed settings and ETag; `None` when it does not exist.
    pub async fn get_distribution(&self, id: &str) -> Result<Option<DistributionInfo>, AwsError> {
        let request = self.client.get_distribution().id(id).send();
        let Some(output) = self
            .caller
            .call_optional("GetDistribution", Some(id), request)
            .await?
        else {
            return Ok(None);
        };
        let distribution = super::required(
            output.distribution(),
            Service::CloudFront,
            "GetDistribution",
            Some(id),
            "Distribution",
        )?;
        Ok(Some(distribution_info(distribution, output.e_tag())))
    }

    /// The configuration's managed settings and the ETag to update it with; `None` when the
    /// distribution does not exist.
    pub async fn get_distribution_config(
        &self,
        id: &str,
    ) -> Result<Option<DistributionConfigRead>, AwsError> {
        Ok(self
            .config_of(id)
            .await?
            .map(|(config, e_tag)| DistributionConfigRead {
                settings: config::read(&config),
                e_tag,
            }))
    }

    /// Creates the distribution with its tags in one call (never untagged, even after a
    /// crash). A repeated `CallerReference` finds the distribution it made: AWS answers the
    /// same distribution for the same configuration and `DistributionAlreadyExists` for
    /// another; moto always answers `DistributionAlreadyExists`.
    pub async fn create_distribution(
        &self,
        settings: &DistributionSettings,
        tags: &BTreeMap<String, String>,
    ) -> Result<CreatedDistribution, AwsError> {
        let reference = settings.caller_reference.as_str();
        let build = |err: BuildError| invalid("CreateDistributionWithTags", reference, &err);
        let with_tags = DistributionConfigWithTags::builder()
            .distribution_config(config::new_config(settings).map_err(build)?)
            .tags(tag_list(tags).map_err(build)?)
            .build();
        let request = self
            .client
            .create_distribution_with_tags()
            .distribution_config_with_tags(with_tags)
            .send();
        let err = match self
            .caller
            .call("CreateDistributionWithTags", Some(reference), request)
            .await
        {
            Ok(output) => {
                let distribution = super::required(
                    output.distribution(),
                    Service::CloudFront,
                    "CreateDistributionWithTags",
                    Some(reference),
                    "Distribution",
                )?;
                return Ok(CreatedDistribution {
                    distribution: distribution_info(distribution, output.e_tag()),
                    already_existed: false,
                });
            }
            Err(err) if err.code.as_deref() == Some(DISTRIBUTION_EXISTS) => err,
            Err(err) => return Err(err),
        };
        match self.find_distribution(reference, &settings.comment).await? {
            Some(distribution) => Ok(CreatedDistribution {
                distribution,
                already_existed: true,
            }),
            // Another object's reference (or one we cannot see): the error stands.
            None => Err(err),
        }
    }

    /// The distribution created with `caller_reference`, among those whose comment is
    /// `comment` (listings show comments, not caller references: each candidate is read).
    pub async fn find_distribution(
        &self,
        caller_reference: &str,
        comment: &str,
    ) -> Result<Option<DistributionInfo>, AwsError> {
        let candidates = self.list_distributions().await?;
        for summary in candidates.iter().filter(|d| d.comment == comment) {
            if let Some(found) = self.get_distribution(&summary.id).await?
                && found.settings.caller_reference == caller_reference
            {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// One page of up to `max_items` distributions from `marker` (`None`: the first).
    pub async fn list_distributions_page(
        &self,
        marker: Option<String>,
        max_items: i32,
    ) -> Result<DistributionPage, AwsError> {
        let request = self
            .client
            .list_distributions()
            .set_marker(marker)
            .max_items(max_items)
            .send();
        let output = self.caller.call("ListDistributions", None, request).await?;
        let Some(list) = output.distribution_list() else {
            return Ok(DistributionPage::default());
        };
        let distributions = list
            .items()
            .iter()
            .map(|d| DistributionSummary {
                id: d.id.clone(),
                arn: d.arn.clone(),
                domain_name: d.domain_name.clone(),
                status: d.status.clone(),
                comment: d.comment.clone(),
                enabled: d.enabled,
                aliases: d.aliases().map(|a| a.items().to_vec()).unwrap_or_default(),
            })
            .collect();
        let next_marker = list
            .next_marker()
            .filter(|m| list.is_truncated() && !m.is_empty())
            .map(str::to_owned);
        Ok(DistributionPage {
            distributions,
            next_marker,
        })
    }

    /// Every distribution of the account (all pages).
    pub async fn list_distributions(&self) -> Result<Vec<DistributionSummary>, AwsError> {
        let mut all = Vec::new();
        let mut marker = None;
        loop {
            let page = self
                .list_distributions_page(marker.clone(), PAGE_SIZE)
                .await?;
            all.extend(page.distributions);
            match page.next_marker {
                Some(next) if marker.as_ref() == Some(&next) => {
                    return Err(AwsError::endless_listing(
                        Service::CloudFront,
                        "ListDistributions",
                        &next,
                    ));
                }
                Some(next) => marker = Some(next),
                None => return Ok(all),
            }
        }
    }

    /// Writes `settings` (the managed fields; the rest of the configuration is kept) if the
    /// configuration is still at `if_match`, the ETag the caller decided on. A configuration
    /// changed since is a `Conflict` (`PreconditionFailed`), from CloudFront or found here
    /// before writing.
    pub async fn update_distribution(
        &self,
        id: &str,
        if_match: &str,
        settings: &DistributionSettings,
    ) -> Result<DistributionInfo, AwsError> {
        let Some((mut current, e_tag)) = self.config_of(id).await? else {
            return Err(not_found("UpdateDistribution", id));
        };
        if e_tag != if_match {
            return Err(stale("UpdateDistribution", id, if_match, &e_tag));
        }
        config::apply(&mut current, settings)
            .map_err(|err| invalid("UpdateDistribution", id, &err))?;
        self.put_config(id, if_match, current).await
    }

    /// Disables the distribution (CloudFront deletes only disabled, deployed distributions);
    /// `None` when it does not exist. Disabling takes minutes on AWS: the status is
    /// `InProgress` until [`DistributionInfo::is_deployed`].
    pub async fn disable_distribution(
        &self,
        id: &str,
    ) -> Result<Option<DistributionInfo>, AwsError> {
        let Some((mut current, e_tag)) = self.config_of(id).await? else {
            return Ok(None);
        };
        if !current.enabled {
            return self.get_distribution(id).await;
        }
        current.enabled = false;
        self.put_config(id, &e_tag, current).await.map(Some)
    }

    /// Deletes a disabled distribution at `if_match`; `false` when it did not exist. One still
    /// enabled (or still deploying) is `DistributionNotDisabled`, a `Conflict`.
    pub async fn delete_distribution(&self, id: &str, if_match: &str) -> Result<bool, AwsError> {
        let request = self
            .client
            .delete_distribution()
            .id(id)
            .if_match(if_match)
            .send();
        let deleted = self
            .caller
            .call_optional("DeleteDistribution", Some(id), request)
            .await?;
        Ok(deleted.is_some())
    }

    /// Adds (or overwrites) tags on a distribution (by ARN).
    pub async fn tag_distribution(
        &self,
        arn: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), AwsError> {
        let tags = tag_list(tags).map_err(|err| invalid("TagResource", arn, &err))?;
        let request = self.client.tag_resource().resource(arn).tags(tags).send();
        self.caller.call("TagResource", Some(arn), request).await?;
        Ok(())
    }

    /// A distribution's tags (by ARN).
    pub async fn distribution_tags(&self, arn: &str) -> Result<BTreeMap<String, String>, AwsError> {
        let request = self.client.list_tags_for_resource().resource(arn).send();
        let output = self
            .caller
            .call("ListTagsForResource", Some(arn), request)
            .await?;
        Ok(output
            .tags()
            .map(Tags::items)
            .unwrap_or_default()
            .iter()
            .map(|t| (t.key().to_owned(), t.value().unwrap_or_default().to_owned()))
            .collect())
    }

    /// The full SDK configuration and its ETag (kept inside the adapter).
    async fn config_of(&self, id: &str) -> Result<Option<(DistributionConfig, String)>, AwsError> {
        let request = self.client.get_distribution_config().id(id).send();
        let Some(output) = self
            .caller
            .call_optional("GetDistributionConfig", Some(id), request)
            .await?
        else {
            return Ok(None);
        };
        let e_tag = super::required(
            output.e_tag(),
            Service::CloudFront,
            "GetDistributionConfig",
            Some(id),
            "ETag",
        )?
        .to_owned();
        let config = super::required(
            output.distribution_config,
            Service::CloudFront,
            "GetDistributionConfig",
            Some(id),
            "DistributionConfig",
        )?;
        Ok(Some((config, e_tag)))
    }

    async fn put_config(
        &self,
        id: &str,
        if_match: &str,
        config: DistributionConfig,
    ) -> Result<DistributionInfo, AwsError> {
        let request = self
            .client
            .update_distribution()
            .id(id)
            .if_match(if_match)
            .distribution_config(config)
            .send();
        let output = self
            .caller
            .call("UpdateDistribution", Some(id), request)
            .await?;
        let distribution = super::required(
            output.distribution(),
            Service::CloudFront,
            "UpdateDistribution",
            Some(id),
            "Distribution",
        )?;
        Ok(distribution_info(distribution, output.e_tag()))
    }
}

/// An update of a distribution that is gone.
fn not_found(operation: &'static str, id: &str) -> AwsError {
    AwsError {
        service: Service::CloudFront,
        operation,
        resource: Some(id.to_owned()),
        kind: ErrorKind::NotFound,
        code: Some("NoSuchDistribution".to_owned()),
        message: "the distribution does not exist".to_owned(),
        http_status: None,
        request_id: None,
    }
}

/// The configuration changed after the caller read it: what CloudFront answers a stale
/// `If-Match` with, found before sending.
fn stale(operation: &'static str, id: &str, if_match: &str, current: &str) -> AwsError {
    AwsError {
        service: Service::CloudFront,
        operation,
        resource: Some(id.to_owned()),
        kind: ErrorKind::Conflict,
        code: Some("PreconditionFailed".to_owned()),
        message: format!(
            "the configuration changed since it was read (ETag {if_match}, now {current})"
        ),
        http_status: None,
        request_id: None,
    }
}
