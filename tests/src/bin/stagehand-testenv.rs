//! `stagehand-testenv up --state-dir DIR [--port N] [--aws-port N] [--no-aws]`: runs the
//! Kubernetes API stand-in and the AWS test floor (moto behind the fault/counting proxy) in the
//! foreground, writes `DIR/kubeconfig` and `DIR/env` once everything is ready, and stops
//! everything it started on SIGINT/SIGTERM.

use std::fmt::Write as _;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use stagehand_testenv::TestApiServer;
use stagehand_testenv::aws::AwsFloor;

#[derive(Debug, Parser)]
#[command(
    name = "stagehand-testenv",
    about = "Stagehand's local test environment: a Kubernetes API stand-in and moto behind a fault proxy"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the Kubernetes API stand-in and the AWS test floor; run until interrupted.
    Up {
        /// Where to write `kubeconfig` and `env` (shell `export` lines to `source`).
        #[arg(long)]
        state_dir: PathBuf,
        /// Kubernetes API port on 127.0.0.1 (default: a free port).
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// AWS endpoint (fault proxy) port on 127.0.0.1 (default: a free port).
        #[arg(long, default_value_t = 0)]
        aws_port: u16,
        /// Start only the Kubernetes API stand-in (no moto, no proxy).
        #[arg(long)]
        no_aws: bool,
    },
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let Command::Up {
        state_dir,
        port,
        aws_port,
        no_aws,
    } = Cli::parse().command;
    std::fs::create_dir_all(&state_dir)?;
    let server = TestApiServer::builder().port(port).start().await?;
    let aws = if no_aws {
        None
    } else {
        Some(AwsFloor::start_on(aws_port).await?)
    };

    let kubeconfig = state_dir.join("kubeconfig");
    server.write_kubeconfig(&kubeconfig)?;
    let kubeconfig = std::fs::canonicalize(&kubeconfig)?;
    let mut env = format!("export KUBECONFIG={}\n", kubeconfig.display());
    for (key, value) in aws.iter().flat_map(AwsFloor::env) {
        writeln!(env, "export {key}={value}")?;
    }
    // Written last: its presence means everything is ready.
    let env_file = state_dir.join("env");
    std::fs::write(&env_file, env)?;

    println!("Kubernetes API stand-in listening on {}", server.url());
    if let Some(aws) = &aws {
        println!(
            "AWS endpoint (moto behind the fault proxy) on {}",
            aws.endpoint_url()
        );
        println!("  admin API: {}/calls, /faults", aws.admin_url());
    }
    println!(
        "  source {}    # sets KUBECONFIG and the AWS_* variables",
        env_file.display()
    );
    println!("  kubectl apply -f crds/yaml/ && kubectl get stagehand");
    println!("Ctrl-C stops it.");
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    drop(aws);
    server.shutdown().await;
    Ok(())
}
