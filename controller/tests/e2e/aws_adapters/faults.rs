//! The adapters under the failures moto never produces, injected by the test floor's proxy:
//! throttling and 5xx are retried within the configured attempts and then classified
//! Recoverable; latency is measured; in-progress and rollback states read through the adapters;
//! the rate limiter holds its rate against the real endpoint.

use std::time::{Duration, Instant};

use stagehand::aws::{AwsSettings, ErrorKind, Limit, RateLimits};
use stagehand::base::{Classify, ErrorClass};
use stagehand_testenv::aws::{FaultAction, FaultRule};

use super::{Env, REGION, create_role, deterministic_zip, fast_settings};

#[tokio::test]
async fn one_throttle_is_retried_to_success_and_a_persistent_one_is_recoverable() {
    let env = Env::start().await;
    let lambda = env.aws.lambda(REGION);

    // The next call is throttled once: the SDK's retry (2 attempts) absorbs it.
    env.floor
        .add_fault(
            &FaultRule::new(FaultAction::throttle())
                .service("lambda")
                .operation("ListFunctions")
                .times(1),
        )
        .await
        .unwrap();
    assert!(lambda.list_functions().await.unwrap().is_empty());
    let calls = env.floor.calls().await.unwrap();
    assert_eq!(calls.count("lambda", "ListFunctions"), 2, "{calls:?}");
    assert_eq!(env.calls("lambda", "ListFunctions", "success"), 1);

    // Always throttled: both attempts fail, the error is Throttled and Recoverable.
    env.floor.reset_calls().await.unwrap();
    env.floor
        .add_fault(
            &FaultRule::new(FaultAction::throttle())
                .service("lambda")
                .operation("ListFunctions"),
        )
        .await
        .unwrap();
    let err = lambda.list_functions().await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Throttled, "{err}");
    assert_eq!(err.code.as_deref(), Some("TooManyRequestsException"));
    assert_eq!(err.class(), ErrorClass::Recoverable);
    assert_eq!(env.calls("lambda", "ListFunctions", "throttled"), 1);
    let calls = env.floor.calls().await.unwrap();
    assert_eq!(
        calls.count("lambda", "ListFunctions"),
        u64::from(fast_settings().max_attempts),
        "retries stay within max_attempts: {calls:?}"
    );
    env.report("faults/throttle");
}

#[tokio::test]
async fn throttling_in_every_services_format_is_classified_throttled() {
    let env = Env::start().await;
    env.floor
        .add_fault(&FaultRule::new(FaultAction::throttle()))
        .await
        .unwrap();
    let ec2 = env
        .aws
        .ec2(REGION)
        .describe_instances_by_tag("stagehand.dev/owner", "platform/SpotFleet/x")
        .await
        .unwrap_err();
    let cfn = env
        .aws
        .cloudformation(REGION)
        .describe_stack("any")
        .await
        .unwrap_err();
    let sqs = env.aws.sqs(REGION).resolve("orders").await.unwrap_err();
    let s3 = env
        .aws
        .s3(REGION)
        .list_objects("bucket", None)
        .await
        .unwrap_err();
    for (err, code) in [
        (&ec2, "RequestLimitExceeded"),
        (&cfn, "Throttling"),
        (&sqs, "RequestThrottled"),
        (&s3, "SlowDown"),
    ] {
        assert_eq!(err.kind, ErrorKind::Throttled, "{err}");
        assert_eq!(err.class(), ErrorClass::Recoverable, "{err}");
        assert_eq!(err.code.as_deref(), Some(code), "{err}");
    }
    // A HEAD response has no body, so S3's SlowDown is only a bare 503 there: a server error,
    // retried and Recoverable all the same.
    let head = env
        .aws
        .s3(REGION)
        .head_object("bucket", "key", None)
        .await
        .unwrap_err();
    assert_eq!(
        (head.kind, head.http_status),
        (ErrorKind::ServerError, Some(503)),
        "{head}"
    );
    assert_eq!(head.class(), ErrorClass::Recoverable);
}

#[tokio::test]
async fn server_errors_are_retried_then_recoverable() {
    let env = Env::start().await;
    env.floor
        .add_fault(
            &FaultRule::new(FaultAction::error(503))
                .service("ec2")
                .times(1),
        )
        .await
        .unwrap();
    // One 503, then success.
    let found = env
        .aws
        .ec2(REGION)
        .describe_instances_by_tag("stagehand.dev/owner", "platform/SpotFleet/x")
        .await
        .unwrap();
    assert!(found.is_empty());

    env.floor
        .add_fault(&FaultRule::new(FaultAction::error(500)).service("ec2"))
        .await
        .unwrap();
    let err = env
        .aws
        .ec2(REGION)
        .describe_instances_by_tag("stagehand.dev/owner", "platform/SpotFleet/x")
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::ServerError, "{err}");
    assert_eq!(err.http_status, Some(500));
    assert_eq!(err.class(), ErrorClass::Recoverable);
}

#[tokio::test]
async fn added_latency_shows_in_the_duration_metric() {
    let env = Env::start().await;
    aws_sdk_sqs::Client::new(&env.sdk)
        .create_queue()
        .queue_name("slow")
        .send()
        .await
        .unwrap();
    env.floor
        .add_fault(
            &FaultRule::new(FaultAction::latency(Duration::from_millis(300)))
                .service("sqs")
                .operation("GetQueueAttributes"),
        )
        .await
        .unwrap();
    let queue = env.aws.sqs(REGION).resolve("slow").await.unwrap().unwrap();
    assert_eq!(queue.visible, 0);
    let histogram = env
        .metrics
        .aws
        .request_duration_seconds
        .with_label_values(&["sqs", "GetQueueAttributes"]);
    assert_eq!(histogram.get_sample_count(), 1);
    assert!(
        histogram.get_sample_sum() >= 0.3,
        "the 300 ms added by the proxy must be in the recorded duration: {}",
        histogram.get_sample_sum()
    );
}

#[tokio::test]
async fn rollback_states_read_through_the_adapter() {
    let env = Env::start().await;
    aws_sdk_cloudformation::Client::new(&env.sdk)
        .create_stack()
        .stack_name("shop-dev")
        .template_body(r#"{"Resources": {"Q": {"Type": "AWS::SQS::Queue"}}}"#)
        .send()
        .await
        .unwrap();
    let cfn = env.aws.cloudformation(REGION);
    for (status, reason) in [
        (
            "ROLLBACK_COMPLETE",
            "The following resource(s) failed to create: [Q].",
        ),
        (
            "UPDATE_ROLLBACK_FAILED",
            "Resource Q failed to roll back: access denied",
        ),
    ] {
        env.floor.clear_faults().await.unwrap();
        env.floor
            .add_fault(&FaultRule::new(FaultAction::StackStatus {
                status: status.into(),
                reason: Some(reason.into()),
            }))
            .await
            .unwrap();
        let stack = cfn.describe_stack("shop-dev").await.unwrap().unwrap();
        assert_eq!(stack.status, status);
        assert_eq!(stack.status_reason.as_deref(), Some(reason));
    }
}

#[tokio::test]
async fn a_function_update_in_progress_is_seen_until_it_completes() {
    let env = Env::start().await;
    let role = create_role(&env, "lambda-role").await;
    aws_sdk_lambda::Client::new(&env.sdk)
        .create_function()
        .function_name("api-dev")
        .runtime(aws_sdk_lambda::types::Runtime::Python312)
        .handler("app.handler")
        .role(role)
        .code(
            aws_sdk_lambda::types::FunctionCode::builder()
                .zip_file(aws_sdk_lambda::primitives::Blob::new(deterministic_zip(&[
                    ("app.py", b"x = 1\n"),
                ])))
                .build(),
        )
        .send()
        .await
        .unwrap();
    env.floor
        .add_fault(
            &FaultRule::new(FaultAction::LambdaStatus {
                last_update_status: "InProgress".into(),
                reason: None,
                state: None,
            })
            .times(2),
        )
        .await
        .unwrap();
    let lambda = env.aws.lambda(REGION);
    let mut seen = Vec::new();
    for _ in 0..3 {
        let details = lambda.get_function("api-dev").await.unwrap().unwrap();
        seen.push(details.function.last_update_status);
    }
    assert_eq!(
        seen,
        [
            Some("InProgress".to_owned()),
            Some("InProgress".to_owned()),
            Some("Successful".to_owned())
        ]
    );
}

/// The token bucket paces calls against the real endpoint: 21 calls at 10/s with a burst of 1
/// cannot finish in under 2 s. (A lower bound only: the limiter guarantees it whatever the
/// machine's speed; the figure is printed for docs/benchmarks.md.)
#[tokio::test]
async fn the_rate_limiter_holds_its_rate_against_the_endpoint() {
    let settings = AwsSettings {
        rate_limits: RateLimits::uniform(Limit::new(10.0, 1)),
        ..fast_settings()
    };
    let env = Env::start_with(settings).await;
    let lambda = env.aws.lambda(REGION);
    let started = Instant::now();
    for _ in 0..21 {
        lambda.list_functions().await.unwrap();
    }
    let elapsed = started.elapsed();
    let calls = env.floor.calls().await.unwrap();
    assert_eq!(calls.count("lambda", "ListFunctions"), 21);
    eprintln!(
        "[rate limiter] 21 calls at 10/s burst 1: {:.2}s ({:.1} calls/s)",
        elapsed.as_secs_f64(),
        21.0 / elapsed.as_secs_f64()
    );
    assert!(
        elapsed >= Duration::from_millis(1950),
        "21 calls at 10/s with burst 1 finished in {elapsed:?}"
    );
}
