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
mod tests;
