//! The site bucket's policy: CloudFront (through Origin Access Control) may read objects, for
//! one distribution only — AWS's recommended OAC policy, not the public-read policy of the old
//! scripts. Pure: built and read with `serde_json`, never by string formatting.

use serde_json::{Map, Value, json};

/// The `Sid` of Stagehand's statement: the one statement it writes and replaces; statements
/// other tools put in the same policy are kept.
pub const CLOUDFRONT_READ_SID: &str = "StagehandCloudFrontRead";

const CLOUDFRONT_SERVICE: &str = "cloudfront.amazonaws.com";
const GET_OBJECT: &str = "s3:GetObject";
const SOURCE_ARN: &str = "AWS:SourceArn";

/// A bucket policy Stagehand cannot edit without losing someone's statements.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("the bucket policy is not a JSON object: {0}")]
    NotAnObject(String),
    #[error("the bucket policy's Statement is neither a statement nor a list of them")]
    BadStatements,
}

/// `arn:<partition>:s3:::<bucket>/*`, in the distribution's partition (`aws`, `aws-cn`, ...).
fn objects_arn(bucket: &str, distribution_arn: &str) -> String {
    let partition = distribution_arn.split(':').nth(1).unwrap_or("aws");
    format!("arn:{partition}:s3:::{bucket}/*")
}

/// Stagehand's statement: `s3:GetObject` on every object for `cloudfront.amazonaws.com`, when
/// the request comes from `distribution_arn`.
fn read_statement(bucket: &str, distribution_arn: &str) -> Value {
    json!({
        "Sid": CLOUDFRONT_READ_SID,
        "Effect": "Allow",
        "Principal": { "Service": CLOUDFRONT_SERVICE },
        "Action": GET_OBJECT,
        "Resource": objects_arn(bucket, distribution_arn),
        "Condition": { "StringEquals": { SOURCE_ARN: distribution_arn } },
    })
}

/// The statements of a policy document (one statement or a list).
fn statements(policy: &Map<String, Value>) -> Result<Vec<Value>, PolicyError> {
    match policy.get("Statement") {
        None => Ok(Vec::new()),
        Some(Value::Array(list)) => Ok(list.clone()),
        Some(one @ Value::Object(_)) => Ok(vec![one.clone()]),
        Some(_) => Err(PolicyError::BadStatements),
    }
}

fn parse(policy: &str) -> Result<Map<String, Value>, PolicyError> {
    match serde_json::from_str::<Value>(policy) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(PolicyError::NotAnObject(format!("found {other}"))),
        Err(err) => Err(PolicyError::NotAnObject(err.to_string())),
    }
}

/// The policy to put: `existing` (if any) with Stagehand's statement added or replaced and
/// every other statement kept as it was.
pub fn cloudfront_read_policy(
    existing: Option<&str>,
    bucket: &str,
    distribution_arn: &str,
) -> Result<String, PolicyError> {
    let mut policy = match existing {
        Some(text) => parse(text)?,
        None => Map::new(),
    };
    let mut kept: Vec<Value> = statements(&policy)?
        .into_iter()
        .filter(|s| s.get("Sid").and_then(Value::as_str) != Some(CLOUDFRONT_READ_SID))
        .collect();
    kept.push(read_statement(bucket, distribution_arn));
    policy.insert("Version".to_owned(), json!("2012-10-17"));
    policy.insert("Statement".to_owned(), Value::Array(kept));
    Ok(Value::Object(policy).to_string())
}

/// `value` is `wanted` or a list holding it (IAM accepts both forms).
fn names(value: Option<&Value>, wanted: &str) -> bool {
    match value {
        Some(Value::String(s)) => s == wanted,
        Some(Value::Array(list)) => list.iter().any(|v| v.as_str() == Some(wanted)),
        _ => false,
    }
}

/// Whether `policy` lets CloudFront read the bucket's objects for `distribution_arn`, and only
/// under that condition (a statement without the `AWS:SourceArn` condition would let every
/// distribution read the bucket: it does not count).
pub fn grants_cloudfront(policy: &str, bucket: &str, distribution_arn: &str) -> bool {
    let Ok(policy) = parse(policy) else {
        return false;
    };
    let resource = objects_arn(bucket, distribution_arn);
    statements(&policy).unwrap_or_default().iter().any(|s| {
        s.get("Effect").and_then(Value::as_str) == Some("Allow")
            && names(
                s.get("Principal").and_then(|p| p.get("Service")),
                CLOUDFRONT_SERVICE,
            )
            && names(s.get("Action"), GET_OBJECT)
            && names(s.get("Resource"), &resource)
            && names(
                s.get("Condition")
                    .and_then(|c| c.get("StringEquals"))
                    .and_then(|c| c.get(SOURCE_ARN)),
                distribution_arn,
            )
    })
}
