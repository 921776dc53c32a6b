//! Invalidations: which cached paths CloudFront drops after a deploy.
//!
//! The `CallerReference` makes a create idempotent on AWS (the same reference and paths
//! return the first invalidation; the same reference with other paths is
//! `InvalidationBatchAlreadyExists`). moto ignores it and creates another, so the caller
//! records the invalidation id and never relies on the reference alone.
//! `TooManyInvalidationsInProgress` (3,000 paths or 15 wildcards in flight) is throttling.

use aws_sdk_cloudfront::types::{Invalidation, InvalidationBatch, Paths};

use super::types::{InvalidationInfo, InvalidationPage};
use super::{CloudFront, invalid};
use crate::aws::{AwsError, Service, smithy_time};

fn info(invalidation: &Invalidation) -> InvalidationInfo {
    let batch = invalidation.invalidation_batch();
    InvalidationInfo {
        id: invalidation.id().to_owned(),
        status: invalidation.status().to_owned(),
        paths: batch
            .and_then(InvalidationBatch::paths)
            .map(|p| p.items().to_vec())
            .unwrap_or_default(),
        caller_reference: batch.map(|b| b.caller_reference().to_owned()),
        create_time: smithy_time(invalidation.create_time()),
    }
}

impl CloudFront {
    /// Invalidates `paths` (each starting with `/`; `*` only at the end).
    pub async fn create_invalidation(
        &self,
        distribution_id: &str,
        caller_reference: &str,
        paths: &[String],
    ) -> Result<InvalidationInfo, AwsError> {
        let build =
            |err: &dyn std::error::Error| invalid("CreateInvalidation", distribution_id, err);
        let quantity = i32::try_from(paths.len()).map_err(|e| build(&e))?;
        let batch = InvalidationBatch::builder()
            .paths(
                Paths::builder()
                    .quantity(quantity)
                    .set_items(Some(paths.to_vec()))
                    .build()
                    .map_err(|e| build(&e))?,
            )
            .caller_reference(caller_reference)
            .build()
            .map_err(|e| build(&e))?;
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
        let invalidation = crate::aws::required(
            output.invalidation(),
            Service::CloudFront,
            "CreateInvalidation",
            Some(distribution_id),
            "Invalidation",
        )?;
        Ok(info(invalidation))
    }

    /// An invalidation's state and paths; `None` when it does not exist.
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
        let invalidation = crate::aws::required(
            output.invalidation(),
            Service::CloudFront,
            "GetInvalidation",
            Some(distribution_id),
            "Invalidation",
        )?;
        Ok(Some(info(invalidation)))
    }

    /// One page of up to `max_items` of the distribution's invalidations (id, status, time;
    /// no paths) from `marker` (`None`: the first).
    pub async fn list_invalidations_page(
        &self,
        distribution_id: &str,
        marker: Option<String>,
        max_items: i32,
    ) -> Result<InvalidationPage, AwsError> {
        let request = self
            .client
            .list_invalidations()
            .distribution_id(distribution_id)
            .set_marker(marker)
            .max_items(max_items)
            .send();
        let output = self
            .caller
            .call("ListInvalidations", Some(distribution_id), request)
            .await?;
        let Some(list) = output.invalidation_list() else {
            return Ok(InvalidationPage::default());
        };
        let invalidations = list
            .items()
            .iter()
            .map(|s| InvalidationInfo {
                id: s.id().to_owned(),
                status: s.status().to_owned(),
                paths: Vec::new(),
                caller_reference: None,
                create_time: smithy_time(s.create_time()),
            })
            .collect();
        let next_marker = list
            .next_marker()
            .filter(|m| list.is_truncated() && !m.is_empty())
            .map(str::to_owned);
        Ok(InvalidationPage {
            invalidations,
            next_marker,
        })
    }
}
