//! Fault rules: which calls they match, when they fire, and what they do — rendered in each
//! service's own wire format. Pure (no I/O): the proxy asks [`FaultSet::decide`] per request and
//! applies [`Rewrite`]s to moto's responses.
//!
//! A rule (JSON, as posted to `$ADMIN/faults`):
//! ```json
//! { "service": "lambda", "operation": "UpdateFunctionCode", "resource": "api-dev",
//!   "action": { "kind": "throttle" },
//!   "times": 2, "skip": 0, "probability": 0.5, "seed": 7 }
//! ```
//! - `service` / `operation`: exact, case-insensitive; absent = any (rewrite actions default to the
//!   operation they are meant for, see [`FaultAction`]).
//! - `resource`: substring of the request's path + query (raw or percent-decoded) or body.
//! - `skip`: let the first N matching calls through untouched.
//! - `probability` (default 1): each matching call fires with this probability, drawn from a
//!   per-rule RNG seeded with `seed` (random and reported in the listing when absent), so a given
//!   seed and call sequence always give the same decisions.
//! - `times`: fire for the next N matching calls, then stay listed as exhausted; absent = always.
//!
//! Per request, rules are evaluated in the order they were added: `latency` rules add their delay
//! and evaluation continues; the first `throttle` / `error` / `reset` that fires ends the request
//! (later rules are not consulted); rewrite rules that fire edit moto's successful response.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::Duration;

use bytes::Bytes;
use hyper::http::{HeaderValue, StatusCode};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use super::addresses::{self, SharedBook};
use super::bad_answers;
use super::classify::{CallId, Protocol};

/// A fault rule. See the module docs for the JSON form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    pub action: FaultAction,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub times: Option<u64>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub skip: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probability: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference
fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// What a rule does when it fires.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaultAction {
    /// The service's own throttling error: Lambda `TooManyRequestsException` (429), EC2
    /// `RequestLimitExceeded` (503), S3 `SlowDown` (503), SQS JSON `RequestThrottled` (400, with
    /// the query-compatible `x-amzn-query-error` header), CloudFormation/IAM/STS/CloudFront
    /// `Throttling` (400), other JSON services `ThrottlingException` (400). `code`/`message`
    /// override the defaults.
    Throttle {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
    /// An HTTP error `status`. With `plain: true` the body is empty; otherwise it is the
    /// service's error format with `code` (default `InternalFailure`/`InternalError` for 500,
    /// `ServiceUnavailable` for 503, `HttpStatus<N>` otherwise).
    Error {
        status: u16,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        plain: bool,
    },
    /// Delay the call by `ms` before it is forwarded (or failed by a later rule).
    Latency { ms: u64 },
    /// Drop the client's connection with a TCP reset, without a response.
    Reset,
    /// CloudFormation `DescribeStacks` (default operation): set every `<StackStatus>` to `status`
    /// and `<StackStatusReason>` to `reason`.
    StackStatus {
        status: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// Lambda `GetFunction` / `GetFunctionConfiguration` / `ListFunctions` (default operations):
    /// set `LastUpdateStatus` (and optionally `LastUpdateStatusReason`, `State`). On
    /// `ListFunctions` the rule's `resource` is not matched against the request (which names no
    /// function) but selects the listed functions to edit (`FunctionName` or `FunctionArn`
    /// containing it; every function when absent); each listing counts as one read.
    LambdaStatus {
        last_update_status: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        state: Option<String>,
    },
    /// CloudFront `GetInvalidation` (default operation): set the invalidation's `<Status>`.
    InvalidationStatus { status: String },
    /// EC2 `CreateFleet` (default operation): add `errors` to the response's `Errors`
    /// (`errorSet`), as EC2 reports the pools it could not launch into (moto never reports
    /// any). Only the response changes: the instances moto launched stay, and moto launches
    /// the whole target from the first override, so name pools other than the first.
    FleetErrors { errors: Vec<FleetError> },
    /// EC2 `DescribeInstanceStatus` (default operation): the instance status check of
    /// `instance_id` reads `status` (`impaired`, ...), as EC2 reports a host gone bad (moto
    /// reports every running instance `ok`, and ignores the status filters).
    InstanceStatus { instance_id: String, status: String },
    /// EC2 `DescribeInstances` (default operation): every instance's private and public
    /// addresses become a loopback address of its own (127.0.0.2, .3, ... in the order the rule
    /// first sees them, stable for the rule's life), so health probes dial where a test can
    /// listen. See [`super::addresses`].
    LoopbackAddresses {},
    /// A successful answer's body replaced by `body` (default: text that is neither XML nor
    /// JSON, [`super::bad_answers::DEFAULT_GARBAGE`]). The call reached moto and took effect;
    /// only its answer is lost. Name the `service`/`operation`: a rule without them spoils
    /// every answer.
    Garbage {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        body: Option<String>,
    },
    /// A successful answer's document cut after `bytes` bytes (default: half of it), with a
    /// matching `Content-Length`: the HTTP exchange is whole, the XML or JSON is not. The call
    /// took effect, as with `garbage`.
    Truncate {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        bytes: Option<usize>,
    },
    /// Every `field` of a successful answer (XML element or JSON key, at any depth;
    /// `parent.field` for those directly inside a `parent`, e.g. EC2's `instanceState.name`)
    /// set to `value`: an enum value the SDK does not know (`FutureState`), which it parses
    /// into its `Unknown` variant.
    FieldValue { field: String, value: String },
}

/// One entry of a `fleet_errors` rewrite: a pool (instance type, subnet) and why it failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetError {
    /// `InsufficientInstanceCapacity`, `UnfulfillableCapacity`, ...
    pub code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet_id: Option<String>,
}

impl FaultAction {
    pub fn throttle() -> Self {
        Self::Throttle {
            code: None,
            message: None,
        }
    }

    pub fn error(status: u16) -> Self {
        Self::Error {
            status,
            code: None,
            message: None,
            plain: false,
        }
    }

    pub fn latency(delay: Duration) -> Self {
        Self::Latency {
            ms: u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
        }
    }

    pub fn stack_status(status: &str, reason: Option<&str>) -> Self {
        Self::StackStatus {
            status: status.to_owned(),
            reason: reason.map(str::to_owned),
        }
    }

    pub fn lambda_in_progress() -> Self {
        Self::LambdaStatus {
            last_update_status: "InProgress".to_owned(),
            reason: None,
            state: None,
        }
    }

    /// `CreateFleet` reports `code` for the pool (`instance_type`, `subnet_id`).
    pub fn fleet_error(code: &str, instance_type: &str, subnet_id: &str) -> Self {
        Self::FleetErrors {
            errors: vec![FleetError {
                code: code.to_owned(),
                message: None,
                instance_type: Some(instance_type.to_owned()),
                subnet_id: Some(subnet_id.to_owned()),
            }],
        }
    }

    /// `DescribeInstanceStatus` reports `instance_id`'s instance status check `impaired`.
    pub fn instance_impaired(instance_id: &str) -> Self {
        Self::InstanceStatus {
            instance_id: instance_id.to_owned(),
            status: "impaired".to_owned(),
        }
    }

    /// `DescribeInstances` shows every instance on a loopback address of its own.
    pub fn loopback_addresses() -> Self {
        Self::LoopbackAddresses {}
    }

    /// The answer replaced by text that is neither XML nor JSON.
    pub fn garbage() -> Self {
        Self::Garbage { body: None }
    }

    /// The answer's document cut in half.
    pub fn truncate() -> Self {
        Self::Truncate { bytes: None }
    }

    /// Every `field` of the answer set to `value` (see [`FaultAction::FieldValue`]).
    pub fn field_value(field: &str, value: &str) -> Self {
        Self::FieldValue {
            field: field.to_owned(),
            value: value.to_owned(),
        }
    }

    pub fn invalidation_in_progress() -> Self {
        Self::InvalidationStatus {
            status: "InProgress".to_owned(),
        }
    }

    /// The (service, operations) a rewrite applies to when the rule names none.
    fn default_target(&self) -> Option<(&'static str, &'static [&'static str])> {
        match self {
            Self::StackStatus { .. } => Some(("cloudformation", &["DescribeStacks"])),
            Self::LambdaStatus { .. } => Some((
                "lambda",
                &["GetFunction", "GetFunctionConfiguration", LIST_FUNCTIONS],
            )),
            Self::InvalidationStatus { .. } => Some(("cloudfront", &["GetInvalidation"])),
            Self::FleetErrors { .. } => Some(("ec2", &["CreateFleet"])),
            Self::LoopbackAddresses {} => Some(("ec2", &["DescribeInstances"])),
            Self::InstanceStatus { .. } => Some(("ec2", &["DescribeInstanceStatus"])),
            _ => None,
        }
    }
}

/// The Lambda listing whose entries a `lambda_status` rule edits by `resource`.
const LIST_FUNCTIONS: &str = "ListFunctions";

impl FaultRule {
    pub fn new(action: FaultAction) -> Self {
        Self {
            service: None,
            operation: None,
            resource: None,
            action,
            times: None,
            skip: 0,
            probability: None,
            seed: None,
        }
    }

    #[must_use]
    pub fn service(mut self, service: &str) -> Self {
        self.service = Some(service.to_owned());
        self
    }

    #[must_use]
    pub fn operation(mut self, operation: &str) -> Self {
        self.operation = Some(operation.to_owned());
        self
    }

    #[must_use]
    pub fn resource(mut self, resource: &str) -> Self {
        self.resource = Some(resource.to_owned());
        self
    }

    /// Fire for the next `n` matching calls only.
    #[must_use]
    pub fn times(mut self, n: u64) -> Self {
        self.times = Some(n);
        self
    }

    #[must_use]
    pub fn skip(mut self, n: u64) -> Self {
        self.skip = n;
        self
    }

    #[must_use]
    pub fn probability(mut self, p: f64, seed: u64) -> Self {
        self.probability = Some(p);
        self.seed = Some(seed);
        self
    }

    pub fn validate(&self) -> Result<(), String> {
        if let Some(p) = self.probability
            && !(0.0..=1.0).contains(&p)
        {
            return Err(format!("probability must be within 0..=1, got {p}"));
        }
        if let FaultAction::Error { status, .. } = self.action
            && !(400..=599).contains(&status)
        {
            return Err(format!("error status must be 4xx or 5xx, got {status}"));
        }
        Ok(())
    }

    fn matches(&self, id: &CallId, haystacks: &[&str]) -> bool {
        let eq = |want: &Option<String>, got: &str| {
            want.as_deref()
                .is_none_or(|w| w == "*" || w.eq_ignore_ascii_case(got))
        };
        if !eq(&self.service, &id.service) || !eq(&self.operation, &id.operation) {
            return false;
        }
        if self.service.is_none()
            && self.operation.is_none()
            && let Some((service, operations)) = self.action.default_target()
            && (id.service != service || !operations.contains(&id.operation.as_str()))
        {
            return false;
        }
        if self.operation.is_none()
            && self.service.is_some()
            && let Some((_, operations)) = self.action.default_target()
            && !operations.contains(&id.operation.as_str())
        {
            return false;
        }
        if self.lists_functions(id) {
            // The listing names no function: `resource` selects the entries to edit instead.
            return true;
        }
        self.resource
            .as_deref()
            .is_none_or(|r| haystacks.iter().any(|h| h.contains(r)))
    }

    /// A `lambda_status` rule matching a `ListFunctions` call.
    fn lists_functions(&self, id: &CallId) -> bool {
        matches!(self.action, FaultAction::LambdaStatus { .. })
            && id.service == "lambda"
            && id.operation == LIST_FUNCTIONS
    }
}

/// A rule with its counters, as listed by `GET $ADMIN/faults`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FaultStatus {
    pub id: u64,
    pub rule: FaultRule,
    /// The seed actually in use (the rule's, or the random one chosen for it).
    pub seed: u64,
    /// Calls that matched service/operation/resource.
    pub matched: u64,
    /// Calls the rule acted on.
    pub fired: u64,
    /// `times - fired`, or null for rules without `times`.
    pub remaining: Option<u64>,
    /// `loopback_addresses` rules: instance id → the address it was given.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub addresses: BTreeMap<String, Ipv4Addr>,
}

#[derive(Debug)]
struct RuleState {
    id: u64,
    rule: FaultRule,
    seed: u64,
    rng: StdRng,
    matched: u64,
    fired: u64,
    /// The addresses a `loopback_addresses` rule handed out.
    addresses: SharedBook,
}

impl RuleState {
    fn remaining(&self) -> Option<u64> {
        self.rule.times.map(|t| t.saturating_sub(self.fired))
    }
}

/// A response edit to apply to moto's (successful) answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Rewrite {
    StackStatus {
        status: String,
        reason: Option<String>,
    },
    LambdaStatus {
        last_update_status: String,
        reason: Option<String>,
        state: Option<String>,
        /// In a `ListFunctions` response, only the functions whose name or ARN contains this
        /// (every function when `None`); ignored for single-function responses.
        functions: Option<String>,
    },
    InvalidationStatus {
        status: String,
    },
    FleetErrors {
        errors: Vec<FleetError>,
    },
    LoopbackAddresses {
        book: SharedBook,
    },
    InstanceStatus {
        instance_id: String,
        status: String,
    },
    Garbage {
        body: String,
    },
    Truncate {
        bytes: Option<usize>,
    },
    FieldValue {
        field: String,
        value: String,
    },
}

/// A call's fate, decided before it is forwarded.
#[derive(Debug, Default)]
pub struct Decision {
    pub delay: Duration,
    pub terminal: Option<Terminal>,
    pub rewrites: Vec<Rewrite>,
    /// Ids of the rules that fired.
    pub fired: Vec<u64>,
}

/// A fault that replaces moto's answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Terminal {
    Respond(InjectedResponse),
    Reset,
}

/// An error response rendered in the service's format.
#[derive(Debug, Clone, PartialEq)]
pub struct InjectedResponse {
    pub status: StatusCode,
    pub headers: Vec<(&'static str, String)>,
    pub body: Bytes,
    /// The error code the client should see (empty for plain errors).
    pub code: String,
    /// A throttling error (as opposed to a plain error).
    pub throttle: bool,
}

/// The active rules.
#[derive(Debug, Default)]
pub struct FaultSet {
    rules: Vec<RuleState>,
    next_id: u64,
}

impl FaultSet {
    /// Adds a rule; returns its id.
    pub fn add(&mut self, rule: FaultRule) -> Result<u64, String> {
        rule.validate()?;
        self.next_id += 1;
        let seed = rule.seed.unwrap_or_else(rand::random);
        self.rules.push(RuleState {
            id: self.next_id,
            rng: StdRng::seed_from_u64(seed),
            seed,
            rule,
            matched: 0,
            fired: 0,
            addresses: SharedBook::default(),
        });
        Ok(self.next_id)
    }

    pub fn clear(&mut self) {
        self.rules.clear();
    }

    pub fn list(&self) -> Vec<FaultStatus> {
        self.rules
            .iter()
            .map(|r| FaultStatus {
                id: r.id,
                rule: r.rule.clone(),
                seed: r.seed,
                matched: r.matched,
                fired: r.fired,
                remaining: r.remaining(),
                addresses: r.addresses.assigned(),
            })
            .collect()
    }

    /// Decides what happens to a call. `haystacks` are the strings `resource` is matched in
    /// (path + query raw and decoded, body).
    pub fn decide(&mut self, id: &CallId, method_is_head: bool, haystacks: &[&str]) -> Decision {
        let mut decision = Decision::default();
        for state in &mut self.rules {
            if state.remaining() == Some(0) || !state.rule.matches(id, haystacks) {
                continue;
            }
            state.matched += 1;
            if state.matched <= state.rule.skip {
                continue;
            }
            if let Some(p) = state.rule.probability
                && state.rng.random::<f64>() >= p
            {
                continue;
            }
            state.fired += 1;
            decision.fired.push(state.id);
            let listed = state_resource(&state.rule, id);
            match &state.rule.action {
                FaultAction::Latency { ms } => decision.delay += Duration::from_millis(*ms),
                FaultAction::Reset => {
                    decision.terminal = Some(Terminal::Reset);
                    break;
                }
                FaultAction::Throttle { code, message } => {
                    decision.terminal = Some(Terminal::Respond(throttle_response(
                        id,
                        code.as_deref(),
                        message.as_deref(),
                        method_is_head,
                    )));
                    break;
                }
                FaultAction::Error {
                    status,
                    code,
                    message,
                    plain,
                } => {
                    decision.terminal = Some(Terminal::Respond(error_response(
                        id,
                        *status,
                        code.as_deref(),
                        message.as_deref(),
                        *plain || method_is_head,
                    )));
                    break;
                }
                FaultAction::StackStatus { status, reason } => {
                    decision.rewrites.push(Rewrite::StackStatus {
                        status: status.clone(),
                        reason: reason.clone(),
                    });
                }
                FaultAction::LambdaStatus {
                    last_update_status,
                    reason,
                    state,
                } => decision.rewrites.push(Rewrite::LambdaStatus {
                    last_update_status: last_update_status.clone(),
                    reason: reason.clone(),
                    state: state.clone(),
                    functions: listed,
                }),
                FaultAction::InvalidationStatus { status } => {
                    decision.rewrites.push(Rewrite::InvalidationStatus {
                        status: status.clone(),
                    });
                }
                FaultAction::FleetErrors { errors } => {
                    decision.rewrites.push(Rewrite::FleetErrors {
                        errors: errors.clone(),
                    });
                }
                FaultAction::LoopbackAddresses {} => {
                    decision.rewrites.push(Rewrite::LoopbackAddresses {
                        book: state.addresses.clone(),
                    });
                }
                FaultAction::InstanceStatus {
                    instance_id,
                    status,
                } => decision.rewrites.push(Rewrite::InstanceStatus {
                    instance_id: instance_id.clone(),
                    status: status.clone(),
                }),
                FaultAction::Garbage { body } => decision.rewrites.push(Rewrite::Garbage {
                    body: body
                        .clone()
                        .unwrap_or_else(|| bad_answers::DEFAULT_GARBAGE.to_owned()),
                }),
                FaultAction::Truncate { bytes } => {
                    decision.rewrites.push(Rewrite::Truncate { bytes: *bytes });
                }
                FaultAction::FieldValue { field, value } => {
                    decision.rewrites.push(Rewrite::FieldValue {
                        field: field.clone(),
                        value: value.clone(),
                    });
                }
            }
        }
        decision
    }
}

/// The `functions` filter of a `lambda_status` rewrite: the rule's `resource` on a listing.
fn state_resource(rule: &FaultRule, id: &CallId) -> Option<String> {
    if rule.lists_functions(id) {
        rule.resource.clone()
    } else {
        None
    }
}

const REQUEST_ID: &str = "00000000-5a6e-4a1d-9e57-fa017fa017fa";

/// The throttling error of the call's service, in its wire format.
pub fn throttle_response(
    id: &CallId,
    code: Option<&str>,
    message: Option<&str>,
    head: bool,
) -> InjectedResponse {
    let (status, default_code, default_message) = match (id.service.as_str(), id.protocol) {
        (_, Protocol::RestJson) => (429, "TooManyRequestsException", "Rate exceeded"),
        (_, Protocol::Ec2Query) => (503, "RequestLimitExceeded", "Request limit exceeded."),
        (_, Protocol::S3) => (503, "SlowDown", "Please reduce your request rate."),
        ("sqs", Protocol::Json) => (400, "RequestThrottled", "Request is throttled."),
        (_, Protocol::Json) => (400, "ThrottlingException", "Rate exceeded"),
        (_, Protocol::Query | Protocol::RestXml) => (400, "Throttling", "Rate exceeded"),
    };
    InjectedResponse {
        throttle: true,
        ..render_error(
            id,
            StatusCode::from_u16(status).unwrap_or(StatusCode::TOO_MANY_REQUESTS),
            code.unwrap_or(default_code),
            message.unwrap_or(default_message),
            head,
        )
    }
}

/// An HTTP error in the call's service format (or an empty body when `plain`).
pub fn error_response(
    id: &CallId,
    status: u16,
    code: Option<&str>,
    message: Option<&str>,
    plain: bool,
) -> InjectedResponse {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if plain {
        return InjectedResponse {
            status,
            headers: vec![],
            body: Bytes::new(),
            code: String::new(),
            throttle: false,
        };
    }
    let default_code = match (status.as_u16(), id.protocol) {
        (500, Protocol::S3 | Protocol::Ec2Query) => "InternalError".to_owned(),
        (500, Protocol::RestJson) => "ServiceException".to_owned(),
        (500, _) => "InternalFailure".to_owned(),
        (503, _) => "ServiceUnavailable".to_owned(),
        (n, _) => format!("HttpStatus{n}"),
    };
    let message = message.unwrap_or("injected by the stagehand-testenv fault proxy");
    render_error(id, status, code.unwrap_or(&default_code), message, false)
}

fn render_error(
    id: &CallId,
    status: StatusCode,
    code: &str,
    message: &str,
    head: bool,
) -> InjectedResponse {
    let fault = if status.is_server_error() {
        "Receiver"
    } else {
        "Sender"
    };
    let (c, m) = (xml_escape(code), xml_escape(message));
    let mut headers: Vec<(&'static str, String)> = Vec::new();
    let body = match id.protocol {
        Protocol::RestJson => {
            headers.push(("x-amzn-errortype", code.to_owned()));
            headers.push(("x-amzn-requestid", REQUEST_ID.to_owned()));
            headers.push(("content-type", "application/json".to_owned()));
            serde_json::json!({ "Type": "User", "message": message }).to_string()
        }
        Protocol::Json => {
            headers.push(("x-amzn-requestid", REQUEST_ID.to_owned()));
            headers.push(("content-type", "application/x-amz-json-1.0".to_owned()));
            let mut type_name = code.to_owned();
            if id.service == "sqs" {
                // SQS speaks JSON but is query-compatible: the SDK takes the code from this header.
                headers.push(("x-amzn-query-error", format!("{code};{fault}")));
                type_name = format!("com.amazonaws.sqs#{code}");
            }
            serde_json::json!({ "__type": type_name, "message": message }).to_string()
        }
        Protocol::Ec2Query => {
            headers.push(("content-type", "text/xml;charset=UTF-8".to_owned()));
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{c}</Code><Message>{m}</Message></Error></Errors><RequestID>{REQUEST_ID}</RequestID></Response>"
            )
        }
        Protocol::S3 => {
            headers.push(("x-amz-request-id", REQUEST_ID.to_owned()));
            headers.push(("content-type", "application/xml".to_owned()));
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{c}</Code><Message>{m}</Message><RequestId>{REQUEST_ID}</RequestId></Error>"
            )
        }
        Protocol::Query | Protocol::RestXml => {
            headers.push(("x-amzn-requestid", REQUEST_ID.to_owned()));
            headers.push(("content-type", "text/xml".to_owned()));
            format!(
                "<ErrorResponse><Error><Type>{fault}</Type><Code>{c}</Code><Message>{m}</Message></Error><RequestId>{REQUEST_ID}</RequestId></ErrorResponse>"
            )
        }
    };
    if id.protocol == Protocol::RestJson && status == StatusCode::TOO_MANY_REQUESTS {
        headers.push(("retry-after", "1".to_owned()));
    }
    InjectedResponse {
        status,
        headers,
        body: if head {
            Bytes::new()
        } else {
            Bytes::from(body)
        },
        code: code.to_owned(),
        throttle: false,
    }
}

/// One `errorSet` item in EC2's wire format.
fn fleet_error_item(error: &FleetError) -> String {
    let element = |name: &str, value: Option<&str>| {
        value.map_or_else(String::new, |v| {
            format!("<{name}>{}</{name}>", xml_escape(v))
        })
    };
    format!(
        "<item><launchTemplateAndOverrides><overrides>{}{}</overrides></launchTemplateAndOverrides>\
         <lifecycle>spot</lifecycle>{}{}</item>",
        element("instanceType", error.instance_type.as_deref()),
        element("subnetId", error.subnet_id.as_deref()),
        element("errorCode", Some(&error.code)),
        element(
            "errorMessage",
            Some(
                error
                    .message
                    .as_deref()
                    .unwrap_or("There is no Spot capacity available that matches your request.")
            )
        ),
    )
}

pub(crate) fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// Applies a rewrite to a response body. Returns `None` when the body has nothing to rewrite.
pub fn apply_rewrite(rewrite: &Rewrite, body: &[u8]) -> Option<Vec<u8>> {
    match rewrite {
        Rewrite::StackStatus { status, reason } => {
            let text = std::str::from_utf8(body).ok()?;
            let mut text = xml_set_all(text, "StackStatus", status)?;
            if let Some(reason) = reason {
                text = xml_set_all(&text, "StackStatusReason", reason).unwrap_or_else(|| {
                    text.replace(
                        "</StackStatus>",
                        &format!(
                            "</StackStatus><StackStatusReason>{}</StackStatusReason>",
                            xml_escape(reason)
                        ),
                    )
                });
            }
            Some(text.into_bytes())
        }
        Rewrite::InvalidationStatus { status } => {
            let text = std::str::from_utf8(body).ok()?;
            xml_set_all(text, "Status", status).map(String::into_bytes)
        }
        Rewrite::LoopbackAddresses { book } => {
            let text = std::str::from_utf8(body).ok()?;
            addresses::rewrite_describe_instances(book, text).map(String::into_bytes)
        }
        Rewrite::InstanceStatus {
            instance_id,
            status,
        } => {
            let text = std::str::from_utf8(body).ok()?;
            let item = text.find(&format!("<instanceId>{instance_id}</instanceId>"))?;
            let close = item + text[item..].find("</instanceStatus>")?;
            // The check's summary is the last `<status>` of its block (after the details).
            let open = text[..close].rfind("<status>")? + "<status>".len();
            let end = open + text[open..].find("</status>")?;
            Some(format!("{}{}{}", &text[..open], xml_escape(status), &text[end..]).into_bytes())
        }
        Rewrite::Garbage { body } => Some(body.clone().into_bytes()),
        Rewrite::Truncate { bytes } => bad_answers::truncate(body, *bytes),
        Rewrite::FieldValue { field, value } => bad_answers::set_field(body, field, value),
        Rewrite::FleetErrors { errors } => {
            let text = std::str::from_utf8(body).ok()?;
            let items: String = errors.iter().map(fleet_error_item).collect();
            let set = format!("<errorSet>{items}</errorSet>");
            // Into the existing set when moto wrote one, else as the response's first field.
            if text.contains("<errorSet>") {
                Some(
                    text.replacen("<errorSet>", &set[..set.len() - "</errorSet>".len()], 1)
                        .into_bytes(),
                )
            } else {
                let end = text.find("<CreateFleetResponse")?;
                let open = end + text[end..].find('>')? + 1;
                Some(format!("{}{set}{}", &text[..open], &text[open..]).into_bytes())
            }
        }
        Rewrite::LambdaStatus {
            last_update_status,
            reason,
            state,
            functions,
        } => {
            let mut doc: serde_json::Value = serde_json::from_slice(body).ok()?;
            let set = |config: &mut serde_json::Map<String, serde_json::Value>| {
                config.insert(
                    "LastUpdateStatus".to_owned(),
                    last_update_status.clone().into(),
                );
                if let Some(reason) = reason {
                    config.insert("LastUpdateStatusReason".to_owned(), reason.clone().into());
                }
                if let Some(state) = state {
                    config.insert("State".to_owned(), state.clone().into());
                }
            };
            if let Some(listed) = doc
                .get_mut("Functions")
                .and_then(serde_json::Value::as_array_mut)
            {
                let mut changed = false;
                for config in listed
                    .iter_mut()
                    .filter_map(serde_json::Value::as_object_mut)
                {
                    let selected = functions.as_deref().is_none_or(|wanted| {
                        ["FunctionName", "FunctionArn"].iter().any(|field| {
                            config
                                .get(*field)
                                .and_then(serde_json::Value::as_str)
                                .is_some_and(|v| v.contains(wanted))
                        })
                    });
                    if selected {
                        set(config);
                        changed = true;
                    }
                }
                return if changed {
                    serde_json::to_vec(&doc).ok()
                } else {
                    None
                };
            }
            let config = if doc
                .get("Configuration")
                .is_some_and(serde_json::Value::is_object)
            {
                doc.get_mut("Configuration")?
            } else {
                &mut doc
            };
            let config = config.as_object_mut()?;
            if !config.contains_key("FunctionName") {
                return None;
            }
            set(config);
            serde_json::to_vec(&doc).ok()
        }
    }
}

/// Replaces the text of every `<tag>…</tag>` (and turns `<tag/>` into `<tag>value</tag>`).
/// `None` when the tag does not occur.
pub(super) fn xml_set_all(text: &str, tag: &str, value: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let empty = format!("<{tag}/>");
    let value = xml_escape(value);
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut found = false;
    loop {
        let next_open = rest.find(&open);
        let next_empty = rest.find(&empty);
        match (next_open, next_empty) {
            (Some(o), e) if e.is_none_or(|e| o < e) => {
                let after_open = o + open.len();
                let end = rest[after_open..].find(&close)? + after_open;
                out.push_str(&rest[..after_open]);
                out.push_str(&value);
                out.push_str(&close);
                rest = &rest[end + close.len()..];
                found = true;
            }
            (_, Some(e)) => {
                out.push_str(&rest[..e]);
                out.push_str(&open);
                out.push_str(&value);
                out.push_str(&close);
                rest = &rest[e + empty.len()..];
                found = true;
            }
            _ => break,
        }
    }
    out.push_str(rest);
    found.then_some(out)
}

/// Sets a header on a rewritten or injected response.
pub(crate) fn header_value(v: &str) -> HeaderValue {
    HeaderValue::from_str(v).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(service: &str, operation: &str, protocol: Protocol) -> CallId {
        CallId {
            service: service.to_owned(),
            operation: operation.to_owned(),
            protocol,
        }
    }

    #[test]
    fn rules_round_trip_as_json() {
        let json = r#"{"service":"lambda","operation":"UpdateFunctionCode","resource":"api",
            "action":{"kind":"throttle"},"times":2,"probability":0.5,"seed":7}"#;
        let rule: FaultRule = serde_json::from_str(json).unwrap();
        assert_eq!(
            rule,
            FaultRule::new(FaultAction::throttle())
                .service("lambda")
                .operation("UpdateFunctionCode")
                .resource("api")
                .times(2)
                .probability(0.5, 7)
        );
        let back: FaultRule = serde_json::from_str(&serde_json::to_string(&rule).unwrap()).unwrap();
        assert_eq!(back, rule);
        assert!(
            serde_json::from_str::<FaultRule>(r#"{"action":{"kind":"reset"},"tims":1}"#).is_err()
        );
        let bad = FaultRule::new(FaultAction::throttle()).probability(1.5, 1);
        assert!(FaultSet::default().add(bad).is_err());
    }

    #[test]
    fn times_skip_and_order() {
        let mut set = FaultSet::default();
        let lambda = id("lambda", "GetFunction", Protocol::RestJson);
        set.add(FaultRule::new(FaultAction::latency(Duration::from_millis(5))).service("lambda"))
            .unwrap();
        set.add(
            FaultRule::new(FaultAction::throttle())
                .service("lambda")
                .skip(1)
                .times(2),
        )
        .unwrap();
        let fates: Vec<bool> = (0..5)
            .map(|_| set.decide(&lambda, false, &[]).terminal.is_some())
            .collect();
        assert_eq!(fates, [false, true, true, false, false]);
        let listed = set.list();
        assert_eq!(listed[0].fired, 5);
        assert_eq!(listed[0].remaining, None);
        assert_eq!(
            (listed[1].matched, listed[1].fired, listed[1].remaining),
            (3, 2, Some(0))
        );
        // Other services are not touched.
        let sqs = id("sqs", "ListQueues", Protocol::Json);
        assert!(set.decide(&sqs, false, &[]).fired.is_empty());
    }

    #[test]
    fn probability_is_deterministic_per_seed() {
        let run = |seed| {
            let mut set = FaultSet::default();
            set.add(FaultRule::new(FaultAction::error(500)).probability(0.5, seed))
                .unwrap();
            let call = id("ec2", "DescribeInstances", Protocol::Ec2Query);
            (0..64)
                .map(|_| set.decide(&call, false, &[]).terminal.is_some())
                .collect::<Vec<_>>()
        };
        let a = run(42);
        assert_eq!(a, run(42));
        assert_ne!(a, run(43));
        let fired = a.iter().filter(|f| **f).count();
        assert!((16..=48).contains(&fired), "{fired} of 64 at p=0.5");
    }

    #[test]
    fn fleet_errors_are_added_to_a_create_fleet_response() {
        let mut set = FaultSet::default();
        set.add(FaultRule::new(FaultAction::fleet_error(
            "InsufficientInstanceCapacity",
            "c5.large",
            "subnet-b",
        )))
        .unwrap();
        let describe = id("ec2", "DescribeFleets", Protocol::Ec2Query);
        assert!(set.decide(&describe, false, &[""]).rewrites.is_empty());
        let create = id("ec2", "CreateFleet", Protocol::Ec2Query);
        let rewrites = set.decide(&create, false, &[""]).rewrites;
        assert_eq!(rewrites.len(), 1);
        let body = "<?xml version=\"1.0\"?><CreateFleetResponse xmlns=\"x\"><fleetId>f</fleetId></CreateFleetResponse>";
        let edited =
            String::from_utf8(apply_rewrite(&rewrites[0], body.as_bytes()).unwrap()).unwrap();
        assert!(
            edited.starts_with(
                "<?xml version=\"1.0\"?><CreateFleetResponse xmlns=\"x\"><errorSet><item>"
            ),
            "{edited}"
        );
        assert!(
            edited.contains("<instanceType>c5.large</instanceType><subnetId>subnet-b</subnetId>")
        );
        assert!(edited.contains("<errorCode>InsufficientInstanceCapacity</errorCode>"));
        assert!(edited.ends_with("</item></errorSet><fleetId>f</fleetId></CreateFleetResponse>"));
        // Added to a set moto wrote.
        let with_set =
            "<CreateFleetResponse><errorSet><item>old</item></errorSet></CreateFleetResponse>";
        let edited =
            String::from_utf8(apply_rewrite(&rewrites[0], with_set.as_bytes()).unwrap()).unwrap();
        assert_eq!(edited.matches("<errorSet>").count(), 1, "{edited}");
        assert!(
            edited.contains("</item><item>old</item></errorSet>"),
            "{edited}"
        );
    }

    #[test]
    fn loopback_addresses_edit_describe_instances_with_one_book_per_rule() {
        let mut set = FaultSet::default();
        set.add(FaultRule::new(FaultAction::loopback_addresses()))
            .unwrap();
        let run = id("ec2", "RunInstances", Protocol::Ec2Query);
        assert!(set.decide(&run, false, &[""]).rewrites.is_empty());
        let describe = id("ec2", "DescribeInstances", Protocol::Ec2Query);
        let body = "<DescribeInstancesResponse><reservationSet><item><instancesSet><item>\
            <instanceId>i-1</instanceId><privateIpAddress>10.0.0.9</privateIpAddress>\
            </item></instancesSet></item></reservationSet></DescribeInstancesResponse>";
        for _ in 0..2 {
            let rewrites = set.decide(&describe, false, &[""]).rewrites;
            let edited =
                String::from_utf8(apply_rewrite(&rewrites[0], body.as_bytes()).unwrap()).unwrap();
            assert!(
                edited.contains("<privateIpAddress>127.0.0.2</privateIpAddress>"),
                "{edited}"
            );
        }
        let listed = set.list();
        assert_eq!(
            listed[0].addresses,
            BTreeMap::from([("i-1".to_owned(), Ipv4Addr::new(127, 0, 0, 2))])
        );
        let json: FaultRule =
            serde_json::from_str(r#"{"action":{"kind":"loopback_addresses"}}"#).unwrap();
        assert_eq!(json, FaultRule::new(FaultAction::loopback_addresses()));
    }

    #[test]
    fn rewrites_default_to_their_operation_and_resource_matches() {
        let mut set = FaultSet::default();
        set.add(FaultRule::new(FaultAction::lambda_in_progress()).resource("api-dev"))
            .unwrap();
        let get = id("lambda", "GetFunction", Protocol::RestJson);
        let list = id("lambda", "ListFunctions", Protocol::RestJson);
        let other = id("lambda", "ListTags", Protocol::RestJson);
        assert!(
            set.decide(&other, false, &["/2017-03-31/tags/arn:api-dev"])
                .fired
                .is_empty()
        );
        // A listing names no function: the rule fires, and `resource` selects the entries.
        assert_eq!(
            set.decide(&list, false, &["/2015-03-31/functions/"])
                .rewrites,
            [Rewrite::LambdaStatus {
                last_update_status: "InProgress".into(),
                reason: None,
                state: None,
                functions: Some("api-dev".into()),
            }]
        );
        assert!(
            set.decide(&get, false, &["/2015-03-31/functions/other"])
                .fired
                .is_empty()
        );
        assert_eq!(
            set.decide(&get, false, &["/2015-03-31/functions/api-dev"])
                .rewrites
                .len(),
            1
        );
    }

    #[test]
    fn throttles_in_each_wire_format() {
        let lambda = throttle_response(
            &id("lambda", "CreateFunction", Protocol::RestJson),
            None,
            None,
            false,
        );
        assert_eq!(lambda.status, 429);
        assert!(
            lambda
                .headers
                .contains(&("x-amzn-errortype", "TooManyRequestsException".to_owned()))
        );
        let ec2 = throttle_response(
            &id("ec2", "RunInstances", Protocol::Ec2Query),
            None,
            None,
            false,
        );
        assert_eq!(ec2.status, 503);
        assert!(String::from_utf8_lossy(&ec2.body).contains("<Code>RequestLimitExceeded</Code>"));
        let s3 = throttle_response(&id("s3", "PutObject", Protocol::S3), None, None, false);
        assert_eq!(s3.status, 503);
        assert!(String::from_utf8_lossy(&s3.body).contains("<Error><Code>SlowDown</Code>"));
        let cfn = throttle_response(
            &id("cloudformation", "DescribeStacks", Protocol::Query),
            None,
            None,
            false,
        );
        assert_eq!(cfn.status, 400);
        assert!(String::from_utf8_lossy(&cfn.body).contains("<Code>Throttling</Code>"));
        let sqs = throttle_response(&id("sqs", "ListQueues", Protocol::Json), None, None, false);
        assert!(
            sqs.headers
                .contains(&("x-amzn-query-error", "RequestThrottled;Sender".to_owned()))
        );
        let head = throttle_response(&id("s3", "HeadObject", Protocol::S3), None, None, true);
        assert!(head.body.is_empty());
    }

    #[test]
    fn stack_status_rewrite_sets_status_and_reason() {
        let body = "<DescribeStacksResponse><DescribeStacksResult><Stacks><member><StackName>s</StackName><StackStatus>CREATE_COMPLETE</StackStatus></member></Stacks></DescribeStacksResult></DescribeStacksResponse>";
        let rw = Rewrite::StackStatus {
            status: "ROLLBACK_COMPLETE".into(),
            reason: Some("Bucket <x> exists".into()),
        };
        let out = String::from_utf8(apply_rewrite(&rw, body.as_bytes()).unwrap()).unwrap();
        assert!(out.contains("<StackStatus>ROLLBACK_COMPLETE</StackStatus><StackStatusReason>Bucket &lt;x&gt; exists</StackStatusReason>"), "{out}");
        let again = String::from_utf8(apply_rewrite(&rw, out.as_bytes()).unwrap()).unwrap();
        assert_eq!(again.matches("<StackStatusReason>").count(), 1);
        assert!(apply_rewrite(&rw, b"<Other/>").is_none());
    }

    #[test]
    fn lambda_status_rewrite_handles_both_shapes() {
        let rw = Rewrite::LambdaStatus {
            last_update_status: "InProgress".into(),
            reason: None,
            state: None,
            functions: None,
        };
        let get_function =
            br#"{"Configuration":{"FunctionName":"f","LastUpdateStatus":"Successful"},"Code":{}}"#;
        let out: serde_json::Value =
            serde_json::from_slice(&apply_rewrite(&rw, get_function).unwrap()).unwrap();
        assert_eq!(out["Configuration"]["LastUpdateStatus"], "InProgress");
        let config = br#"{"FunctionName":"f","LastUpdateStatus":"Successful"}"#;
        let out: serde_json::Value =
            serde_json::from_slice(&apply_rewrite(&rw, config).unwrap()).unwrap();
        assert_eq!(out["LastUpdateStatus"], "InProgress");
        assert!(apply_rewrite(&rw, b"not json").is_none());
    }

    #[test]
    fn lambda_status_rewrite_edits_the_selected_listed_functions() {
        let listing = br#"{"Functions":[
            {"FunctionName":"api-dev","FunctionArn":"arn:aws:lambda:us-east-1:1:function:api-dev","LastUpdateStatus":"Successful"},
            {"FunctionName":"other","FunctionArn":"arn:aws:lambda:us-east-1:1:function:other","LastUpdateStatus":"Successful"}
        ]}"#;
        let rw = |functions: Option<&str>| Rewrite::LambdaStatus {
            last_update_status: "InProgress".into(),
            reason: Some("busy".into()),
            state: Some("Pending".into()),
            functions: functions.map(str::to_owned),
        };
        let statuses = |rw: &Rewrite| -> Vec<(String, String, String)> {
            let out: serde_json::Value =
                serde_json::from_slice(&apply_rewrite(rw, listing).unwrap()).unwrap();
            out["Functions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| {
                    (
                        f["LastUpdateStatus"].as_str().unwrap().to_owned(),
                        f["LastUpdateStatusReason"]
                            .as_str()
                            .unwrap_or("")
                            .to_owned(),
                        f["State"].as_str().unwrap_or("").to_owned(),
                    )
                })
                .collect()
        };
        let busy = (
            "InProgress".to_owned(),
            "busy".to_owned(),
            "Pending".to_owned(),
        );
        let untouched = ("Successful".to_owned(), String::new(), String::new());
        assert_eq!(
            statuses(&rw(Some("api-dev"))),
            [busy.clone(), untouched.clone()]
        );
        assert_eq!(
            statuses(&rw(Some(":function:other"))),
            [untouched, busy.clone()]
        );
        assert_eq!(statuses(&rw(None)), [busy.clone(), busy]);
        assert!(apply_rewrite(&rw(Some("nobody")), listing).is_none());
    }

    #[test]
    fn bad_answer_rules_parse_and_spoil_the_matched_answer() {
        let rules = [
            r#"{"service":"ec2","operation":"CreateFleet","action":{"kind":"garbage"}}"#,
            r#"{"service":"ec2","operation":"CreateFleet","action":{"kind":"truncate","bytes":5}}"#,
            r#"{"service":"ec2","operation":"CreateFleet","action":{"kind":"field_value","field":"instanceState.name","value":"later"}}"#,
        ];
        let body = b"<CreateFleetResponse><instanceState><name>running</name></instanceState></CreateFleetResponse>";
        let fleet = id("ec2", "CreateFleet", Protocol::Ec2Query);
        let mut answers = Vec::new();
        for json in rules {
            let mut set = FaultSet::default();
            set.add(serde_json::from_str(json).unwrap()).unwrap();
            assert!(
                set.decide(
                    &id("ec2", "DescribeInstances", Protocol::Ec2Query),
                    false,
                    &[]
                )
                .rewrites
                .is_empty()
            );
            let decision = set.decide(&fleet, false, &[]);
            assert_eq!(decision.rewrites.len(), 1, "{json}");
            answers.push(
                String::from_utf8(apply_rewrite(&decision.rewrites[0], body).unwrap()).unwrap(),
            );
        }
        assert_eq!(answers[0], bad_answers::DEFAULT_GARBAGE);
        assert_eq!(answers[1], "<Crea");
        assert!(answers[2].contains("<name>later</name>"), "{}", answers[2]);
    }

    #[test]
    fn xml_set_all_handles_empty_elements() {
        assert_eq!(
            xml_set_all("<a><Status/><Status>x</Status></a>", "Status", "y").unwrap(),
            "<a><Status>y</Status><Status>y</Status></a>"
        );
        assert!(xml_set_all("<a/>", "Status", "y").is_none());
    }
}
