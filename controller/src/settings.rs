//! `stagehand run` configuration: command-line flags with `STAGEHAND_*` environment fallbacks.
//!
//! Everything here is validated while the command line is parsed, so a bad value is a usage
//! error (exit code 2) that names the flag, before anything connects anywhere.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

use crate::aws::{AwsSettings, RateLimitOverride};
use crate::base::duration::{DurationError, parse_go_duration};
use crate::probe::ProbeSettings;

/// Shortest resync interval accepted, from the flag or from `spec.resyncInterval`: re-reading
/// AWS more often than this spends the account's shared API rate for no benefit.
pub const MIN_RESYNC: Duration = Duration::from_secs(30);

/// Flags of `stagehand run`.
#[derive(Args, Clone, Debug, PartialEq)]
pub struct Settings {
    /// Watch only this namespace. Without it Stagehand watches all namespaces (and needs
    /// cluster-wide RBAC).
    #[arg(long, env = "STAGEHAND_NAMESPACE", value_name = "NAMESPACE")]
    pub namespace: Option<String>,

    /// Maximum number of objects of one kind reconciled at the same time.
    #[arg(
        long,
        env = "STAGEHAND_CONCURRENCY",
        default_value_t = 8,
        value_parser = clap::value_parser!(u16).range(1..),
        value_name = "N"
    )]
    pub concurrency: u16,

    /// How often a converged object is re-checked against AWS when its spec has no
    /// `resyncInterval`, as a Go-style duration (90s, 5m, 1h30m). At least 30s.
    #[arg(
        long,
        env = "STAGEHAND_DEFAULT_RESYNC",
        default_value = "5m",
        value_parser = parse_resync_interval,
        value_name = "DURATION"
    )]
    pub default_resync: Duration,

    /// How long one listing of an AWS account's functions, event-source mappings, layers,
    /// queues and artifacts serves every object of its region (Go-style duration; `0` lists
    /// for every reconcile). AWS allows 15 Lambda control-plane calls/s per account and region
    /// for all tools together, so stages share listings instead of reading each function.
    /// What Stagehand changes itself is read back at once; changes made by others are seen
    /// within this time (plus the object's resync). At most 10m.
    #[arg(
        long,
        env = "STAGEHAND_INVENTORY_MAX_AGE",
        default_value = "30s",
        value_parser = parse_inventory_max_age,
        value_name = "DURATION"
    )]
    pub inventory_max_age: Duration,

    /// The controller-wide AWS event queue (SQS name or ARN) that EventBridge feeds with S3
    /// `Object Created`, CloudTrail API-call and heartbeat events (template:
    /// examples/aws/event-queue.yaml). A name is polled in every region where LambdaStages or
    /// StaticSites live; an ARN in its own region. A new artifact or a hand change is then
    /// reconciled within seconds, and drift-only reads (aliases) slow to hourly while the feed
    /// is healthy. Unset: polling only.
    #[arg(long, env = "STAGEHAND_EVENT_QUEUE", value_name = "NAME_OR_ARN")]
    pub event_queue: Option<String>,

    /// How old the region-wide Lambda listings (functions, event-source mappings, layer
    /// versions) may be while the `--event-queue` of their region is healthy (Go-style
    /// duration, at most 1h; at or below `--inventory-max-age`: never stretched). CloudTrail
    /// then announces what a new listing would find (a function created, a mapping made, a
    /// layer published); the listing is the backstop for an event lost. Unhealthy or no feed:
    /// `--inventory-max-age`.
    #[arg(
        long,
        env = "STAGEHAND_FEED_BACKSTOP_MAX_AGE",
        default_value = "10m",
        value_parser = parse_feed_backstop_max_age,
        value_name = "DURATION"
    )]
    pub feed_backstop_max_age: Duration,

    /// The IAM ARN Stagehand calls AWS as (an IAM user, a role, or an assumed-role session):
    /// CloudTrail events of its own writes do not trigger a second round. Unset: learned with
    /// STS `GetCallerIdentity` when the event feed starts; if that fails, every write event
    /// triggers one extra round (harmless).
    #[arg(long, env = "STAGEHAND_EVENT_FEED_IDENTITY", value_name = "ARN")]
    pub event_feed_identity: Option<String>,

    /// Identifies this cluster in the `stagehand.dev/cluster` tag on every AWS resource
    /// Stagehand creates. Give each cluster sharing an AWS account its own id.
    #[arg(
        long,
        env = "STAGEHAND_CLUSTER_ID",
        default_value = "default",
        value_parser = parse_cluster_id,
        value_name = "ID"
    )]
    pub cluster_id: String,

    /// Address of the HTTP server for /metrics, /healthz and /readyz.
    #[arg(
        long,
        env = "STAGEHAND_METRICS_ADDR",
        default_value = "0.0.0.0:8080",
        value_name = "ADDR:PORT"
    )]
    pub metrics_addr: SocketAddr,

    /// Log format: `text` (human readable) or `json` (one object per line).
    #[arg(
        long,
        env = "STAGEHAND_LOG_FORMAT",
        value_enum,
        default_value_t = LogFormat::Text,
        value_name = "FORMAT"
    )]
    pub log_format: LogFormat,

    /// How Stagehand reaches AWS.
    #[command(flatten)]
    pub aws: AwsFlags,

    /// Where health probes may connect.
    #[command(flatten)]
    pub probe: ProbeFlags,

    /// Kubeconfig file to use. Without it Stagehand uses the in-cluster service account or
    /// ~/.kube/config.
    #[arg(long, env = "KUBECONFIG", value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,

    /// Run the controllers only while holding a coordination.k8s.io Lease, so that one replica
    /// of several reconciles. Off for local runs; the Helm chart turns it on.
    #[arg(
        long,
        env = "STAGEHAND_LEADER_ELECTION",
        default_value_t = false,
        value_name = "BOOL",
        num_args = 0..=1,
        default_missing_value = "true",
        action = clap::ArgAction::Set
    )]
    pub leader_election: bool,

    /// Namespace of the leader Lease. Default: the pod's namespace (POD_NAMESPACE, then the
    /// service account's namespace), else `default`.
    #[arg(
        long,
        env = "STAGEHAND_LEADER_ELECTION_NAMESPACE",
        value_name = "NAMESPACE"
    )]
    pub leader_election_namespace: Option<String>,

    /// Name of the leader Lease.
    #[arg(
        long,
        env = "STAGEHAND_LEADER_ELECTION_LEASE_NAME",
        default_value = crate::runtime::leader::DEFAULT_LEASE_NAME,
        value_name = "NAME"
    )]
    pub leader_election_lease_name: String,

    /// How long a standby waits, after it last saw the leader's Lease change, before taking it
    /// over (Go-style duration). Longer rides out API server hiccups; shorter recovers faster
    /// from a dead leader.
    #[arg(
        long,
        env = "STAGEHAND_LEADER_ELECTION_LEASE_DURATION",
        default_value = "15s",
        value_parser = parse_election_duration,
        value_name = "DURATION"
    )]
    pub leader_election_lease_duration: Duration,

    /// How long the leader keeps acting without a successful renewal: after it, AWS writes are
    /// refused and the controllers stop. Must be shorter than the lease duration (the gap is
    /// the safety margin against a standby taking over while a write is sent).
    #[arg(
        long,
        env = "STAGEHAND_LEADER_ELECTION_RENEW_DEADLINE",
        default_value = "10s",
        value_parser = parse_election_duration,
        value_name = "DURATION"
    )]
    pub leader_election_renew_deadline: Duration,

    /// How often a standby tries to acquire the Lease, and a leader retries a failed renewal.
    /// Must be shorter than the renew deadline.
    #[arg(
        long,
        env = "STAGEHAND_LEADER_ELECTION_RETRY_PERIOD",
        default_value = "2s",
        value_parser = parse_election_duration,
        value_name = "DURATION"
    )]
    pub leader_election_retry_period: Duration,
}

impl Default for Settings {
    /// The values `stagehand run` uses when no flag or environment variable is given.
    fn default() -> Self {
        Self {
            namespace: None,
            concurrency: 8,
            default_resync: Duration::from_secs(5 * 60),
            inventory_max_age: Duration::from_secs(30),
            event_queue: None,
            feed_backstop_max_age: Duration::from_secs(600),
            event_feed_identity: None,
            cluster_id: "default".to_owned(),
            metrics_addr: SocketAddr::from(([0, 0, 0, 0], 8080)),
            log_format: LogFormat::Text,
            aws: AwsFlags::default(),
            probe: ProbeFlags::default(),
            kubeconfig: None,
            leader_election: false,
            leader_election_namespace: None,
            leader_election_lease_name: crate::runtime::leader::DEFAULT_LEASE_NAME.to_owned(),
            leader_election_lease_duration: Duration::from_secs(15),
            leader_election_renew_deadline: Duration::from_secs(10),
            leader_election_retry_period: Duration::from_secs(2),
        }
    }
}

impl Settings {
    /// How the AWS adapters call AWS.
    pub fn aws_settings(&self) -> AwsSettings {
        self.aws.aws_settings()
    }
}

/// How Stagehand reaches AWS: the same flags (and environment variables) for `run`, `plan` and
/// `apply`.
#[derive(Args, Clone, Debug, PartialEq)]
pub struct AwsFlags {
    /// Send every AWS API call to this endpoint instead of AWS (moto, LocalStack). S3 then uses
    /// path-style addressing.
    #[arg(long, env = "AWS_ENDPOINT_URL", value_name = "URL")]
    pub aws_endpoint_url: Option<String>,

    /// AWS region. Without it the default chain is used (AWS_REGION, AWS_DEFAULT_REGION, the
    /// profile in ~/.aws/config, instance metadata).
    #[arg(long, env = "STAGEHAND_AWS_REGION", value_name = "REGION")]
    pub aws_region: Option<String>,

    /// Attempts per AWS call, the first included. Throttling, 5xx and transport errors are
    /// retried with exponential backoff and jitter; anything else fails at once.
    #[arg(
        long,
        env = "STAGEHAND_AWS_MAX_ATTEMPTS",
        default_value_t = 3,
        value_parser = clap::value_parser!(u32).range(1..=10),
        value_name = "N"
    )]
    pub aws_max_attempts: u32,

    /// Time limit for one attempt of an AWS call (connect, send, receive), as a Go-style
    /// duration.
    #[arg(
        long,
        env = "STAGEHAND_AWS_ATTEMPT_TIMEOUT",
        default_value = "30s",
        value_parser = parse_go_duration,
        value_name = "DURATION"
    )]
    pub aws_attempt_timeout: Duration,

    /// Client-side rate limit for one AWS service, per region: `SERVICE=RATE[/BURST]` with
    /// SERVICE one of lambda, s3, cloudformation, sqs, ec2, cloudfront (e.g. `lambda=5/5`).
    /// Repeat the flag, or separate with commas in the environment variable. Defaults stay
    /// below AWS's account-wide quotas (Lambda 10/s of the 15/s the whole account shares).
    #[arg(
        long = "aws-rate-limit",
        env = "STAGEHAND_AWS_RATE_LIMITS",
        value_delimiter = ',',
        value_name = "SERVICE=RATE[/BURST]"
    )]
    pub aws_rate_limits: Vec<RateLimitOverride>,
}

impl Default for AwsFlags {
    fn default() -> Self {
        Self {
            aws_endpoint_url: None,
            aws_region: None,
            aws_max_attempts: 3,
            aws_attempt_timeout: Duration::from_secs(30),
            aws_rate_limits: Vec::new(),
        }
    }
}

impl AwsFlags {
    /// How the AWS adapters call AWS: attempts and timeout from the flags, the default rate
    /// limits with the `--aws-rate-limit` overrides applied.
    pub fn aws_settings(&self) -> AwsSettings {
        let mut aws = AwsSettings {
            max_attempts: self.aws_max_attempts,
            attempt_timeout: Some(self.aws_attempt_timeout),
            ..AwsSettings::default()
        };
        for limit in &self.aws_rate_limits {
            aws.rate_limits.services.insert(limit.service, limit.limit);
        }
        aws
    }
}

/// Where health probes may connect: the same flag for `run` and `apply`.
#[derive(Args, Clone, Debug, Default, PartialEq, Eq)]
pub struct ProbeFlags {
    /// Never open a health-check connection (SpotFleet `healthCheck.tcpPort`) to an address
    /// outside 127.0.0.0/8. For tests, demos and CI against an AWS emulator, whose instances
    /// have made-up VPC addresses: a fleet whose instances are not on loopback is reported
    /// Stalled (reason ProbeNotAllowed) instead of dialled.
    #[arg(
        long,
        env = "STAGEHAND_LOOPBACK_ONLY",
        default_value_t = false,
        value_parser = clap::builder::BoolishValueParser::new(),
        num_args = 0..=1,
        default_missing_value = "true",
        action = clap::ArgAction::Set,
        value_name = "BOOL"
    )]
    pub loopback_only: bool,
}

impl ProbeFlags {
    /// How the prober dials: the default timeout and concurrency, the guard from the flag.
    pub fn probe_settings(&self) -> ProbeSettings {
        ProbeSettings {
            loopback_only: self.loopback_only,
            ..ProbeSettings::default()
        }
    }
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines (colored in a terminal).
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Parses a resync interval and enforces [`MIN_RESYNC`]. Used for `--default-resync` and for
/// `spec.resyncInterval`.
pub fn parse_resync_interval(input: &str) -> Result<Duration, DurationError> {
    let interval = parse_go_duration(input)?;
    if interval < MIN_RESYNC {
        return Err(DurationError::TooShort {
            input: input.to_owned(),
            minimum: MIN_RESYNC,
        });
    }
    Ok(interval)
}

/// Longest `--inventory-max-age`: a staler picture of AWS would hide drift for too long.
pub const MAX_INVENTORY_AGE: Duration = Duration::from_secs(600);

/// `--inventory-max-age`: a Go duration from 0 to [`MAX_INVENTORY_AGE`].
pub fn parse_inventory_max_age(input: &str) -> Result<Duration, String> {
    parse_age_at_most(input, MAX_INVENTORY_AGE)
}

/// Longest `--feed-backstop-max-age`: the cadence of the drift-only reads on a healthy feed
/// (`lambda_stage::observe::DRIFT_BACKSTOP`); a change whose event was lost stays unseen no
/// longer than a hand-moved alias.
pub const MAX_FEED_BACKSTOP: Duration = Duration::from_secs(3600);

/// `--feed-backstop-max-age`: a Go duration from 0 to [`MAX_FEED_BACKSTOP`].
pub fn parse_feed_backstop_max_age(input: &str) -> Result<Duration, String> {
    parse_age_at_most(input, MAX_FEED_BACKSTOP)
}

fn parse_age_at_most(input: &str, longest: Duration) -> Result<Duration, String> {
    let age = parse_go_duration(input).map_err(|e| e.to_string())?;
    if age > longest {
        return Err(format!(
            "{input} is longer than {}s: changes made outside Stagehand would go unnoticed for too long",
            longest.as_secs()
        ));
    }
    Ok(age)
}

/// A leader election timing: a positive Go-style duration (how they relate to each other is
/// checked when the election starts).
pub fn parse_election_duration(input: &str) -> Result<Duration, String> {
    let duration = parse_go_duration(input).map_err(|e| e.to_string())?;
    if duration.is_zero() {
        return Err(format!("{input} must be longer than 0"));
    }
    Ok(duration)
}

/// The cluster id ends up in an AWS tag value, so it must be short and plain.
pub fn parse_cluster_id(input: &str) -> Result<String, String> {
    let valid = !input.is_empty()
        && input.len() <= 63
        && input
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if valid {
        Ok(input.to_owned())
    } else {
        Err(format!(
            "invalid cluster id {input:?}: use 1 to 63 letters, digits, '-', '_' or '.'"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct TestCli {
        #[command(flatten)]
        settings: Settings,
    }

    const fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn resync_intervals_below_30s_are_rejected() {
        assert_eq!(parse_resync_interval("30s"), Ok(secs(30)));
        assert_eq!(parse_resync_interval("0.5m"), Ok(secs(30)));
        let err = parse_resync_interval("29s").unwrap_err();
        assert_eq!(
            err,
            DurationError::TooShort {
                input: "29s".to_owned(),
                minimum: MIN_RESYNC
            }
        );
        assert_eq!(
            err.to_string(),
            "duration \"29s\" is shorter than the minimum of 30s"
        );
        assert!(parse_resync_interval("29999ms").is_err());
        assert!(parse_resync_interval("0").is_err());
    }

    #[test]
    fn aws_flags_shape_the_adapters_settings() {
        let parsed = TestCli::try_parse_from([
            "stagehand",
            "--aws-max-attempts",
            "5",
            "--aws-attempt-timeout",
            "10s",
            "--aws-rate-limit",
            "lambda=5/5",
            "--aws-rate-limit",
            "EC2=2.5",
        ])
        .unwrap()
        .settings;
        let aws = parsed.aws_settings();
        assert_eq!(aws.max_attempts, 5);
        assert_eq!(aws.attempt_timeout, Some(secs(10)));
        let lambda = aws.rate_limits.services[&crate::aws::Service::Lambda];
        assert_eq!((lambda.per_second, lambda.burst), (5.0, 5));
        let ec2 = aws.rate_limits.services[&crate::aws::Service::Ec2];
        assert_eq!((ec2.per_second, ec2.burst), (2.5, 3));
        // Services not overridden keep their defaults.
        assert_eq!(
            aws.rate_limits.services[&crate::aws::Service::Sqs],
            crate::aws::RateLimits::default().services[&crate::aws::Service::Sqs]
        );

        for (bad, says) in [
            (
                &["--aws-rate-limit", "dynamodb=5"][..],
                "unknown AWS service",
            ),
            (&["--aws-rate-limit", "lambda=0"], "positive"),
            (&["--aws-rate-limit", "lambda=5/0"], "burst"),
            (&["--aws-rate-limit", "lambda"], "SERVICE=RATE"),
            (&["--aws-max-attempts", "0"], "0"),
            (&["--aws-attempt-timeout", "soon"], "invalid duration"),
        ] {
            let args = std::iter::once("stagehand").chain(bad.iter().copied());
            let err = TestCli::try_parse_from(args).unwrap_err().to_string();
            assert!(err.contains(says), "{bad:?}: {err}");
        }
    }

    #[test]
    fn defaults_match_the_documented_values() {
        // Parsing with no flags must give exactly `Settings::default()`. Environment variables
        // would leak in here, so only assert when none of ours is set in the test environment.
        let ours = std::env::vars().any(|(k, _)| {
            k.starts_with("STAGEHAND_") || k == "AWS_ENDPOINT_URL" || k == "KUBECONFIG"
        });
        let parsed = TestCli::try_parse_from(["stagehand"]).unwrap().settings;
        if !ours {
            assert_eq!(parsed, Settings::default());
        }
        assert_eq!(Settings::default().default_resync, secs(300));
        assert_eq!(Settings::default().inventory_max_age, secs(30));
        assert_eq!(parse_inventory_max_age("0"), Ok(Duration::ZERO));
        assert_eq!(parse_inventory_max_age("2m"), Ok(secs(120)));
        assert!(parse_inventory_max_age("11m").is_err_and(|e| e.contains("longer than 600s")));
        assert_eq!(Settings::default().feed_backstop_max_age, secs(600));
        assert_eq!(parse_feed_backstop_max_age("0"), Ok(Duration::ZERO));
        assert_eq!(parse_feed_backstop_max_age("1h"), Ok(secs(3600)));
        assert!(parse_feed_backstop_max_age("61m").is_err_and(|e| e.contains("longer than 3600s")));
        assert_eq!(Settings::default().concurrency, 8);
    }

    #[test]
    fn flags_override_defaults() {
        let parsed = TestCli::try_parse_from([
            "stagehand",
            "--namespace",
            "shop",
            "--concurrency",
            "3",
            "--default-resync",
            "1h30m",
            "--cluster-id",
            "prod-eu",
            "--metrics-addr",
            "127.0.0.1:9090",
            "--log-format",
            "json",
            "--aws-endpoint-url",
            "http://localhost:5000",
            "--aws-region",
            "eu-west-1",
            "--kubeconfig",
            "/tmp/kc",
            "--leader-election",
            "--leader-election-namespace",
            "ops",
            "--leader-election-lease-name",
            "stagehand-prod",
        ])
        .unwrap()
        .settings;
        assert_eq!(parsed.namespace.as_deref(), Some("shop"));
        assert_eq!(parsed.concurrency, 3);
        assert_eq!(parsed.default_resync, secs(5400));
        assert_eq!(parsed.cluster_id, "prod-eu");
        assert_eq!(parsed.metrics_addr, "127.0.0.1:9090".parse().unwrap());
        assert_eq!(parsed.log_format, LogFormat::Json);
        assert_eq!(
            parsed.aws.aws_endpoint_url.as_deref(),
            Some("http://localhost:5000")
        );
        assert_eq!(parsed.aws.aws_region.as_deref(), Some("eu-west-1"));
        assert_eq!(parsed.kubeconfig, Some(PathBuf::from("/tmp/kc")));
        assert!(parsed.leader_election);
        assert_eq!(parsed.leader_election_namespace.as_deref(), Some("ops"));
        assert_eq!(parsed.leader_election_lease_name, "stagehand-prod");
        for (args, expected) in [
            (&["stagehand", "--leader-election=false"][..], false),
            (&["stagehand", "--leader-election=true"][..], true),
        ] {
            assert_eq!(
                TestCli::try_parse_from(args)
                    .unwrap()
                    .settings
                    .leader_election,
                expected,
                "{args:?}"
            );
        }
    }

    #[test]
    fn bad_values_are_usage_errors_naming_the_flag() {
        let cases: &[(&[&str], &str)] = &[
            (&["--default-resync", "10s"], "--default-resync"),
            (&["--default-resync", "five minutes"], "--default-resync"),
            (&["--concurrency", "0"], "--concurrency"),
            (&["--cluster-id", "has space"], "--cluster-id"),
            (&["--metrics-addr", "8080"], "--metrics-addr"),
            (&["--log-format", "xml"], "--log-format"),
        ];
        for (args, flag) in cases {
            let err = TestCli::try_parse_from(std::iter::once(&"stagehand").chain(args.iter()))
                .unwrap_err();
            assert!(err.to_string().contains(flag), "{args:?}: {err}");
            assert_eq!(err.exit_code(), 2, "{args:?}");
        }
    }
}
