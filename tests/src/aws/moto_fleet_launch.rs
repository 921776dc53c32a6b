//! moto 5.2.5 launches `CreateFleet` instances without the launch template's security groups
//! (they get the VPC's default group) and without its instance profile (none); EC2 applies
//! both. A controller that compares an instance's groups and profile with its spec would take
//! every moto instance for a hand-edited one. After a successful `CreateFleet` the proxy applies
//! them itself, with moto's own `ModifyInstanceAttribute` (`GroupId.N`) and
//! `AssociateIamInstanceProfile` for each launched instance (both work in moto, checked with the
//! AWS CLI), so `DescribeInstances` shows what EC2 would. These calls are the proxy's: neither
//! counted nor subject to faults. An instance profile moto's IAM does not know is not
//! associated (EC2 would have refused the launch).

use super::classify::CallId;
use super::moto_oac::{elements, inner};

/// The prefix of the first launch template config's template in a `CreateFleet` request.
const TEMPLATE_SPECIFICATION: &str = "LaunchTemplateConfigs.1.LaunchTemplateSpecification.";

/// The launch template version a `CreateFleet` request launches from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FleetLaunch {
    template_id: String,
    version: String,
}

/// What a launch template version puts on its instances that moto leaves out.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TemplateSettings {
    pub security_group_ids: Vec<String>,
    /// `("Name", name)` or `("Arn", arn)`, as the template names it.
    pub instance_profile: Option<(&'static str, String)>,
}

impl FleetLaunch {
    /// The template of a `CreateFleet` request's first launch template config (Stagehand sends
    /// one), when `id` is `ec2 CreateFleet`.
    pub fn parse(id: &CallId, body: &[u8]) -> Option<Self> {
        if id.service != "ec2" || id.operation != "CreateFleet" {
            return None;
        }
        let (mut template_id, mut version) = (None, None);
        for (key, value) in form_urlencoded::parse(body) {
            match key.strip_prefix(TEMPLATE_SPECIFICATION) {
                Some("LaunchTemplateId") => template_id = Some(value.into_owned()),
                Some("Version") => version = Some(value.into_owned()),
                _ => {}
            }
        }
        Some(Self {
            template_id: template_id?,
            version: version.unwrap_or_else(|| "$Default".to_owned()),
        })
    }

    /// The `DescribeLaunchTemplateVersions` request body that reads the version in moto.
    pub fn template_request(&self) -> Vec<u8> {
        form_urlencoded::Serializer::new(String::new())
            .append_pair("Action", "DescribeLaunchTemplateVersions")
            .append_pair("Version", "2016-11-15")
            .append_pair("LaunchTemplateId", &self.template_id)
            .append_pair("LaunchTemplateVersion.1", &self.version)
            .finish()
            .into_bytes()
    }
}

impl TemplateSettings {
    /// From moto's `DescribeLaunchTemplateVersions` answer for one version.
    pub fn parse(answer: &[u8]) -> Self {
        let Some(data) = std::str::from_utf8(answer)
            .ok()
            .and_then(|text| inner(text, "launchTemplateData"))
        else {
            return Self::default();
        };
        let security_group_ids = inner(data, "securityGroupIdSet")
            .map(|set| {
                elements(set, "item")
                    .into_iter()
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        let instance_profile = inner(data, "iamInstanceProfile").and_then(|profile| {
            inner(profile, "arn")
                .map(|arn| ("Arn", arn.to_owned()))
                .or_else(|| inner(profile, "name").map(|name| ("Name", name.to_owned())))
        });
        Self {
            security_group_ids,
            instance_profile,
        }
    }

    /// The request bodies that put these settings on `instance_id` in moto.
    pub fn requests(&self, instance_id: &str) -> Vec<Vec<u8>> {
        let mut requests = Vec::new();
        if !self.security_group_ids.is_empty() {
            let mut body = form_urlencoded::Serializer::new(String::new());
            body.append_pair("Action", "ModifyInstanceAttribute")
                .append_pair("Version", "2016-11-15")
                .append_pair("InstanceId", instance_id);
            for (n, group) in self.security_group_ids.iter().enumerate() {
                body.append_pair(&format!("GroupId.{}", n + 1), group);
            }
            requests.push(body.finish().into_bytes());
        }
        if let Some((kind, value)) = &self.instance_profile {
            let body = form_urlencoded::Serializer::new(String::new())
                .append_pair("Action", "AssociateIamInstanceProfile")
                .append_pair("Version", "2016-11-15")
                .append_pair("InstanceId", instance_id)
                .append_pair(&format!("IamInstanceProfile.{kind}"), value)
                .finish();
            requests.push(body.into_bytes());
        }
        requests
    }
}

/// The ids of the instances a `CreateFleet` answer lists.
pub fn launched_instances(answer: &[u8]) -> Vec<String> {
    let Ok(text) = std::str::from_utf8(answer) else {
        return Vec::new();
    };
    elements(text, "instanceIds")
        .into_iter()
        .flat_map(|ids| elements(ids, "item"))
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::classify::Protocol;

    fn id(operation: &str) -> CallId {
        CallId {
            service: "ec2".into(),
            operation: operation.into(),
            protocol: Protocol::Ec2Query,
        }
    }

    #[test]
    fn a_fleet_launch_gets_its_templates_groups_and_profile() {
        let request = b"Action=CreateFleet&LaunchTemplateConfigs.1.LaunchTemplateSpecification.LaunchTemplateId=lt-1&LaunchTemplateConfigs.1.LaunchTemplateSpecification.Version=3&Type=instant";
        let launch = FleetLaunch::parse(&id("CreateFleet"), request).unwrap();
        assert_eq!(
            String::from_utf8(launch.template_request()).unwrap(),
            "Action=DescribeLaunchTemplateVersions&Version=2016-11-15&LaunchTemplateId=lt-1&LaunchTemplateVersion.1=3"
        );
        assert_eq!(FleetLaunch::parse(&id("RunInstances"), request), None);

        // moto's answers, as measured.
        let version = b"<DescribeLaunchTemplateVersionsResponse><launchTemplateVersionSet><item><launchTemplateId>lt-1</launchTemplateId><versionNumber>3</versionNumber><launchTemplateData><iamInstanceProfile><name>p1</name></iamInstanceProfile><imageId>ami-1</imageId><securityGroupIdSet><item>sg-1</item><item>sg-2</item></securityGroupIdSet></launchTemplateData></item></launchTemplateVersionSet></DescribeLaunchTemplateVersionsResponse>";
        let settings = TemplateSettings::parse(version);
        assert_eq!(settings.security_group_ids, ["sg-1", "sg-2"]);
        assert_eq!(settings.instance_profile, Some(("Name", "p1".to_owned())));
        let fleet = b"<CreateFleetResponse><fleetId>fleet-1</fleetId><fleetInstanceSet><item><launchTemplateAndOverrides><launchTemplateSpecification><launchTemplateId>lt-1</launchTemplateId><version>3</version></launchTemplateSpecification></launchTemplateAndOverrides><lifecycle>spot</lifecycle><instanceIds><item>i-1</item></instanceIds></item><item><instanceIds><item>i-2</item><item>i-3</item></instanceIds></item></fleetInstanceSet></CreateFleetResponse>";
        assert_eq!(launched_instances(fleet), ["i-1", "i-2", "i-3"]);
        let requests: Vec<String> = settings
            .requests("i-1")
            .into_iter()
            .map(|r| String::from_utf8(r).unwrap())
            .collect();
        assert_eq!(
            requests,
            [
                "Action=ModifyInstanceAttribute&Version=2016-11-15&InstanceId=i-1&GroupId.1=sg-1&GroupId.2=sg-2",
                "Action=AssociateIamInstanceProfile&Version=2016-11-15&InstanceId=i-1&IamInstanceProfile.Name=p1",
            ]
        );
        // A template without either: nothing to apply.
        assert!(TemplateSettings::default().requests("i-1").is_empty());
    }
}
