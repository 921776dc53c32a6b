//! EC2: a SpotFleet's instances — launched one by one as spot instances, found by owner tag.

use std::collections::BTreeMap;

use aws_sdk_ec2::Client;
use aws_sdk_ec2::types::{
    Filter, IamInstanceProfileSpecification, Instance, InstanceInterruptionBehavior,
    InstanceMarketOptionsRequest, InstanceType, MarketType, ResourceType, SpotInstanceType,
    SpotMarketOptions, Tag, TagSpecification,
};

use super::call::Caller;
use super::{AwsError, Service};

/// What to launch.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LaunchRequest {
    pub image_id: String,
    pub instance_type: String,
    pub subnet_id: Option<String>,
    pub security_group_ids: Vec<String>,
    pub iam_instance_profile: Option<String>,
    pub key_name: Option<String>,
    /// Plain text (cloud-init); encoded here.
    pub user_data: Option<String>,
    /// Written on the instance and its volumes at launch (no untagged window).
    pub tags: BTreeMap<String, String>,
    /// Spot price cap in USD/hour; `None` = on-demand price.
    pub max_price: Option<String>,
    /// Idempotency token: a retried launch with the same token does not launch twice (on AWS;
    /// emulators ignore it, so callers also look by tag before launching).
    pub client_token: Option<String>,
}

/// An instance as described.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InstanceInfo {
    pub id: String,
    /// `pending`, `running`, `shutting-down`, `terminated`, `stopping`, `stopped`.
    pub state: String,
    pub instance_type: Option<String>,
    pub image_id: Option<String>,
    /// `spot` for spot instances.
    pub lifecycle: Option<String>,
    pub private_ip: Option<String>,
    pub launch_time: Option<jiff::Timestamp>,
    pub state_reason: Option<String>,
    pub tags: BTreeMap<String, String>,
}

impl InstanceInfo {
    /// Gone or going: not counted as capacity.
    pub fn is_terminating(&self) -> bool {
        matches!(self.state.as_str(), "shutting-down" | "terminated")
    }

    fn from_sdk(i: &Instance) -> Self {
        Self {
            id: i.instance_id().unwrap_or_default().to_owned(),
            state: i
                .state()
                .and_then(|s| s.name())
                .map(|n| n.as_str().to_owned())
                .unwrap_or_default(),
            instance_type: i.instance_type().map(|t| t.as_str().to_owned()),
            image_id: i.image_id().map(str::to_owned),
            lifecycle: i.instance_lifecycle().map(|l| l.as_str().to_owned()),
            private_ip: i.private_ip_address().map(str::to_owned),
            launch_time: i.launch_time().and_then(|t| {
                let nanos = i32::try_from(t.subsec_nanos()).ok()?;
                jiff::Timestamp::new(t.secs(), nanos).ok()
            }),
            state_reason: i
                .state_reason()
                .and_then(|r| r.message())
                .map(str::to_owned),
            tags: i
                .tags()
                .iter()
                .filter_map(|t| {
                    Some((
                        t.key()?.to_owned(),
                        t.value().unwrap_or_default().to_owned(),
                    ))
                })
                .collect(),
        }
    }
}

/// EC2 status checks of one instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceHealth {
    pub id: String,
    pub state: String,
    /// `ok`, `impaired`, `initializing`, `insufficient-data`, `not-applicable`.
    pub instance_status: Option<String>,
    pub system_status: Option<String>,
}

impl InstanceHealth {
    /// Both checks pass.
    pub fn is_healthy(&self) -> bool {
        self.state == "running"
            && self.instance_status.as_deref() == Some("ok")
            && self.system_status.as_deref() == Some("ok")
    }
}

fn tag_specification(resource: ResourceType, tags: &BTreeMap<String, String>) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(resource)
        .set_tags(Some(
            tags.iter()
                .map(|(k, v)| Tag::builder().key(k).value(v).build())
                .collect(),
        ))
        .build()
}

/// The EC2 adapter of one region.
#[derive(Clone, Debug)]
pub struct Ec2 {
    client: Client,
    caller: Caller,
}

impl Ec2 {
    pub(crate) fn new(client: Client, caller: Caller) -> Self {
        Self { client, caller }
    }

    /// Launches one one-time spot instance (terminated on interruption).
    pub async fn run_spot_instance(
        &self,
        launch: &LaunchRequest,
    ) -> Result<InstanceInfo, AwsError> {
        let spot = SpotMarketOptions::builder()
            .spot_instance_type(SpotInstanceType::OneTime)
            .instance_interruption_behavior(InstanceInterruptionBehavior::Terminate)
            .set_max_price(launch.max_price.clone())
            .build();
        let mut request = self
            .client
            .run_instances()
            .image_id(&launch.image_id)
            .instance_type(InstanceType::from(launch.instance_type.as_str()))
            .min_count(1)
            .max_count(1)
            .instance_market_options(
                InstanceMarketOptionsRequest::builder()
                    .market_type(MarketType::Spot)
                    .spot_options(spot)
                    .build(),
            )
            .set_subnet_id(launch.subnet_id.clone())
            .set_key_name(launch.key_name.clone())
            .set_client_token(launch.client_token.clone())
            .set_user_data(
                launch
                    .user_data
                    .as_ref()
                    .map(aws_smithy_types::base64::encode),
            )
            .set_iam_instance_profile(launch.iam_instance_profile.as_ref().map(|name| {
                IamInstanceProfileSpecification::builder()
                    .name(name)
                    .build()
            }));
        if !launch.security_group_ids.is_empty() {
            request = request.set_security_group_ids(Some(launch.security_group_ids.clone()));
        }
        if !launch.tags.is_empty() {
            request = request
                .tag_specifications(tag_specification(ResourceType::Instance, &launch.tags))
                .tag_specifications(tag_specification(ResourceType::Volume, &launch.tags));
        }
        let output = self
            .caller
            .call("RunInstances", Some(&launch.image_id), request.send())
            .await?;
        let instance = super::required(
            output.instances().first(),
            Service::Ec2,
            "RunInstances",
            Some(&launch.image_id),
            "Instances",
        )?;
        Ok(InstanceInfo::from_sdk(instance))
    }

    /// Every instance carrying `tag_key = tag_value` (all pages), terminated ones included.
    pub async fn describe_instances_by_tag(
        &self,
        tag_key: &str,
        tag_value: &str,
    ) -> Result<Vec<InstanceInfo>, AwsError> {
        let mut instances = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let request = self
                .client
                .describe_instances()
                .filters(
                    Filter::builder()
                        .name(format!("tag:{tag_key}"))
                        .values(tag_value)
                        .build(),
                )
                .set_next_token(token.take())
                .send();
            let page = self
                .caller
                .call("DescribeInstances", Some(tag_value), request)
                .await?;
            instances.extend(
                page.reservations()
                    .iter()
                    .flat_map(aws_sdk_ec2::types::Reservation::instances)
                    .map(InstanceInfo::from_sdk),
            );
            match page.next_token() {
                Some(next) if !next.is_empty() => token = Some(next.to_owned()),
                _ => return Ok(instances),
            }
        }
    }

    /// Starts terminating instances; returns (id, new state) per instance.
    pub async fn terminate_instances(
        &self,
        ids: &[String],
    ) -> Result<Vec<(String, String)>, AwsError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let request = self
            .client
            .terminate_instances()
            .set_instance_ids(Some(ids.to_vec()))
            .send();
        let output = self
            .caller
            .call(
                "TerminateInstances",
                ids.first().map(String::as_str),
                request,
            )
            .await?;
        Ok(output
            .terminating_instances()
            .iter()
            .filter_map(|c| {
                Some((
                    c.instance_id()?.to_owned(),
                    c.current_state()
                        .and_then(|s| s.name())
                        .map(|n| n.as_str().to_owned())
                        .unwrap_or_default(),
                ))
            })
            .collect())
    }

    /// Status checks of `ids` (stopped and pending instances included).
    pub async fn instance_status(&self, ids: &[String]) -> Result<Vec<InstanceHealth>, AwsError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut health = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let request = self
                .client
                .describe_instance_status()
                .set_instance_ids(Some(ids.to_vec()))
                .include_all_instances(true)
                .set_next_token(token.take())
                .send();
            let page = self
                .caller
                .call(
                    "DescribeInstanceStatus",
                    ids.first().map(String::as_str),
                    request,
                )
                .await?;
            health.extend(page.instance_statuses().iter().filter_map(|s| {
                Some(InstanceHealth {
                    id: s.instance_id()?.to_owned(),
                    state: s
                        .instance_state()
                        .and_then(|st| st.name())
                        .map(|n| n.as_str().to_owned())
                        .unwrap_or_default(),
                    instance_status: s
                        .instance_status()
                        .and_then(|x| x.status())
                        .map(|x| x.as_str().to_owned()),
                    system_status: s
                        .system_status()
                        .and_then(|x| x.status())
                        .map(|x| x.as_str().to_owned()),
                })
            }));
            match page.next_token() {
                Some(next) if !next.is_empty() => token = Some(next.to_owned()),
                _ => return Ok(health),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_needs_running_and_both_checks_ok() {
        let health = |state: &str, instance: &str, system: &str| InstanceHealth {
            id: "i-1".into(),
            state: state.into(),
            instance_status: Some(instance.into()),
            system_status: Some(system.into()),
        };
        assert!(health("running", "ok", "ok").is_healthy());
        assert!(!health("running", "initializing", "ok").is_healthy());
        assert!(!health("running", "ok", "impaired").is_healthy());
        assert!(!health("pending", "ok", "ok").is_healthy());
    }
}
