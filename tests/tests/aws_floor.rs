//! The AWS test floor driven by the real clients: the official Rust SDK and the AWS CLI, through
//! the fault proxy, against moto. Each test starts its own moto + proxy.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_sdk_cloudformation::types::StackStatus;
use aws_sdk_cloudfront::types::{
    DefaultCacheBehavior, DistributionConfig, InvalidationBatch, Origin, Origins, Paths,
    S3OriginConfig, ViewerProtocolPolicy,
};
use aws_sdk_lambda::error::ProvideErrorMetadata;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{FunctionCode, LastUpdateStatus, Runtime};
use aws_sdk_s3::primitives::ByteStream;
use stagehand_testenv::aws::{AwsFloor, FaultAction, FaultRule, moto};

/// An empty but valid zip archive (end-of-central-directory record only).
const EMPTY_ZIP: [u8; 22] = [
    0x50, 0x4b, 0x05, 0x06, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];

struct Clients {
    lambda: aws_sdk_lambda::Client,
    sqs: aws_sdk_sqs::Client,
    s3: aws_sdk_s3::Client,
    cfn: aws_sdk_cloudformation::Client,
    ec2: aws_sdk_ec2::Client,
    cloudfront: aws_sdk_cloudfront::Client,
}

/// SDK clients pointed at the proxy; `attempts` = 1 disables retries. Backoff is kept short.
async fn clients(floor: &AwsFloor, attempts: u32) -> Clients {
    let config = aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(floor.endpoint_url())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_lambda::config::Credentials::new(
            "testing",
            "testing",
            None,
            None,
            "stagehand-testenv",
        ))
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(attempts)
                .with_initial_backoff(Duration::from_millis(5))
                .with_max_backoff(Duration::from_millis(20)),
        )
        .load()
        .await;
    let s3 = aws_sdk_s3::config::Builder::from(&config)
        .force_path_style(true)
        .build();
    Clients {
        lambda: aws_sdk_lambda::Client::new(&config),
        sqs: aws_sdk_sqs::Client::new(&config),
        s3: aws_sdk_s3::Client::from_conf(s3),
        cfn: aws_sdk_cloudformation::Client::new(&config),
        ec2: aws_sdk_ec2::Client::new(&config),
        cloudfront: aws_sdk_cloudfront::Client::new(&config),
    }
}

async fn floor() -> AwsFloor {
    AwsFloor::start().await.expect("the AWS test floor starts")
}

async fn create_function(floor: &AwsFloor, c: &Clients, name: &str) {
    let role = floor.moto().create_lambda_role().await.unwrap();
    c.lambda
        .create_function()
        .function_name(name)
        .runtime(Runtime::Python312)
        .handler("index.handler")
        .role(role)
        .code(
            FunctionCode::builder()
                .zip_file(Blob::new(EMPTY_ZIP.to_vec()))
                .build(),
        )
        .send()
        .await
        .unwrap();
}

/// `(error code, HTTP status)` of an SDK error.
macro_rules! code_and_status {
    ($err:expr) => {
        (
            $err.code().map(str::to_owned),
            $err.raw_response().map(|r| r.status().as_u16()),
        )
    };
}

#[tokio::test]
async fn sdk_creates_a_lambda_function_through_the_proxy_and_it_is_counted() {
    let floor = floor().await;
    eprintln!("moto started in {:?}", floor.moto().startup());
    let c = clients(&floor, 3).await;
    create_function(&floor, &c, "api-dev").await;
    let got = c
        .lambda
        .get_function()
        .function_name("api-dev")
        .send()
        .await
        .unwrap();
    let config = got.configuration().unwrap();
    assert_eq!(config.function_name(), Some("api-dev"));
    assert_eq!(
        config.role(),
        Some("arn:aws:iam::123456789012:role/stagehand-lambda")
    );

    let calls = floor.calls().await.unwrap();
    assert_eq!(calls.count("lambda", "CreateFunction"), 1, "{calls:#?}");
    assert_eq!(calls.count("lambda", "GetFunction"), 1, "{calls:#?}");
    assert_eq!(
        calls.total, 2,
        "the role was created directly on moto: {calls:#?}"
    );
    let create = calls.get("lambda", "CreateFunction").unwrap();
    assert!(
        create.request_bytes > 0 && create.response_bytes > 0,
        "{create:?}"
    );
    assert_eq!((create.errors, create.injected), (0, 0));

    floor.reset_calls().await.unwrap();
    assert_eq!(floor.calls().await.unwrap().total, 0);
}

#[tokio::test]
async fn every_sdk_call_is_identified_end_to_end() {
    let floor = floor().await;
    let c = clients(&floor, 1).await;
    create_function(&floor, &c, "fn-a").await;
    c.lambda.list_functions().send().await.unwrap();
    c.lambda
        .get_function_configuration()
        .function_name("fn-a")
        .send()
        .await
        .unwrap();
    c.lambda
        .update_function_code()
        .function_name("fn-a")
        .zip_file(Blob::new(EMPTY_ZIP.to_vec()))
        .send()
        .await
        .unwrap();
    c.lambda
        .publish_version()
        .function_name("fn-a")
        .send()
        .await
        .unwrap();
    c.lambda
        .list_event_source_mappings()
        .function_name("fn-a")
        .send()
        .await
        .unwrap();
    let queue = c
        .sqs
        .create_queue()
        .queue_name("work")
        .send()
        .await
        .unwrap();
    let queue_url = queue.queue_url().unwrap();
    assert!(
        queue_url.starts_with(&floor.endpoint_url()),
        "queue URLs point back at the proxy: {queue_url}"
    );
    c.sqs
        .get_queue_attributes()
        .queue_url(queue_url)
        .send()
        .await
        .unwrap();
    c.s3.create_bucket()
        .bucket("site-dev")
        .send()
        .await
        .unwrap();
    c.s3.put_object()
        .bucket("site-dev")
        .key("dist/index.html")
        .body(ByteStream::from_static(b"<html></html>"))
        .send()
        .await
        .unwrap();
    c.s3.list_objects_v2()
        .bucket("site-dev")
        .send()
        .await
        .unwrap();
    c.s3.list_object_versions()
        .bucket("site-dev")
        .send()
        .await
        .unwrap();
    c.s3.get_object()
        .bucket("site-dev")
        .key("dist/index.html")
        .send()
        .await
        .unwrap();
    c.s3.head_object()
        .bucket("site-dev")
        .key("dist/index.html")
        .send()
        .await
        .unwrap();
    c.ec2.describe_instances().send().await.unwrap();
    c.cfn.list_stacks().send().await.unwrap();

    let calls = floor.calls().await.unwrap();
    let keys: Vec<&str> = calls.calls.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "cloudformation/ListStacks",
            "ec2/DescribeInstances",
            "lambda/CreateFunction",
            "lambda/GetFunctionConfiguration",
            "lambda/ListEventSourceMappings",
            "lambda/ListFunctions",
            "lambda/PublishVersion",
            "lambda/UpdateFunctionCode",
            "s3/CreateBucket",
            "s3/GetObject",
            "s3/HeadObject",
            "s3/ListObjectVersions",
            "s3/ListObjectsV2",
            "s3/PutObject",
            "sqs/CreateQueue",
            "sqs/GetQueueAttributes",
        ]
    );
    assert!(
        calls.calls.values().all(|s| s.count == 1 && s.errors == 0),
        "{calls:#?}"
    );
}

#[tokio::test]
async fn throttling_comes_in_each_services_own_format() {
    let floor = floor().await;
    let c = clients(&floor, 1).await;
    for (service, operation) in [
        ("lambda", "ListFunctions"),
        ("ec2", "DescribeInstances"),
        ("s3", "ListBuckets"),
        ("cloudformation", "DescribeStacks"),
        ("sqs", "ListQueues"),
    ] {
        floor
            .add_fault(
                &FaultRule::new(FaultAction::throttle())
                    .service(service)
                    .operation(operation)
                    .times(1),
            )
            .await
            .unwrap();
    }

    let err = c.lambda.list_functions().send().await.unwrap_err();
    assert!(
        err.as_service_error()
            .is_some_and(aws_sdk_lambda::operation::list_functions::ListFunctionsError::is_too_many_requests_exception),
        "{err:?}"
    );
    assert_eq!(
        code_and_status!(err),
        (Some("TooManyRequestsException".into()), Some(429))
    );
    let err = c.ec2.describe_instances().send().await.unwrap_err();
    assert_eq!(err.code(), Some("RequestLimitExceeded"), "{err:?}");
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(503));
    let err = c.s3.list_buckets().send().await.unwrap_err();
    assert_eq!(err.code(), Some("SlowDown"), "{err:?}");
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(503));
    let err = c.cfn.describe_stacks().send().await.unwrap_err();
    assert_eq!(err.code(), Some("Throttling"), "{err:?}");
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(400));
    let err = c.sqs.list_queues().send().await.unwrap_err();
    assert_eq!(err.code(), Some("RequestThrottled"), "{err:?}");
    assert!(
        err.as_service_error().is_some_and(
            aws_sdk_sqs::operation::list_queues::ListQueuesError::is_request_throttled
        ),
        "{err:?}"
    );

    // Each rule fired once and is exhausted: the next calls reach moto.
    c.lambda.list_functions().send().await.unwrap();
    c.ec2.describe_instances().send().await.unwrap();
    c.s3.list_buckets().send().await.unwrap();
    c.cfn.describe_stacks().send().await.unwrap();
    c.sqs.list_queues().send().await.unwrap();
    let faults = floor.faults().await.unwrap();
    assert!(
        faults
            .iter()
            .all(|f| f.fired == 1 && f.remaining == Some(0)),
        "{faults:#?}"
    );
    let calls = floor.calls().await.unwrap();
    assert_eq!(calls.total, 10);
    assert!(
        calls
            .calls
            .values()
            .all(|s| s.count == 2 && s.injected == 1),
        "{calls:#?}"
    );
}

#[tokio::test]
async fn the_sdk_retries_a_one_off_throttle_to_success_in_every_service() {
    let floor = floor().await;
    let c = clients(&floor, 3).await;
    for service in ["lambda", "ec2", "s3", "cloudformation", "sqs"] {
        floor
            .add_fault(
                &FaultRule::new(FaultAction::throttle())
                    .service(service)
                    .times(1),
            )
            .await
            .unwrap();
    }
    c.lambda.list_functions().send().await.unwrap();
    c.ec2.describe_instances().send().await.unwrap();
    c.s3.list_buckets().send().await.unwrap();
    c.cfn.describe_stacks().send().await.unwrap();
    c.sqs.list_queues().send().await.unwrap();
    let calls = floor.calls().await.unwrap();
    for (service, operation) in [
        ("lambda", "ListFunctions"),
        ("ec2", "DescribeInstances"),
        ("s3", "ListBuckets"),
        ("cloudformation", "DescribeStacks"),
        ("sqs", "ListQueues"),
    ] {
        let stats = calls.get(service, operation).unwrap();
        assert_eq!(
            (stats.count, stats.injected),
            (2, 1),
            "{service}/{operation}: one throttled call, one retry"
        );
    }
}

#[tokio::test]
async fn server_errors_500_and_503() {
    let floor = floor().await;
    let once = clients(&floor, 1).await;
    floor
        .add_fault(
            &FaultRule::new(FaultAction::error(500))
                .service("lambda")
                .times(1),
        )
        .await
        .unwrap();
    let err = once.lambda.list_functions().send().await.unwrap_err();
    assert_eq!(
        code_and_status!(err),
        (Some("ServiceException".into()), Some(500))
    );
    floor
        .add_fault(
            &FaultRule::new(FaultAction::error(503))
                .service("s3")
                .times(1),
        )
        .await
        .unwrap();
    let err = once.s3.list_buckets().send().await.unwrap_err();
    assert_eq!(err.code(), Some("ServiceUnavailable"), "{err:?}");
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(503));
    // A plain 500: no body, no code — like moto's own crashes.
    floor
        .add_fault(
            &FaultRule::new(FaultAction::Error {
                status: 500,
                code: None,
                message: None,
                plain: true,
            })
            .service("sqs")
            .times(1),
        )
        .await
        .unwrap();
    let err = once.sqs.list_queues().send().await.unwrap_err();
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(500));
    assert_eq!(err.code(), None, "{err:?}");

    // With retries, two 5xx in a row are retried through to the third attempt.
    let retrying = clients(&floor, 3).await;
    floor
        .add_fault(
            &FaultRule::new(FaultAction::error(503))
                .service("ec2")
                .times(2),
        )
        .await
        .unwrap();
    retrying.ec2.describe_instances().send().await.unwrap();
    let stats = floor.calls().await.unwrap();
    let ec2 = stats.get("ec2", "DescribeInstances").unwrap();
    assert_eq!((ec2.count, ec2.injected, ec2.errors), (3, 2, 2));
}

#[tokio::test]
async fn latency_is_added_to_matching_calls_only() {
    let floor = floor().await;
    let c = clients(&floor, 1).await;
    c.sqs.list_queues().send().await.unwrap(); // warm the connection
    floor
        .add_fault(
            &FaultRule::new(FaultAction::latency(Duration::from_millis(300)))
                .service("sqs")
                .operation("ListQueues"),
        )
        .await
        .unwrap();
    let started = Instant::now();
    c.sqs.list_queues().send().await.unwrap();
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(300), "{elapsed:?}");
    c.sqs
        .create_queue()
        .queue_name("fast")
        .send()
        .await
        .unwrap();

    let calls = floor.calls().await.unwrap();
    let slow = calls.get("sqs", "ListQueues").unwrap();
    assert!(slow.max_latency_ms >= 300.0, "{slow:?}");
    let log = floor.admin().log().await.unwrap();
    assert_eq!(log[1].injected, ["latency"]);
    assert!(log[2].injected.is_empty());
}

#[tokio::test]
async fn reset_connection_is_a_tcp_reset_and_is_retried() {
    use std::io::{Read, Write};

    let floor = floor().await;
    floor
        .add_fault(&FaultRule::new(FaultAction::Reset).service("sqs").times(2))
        .await
        .unwrap();
    // A raw client sees the reset itself.
    let addr = floor.proxy().addr();
    let raw = tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(
            b"POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: AmazonSQS.ListQueues\r\n\
              Content-Type: application/x-amz-json-1.0\r\nContent-Length: 2\r\n\r\n{}",
        )
        .unwrap();
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).map(|_| buf)
    })
    .await
    .unwrap();
    assert_eq!(
        raw.map_err(|e| e.kind()),
        Err(std::io::ErrorKind::ConnectionReset)
    );

    // The SDK sees a dispatch (I/O) failure without retries...
    let once = clients(&floor, 1).await;
    let err = once.sqs.list_queues().send().await.unwrap_err();
    assert!(
        matches!(&err, aws_sdk_sqs::error::SdkError::DispatchFailure(d) if d.is_io()),
        "{err:?}"
    );
    // ...and retries through it when allowed.
    floor
        .add_fault(&FaultRule::new(FaultAction::Reset).service("sqs").times(1))
        .await
        .unwrap();
    clients(&floor, 3)
        .await
        .sqs
        .list_queues()
        .send()
        .await
        .unwrap();
    let stats = floor.calls().await.unwrap();
    let list = stats.get("sqs", "ListQueues").unwrap();
    assert_eq!((list.count, list.injected), (4, 3), "{list:?}");
}

#[tokio::test]
async fn describe_stacks_is_rewritten_to_rollback_states() {
    let floor = floor().await;
    let c = clients(&floor, 1).await;
    c.cfn
        .create_stack()
        .stack_name("infra-dev")
        .template_body(r#"{"Resources":{"Queue":{"Type":"AWS::SQS::Queue","Properties":{"QueueName":"infra-dev"}}}}"#)
        .send()
        .await
        .unwrap();
    let status =
        |out: &aws_sdk_cloudformation::operation::describe_stacks::DescribeStacksOutput| {
            let stack = &out.stacks()[0];
            (
                stack.stack_status().cloned(),
                stack.stack_status_reason().map(str::to_owned),
            )
        };
    let describe = || c.cfn.describe_stacks().stack_name("infra-dev").send();
    assert_eq!(
        status(&describe().await.unwrap()).0,
        Some(StackStatus::CreateComplete)
    );

    let reason = "The following resource(s) failed to create: [Queue]. Rollback requested by user.";
    let id = floor
        .add_fault(
            &FaultRule::new(FaultAction::stack_status("ROLLBACK_COMPLETE", Some(reason)))
                .resource("infra-dev"),
        )
        .await
        .unwrap();
    for _ in 0..2 {
        assert_eq!(
            status(&describe().await.unwrap()),
            (Some(StackStatus::RollbackComplete), Some(reason.to_owned()))
        );
    }
    // Other operations and other stacks are left alone.
    assert!(
        c.cfn.list_stacks().send().await.unwrap().stack_summaries()[0].stack_status()
            == Some(&StackStatus::CreateComplete)
    );
    let faults = floor.faults().await.unwrap();
    assert_eq!(
        (faults[0].id, faults[0].fired, faults[0].remaining),
        (id, 2, None)
    );

    floor.clear_faults().await.unwrap();
    floor
        .add_fault(
            &FaultRule::new(FaultAction::stack_status(
                "UPDATE_ROLLBACK_FAILED",
                Some("Resource Queue failed to roll back"),
            ))
            .times(1),
        )
        .await
        .unwrap();
    assert_eq!(
        status(&describe().await.unwrap()),
        (
            Some(StackStatus::UpdateRollbackFailed),
            Some("Resource Queue failed to roll back".to_owned())
        )
    );
    assert_eq!(
        status(&describe().await.unwrap()).0,
        Some(StackStatus::CreateComplete)
    );
}

#[tokio::test]
async fn lambda_update_is_in_progress_for_n_reads() {
    let floor = floor().await;
    let c = clients(&floor, 1).await;
    create_function(&floor, &c, "api-dev").await;
    create_function(&floor, &c, "other").await;
    floor
        .add_fault(
            &FaultRule::new(FaultAction::lambda_in_progress())
                .resource("api-dev")
                .times(2),
        )
        .await
        .unwrap();
    let via_get_function = |name: &'static str| {
        let lambda = c.lambda.clone();
        async move {
            lambda
                .get_function()
                .function_name(name)
                .send()
                .await
                .unwrap()
                .configuration()
                .and_then(|c| c.last_update_status().cloned())
        }
    };
    assert_eq!(
        via_get_function("other").await,
        Some(LastUpdateStatus::Successful)
    );
    assert_eq!(
        via_get_function("api-dev").await,
        Some(LastUpdateStatus::InProgress)
    );
    let config = c
        .lambda
        .get_function_configuration()
        .function_name("api-dev")
        .send()
        .await
        .unwrap();
    assert_eq!(
        config.last_update_status(),
        Some(&LastUpdateStatus::InProgress)
    );
    assert_eq!(
        via_get_function("api-dev").await,
        Some(LastUpdateStatus::Successful)
    );
}

#[tokio::test]
async fn listed_functions_are_in_progress_for_n_listings() {
    let floor = floor().await;
    let c = clients(&floor, 1).await;
    create_function(&floor, &c, "api-dev").await;
    create_function(&floor, &c, "other").await;
    floor
        .add_fault(
            &FaultRule::new(FaultAction::lambda_in_progress())
                .resource("api-dev")
                .times(2),
        )
        .await
        .unwrap();
    let listed = || {
        let lambda = c.lambda.clone();
        async move {
            let mut statuses: Vec<(String, Option<LastUpdateStatus>)> = lambda
                .list_functions()
                .send()
                .await
                .unwrap()
                .functions()
                .iter()
                .map(|f| {
                    (
                        f.function_name().unwrap().to_owned(),
                        f.last_update_status().cloned(),
                    )
                })
                .collect();
            statuses.sort_by(|a, b| a.0.cmp(&b.0));
            statuses
        }
    };
    let busy = vec![
        ("api-dev".to_owned(), Some(LastUpdateStatus::InProgress)),
        ("other".to_owned(), Some(LastUpdateStatus::Successful)),
    ];
    assert_eq!(listed().await, busy);
    assert_eq!(listed().await, busy);
    assert_eq!(
        listed().await,
        [
            ("api-dev".to_owned(), Some(LastUpdateStatus::Successful)),
            ("other".to_owned(), Some(LastUpdateStatus::Successful)),
        ]
    );
    // Without `resource`, every listed function.
    floor.clear_faults().await.unwrap();
    floor
        .add_fault(&FaultRule::new(FaultAction::lambda_in_progress()).times(1))
        .await
        .unwrap();
    assert!(
        listed()
            .await
            .iter()
            .all(|(_, s)| *s == Some(LastUpdateStatus::InProgress))
    );
    let stats = floor.calls().await.unwrap();
    let list = stats.get("lambda", "ListFunctions").unwrap();
    assert_eq!(list.count, 4, "{list:?}");
}

#[tokio::test]
async fn cloudfront_invalidation_is_in_progress_for_n_reads() {
    let floor = floor().await;
    let c = clients(&floor, 1).await;
    let config = DistributionConfig::builder()
        .caller_reference("site-dev")
        .comment("")
        .enabled(true)
        .origins(
            Origins::builder()
                .quantity(1)
                .items(
                    Origin::builder()
                        .id("site")
                        .domain_name("site-dev.s3.amazonaws.com")
                        .s3_origin_config(
                            S3OriginConfig::builder().origin_access_identity("").build(),
                        )
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .default_cache_behavior(
            DefaultCacheBehavior::builder()
                .target_origin_id("site")
                .viewer_protocol_policy(ViewerProtocolPolicy::RedirectToHttps)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let dist = c
        .cloudfront
        .create_distribution()
        .distribution_config(config)
        .send()
        .await
        .unwrap();
    let dist_id = dist.distribution().unwrap().id().to_owned();
    let inv = c
        .cloudfront
        .create_invalidation()
        .distribution_id(&dist_id)
        .invalidation_batch(
            InvalidationBatch::builder()
                .caller_reference("rev-1")
                .paths(
                    Paths::builder()
                        .quantity(1)
                        .items("/index.html")
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let inv_id = inv.invalidation().unwrap().id().to_owned();
    floor
        .add_fault(&FaultRule::new(FaultAction::invalidation_in_progress()).times(2))
        .await
        .unwrap();
    let mut seen = Vec::new();
    for _ in 0..3 {
        let got = c
            .cloudfront
            .get_invalidation()
            .distribution_id(&dist_id)
            .id(&inv_id)
            .send()
            .await
            .unwrap();
        seen.push(got.invalidation().unwrap().status().to_ascii_lowercase());
    }
    assert_eq!(seen, ["inprogress", "inprogress", "completed"]);
    assert_eq!(
        floor
            .calls()
            .await
            .unwrap()
            .count("cloudfront", "GetInvalidation"),
        3
    );
}

#[tokio::test]
async fn probability_with_a_seed_is_deterministic() {
    let floor = floor().await;
    let c = clients(&floor, 1).await;
    let run = |seed: u64| {
        let floor = &floor;
        let sqs = c.sqs.clone();
        async move {
            floor.clear_faults().await.unwrap();
            floor
                .add_fault(
                    &FaultRule::new(FaultAction::error(503))
                        .service("sqs")
                        .probability(0.5, seed),
                )
                .await
                .unwrap();
            let mut outcome = Vec::new();
            for _ in 0..24 {
                outcome.push(sqs.list_queues().send().await.is_ok());
            }
            outcome
        }
    };
    let first = run(7).await;
    assert_eq!(first, run(7).await, "same seed, same sequence");
    assert_ne!(first, run(8).await, "another seed, another sequence");
    let ok = first.iter().filter(|ok| **ok).count();
    assert!((4..=20).contains(&ok), "{ok} of 24 succeeded at p=0.5");
    let faults = floor.faults().await.unwrap();
    assert_eq!((faults[0].seed, faults[0].matched), (8, 24));
}

#[tokio::test]
async fn the_aws_cli_works_through_the_proxy_and_is_counted() {
    let floor = floor().await;
    let aws = moto::aws_cli_bin().unwrap();
    let out = tokio::process::Command::new(&aws)
        .args([
            "--endpoint-url",
            &floor.endpoint_url(),
            "--output",
            "json",
            "sqs",
            "create-queue",
            "--queue-name",
            "cli-queue",
        ])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", std::env::temp_dir())
        .envs(floor.env())
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        answer["QueueUrl"],
        format!("{}/123456789012/cli-queue", floor.endpoint_url())
    );
    let calls = floor.calls().await.unwrap();
    assert_eq!(calls.count("sqs", "CreateQueue"), 1, "{calls:#?}");
    assert_eq!(calls.total, 1, "{calls:#?}");
}

#[tokio::test]
async fn admin_api_lists_validates_clears_and_resets() {
    let floor = floor().await;
    let c = clients(&floor, 1).await;
    let admin = floor.admin();
    assert!(admin.url().ends_with("/__stagehand"));
    // Invalid rules are rejected with the reason.
    let bad = FaultRule::new(FaultAction::throttle()).probability(2.0, 1);
    let err = admin.add_fault(&bad).await.unwrap_err().to_string();
    assert!(err.contains("400") && err.contains("probability"), "{err}");

    let a = admin
        .add_fault(
            &FaultRule::new(FaultAction::throttle())
                .service("sqs")
                .times(3),
        )
        .await
        .unwrap();
    let b = admin
        .add_fault(&FaultRule::new(FaultAction::latency(
            Duration::from_millis(1),
        )))
        .await
        .unwrap();
    let listed = admin.faults().await.unwrap();
    assert_eq!(listed.iter().map(|f| f.id).collect::<Vec<_>>(), [a, b]);
    assert_eq!(listed[0].remaining, Some(3));
    admin.clear_faults().await.unwrap();
    assert!(admin.faults().await.unwrap().is_empty());

    // moto's own API passes through uncounted; $ADMIN/reset wipes moto, the counts and rules.
    c.sqs.create_queue().queue_name("q1").send().await.unwrap();
    admin
        .add_fault(&FaultRule::new(FaultAction::throttle()).service("lambda"))
        .await
        .unwrap();
    floor.reset().await.unwrap();
    assert!(admin.faults().await.unwrap().is_empty());
    assert_eq!(admin.calls().await.unwrap().total, 0);
    let queues = c.sqs.list_queues().send().await.unwrap();
    assert!(queues.queue_urls().is_empty(), "{queues:?}");
    assert_eq!(admin.calls().await.unwrap().total, 1);
}

#[tokio::test]
async fn moto_launcher_resets_creates_the_role_and_stops_on_drop() {
    let moto = moto::Moto::start().await.unwrap();
    eprintln!("moto started in {:?}", moto.startup());
    assert!(moto.startup() < Duration::from_secs(30));
    let arn = moto.create_lambda_role().await.unwrap();
    assert_eq!(arn, "arn:aws:iam::123456789012:role/stagehand-lambda");
    assert_eq!(moto.create_lambda_role().await.unwrap(), arn, "idempotent");
    moto.reset().await.unwrap();
    assert_eq!(
        moto.create_lambda_role().await.unwrap(),
        arn,
        "recreated after reset"
    );
    let port = moto.port();
    let log = moto.log_path().to_owned();
    assert!(log.is_file());
    drop(moto);
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "moto is gone after drop"
    );
    assert!(!log.exists(), "the log of a passing run is removed");
}

/// Not an assertion on speed: measures the proxy's cost per call next to moto's own, so the
/// figure is visible in test output (`--nocapture`), and checks both paths give the same answer.
#[tokio::test]
async fn proxy_overhead_per_call_is_measured() {
    let floor = floor().await;
    let through = clients(&floor, 1).await;
    let direct_config = aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(floor.moto().url())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            "testing", "testing", None, None, "direct",
        ))
        .load()
        .await;
    let direct = aws_sdk_sqs::Client::new(&direct_config);
    through
        .sqs
        .create_queue()
        .queue_name("m")
        .send()
        .await
        .unwrap();
    let n = 50;
    let time = |client: aws_sdk_sqs::Client| async move {
        let started = Instant::now();
        for _ in 0..n {
            let out = client.list_queues().send().await.unwrap();
            assert_eq!(out.queue_urls().len(), 1);
        }
        started.elapsed() / n
    };
    let d = time(direct).await;
    let p = time(through.sqs.clone()).await;
    eprintln!("SQS ListQueues: direct to moto {d:?}/call, through the proxy {p:?}/call");
    assert_eq!(
        floor.calls().await.unwrap().count("sqs", "ListQueues"),
        u64::from(n)
    );
}
