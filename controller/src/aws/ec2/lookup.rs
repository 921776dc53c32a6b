//! Looking before a launch: whether the image and the security groups a fleet's spec names
//! exist. EC2 refuses a launch that names a missing one (and the fleet stalls on the refusal),
//! but an emulator such as moto launches anyway; asking first also names every missing group
//! at once rather than the first one EC2 trips on.

use std::collections::BTreeSet;

use aws_sdk_ec2::types::Filter;

use super::Ec2;
use crate::aws::AwsError;

impl Ec2 {
    /// Whether image `image_id` exists for this account (`DescribeImages`): `false` when EC2
    /// lists nothing for it. A missing or malformed id may also come back as EC2's error
    /// (`InvalidAMIID.NotFound`, `InvalidAMIID.Malformed`), which names it.
    pub async fn image_exists(&self, image_id: &str) -> Result<bool, AwsError> {
        let request = self.client.describe_images().image_ids(image_id).send();
        let output = self
            .caller
            .call("DescribeImages", Some(image_id), request)
            .await?;
        Ok(output
            .images()
            .iter()
            .any(|image| image.image_id() == Some(image_id)))
    }

    /// The groups of `group_ids` that exist (`DescribeSecurityGroups` filtered by `group-id`:
    /// one call, and a missing group is left out instead of failing the call).
    pub async fn existing_security_groups(
        &self,
        group_ids: &[String],
    ) -> Result<BTreeSet<String>, AwsError> {
        let mut found = BTreeSet::new();
        if group_ids.is_empty() {
            return Ok(found);
        }
        let mut token: Option<String> = None;
        loop {
            let request = self
                .client
                .describe_security_groups()
                .filters(
                    Filter::builder()
                        .name("group-id")
                        .set_values(Some(group_ids.to_vec()))
                        .build(),
                )
                .set_next_token(token.take())
                .send();
            let page = self
                .caller
                .call(
                    "DescribeSecurityGroups",
                    group_ids.first().map(String::as_str),
                    request,
                )
                .await?;
            found.extend(
                page.security_groups()
                    .iter()
                    .filter_map(|g| g.group_id().map(str::to_owned)),
            );
            match page.next_token() {
                Some(next) if !next.is_empty() => token = Some(next.to_owned()),
                _ => return Ok(found),
            }
        }
    }
}
