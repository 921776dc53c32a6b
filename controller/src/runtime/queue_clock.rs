//! When a reconcile's object's watch events arrived: how long it waited for a worker
//! (`stagehand_reconcile_queue_seconds`), when it learnt of the latest change, and when its
//! current spec was first seen — what a round's refresh of the shared inventory counts from
//! ([`crate::runtime::round::refresh_for_round`]).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use tokio::time::Instant;

tokio::task_local! {
    /// What the reconcile running on this task learnt of its object, and when (see
    /// [`noticed_at`], [`spec_noticed_at`]).
    static NOTICED: Noticed;
}

/// When a reconcile's object's watch events arrived.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Noticed {
    /// The latest event before this reconcile; `None` for a timed requeue or a feed trigger.
    pub event: Option<Instant>,
    /// The first event that carried the object's current generation (its spec as it is now).
    pub spec: Option<Instant>,
}

/// Runs `reconcile` with what it noticed, for [`noticed_at`] and [`spec_noticed_at`].
pub async fn with_noticed<F: std::future::Future>(noticed: Noticed, reconcile: F) -> F::Output {
    NOTICED.scope(noticed, reconcile).await
}

/// When the reconcile running on this task learnt of what it acts on: the arrival of the
/// latest watch event for its object before it started (an annotation such as
/// `stagehand.dev/refresh` was set at the latest then). `None` outside a controller's reconcile
/// (the CLI) and for a timed requeue or a feed trigger.
pub fn noticed_at() -> Option<Instant> {
    NOTICED.try_with(|noticed| noticed.event).ok().flatten()
}

/// When the controller first saw its object's spec as it is now: the arrival of the first
/// watch event carrying the current generation, however many events (a finalizer added, a
/// label, its own status writes) came after it. A change made in AWS before the spec was
/// applied (a build published, then the spec applied) is in any listing read after it, which
/// is how a spec change asks for a fresh view ([`crate::inventory::Inventory::refresh`]).
/// `None` outside a controller's reconcile (the CLI).
pub fn spec_noticed_at() -> Option<Instant> {
    NOTICED.try_with(|noticed| noticed.spec).ok().flatten()
}

/// When each object's pending watch events arrived, so that the reconcile they asked for can
/// report how long it waited for a worker (`stagehand_reconcile_queue_seconds`, from the first)
/// — kube-runtime's scheduler does not say — and when it learnt of the change (the last, see
/// [`noticed_at`]); and when each object's current generation was first seen (see
/// [`spec_noticed_at`]). Pending events: one entry per object with an event not yet reconciled,
/// taken when its reconcile starts. Generations: one entry per live object. Both are dropped
/// when the object is deleted.
#[derive(Debug, Default)]
pub struct QueueClock {
    arrived: Mutex<HashMap<String, (Instant, Instant)>>,
    generations: Mutex<HashMap<String, (Option<i64>, Instant)>>,
}

impl QueueClock {
    /// A watch event for `key`, at `generation`, arrived: the first one not yet reconciled, and
    /// this one; and the first of this generation.
    pub fn arrived(&self, key: String, generation: Option<i64>) {
        let now = Instant::now();
        lock(&self.generations)
            .entry(key.clone())
            .and_modify(|(seen, at)| {
                if *seen != generation {
                    *seen = generation;
                    *at = now;
                }
            })
            .or_insert((generation, now));
        lock(&self.arrived)
            .entry(key)
            .and_modify(|(_, last)| *last = now)
            .or_insert((now, now));
    }

    /// `key` was deleted: no reconcile will take its entry.
    pub fn gone(&self, key: &str) {
        lock(&self.arrived).remove(key);
        lock(&self.generations).remove(key);
    }

    /// The watch listed again: objects deleted meanwhile sent no event; keep only the `live`.
    pub fn keep_only(&self, live: impl Fn(&str) -> bool) {
        lock(&self.arrived).retain(|key, _| live(key));
        lock(&self.generations).retain(|key, _| live(key));
    }

    /// `key`'s reconcile starts: how long since its first pending event (none for a timed
    /// requeue or a feed trigger without an event), and what it noticed when.
    pub fn started(&self, key: &str) -> (Option<std::time::Duration>, Noticed) {
        let pending = lock(&self.arrived).remove(key);
        let spec = lock(&self.generations).get(key).map(|(_, at)| *at);
        (
            pending.map(|(first, _)| first.elapsed()),
            Noticed {
                event: pending.map(|(_, last)| last),
                spec,
            },
        )
    }
}

fn lock<T>(map: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Single inserts and removals: consistent even after a panic.
    map.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn the_queue_clock_counts_from_the_first_pending_event_and_forgets_deleted_objects() {
        let clock = super::QueueClock::default();
        clock.arrived("shop/a".into(), Some(1));
        tokio::time::advance(Duration::from_secs(2)).await;
        clock.arrived("shop/a".into(), Some(1));
        clock.arrived("shop/b".into(), Some(1));
        let last = tokio::time::Instant::now();
        tokio::time::advance(Duration::from_secs(1)).await;
        let (waited, noticed) = clock.started("shop/a");
        assert_eq!(
            waited,
            Some(Duration::from_secs(3)),
            "waited since the first event"
        );
        assert_eq!(noticed.event, Some(last), "noticed at the last");
        let (waited, noticed) = clock.started("shop/a");
        assert_eq!(
            (waited, noticed.event),
            (None, None),
            "taken by the reconcile"
        );
        assert!(noticed.spec.is_some(), "the generation is kept");
        clock.gone("shop/b");
        assert_eq!(
            clock.started("shop/b"),
            (None, super::Noticed::default()),
            "deleted: nothing kept"
        );
        clock.gone("shop/a");
        assert!(clock.arrived.lock().unwrap().is_empty());
        assert!(clock.generations.lock().unwrap().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_spec_is_noticed_at_the_first_event_of_its_generation() {
        let clock = super::QueueClock::default();
        let created = tokio::time::Instant::now();
        clock.arrived("shop/a".into(), Some(1));
        tokio::time::advance(Duration::from_secs(5)).await;
        // The finalizer added, a label, a status write: the same generation.
        clock.arrived("shop/a".into(), Some(1));
        let touched = tokio::time::Instant::now();
        let noticed = clock.started("shop/a").1;
        assert_eq!(
            noticed.spec,
            Some(created),
            "the spec is as old as its generation"
        );
        assert_eq!(noticed.event, Some(touched));
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(
            clock.started("shop/a").1.spec,
            Some(created),
            "a timed requeue knows it too"
        );
        clock.arrived("shop/a".into(), Some(2));
        let changed = tokio::time::Instant::now();
        assert_eq!(
            clock.started("shop/a").1.spec,
            Some(changed),
            "a new generation"
        );
        clock.arrived("shop/b".into(), Some(1));
        clock.keep_only(|key| key == "shop/b");
        assert_eq!(
            clock.started("shop/a"),
            (None, super::Noticed::default()),
            "gone while the watch was down: forgotten when it lists again"
        );
    }
}
