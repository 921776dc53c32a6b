//! Launches `moto_server` (the pinned `moto[server]` in `<repo>/.venv`, installed by
//! `scripts/ensure-moto`) on a free loopback port, and stops it on drop.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::http::{Method, Request, StatusCode};

use super::AwsFloorError;
use super::proxy::{HttpClient, http_client};

/// Overrides the `moto_server` executable (then `scripts/ensure-moto` is not run).
pub const MOTO_BIN_ENV: &str = "STAGEHAND_MOTO_BIN";
/// The account id moto always uses.
pub const ACCOUNT_ID: &str = "123456789012";
/// The role [`Moto::create_lambda_role`] creates.
pub const LAMBDA_ROLE_NAME: &str = "stagehand-lambda";

const START_TIMEOUT: Duration = Duration::from_secs(30);
const START_ATTEMPTS: usize = 3;

/// The repository root: `$STAGEHAND_REPO_ROOT`; else the checkout the running test or binary
/// belongs to (cargo's run-time `CARGO_MANIFEST_DIR`, then the current directory and its
/// parents); else the checkout this crate was compiled from. Decided at run time because several
/// checkouts may share one cargo target directory, and a compiled-in path would then point at
/// whichever checkout built the crate last.
pub fn repo_root() -> PathBuf {
    let is_root = |dir: &Path| dir.join("scripts/ensure-moto").is_file();
    if let Some(root) = std::env::var_os("STAGEHAND_REPO_ROOT") {
        return PathBuf::from(root);
    }
    let from_manifest = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .and_then(|dir| dir.ancestors().find(|d| is_root(d)).map(Path::to_path_buf));
    let from_cwd = || {
        std::env::current_dir()
            .ok()
            .and_then(|dir| dir.ancestors().find(|d| is_root(d)).map(Path::to_path_buf))
    };
    from_manifest.or_else(from_cwd).unwrap_or_else(|| {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
    })
}

/// The venv with moto and the AWS CLI, installing it (once per process) with
/// `scripts/ensure-moto` when missing or at another version.
pub fn ensure_venv() -> Result<PathBuf, AwsFloorError> {
    static VENV: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    VENV.get_or_init(|| {
        let script = repo_root().join("scripts/ensure-moto");
        let out = Command::new(&script)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
        if !out.status.success() {
            return Err(format!(
                "{} failed ({}); run it by hand to see why:\n{}",
                script.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let path = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        Ok(PathBuf::from(path))
    })
    .clone()
    .map_err(AwsFloorError::Setup)
}

/// The `moto_server` to run: `$STAGEHAND_MOTO_BIN`, else the venv's (installed when missing).
pub fn moto_bin() -> Result<PathBuf, AwsFloorError> {
    if let Some(bin) = std::env::var_os(MOTO_BIN_ENV) {
        let bin = PathBuf::from(bin);
        return if bin.is_file() {
            Ok(bin)
        } else {
            Err(AwsFloorError::Setup(format!(
                "{MOTO_BIN_ENV}={} does not exist",
                bin.display()
            )))
        };
    }
    let bin = ensure_venv()?.join("bin/moto_server");
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(AwsFloorError::Setup(format!(
            "{} is missing after scripts/ensure-moto; run scripts/ensure-moto",
            bin.display()
        )))
    }
}

/// The AWS CLI of the same venv.
pub fn aws_cli_bin() -> Result<PathBuf, AwsFloorError> {
    let bin = ensure_venv()?.join("bin/aws");
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(AwsFloorError::Setup(format!(
            "{} is missing; run scripts/ensure-moto",
            bin.display()
        )))
    }
}

/// A running `moto_server`. Killed (and reaped) on drop; its output is in [`Moto::log_path`]
/// (removed on drop unless the thread is panicking, so failed tests keep it).
#[derive(Debug)]
pub struct Moto {
    child: Child,
    port: u16,
    log_path: PathBuf,
    startup: Duration,
    client: HttpClient,
}

impl Moto {
    /// Starts moto on a free port of 127.0.0.1 and waits until it answers `/moto-api/`.
    pub async fn start() -> Result<Self, AwsFloorError> {
        let bin = tokio::task::spawn_blocking(moto_bin)
            .await
            .map_err(|e| AwsFloorError::Setup(format!("ensure-moto task: {e}")))??;
        let mut last_error = None;
        for _ in 0..START_ATTEMPTS {
            match Self::start_once(&bin).await {
                Ok(moto) => return Ok(moto),
                // A port taken between picking and binding makes moto exit; try another.
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or_else(|| AwsFloorError::Setup("moto did not start".into())))
    }

    async fn start_once(bin: &Path) -> Result<Self, AwsFloorError> {
        let started = Instant::now();
        let port = free_port()?;
        let log_dir = std::env::temp_dir().join("stagehand-testenv");
        std::fs::create_dir_all(&log_dir)?;
        let log_path = log_dir.join(format!("moto-{}-{port}.log", std::process::id()));
        let log = File::create(&log_path)?;
        let child = Command::new(bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .map_err(|e| AwsFloorError::Setup(format!("cannot start {}: {e}", bin.display())))?;
        let mut moto = Self {
            child,
            port,
            log_path,
            startup: Duration::ZERO,
            client: http_client(),
        };
        moto.wait_ready(started).await?;
        moto.startup = started.elapsed();
        Ok(moto)
    }

    /// Polls `/moto-api/` until it answers 200, moto exits, or [`START_TIMEOUT`] passes.
    async fn wait_ready(&mut self, started: Instant) -> Result<(), AwsFloorError> {
        let mut interval = tokio::time::interval(Duration::from_millis(20));
        loop {
            interval.tick().await;
            if let Some(status) = self.child.try_wait()? {
                return Err(AwsFloorError::Setup(format!(
                    "moto_server exited with {status} while starting on port {}:\n{}",
                    self.port,
                    self.log_tail()
                )));
            }
            if let Ok((StatusCode::OK, _)) = self
                .request(Method::GET, "/moto-api/", Bytes::new(), &[])
                .await
            {
                return Ok(());
            }
            if started.elapsed() > START_TIMEOUT {
                return Err(AwsFloorError::Setup(format!(
                    "moto_server did not answer on port {} within {START_TIMEOUT:?}:\n{}",
                    self.port,
                    self.log_tail()
                )));
            }
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT` (moto itself, not the proxy).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// How long start took, from spawn to the first healthy answer.
    pub fn startup(&self) -> Duration {
        self.startup
    }

    /// The last 4 KiB of moto's output.
    pub fn log_tail(&self) -> String {
        let mut out = String::new();
        if let Ok(mut f) = File::open(&self.log_path) {
            let len = f.metadata().map_or(0, |m| m.len());
            let _ = f.seek(SeekFrom::Start(len.saturating_sub(4096)));
            let _ = f.read_to_string(&mut out);
        }
        out
    }

    /// Forgets all state (`POST /moto-api/reset`).
    pub async fn reset(&self) -> Result<(), AwsFloorError> {
        let (status, body) = self
            .request(Method::POST, "/moto-api/reset", Bytes::new(), &[])
            .await?;
        if status.is_success() {
            Ok(())
        } else {
            Err(AwsFloorError::Http(format!(
                "moto reset answered {status}: {}",
                String::from_utf8_lossy(&body)
            )))
        }
    }

    /// Creates the IAM role Lambda functions need in moto (idempotent); returns its ARN.
    pub async fn create_lambda_role(&self) -> Result<String, AwsFloorError> {
        self.create_role(LAMBDA_ROLE_NAME, LAMBDA_TRUST_POLICY)
            .await
    }

    /// IAM `CreateRole` as a query-protocol request (moto routes by the credential scope and
    /// does not check signatures); an existing role is fine. Returns the role's ARN.
    pub async fn create_role(
        &self,
        name: &str,
        assume_role_policy: &str,
    ) -> Result<String, AwsFloorError> {
        create_role_at(&self.client, &self.url(), name, assume_role_policy).await
    }

    async fn request(
        &self,
        method: Method,
        path: &str,
        body: Bytes,
        headers: &[(&str, &str)],
    ) -> Result<(StatusCode, Bytes), AwsFloorError> {
        let mut builder = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.url()));
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        let req = builder
            .body(Full::new(body))
            .map_err(|e| AwsFloorError::Http(e.to_string()))?;
        let resp = self
            .client
            .request(req)
            .await
            .map_err(|e| AwsFloorError::Http(format!("moto {path}: {e}")))?;
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| AwsFloorError::Http(format!("moto {path}: {e}")))?
            .to_bytes();
        Ok((status, body))
    }
}

/// The Lambda execution role [`Moto::create_lambda_role`] creates, at any moto endpoint (moto
/// itself or the proxy in front of it); idempotent. Returns its ARN.
pub async fn create_lambda_role_at(endpoint_url: &str) -> Result<String, AwsFloorError> {
    create_role_at(
        &http_client(),
        endpoint_url,
        LAMBDA_ROLE_NAME,
        LAMBDA_TRUST_POLICY,
    )
    .await
}

const LAMBDA_TRUST_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;

/// IAM `CreateRole` as a query-protocol request to `endpoint_url` (moto routes by the credential
/// scope and does not check signatures); an existing role is fine. Returns the role's ARN.
async fn create_role_at(
    client: &HttpClient,
    endpoint_url: &str,
    name: &str,
    assume_role_policy: &str,
) -> Result<String, AwsFloorError> {
    let form: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("Action", "CreateRole")
        .append_pair("Version", "2010-05-08")
        .append_pair("RoleName", name)
        .append_pair("AssumeRolePolicyDocument", assume_role_policy)
        .finish();
    let req = Request::builder()
        .method(Method::POST)
        .uri(format!("{}/", endpoint_url.trim_end_matches('/')))
        .header(
            "content-type",
            "application/x-www-form-urlencoded; charset=utf-8",
        )
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0",
        )
        .body(Full::new(Bytes::from(form)))
        .map_err(|e| AwsFloorError::Http(e.to_string()))?;
    let resp = client
        .request(req)
        .await
        .map_err(|e| AwsFloorError::Http(format!("IAM CreateRole {name}: {e}")))?;
    let status = resp.status();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| AwsFloorError::Http(format!("IAM CreateRole {name}: {e}")))?
        .to_bytes();
    let text = String::from_utf8_lossy(&body);
    let arn = format!("arn:aws:iam::{ACCOUNT_ID}:role/{name}");
    if status.is_success() || text.contains("EntityAlreadyExists") {
        Ok(arn)
    } else {
        Err(AwsFloorError::Http(format!(
            "IAM CreateRole {name} answered {status}: {text}"
        )))
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !std::thread::panicking() {
            let _ = std::fs::remove_file(&self.log_path);
        }
    }
}

fn free_port() -> std::io::Result<u16> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    Ok(listener.local_addr()?.port())
}
