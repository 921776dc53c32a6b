//! The write fence: with leader election, AWS is changed only while this replica's leadership is
//! confirmed by a recent lease renewal, measured on its own monotonic clock.
//!
//! Why a fence and not only "stop the controllers when the lease is lost": a leader learns that
//! it lost the lease on its next renewal, and a replica that was frozen (SIGSTOP, a long GC-like
//! pause, a VM migration) or cut off from the API server can run queued reconciles before that
//! renewal comes back. The elector opens the fence until `renewal start + renew deadline` after
//! every successful renewal; the renew deadline is shorter than the lease duration, and a
//! standby takes a lease over only after it has seen it unchanged for a whole lease duration on
//! its own clock, so every write this replica starts is started before anyone else may lead.
//!
//! Every AWS call passes through [`Caller::call`](super::call::Caller::call), which asks the
//! fence before a write ([`is_write`]) and abandons a write still in flight when the fence
//! closes (no SDK retry is sent after it). Reads are never fenced: observing is harmless, and a
//! standby's plan (`stagehand plan`) still works.
//!
//! Without leader election the fence is [`WriteFence::unfenced`] and never refuses.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

/// Operation name prefixes that only read. Everything else counts as a write, so an operation
/// added to an adapter later is fenced unless it is known to be harmless (fail closed).
/// `ReceiveMessage` hides a message for the queue's visibility timeout but never removes it: a
/// deposed leader delays a feed message, it cannot lose it (its deletion is a write).
const READ_PREFIXES: &[&str] = &["Describe", "Get", "List", "Head", "Receive"];

/// Whether the AWS operation changes anything.
pub fn is_write(operation: &str) -> bool {
    !READ_PREFIXES
        .iter()
        .any(|prefix| operation.starts_with(prefix))
}

/// Where the fence stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// No leader election: writes always pass.
    Unfenced,
    /// Not leading (a standby, or leadership lost or released).
    Closed,
    /// Leading, confirmed by a renewal: writes pass before this instant.
    OpenUntil(Instant),
}

/// Why a write was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// This replica does not lead.
    NotLeading,
    /// It leads, but its last renewal is older than the renew deadline by this much.
    RenewalOverdue(Duration),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotLeading => f.write_str("this replica does not hold the leader lease"),
            Self::RenewalOverdue(by) => write!(
                f,
                "this replica's last leader lease renewal is older than the renew deadline (by {} ms)",
                by.as_millis()
            ),
        }
    }
}

/// Shared by every adapter of a provider and by the leader elector. Cheap to clone.
#[derive(Clone, Debug)]
pub struct WriteFence {
    state: Arc<watch::Sender<State>>,
}

impl Default for WriteFence {
    fn default() -> Self {
        Self::unfenced()
    }
}

impl WriteFence {
    /// A fence that never refuses (no leader election: one replica by deployment).
    pub fn unfenced() -> Self {
        Self::with(State::Unfenced)
    }

    /// A fence that refuses every write until [`WriteFence::open_until`].
    pub fn closed() -> Self {
        Self::with(State::Closed)
    }

    fn with(state: State) -> Self {
        Self {
            state: Arc::new(watch::Sender::new(state)),
        }
    }

    /// Writes may start before `deadline` (a renewal started at `t` confirmed leadership:
    /// `deadline = t + renew deadline`).
    pub fn open_until(&self, deadline: Instant) {
        self.state.send_replace(State::OpenUntil(deadline));
    }

    /// No more writes (leadership lost or released); writes in flight are abandoned.
    pub fn close(&self) {
        self.state.send_replace(State::Closed);
    }

    /// Whether a write may start at `now`.
    pub fn check(&self, now: Instant) -> Result<(), Refusal> {
        match *self.state.borrow() {
            State::Unfenced => Ok(()),
            State::Closed => Err(Refusal::NotLeading),
            State::OpenUntil(deadline) if now < deadline => Ok(()),
            State::OpenUntil(deadline) => Err(Refusal::RenewalOverdue(now - deadline)),
        }
    }

    /// Resolves once the fence refuses writes (closed, or its deadline passed without a new
    /// renewal); never for an unfenced replica. A write in flight is raced against it.
    pub async fn refusing(&self) -> Refusal {
        let mut state = self.state.subscribe();
        loop {
            let current = *state.borrow_and_update();
            let deadline = match current {
                State::Closed => return Refusal::NotLeading,
                State::OpenUntil(deadline) => Some(deadline),
                State::Unfenced => None,
            };
            let expired = async {
                match deadline {
                    Some(deadline) => tokio::time::sleep_until(deadline).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = expired => {
                    if *state.borrow() == current {
                        return Refusal::RenewalOverdue(Duration::ZERO);
                    }
                }
                changed = state.changed() => {
                    if changed.is_err() {
                        // The fence is gone with its provider: nothing will ever refuse.
                        return std::future::pending().await;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_pass_everything_else_is_a_write() {
        for read in [
            "GetFunction",
            "ListFunctions",
            "DescribeInstances",
            "HeadObject",
            "ReceiveMessage",
        ] {
            assert!(!is_write(read), "{read}");
        }
        for write in [
            "UpdateFunctionCode",
            "CreateFleet",
            "TerminateInstances",
            "PutObject",
            "CopyObject",
            "DeleteMessageBatch",
            "ExecuteChangeSet",
            "PublishVersion",
            "TagResource",
            "RunInstances",
            "SomethingNew",
        ] {
            assert!(is_write(write), "{write}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn writes_pass_only_before_the_renewal_deadline() {
        let fence = WriteFence::closed();
        let t0 = Instant::now();
        assert_eq!(fence.check(t0), Err(Refusal::NotLeading));
        fence.open_until(t0 + Duration::from_secs(10));
        assert_eq!(fence.check(t0 + Duration::from_secs(9)), Ok(()));
        assert_eq!(
            fence.check(t0 + Duration::from_secs(12)),
            Err(Refusal::RenewalOverdue(Duration::from_secs(2)))
        );
        fence.close();
        assert_eq!(fence.check(t0), Err(Refusal::NotLeading));
        assert_eq!(WriteFence::unfenced().check(t0), Ok(()));
    }

    #[tokio::test(start_paused = true)]
    async fn refusing_resolves_at_the_deadline_unless_renewed() {
        let fence = WriteFence::closed();
        let t0 = Instant::now();
        fence.open_until(t0 + Duration::from_secs(10));
        let renewer = fence.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(5)).await;
            renewer.open_until(t0 + Duration::from_secs(15));
        });
        assert_eq!(
            fence.refusing().await,
            Refusal::RenewalOverdue(Duration::ZERO)
        );
        assert_eq!(Instant::now(), t0 + Duration::from_secs(15));

        let closer = fence.clone();
        fence.open_until(Instant::now() + Duration::from_secs(60));
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            closer.close();
        });
        assert_eq!(fence.refusing().await, Refusal::NotLeading);
        assert_eq!(Instant::now(), t0 + Duration::from_secs(16));
    }

    #[tokio::test(start_paused = true)]
    async fn an_unfenced_replica_is_never_refused() {
        let fence = WriteFence::unfenced();
        let refused = tokio::time::timeout(Duration::from_secs(3600), fence.refusing()).await;
        assert!(refused.is_err(), "unfenced writes were refused");
    }
}
