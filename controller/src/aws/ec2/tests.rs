//! What the EC2 adapter reads from SDK values, without AWS.

use aws_sdk_ec2::types::{FleetLaunchTemplateOverrides, LaunchTemplateAndOverridesResponse};

use super::*;

fn pool(instance_type: &str, subnet: &str) -> LaunchTemplateAndOverridesResponse {
    LaunchTemplateAndOverridesResponse::builder()
        .overrides(
            FleetLaunchTemplateOverrides::builder()
                .instance_type(InstanceType::from(instance_type))
                .subnet_id(subnet)
                .build(),
        )
        .build()
}

#[test]
fn fleet_errors_are_plain_data_naming_their_pool() {
    let error = CreateFleetError::builder()
        .error_code("InsufficientInstanceCapacity")
        .error_message("There is no Spot capacity available")
        .launch_template_and_overrides(pool("c5.large", "subnet-a"))
        .build();
    assert_eq!(
        FleetLaunchError::from_sdk(&error),
        FleetLaunchError {
            code: "InsufficientInstanceCapacity".into(),
            message: "There is no Spot capacity available".into(),
            instance_type: Some("c5.large".into()),
            subnet_id: Some("subnet-a".into()),
            availability_zone: None,
        }
    );
    let bare = CreateFleetError::builder().build();
    assert_eq!(FleetLaunchError::from_sdk(&bare).code, "Unknown");
}

#[test]
fn refused_version_deletions_carry_ec2s_code() {
    use aws_sdk_ec2::types::{LaunchTemplateErrorCode, ResponseError};
    let refused = |number: i64, code: LaunchTemplateErrorCode| {
        DeleteLaunchTemplateVersionsResponseErrorItem::builder()
            .version_number(number)
            .response_error(ResponseError::builder().code(code).build())
            .build()
    };
    assert_eq!(
        refused_versions(&[
            refused(
                1,
                LaunchTemplateErrorCode::LaunchTemplateVersionDoesNotExist
            ),
            refused(3, LaunchTemplateErrorCode::UnexpectedError),
            DeleteLaunchTemplateVersionsResponseErrorItem::builder().build(),
        ]),
        [
            (1, "launchTemplateVersionDoesNotExist".to_owned()),
            (3, "unexpectedError".to_owned()),
        ]
    );
}

#[test]
fn one_fleet_entry_lists_every_instance_of_its_pool() {
    let launched = CreateFleetInstance::builder()
        .instance_ids("i-1")
        .instance_ids("i-2")
        .launch_template_and_overrides(pool("m5.large", "subnet-b"))
        .build();
    let instances = FleetInstance::from_sdk(&launched);
    assert_eq!(instances.len(), 2);
    assert!(instances.iter().all(|i| {
        i.instance_type.as_deref() == Some("m5.large") && i.subnet_id.as_deref() == Some("subnet-b")
    }));
}
