//! `stagehand-testenv up --state-dir DIR [--port N]`: runs the Kubernetes API stand-in in the
//! foreground, writes `DIR/kubeconfig` and `DIR/env`, stops on SIGINT/SIGTERM.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use stagehand_testenv::TestApiServer;

#[derive(Debug, Parser)]
#[command(
    name = "stagehand-testenv",
    about = "Stagehand's local test environment"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the Kubernetes API stand-in and run until interrupted.
    Up {
        /// Where to write `kubeconfig` and `env`.
        #[arg(long)]
        state_dir: PathBuf,
        /// API port on 127.0.0.1 (default: a free port).
        #[arg(long, default_value_t = 0)]
        port: u16,
    },
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let Command::Up { state_dir, port } = Cli::parse().command;
    std::fs::create_dir_all(&state_dir)?;
    let server = TestApiServer::builder().port(port).start().await?;
    let kubeconfig = state_dir.join("kubeconfig");
    server.write_kubeconfig(&kubeconfig)?;
    let kubeconfig = std::fs::canonicalize(&kubeconfig)?;
    let env_file = state_dir.join("env");
    std::fs::write(
        &env_file,
        format!("export KUBECONFIG={}\n", kubeconfig.display()),
    )?;
    println!("Kubernetes API stand-in listening on {}", server.url());
    println!("  source {}    # sets KUBECONFIG", env_file.display());
    println!("  kubectl apply -f crds/yaml/ && kubectl get stagehand");
    println!("Ctrl-C stops it.");
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    server.shutdown().await;
    Ok(())
}
