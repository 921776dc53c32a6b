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
    let env = std::fs::read_to_string(dir.join("env")).unwrap();
    let kubeconfig = dir.join("kubeconfig").canonicalize().unwrap();
    assert_eq!(env, format!("export KUBECONFIG={}\n", kubeconfig.display()));

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
    let _ = std::fs::remove_dir_all(&dir);
}
