//! Which AWS service and operation an HTTP request is — from the wire alone, no I/O.
//!
//! Service: the SigV4 credential scope in `Authorization` (`Credential=AKID/DATE/REGION/SERVICE/aws4_request`),
//! else (unsigned requests) `X-Amz-Target`'s prefix, the path's API-version prefix (Lambda, CloudFront),
//! the query protocol's `Version=`, and finally S3 (as moto does).
//!
//! Operation, by protocol:
//! - JSON protocols (SQS, and every other `X-Amz-Target` service): the part after the last `.`;
//! - query protocols (EC2, CloudFormation, IAM, STS, older SQS): `Action=` in the query string or the
//!   form-encoded body;
//! - REST: Lambda and CloudFront by method + path shape, S3 by method + path depth + sub-resource query
//!   keys (`?versions`, `?list-type=2`, `?tagging`, ...), preferring the Rust SDK's own `x-id=` hint.
//!
//! Unrecognised shapes are reported as operation `Unknown` (still counted, still matchable by service).

use hyper::http::{HeaderMap, Method, Uri};

/// The wire protocol a request uses; it decides how an injected error is rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Protocol {
    /// `awsJson1_0` / `awsJson1_1` (`X-Amz-Target`), e.g. SQS, DynamoDB.
    Json,
    /// `awsQuery` (`Action=`), e.g. CloudFormation, IAM, STS, older SQS.
    Query,
    /// `ec2Query`.
    Ec2Query,
    /// `restJson1`, e.g. Lambda.
    RestJson,
    /// `restXml` with `<ErrorResponse>` wrapping, e.g. CloudFront.
    RestXml,
    /// S3's `restXml` (unwrapped `<Error>`).
    S3,
}

/// What the proxy identified a request as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallId {
    /// Signing name of the service: `lambda`, `sqs`, `s3`, `cloudformation`, `ec2`, `cloudfront`, `iam`, ...
    pub service: String,
    /// Operation name as in the API reference: `CreateFunction`, `GetQueueAttributes`, `ListObjectsV2`, ...
    pub operation: String,
    pub protocol: Protocol,
}

impl CallId {
    /// `service/operation`, the key used in the call counts.
    pub fn key(&self) -> String {
        format!("{}/{}", self.service, self.operation)
    }
}

const UNKNOWN: &str = "Unknown";

/// Identifies a request. `body` is the full request body (used for the query protocol's `Action=`).
pub fn identify(method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> CallId {
    let path = uri.path();
    let query = uri.query().unwrap_or("");
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let target = header("x-amz-target");
    let form_body = header("content-type")
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
    let param = |name: &str| {
        query_param(query, name).or_else(|| {
            if form_body {
                query_param(&String::from_utf8_lossy(body), name)
            } else {
                None
            }
        })
    };
    let action = param("Action");

    let service = header("authorization")
        .and_then(signing_service)
        .or_else(|| target.map(service_from_target))
        .or_else(|| service_from_path(path).map(str::to_owned))
        .or_else(|| {
            action.as_ref()?;
            Some(service_from_version(param("Version").as_deref()).to_owned())
        })
        .unwrap_or_else(|| "s3".to_owned());

    if let Some(target) = target {
        let operation = target.rsplit('.').next().unwrap_or(UNKNOWN).to_owned();
        return CallId {
            service,
            operation,
            protocol: Protocol::Json,
        };
    }
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let (operation, protocol) = match service.as_str() {
        "lambda" => (lambda_operation(method, &segments), Protocol::RestJson),
        "cloudfront" => (
            cloudfront_operation(method, &segments, query),
            Protocol::RestXml,
        ),
        "s3" => (
            s3_operation(method, &segments, query, headers),
            Protocol::S3,
        ),
        "ec2" => (
            action.unwrap_or_else(|| UNKNOWN.to_owned()),
            Protocol::Ec2Query,
        ),
        _ => (
            action.unwrap_or_else(|| UNKNOWN.to_owned()),
            Protocol::Query,
        ),
    };
    CallId {
        service,
        operation,
        protocol,
    }
}

/// The service of a SigV4 `Authorization` header's credential scope, lower-cased.
pub fn signing_service(authorization: &str) -> Option<String> {
    let credential = authorization.split("Credential=").nth(1)?;
    let scope = credential.split([',', ' ']).next()?;
    // AKID/DATE/REGION/SERVICE/aws4_request
    let parts: Vec<&str> = scope.split('/').collect();
    if parts.len() == 5 && parts[4] == "aws4_request" && !parts[3].is_empty() {
        Some(parts[3].to_ascii_lowercase())
    } else {
        None
    }
}

fn service_from_target(target: &str) -> String {
    let prefix = target.split('.').next().unwrap_or(target);
    match prefix {
        "AmazonSQS" => "sqs".to_owned(),
        "AWSEvents" => "events".to_owned(),
        "Logs_20140328" => "logs".to_owned(),
        p if p.starts_with("DynamoDB") => "dynamodb".to_owned(),
        p if p.starts_with("AWSStepFunctions") => "states".to_owned(),
        p => p
            .split('_')
            .next()
            .unwrap_or(p)
            .trim_start_matches("Amazon")
            .trim_start_matches("AWS")
            .to_ascii_lowercase(),
    }
}

fn service_from_path(path: &str) -> Option<&'static str> {
    const LAMBDA: &[&str] = &[
        "/2015-03-31/",
        "/2016-08-19/",
        "/2017-03-31/",
        "/2017-10-31/",
        "/2018-10-31/",
        "/2019-09-25/",
        "/2019-09-30/",
        "/2020-06-30/",
        "/2021-10-31/",
    ];
    if path.starts_with("/2020-05-31/") {
        Some("cloudfront")
    } else if LAMBDA.iter().any(|p| path.starts_with(p)) {
        Some("lambda")
    } else {
        None
    }
}

fn service_from_version(version: Option<&str>) -> &'static str {
    match version {
        Some("2016-11-15") => "ec2",
        Some("2010-05-15") => "cloudformation",
        Some("2010-05-08") => "iam",
        Some("2011-06-15") => "sts",
        Some("2012-11-05") => "sqs",
        Some("2010-03-31") => "sns",
        _ => "query",
    }
}

/// The first value of `name` in a URL-encoded query string or form body.
pub fn query_param(query: &str, name: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn has_key(query: &str, name: &str) -> bool {
    form_urlencoded::parse(query.as_bytes()).any(|(k, _)| k == name)
}

fn op(name: &str) -> String {
    name.to_owned()
}

fn lambda_operation(method: &Method, segments: &[&str]) -> String {
    let m = method.as_str();
    // segments[0] is the API version date.
    let rest = segments.get(1..).unwrap_or_default();
    let name = match (m, rest) {
        ("GET", ["functions"]) => "ListFunctions",
        ("POST", ["functions"]) => "CreateFunction",
        ("GET", ["functions", _]) => "GetFunction",
        ("DELETE", ["functions", _]) => "DeleteFunction",
        ("PUT", ["functions", _, "code"]) => "UpdateFunctionCode",
        ("GET", ["functions", _, "configuration"]) => "GetFunctionConfiguration",
        ("PUT", ["functions", _, "configuration"]) => "UpdateFunctionConfiguration",
        ("GET", ["functions", _, "versions"]) => "ListVersionsByFunction",
        ("POST", ["functions", _, "versions"]) => "PublishVersion",
        ("GET", ["functions", _, "aliases"]) => "ListAliases",
        ("POST", ["functions", _, "aliases"]) => "CreateAlias",
        ("GET", ["functions", _, "aliases", _]) => "GetAlias",
        ("PUT", ["functions", _, "aliases", _]) => "UpdateAlias",
        ("DELETE", ["functions", _, "aliases", _]) => "DeleteAlias",
        ("POST", ["functions", _, "invocations"]) => "Invoke",
        ("GET", ["functions", _, "policy"]) => "GetPolicy",
        ("POST", ["functions", _, "policy"]) => "AddPermission",
        ("DELETE", ["functions", _, "policy", _]) => "RemovePermission",
        ("PUT", ["functions", _, "concurrency"]) => "PutFunctionConcurrency",
        ("DELETE", ["functions", _, "concurrency"]) => "DeleteFunctionConcurrency",
        ("GET", ["functions", _, "concurrency"]) => "GetFunctionConcurrency",
        ("GET", ["functions", _, "url"]) => "GetFunctionUrlConfig",
        ("POST", ["functions", _, "url"]) => "CreateFunctionUrlConfig",
        ("PUT", ["functions", _, "url"]) => "UpdateFunctionUrlConfig",
        ("DELETE", ["functions", _, "url"]) => "DeleteFunctionUrlConfig",
        ("GET", ["event-source-mappings"]) => "ListEventSourceMappings",
        ("POST", ["event-source-mappings"]) => "CreateEventSourceMapping",
        ("GET", ["event-source-mappings", _]) => "GetEventSourceMapping",
        ("PUT", ["event-source-mappings", _]) => "UpdateEventSourceMapping",
        ("DELETE", ["event-source-mappings", _]) => "DeleteEventSourceMapping",
        ("GET", ["tags", _]) => "ListTags",
        ("POST", ["tags", _]) => "TagResource",
        ("DELETE", ["tags", _]) => "UntagResource",
        ("GET", ["layers"]) => "ListLayers",
        ("GET", ["layers", _, "versions"]) => "ListLayerVersions",
        ("POST", ["layers", _, "versions"]) => "PublishLayerVersion",
        ("GET", ["layers", _, "versions", _]) => "GetLayerVersion",
        ("DELETE", ["layers", _, "versions", _]) => "DeleteLayerVersion",
        ("GET", ["account-settings"]) => "GetAccountSettings",
        _ => UNKNOWN,
    };
    op(name)
}

fn cloudfront_operation(method: &Method, segments: &[&str], query: &str) -> String {
    let m = method.as_str();
    let rest = segments.get(1..).unwrap_or_default();
    let name = match (m, rest) {
        ("POST", ["distribution"]) if has_key(query, "WithTags") => "CreateDistributionWithTags",
        ("POST", ["distribution"]) => "CreateDistribution",
        ("GET", ["distribution"]) => "ListDistributions",
        ("GET", ["distribution", _]) => "GetDistribution",
        ("DELETE", ["distribution", _]) => "DeleteDistribution",
        ("GET", ["distribution", _, "config"]) => "GetDistributionConfig",
        ("PUT", ["distribution", _, "config"]) => "UpdateDistribution",
        ("POST", ["distribution", _, "invalidation"]) => "CreateInvalidation",
        ("GET", ["distribution", _, "invalidation"]) => "ListInvalidations",
        ("GET", ["distribution", _, "invalidation", _]) => "GetInvalidation",
        ("GET", ["tagging"]) => "ListTagsForResource",
        ("POST", ["tagging"]) => match query_param(query, "Operation").as_deref() {
            Some("Tag") => "TagResource",
            Some("Untag") => "UntagResource",
            _ => UNKNOWN,
        },
        ("POST", ["origin-access-control"]) => "CreateOriginAccessControl",
        ("GET", ["origin-access-control"]) => "ListOriginAccessControls",
        ("GET", ["origin-access-control", _]) => "GetOriginAccessControl",
        ("DELETE", ["origin-access-control", _]) => "DeleteOriginAccessControl",
        ("GET", ["origin-access-control", _, "config"]) => "GetOriginAccessControlConfig",
        ("PUT", ["origin-access-control", _, "config"]) => "UpdateOriginAccessControl",
        _ => UNKNOWN,
    };
    op(name)
}

/// Bucket sub-resources: (query key, name inside Get/Put/Delete`Bucket<Name>`).
const BUCKET_SUBRESOURCES: &[(&str, &str)] = &[
    ("versioning", "Versioning"),
    ("tagging", "Tagging"),
    ("website", "Website"),
    ("policy", "Policy"),
    ("cors", "Cors"),
    ("lifecycle", "LifecycleConfiguration"),
    ("acl", "Acl"),
    ("encryption", "Encryption"),
    ("notification", "NotificationConfiguration"),
    ("ownershipControls", "OwnershipControls"),
    ("logging", "Logging"),
    ("replication", "Replication"),
    ("accelerate", "AccelerateConfiguration"),
    ("location", "Location"),
];

fn s3_operation(method: &Method, segments: &[&str], query: &str, headers: &HeaderMap) -> String {
    // The Rust SDK (and others) add `x-id=<Operation>` where the shape alone is ambiguous.
    if let Some(x_id) = query_param(query, "x-id") {
        return x_id;
    }
    let m = method.as_str();
    let q = |k: &str| has_key(query, k);
    match segments.len() {
        0 => op(if m == "GET" { "ListBuckets" } else { UNKNOWN }),
        1 => {
            if q("publicAccessBlock") {
                return format!("{}PublicAccessBlock", verb(m));
            }
            if let Some((_, name)) = BUCKET_SUBRESOURCES.iter().find(|(k, _)| q(k)) {
                return format!("{}Bucket{name}", verb(m));
            }
            let name = match m {
                "GET" if q("versions") => "ListObjectVersions",
                "GET" if q("uploads") => "ListMultipartUploads",
                "GET" if query_param(query, "list-type").as_deref() == Some("2") => "ListObjectsV2",
                "GET" => "ListObjects",
                "PUT" => "CreateBucket",
                "HEAD" => "HeadBucket",
                "DELETE" => "DeleteBucket",
                "POST" if q("delete") => "DeleteObjects",
                _ => UNKNOWN,
            };
            op(name)
        }
        _ => {
            let copy = headers.contains_key("x-amz-copy-source");
            let name = match m {
                "PUT" if q("tagging") => "PutObjectTagging",
                "PUT" if q("acl") => "PutObjectAcl",
                "PUT" if q("partNumber") && copy => "UploadPartCopy",
                "PUT" if q("partNumber") => "UploadPart",
                "PUT" if copy => "CopyObject",
                "PUT" => "PutObject",
                "GET" if q("attributes") => "GetObjectAttributes",
                "GET" if q("tagging") => "GetObjectTagging",
                "GET" if q("acl") => "GetObjectAcl",
                "GET" if q("uploadId") => "ListParts",
                "GET" => "GetObject",
                "HEAD" => "HeadObject",
                "DELETE" if q("uploadId") => "AbortMultipartUpload",
                "DELETE" if q("tagging") => "DeleteObjectTagging",
                "DELETE" => "DeleteObject",
                "POST" if q("uploads") => "CreateMultipartUpload",
                "POST" if q("uploadId") => "CompleteMultipartUpload",
                "POST" if q("restore") => "RestoreObject",
                _ => UNKNOWN,
            };
            op(name)
        }
    }
}

fn verb(method: &str) -> &'static str {
    match method {
        "PUT" => "Put",
        "DELETE" => "Delete",
        _ => "Get",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::http::Request;

    fn auth(service: &str) -> String {
        format!(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261125/us-east-1/{service}/aws4_request, \
             SignedHeaders=host;x-amz-date, Signature=0123abcd"
        )
    }

    /// (method, path?query, signing service or "", extra headers, body) → expected service/operation.
    fn check(
        method: &str,
        uri: &str,
        service: &str,
        extra: &[(&str, &str)],
        body: &str,
        want: &str,
    ) {
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
}
