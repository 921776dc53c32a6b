//! The one path every AWS call takes: rate limit → write fence → call → metrics → error
//! mapping.

use std::future::Future;

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use tokio::time::Instant;

use super::Service;
use super::error::AwsError;
use super::fence::{Refusal, WriteFence, is_write};
use super::metrics::AwsMetrics;
use super::rate_limit::RateLimiter;

/// Calls one service in one region on behalf of an adapter.
#[derive(Clone, Debug)]
pub struct Caller {
    region: String,
    service: Service,
    limiter: RateLimiter,
    metrics: AwsMetrics,
    fence: WriteFence,
}

impl Caller {
    pub(crate) fn new(
        region: String,
        service: Service,
        limiter: RateLimiter,
        metrics: AwsMetrics,
        fence: WriteFence,
    ) -> Self {
        Self {
            region,
            service,
            limiter,
            metrics,
            fence,
        }
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    pub fn service(&self) -> Service {
        self.service
    }

    /// Runs `request` (an SDK `send()` future: nothing is sent before it is polled) once the
    /// rate limiter allows it and, for a write, the write fence (checked after the rate-limit
    /// wait, right before sending; a write still in flight when the fence closes is abandoned,
    /// so no SDK retry goes out after it). Records `stagehand_aws_api_requests_total{result=
    /// success|error|throttled|not_found|fenced}` and the duration (SDK retries included,
    /// rate-limit wait excluded; none for a write never sent).
    ///
    /// SDK futures are large (~17 KB); the request is boxed before anything else so the
    /// adapters' own futures stay small.
    pub fn call<'a, T, E, F>(
        &'a self,
        operation: &'static str,
        resource: Option<&'a str>,
        request: F,
    ) -> impl Future<Output = Result<T, AwsError>> + 'a
    where
        F: Future<Output = Result<T, SdkError<E, HttpResponse>>> + 'a,
        E: ProvideErrorMetadata + std::error::Error + 'static,
        T: 'a,
    {
        let request = Box::pin(request);
        async move {
            self.limiter
                .acquire(&self.region, self.service, operation)
                .await;
            let write = is_write(operation);
            let started = Instant::now();
            if write && let Err(refusal) = self.fence.check(started) {
                return Err(self.refused(operation, resource, refusal, false));
            }
            let result = if write {
                tokio::select! {
                    result = request => result,
                    refusal = self.fence.refusing() => {
                        return Err(self.refused(operation, resource, refusal, true));
                    }
                }
            } else {
                request.await
            };
            let elapsed = started.elapsed();
            let service = self.service.as_str();
            match result {
                Ok(output) => {
                    self.metrics
                        .record_call(service, operation, "success", elapsed);
                    Ok(output)
                }
                Err(err) => {
                    let err = AwsError::from_sdk(
                        self.service,
                        operation,
                        resource.map(str::to_owned),
                        &err,
                    );
                    self.metrics
                        .record_call(service, operation, err.metric_result(), elapsed);
                    tracing::debug!(
                        service,
                        operation,
                        region = %self.region,
                        kind = %err.kind,
                        code = err.code.as_deref().unwrap_or(""),
                        "AWS call failed"
                    );
                    Err(err)
                }
            }
        }
    }

    /// A write the fence refused (`in_flight`: abandoned after it was sent): counted as
    /// `result="fenced"` and logged, so an operator sees a replica that acted on stale
    /// leadership being stopped.
    fn refused(
        &self,
        operation: &'static str,
        resource: Option<&str>,
        refusal: Refusal,
        in_flight: bool,
    ) -> AwsError {
        let service = self.service.as_str();
        self.metrics.record_refused(service, operation);
        tracing::warn!(
            service,
            operation,
            region = %self.region,
            resource = resource.unwrap_or(""),
            in_flight,
            "AWS write refused by the leader fence: {refusal}; the object is requeued"
        );
        AwsError::fenced(
            self.service,
            operation,
            resource.map(str::to_owned),
            refusal,
        )
    }

    /// Like [`Caller::call`], for calls whose "not found" answer is a normal result (`None`).
    pub async fn call_optional<T, E, F>(
        &self,
        operation: &'static str,
        resource: Option<&str>,
        request: F,
    ) -> Result<Option<T>, AwsError>
    where
        F: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        match self.call(operation, resource, request).await {
            Ok(output) => Ok(Some(output)),
            Err(err) if err.is_not_found() => Ok(None),
            Err(err) => Err(err),
        }
    }
}
