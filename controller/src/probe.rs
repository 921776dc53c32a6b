//! TCP health probes: does `address:port` accept a connection within a short timeout?
//!
//! This is the controller's one door to the network addresses of the things it runs (AWS itself
//! is reached through `aws/` only). A probe opens a connection and closes it at once: nothing
//! is sent, so any TCP service can be checked without a protocol.
//!
//! Two guards, because a probe dials whatever address EC2 reports:
//! - every attempt is recorded — a bounded in-memory log ([`TcpProber::recent`]) and a `tracing`
//!   event with the address — so a test can prove which addresses were dialled;
//! - with `loopback_only` (`--loopback-only`, `STAGEHAND_LOOPBACK_ONLY=1`: set by the tests, the
//!   demo and CI, which run against an AWS emulator whose instances have made-up VPC addresses)
//!   an address outside 127.0.0.0/8 is never dialled: it comes back [`ProbeOutcome::NotAllowed`]
//!   and the caller reports it, so a missing address rewrite cannot reach a real 10.x host.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::StreamExt;
use tokio::net::TcpStream;

/// How long a connect may take. Inside a VPC an open port answers in milliseconds and a closed
/// one is refused at once; what takes longer is a security group dropping the SYN, which this
/// many seconds are enough to call closed without holding a round up.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Connects in flight at once: a fleet of hundreds of new instances is probed in a few
/// timeouts at worst, without opening hundreds of sockets at the same moment.
pub const CONCURRENCY: usize = 32;

/// Attempts kept in [`TcpProber::recent`]: enough to review a test's or a debugging session's
/// probes, bounded whatever the number of instances.
pub const LOG_LIMIT: usize = 1024;

/// How probes are made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeSettings {
    pub connect_timeout: Duration,
    pub concurrency: usize,
    /// Never dial an address outside 127.0.0.0/8.
    pub loopback_only: bool,
}

impl Default for ProbeSettings {
    fn default() -> Self {
        Self {
            connect_timeout: CONNECT_TIMEOUT,
            concurrency: CONCURRENCY,
            loopback_only: false,
        }
    }
}

/// What one probe found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeOutcome {
    /// The connection was accepted.
    Open,
    /// Refused, reset, unreachable, or no answer within the timeout.
    Closed,
    /// Not dialled: outside 127.0.0.0/8 while `loopback_only` is set.
    NotAllowed,
}

impl ProbeOutcome {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Closed => "closed",
            Self::NotAllowed => "not_allowed",
        }
    }
}

/// One probe, as recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dial {
    pub address: SocketAddr,
    pub outcome: ProbeOutcome,
}

impl Dial {
    /// A connection was attempted (the address was not refused by the loopback guard).
    pub fn dialled(&self) -> bool {
        self.outcome != ProbeOutcome::NotAllowed
    }
}

/// An address in 127.0.0.0/8, the only range tests, the demo and CI may dial.
pub fn is_loopback(ip: IpAddr) -> bool {
    matches!(ip, IpAddr::V4(v4) if v4.is_loopback())
}

/// Probes TCP ports and remembers the last [`LOG_LIMIT`] attempts. Cheap to clone: clones
/// share the log, so one prober in the runtime's context records every fleet's probes.
#[derive(Clone, Debug, Default)]
pub struct TcpProber {
    settings: ProbeSettings,
    log: Arc<Mutex<VecDeque<Dial>>>,
}

impl TcpProber {
    pub fn new(settings: ProbeSettings) -> Self {
        Self {
            settings,
            log: Arc::default(),
        }
    }

    pub fn settings(&self) -> &ProbeSettings {
        &self.settings
    }

    /// Probes every target, at most `concurrency` at once; the outcomes in the targets' order.
    pub async fn probe(&self, targets: &[SocketAddr]) -> Vec<ProbeOutcome> {
        // The futures are made first: a stream over a borrowing closure would not be `Send`
        // for every lifetime, which a reconcile future must be.
        let probes: Vec<_> = targets
            .iter()
            .map(|target| self.probe_one(*target))
            .collect();
        futures::stream::iter(probes)
            .buffered(self.settings.concurrency.max(1))
            .collect()
            .await
    }

    async fn probe_one(&self, address: SocketAddr) -> ProbeOutcome {
        let outcome = if self.settings.loopback_only && !is_loopback(address.ip()) {
            tracing::warn!(
                %address,
                "health probe not dialled: outside 127.0.0.0/8 and --loopback-only is set"
            );
            ProbeOutcome::NotAllowed
        } else {
            match tokio::time::timeout(self.settings.connect_timeout, TcpStream::connect(address))
                .await
            {
                // Dropping the stream closes the connection: nothing is sent.
                Ok(Ok(_stream)) => ProbeOutcome::Open,
                Ok(Err(_)) | Err(_) => ProbeOutcome::Closed,
            }
        };
        tracing::debug!(%address, outcome = outcome.as_str(), "tcp health probe");
        self.record(Dial { address, outcome });
        outcome
    }

    fn record(&self, dial: Dial) {
        // One push and at most one pop per lock: consistent even after a panic elsewhere.
        let mut log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        if log.len() == LOG_LIMIT {
            log.pop_front();
        }
        log.push_back(dial);
    }

    /// The last [`LOG_LIMIT`] probes, oldest first, refused ones included.
    pub fn recent(&self) -> Vec<Dial> {
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .copied()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A loopback port nobody listens on (bound once, then released).
    async fn closed_port() -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap()
    }

    #[tokio::test]
    async fn open_and_closed_ports_in_the_targets_order_every_dial_recorded() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let open = listener.local_addr().unwrap();
        let closed = closed_port().await;
        let prober = TcpProber::new(ProbeSettings {
            concurrency: 1,
            ..ProbeSettings::default()
        });
        let outcomes = prober.probe(&[closed, open, closed]).await;
        assert_eq!(
            outcomes,
            [
                ProbeOutcome::Closed,
                ProbeOutcome::Open,
                ProbeOutcome::Closed
            ]
        );
        let dialled: Vec<SocketAddr> = prober.recent().iter().map(|d| d.address).collect();
        assert_eq!(dialled, [closed, open, closed]);
        // Clones share the record.
        assert_eq!(prober.clone().recent().len(), 3);
    }

    #[tokio::test]
    async fn loopback_only_never_dials_another_address() {
        let prober = TcpProber::new(ProbeSettings {
            loopback_only: true,
            ..ProbeSettings::default()
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let open = listener.local_addr().unwrap();
        let vpc: SocketAddr = "10.0.0.5:8080".parse().unwrap();
        let outcomes = prober.probe(&[vpc, open]).await;
        assert_eq!(outcomes, [ProbeOutcome::NotAllowed, ProbeOutcome::Open]);
        let recent = prober.recent();
        assert!(!recent[0].dialled());
        assert!(recent[1].dialled());
    }

    #[test]
    fn only_127_0_0_0_slash_8_is_loopback() {
        for (ip, want) in [
            ("127.0.0.1", true),
            ("127.0.0.9", true),
            ("127.255.1.2", true),
            ("10.0.0.5", false),
            ("0.0.0.0", false),
            ("::1", false),
        ] {
            assert_eq!(is_loopback(ip.parse().unwrap()), want, "{ip}");
        }
    }

    #[tokio::test]
    async fn the_record_is_bounded() {
        let prober = TcpProber::new(ProbeSettings {
            loopback_only: true,
            ..ProbeSettings::default()
        });
        let outside: SocketAddr = "192.0.2.1:22".parse().unwrap();
        prober.probe(&vec![outside; LOG_LIMIT + 5]).await;
        assert_eq!(prober.recent().len(), LOG_LIMIT);
    }
}
