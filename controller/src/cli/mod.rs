//! `stagehand plan -f` and `stagehand apply -f`: the LambdaStage, SpotFleet and StaticSite
//! reconcile without a cluster.
//!
//! Both read manifests from a file and talk only to AWS (and, for a SpotFleet's TCP health
//! check, to its instances), through the same rounds the controller runs
//! ([`crate::lambda_stage::round`], [`crate::spot_fleet::round`],
//! [`crate::static_site::round`]), so a CI pipeline sees exactly what the controller would
//! decide.
//!
//! - [`manifest`]: reading the YAML documents.
//! - [`plan`]: the two commands, and the LambdaStage side of them; [`fleet`]: the SpotFleet
//!   side; [`site`]: the StaticSite side.
//! - [`report`] (with the pieces every kind's report shares), [`fleet_report`],
//!   [`site_report`]: what they print (text or JSON).
//!
//! Exit codes (like `terraform plan -detailed-exitcode`):
//!
//! | code | `plan`                                  | `apply`                                       |
//! |------|-----------------------------------------|-----------------------------------------------|
//! | 0    | no changes: every object in sync        | every object Ready                            |
//! | 1    | error (file, manifest, AWS unreachable) | error (file, manifest, AWS failing repeatedly) |
//! | 2    | usage error                             | usage error                                   |
//! | 3    | changes pending (actions, waits, drift) | —                                             |
//! | 4    | an object is stalled (would not converge) | an object is not Ready: Stalled, validation failed, paused, ObserveOnly drift |
//! | 5    | —                                       | `--timeout` reached before the objects settled |
//!
//! With several objects the most severe code wins (1, then 5, 4, 3, 0).

pub mod fleet;
pub mod fleet_report;
pub mod iam;
pub mod manifest;
pub mod plan;
pub mod report;
pub mod site;
pub mod site_report;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

use crate::base::duration::parse_go_duration;
use crate::settings::{AwsFlags, ProbeFlags, Settings};

/// Exit codes of `plan` and `apply` (see the module documentation).
pub mod exit {
    pub const IN_SYNC: u8 = 0;
    pub const ERROR: u8 = 1;
    pub const CHANGES_PENDING: u8 = 3;
    pub const NOT_READY: u8 = 4;
    pub const TIMED_OUT: u8 = 5;

    /// How severe a code is: the most severe code of several stages is the command's.
    pub const fn severity(code: u8) -> u8 {
        match code {
            IN_SYNC => 0,
            CHANGES_PENDING => 1,
            NOT_READY => 2,
            TIMED_OUT => 3,
            _ => 4,
        }
    }
}

/// Output format of `plan` and `apply`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Readable text.
    #[default]
    Text,
    /// One JSON document on stdout (progress of `apply` goes to stderr).
    Json,
}

/// How `plan` and `apply` reach AWS (the same flags and variables as `stagehand run`), and the
/// cluster id written in ownership tags.
#[derive(Args, Clone, Debug, PartialEq)]
pub struct AwsArgs {
    #[command(flatten)]
    pub aws: AwsFlags,

    /// The `stagehand.dev/cluster` tag written on what Stagehand creates or adopts: use the id
    /// of the cluster whose controller also manages these stages, if any.
    #[arg(
        long,
        env = "STAGEHAND_CLUSTER_ID",
        default_value = "default",
        value_parser = crate::settings::parse_cluster_id,
        value_name = "ID"
    )]
    pub cluster_id: String,

    /// Where SpotFleet health probes may connect.
    #[command(flatten)]
    pub probe: ProbeFlags,
}

impl AwsArgs {
    /// The controller settings these flags stand for (the rest at their defaults).
    pub fn settings(&self) -> Settings {
        Settings {
            aws: self.aws.clone(),
            cluster_id: self.cluster_id.clone(),
            probe: self.probe.clone(),
            ..Settings::default()
        }
    }
}

/// Flags of `stagehand plan`.
#[derive(Args, Clone, Debug, PartialEq)]
pub struct PlanArgs {
    /// Manifest file with one or more LambdaStage, SpotFleet and StaticSite documents (`-`
    /// reads stdin).
    #[arg(short = 'f', long = "filename", value_name = "FILE")]
    pub file: PathBuf,

    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = OutputFormat::Text, value_name = "FORMAT")]
    pub output: OutputFormat,

    /// Print each SpotFleet's rendered cloud-init document in full. Without it, text output
    /// shows the document only for fleets whose plan launches instances (what they will boot
    /// with) and a one-line summary otherwise; JSON output always holds it.
    #[arg(long)]
    pub show_user_data: bool,

    #[command(flatten)]
    pub aws: AwsArgs,
}

/// Flags of `stagehand apply`.
#[derive(Args, Clone, Debug, PartialEq)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub plan: PlanArgs,

    /// Give up (exit 5) when the objects have not settled after this long, as a Go-style
    /// duration. Waits AWS asks for (a function update, a stack operation, instances proving
    /// healthy, a distribution deploying, an invalidation) are honoured.
    #[arg(long, default_value = "10m", value_parser = parse_go_duration, value_name = "DURATION")]
    pub timeout: Duration,
}

/// The error and those of its causes that its message does not already include (the root
/// cause, such as "Connection refused", is often hidden a few levels down).
pub fn one_line(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !text.is_empty() && !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message.replace('\n', " ")
}
