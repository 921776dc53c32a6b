//! `stagehand-testenv up` end to end: the real binary, its state directory, kubectl, SIGTERM.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use tokio::io::AsyncReadExt;

const KUBECTL: &str = "/usr/bin/kubectl";

/// Polls for a file without sleeping: waits on the binary's stdout between checks.
async fn wait_for_file(path: &Path, stdout: &mut tokio::process::ChildStdout, seen: &mut String) {
    let found = tokio::time::timeout(Duration::from_secs(30), async {
        let mut buf = [0u8; 256];
        loop {
            if path.exists() {
                return;
            }
            let n = stdout.read(&mut buf).await.unwrap();
            assert!(n > 0, "stagehand-testenv exited early: {seen}");
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    })
    .await;
    assert!(
        found.is_ok(),
        "{} never appeared; output: {seen}",
        path.display()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_serves_kubectl_and_stops_on_sigterm() {
    let dir = std::env::temp_dir().join(format!("stagehand-up-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_stagehand-testenv"))
        .args([
            "up",
            "--state-dir",
            dir.to_str().unwrap(),
            "--port",
            &port.to_string(),
        ])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut printed = String::new();
    // `env` is written last, once everything is ready.
    wait_for_file(&dir.join("env"), &mut stdout, &mut printed).await;
    // The usage lines are printed on start (read until the last one).
    while !printed.contains("stops it") {
        let mut buf = [0u8; 256];
        let n = tokio::time::timeout(Duration::from_secs(10), stdout.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "{printed}");
        printed.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(printed.contains(&format!("127.0.0.1:{port}")), "{printed}");
    assert!(printed.contains("source "), "{printed}");
    assert!(printed.contains("AWS endpoint"), "{printed}");
    let env = std::fs::read_to_string(dir.join("env")).unwrap();
    let exports: std::collections::BTreeMap<String, String> = env
        .lines()
        .map(|line| {
            let (key, value) = line
                .strip_prefix("export ")
                .and_then(|rest| rest.split_once('='))
                .unwrap_or_else(|| panic!("not an export line: {line:?}"));
            (key.to_owned(), value.to_owned())
        })
        .collect();
    let kubeconfig = dir.join("kubeconfig").canonicalize().unwrap();
    assert_eq!(exports["KUBECONFIG"], kubeconfig.display().to_string());
    for key in [
        "AWS_ENDPOINT_URL",
        "AWS_REGION",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "STAGEHAND_TESTENV_ADMIN",
    ] {
        assert!(exports.contains_key(key), "{key} missing from env: {env}");
    }
    // A controller started from this env file never dials outside loopback.
    assert_eq!(exports["STAGEHAND_LOOPBACK_ONLY"], "1", "{env}");
    // The AWS side answers through the proxy, which counts the call: a real S3 request by the
    // AWS CLI from the venv moto was installed into, configured only by the env file. (AWS CLI
    // v1 ignores AWS_ENDPOINT_URL for SQS, which it sends to queue.amazonaws.com; S3 honours it.)
    let admin = stagehand_testenv::aws::AdminClient::new(&exports["STAGEHAND_TESTENV_ADMIN"]);
    let aws_cli = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/aws");
    let out = tokio::process::Command::new(&aws_cli)
        .args(["s3api", "create-bucket", "--bucket", "up-test"])
        .envs(exports.iter().filter(|(k, _)| k.starts_with("AWS_")))
        .output()
        .await
        .unwrap_or_else(|e| panic!("{} cannot run: {e}", aws_cli.display()));
    assert!(
        out.status.success(),
        "aws s3api create-bucket: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let calls = admin.calls().await.unwrap();
    let counted = serde_json::to_value(&calls).unwrap().to_string();
    assert!(
        counted.contains("CreateBucket"),
        "proxy did not count the CLI call: {counted}"
    );
    let aws_port: u16 = exports["AWS_ENDPOINT_URL"]
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();

    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = tokio::process::Command::new(KUBECTL)
        .args(["--cache-dir", dir.join("cache").to_str().unwrap()])
        .args(["apply", "-f", "crds/yaml/"])
        .env("KUBECONFIG", &kubeconfig)
        .current_dir(&repo)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = tokio::process::Command::new(KUBECTL)
        .args(["--cache-dir", dir.join("cache").to_str().unwrap()])
        .args(["get", "lambdastages", "-A"])
        .env("KUBECONFIG", &kubeconfig)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let pid = child.id().unwrap().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("exits after SIGTERM")
        .unwrap();
    assert!(status.success(), "exit status {status}");
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "port {port} is closed"
    );
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", aws_port)).is_err(),
        "AWS endpoint port {aws_port} is closed"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
