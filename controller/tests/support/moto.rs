//! A moto server on a free loopback port for one test, stopped when dropped.
//!
//! Kept in this one file so it can be swapped for `stagehand-testenv`'s launcher. The server is
//! ready when werkzeug prints its "Running on" line (printed after the socket is bound), so
//! there is no sleeping or polling for the port; stderr keeps being drained afterwards so moto
//! never blocks on a full pipe, and the last lines are kept for failure messages.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// `moto[server]` version the tests were written against (see notes/moto.md).
const MOTO_VERSION: &str = "5.2.5";
const VENV: &str = "/work/main/.venv";
const READY_TIMEOUT: Duration = Duration::from_secs(60);

#[allow(missing_debug_implementations)]
pub struct Moto {
    child: Child,
    endpoint: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl Moto {
    /// Starts moto (installing it into the venv when missing).
    pub fn start() -> Self {
        let server = moto_server();
        let port = free_port();
        let mut child = Command::new(&server)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", server.display()));
        let stderr = child.stderr.take().expect("stderr is piped");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (ready_tx, ready_rx) = mpsc::channel();
        let thread_log = Arc::clone(&log);
        std::thread::spawn(move || {
            let mut ready = Some(ready_tx);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if line.contains("Running on")
                    && let Some(tx) = ready.take()
                {
                    let _ = tx.send(());
                }
                let mut log = thread_log.lock().unwrap();
                if log.len() > 200 {
                    log.remove(0);
                }
                log.push(line);
            }
        });
        let endpoint = format!("http://127.0.0.1:{port}");
        let moto = Self {
            child,
            endpoint,
            log,
        };
        assert!(
            ready_rx.recv_timeout(READY_TIMEOUT).is_ok(),
            "moto did not start within {READY_TIMEOUT:?}; its output:\n{}",
            moto.log.lock().unwrap().join("\n")
        );
        moto
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// moto's recent log lines (for assertion messages).
    #[allow(dead_code)]
    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    // Bind port 0, read the port, release it for moto. Another process could take it in
    // between; moto would then fail to start and the test says so.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local address").port()
}

fn moto_server() -> PathBuf {
    if let Some(path) = std::env::var_os("MOTO_SERVER") {
        return PathBuf::from(path);
    }
    let server = Path::new(VENV).join("bin/moto_server");
    if !server.exists() {
        install_moto();
    }
    server
}

fn install_moto() {
    static INSTALL: Mutex<()> = Mutex::new(());
    let _guard = INSTALL.lock().unwrap();
    let venv = Path::new(VENV);
    if venv.join("bin/moto_server").exists() {
        return;
    }
    if !venv.join("bin/pip").exists() {
        let status = Command::new("python3")
            .args(["-m", "venv"])
            .arg(venv)
            .status()
            .expect("run python3 -m venv");
        assert!(status.success(), "python3 -m venv {VENV} failed");
    }
    let status = Command::new(venv.join("bin/pip"))
        .args([
            "install",
            "--quiet",
            &format!("moto[server]=={MOTO_VERSION}"),
        ])
        .status()
        .expect("run pip");
    assert!(
        status.success(),
        "pip install moto[server]=={MOTO_VERSION} failed"
    );
}
