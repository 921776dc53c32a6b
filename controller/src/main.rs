//! The `stagehand` binary.
//!
//! Exit codes: 0 success, 1 runtime error (printed as one line plus a hint), 2 usage error;
//! `plan` and `apply` add 3 (changes pending), 4 (not Ready / stalled) and 5 (timed out), see
//! [`stagehand::cli`].

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use stagehand::cli::one_line;
use stagehand::runtime::Error;
use stagehand::settings::Settings;

/// jemalloc, not glibc's malloc: the controller allocates from every runtime thread and frees
/// in bursts (a region's listing replaced, a sweep of rounds), and glibc kept what was freed in
/// per-thread arenas — at 10,000 objects 188 MB resident for 76 MB in use. jemalloc returns
/// freed pages to the system as they decay (docs/benchmarks.md, "10,000 objects").
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Keeps serverless stages on AWS (Lambda, Spot fleets, static sites) exactly as declared in
/// Kubernetes.
#[derive(Parser, Debug)]
#[command(name = "stagehand", version = stagehand::VERSION, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the controller: reconcile Stagehand objects and serve /metrics, /healthz, /readyz.
    Run(Box<Settings>),
    /// Print what Stagehand would change in AWS for the LambdaStages, SpotFleets and StaticSites
    /// of a file, without a cluster and without changing anything. Exit 0: no changes, 3:
    /// changes pending, 4: stalled, 1: error.
    Plan(stagehand::cli::PlanArgs),
    /// Reconcile the LambdaStages, SpotFleets and StaticSites of a file against AWS without a
    /// cluster, round after round until they settle. Exit 0: Ready, 4: not Ready (stalled,
    /// validation failed), 5: timed out, 1: error.
    Apply(stagehand::cli::ApplyArgs),
    /// Print the least-privilege IAM policy for the kinds this build serves (JSON, or the
    /// operation table as Markdown), or check a list of calls against it.
    IamPolicy(stagehand::cli::iam::IamPolicyArgs),
    /// Print the CustomResourceDefinitions as YAML (kubectl apply -f -).
    Crds,
    /// Print the version.
    Version,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // clap prints usage errors (exit 2) and --help/--version (exit 0) itself.
        Err(error) => error.exit(),
    };
    match cli.command {
        Command::Run(settings) => run(*settings),
        Command::Plan(args) => cli_command(|| stagehand::cli::plan::plan(&args)),
        Command::Apply(args) => cli_command(|| stagehand::cli::plan::apply(&args)),
        Command::IamPolicy(args) => ExitCode::from(stagehand::cli::iam::run(&args)),
        Command::Crds => crds(),
        Command::Version => {
            println!("stagehand {}", stagehand::version_string());
            ExitCode::SUCCESS
        }
    }
}

fn crds() -> ExitCode {
    match stagehand_crds::crds_yaml() {
        Ok(yaml) => {
            let mut stdout = std::io::stdout().lock();
            // A closed pipe (`stagehand crds | head`) is not an error worth reporting.
            match stdout
                .write_all(yaml.as_bytes())
                .and_then(|()| stdout.flush())
            {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
                Err(error) => fail(&format!("cannot write the CRDs to stdout: {error}"), None),
            }
        }
        Err(error) => fail(&format!("cannot render the CRDs as YAML: {error}"), None),
    }
}

fn run(settings: Settings) -> ExitCode {
    if let Err(error) = stagehand::telemetry::init(settings.log_format) {
        return fail(&format!("cannot set up logging: {error}"), None);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => return fail(&format!("cannot start the async runtime: {error}"), None),
    };
    match runtime.block_on(stagehand::runtime::run(
        settings,
        stagehand::kinds::registry(),
    )) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => report(&error),
    }
}

/// Runs `plan` or `apply` (logs, at warn level, go to stderr: stdout is the plan).
fn cli_command<F: Future<Output = u8>>(command: impl FnOnce() -> F) -> ExitCode {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .try_init();
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => ExitCode::from(runtime.block_on(command())),
        Err(error) => fail(&format!("cannot start the async runtime: {error}"), None),
    }
}

fn report(error: &Error) -> ExitCode {
    let message = one_line(error);
    tracing::error!(error = %message, "stagehand stopped");
    fail(&message, error.hint())
}

fn fail(message: &str, hint: Option<&str>) -> ExitCode {
    eprintln!("error: {message}");
    if let Some(hint) = hint {
        eprintln!("{hint}");
    }
    ExitCode::FAILURE
}
