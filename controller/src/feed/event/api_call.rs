//! CloudTrail's `AWS API Call via CloudTrail` detail, for the services whose writes Stagehand
//! watches: Lambda (functions, aliases, event-source mappings, tags), S3 (the buckets sites
//! serve from) and CloudFront (their distributions). Pure.
//!
//! What is read: which service, which API (`eventName`, with the API version Lambda appends —
//! `UpdateAlias20150331`, `UpdateFunctionCode20150331v2` — cut off), who called it
//! (`userIdentity.arn`, so Stagehand's own writes can be told apart), whether it failed
//! (`errorCode`: nothing changed), and which resource it touched, from `requestParameters`
//! (and, for a mapping's function, `responseElements`). Read-only calls never reach the queue
//! (the template's rule matches writes only) but parse the same.
//!
//! Creations matter as much as changes: while the feed is healthy the region-wide listings are
//! trusted for the feed backstop, so a function created by hand (`CreateFunction`, which may
//! fall under a stage's `functionSelector`), a mapping made by hand (`CreateEventSourceMapping`,
//! whose id only its response carries) and a layer version published or deleted
//! (`PublishLayerVersion`, `DeleteLayerVersion`, by `layerName`) must each name what they
//! touched.

use serde::Deserialize;

use super::{ParseError, detail_of};
use crate::aws::lambda::function_name_of_arn;
use crate::inventory::lambda::layer_name;

/// The `detail-type` of every CloudTrail event.
pub const DETAIL_TYPE: &str = "AWS API Call via CloudTrail";

/// The services whose API calls are watched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApiService {
    Lambda,
    S3,
    CloudFront,
}

impl ApiService {
    /// The service of an envelope `source`, with the `eventSource` CloudTrail records for it.
    fn of_source(source: &str) -> Option<(Self, &'static str)> {
        match source {
            "aws.lambda" => Some((Self::Lambda, "lambda.amazonaws.com")),
            "aws.s3" => Some((Self::S3, "s3.amazonaws.com")),
            "aws.cloudfront" => Some((Self::CloudFront, "cloudfront.amazonaws.com")),
            _ => None,
        }
    }
}

/// What a call touched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApiResource {
    /// A Lambda function (or one of its aliases, versions, tags), by name.
    Function(String),
    /// An event-source mapping, with its function when the event says it.
    Mapping {
        uuid: String,
        function: Option<String>,
    },
    /// A Lambda layer (a version published or deleted), by name.
    Layer(String),
    Bucket(String),
    Distribution(String),
}

/// One recorded API call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiCall {
    pub service: ApiService,
    /// The API, without the version suffix Lambda's event names carry (`UpdateAlias`).
    pub action: String,
    /// `userIdentity.arn`; AWS services acting on their own have none.
    pub caller: Option<String>,
    /// `awsRegion`: where the call was made.
    pub region: String,
    /// The call failed (`errorCode`): it changed nothing.
    pub failed: bool,
    /// `None` when the parameters name nothing Stagehand maps (a `ListFunctions`, a
    /// `CreateBucket` of a name nobody declared is still a bucket, and so on).
    pub resource: Option<ApiResource>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawApiCall {
    event_source: String,
    event_name: String,
    aws_region: String,
    user_identity: UserIdentity,
    #[serde(default)]
    error_code: Option<String>,
    /// `null` for calls without parameters.
    #[serde(default)]
    request_parameters: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    response_elements: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Deserialize)]
struct UserIdentity {
    #[serde(default)]
    arn: Option<String>,
}

/// Parses the detail of a CloudTrail event whose envelope `source` is `source`.
pub(super) fn parse(source: &str, detail: serde_json::Value) -> Result<ApiCall, ParseError> {
    let raw: RawApiCall = detail_of(detail)?;
    let Some((service, event_source)) = ApiService::of_source(source) else {
        return Err(ParseError::Unparsable(format!(
            "CloudTrail event from {source:?}"
        )));
    };
    if raw.event_source != event_source {
        return Err(ParseError::Unparsable(format!(
            "eventSource {:?} in an event from {source}",
            raw.event_source
        )));
    }
    let action = api_name(&raw.event_name);
    if action.is_empty() || raw.aws_region.is_empty() {
        return Err(ParseError::Unparsable(
            "CloudTrail event without eventName or awsRegion".into(),
        ));
    }
    let empty = serde_json::Map::new();
    let request = raw.request_parameters.as_ref().unwrap_or(&empty);
    let response = raw.response_elements.as_ref().unwrap_or(&empty);
    let resource = match service {
        ApiService::Lambda => lambda_resource(request, response),
        ApiService::S3 => text(request, "bucketName").map(ApiResource::Bucket),
        ApiService::CloudFront => text(request, "id")
            .or_else(|| text(request, "distributionId"))
            .map(ApiResource::Distribution),
    };
    Ok(ApiCall {
        service,
        action: action.to_owned(),
        caller: raw.user_identity.arn.filter(|arn| !arn.is_empty()),
        region: raw.aws_region,
        failed: raw.error_code.is_some(),
        resource,
    })
}

/// `UpdateFunctionCode20150331v2` → `UpdateFunctionCode`: the name up to its first digit.
fn api_name(event_name: &str) -> &str {
    event_name
        .find(|c: char| c.is_ascii_digit())
        .map_or(event_name, |at| &event_name[..at])
}

fn text(fields: &serde_json::Map<String, serde_json::Value>, name: &str) -> Option<String> {
    fields
        .get(name)
        .and_then(serde_json::Value::as_str)
        .filter(|value| !value.is_empty())
        .map(str::to_owned)
}

/// A function's name from what a call names it by: a name, a full or partial ARN, with or
/// without a qualifier (`shop-api:live`).
fn function_name(reference: &str) -> String {
    let name = function_name_of_arn(reference);
    name.split(':').next().unwrap_or(name).to_owned()
}

fn lambda_resource(
    request: &serde_json::Map<String, serde_json::Value>,
    response: &serde_json::Map<String, serde_json::Value>,
) -> Option<ApiResource> {
    // CloudTrail records the mapping's id as `uUID` (the API's `UUID`, camel-cased); a new
    // mapping's id is in the response only. Tags of a mapping name it by ARN.
    let tagged_mapping = text(request, "resource").and_then(|arn| {
        arn.split_once(":event-source-mapping:")
            .map(|(_, uuid)| uuid.to_owned())
    });
    if let Some(uuid) = text(request, "uUID")
        .or_else(|| text(request, "uuid"))
        .or(tagged_mapping)
        .or_else(|| text(response, "uUID"))
    {
        let function = text(response, "functionArn")
            .or_else(|| text(request, "functionName"))
            .map(|arn| function_name(&arn));
        return Some(ApiResource::Mapping { uuid, function });
    }
    if let Some(layer) = text(request, "layerName").or_else(|| text(response, "layerArn")) {
        return Some(ApiResource::Layer(layer_name(&layer).to_owned()));
    }
    text(request, "functionName")
        .or_else(|| text(request, "resource"))
        .or_else(|| text(response, "functionArn"))
        .map(|reference| ApiResource::Function(function_name(&reference)))
}
