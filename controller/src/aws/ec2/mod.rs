//! EC2: a SpotFleet's instances and what launches them — launch templates (one version per
//! spec hash), `CreateFleet` of type `instant` over every instance type × subnet, and the
//! region-wide listing by ownership tag key that serves every fleet at once.
//!
//! EC2's request limits are per account and region and shared with every other tool, so reads
//! are listings (one `DescribeInstances` page covers up to 1000 instances) and launches are
//! batches (one `CreateFleet` for a whole shortfall).

use std::collections::BTreeMap;

use aws_sdk_ec2::Client;
use aws_sdk_ec2::types::{
    CreateFleetError, CreateFleetInstance, DefaultTargetCapacityType,
    DeleteLaunchTemplateVersionsResponseErrorItem, Filter, FleetLaunchTemplateConfigRequest,
    FleetLaunchTemplateOverridesRequest, FleetLaunchTemplateSpecificationRequest, FleetType,
    IamInstanceProfileSpecification, Instance, InstanceInterruptionBehavior,
    InstanceMarketOptionsRequest, InstanceType, LaunchTemplate,
    LaunchTemplateIamInstanceProfileSpecificationRequest,
    LaunchTemplateInstanceMarketOptionsRequest, LaunchTemplateSpotMarketOptionsRequest,
    LaunchTemplateTagSpecificationRequest, LaunchTemplateVersion, MarketType,
    RequestLaunchTemplateData, ResourceType, SpotAllocationStrategy, SpotInstanceType,
    SpotMarketOptions, SpotOptionsRequest, Tag, TagSpecification,
    TargetCapacitySpecificationRequest,
};

pub use self::types::*;
use super::call::Caller;
use super::{AwsError, Service, smithy_time as timestamp};

mod lookup;
mod types;

/// `MaxResults` of `DescribeInstances`: EC2's maximum, so a region of a few hundred fleet
/// instances is one page.
const INSTANCES_PAGE_SIZE: i32 = 1000;

/// `DeleteLaunchTemplateVersions` takes at most this many versions per call.
const DELETE_VERSIONS_BATCH: usize = 200;

/// EC2's answer to a second `CreateLaunchTemplate` with a name in use.
const TEMPLATE_NAME_IN_USE: &str = "InvalidLaunchTemplateName.AlreadyExistsException";

impl InstanceInfo {
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
            launch_time: i.launch_time().and_then(timestamp),
            state_reason: i
                .state_reason()
                .and_then(|r| r.message())
                .map(str::to_owned),
            tags: tag_map(i.tags()),
            subnet_id: i.subnet_id().map(str::to_owned),
            availability_zone: i
                .placement()
                .and_then(|p| p.availability_zone())
                .map(str::to_owned),
            security_group_ids: {
                let mut ids: Vec<String> = i
                    .security_groups()
                    .iter()
                    .filter_map(|g| g.group_id().map(str::to_owned))
                    .collect();
                ids.sort();
                ids.dedup();
                ids
            },
            iam_instance_profile_arn: i
                .iam_instance_profile()
                .and_then(|p| p.arn())
                .map(str::to_owned),
            spot_instance_request_id: i.spot_instance_request_id().map(str::to_owned),
            state_reason_code: i.state_reason().and_then(|r| r.code()).map(str::to_owned),
        }
    }
}

fn tag_map(tags: &[Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .filter_map(|t| {
            Some((
                t.key()?.to_owned(),
                t.value().unwrap_or_default().to_owned(),
            ))
        })
        .collect()
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

    /// Every instance carrying `tag_key = tag_value` (all pages), terminated ones included:
    /// one fleet's own instances, without listing every fleet's.
    pub async fn describe_instances_by_tag(
        &self,
        tag_key: &str,
        tag_value: &str,
    ) -> Result<Vec<InstanceInfo>, AwsError> {
        let filters = vec![
            Filter::builder()
                .name(format!("tag:{tag_key}"))
                .values(tag_value)
                .build(),
        ];
        self.describe_instances_where(filters, tag_value).await
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

    /// Writes `tags` on `ids` (`CreateTags`: added, or overwritten where the key exists).
    pub async fn create_tags(
        &self,
        ids: &[String],
        tags: &BTreeMap<String, String>,
    ) -> Result<(), AwsError> {
        if ids.is_empty() || tags.is_empty() {
            return Ok(());
        }
        let request = self
            .client
            .create_tags()
            .set_resources(Some(ids.to_vec()))
            .set_tags(Some(
                tags.iter()
                    .map(|(k, v)| Tag::builder().key(k).value(v).build())
                    .collect(),
            ))
            .send();
        self.caller
            .call("CreateTags", ids.first().map(String::as_str), request)
            .await?;
        Ok(())
    }

    /// Status checks of `ids` (stopped and pending instances included).
    pub async fn instance_status(&self, ids: &[String]) -> Result<Vec<InstanceHealth>, AwsError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        self.describe_status(Some(ids), None).await
    }

    /// Every instance of the region whose instance or system status check is `impaired`: two
    /// filtered `DescribeInstanceStatus` listings (filters on two names would both have to
    /// match), usually empty whatever the number of instances. Only the entries that say
    /// `impaired` are kept, should a filter not be applied.
    pub async fn impaired_instances(&self) -> Result<Vec<InstanceHealth>, AwsError> {
        let mut impaired = Vec::new();
        for check in ["instance-status.status", "system-status.status"] {
            for health in self.describe_status(None, Some(check)).await? {
                let says_impaired = [&health.instance_status, &health.system_status]
                    .iter()
                    .any(|s| s.as_deref() == Some("impaired"));
                if says_impaired && !impaired.iter().any(|h: &InstanceHealth| h.id == health.id) {
                    impaired.push(health);
                }
            }
        }
        Ok(impaired)
    }

    /// Paged `DescribeInstanceStatus` of `ids` (every instance when `None`), or of the running
    /// instances whose `impaired_filter` check is impaired.
    async fn describe_status(
        &self,
        ids: Option<&[String]>,
        impaired_filter: Option<&str>,
    ) -> Result<Vec<InstanceHealth>, AwsError> {
        let mut health = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let request = self
                .client
                .describe_instance_status()
                .set_instance_ids(ids.map(<[String]>::to_vec))
                .include_all_instances(ids.is_some())
                .set_filters(
                    impaired_filter
                        .map(|name| vec![Filter::builder().name(name).values("impaired").build()]),
                )
                .set_next_token(token.take())
                .send();
            let resource = ids.and_then(|ids| ids.first()).map(String::as_str);
            let page = self
                .caller
                .call("DescribeInstanceStatus", resource, request)
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

fn launch_template_tags(
    resource: ResourceType,
    tags: &BTreeMap<String, String>,
) -> LaunchTemplateTagSpecificationRequest {
    LaunchTemplateTagSpecificationRequest::builder()
        .resource_type(resource)
        .set_tags(Some(
            tags.iter()
                .map(|(k, v)| Tag::builder().key(k).value(v).build())
                .collect(),
        ))
        .build()
}

/// The template data of one spec: what every instance launched from the version runs.
fn template_data(spec: &LaunchTemplateSpec) -> RequestLaunchTemplateData {
    let mut data = RequestLaunchTemplateData::builder()
        .image_id(&spec.image_id)
        .set_instance_type(spec.instance_type.as_deref().map(InstanceType::from))
        .set_key_name(spec.key_name.clone())
        .set_user_data(
            spec.user_data
                .as_ref()
                .map(aws_smithy_types::base64::encode),
        )
        .set_iam_instance_profile(spec.iam_instance_profile.as_ref().map(|profile| {
            let builder = LaunchTemplateIamInstanceProfileSpecificationRequest::builder();
            // An ARN names the profile exactly; anything else is a name.
            if profile.starts_with("arn:") {
                builder.arn(profile).build()
            } else {
                builder.name(profile).build()
            }
        }));
    if !spec.security_group_ids.is_empty() {
        data = data.set_security_group_ids(Some(spec.security_group_ids.clone()));
    }
    if !spec.tags.is_empty() {
        data = data
            .tag_specifications(launch_template_tags(ResourceType::Instance, &spec.tags))
            .tag_specifications(launch_template_tags(ResourceType::Volume, &spec.tags));
    }
    if let Some(max_price) = &spec.spot_max_price {
        data = data.instance_market_options(
            LaunchTemplateInstanceMarketOptionsRequest::builder()
                .market_type(MarketType::Spot)
                .spot_options(
                    LaunchTemplateSpotMarketOptionsRequest::builder()
                        .spot_instance_type(SpotInstanceType::OneTime)
                        .instance_interruption_behavior(InstanceInterruptionBehavior::Terminate)
                        .max_price(max_price)
                        .build(),
                )
                .build(),
        );
    }
    data.build()
}

/// The versions `DeleteLaunchTemplateVersions` did not delete, each with EC2's error code.
fn refused_versions(items: &[DeleteLaunchTemplateVersionsResponseErrorItem]) -> Vec<(i64, String)> {
    items
        .iter()
        .filter_map(|item| {
            let code = item
                .response_error()
                .and_then(|e| e.code())
                .map_or_else(|| "Unknown".to_owned(), |c| c.as_str().to_owned());
            Some((item.version_number()?, code))
        })
        .collect()
}

impl LaunchTemplateInfo {
    fn from_sdk(t: &LaunchTemplate) -> Self {
        Self {
            id: t.launch_template_id().unwrap_or_default().to_owned(),
            name: t.launch_template_name().unwrap_or_default().to_owned(),
            default_version: t.default_version_number(),
            latest_version: t.latest_version_number(),
            tags: tag_map(t.tags()),
        }
    }
}

impl LaunchTemplateVersionInfo {
    fn from_sdk(v: &LaunchTemplateVersion) -> Self {
        let data = v.launch_template_data();
        Self {
            template_id: v.launch_template_id().unwrap_or_default().to_owned(),
            number: v.version_number().unwrap_or_default(),
            description: v.version_description().map(str::to_owned),
            is_default: v.default_version().unwrap_or(false),
            image_id: data.and_then(|d| d.image_id()).map(str::to_owned),
            instance_tags: data
                .into_iter()
                .flat_map(aws_sdk_ec2::types::ResponseLaunchTemplateData::tag_specifications)
                .filter(|s| s.resource_type() == Some(&ResourceType::Instance))
                .flat_map(|s| tag_map(s.tags()))
                .collect(),
            created_at: v.create_time().and_then(timestamp),
        }
    }
}

impl FleetInstance {
    /// One entry of `CreateFleetOutput.Instances` names the pool and every instance launched
    /// into it.
    fn from_sdk(launched: &CreateFleetInstance) -> Vec<Self> {
        let overrides = launched
            .launch_template_and_overrides()
            .and_then(|l| l.overrides());
        let instance_type = launched
            .instance_type()
            .map(|t| t.as_str().to_owned())
            .or_else(|| {
                overrides
                    .and_then(|o| o.instance_type())
                    .map(|t| t.as_str().to_owned())
            });
        launched
            .instance_ids()
            .iter()
            .map(|id| Self {
                id: id.clone(),
                instance_type: instance_type.clone(),
                subnet_id: overrides.and_then(|o| o.subnet_id()).map(str::to_owned),
                availability_zone: overrides
                    .and_then(|o| o.availability_zone())
                    .map(str::to_owned),
            })
            .collect()
    }
}

impl FleetLaunchError {
    fn from_sdk(error: &CreateFleetError) -> Self {
        let overrides = error
            .launch_template_and_overrides()
            .and_then(|l| l.overrides());
        Self {
            code: error.error_code().unwrap_or("Unknown").to_owned(),
            message: error.error_message().unwrap_or_default().to_owned(),
            instance_type: overrides
                .and_then(|o| o.instance_type())
                .map(|t| t.as_str().to_owned()),
            subnet_id: overrides.and_then(|o| o.subnet_id()).map(str::to_owned),
            availability_zone: overrides
                .and_then(|o| o.availability_zone())
                .map(str::to_owned),
        }
    }
}

/// Launch templates and fleets.
impl Ec2 {
    /// Every instance carrying tag `key`, whatever its value (all pages): what one listing for
    /// every fleet of a region reads. All states as EC2 reports them, terminated ones included
    /// (EC2 keeps them for about an hour), so a fleet sees an instance someone else terminated.
    pub async fn describe_instances_with_tag_key(
        &self,
        key: &str,
    ) -> Result<Vec<InstanceInfo>, AwsError> {
        let filters = vec![Filter::builder().name("tag-key").values(key).build()];
        self.describe_instances_where(filters, key).await
    }

    /// The pending and running instances whose `Name` tag is `name` (all pages), whatever else
    /// they are tagged with: the instances an adopting fleet may take over, before the caller
    /// leaves out those another object owns. EC2 cannot filter on a tag being absent, so the
    /// exact name is what keeps this listing small; stopped instances are left out, as a
    /// stopped machine is someone's, not a fleet's capacity.
    pub async fn describe_live_instances_named(
        &self,
        name: &str,
    ) -> Result<Vec<InstanceInfo>, AwsError> {
        let filters = vec![
            Filter::builder().name("tag:Name").values(name).build(),
            Filter::builder()
                .name("instance-state-name")
                .values("pending")
                .values("running")
                .build(),
        ];
        self.describe_instances_where(filters, name).await
    }

    /// Every instance matching `filters`, all pages; `resource` names the listing in logs and
    /// errors.
    async fn describe_instances_where(
        &self,
        filters: Vec<Filter>,
        resource: &str,
    ) -> Result<Vec<InstanceInfo>, AwsError> {
        let mut instances = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let request = self
                .client
                .describe_instances()
                .set_filters(Some(filters.clone()))
                .max_results(INSTANCES_PAGE_SIZE)
                .set_next_token(token.take())
                .send();
            let page = self
                .caller
                .call("DescribeInstances", Some(resource), request)
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

    /// The availability zone of each subnet (`DescribeSubnets`), for naming the offering of a
    /// launch error. Subnets that do not exist are left out.
    pub async fn subnet_zones(
        &self,
        subnet_ids: &[String],
    ) -> Result<BTreeMap<String, String>, AwsError> {
        if subnet_ids.is_empty() {
            return Ok(BTreeMap::new());
        }
        let request = self
            .client
            .describe_subnets()
            .set_subnet_ids(Some(subnet_ids.to_vec()))
            .send();
        let output = self
            .caller
            .call(
                "DescribeSubnets",
                subnet_ids.first().map(String::as_str),
                request,
            )
            .await?;
        Ok(output
            .subnets()
            .iter()
            .filter_map(|s| Some((s.subnet_id()?.to_owned(), s.availability_zone()?.to_owned())))
            .collect())
    }

    /// The launch template named `name`, if there is one.
    pub async fn describe_launch_template(
        &self,
        name: &str,
    ) -> Result<Option<LaunchTemplateInfo>, AwsError> {
        let request = self
            .client
            .describe_launch_templates()
            .launch_template_names(name)
            .send();
        let output = self
            .caller
            .call_optional("DescribeLaunchTemplates", Some(name), request)
            .await?;
        Ok(output.and_then(|o| {
            o.launch_templates()
                .iter()
                .find(|t| t.launch_template_name() == Some(name))
                .map(LaunchTemplateInfo::from_sdk)
        }))
    }

    /// Every launch template tagged `key = value` (all pages): how a deletion finds the
    /// templates of a fleet whose status never recorded them.
    pub async fn launch_templates_with_tag(
        &self,
        key: &str,
        value: &str,
    ) -> Result<Vec<LaunchTemplateInfo>, AwsError> {
        let mut templates = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let request = self
                .client
                .describe_launch_templates()
                .filters(
                    Filter::builder()
                        .name(format!("tag:{key}"))
                        .values(value)
                        .build(),
                )
                .set_next_token(token.take())
                .send();
            let page = self
                .caller
                .call("DescribeLaunchTemplates", Some(value), request)
                .await?;
            templates.extend(
                page.launch_templates()
                    .iter()
                    .map(LaunchTemplateInfo::from_sdk),
            );
            match page.next_token() {
                Some(next) if !next.is_empty() => token = Some(next.to_owned()),
                _ => return Ok(templates),
            }
        }
    }

    /// Creates the launch template `name`, tagged with `tags` (ownership) and with `first` as
    /// version 1. A template of that name that already exists is returned as it is: the caller
    /// checks its tags before using it (a name is not proof of ownership).
    pub async fn create_launch_template(
        &self,
        name: &str,
        tags: &BTreeMap<String, String>,
        first: &LaunchTemplateSpec,
        client_token: Option<&str>,
    ) -> Result<LaunchTemplateInfo, AwsError> {
        let mut request = self
            .client
            .create_launch_template()
            .launch_template_name(name)
            .launch_template_data(template_data(first))
            .set_version_description(first.description.clone())
            .set_client_token(client_token.map(str::to_owned));
        if !tags.is_empty() {
            request =
                request.tag_specifications(tag_specification(ResourceType::LaunchTemplate, tags));
        }
        match self
            .caller
            .call("CreateLaunchTemplate", Some(name), request.send())
            .await
        {
            Ok(output) => {
                let template = super::required(
                    output.launch_template(),
                    Service::Ec2,
                    "CreateLaunchTemplate",
                    Some(name),
                    "LaunchTemplate",
                )?;
                Ok(LaunchTemplateInfo::from_sdk(template))
            }
            Err(err) if err.code.as_deref() == Some(TEMPLATE_NAME_IN_USE) => {
                let existing = self.describe_launch_template(name).await?;
                // Deleted between the two calls: report the original refusal.
                existing.ok_or(err)
            }
            Err(err) => Err(err),
        }
    }

    /// Adds a version to template `template_id` (not made the default: fleets name versions).
    pub async fn create_launch_template_version(
        &self,
        template_id: &str,
        spec: &LaunchTemplateSpec,
        client_token: Option<&str>,
    ) -> Result<LaunchTemplateVersionInfo, AwsError> {
        let request = self
            .client
            .create_launch_template_version()
            .launch_template_id(template_id)
            .launch_template_data(template_data(spec))
            .set_version_description(spec.description.clone())
            .set_client_token(client_token.map(str::to_owned))
            .send();
        let output = self
            .caller
            .call("CreateLaunchTemplateVersion", Some(template_id), request)
            .await?;
        let version = super::required(
            output.launch_template_version(),
            Service::Ec2,
            "CreateLaunchTemplateVersion",
            Some(template_id),
            "LaunchTemplateVersion",
        )?;
        Ok(LaunchTemplateVersionInfo::from_sdk(version))
    }

    /// Every version of template `template_id` (all pages), oldest first; empty when the
    /// template does not exist.
    pub async fn launch_template_versions(
        &self,
        template_id: &str,
    ) -> Result<Vec<LaunchTemplateVersionInfo>, AwsError> {
        let mut versions = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let request = self
                .client
                .describe_launch_template_versions()
                .launch_template_id(template_id)
                .set_next_token(token.take())
                .send();
            let Some(page) = self
                .caller
                .call_optional("DescribeLaunchTemplateVersions", Some(template_id), request)
                .await?
            else {
                return Ok(Vec::new());
            };
            versions.extend(
                page.launch_template_versions()
                    .iter()
                    .map(LaunchTemplateVersionInfo::from_sdk),
            );
            match page.next_token() {
                Some(next) if !next.is_empty() => token = Some(next.to_owned()),
                _ => {
                    versions.sort_by_key(|v| v.number);
                    return Ok(versions);
                }
            }
        }
    }

    /// Deletes `numbers` of template `template_id`; returns the versions EC2 refused, each
    /// with its error code (the default version cannot be deleted, and one already gone says
    /// so): a refusal of one version is an answer, not a failed call.
    pub async fn delete_launch_template_versions(
        &self,
        template_id: &str,
        numbers: &[i64],
    ) -> Result<Vec<(i64, String)>, AwsError> {
        let mut refused = Vec::new();
        for batch in numbers.chunks(DELETE_VERSIONS_BATCH) {
            let request = self
                .client
                .delete_launch_template_versions()
                .launch_template_id(template_id)
                .set_versions(Some(batch.iter().map(i64::to_string).collect()))
                .send();
            let output = self
                .caller
                .call("DeleteLaunchTemplateVersions", Some(template_id), request)
                .await?;
            refused.extend(refused_versions(
                output.unsuccessfully_deleted_launch_template_versions(),
            ));
        }
        Ok(refused)
    }

    /// Deletes template `template_id` with all its versions; `false` when it was already gone.
    pub async fn delete_launch_template(&self, template_id: &str) -> Result<bool, AwsError> {
        let request = self
            .client
            .delete_launch_template()
            .launch_template_id(template_id)
            .send();
        Ok(self
            .caller
            .call_optional("DeleteLaunchTemplate", Some(template_id), request)
            .await?
            .is_some())
    }

    /// One `CreateFleet` of type `instant`: spot instances from one template version over
    /// every pool of `fleet`, `price-capacity-optimized`, tagged at launch (the fleet request
    /// and every instance). Launching fewer than asked, or none, is a result: the pools EC2
    /// could not use come back in [`FleetLaunch::errors`] with AWS's codes.
    pub async fn create_fleet_instant(
        &self,
        fleet: &FleetRequest,
    ) -> Result<FleetLaunch, AwsError> {
        if fleet.target_capacity <= 0 {
            // Nothing to launch: EC2 would refuse the request as invalid.
            return Ok(FleetLaunch::default());
        }
        let template = &fleet.launch_template_id;
        let overrides = fleet
            .overrides
            .iter()
            .map(|o| {
                FleetLaunchTemplateOverridesRequest::builder()
                    .instance_type(InstanceType::from(o.instance_type.as_str()))
                    .subnet_id(&o.subnet_id)
                    .set_max_price(fleet.max_price.clone())
                    .build()
            })
            .collect();
        let mut request = self
            .client
            .create_fleet()
            .r#type(FleetType::Instant)
            .launch_template_configs(
                FleetLaunchTemplateConfigRequest::builder()
                    .launch_template_specification(
                        FleetLaunchTemplateSpecificationRequest::builder()
                            .launch_template_id(template)
                            .version(fleet.launch_template_version.to_string())
                            .build(),
                    )
                    .set_overrides(Some(overrides))
                    .build(),
            )
            .target_capacity_specification(
                TargetCapacitySpecificationRequest::builder()
                    .total_target_capacity(fleet.target_capacity)
                    .spot_target_capacity(fleet.target_capacity)
                    .default_target_capacity_type(DefaultTargetCapacityType::Spot)
                    .build(),
            )
            .spot_options(
                SpotOptionsRequest::builder()
                    .allocation_strategy(SpotAllocationStrategy::PriceCapacityOptimized)
                    .build(),
            )
            .set_client_token(fleet.client_token.clone());
        if !fleet.tags.is_empty() {
            request = request
                .tag_specifications(tag_specification(ResourceType::Fleet, &fleet.tags))
                .tag_specifications(tag_specification(ResourceType::Instance, &fleet.tags));
        }
        let output = self
            .caller
            .call("CreateFleet", Some(template), request.send())
            .await?;
        let errors = output
            .errors()
            .iter()
            .map(FleetLaunchError::from_sdk)
            .collect();
        Ok(FleetLaunch {
            fleet_id: output.fleet_id().map(str::to_owned),
            instances: output
                .instances()
                .iter()
                .flat_map(FleetInstance::from_sdk)
                .map(|mut instance| {
                    if instance.availability_zone.is_none() {
                        instance.availability_zone = fleet
                            .overrides
                            .iter()
                            .find(|o| instance.subnet_id.as_deref() == Some(o.subnet_id.as_str()))
                            .and_then(|o| o.availability_zone.clone());
                    }
                    instance
                })
                .collect(),
            errors: with_override_zones(errors, &fleet.overrides),
        })
    }
}

#[cfg(test)]
mod tests;
