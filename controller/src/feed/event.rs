//! What arrives on an event queue, parsed strictly: the EventBridge envelope, then the detail
//! shape its `source` and `detail-type` announce. Pure: no I/O, no clock.
//!
//! Strict means every field Stagehand reads must be present with the type AWS documents, the
//! envelope's `version` must be `"0"` and its `time` a timestamp; a body that fails any of it is
//! [`ParseError::Unparsable`] (deleted, counted, logged: a retry cannot make it parse). Fields AWS
//! adds to a detail later are ignored, so a new field never turns every event into garbage. A
//! well-formed envelope of a kind this build does not know is [`ParseError::UnknownKind`]
//! (deleted and counted too: a rule sending more than the template's is a setup to fix, not a
//! message to retry).
//!
//! Beyond EC2: S3 `Object Created` (a new build of an artifact or site source), CloudTrail's
//! `AWS API Call via CloudTrail` for writes to Lambda, S3 and CloudFront (a hand change to
//! watch for, parsed in [`api_call`]), and the template's heartbeat, an EventBridge schedule
//! (`Scheduled Event`) that proves the queue still receives events when nothing changes.

use jiff::Timestamp;
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// EventBridge's envelope around every event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    /// Unique per event: duplicates (SQS delivers at least once) share it.
    pub id: String,
    pub source: String,
    pub detail_type: String,
    pub account: String,
    pub region: String,
    pub time: Timestamp,
    /// ARNs (or, for AWS Health, plain ids) of what the event is about.
    pub resources: Vec<String>,
}

/// One event: its envelope and its parsed detail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub envelope: Envelope,
    pub detail: Detail,
}

/// The detail shapes this build understands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Detail {
    /// `aws.ec2` / `EC2 Spot Instance Interruption Warning`: EC2 takes the instance in about two
    /// minutes.
    SpotInterruptionWarning {
        instance_id: String,
        /// `terminate`, `stop` or `hibernate`.
        action: String,
    },
    /// `aws.ec2` / `EC2 Instance Rebalance Recommendation`: elevated risk of interruption.
    RebalanceRecommendation { instance_id: String },
    /// `aws.ec2` / `EC2 Instance State-change Notification`.
    StateChange {
        instance_id: String,
        state: InstanceState,
    },
    /// `aws.health` / `AWS Health Event`.
    Health {
        /// `EC2`, `LAMBDA`, ...
        service: String,
        /// e.g. `AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED`.
        event_type_code: String,
        /// `issue`, `accountNotification` or `scheduledChange`.
        category: String,
        /// The instances it names (affected entities and resources that are instance ids).
        instance_ids: Vec<String>,
    },
    /// `aws.s3` / `Object Created` (EventBridge notifications enabled on the bucket).
    ObjectCreated { bucket: String, key: String },
    /// `aws.s3` / `Object Deleted`: an object deleted, or a delete marker put on it (same
    /// notifications). On a site's own bucket, a hand delete of a live file.
    ObjectDeleted { bucket: String, key: String },
    /// `aws.lambda`, `aws.s3`, `aws.cloudfront` / `AWS API Call via CloudTrail`.
    ApiCall(ApiCall),
    /// `aws.events` / `Scheduled Event`: the template's heartbeat rule firing. Proof of life only.
    Heartbeat,
}

pub use self::api_call::{ApiCall, ApiResource, ApiService};

/// The states of `EC2 Instance State-change Notification`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InstanceState {
    Pending,
    Running,
    Stopping,
    Stopped,
    ShuttingDown,
    Terminated,
}

impl InstanceState {
    /// The instance stops serving: its owner's listing of the region is stale and its owner
    /// must look now (a hand stop, a spot stop, a termination by anyone).
    pub const fn stops_serving(self) -> bool {
        matches!(
            self,
            Self::Stopping | Self::Stopped | Self::ShuttingDown | Self::Terminated
        )
    }
}

/// Why a message is not an event this build handles.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Not an EventBridge event, or one whose detail does not have its documented shape.
    #[error("unparsable event: {0}")]
    Unparsable(String),
    /// A well-formed event of a kind this build does not handle.
    #[error("unknown event kind {event_source:?} / {detail_type:?}")]
    UnknownKind {
        event_source: String,
        detail_type: String,
    },
}

/// The envelope as sent: every field required.
#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct RawEnvelope {
    version: String,
    id: String,
    detail_type: String,
    source: String,
    account: String,
    time: String,
    region: String,
    resources: Vec<String>,
    detail: serde_json::Value,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct InterruptionDetail {
    instance_id: String,
    instance_action: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct RebalanceDetail {
    instance_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct StateChangeDetail {
    instance_id: String,
    state: InstanceState,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HealthDetail {
    service: String,
    event_type_code: String,
    event_type_category: String,
    #[serde(default)]
    affected_entities: Vec<AffectedEntity>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AffectedEntity {
    entity_value: String,
}

/// `aws.s3` / `Object Created` and `Object Deleted`: the fields read (size, ETag, sequencer
/// and the rest are not: the reconcile reads the bucket itself).
#[derive(Deserialize)]
struct ObjectDetail {
    bucket: NamedBucket,
    object: NamedObject,
}

#[derive(Deserialize)]
struct NamedBucket {
    name: String,
}

#[derive(Deserialize)]
struct NamedObject {
    key: String,
}

/// Parses one message body.
pub fn parse(body: &str) -> Result<Event, ParseError> {
    let raw: RawEnvelope = serde_json::from_str(body)
        .map_err(|e| ParseError::Unparsable(format!("not an EventBridge envelope: {e}")))?;
    let envelope = envelope(&raw)?;
    let detail = match (raw.source.as_str(), raw.detail_type.as_str()) {
        ("aws.ec2", "EC2 Spot Instance Interruption Warning") => {
            let d: InterruptionDetail = detail_of(raw.detail)?;
            Detail::SpotInterruptionWarning {
                instance_id: instance_id(d.instance_id)?,
                action: d.instance_action,
            }
        }
        ("aws.ec2", "EC2 Instance Rebalance Recommendation") => {
            let d: RebalanceDetail = detail_of(raw.detail)?;
            Detail::RebalanceRecommendation {
                instance_id: instance_id(d.instance_id)?,
            }
        }
        ("aws.ec2", "EC2 Instance State-change Notification") => {
            let d: StateChangeDetail = detail_of(raw.detail)?;
            Detail::StateChange {
                instance_id: instance_id(d.instance_id)?,
                state: d.state,
            }
        }
        ("aws.health", "AWS Health Event") => {
            let d: HealthDetail = detail_of(raw.detail)?;
            let mut instance_ids: Vec<String> = d
                .affected_entities
                .into_iter()
                .map(|e| e.entity_value)
                .chain(envelope.resources.iter().cloned())
                .filter(|value| is_instance_id(value))
                .collect();
            instance_ids.sort();
            instance_ids.dedup();
            Detail::Health {
                service: d.service,
                event_type_code: d.event_type_code,
                category: d.event_type_category,
                instance_ids,
            }
        }
        ("aws.s3", detail_type @ ("Object Created" | "Object Deleted")) => {
            let d: ObjectDetail = detail_of(raw.detail)?;
            if d.bucket.name.is_empty() || d.object.key.is_empty() {
                return Err(ParseError::Unparsable(format!(
                    "{detail_type} without a bucket name or key"
                )));
            }
            let (bucket, key) = (d.bucket.name, d.object.key);
            if detail_type == "Object Created" {
                Detail::ObjectCreated { bucket, key }
            } else {
                Detail::ObjectDeleted { bucket, key }
            }
        }
        ("aws.lambda" | "aws.s3" | "aws.cloudfront", api_call::DETAIL_TYPE) => {
            Detail::ApiCall(api_call::parse(&raw.source, raw.detail)?)
        }
        ("aws.events", "Scheduled Event") => Detail::Heartbeat,
        _ => {
            return Err(ParseError::UnknownKind {
                event_source: raw.source,
                detail_type: raw.detail_type,
            });
        }
    };
    Ok(Event { envelope, detail })
}

fn envelope(raw: &RawEnvelope) -> Result<Envelope, ParseError> {
    if raw.version != "0" {
        return Err(ParseError::Unparsable(format!(
            "envelope version {:?}, expected \"0\"",
            raw.version
        )));
    }
    for (field, value) in [
        ("id", &raw.id),
        ("source", &raw.source),
        ("detail-type", &raw.detail_type),
        ("region", &raw.region),
    ] {
        if value.is_empty() {
            return Err(ParseError::Unparsable(format!("empty {field}")));
        }
    }
    let time = raw
        .time
        .parse::<Timestamp>()
        .map_err(|e| ParseError::Unparsable(format!("time {:?}: {e}", raw.time)))?;
    Ok(Envelope {
        id: raw.id.clone(),
        source: raw.source.clone(),
        detail_type: raw.detail_type.clone(),
        account: raw.account.clone(),
        region: raw.region.clone(),
        time,
        resources: raw.resources.clone(),
    })
}

fn detail_of<T: DeserializeOwned>(detail: serde_json::Value) -> Result<T, ParseError> {
    serde_json::from_value(detail).map_err(|e| ParseError::Unparsable(format!("detail: {e}")))
}

/// `i-` and 8 or 17 hex digits, as EC2 names instances.
fn is_instance_id(value: &str) -> bool {
    value.strip_prefix("i-").is_some_and(|hex| {
        matches!(hex.len(), 8 | 17) && hex.chars().all(|c| c.is_ascii_hexdigit())
    })
}

fn instance_id(value: String) -> Result<String, ParseError> {
    if is_instance_id(&value) {
        Ok(value)
    } else {
        Err(ParseError::Unparsable(format!(
            "instance-id {value:?} is not an EC2 instance id"
        )))
    }
}

mod api_call;
#[cfg(test)]
pub(crate) mod tests;
