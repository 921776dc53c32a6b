//! A controller's worker slots, first come first served.
//!
//! kube-runtime's `Controller` can bound concurrent reconciles itself, but while all its
//! workers are busy it keeps the objects that came due in a `HashSet`, and when a worker frees
//! up it takes the first one in the set's iteration order, not the one that waited longest.
//! Under sustained load — a sweep longer than the resync interval — the same objects are taken
//! again and again and others are never reconciled: in a 3,000-object run (150 StaticSites
//! whose rounds took seconds against moto, resync 60 s), 45 sites had not been reconciled once
//! after 10 minutes, not even to add their finalizer (docs/benchmarks.md, "10,000 objects").
//!
//! So the runtime gives kube no limit and each reconcile takes a slot here first: a fair (FIFO)
//! semaphore, so an object waits behind those that came due before it and never longer. A
//! waiting reconcile holds a small future (the round itself is boxed once it has a slot), and
//! kube still never runs two reconciles of one object at once.

use tokio::sync::{Semaphore, SemaphorePermit};

/// The worker slots of one controller.
#[derive(Debug)]
pub struct Workers {
    /// `None`: no limit (`--concurrency 0`).
    slots: Option<Semaphore>,
}

/// A slot held for one reconcile, given back when dropped.
#[derive(Debug)]
pub struct Slot<'a> {
    _permit: Option<SemaphorePermit<'a>>,
}

impl Workers {
    /// `concurrency` reconciles at once (0: no limit).
    pub fn new(concurrency: u16) -> Self {
        Self {
            slots: (concurrency > 0).then(|| Semaphore::new(usize::from(concurrency))),
        }
    }

    /// Waits for a slot, behind every reconcile that asked before; `None` once the workers
    /// are closed (shutting down: the reconcile does not run).
    pub async fn take(&self) -> Option<Slot<'_>> {
        match &self.slots {
            None => Some(Slot { _permit: None }),
            Some(slots) => slots.acquire().await.ok().map(|permit| Slot {
                _permit: Some(permit),
            }),
        }
    }

    /// Shutting down: reconciles still waiting give up at once, so that stopping waits only
    /// for the ones running (a graceful shutdown, or a leader that lost its lease, must not
    /// wait out a queue of thousands).
    pub fn close(&self) {
        if let Some(slots) = &self.slots {
            slots.close();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[tokio::test]
    async fn slots_go_to_the_reconciles_in_the_order_they_asked() {
        let workers = Arc::new(Workers::new(1));
        let order = Arc::new(Mutex::new(Vec::new()));
        let first = workers.take().await;
        assert!(first.is_some());
        let mut waiting = Vec::new();
        for n in 0..20 {
            let (workers, order) = (workers.clone(), order.clone());
            waiting.push(tokio::spawn(async move {
                let slot = workers.take().await;
                order.lock().map(|mut o| o.push(n)).ok();
                drop(slot);
            }));
            // Each has asked before the next is spawned.
            tokio::task::yield_now().await;
        }
        drop(first);
        for task in waiting {
            assert!(task.await.is_ok());
        }
        let order = order.lock().map(|o| o.clone()).unwrap_or_default();
        assert_eq!(order, (0..20).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn closed_workers_turn_waiting_reconciles_away() {
        let workers = Arc::new(Workers::new(1));
        let running = workers.take().await;
        let waiting = tokio::spawn({
            let workers = workers.clone();
            async move { workers.take().await.is_some() }
        });
        tokio::task::yield_now().await;
        workers.close();
        assert_eq!(waiting.await.ok(), Some(false), "gave up");
        assert!(workers.take().await.is_none());
        drop(running);
        let unbounded = Workers::new(0);
        let slots: Vec<_> = futures::future::join_all((0..100).map(|_| unbounded.take())).await;
        assert!(slots.iter().all(Option::is_some), "no limit");
    }
}
