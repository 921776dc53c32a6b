//! [`AwsError`]: what every adapter call returns on failure, whatever the service.
//!
//! The SDK's errors are per operation and per service; the reconcilers only need to know what
//! happened (throttled, not found, bad input, ...) and whether retrying can help. The mapping
//! from (HTTP status, AWS error code) to [`ErrorKind`] is a pure function, [`kind_of`], tested
//! as a table.

use std::fmt;

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::Service;
use crate::base::{Classify, ErrorClass};

/// What went wrong, independent of the service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The service refused the call because of its request rate (429, `Throttling`, `SlowDown`,
    /// `RequestLimitExceeded`, ...).
    Throttled,
    /// The service failed (5xx).
    ServerError,
    /// No usable answer: timeout, connection refused or reset, unparseable response.
    Transport,
    /// The resource does not exist.
    NotFound,
    /// The credentials are missing, invalid or not allowed to do this.
    AccessDenied,
    /// The request is invalid: bad parameter, invalid template, malformed input.
    Validation,
    /// The resource is busy or changed concurrently (`ResourceConflictException`, an update
    /// in progress, a revision or ETag mismatch).
    Conflict,
    /// Not sent, or abandoned in flight: a write while this replica's leadership is not
    /// confirmed (see [`super::fence`]). Retried: either the next renewal confirms it, or the
    /// replica stops and the new leader does the work.
    Fenced,
    /// AWS answered with success (2xx) but the SDK could not read the answer: garbage, a
    /// document cut off, a shape it does not know. The call may well have taken effect, so the
    /// caller must not trust that it did not: the next round reads AWS before acting again
    /// (look before create), and the round is retried with backoff.
    BadResponse,
    /// Anything else (quota exceeded, an unknown code).
    Other,
}

impl ErrorKind {
    /// The variant name, for messages.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Throttled => "Throttled",
            Self::ServerError => "ServerError",
            Self::Transport => "Transport",
            Self::NotFound => "NotFound",
            Self::AccessDenied => "AccessDenied",
            Self::Validation => "Validation",
            Self::Conflict => "Conflict",
            Self::Fenced => "Fenced",
            Self::BadResponse => "BadResponse",
            Self::Other => "Other",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed AWS call, with what was being attempted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "AWS {service} {operation}{on} failed ({kind}{code}{status}): {message}{request}",
    service = service.as_str(),
    on = resource.as_ref().map(|r| format!(" on {r}")).unwrap_or_default(),
    code = code.as_ref().map(|c| format!(" {c}")).unwrap_or_default(),
    status = http_status.map(|s| format!(", HTTP {s}")).unwrap_or_default(),
    request = request_id.as_ref().map(|r| format!(" (request id {r})")).unwrap_or_default(),
)]
pub struct AwsError {
    pub service: Service,
    /// The API operation, e.g. `UpdateFunctionCode`.
    pub operation: &'static str,
    /// The resource the call was about (function name, bucket/key, stack), when there is one.
    pub resource: Option<String>,
    pub kind: ErrorKind,
    /// The AWS error code, e.g. `ResourceNotFoundException`.
    pub code: Option<String>,
    /// AWS's own message (or the transport error), shown to the user as is.
    pub message: String,
    pub http_status: Option<u16>,
    pub request_id: Option<String>,
}

impl AwsError {
    /// Builds the error from any SDK error. `service`/`operation` name the call.
    pub fn from_sdk<E>(
        service: Service,
        operation: &'static str,
        resource: Option<String>,
        err: &SdkError<E, HttpResponse>,
    ) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let http_status = err.raw_response().map(|r| r.status().as_u16());
        let request_id = err.raw_response().and_then(|r| {
            ["x-amzn-requestid", "x-amz-request-id", "x-amzn-request-id"]
                .iter()
                .find_map(|h| r.headers().get(*h))
                .map(str::to_owned)
        });
        let code = err.code().map(str::to_owned);
        let (kind, message) = match err {
            // A success the SDK could not read. The generated deserializers report it as an
            // unhandled service error (no code), a few paths as a response error.
            SdkError::ServiceError(_) | SdkError::ResponseError(_)
                if http_status.is_some_and(|s| (200..300).contains(&s)) && code.is_none() =>
            {
                (
                    ErrorKind::BadResponse,
                    format!(
                        "the answer could not be read ({}); the call may have taken effect, so \
                         AWS is read again before it is retried",
                        innermost_cause(err)
                    ),
                )
            }
            SdkError::ServiceError(_) => {
                let message = err
                    .message()
                    .map_or_else(|| format!("{}", DisplayErrorContext(err)), str::to_owned);
                (kind_of(http_status, code.as_deref(), &message), message)
            }
            SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => {
                let kind = match err {
                    SdkError::DispatchFailure(d) if d.is_user() => ErrorKind::Validation,
                    _ => ErrorKind::Transport,
                };
                (kind, format!("{}", DisplayErrorContext(err)))
            }
            SdkError::ResponseError(_) => {
                // A response that could not be parsed: moto's internal errors come back as HTML
                // 500 pages, which land here.
                let kind = match http_status {
                    Some(status) if status >= 500 => ErrorKind::ServerError,
                    Some(429) => ErrorKind::Throttled,
                    _ => ErrorKind::Transport,
                };
                (kind, format!("{}", DisplayErrorContext(err)))
            }
            // The request could not even be built: a required field is missing.
            _ => (
                ErrorKind::Validation,
                format!("{}", DisplayErrorContext(err)),
            ),
        };
        Self {
            service,
            operation,
            resource,
            kind,
            code,
            message,
            http_status,
            request_id,
        }
    }

    /// An error found in a successful response (a field AWS always sends is missing).
    pub fn missing_field(
        service: Service,
        operation: &'static str,
        resource: Option<String>,
        field: &str,
    ) -> Self {
        Self {
            service,
            operation,
            resource,
            kind: ErrorKind::Other,
            code: None,
            message: format!("the response has no {field}"),
            http_status: None,
            request_id: None,
        }
    }

    /// A paged listing whose next page marker is the one just sent: the service would answer
    /// the same page forever (moto does past 100 origin access controls), so the listing
    /// stops with this error instead of looping and growing without end.
    pub fn endless_listing(service: Service, operation: &'static str, marker: &str) -> Self {
        Self {
            service,
            operation,
            resource: None,
            kind: ErrorKind::Other,
            code: None,
            message: format!(
                "the listing does not advance: the marker sent ({marker}) came back as the next \
                 one, so the listing was stopped"
            ),
            http_status: None,
            request_id: None,
        }
    }

    /// A request Stagehand could not build from its input (a required field missing): bad
    /// input, so `Validation`.
    pub fn invalid_request(
        service: Service,
        operation: &'static str,
        resource: Option<String>,
        message: String,
    ) -> Self {
        Self {
            service,
            operation,
            resource,
            kind: ErrorKind::Validation,
            code: None,
            message,
            http_status: None,
            request_id: None,
        }
    }

    /// A write the fence refused (or abandoned in flight): nothing reached AWS from this
    /// attempt, or nothing more will.
    pub fn fenced(
        service: Service,
        operation: &'static str,
        resource: Option<String>,
        refusal: super::fence::Refusal,
    ) -> Self {
        Self {
            service,
            operation,
            resource,
            kind: ErrorKind::Fenced,
            code: None,
            message: format!("write refused: {refusal}"),
            http_status: None,
            request_id: None,
        }
    }

    /// Whether the resource does not exist.
    pub fn is_not_found(&self) -> bool {
        self.kind == ErrorKind::NotFound
    }

    /// The `result` label of `stagehand_aws_api_requests_total` for this error.
    pub const fn metric_result(&self) -> &'static str {
        match self.kind {
            ErrorKind::Throttled => "throttled",
            // An answer, not a failure: probing for something that does not exist yet (an
            // alias, a stack, a queue) is routine and must not look like errors on a dashboard.
            ErrorKind::NotFound => "not_found",
            ErrorKind::Fenced => "fenced",
            _ => "error",
        }
    }
}

impl Classify for AwsError {
    /// Busy, throttled or failing services recover by themselves; bad input and missing
    /// permissions need a human. Missing resources and unknown errors are retried with backoff:
    /// an artifact or a queue may appear later (CI uploads it), and the backoff caps the cost.
    fn class(&self) -> ErrorClass {
        match self.kind {
            ErrorKind::AccessDenied | ErrorKind::Validation => ErrorClass::Stalled,
            ErrorKind::Throttled
            | ErrorKind::ServerError
            | ErrorKind::Transport
            | ErrorKind::Conflict
            | ErrorKind::NotFound
            | ErrorKind::Fenced
            | ErrorKind::BadResponse
            | ErrorKind::Other => ErrorClass::Recoverable,
        }
    }

    fn reason(&self) -> &'static str {
        match self.kind {
            ErrorKind::Throttled => "AwsThrottled",
            ErrorKind::ServerError => "AwsServerError",
            ErrorKind::Transport => "AwsUnreachable",
            ErrorKind::NotFound => "AwsResourceNotFound",
            ErrorKind::AccessDenied => "AwsAccessDenied",
            ErrorKind::Validation => "AwsInvalidRequest",
            ErrorKind::Conflict => "AwsConflict",
            ErrorKind::Fenced => "LeaderFenced",
            ErrorKind::BadResponse => "AwsBadResponse",
            ErrorKind::Other => "AwsError",
        }
    }
}

/// What finally went wrong, without the SDK's wrappers ("service error: unhandled error: ...")
/// and without the raw response `DisplayErrorContext` appends (headers and the whole body: too
/// long for a condition, and nothing a reader of the object needs).
fn innermost_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = err;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}

const THROTTLING_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "RequestThrottledException",
    "SlowDown",
    "PriorRequestNotComplete",
    "BandwidthLimitExceeded",
    "EC2ThrottledException",
    "ProvisionedThroughputExceededException",
    "TooManyInvalidationsInProgress",
];

const ACCESS_DENIED_CODES: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "UnauthorizedAccess",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "AuthFailure",
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidAccessKeyId",
    "MissingAuthenticationToken",
    "OptInRequired",
];

const NOT_FOUND_CODES: &[&str] = &[
    "ResourceNotFoundException",
    "ResourceNotFound",
    "NotFound",
    "NotFoundException",
    "ChangeSetNotFound",
    "ChangeSetNotFoundException",
    "StackNotFoundException",
    "AWS.SimpleQueueService.NonExistentQueue",
    "QueueDoesNotExist",
];

const CONFLICT_CODES: &[&str] = &[
    "ResourceConflictException",
    "ResourceInUseException",
    "ResourceInUse",
    "PreconditionFailed",
    "PreconditionFailedException",
    "InvalidIfMatchVersion",
    "InvalidChangeSetStatus",
    "InvalidChangeSetStatusException",
    "OperationInProgressException",
    "ConcurrentModificationException",
    "IncorrectState",
    "IncorrectInstanceState",
    "AlreadyExistsException",
    "ResourceAlreadyExists",
    "DistributionNotDisabled",
    "IdempotentParameterMismatch",
    // S3 and CloudFront: the resource is there already (callers that can, look it up and use
    // it), not empty yet, or being changed by another request.
    "BucketNotEmpty",
    "BucketAlreadyOwnedByYou",
    "OperationAborted",
    "DistributionAlreadyExists",
    "OriginAccessControlAlreadyExists",
    "InvalidationBatchAlreadyExists",
];

const SERVER_ERROR_CODES: &[&str] = &[
    "ServiceException",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "InternalError",
    "InternalFailure",
    "InternalServerError",
    "InternalErrorException",
    "Unavailable",
    "RequestTimeout",
    "RequestTimeoutException",
];

const VALIDATION_CODES: &[&str] = &[
    "ValidationError",
    "ValidationException",
    "MalformedXML",
    "MissingParameter",
    "MissingAction",
    "UnknownParameter",
    "InvalidArgument",
    "InvalidInput",
    "InvalidRequest",
    "InvalidParameter",
    "InvalidParameterValue",
    "InvalidParameterValueException",
    "InvalidParameterCombination",
    "InvalidParameterException",
    "InvalidRequestContentException",
    "InvalidZipFileException",
    "InvalidTemplate",
    "InsufficientCapabilitiesException",
    "MalformedPolicyDocument",
    "BadDigest",
    "InvalidDigest",
    // A name or alias held by another account or distribution: a human picks another.
    "BucketAlreadyExists",
    "CNAMEAlreadyExists",
    "IllegalLocationConstraintException",
    "MalformedPolicy",
    "IllegalUpdate",
    "InconsistentQuantities",
];

/// The kind of an AWS error response, from its HTTP status, error code and message.
///
/// Codes decide first (a 503 `SlowDown` is throttling, not a server error); the status is the
/// fallback for responses without a known code (moto's own failures are HTML pages with no
/// code). CloudFormation reports a missing stack as `ValidationError` with "does not exist" in
/// the message, which is a not-found, not bad input.
pub fn kind_of(http_status: Option<u16>, code: Option<&str>, message: &str) -> ErrorKind {
    if let Some(code) = code.filter(|c| !c.is_empty()) {
        let in_list = |list: &[&str]| list.iter().any(|known| known.eq_ignore_ascii_case(code));
        if in_list(THROTTLING_CODES) {
            return ErrorKind::Throttled;
        }
        if in_list(ACCESS_DENIED_CODES) {
            return ErrorKind::AccessDenied;
        }
        if in_list(NOT_FOUND_CODES)
            || code.starts_with("NoSuch")
            || code.ends_with(".NotFound")
            || code.ends_with("NotFoundException")
            || code.ends_with("NotFound")
            || code.ends_with("NotFoundError")
        {
            return ErrorKind::NotFound;
        }
        // A message naming an invalid value is bad input even when it also says "does not
        // exist" (moto words an invalid change-set name that way).
        if code == "ValidationError"
            && message.contains("does not exist")
            && !message.contains("Invalid")
        {
            return ErrorKind::NotFound;
        }
        if in_list(CONFLICT_CODES) {
            return ErrorKind::Conflict;
        }
        if in_list(SERVER_ERROR_CODES) {
            return ErrorKind::ServerError;
        }
        if in_list(VALIDATION_CODES) || code.starts_with("Invalid") || code.ends_with(".Malformed")
        {
            return ErrorKind::Validation;
        }
    }
    match http_status {
        Some(429) => ErrorKind::Throttled,
        Some(status) if status >= 500 => ErrorKind::ServerError,
        Some(403) => ErrorKind::AccessDenied,
        Some(404) => ErrorKind::NotFound,
        Some(409 | 412) => ErrorKind::Conflict,
        Some(400 | 422) if code.is_none_or(str::is_empty) => ErrorKind::Validation,
        _ => ErrorKind::Other,
    }
}

#[cfg(test)]
mod tests {
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::error::ErrorMetadata;

    use super::*;

    #[test]
    fn status_and_code_map_to_kinds() {
        use ErrorKind::*;
        let table: &[(Option<u16>, Option<&str>, &str, ErrorKind)] = &[
            // Throttling, in each service's own words; the code wins over the status.
            (Some(429), Some("TooManyRequestsException"), "", Throttled),
            (Some(400), Some("Throttling"), "Rate exceeded", Throttled),
            (Some(400), Some("ThrottlingException"), "", Throttled),
            (Some(503), Some("RequestLimitExceeded"), "", Throttled),
            (Some(503), Some("SlowDown"), "Please reduce", Throttled),
            (Some(429), None, "", Throttled),
            (
                Some(400),
                Some("TooManyInvalidationsInProgress"),
                "",
                Throttled,
            ),
            // Server errors.
            (Some(500), Some("ServiceException"), "", ServerError),
            (Some(500), Some("InternalError"), "", ServerError),
            (Some(503), Some("ServiceUnavailable"), "", ServerError),
            (Some(500), None, "<html>", ServerError),
            (Some(502), Some(""), "", ServerError),
            // Not found.
            (Some(404), Some("ResourceNotFoundException"), "", NotFound),
            (Some(404), Some("NoSuchKey"), "", NotFound),
            (Some(404), Some("NoSuchBucket"), "", NotFound),
            (Some(404), Some("NotFound"), "", NotFound),
            (Some(404), Some("NoSuchDistribution"), "", NotFound),
            (Some(404), Some("NoSuchInvalidation"), "", NotFound),
            (Some(404), Some("NoSuchOriginAccessControl"), "", NotFound),
            (Some(404), Some("NoSuchBucketPolicy"), "", NotFound),
            (Some(404), Some("NoSuchTagSet"), "", NotFound),
            (
                Some(404),
                Some("OwnershipControlsNotFoundError"),
                "",
                NotFound,
            ),
            (
                Some(404),
                Some("ServerSideEncryptionConfigurationNotFoundError"),
                "",
                NotFound,
            ),
            (Some(400), Some("InvalidInstanceID.NotFound"), "", NotFound),
            (
                Some(400),
                Some("AWS.SimpleQueueService.NonExistentQueue"),
                "",
                NotFound,
            ),
            (Some(400), Some("QueueDoesNotExist"), "", NotFound),
            (
                Some(400),
                Some("ValidationError"),
                "Stack with id shop does not exist",
                NotFound,
            ),
            (Some(404), None, "", NotFound),
            // Access.
            (Some(403), Some("AccessDeniedException"), "", AccessDenied),
            (Some(403), Some("AccessDenied"), "", AccessDenied),
            (Some(400), Some("UnauthorizedOperation"), "", AccessDenied),
            (Some(403), Some("SignatureDoesNotMatch"), "", AccessDenied),
            (Some(403), None, "", AccessDenied),
            // Bad input.
            (
                Some(400),
                Some("InvalidParameterValueException"),
                "",
                Validation,
            ),
            (
                Some(400),
                Some("ValidationError"),
                "Template format error",
                Validation,
            ),
            (Some(400), Some("ValidationException"), "", Validation),
            (
                Some(400),
                Some("ValidationError"),
                "Stack with id Invalid change set name: bad name! does not exist",
                Validation,
            ),
            (Some(400), Some("InvalidAMIID.Malformed"), "", Validation),
            (
                Some(400),
                Some("InvalidParameterCombination"),
                "",
                Validation,
            ),
            (Some(400), Some("MalformedXML"), "", Validation),
            (Some(400), None, "", Validation),
            (Some(409), Some("BucketAlreadyExists"), "", Validation),
            (Some(409), Some("CNAMEAlreadyExists"), "", Validation),
            (Some(400), Some("MalformedPolicy"), "", Validation),
            (Some(400), Some("InvalidLocationConstraint"), "", Validation),
            // Busy or changed concurrently.
            (Some(409), Some("ResourceConflictException"), "", Conflict),
            (Some(400), Some("ResourceInUse"), "", Conflict),
            (Some(412), Some("PreconditionFailedException"), "", Conflict),
            (Some(400), Some("InvalidChangeSetStatus"), "", Conflict),
            (Some(400), Some("IncorrectInstanceState"), "", Conflict),
            (Some(409), None, "", Conflict),
            // CloudFront's If-Match: a stale ETag, or none.
            (Some(412), Some("PreconditionFailed"), "", Conflict),
            (Some(400), Some("InvalidIfMatchVersion"), "", Conflict),
            (Some(409), Some("DistributionNotDisabled"), "", Conflict),
            (Some(409), Some("DistributionAlreadyExists"), "", Conflict),
            (
                Some(409),
                Some("OriginAccessControlAlreadyExists"),
                "",
                Conflict,
            ),
            (
                Some(409),
                Some("InvalidationBatchAlreadyExists"),
                "",
                Conflict,
            ),
            (Some(409), Some("BucketNotEmpty"), "", Conflict),
            (Some(409), Some("BucketAlreadyOwnedByYou"), "", Conflict),
            // Anything else.
            (Some(400), Some("LimitExceededException"), "", Other),
            (Some(400), Some("CodeStorageExceededException"), "", Other),
            (None, None, "", Other),
        ];
        for (status, code, message, expected) in table {
            assert_eq!(
                kind_of(*status, *code, message),
                *expected,
                "status {status:?} code {code:?} message {message:?}"
            );
        }
    }

    fn error(kind: ErrorKind) -> AwsError {
        AwsError {
            service: Service::Lambda,
            operation: "UpdateFunctionCode",
            resource: Some("shop-dev-api".into()),
            kind,
            code: Some("InvalidParameterValueException".into()),
            message: "Unzipped size must be smaller than 262144000 bytes".into(),
            http_status: Some(400),
            request_id: Some("req-1".into()),
        }
    }

    #[test]
    fn classes_and_reasons() {
        use ErrorKind::*;
        for (kind, class, reason) in [
            (Throttled, ErrorClass::Recoverable, "AwsThrottled"),
            (ServerError, ErrorClass::Recoverable, "AwsServerError"),
            (Transport, ErrorClass::Recoverable, "AwsUnreachable"),
            (Conflict, ErrorClass::Recoverable, "AwsConflict"),
            (NotFound, ErrorClass::Recoverable, "AwsResourceNotFound"),
            (Other, ErrorClass::Recoverable, "AwsError"),
            (BadResponse, ErrorClass::Recoverable, "AwsBadResponse"),
            (AccessDenied, ErrorClass::Stalled, "AwsAccessDenied"),
            (Validation, ErrorClass::Stalled, "AwsInvalidRequest"),
        ] {
            let err = error(kind);
            assert_eq!(err.class(), class, "{kind}");
            assert_eq!(err.reason(), reason, "{kind}");
            assert!(
                reason.chars().all(|c| c.is_ascii_alphabetic())
                    && reason.starts_with(|c: char| c.is_ascii_uppercase()),
                "{reason} must be CamelCase"
            );
        }
    }

    #[test]
    fn message_names_call_resource_code_and_aws_message() {
        let text = error(ErrorKind::Validation).to_string();
        assert_eq!(
            text,
            "AWS lambda UpdateFunctionCode on shop-dev-api failed (Validation InvalidParameterValueException, HTTP 400): Unzipped size must be smaller than 262144000 bytes (request id req-1)"
        );
    }

    /// An SDK error as the generated deserializers make it: a response with `status` whose
    /// body gave an error with `code` (none: the body could not be read at all).
    fn sdk_error(status: u16, code: Option<&str>) -> SdkError<ErrorMetadata, HttpResponse> {
        let mut metadata = ErrorMetadata::builder();
        if let Some(code) = code {
            metadata = metadata.code(code).message("refused");
        }
        let response = HttpResponse::new(
            StatusCode::try_from(status).unwrap(),
            SdkBody::from("\u{1f4a5} not XML"),
        );
        SdkError::service_error(metadata.build(), response)
    }

    #[test]
    fn an_unreadable_success_is_a_bad_response_that_is_retried() {
        let err = AwsError::from_sdk(
            Service::Ec2,
            "CreateFleet",
            Some("shop/SpotFleet/workers".into()),
            &sdk_error(200, None),
        );
        assert_eq!(err.kind, ErrorKind::BadResponse);
        assert_eq!(err.class(), ErrorClass::Recoverable);
        assert_eq!(err.reason(), "AwsBadResponse");
        let text = err.to_string();
        assert!(
            text.starts_with("AWS ec2 CreateFleet on shop/SpotFleet/workers failed (BadResponse, HTTP 200): the answer could not be read"),
            "{text}"
        );
        assert!(
            text.contains("AWS is read again before it is retried"),
            "{text}"
        );
        // An error answer keeps its own kind; a 5xx without a code is still the server's.
        for (status, code, kind) in [
            (400, Some("ThrottlingException"), ErrorKind::Throttled),
            (500, None, ErrorKind::ServerError),
            (404, Some("NoSuchBucket"), ErrorKind::NotFound),
        ] {
            let err = AwsError::from_sdk(Service::S3, "GetObject", None, &sdk_error(status, code));
            assert_eq!(err.kind, kind, "{status} {code:?}");
        }
    }

    #[test]
    fn throttling_has_its_own_metric_result() {
        assert_eq!(error(ErrorKind::Throttled).metric_result(), "throttled");
        assert_eq!(error(ErrorKind::ServerError).metric_result(), "error");
        assert_eq!(error(ErrorKind::NotFound).metric_result(), "not_found");
    }
}
