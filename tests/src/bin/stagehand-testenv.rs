//! `stagehand-testenv up --state-dir DIR [--port N] [--aws-port N] [--no-aws]`: runs the
//! Kubernetes API stand-in and the AWS test floor (moto behind the fault/counting proxy) in the
//! foreground, writes `DIR/kubeconfig` and `DIR/env` once everything is ready, and stops
//! everything it started on SIGINT/SIGTERM.
//!
//! `stagehand-testenv seed --example chalice [--new-build] [--state-dir DIR]`: against the AWS
//! endpoint of a running `up` (`AWS_ENDPOINT_URL`, from the environment or `DIR/env`), creates
//! what `examples/lambda-stage-chalice.yaml` refers to as a Chalice deploy would have left it
//! ([`stagehand_testenv::aws::seed`]); `--new-build` only uploads a new build under the same key.

use std::fmt::Write as _;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use stagehand_testenv::TestApiServer;
use stagehand_testenv::aws::AwsFloor;
use stagehand_testenv::aws::seed::{Seeder, chalice, parse_env_file};

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
    /// Seed the AWS endpoint of a running `up` with what an example LambdaStage takes over.
    Seed {
        /// Which example's account state to create.
        #[arg(long, value_enum)]
        example: Example,
        /// Only upload a new build under the example's S3 key (a code change, no spec change).
        #[arg(long)]
        new_build: bool,
        /// Read `AWS_ENDPOINT_URL` from `DIR/env` instead of the environment.
        #[arg(long)]
        state_dir: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Example {
    /// examples/lambda-stage-chalice.yaml
    Chalice,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Up {
            state_dir,
            port,
            aws_port,
            no_aws,
        } => up(state_dir, port, aws_port, no_aws).await,
        Command::Seed {
            example: Example::Chalice,
            new_build,
            state_dir,
        } => seed_chalice(state_dir, new_build).await,
    }
}

async fn seed_chalice(
    state_dir: Option<PathBuf>,
    new_build: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let vars = match state_dir {
        Some(dir) => parse_env_file(&std::fs::read_to_string(dir.join("env"))?),
        None => std::env::vars().collect(),
    };
    let seeder = Seeder::from_vars(&vars).await?;
    if new_build {
        let etag = seeder.upload_chalice_build(chalice::NEW_BUILD).await?;
        println!(
            "uploaded build {} to s3://{}/{} (ETag {etag})",
            chalice::NEW_BUILD,
            chalice::BUCKET,
            chalice::KEY
        );
    } else {
        let report = seeder.seed_chalice().await?;
        println!("seeded the Chalice example's account:");
        print!("{}", report.render());
    }
    Ok(())
}

async fn up(
    state_dir: PathBuf,
    port: u16,
    aws_port: u16,
    no_aws: bool,
) -> Result<(), Box<dyn std::error::Error>> {
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
