//! CloudFront: a StaticSite's distribution and its invalidations.

use aws_sdk_cloudfront::Client;
use aws_sdk_cloudfront::types::{InvalidationBatch, Paths};

use super::call::Caller;
use super::{AwsError, Service};

/// A distribution's identity and deployment state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DistributionInfo {
    pub id: String,
    pub arn: String,
    pub domain_name: String,
    /// `InProgress` or `Deployed`.
    pub status: String,
    /// The version for `If-Match` on updates.
    pub e_tag: Option<String>,
}

/// An invalidation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidationInfo {
    pub id: String,
    /// `InProgress` or `Completed` (moto: `COMPLETED`).
    pub status: String,
}

impl InvalidationInfo {
    /// Compared case-insensitively: AWS says `Completed`, emulators `COMPLETED`.
    pub fn is_completed(&self) -> bool {
        self.status.eq_ignore_ascii_case("Completed")
    }
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

    /// The distribution; `None` when it does not exist.
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
        Ok(Some(DistributionInfo {
            id: distribution.id().to_owned(),
            arn: distribution.arn().to_owned(),
            domain_name: distribution.domain_name().to_owned(),
            status: distribution.status().to_owned(),
            e_tag: output.e_tag().map(str::to_owned),
        }))
    }

    /// Invalidates `paths` (each starting with `/`). `caller_reference` makes a retry of the
    /// same request return the same invalidation instead of a second one.
    pub async fn create_invalidation(
        &self,
        distribution_id: &str,
        caller_reference: &str,
        paths: &[String],
    ) -> Result<InvalidationInfo, AwsError> {
        let invalid = |err: &dyn std::error::Error| {
            AwsError::invalid_request(
                Service::CloudFront,
                "CreateInvalidation",
                Some(distribution_id.to_owned()),
                err.to_string(),
            )
        };
        let quantity = i32::try_from(paths.len()).map_err(|e| invalid(&e))?;
        let batch = InvalidationBatch::builder()
            .paths(
                Paths::builder()
                    .quantity(quantity)
                    .set_items(Some(paths.to_vec()))
                    .build()
                    .map_err(|e| invalid(&e))?,
            )
            .caller_reference(caller_reference)
            .build()
            .map_err(|e| invalid(&e))?;
        let request = self
            .client
            .create_invalidation()
            .distribution_id(distribution_id)
            .invalidation_batch(batch)
            .send();
        let output = self
            .caller
            .call("CreateInvalidation", Some(distribution_id), request)
            .await?;
        let invalidation = super::required(
            output.invalidation(),
            Service::CloudFront,
            "CreateInvalidation",
            Some(distribution_id),
            "Invalidation",
        )?;
        Ok(InvalidationInfo {
            id: invalidation.id().to_owned(),
            status: invalidation.status().to_owned(),
        })
    }

    /// An invalidation's state; `None` when it does not exist.
    pub async fn get_invalidation(
        &self,
        distribution_id: &str,
        id: &str,
    ) -> Result<Option<InvalidationInfo>, AwsError> {
        let request = self
            .client
            .get_invalidation()
            .distribution_id(distribution_id)
            .id(id)
            .send();
        let Some(output) = self
            .caller
            .call_optional("GetInvalidation", Some(distribution_id), request)
            .await?
        else {
            return Ok(None);
        };
        let invalidation = super::required(
            output.invalidation(),
            Service::CloudFront,
            "GetInvalidation",
            Some(distribution_id),
            "Invalidation",
        )?;
        Ok(Some(InvalidationInfo {
            id: invalidation.id().to_owned(),
            status: invalidation.status().to_owned(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completion_is_case_insensitive() {
        for (status, done) in [
            ("Completed", true),
            ("COMPLETED", true),
            ("InProgress", false),
        ] {
            let info = InvalidationInfo {
                id: "I1".into(),
                status: status.into(),
            };
            assert_eq!(info.is_completed(), done, "{status}");
        }
    }
}
