//! A door to the API stand-in for one client: its own port on 127.0.0.1 that forwards TCP to the
//! server, and that a test can make slow or shut while other clients go on unharmed — a network
//! partition between one controller replica and the API server, or an overloaded path to it.
//!
//! It works below HTTP, so it needs nothing from the client (no header, no user agent): give a
//! replica a kubeconfig for its own door ([`Door::kubeconfig_yaml`]). Shut holds every byte in
//! both directions on the open connections and on new ones (connections are accepted, nothing
//! flows), like packets dropped on the way, so requests and watches hang instead of failing
//! fast; reopening lets the held bytes through. Slow delays every chunk by the given time in
//! each direction.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What the door does with traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Passage {
    /// Forwards at once.
    Open,
    /// Forwards every chunk after this delay.
    Slow(Duration),
    /// Forwards nothing until opened again.
    Shut,
}

/// A forwarding port in front of a server; stops forwarding when dropped.
#[derive(Debug)]
pub struct Door {
    addr: SocketAddr,
    passage: Arc<watch::Sender<Passage>>,
    task: JoinHandle<()>,
}

impl Door {
    /// Opens a door on a free port of 127.0.0.1 to `target`.
    pub async fn open(target: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let passage = Arc::new(watch::Sender::new(Passage::Open));
        let task = tokio::spawn(accept(listener, target, passage.clone()));
        Ok(Self {
            addr,
            passage,
            task,
        })
    }

    /// `http://127.0.0.1:PORT` of the door.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Changes what the door does, for open connections too.
    pub fn set(&self, passage: Passage) {
        self.passage.send_replace(passage);
    }

    /// A kubeconfig for the server behind this door.
    pub fn kubeconfig_yaml(&self) -> String {
        crate::kubeconfig_yaml(&self.url())
    }

    pub fn write_kubeconfig(&self, path: impl AsRef<Path>) -> std::io::Result<()> {
        std::fs::write(path, self.kubeconfig_yaml())
    }
}

impl Drop for Door {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept(listener: TcpListener, target: SocketAddr, passage: Arc<watch::Sender<Passage>>) {
    while let Ok((client, _)) = listener.accept().await {
        let passage = passage.clone();
        tokio::spawn(async move {
            let Ok(server) = TcpStream::connect(target).await else {
                return;
            };
            let (client_read, client_write) = client.into_split();
            let (server_read, server_write) = server.into_split();
            tokio::join!(
                pump(client_read, server_write, passage.subscribe()),
                pump(server_read, client_write, passage.subscribe()),
            );
        });
    }
}

/// Copies `from` to `to` chunk by chunk, each chunk let through by the passage.
async fn pump(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    mut passage: watch::Receiver<Passage>,
) {
    let mut buffer = vec![0_u8; 16 * 1024];
    loop {
        let read = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(read) => read,
        };
        if !let_through(&mut passage).await {
            break;
        }
        if to.write_all(&buffer[..read]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

/// Waits until the passage lets a chunk through; `false` once the door is gone.
async fn let_through(passage: &mut watch::Receiver<Passage>) -> bool {
    loop {
        let current = *passage.borrow_and_update();
        match current {
            Passage::Open => return true,
            // The delay is the injected fault itself, not synchronisation.
            Passage::Slow(delay) => {
                tokio::time::sleep(delay).await;
                return true;
            }
            Passage::Shut => {
                if passage.changed().await.is_err() {
                    return false;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::Instant;

    /// An echo server: what the door forwards comes back through it.
    async fn echo() -> SocketAddr {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = stream.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        addr
    }

    async fn round_trip(stream: &mut TcpStream) -> Vec<u8> {
        stream.write_all(b"ping").await.unwrap();
        let mut answer = [0_u8; 4];
        stream.read_exact(&mut answer).await.unwrap();
        answer.to_vec()
    }

    #[tokio::test]
    async fn forwards_delays_and_holds_traffic() {
        let door = Door::open(echo().await).await.unwrap();
        let mut stream = TcpStream::connect(door.addr).await.unwrap();
        assert_eq!(round_trip(&mut stream).await, b"ping");

        door.set(Passage::Slow(Duration::from_millis(200)));
        let started = Instant::now();
        assert_eq!(round_trip(&mut stream).await, b"ping");
        assert!(
            started.elapsed() >= Duration::from_millis(400),
            "two delayed chunks"
        );

        door.set(Passage::Shut);
        let held = tokio::time::timeout(Duration::from_millis(300), round_trip(&mut stream)).await;
        assert!(held.is_err(), "a shut door let bytes through");
        // A new connection is accepted but nothing flows either.
        let mut other = TcpStream::connect(door.addr).await.unwrap();
        other.write_all(b"ping").await.unwrap();

        door.set(Passage::Open);
        let mut answer = [0_u8; 4];
        other.read_exact(&mut answer).await.unwrap();
        assert_eq!(&answer, b"ping", "held bytes go through once open");
        assert_eq!(door.kubeconfig_yaml().matches(&door.url()).count(), 1);
    }
}
