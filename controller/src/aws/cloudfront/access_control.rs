//! Origin Access Control: how CloudFront signs its requests to the private bucket (SigV4,
//! always). The bucket policy then allows `s3:GetObject` only to CloudFront for the site's
//! distribution; the bucket itself stays closed to the public.

use aws_sdk_cloudfront::types::{
    OriginAccessControlConfig, OriginAccessControlOriginTypes, OriginAccessControlSigningBehaviors,
    OriginAccessControlSigningProtocols,
};

use super::types::OriginAccessControlInfo;
use super::{CloudFront, PAGE_SIZE, invalid};
use crate::aws::{AwsError, Service};

/// CloudFront's answer to a second OAC with a name in use (moto accepts duplicates).
const NAME_IN_USE: &str = "OriginAccessControlAlreadyExists";

fn info(
    id: &str,
    config: &OriginAccessControlConfig,
    e_tag: Option<&str>,
) -> OriginAccessControlInfo {
    OriginAccessControlInfo {
        id: id.to_owned(),
        name: config.name().to_owned(),
        description: config.description().unwrap_or_default().to_owned(),
        signing_protocol: config.signing_protocol().as_str().to_owned(),
        signing_behavior: config.signing_behavior().as_str().to_owned(),
        origin_type: config
            .origin_access_control_origin_type()
            .as_str()
            .to_owned(),
        e_tag: e_tag.map(str::to_owned),
    }
}

impl CloudFront {
    /// Creates an OAC for S3 origins that always signs with SigV4. A name already in use
    /// (AWS refuses it) returns the existing OAC of that name; moto accepts duplicate names,
    /// so callers look with [`CloudFront::find_origin_access_control`] first.
    pub async fn create_origin_access_control(
        &self,
        name: &str,
        description: &str,
    ) -> Result<OriginAccessControlInfo, AwsError> {
        let config = OriginAccessControlConfig::builder()
            .name(name)
            .description(description)
            .signing_protocol(OriginAccessControlSigningProtocols::Sigv4)
            .signing_behavior(OriginAccessControlSigningBehaviors::Always)
            .origin_access_control_origin_type(OriginAccessControlOriginTypes::S3)
            .build()
            .map_err(|err| invalid("CreateOriginAccessControl", name, &err))?;
        let request = self
            .client
            .create_origin_access_control()
            .origin_access_control_config(config)
            .send();
        match self
            .caller
            .call("CreateOriginAccessControl", Some(name), request)
            .await
        {
            Ok(output) => {
                let created = crate::aws::required(
                    output.origin_access_control(),
                    Service::CloudFront,
                    "CreateOriginAccessControl",
                    Some(name),
                    "OriginAccessControl",
                )?;
                let config = crate::aws::required(
                    created.origin_access_control_config(),
                    Service::CloudFront,
                    "CreateOriginAccessControl",
                    Some(name),
                    "OriginAccessControlConfig",
                )?;
                Ok(info(created.id(), config, output.e_tag()))
            }
            Err(err) if err.code.as_deref() == Some(NAME_IN_USE) => {
                self.find_origin_access_control(name).await?.ok_or(err)
            }
            Err(err) => Err(err),
        }
    }

    /// The OAC named `name` (all pages of the account's OACs); `None` when there is none.
    pub async fn find_origin_access_control(
        &self,
        name: &str,
    ) -> Result<Option<OriginAccessControlInfo>, AwsError> {
        Ok(self
            .list_origin_access_controls()
            .await?
            .into_iter()
            .find(|o| o.name == name))
    }

    /// Every OAC of the account (all pages of `ListOriginAccessControls`). OACs are global:
    /// one listing serves every site, whatever its region.
    pub async fn list_origin_access_controls(
        &self,
    ) -> Result<Vec<OriginAccessControlInfo>, AwsError> {
        let mut marker: Option<String> = None;
        let mut all = Vec::new();
        loop {
            let request = self
                .client
                .list_origin_access_controls()
                .set_marker(marker.clone())
                .max_items(PAGE_SIZE)
                .send();
            let output = self
                .caller
                .call("ListOriginAccessControls", None, request)
                .await?;
            let Some(list) = output.origin_access_control_list() else {
                return Ok(all);
            };
            all.extend(list.items().iter().map(|found| {
                OriginAccessControlInfo {
                    id: found.id().to_owned(),
                    name: found.name().to_owned(),
                    description: found.description().to_owned(),
                    signing_protocol: found.signing_protocol().as_str().to_owned(),
                    signing_behavior: found.signing_behavior().as_str().to_owned(),
                    origin_type: found
                        .origin_access_control_origin_type()
                        .as_str()
                        .to_owned(),
                    e_tag: None,
                }
            }));
            match list.next_marker() {
                Some(next) if list.is_truncated() && marker.as_deref() == Some(next) => {
                    return Err(AwsError::endless_listing(
                        Service::CloudFront,
                        "ListOriginAccessControls",
                        next,
                    ));
                }
                Some(next) if list.is_truncated() && !next.is_empty() => {
                    marker = Some(next.to_owned());
                }
                _ => return Ok(all),
            }
        }
    }

    /// The OAC with its ETag; `None` when it does not exist.
    pub async fn get_origin_access_control(
        &self,
        id: &str,
    ) -> Result<Option<OriginAccessControlInfo>, AwsError> {
        let request = self.client.get_origin_access_control().id(id).send();
        let Some(output) = self
            .caller
            .call_optional("GetOriginAccessControl", Some(id), request)
            .await?
        else {
            return Ok(None);
        };
        let config = crate::aws::required(
            output
                .origin_access_control()
                .and_then(|o| o.origin_access_control_config()),
            Service::CloudFront,
            "GetOriginAccessControl",
            Some(id),
            "OriginAccessControlConfig",
        )?;
        Ok(Some(info(id, config, output.e_tag())))
    }

    /// Deletes the OAC at its current ETag; `false` when it did not exist. One a distribution
    /// still uses is `OriginAccessControlInUse`, a `Conflict`: delete the distribution first.
    pub async fn delete_origin_access_control(&self, id: &str) -> Result<bool, AwsError> {
        let Some(current) = self.get_origin_access_control(id).await? else {
            return Ok(false);
        };
        let request = self
            .client
            .delete_origin_access_control()
            .id(id)
            .set_if_match(current.e_tag)
            .send();
        let deleted = self
            .caller
            .call_optional("DeleteOriginAccessControl", Some(id), request)
            .await?;
        Ok(deleted.is_some())
    }
}
