use std::collections::BTreeMap;

use stagehand::aws::cloudformation::{ChangeSetKind, ChangeSetRequest};
use stagehand::aws::lambda::{CodeSource, MappingSettings};
use stagehand::aws::{ErrorKind, Service};
use stagehand::base::{Classify, ErrorClass};

use super::{Env, REGION};

#[tokio::test]
async fn a_missing_function_is_not_found_and_recoverable() {
    let env = Env::start().await;
    let err = env
        .aws
        .lambda(REGION)
        .update_function_code(
            "no-such-function",
            &CodeSource::S3 {
                bucket: "b".into(),
                key: "k.zip".into(),
                version_id: None,
            },
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound, "{err}");
    assert_eq!(err.service, Service::Lambda);
    assert_eq!(err.code.as_deref(), Some("ResourceNotFoundException"));
    assert_eq!(err.http_status, Some(404));
    assert_eq!(err.class(), ErrorClass::Recoverable);
    assert!(err.request_id.is_some(), "{err:?}");
    assert!(
        err.to_string()
            .contains("UpdateFunctionCode on no-such-function"),
        "{err}"
    );
    assert_eq!(env.calls("lambda", "UpdateFunctionCode", "not_found"), 1);
    assert_eq!(env.calls("lambda", "UpdateFunctionCode", "error"), 0);
}

#[tokio::test]
async fn an_invalid_parameter_is_validation_and_stalled_with_the_aws_message() {
    let env = Env::start().await;
    env.s3_client()
        .create_bucket()
        .bucket("templates")
        .send()
        .await
        .unwrap();
    env.aws
        .s3(REGION)
        .put_bytes(
            "templates",
            "stack.json",
            &br#"{"Resources": {}}"#[..],
            stagehand::aws::s3::ObjectMetadata::default(),
        )
        .await
        .unwrap();
    let err = env
        .aws
        .cloudformation(REGION)
        .create_change_set(&ChangeSetRequest {
            stack_name: "shop-dev".into(),
            change_set_name: "not a valid name!".into(),
            kind: ChangeSetKind::Create,
            template_url: "https://s3.amazonaws.com/templates/stack.json".into(),
            parameters: BTreeMap::new(),
            capabilities: Vec::new(),
            tags: BTreeMap::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Validation, "{err}");
    assert_eq!(err.class(), ErrorClass::Stalled);
    assert_eq!(err.reason(), "AwsInvalidRequest");
    assert!(
        err.message.contains("not a valid name!"),
        "the AWS message is kept: {err}"
    );
}

/// moto fails internally (HTML 500) on an out-of-range batch size: the SDK retries, then the
/// error is a recoverable server error recorded once in the metrics.
#[tokio::test]
async fn server_errors_are_retried_then_recoverable() {
    let env = Env::start().await;
    super::lambda::seed_functions(&env, &["worker"], &BTreeMap::new()).await;
    aws_sdk_sqs::Client::new(&env.sdk)
        .create_queue()
        .queue_name("orders")
        .send()
        .await
        .unwrap();
    let err = env
        .aws
        .lambda(REGION)
        .create_event_source_mapping(
            "worker",
            "arn:aws:sqs:us-east-1:123456789012:orders",
            &MappingSettings {
                batch_size: Some(100_000),
                ..MappingSettings::default()
            },
            &BTreeMap::new(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::ServerError, "{err}");
    assert_eq!(err.http_status, Some(500));
    assert_eq!(err.class(), ErrorClass::Recoverable);
    assert_eq!(env.calls("lambda", "CreateEventSourceMapping", "error"), 1);
    // Nothing was created by the failed attempts.
    let mappings = env
        .aws
        .lambda(REGION)
        .list_event_source_mappings("worker", None)
        .await
        .unwrap();
    assert!(mappings.is_empty(), "{mappings:?}");
}

#[tokio::test]
async fn an_unreachable_endpoint_is_a_transport_error() {
    let env = Env::start().await;
    let endpoint = env.floor.endpoint_url();
    drop(env);
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new(REGION))
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "t", "t", None, None, "static",
        ))
        .load()
        .await;
    let aws = stagehand::aws::AwsProvider::new(
        sdk,
        stagehand::runtime::Metrics::new().unwrap().aws,
        super::fast_settings(),
    );
    let err = aws.sqs(REGION).resolve("orders").await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Transport, "{err}");
    assert_eq!(err.class(), ErrorClass::Recoverable);
    assert_eq!(err.reason(), "AwsUnreachable");
}
