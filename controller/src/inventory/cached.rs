//! The one caching primitive every inventory is built from: values read from AWS, each kept
//! with the time it was read, trusted for a time-to-live, loaded single-flight, dropped when
//! Stagehand itself changes what they describe, and re-read on demand when a change wants a
//! fresher view than the time-to-live gives.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

/// Values that never expire on their own: keyed by an identity that cannot change (an object
/// version, a content hash), or checked against one on every read.
pub const NEVER: Duration = Duration::MAX;

/// How long a value read at one time is trusted: the same for every value, or decided per
/// value (a queue that exists is trusted longer than the news that it does not).
type TimeToLive<V> = Box<dyn Fn(&V, Duration) -> Duration + Send + Sync>;

struct Entry<V> {
    read_at: Instant,
    /// When a reader last asked for it (or it was stored): what [`Cached::sweep`] keeps by.
    used_at: Instant,
    value: V,
}

/// Values of type `V` by key `K`, read from AWS. A cache of one value uses `K = ()`.
pub struct Cached<K, V> {
    ttl: Duration,
    ttl_of: Option<TimeToLive<V>>,
    entries: Mutex<HashMap<K, Entry<V>>>,
    /// One lock per key being loaded: callers wanting the same value at once wait for one read.
    flights: Mutex<HashMap<K, Arc<tokio::sync::Mutex<()>>>>,
}

impl<K, V> std::fmt::Debug for Cached<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cached")
            .field("ttl", &self.ttl)
            .field("entries", &lock(&self.entries).len())
            .finish_non_exhaustive()
    }
}

/// Every update is a single insert, replace or removal, so the data stays consistent even if a
/// holder panicked: keep using it.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<K, V> Cached<K, V>
where
    K: Eq + Hash + Clone,
    V: Clone,
{
    /// Values are trusted for `ttl` after they were read (`Duration::ZERO`: never reused;
    /// [`NEVER`]: until dropped).
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            ttl_of: None,
            entries: Mutex::new(HashMap::new()),
            flights: Mutex::new(HashMap::new()),
        }
    }

    /// Values are trusted for `ttl_of(value, ttl)`.
    #[must_use]
    pub fn with_ttl_per_value(
        mut self,
        ttl_of: impl Fn(&V, Duration) -> Duration + Send + Sync + 'static,
    ) -> Self {
        self.ttl_of = Some(Box::new(ttl_of));
        self
    }

    fn trusted(&self, entry: &Entry<V>) -> bool {
        let ttl = self
            .ttl_of
            .as_ref()
            .map_or(self.ttl, |ttl_of| ttl_of(&entry.value, self.ttl));
        entry.read_at.elapsed() < ttl
    }

    /// The value of `key`, if it is still trusted.
    pub fn get(&self, key: &K) -> Option<V> {
        self.peek(key, V::clone)
    }

    /// `read(entry)` of `key`'s entry if `accept(entry)`, which then counts as used now.
    fn read_entry<R>(
        &self,
        key: &K,
        accept: impl FnOnce(&Entry<V>) -> bool,
        read: impl FnOnce(&Entry<V>) -> R,
    ) -> Option<R> {
        let mut entries = lock(&self.entries);
        let entry = entries.get_mut(key).filter(|entry| accept(entry))?;
        entry.used_at = Instant::now();
        Some(read(entry))
    }

    /// `read(value)` of `key`'s value, if it is still trusted (without cloning the value).
    pub fn peek<R>(&self, key: &K, read: impl FnOnce(&V) -> R) -> Option<R> {
        self.read_entry(key, |entry| self.trusted(entry), |entry| read(&entry.value))
    }

    /// `key`'s value if it was read less than `age` ago, whatever the time-to-live says: for
    /// readers that may trust a value longer (or must trust it shorter) than usual.
    pub fn get_younger_than(&self, key: &K, age: Duration) -> Option<V> {
        self.read_entry(
            key,
            |entry| entry.read_at.elapsed() < age,
            |entry| entry.value.clone(),
        )
    }

    /// `read(value)` of `key`'s value however old it is.
    pub fn peek_any_age<R>(&self, key: &K, read: impl FnOnce(&V) -> R) -> Option<R> {
        self.read_entry(key, |_| true, |entry| read(&entry.value))
    }

    /// Every key with its value that is still trusted (in no particular order).
    pub fn trusted_entries(&self) -> Vec<(K, V)> {
        lock(&self.entries)
            .iter()
            .filter(|(_, entry)| self.trusted(entry))
            .map(|(key, entry)| (key.clone(), entry.value.clone()))
            .collect()
    }

    /// Drops the values no longer trusted: for caches keyed by something that comes and goes
    /// (a remembered error), where nobody asks for an expired key again.
    pub fn drop_expired(&self) -> usize {
        let mut entries = lock(&self.entries);
        let before = entries.len();
        entries.retain(|_, entry| self.trusted(entry));
        before - entries.len()
    }

    /// When `key`'s value was read, if it is still trusted.
    pub fn read_at(&self, key: &K) -> Option<Instant> {
        self.read_entry(key, |entry| self.trusted(entry), |entry| entry.read_at)
    }

    /// The trusted value of `key`, or else the value `load` reads (stored, read now). Callers
    /// asking for the same key at once wait for one `load`; a failed load stores nothing.
    pub async fn get_or_load<E, F, Fut>(&self, key: &K, load: F) -> Result<V, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        self.load_unless(key, || self.get(key), load).await
    }

    /// [`Cached::get_or_load`] with `age` in place of the time-to-live: `key`'s value if it was
    /// read less than `age` ago, else what `load` reads. For values whose trust changes with
    /// the moment (a listing trusted longer while the event feed announces what it would find),
    /// decided by the caller at each use.
    pub async fn get_or_load_within<E, F, Fut>(
        &self,
        key: &K,
        age: Duration,
        load: F,
    ) -> Result<V, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        self.load_unless(key, || self.get_younger_than(key, age), load)
            .await
    }

    /// `found()`, or else the value `load` reads, single flight: a caller that waited for
    /// another's load asks `found()` again before loading.
    async fn load_unless<E, F, Fut>(
        &self,
        key: &K,
        found: impl Fn() -> Option<V>,
        load: F,
    ) -> Result<V, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        if let Some(found) = found() {
            return Ok(found);
        }
        let flight = lock(&self.flights).entry(key.clone()).or_default().clone();
        let guard = flight.lock().await;
        let result = if let Some(found) = found() {
            Ok(found)
        } else {
            // Read as of when the load began: a listing of many pages that began before a
            // change was noticed may have passed the changed item before the change.
            let began = Instant::now();
            load()
                .await
                .inspect(|value| self.insert_read_at(key.clone(), value.clone(), began))
        };
        drop(guard);
        self.land(key, &flight);
        result
    }

    /// The last caller out of a flight removes its lock, so the locks kept are those of loads
    /// under way, not one per key ever read.
    fn land(&self, key: &K, flight: &Arc<tokio::sync::Mutex<()>>) {
        let mut flights = lock(&self.flights);
        // One reference in the map, one held by this caller: nobody else waits on it.
        if Arc::strong_count(flight) <= 2
            && flights.get(key).is_some_and(|f| Arc::ptr_eq(f, flight))
        {
            flights.remove(key);
        }
    }

    /// Stores `value` as read now.
    pub fn insert(&self, key: K, value: V) {
        self.insert_read_at(key, value, Instant::now());
    }

    fn insert_read_at(&self, key: K, value: V, read_at: Instant) {
        let used_at = Instant::now();
        lock(&self.entries).insert(
            key,
            Entry {
                read_at,
                used_at,
                value,
            },
        );
    }

    /// Changes `key`'s value in place, keeping when it was read (a read of one item corrects
    /// a listing of many, which is still as old as it was).
    pub fn update(&self, key: &K, change: impl FnOnce(&mut V)) {
        if let Some(entry) = lock(&self.entries).get_mut(key) {
            change(&mut entry.value);
        }
    }

    /// Drops `key`'s value: Stagehand changed what it describes; the next read loads it.
    pub fn invalidate(&self, key: &K) {
        lock(&self.entries).remove(key);
    }

    /// Drops the values whose key matches.
    pub fn invalidate_where(&self, matches: impl Fn(&K) -> bool) {
        lock(&self.entries).retain(|key, _| !matches(key));
    }

    /// Drops the values read `age` or longer ago (`Duration::ZERO`: all of them). What a spec
    /// change asks for: a view at most `age` old, shared by every change within `age`.
    pub fn forget_older_than(&self, age: Duration) {
        lock(&self.entries).retain(|_, entry| entry.read_at.elapsed() < age);
    }

    /// Drops what nobody asked for in `unused` (trusted or not), and gives the memory of a map
    /// that shrank by most back. Keys come and go with the objects and with every build (an
    /// artifact's key, a function's versions by code hash, a deleted stage's listing), and an
    /// expired value is only replaced when its key is asked for again: without a sweep a
    /// controller that runs for months keeps every key it ever read. Returns how many went.
    pub fn sweep(&self, unused: Duration) -> usize {
        let mut entries = lock(&self.entries);
        let before = entries.len();
        entries.retain(|_, entry| entry.used_at.elapsed() < unused);
        if entries.capacity() > 16 && entries.len() < entries.capacity() / 4 {
            entries.shrink_to_fit();
        }
        before - entries.len()
    }

    /// How many values it holds (trusted or not).
    pub fn len(&self) -> usize {
        lock(&self.entries).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn values_expire_after_their_ttl() {
        let cache: Cached<(), u32> = Cached::new(Duration::from_secs(30));
        cache.insert((), 1);
        assert_eq!(cache.get(&()), Some(1));
        tokio::time::advance(Duration::from_secs(29)).await;
        assert_eq!(cache.get(&()), Some(1));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(cache.get(&()), None);
        assert_eq!(cache.peek_any_age(&(), |v| *v), Some(1));
        // Zero: nothing is ever reused.
        let never: Cached<(), u32> = Cached::new(Duration::ZERO);
        never.insert((), 1);
        assert_eq!(never.get(&()), None);
        // NEVER: kept until dropped.
        let forever: Cached<(), u32> = Cached::new(NEVER);
        forever.insert((), 1);
        tokio::time::advance(Duration::from_secs(365 * 24 * 3600)).await;
        assert_eq!(forever.get(&()), Some(1));
    }

    #[tokio::test(start_paused = true)]
    async fn trusted_lists_only_values_within_their_ttl() {
        let cache: Cached<&str, u32> = Cached::new(Duration::from_secs(10));
        cache.insert("old", 1);
        tokio::time::advance(Duration::from_secs(5)).await;
        cache.insert("new", 2);
        assert_eq!(cache.trusted_entries().len(), 2);
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(cache.trusted_entries(), vec![("new", 2)]);
        cache.drop_expired();
        assert_eq!(cache.peek_any_age(&"old", |v| *v), None, "dropped");
        assert_eq!(cache.get(&"new"), Some(2));
    }

    #[tokio::test(start_paused = true)]
    async fn a_ttl_per_value() {
        let cache: Cached<&str, Option<u32>> = Cached::new(Duration::from_secs(10))
            .with_ttl_per_value(|value: &Option<u32>, ttl| {
                if value.is_some() {
                    Duration::from_secs(3600)
                } else {
                    ttl
                }
            });
        cache.insert("found", Some(1));
        cache.insert("missing", None);
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(cache.get(&"found"), Some(Some(1)));
        assert_eq!(cache.get(&"missing"), None);
    }

    #[tokio::test(start_paused = true)]
    async fn forgetting_keeps_values_younger_than_the_floor() {
        let cache: Cached<(), u32> = Cached::new(Duration::from_secs(30));
        cache.insert((), 1);
        tokio::time::advance(Duration::from_millis(500)).await;
        cache.forget_older_than(Duration::from_secs(1));
        assert_eq!(cache.get(&()), Some(1), "half a second old: fresh enough");
        tokio::time::advance(Duration::from_millis(500)).await;
        cache.forget_older_than(Duration::from_secs(1));
        assert_eq!(cache.get(&()), None, "a second old: read again");
        cache.insert((), 2);
        cache.forget_older_than(Duration::ZERO);
        assert_eq!(cache.get(&()), None, "zero: everything goes");
    }

    #[tokio::test(start_paused = true)]
    async fn a_loaded_value_counts_as_read_when_its_load_began() {
        let cache: Cached<(), u32> = Cached::new(Duration::from_secs(30));
        let began = Instant::now();
        let slow = || async {
            // A listing of many pages: five seconds from the first page to the last.
            tokio::time::sleep(Duration::from_secs(5)).await;
            Ok::<_, ()>(1)
        };
        assert_eq!(cache.get_or_load(&(), slow).await, Ok(1));
        assert_eq!(cache.read_at(&()), Some(began));
        tokio::time::advance(Duration::from_secs(25)).await;
        assert_eq!(cache.get(&()), None, "30 s after its first page: too old");
    }

    #[tokio::test(start_paused = true)]
    async fn a_load_within_an_age_trusts_the_value_for_that_age() {
        let cache: Cached<(), u32> = Cached::new(Duration::from_secs(30));
        let load = |value: u32| move || async move { Ok::<_, ()>(value) };
        let within = |age: u64| Duration::from_secs(age);
        assert_eq!(
            cache.get_or_load_within(&(), within(600), load(1)).await,
            Ok(1)
        );
        tokio::time::advance(Duration::from_secs(300)).await;
        assert_eq!(cache.get(&()), None, "past the time-to-live");
        assert_eq!(
            cache.get_or_load_within(&(), within(600), load(2)).await,
            Ok(1),
            "a longer age: still trusted"
        );
        assert_eq!(
            cache.get_or_load_within(&(), within(30), load(3)).await,
            Ok(3),
            "back to the short age: read again at once"
        );
    }

    #[tokio::test]
    async fn concurrent_loads_of_one_key_read_once() {
        let cache: Arc<Cached<&str, u32>> = Arc::new(Cached::new(Duration::from_secs(30)));
        let loads = Arc::new(AtomicU32::new(0));
        let (release, released) = tokio::sync::watch::channel(false);
        let mut waiting = Vec::new();
        for _ in 0..5 {
            let (cache, loads, mut released) = (cache.clone(), loads.clone(), released.clone());
            waiting.push(tokio::spawn(async move {
                cache
                    .get_or_load(&"functions", || async move {
                        loads.fetch_add(1, Ordering::SeqCst);
                        // Held until every caller is queued behind this load.
                        let _ = released.wait_for(|r| *r).await;
                        Ok::<_, ()>(7)
                    })
                    .await
            }));
        }
        tokio::task::yield_now().await;
        release.send_replace(true);
        for task in waiting {
            assert_eq!(task.await.ok(), Some(Ok(7)));
        }
        assert_eq!(loads.load(Ordering::SeqCst), 1);
        assert!(
            lock(&cache.flights).is_empty(),
            "no lock kept once the flight landed"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_sweep_drops_what_nobody_asked_for_and_keeps_what_is_read() {
        let hour = Duration::from_secs(3600);
        let cache: Cached<String, u32> = Cached::new(NEVER);
        for build in 0..1000 {
            cache.insert(format!("stage/build-{build}.zip"), build);
        }
        let capacity = lock(&cache.entries).capacity();
        tokio::time::advance(hour / 2).await;
        // Only the current build is read again: at every resync of its stage.
        for _ in 0..3 {
            assert_eq!(cache.get(&"stage/build-999.zip".to_owned()), Some(999));
            tokio::time::advance(hour / 4).await;
        }
        assert_eq!(cache.sweep(hour), 999, "the old builds' keys");
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.get(&"stage/build-999.zip".to_owned()), Some(999));
        assert!(lock(&cache.entries).capacity() < capacity / 4);
        // Every way of reading counts as a use; a value past its time-to-live read at any
        // age stays too.
        let listing: Cached<(), u32> = Cached::new(Duration::from_secs(60));
        listing.insert((), 1);
        tokio::time::advance(Duration::from_secs(3599)).await;
        assert_eq!(listing.peek_any_age(&(), |v| *v), Some(1));
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(listing.sweep(hour), 0);
        tokio::time::advance(hour).await;
        assert_eq!(listing.sweep(hour), 1);
        assert!(listing.is_empty());
    }

    #[tokio::test]
    async fn a_failed_load_stores_nothing_and_invalidation_reloads() {
        let cache: Cached<&str, u32> = Cached::new(Duration::from_secs(30));
        let failed: Result<u32, &str> =
            cache.get_or_load(&"k", || async { Err("throttled") }).await;
        assert_eq!(failed, Err("throttled"));
        assert_eq!(cache.get(&"k"), None);
        let loaded: Result<u32, ()> = cache.get_or_load(&"k", || async { Ok(1) }).await;
        assert_eq!(loaded, Ok(1));
        let cached: Result<u32, ()> = cache.get_or_load(&"k", || async { Ok(2) }).await;
        assert_eq!(cached, Ok(1), "trusted: not loaded again");
        cache.invalidate(&"k");
        let reloaded: Result<u32, ()> = cache.get_or_load(&"k", || async { Ok(3) }).await;
        assert_eq!(reloaded, Ok(3));
        cache.update(&"k", |v| *v += 1);
        assert_eq!(cache.get(&"k"), Some(4));
        cache.invalidate_where(|k| k.starts_with('k'));
        assert_eq!(cache.get(&"k"), None);
    }
}
