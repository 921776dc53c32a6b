//! The parser against AWS's documented sample events (EC2 User Guide, "Spot Instance
//! interruption notices", "EC2 instance rebalance recommendations", "Amazon EventBridge events
//! for Amazon EC2"; AWS Health User Guide, "Monitoring AWS Health events with Amazon
//! EventBridge"), with the placeholders of the samples filled in, and against what must be
//! refused.

use serde_json::json;

use super::*;

/// AWS's sample interruption warning.
pub(crate) fn interruption_warning(instance_id: &str) -> serde_json::Value {
    json!({
        "version": "0",
        "id": "12345678-1234-1234-1234-123456789012",
        "detail-type": "EC2 Spot Instance Interruption Warning",
        "source": "aws.ec2",
        "account": "123456789012",
        "time": "2026-11-30T21:29:54Z",
        "region": "us-east-2",
        "resources": [format!("arn:aws:ec2:us-east-2a:instance/{instance_id}")],
        "detail": {"instance-id": instance_id, "instance-action": "terminate"}
    })
}

fn rebalance() -> serde_json::Value {
    json!({
        "version": "0",
        "id": "12345678-1234-1234-1234-123456789012",
        "detail-type": "EC2 Instance Rebalance Recommendation",
        "source": "aws.ec2",
        "account": "123456789012",
        "time": "2026-11-30T21:29:54Z",
        "region": "us-east-2",
        "resources": ["arn:aws:ec2:us-east-2:123456789012:instance/i-1234567890abcdef0"],
        "detail": {"instance-id": "i-1234567890abcdef0"}
    })
}

/// The state-change sample (AWS's sample omits `version`; every delivered event has it).
fn state_change(state: &str) -> serde_json::Value {
    json!({
        "version": "0",
        "id": "7bf73129-1428-4cd3-a780-95db273d1602",
        "detail-type": "EC2 Instance State-change Notification",
        "source": "aws.ec2",
        "account": "123456789012",
        "time": "2021-11-11T21:29:54Z",
        "region": "us-east-1",
        "resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-abcd1111"],
        "detail": {"instance-id": "i-abcd1111", "state": state}
    })
}

/// AWS Health's sample of a scheduled change for an EC2 instance.
fn health_scheduled_change() -> serde_json::Value {
    json!({
        "version": "0",
        "id": "7fb65329-1628-4cf3-a740-95fg457h1402",
        "detail-type": "AWS Health Event",
        "source": "aws.health",
        "account": "123456789012",
        "time": "2016-06-05T06:27:57Z",
        "region": "us-east-1",
        "resources": ["i-abcd1111"],
        "detail": {
            "eventArn": "arn:aws:health:us-east-1::event/EC2/AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED/AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED_1",
            "service": "EC2",
            "eventTypeCode": "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED",
            "eventTypeCategory": "scheduledChange",
            "startTime": "Sat, 05 Jun 2016 15:10:09 GMT",
            "eventDescription": [{"language": "en_US", "latestDescription": "A description of the event will be provided here"}],
            "affectedEntities": [
                {"entityValue": "i-abcd1111", "tags": {"stage": "prod", "app": "my-app"}},
                {"entityValue": "i-abcd2222"}
            ]
        }
    })
}

fn parsed(value: &serde_json::Value) -> Result<Event, ParseError> {
    parse(&value.to_string())
}

#[test]
fn the_documented_ec2_events_parse() {
    let warning = parsed(&interruption_warning("i-1234567890abcdef0")).unwrap();
    assert_eq!(
        warning.detail,
        Detail::SpotInterruptionWarning {
            instance_id: "i-1234567890abcdef0".into(),
            action: "terminate".into()
        }
    );
    assert_eq!(warning.envelope.region, "us-east-2");
    assert_eq!(warning.envelope.account, "123456789012");
    assert_eq!(
        warning.envelope.time,
        "2026-11-30T21:29:54Z".parse::<Timestamp>().unwrap()
    );
    assert_eq!(
        parsed(&rebalance()).unwrap().detail,
        Detail::RebalanceRecommendation {
            instance_id: "i-1234567890abcdef0".into()
        }
    );
    for (name, state, stops) in [
        ("pending", InstanceState::Pending, false),
        ("running", InstanceState::Running, false),
        ("stopping", InstanceState::Stopping, true),
        ("stopped", InstanceState::Stopped, true),
        ("shutting-down", InstanceState::ShuttingDown, true),
        ("terminated", InstanceState::Terminated, true),
    ] {
        let event = parsed(&state_change(name)).unwrap();
        assert_eq!(
            event.detail,
            Detail::StateChange {
                instance_id: "i-abcd1111".into(),
                state
            }
        );
        assert_eq!(state.stops_serving(), stops, "{name}");
    }
}

#[test]
fn a_health_event_names_its_instances() {
    assert_eq!(
        parsed(&health_scheduled_change()).unwrap().detail,
        Detail::Health {
            service: "EC2".into(),
            event_type_code: "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED".into(),
            category: "scheduledChange".into(),
            instance_ids: vec!["i-abcd1111".into(), "i-abcd2222".into()],
        }
    );
    // Not about instances (an account notification): parsed, names none.
    let mut notice = health_scheduled_change();
    notice["resources"] = json!([]);
    notice["detail"]["affectedEntities"] =
        json!([{"entityValue": "arn:aws:lambda:us-east-1:123456789012:function:f"}]);
    notice["detail"]["service"] = json!("LAMBDA");
    let Detail::Health { instance_ids, .. } = parsed(&notice).unwrap().detail else {
        panic!("a health event")
    };
    assert_eq!(instance_ids, Vec::<String>::new());
}

#[test]
fn other_kinds_are_unknown_not_unparsable() {
    let mut ami = rebalance();
    ami["detail-type"] = json!("EC2 AMI State Change");
    assert_eq!(
        parsed(&ami),
        Err(ParseError::UnknownKind {
            event_source: "aws.ec2".into(),
            detail_type: "EC2 AMI State Change".into()
        })
    );
}

/// The S3 User Guide's `Object Created` sample (EventBridge notifications on the bucket).
pub(crate) fn object_created(bucket: &str, key: &str) -> serde_json::Value {
    json!({
        "version": "0",
        "id": "17793124-05d4-b198-2fde-7ededc63b103",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": "123456789012",
        "time": "2021-11-12T00:00:00Z",
        "region": "us-east-1",
        "resources": [format!("arn:aws:s3:::{bucket}")],
        "detail": {
            "version": "0",
            "bucket": {"name": bucket},
            "object": {"key": key, "size": 5, "etag": "b1946ac92492d2347c6235b4d2611184", "version-id": "IYV3p45BT0ac8hjHg1houSdS1a.Mro8e", "sequencer": "617f08299329d189"},
            "request-id": "N4N7GDK58NMKJ12R",
            "requester": "123456789012",
            "source-ip-address": "1.2.3.4",
            "reason": "PutObject"
        }
    })
}

/// A CloudTrail record of `event_name` (as CloudTrail names it, API version included) by
/// `caller`, with these request parameters.
pub(crate) fn api_call(
    source: &str,
    event_name: &str,
    caller: &str,
    request: &serde_json::Value,
) -> serde_json::Value {
    let service = source.trim_start_matches("aws.");
    json!({
        "version": "0",
        "id": format!("trail-{event_name}"),
        "detail-type": "AWS API Call via CloudTrail",
        "source": source,
        "account": "123456789012",
        "time": "2026-12-01T05:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {
            "eventVersion": "1.08",
            "userIdentity": {"type": "IAMUser", "principalId": "AIDAEXAMPLE", "arn": caller, "accountId": "123456789012"},
            "eventTime": "2026-12-01T05:00:00Z",
            "eventSource": format!("{service}.amazonaws.com"),
            "eventName": event_name,
            "awsRegion": "us-east-1",
            "sourceIPAddress": "1.2.3.4",
            "userAgent": "aws-cli/2",
            "requestParameters": request,
            "responseElements": null,
            "requestID": "r-1",
            "eventID": "e-1",
            "readOnly": false,
            "eventType": "AwsApiCall",
            "managementEvent": true
        }
    })
}

pub(crate) const ALICE: &str = "arn:aws:iam::123456789012:user/alice";

#[test]
fn s3_cloudtrail_and_heartbeat_events_parse() {
    assert_eq!(
        parsed(&object_created("builds", "api/app.zip"))
            .unwrap()
            .detail,
        Detail::ObjectCreated {
            bucket: "builds".into(),
            key: "api/app.zip".into()
        }
    );
    // A hand delete on a versioned bucket, as S3 (and moto) send it.
    let mut deleted = object_created("site", "assets/app.js");
    deleted["detail-type"] = json!("Object Deleted");
    deleted["detail"]["reason"] = json!("DeleteMarkerCreated");
    assert_eq!(
        parsed(&deleted).unwrap().detail,
        Detail::ObjectDeleted {
            bucket: "site".into(),
            key: "assets/app.js".into()
        }
    );
    let call = |source: &str, name: &str, request: serde_json::Value| match parsed(&api_call(
        source, name, ALICE, &request,
    ))
    .unwrap()
    .detail
    {
        Detail::ApiCall(call) => call,
        other => panic!("{other:?}"),
    };
    let function = |name: &str| Some(ApiResource::Function(name.into()));
    let alias = call(
        "aws.lambda",
        "UpdateAlias20150331",
        json!({"functionName": "shop-api", "name": "live", "functionVersion": "1"}),
    );
    assert_eq!(
        alias,
        ApiCall {
            service: ApiService::Lambda,
            action: "UpdateAlias".into(),
            caller: Some(ALICE.into()),
            region: "us-east-1".into(),
            failed: false,
            resource: function("shop-api"),
        }
    );
    for (name, request, resource) in [
        (
            "UpdateFunctionCode20150331v2",
            json!({"functionName": "arn:aws:lambda:us-east-1:123456789012:function:shop-api"}),
            function("shop-api"),
        ),
        (
            "TagResource20170331v2",
            json!({"resource": "arn:aws:lambda:us-east-1:123456789012:function:shop-api:live"}),
            function("shop-api"),
        ),
        (
            "DeleteEventSourceMapping20150331",
            json!({"uUID": "a1b2"}),
            Some(ApiResource::Mapping {
                uuid: "a1b2".into(),
                function: None,
            }),
        ),
        (
            "UntagResource20170331v2",
            json!({"resource": "arn:aws:lambda:us-east-1:123456789012:event-source-mapping:a1b2"}),
            Some(ApiResource::Mapping {
                uuid: "a1b2".into(),
                function: None,
            }),
        ),
        ("ListFunctions20150331", serde_json::Value::Null, None),
        // Creations: a function for a selector, a layer version, a mapping by hand.
        (
            "CreateFunction20150331",
            json!({"functionName": "shop-api-new", "runtime": "python3.12"}),
            function("shop-api-new"),
        ),
        (
            "PublishLayerVersion20181031",
            json!({"layerName": "deps", "description": "d"}),
            Some(ApiResource::Layer("deps".into())),
        ),
        (
            "DeleteLayerVersion20181031",
            json!({"layerName": "arn:aws:lambda:us-east-1:123456789012:layer:deps", "versionNumber": 3}),
            Some(ApiResource::Layer("deps".into())),
        ),
    ] {
        let parsed = call("aws.lambda", name, request);
        assert_eq!(parsed.resource, resource, "{name}");
        assert!(!parsed.action.chars().any(|c| c.is_ascii_digit()), "{name}");
    }
    // A new mapping's id is in the response; its function in both.
    let mut created = api_call(
        "aws.lambda",
        "CreateEventSourceMapping20150331",
        ALICE,
        &json!({"functionName": "shop-api", "eventSourceArn": "arn:aws:sqs:us-east-1:123456789012:orders"}),
    );
    created["detail"]["responseElements"] = json!({"uUID": "m-9", "state": "Creating",
        "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:shop-api"});
    let Detail::ApiCall(created) = parsed(&created).unwrap().detail else {
        panic!("an API call")
    };
    assert_eq!(
        created.resource,
        Some(ApiResource::Mapping {
            uuid: "m-9".into(),
            function: Some("shop-api".into())
        })
    );
    assert_eq!(
        call("aws.s3", "PutBucketPolicy", json!({"bucketName": "site"})).resource,
        Some(ApiResource::Bucket("site".into()))
    );
    assert_eq!(
        call(
            "aws.cloudfront",
            "UpdateDistribution2020_05_31",
            json!({"id": "E2QWRUHAPOMQZL"})
        )
        .resource,
        Some(ApiResource::Distribution("E2QWRUHAPOMQZL".into()))
    );
    let mut failed = api_call("aws.lambda", "UpdateAlias20150331", ALICE, &json!({}));
    failed["detail"]["errorCode"] = json!("AccessDenied");
    let Detail::ApiCall(failed) = parsed(&failed).unwrap().detail else {
        panic!("an API call")
    };
    assert!(failed.failed);
    let mut heartbeat = rebalance();
    heartbeat["source"] = json!("aws.events");
    heartbeat["detail-type"] = json!("Scheduled Event");
    heartbeat["detail"] = json!({});
    assert_eq!(parsed(&heartbeat).unwrap().detail, Detail::Heartbeat);
}

#[test]
fn s3_and_cloudtrail_details_are_parsed_strictly() {
    let unparsable = |value: serde_json::Value, why: &str| {
        let result = parsed(&value);
        assert!(
            matches!(result, Err(ParseError::Unparsable(_))),
            "{why}: {result:?}"
        );
    };
    let mut no_key = object_created("b", "k");
    no_key["detail"]["object"]
        .as_object_mut()
        .unwrap()
        .remove("key");
    unparsable(no_key, "an object without its key");
    unparsable(object_created("b", ""), "an empty key");
    let call = || api_call("aws.lambda", "UpdateAlias20150331", ALICE, &json!({}));
    for field in ["eventSource", "eventName", "awsRegion", "userIdentity"] {
        let mut missing = call();
        missing["detail"].as_object_mut().unwrap().remove(field);
        unparsable(missing, field);
    }
    let mut elsewhere = call();
    elsewhere["detail"]["eventSource"] = json!("s3.amazonaws.com");
    unparsable(elsewhere, "a Lambda event recorded for S3");
}

#[test]
fn what_is_not_a_documented_event_is_unparsable() {
    let unparsable = |value: serde_json::Value, why: &str| {
        let result = parsed(&value);
        assert!(
            matches!(result, Err(ParseError::Unparsable(_))),
            "{why}: {result:?}"
        );
    };
    assert!(matches!(parse("garbage {"), Err(ParseError::Unparsable(_))));
    assert!(matches!(parse(""), Err(ParseError::Unparsable(_))));
    unparsable(
        json!({"Records": []}),
        "an S3 notification, not EventBridge",
    );
    for field in [
        "version",
        "id",
        "detail-type",
        "source",
        "account",
        "time",
        "region",
        "resources",
        "detail",
    ] {
        let mut missing = rebalance();
        missing.as_object_mut().unwrap().remove(field);
        unparsable(missing, field);
    }
    let mut version = rebalance();
    version["version"] = json!("1");
    unparsable(version, "another envelope version");
    let mut time = rebalance();
    time["time"] = json!("yesterday");
    unparsable(time, "a time that is not one");
    let mut resources = rebalance();
    resources["resources"] = json!("i-1234567890abcdef0");
    unparsable(resources, "resources not a list");
    let mut no_id = interruption_warning("i-1234567890abcdef0");
    no_id["detail"]
        .as_object_mut()
        .unwrap()
        .remove("instance-id");
    unparsable(no_id, "an interruption without its instance");
    unparsable(
        interruption_warning("sir-12345678"),
        "a spot request id, not an instance id",
    );
    unparsable(state_change("rebooting"), "a state EC2 does not have");
    let mut numeric = state_change("running");
    numeric["detail"]["instance-id"] = json!(12);
    unparsable(numeric, "an id of the wrong type");
}

#[test]
fn fields_aws_adds_later_are_ignored() {
    let mut newer = interruption_warning("i-1234567890abcdef0");
    newer["detail"]["instance-lifecycle"] = json!("spot");
    newer["replay-name"] = json!("r");
    assert!(parsed(&newer).is_ok());
}
