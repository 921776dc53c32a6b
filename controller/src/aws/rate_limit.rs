//! Client-side rate limiting: one token bucket per (region, service) — and per operation where
//! AWS gives an operation its own quota — so that a reconcile wave over hundreds of objects
//! stays under the account's API limits instead of throttling every tool in the account.
//!
//! The bucket arithmetic ([`TokenBucket::reserve`]) is pure: it takes `now` and returns how long
//! the caller must wait. Callers reserve a token first and then wait, so waiting callers are
//! served in arrival order and no one spins.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use super::Service;

/// A sustained rate and a burst.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limit {
    /// Tokens added per second.
    pub per_second: f64,
    /// Bucket size: calls allowed at once after a quiet period.
    pub burst: u32,
}

impl Limit {
    pub const fn new(per_second: f64, burst: u32) -> Self {
        Self { per_second, burst }
    }
}

/// `--aws-rate-limit SERVICE=RATE[/BURST]`: one service's limit, replacing its default. Without
/// a burst the bucket holds one second's worth of calls (at least 1).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateLimitOverride {
    pub service: Service,
    pub limit: Limit,
}

impl std::str::FromStr for RateLimitOverride {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let usage = || {
            format!(
                "invalid rate limit {text:?}: expected SERVICE=RATE[/BURST] such as lambda=10 or ec2=20/50"
            )
        };
        let (service, rest) = text.trim().split_once('=').ok_or_else(usage)?;
        let service: Service = service.trim().parse()?;
        let (rate, burst) = match rest.split_once('/') {
            Some((rate, burst)) => (rate, Some(burst)),
            None => (rest, None),
        };
        let per_second: f64 = rate.trim().parse().map_err(|_| usage())?;
        if !(per_second.is_finite() && per_second > 0.0) {
            return Err(format!(
                "invalid rate limit {text:?}: the rate must be a positive number of calls per second"
            ));
        }
        let burst = match burst {
            Some(burst) => burst
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|b| *b >= 1)
                .ok_or_else(|| {
                    format!("invalid rate limit {text:?}: the burst must be a whole number ≥ 1")
                })?,
            // Truncation is intended: a whole number of calls, at least one.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            None => (per_second.ceil() as u32).max(1),
        };
        Ok(Self {
            service,
            limit: Limit::new(per_second, burst),
        })
    }
}

/// The limits of every service, with per-operation overrides.
#[derive(Clone, Debug, PartialEq)]
pub struct RateLimits {
    /// Per service; services not listed use `default`.
    pub services: HashMap<Service, Limit>,
    /// Operations with their own AWS quota (own bucket, not counted against the service's).
    pub operations: HashMap<(Service, &'static str), Limit>,
    pub default: Limit,
}

impl Default for RateLimits {
    /// Sized below AWS's published limits, which are per account and region and shared with
    /// every other tool in the account:
    /// - Lambda: 15 calls/s for all control-plane calls together → 10/s; GetFunction has its own
    ///   100/s → 50/s.
    /// - EC2: non-mutating calls refill at 20/s (bucket 100); RunInstances at 2/s (bucket 5).
    /// - CloudFormation: low, shared quotas (DescribeStacks ~ 10/s) → 5/s.
    /// - CloudFront: the control plane is global and slow → 5/s.
    /// - S3 (thousands per prefix) and SQS (very high) → 100/s and 50/s.
    fn default() -> Self {
        Self {
            services: HashMap::from([
                (Service::Lambda, Limit::new(10.0, 10)),
                (Service::Ec2, Limit::new(20.0, 50)),
                (Service::CloudFormation, Limit::new(5.0, 10)),
                (Service::CloudFront, Limit::new(5.0, 10)),
                (Service::S3, Limit::new(100.0, 200)),
                (Service::Sqs, Limit::new(50.0, 50)),
            ]),
            operations: HashMap::from([
                ((Service::Lambda, "GetFunction"), Limit::new(50.0, 50)),
                ((Service::Ec2, "RunInstances"), Limit::new(2.0, 5)),
                ((Service::Ec2, "TerminateInstances"), Limit::new(5.0, 20)),
            ]),
            default: Limit::new(10.0, 10),
        }
    }
}

impl RateLimits {
    /// Every bucket at the same limit (tests, or a deliberately slow controller).
    pub fn uniform(limit: Limit) -> Self {
        Self {
            services: HashMap::new(),
            operations: HashMap::new(),
            default: limit,
        }
    }

    /// The bucket an operation draws from, and its limit.
    fn bucket_for(&self, service: Service, operation: &'static str) -> (BucketKey, Limit) {
        match self.operations.get(&(service, operation)) {
            Some(limit) => (BucketKey::Operation(service, operation), *limit),
            None => (
                BucketKey::Service(service),
                self.services.get(&service).copied().unwrap_or(self.default),
            ),
        }
    }
}

/// A token bucket. `tokens` may go negative: each negative token is a caller already waiting.
#[derive(Clone, Debug, PartialEq)]
pub struct TokenBucket {
    limit: Limit,
    tokens: f64,
    updated: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(limit: Limit, now: Instant) -> Self {
        Self {
            limit,
            tokens: f64::from(limit.burst.max(1)),
            updated: now,
        }
    }

    /// Takes one token and returns how long the caller must wait before using it (zero when a
    /// token was available).
    pub fn reserve(&mut self, now: Instant) -> Duration {
        let capacity = f64::from(self.limit.burst.max(1));
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.limit.per_second).min(capacity);
        self.updated = now;
        self.tokens -= 1.0;
        if self.tokens >= 0.0 || self.limit.per_second <= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.limit.per_second)
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum BucketKey {
    Service(Service),
    Operation(Service, &'static str),
}

/// The buckets of every region, created on first use.
#[derive(Clone, Debug)]
pub struct RateLimiter {
    limits: Arc<RateLimits>,
    buckets: Arc<Mutex<HashMap<(String, BucketKey), TokenBucket>>>,
}

impl RateLimiter {
    pub fn new(limits: RateLimits) -> Self {
        Self {
            limits: Arc::new(limits),
            buckets: Arc::default(),
        }
    }

    /// Waits until a call of `operation` to `service` in `region` is allowed.
    pub async fn acquire(&self, region: &str, service: Service, operation: &'static str) {
        let wait = self.reserve(region, service, operation, Instant::now());
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    fn reserve(
        &self,
        region: &str,
        service: Service,
        operation: &'static str,
        now: Instant,
    ) -> Duration {
        let (key, limit) = self.limits.bucket_for(service, operation);
        // The lock is held for arithmetic only; a poisoned lock still holds valid buckets.
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        buckets
            .entry((region.to_owned(), key))
            .or_insert_with(|| TokenBucket::new(limit, now))
            .reserve(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_full_bucket_serves_its_burst_then_spaces_calls_at_the_rate() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(Limit::new(10.0, 3), start);
        let waits: Vec<Duration> = (0..6).map(|_| bucket.reserve(start)).collect();
        assert_eq!(
            waits,
            [ms(0), ms(0), ms(0), ms(100), ms(200), ms(300)],
            "burst of 3, then one every 100ms, queued in order"
        );
    }

    #[test]
    fn tokens_refill_with_time_up_to_the_burst() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(Limit::new(10.0, 2), start);
        assert_eq!(bucket.reserve(start), ms(0));
        assert_eq!(bucket.reserve(start), ms(0));
        // 50ms later half a token is back: wait the other half.
        assert_eq!(bucket.reserve(start + ms(50)), ms(50));
        // A long quiet period refills to the burst, not beyond.
        let later = start + Duration::from_secs(60);
        assert_eq!(bucket.reserve(later), ms(0));
        assert_eq!(bucket.reserve(later), ms(0));
        assert_eq!(bucket.reserve(later), ms(100));
    }

    #[test]
    fn operations_with_their_own_quota_have_their_own_bucket() {
        let limits = RateLimits::default();
        let limiter = RateLimiter::new(limits.clone());
        let now = Instant::now();
        let lambda_burst = limits.services[&Service::Lambda].burst;
        for _ in 0..lambda_burst {
            assert_eq!(
                limiter.reserve("eu-west-1", Service::Lambda, "ListFunctions", now),
                ms(0)
            );
        }
        assert!(
            !limiter
                .reserve("eu-west-1", Service::Lambda, "UpdateFunctionCode", now)
                .is_zero()
        );
        // GetFunction, another region, another service: untouched buckets.
        assert!(
            limiter
                .reserve("eu-west-1", Service::Lambda, "GetFunction", now)
                .is_zero()
        );
        assert!(
            limiter
                .reserve("us-east-1", Service::Lambda, "ListFunctions", now)
                .is_zero()
        );
        assert!(
            limiter
                .reserve("eu-west-1", Service::Sqs, "GetQueueUrl", now)
                .is_zero()
        );
    }

    #[test]
    fn default_lambda_limits_stay_under_aws_quotas() {
        let limits = RateLimits::default();
        assert!(limits.services[&Service::Lambda].per_second < 15.0);
        assert!(limits.operations[&(Service::Lambda, "GetFunction")].per_second < 100.0);
    }

    #[tokio::test(start_paused = true)]
    async fn acquisitions_take_the_expected_virtual_time() {
        let limiter = RateLimiter::new(RateLimits::uniform(Limit::new(10.0, 5)));
        let start = Instant::now();
        // 25 calls from 5 concurrent tasks: 5 at once, then 20 more at 10/s = 2s.
        let tasks: Vec<_> = (0..5)
            .map(|_| {
                let limiter = limiter.clone();
                tokio::spawn(async move {
                    for _ in 0..5 {
                        limiter
                            .acquire("eu-west-1", Service::Lambda, "ListFunctions")
                            .await;
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        // The timer has millisecond resolution: allow one tick of rounding per wait.
        let elapsed = start.elapsed();
        assert!(
            elapsed >= Duration::from_secs(2) && elapsed <= Duration::from_millis(2_025),
            "{elapsed:?}"
        );
    }
}
