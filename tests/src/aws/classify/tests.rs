//! The classifier against request shapes of each protocol, as the SDKs send them.

use super::*;
use hyper::http::Request;

fn auth(service: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261125/us-east-1/{service}/aws4_request, \
         SignedHeaders=host;x-amz-date, Signature=0123abcd"
    )
}

/// (method, path?query, signing service or "", extra headers, body) → expected service/operation.
fn check(method: &str, uri: &str, service: &str, extra: &[(&str, &str)], body: &str, want: &str) {
    let mut b = Request::builder().method(method).uri(uri);
    if !service.is_empty() {
        b = b.header("authorization", auth(service));
    }
    for (k, v) in extra {
        b = b.header(*k, *v);
    }
    let req = b.body(()).unwrap();
    let id = identify(req.method(), req.uri(), req.headers(), body.as_bytes());
    assert_eq!(id.key(), want, "{method} {uri}");
}

const FORM: (&str, &str) = (
    "content-type",
    "application/x-www-form-urlencoded; charset=utf-8",
);

#[test]
fn credential_scope_names_the_service() {
    assert_eq!(signing_service(&auth("lambda")).as_deref(), Some("lambda"));
    assert_eq!(
        signing_service(
            "AWS4-HMAC-SHA256 Credential=test/20261125/us-east-1/CloudFormation/aws4_request,SignedHeaders=host,Signature=x"
        )
        .as_deref(),
        Some("cloudformation")
    );
    assert_eq!(signing_service("Bearer abc"), None);
    assert_eq!(signing_service("AWS4-HMAC-SHA256 Credential=a/b"), None);
}

#[test]
fn lambda_rest_paths() {
    let table = [
        ("POST", "/2015-03-31/functions", "lambda/CreateFunction"),
        ("GET", "/2015-03-31/functions/", "lambda/ListFunctions"),
        (
            "GET",
            "/2015-03-31/functions/?Marker=abc&MaxItems=50",
            "lambda/ListFunctions",
        ),
        ("GET", "/2015-03-31/functions/api-dev", "lambda/GetFunction"),
        (
            "GET",
            "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Aapi-dev",
            "lambda/GetFunction",
        ),
        (
            "DELETE",
            "/2015-03-31/functions/api-dev",
            "lambda/DeleteFunction",
        ),
        (
            "PUT",
            "/2015-03-31/functions/api-dev/code",
            "lambda/UpdateFunctionCode",
        ),
        (
            "GET",
            "/2015-03-31/functions/api-dev/configuration",
            "lambda/GetFunctionConfiguration",
        ),
        (
            "PUT",
            "/2015-03-31/functions/api-dev/configuration",
            "lambda/UpdateFunctionConfiguration",
        ),
        (
            "POST",
            "/2015-03-31/functions/api-dev/versions",
            "lambda/PublishVersion",
        ),
        (
            "GET",
            "/2015-03-31/functions/api-dev/versions",
            "lambda/ListVersionsByFunction",
        ),
        (
            "POST",
            "/2015-03-31/functions/api-dev/aliases",
            "lambda/CreateAlias",
        ),
        (
            "GET",
            "/2015-03-31/functions/api-dev/aliases",
            "lambda/ListAliases",
        ),
        (
            "GET",
            "/2015-03-31/functions/api-dev/aliases/live",
            "lambda/GetAlias",
        ),
        (
            "PUT",
            "/2015-03-31/functions/api-dev/aliases/live",
            "lambda/UpdateAlias",
        ),
        (
            "POST",
            "/2015-03-31/functions/api-dev/invocations",
            "lambda/Invoke",
        ),
        (
            "GET",
            "/2015-03-31/event-source-mappings/?FunctionName=api-dev&EventSourceArn=arn%3Aaws%3Asqs%3Aus-east-1%3A123456789012%3Aq",
            "lambda/ListEventSourceMappings",
        ),
        (
            "POST",
            "/2015-03-31/event-source-mappings/",
            "lambda/CreateEventSourceMapping",
        ),
        (
            "GET",
            "/2015-03-31/event-source-mappings/6f0b3a4e-1111-2222-3333-444455556666",
            "lambda/GetEventSourceMapping",
        ),
        (
            "PUT",
            "/2015-03-31/event-source-mappings/6f0b3a4e-1111-2222-3333-444455556666",
            "lambda/UpdateEventSourceMapping",
        ),
        (
            "DELETE",
            "/2015-03-31/event-source-mappings/6f0b3a4e-1111-2222-3333-444455556666",
            "lambda/DeleteEventSourceMapping",
        ),
        (
            "GET",
            "/2017-03-31/tags/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Aapi-dev",
            "lambda/ListTags",
        ),
        (
            "POST",
            "/2017-03-31/tags/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Aapi-dev",
            "lambda/TagResource",
        ),
        (
            "DELETE",
            "/2017-03-31/tags/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Aapi-dev?tagKeys=a",
            "lambda/UntagResource",
        ),
        ("GET", "/2018-10-31/layers", "lambda/ListLayers"),
        (
            "POST",
            "/2018-10-31/layers/deps/versions",
            "lambda/PublishLayerVersion",
        ),
        (
            "GET",
            "/2018-10-31/layers/deps/versions",
            "lambda/ListLayerVersions",
        ),
        (
            "GET",
            "/2018-10-31/layers/deps/versions/3",
            "lambda/GetLayerVersion",
        ),
        ("GET", "/2015-03-31/nonsense/x/y/z", "lambda/Unknown"),
    ];
    for (m, uri, want) in table {
        check(m, uri, "lambda", &[], "", want);
        // Unsigned requests fall back to the path's API-version prefix.
        check(m, uri, "", &[], "", want);
    }
}

#[test]
fn json_protocol_uses_the_target() {
    let sqs = [
        ("x-amz-target", "AmazonSQS.GetQueueAttributes"),
        ("content-type", "application/x-amz-json-1.0"),
    ];
    check(
        "POST",
        "/",
        "sqs",
        &sqs,
        r#"{"QueueUrl":"http://x/123456789012/q"}"#,
        "sqs/GetQueueAttributes",
    );
    check("POST", "/", "", &sqs, "{}", "sqs/GetQueueAttributes");
    check(
        "POST",
        "/",
        "",
        &[("x-amz-target", "DynamoDB_20120810.PutItem")],
        "{}",
        "dynamodb/PutItem",
    );
}

#[test]
fn query_protocol_uses_action_from_body_or_query_string() {
    let cfn = "Action=DescribeStacks&Version=2010-05-15&StackName=site-dev";
    check(
        "POST",
        "/",
        "cloudformation",
        &[FORM],
        cfn,
        "cloudformation/DescribeStacks",
    );
    check(
        "POST",
        "/",
        "",
        &[FORM],
        cfn,
        "cloudformation/DescribeStacks",
    );
    let ec2 = "Action=RunInstances&Version=2016-11-15&MinCount=1&MaxCount=1&ImageId=ami-1";
    check("POST", "/", "ec2", &[FORM], ec2, "ec2/RunInstances");
    check("POST", "/", "", &[FORM], ec2, "ec2/RunInstances");
    check(
        "POST",
        "/",
        "",
        &[FORM],
        "Action=CreateRole&Version=2010-05-08&RoleName=r",
        "iam/CreateRole",
    );
    check(
        "GET",
        "/?Action=DescribeInstances&Version=2016-11-15",
        "ec2",
        &[],
        "",
        "ec2/DescribeInstances",
    );
    // A form body is only read as parameters when it says it is a form.
    check(
        "POST",
        "/",
        "cloudformation",
        &[],
        "Action=DescribeStacks",
        "cloudformation/Unknown",
    );
    // Older SQS query protocol.
    check(
        "POST",
        "/",
        "sqs",
        &[FORM],
        "Action=CreateQueue&QueueName=q&Version=2012-11-05",
        "sqs/CreateQueue",
    );
}

#[test]
fn s3_rest_paths() {
    type Row<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], &'a str);
    let table: &[Row] = &[
        ("GET", "/", &[], "s3/ListBuckets"),
        ("PUT", "/site-dev", &[], "s3/CreateBucket"),
        ("HEAD", "/site-dev", &[], "s3/HeadBucket"),
        ("DELETE", "/site-dev", &[], "s3/DeleteBucket"),
        (
            "GET",
            "/site-dev?list-type=2&prefix=a%2F",
            &[],
            "s3/ListObjectsV2",
        ),
        ("GET", "/site-dev", &[], "s3/ListObjects"),
        (
            "GET",
            "/site-dev?versions&prefix=a",
            &[],
            "s3/ListObjectVersions",
        ),
        ("GET", "/site-dev?versions=", &[], "s3/ListObjectVersions"),
        ("PUT", "/site-dev?versioning", &[], "s3/PutBucketVersioning"),
        ("GET", "/site-dev?versioning", &[], "s3/GetBucketVersioning"),
        ("PUT", "/site-dev?tagging", &[], "s3/PutBucketTagging"),
        ("GET", "/site-dev?tagging", &[], "s3/GetBucketTagging"),
        ("DELETE", "/site-dev?tagging", &[], "s3/DeleteBucketTagging"),
        ("PUT", "/site-dev?website", &[], "s3/PutBucketWebsite"),
        ("GET", "/site-dev?location", &[], "s3/GetBucketLocation"),
        (
            "PUT",
            "/site-dev?publicAccessBlock",
            &[],
            "s3/PutPublicAccessBlock",
        ),
        ("POST", "/site-dev?delete", &[], "s3/DeleteObjects"),
        // A StaticSite bucket's settings.
        (
            "GET",
            "/site-dev?publicAccessBlock",
            &[],
            "s3/GetPublicAccessBlock",
        ),
        (
            "PUT",
            "/site-dev?ownershipControls",
            &[],
            "s3/PutBucketOwnershipControls",
        ),
        (
            "GET",
            "/site-dev?ownershipControls",
            &[],
            "s3/GetBucketOwnershipControls",
        ),
        ("PUT", "/site-dev?encryption", &[], "s3/PutBucketEncryption"),
        ("GET", "/site-dev?encryption", &[], "s3/GetBucketEncryption"),
        ("PUT", "/site-dev?policy", &[], "s3/PutBucketPolicy"),
        ("GET", "/site-dev?policy", &[], "s3/GetBucketPolicy"),
        (
            "PUT",
            "/site-dev?notification",
            &[],
            "s3/PutBucketNotificationConfiguration",
        ),
        (
            "GET",
            "/site-dev?notification",
            &[],
            "s3/GetBucketNotificationConfiguration",
        ),
        ("PUT", "/site-dev/index.html", &[], "s3/PutObject"),
        (
            "PUT",
            "/site-dev/index.html?x-id=PutObject",
            &[],
            "s3/PutObject",
        ),
        (
            "PUT",
            "/site-dev/a/b.js",
            &[("x-amz-copy-source", "site-dev/a/b.js?versionId=v1")],
            "s3/CopyObject",
        ),
        ("GET", "/site-dev/a/b.js", &[], "s3/GetObject"),
        ("GET", "/site-dev/a/b.js?versionId=v1", &[], "s3/GetObject"),
        ("HEAD", "/site-dev/a/b.js", &[], "s3/HeadObject"),
        (
            "GET",
            "/site-dev/a/b.js?attributes",
            &[],
            "s3/GetObjectAttributes",
        ),
        (
            "PUT",
            "/site-dev/a/b.js?tagging",
            &[],
            "s3/PutObjectTagging",
        ),
        ("DELETE", "/site-dev/a/b.js", &[], "s3/DeleteObject"),
        (
            "POST",
            "/site-dev/big?uploads",
            &[],
            "s3/CreateMultipartUpload",
        ),
        (
            "PUT",
            "/site-dev/big?partNumber=1&uploadId=u",
            &[],
            "s3/UploadPart",
        ),
        (
            "POST",
            "/site-dev/big?uploadId=u",
            &[],
            "s3/CompleteMultipartUpload",
        ),
        (
            "DELETE",
            "/site-dev/big?uploadId=u",
            &[],
            "s3/AbortMultipartUpload",
        ),
    ];
    for (m, uri, headers, want) in table {
        check(m, uri, "s3", headers, "", want);
    }
    // Unsigned, unknown path: S3, like moto.
    check("GET", "/some-bucket/key", "", &[], "", "s3/GetObject");
}

#[test]
fn cloudfront_rest_paths() {
    let table = [
        (
            "POST",
            "/2020-05-31/distribution",
            "cloudfront/CreateDistribution",
        ),
        (
            "POST",
            "/2020-05-31/distribution?WithTags",
            "cloudfront/CreateDistributionWithTags",
        ),
        (
            "GET",
            "/2020-05-31/distribution",
            "cloudfront/ListDistributions",
        ),
        (
            "GET",
            "/2020-05-31/distribution/E2QWRUHEXAMPLE",
            "cloudfront/GetDistribution",
        ),
        (
            "GET",
            "/2020-05-31/distribution/E2QWRUHEXAMPLE/config",
            "cloudfront/GetDistributionConfig",
        ),
        (
            "PUT",
            "/2020-05-31/distribution/E2QWRUHEXAMPLE/config",
            "cloudfront/UpdateDistribution",
        ),
        (
            "DELETE",
            "/2020-05-31/distribution/E2QWRUHEXAMPLE",
            "cloudfront/DeleteDistribution",
        ),
        (
            "POST",
            "/2020-05-31/distribution/E2QWRUHEXAMPLE/invalidation",
            "cloudfront/CreateInvalidation",
        ),
        (
            "GET",
            "/2020-05-31/distribution/E2QWRUHEXAMPLE/invalidation",
            "cloudfront/ListInvalidations",
        ),
        (
            "GET",
            "/2020-05-31/distribution/E2QWRUHEXAMPLE/invalidation/I2J0I21PCUYOIK",
            "cloudfront/GetInvalidation",
        ),
        (
            "GET",
            "/2020-05-31/tagging?Resource=arn%3Aaws%3Acloudfront%3A%3A123456789012%3Adistribution%2FE2",
            "cloudfront/ListTagsForResource",
        ),
        (
            "POST",
            "/2020-05-31/tagging?Operation=Tag&Resource=arn",
            "cloudfront/TagResource",
        ),
        (
            "POST",
            "/2020-05-31/origin-access-control",
            "cloudfront/CreateOriginAccessControl",
        ),
        (
            "GET",
            "/2020-05-31/origin-access-control?MaxItems=100",
            "cloudfront/ListOriginAccessControls",
        ),
        (
            "GET",
            "/2020-05-31/origin-access-control/E1OAC",
            "cloudfront/GetOriginAccessControl",
        ),
    ];
    for (m, uri, want) in table {
        check(m, uri, "cloudfront", &[], "", want);
        check(m, uri, "", &[], "", want);
    }
}

#[test]
fn protocols_follow_the_service() {
    let id = |m: &str, uri: &str, service: &str, extra: &[(&str, &str)]| {
        let mut b = Request::builder()
            .method(m)
            .uri(uri)
            .header("authorization", auth(service));
        for (k, v) in extra {
            b = b.header(*k, *v);
        }
        let req = b.body(()).unwrap();
        identify(req.method(), req.uri(), req.headers(), b"").protocol
    };
    assert_eq!(
        id("GET", "/2015-03-31/functions/", "lambda", &[]),
        Protocol::RestJson
    );
    assert_eq!(id("GET", "/b/k", "s3", &[]), Protocol::S3);
    assert_eq!(
        id("GET", "/2020-05-31/distribution", "cloudfront", &[]),
        Protocol::RestXml
    );
    assert_eq!(
        id("POST", "/?Action=RunInstances", "ec2", &[]),
        Protocol::Ec2Query
    );
    assert_eq!(
        id("POST", "/?Action=DescribeStacks", "cloudformation", &[]),
        Protocol::Query
    );
    assert_eq!(
        id(
            "POST",
            "/",
            "sqs",
            &[("x-amz-target", "AmazonSQS.ListQueues")]
        ),
        Protocol::Json
    );
}
