//! Generic wiring of one `kube::runtime::Controller` per kind: watch scope and concurrency from
//! the settings, a thin reconcile wrapper (span, timer, metrics, finalizer dispatch), an error
//! policy with per-object exponential backoff, and graceful shutdown.
//!
//! A kind plugs in by implementing [`Reconciler`] and being registered in a
//! [`Registry`](super::registry::Registry).

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex, PoisonError};

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use k8s_openapi::NamespaceResourceScope;
use kube::api::Api;
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::reflector::{self, ObjectRef, reflector};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::Instrument;

use super::context::Context;
use super::error::{ReconcileError, backoff};
use super::finalizer::dispatch;
use super::fingerprint;
use super::metrics::ControllerMetrics;
use super::queue_clock::{QueueClock, with_noticed};
use super::shutdown::Shutdown;
use super::workers::Workers;
use crate::base::{Classify, ErrorClass};
use crate::feed::{EventQueue, FeedInterest, QueueUsers, Target, Watchers};

/// The bounds the runtime needs on a kind: a namespaced Kubernetes resource with static type
/// information that can be cached, (de)serialized and shared between tasks. Every Stagehand
/// kind (and any built-in namespaced type, used in tests) satisfies it.
pub trait ManagedKind:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + DeserializeOwned
    + Serialize
    + Debug
    + Send
    + Sync
    + 'static
{
}

impl<K> ManagedKind for K where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Serialize
        + Debug
        + Send
        + Sync
        + 'static
{
}

/// What a kind implements: apply (make AWS match the spec and write status) and cleanup (on
/// deletion, honour the deletion policy). The runtime handles the finalizer, metrics, tracing
/// and requeueing around them.
///
/// Contract:
/// - Write status (see `status::apply_status`) on every apply, including the first and
///   including failures: build the outcome with `ReconcileOutcome::from_error` before
///   returning the error, so the object shows `Reconciling`/`Stalled` with the reason.
/// - Return `Ok(requeue::resync_action(..))` when converged, `Ok(Action::requeue(seconds))`
///   while waiting on AWS, `Err(e)` on failure: the runtime retries recoverable errors with
///   backoff and waits for a spec change after stalled ones.
/// - Check `gates::may_act` before acting.
pub trait Reconciler<K>: Send + Sync + 'static {
    /// The kind's error; its variant names are metric labels.
    type Error: std::error::Error + Classify + Send + Sync + 'static;

    /// Makes AWS match the spec of a live object.
    fn apply(
        &self,
        object: Arc<K>,
        ctx: Arc<Context>,
    ) -> impl Future<Output = Result<Action, Self::Error>> + Send;

    /// Releases (or retains) the object's AWS resources before the finalizer is removed.
    fn cleanup(
        &self,
        object: Arc<K>,
        ctx: Arc<Context>,
    ) -> impl Future<Output = Result<Action, Self::Error>> + Send;

    /// The AWS event queues `object` wants polled (a SpotFleet's `interruptionQueue`): the
    /// feed polls each distinct one while some object names it. None by default.
    fn event_queues(&self, _object: &K) -> Vec<EventQueue> {
        Vec::new()
    }

    /// Whether `object` relies on the controller-wide event queue (`--event-queue`), in which
    /// region, and which of the AWS resources it points at should trigger it when they change
    /// (its artifacts, its bucket). `None` (the default): it does not.
    fn feed_interest(&self, _object: &K) -> Option<FeedInterest> {
        None
    }
}

/// Counts consecutive recoverable failures per object, for exponential backoff. Reset by a
/// success or by a stalled error (which waits for a spec change; the next attempt starts over).
#[derive(Debug, Default)]
pub struct RetryTracker {
    attempts: Mutex<HashMap<String, u32>>,
}

impl RetryTracker {
    /// Forgets the failures of `key` after a successful reconcile.
    pub fn on_success(&self, key: &str) {
        self.lock().remove(key);
    }

    /// The action after a failed reconcile of `key`: backoff for recoverable errors (5s,
    /// 10s, ... capped at 5 min), no timed requeue for stalled ones.
    pub fn on_error(&self, key: &str, class: ErrorClass) -> Action {
        match class {
            ErrorClass::Stalled => {
                self.lock().remove(key);
                Action::await_change()
            }
            ErrorClass::Recoverable => Action::requeue(backoff(self.record_failure(key))),
        }
    }

    /// Counts one more failure of `key`; returns the attempt number (1 = first failure).
    fn record_failure(&self, key: &str) -> u32 {
        let mut attempts = self.lock();
        let attempt = attempts.entry(key.to_owned()).or_insert(0);
        *attempt = attempt.saturating_add(1);
        *attempt
    }

    /// Consecutive failures recorded for `key`.
    pub fn attempts(&self, key: &str) -> u32 {
        self.lock().get(key).copied().unwrap_or(0)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, u32>> {
        // A panic while holding this lock cannot leave the map inconsistent: keep using it.
        self.attempts.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What each cached object asked of the event feed (its queues and feed interest) when the
/// queues were last declared. Most watch events change neither (every status write is one), and
/// then nothing is declared again: without this every such event rescanned every cached
/// object — O(objects) allocations per event, O(objects²) for a first convergence of thousands
/// (docs/benchmarks.md, "10,000 objects"). Interest is compared, not the generation: a site's
/// created distribution, which it watches, is in its status.
///
/// Only 64-bit fingerprints of the object's key and of its interest are kept: 16 bytes per
/// object where the interest itself (strings, vectors) was ≈ 0.5 KiB, for every object at
/// 10,000 whether it names a queue or not. Two different interests (or keys) with one
/// fingerprint would at worst skip one declaration, at odds of 2⁻⁶⁴ per change.
#[derive(Debug, Default)]
pub struct DeclaredInterest {
    by_object: Mutex<HashMap<u64, u64>>,
}

type ObjectInterest = (Vec<EventQueue>, Option<FeedInterest>);

impl DeclaredInterest {
    /// Records what `key` asks now; whether that differs from what it asked before (or it is
    /// new).
    pub fn changed(&self, key: &str, interest: &ObjectInterest) -> bool {
        let interest = fingerprint(interest);
        self.lock().insert(fingerprint(key), interest) != Some(interest)
    }

    /// `key` was deleted.
    pub fn forget(&self, key: &str) {
        self.lock().remove(&fingerprint(key));
    }

    /// The watch lists again: objects deleted meanwhile send no event, so start over.
    pub fn clear(&self) {
        let mut by_object = self.lock();
        by_object.clear();
        by_object.shrink_to_fit();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, u64>> {
        // Single inserts and removals: consistent even after a panic.
        self.by_object
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// `namespace/name` of an object (the key for per-object state).
pub fn object_key<K: Resource>(object: &K) -> String {
    format!(
        "{}/{}",
        object.namespace().unwrap_or_default(),
        object.name_any()
    )
}

/// Everything one controller's reconciles share.
pub struct ControllerState<K, R> {
    pub ctx: Arc<Context>,
    pub reconciler: R,
    /// What the controller watches (one namespace, or all); writes to an object use
    /// `finalizer::object_api` instead.
    pub api: Api<K>,
    pub metrics: ControllerMetrics,
    pub retries: RetryTracker,
    pub queue: QueueClock,
    pub declared: DeclaredInterest,
    /// The worker slots every reconcile takes first (kube is given no limit: see `workers`).
    pub workers: Workers,
}

impl<K, R> Debug for ControllerState<K, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControllerState")
            .field("controller", &self.metrics.controller())
            .finish_non_exhaustive()
    }
}

impl<K, R> ControllerState<K, R>
where
    K: ManagedKind,
    R: Reconciler<K>,
{
    /// State for `reconciler`, watching where the settings say.
    pub fn new(ctx: Arc<Context>, reconciler: R) -> Self {
        let api = match &ctx.settings.namespace {
            Some(namespace) => Api::namespaced(ctx.client.clone(), namespace),
            None => Api::all(ctx.client.clone()),
        };
        let metrics = ctx
            .metrics
            .controller(&K::kind(&()), ctx.settings.concurrency);
        let workers = Workers::new(ctx.settings.concurrency);
        Self {
            ctx,
            reconciler,
            api,
            metrics,
            retries: RetryTracker::default(),
            queue: QueueClock::default(),
            declared: DeclaredInterest::default(),
            workers,
        }
    }

    /// One reconcile: span, timer, finalizer dispatch, metrics. Errors are logged and turned
    /// into a requeue by [`Self::error_policy`].
    pub async fn reconcile(&self, object: Arc<K>) -> Result<Action, ReconcileError<R::Error>> {
        let key = object_key(object.as_ref());
        let span = tracing::info_span!(
            "reconcile",
            kind = %K::kind(&()),
            namespace = %object.namespace().unwrap_or_default(),
            name = %object.name_any(),
            generation = object.meta().generation.unwrap_or_default(),
        );
        async {
            let (waited, noticed) = self.queue.started(&key);
            if let Some(waited) = waited {
                self.metrics.record_queue_wait(waited);
            }
            let timer = self.metrics.start_reconcile();
            let result = with_noticed(
                noticed,
                dispatch(object, &self.reconciler, self.ctx.clone()),
            )
            .await;
            let elapsed = timer.finish();
            match &result {
                Ok(action) => {
                    self.metrics.record_success(action);
                    self.retries.on_success(&key);
                    tracing::debug!(?action, ?elapsed, "reconciled");
                }
                Err(error) => self.metrics.record_error(error.class(), error.reason()),
            }
            result
        }
        .instrument(span)
        .await
    }

    /// What `object` asks of the event feed: its own queues and its feed interest.
    fn interest(&self, object: &K) -> ObjectInterest {
        (
            self.reconciler.event_queues(object),
            self.reconciler.feed_interest(object),
        )
    }

    /// The requeue after a failed reconcile (see [`RetryTracker::on_error`]).
    pub fn error_policy(&self, object: &K, error: &ReconcileError<R::Error>) -> Action {
        let key = object_key(object);
        let class = error.class();
        let action = self.retries.on_error(&key, class);
        let attempt = self.retries.attempts(&key);
        tracing::warn!(
            kind = %K::kind(&()),
            object = %key,
            reason = error.reason(),
            class = class.as_str(),
            attempt,
            next = ?action,
            "reconcile failed: {error}"
        );
        action
    }
}

/// A started controller: `caches_synced` resolves (true) once its cache holds every watched
/// object, or (false) if the controller stopped first; `run` drives it until shutdown.
pub struct ControllerHandle {
    pub kind: String,
    pub caches_synced: BoxFuture<'static, bool>,
    pub run: BoxFuture<'static, ()>,
}

impl Debug for ControllerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControllerHandle")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// Builds the controller of kind `K`, driven by `reconciler`. Nothing talks to the API server
/// until `run` is polled.
pub fn run_controller<K, R>(
    ctx: Arc<Context>,
    reconciler: R,
    shutdown: &Shutdown,
) -> ControllerHandle
where
    K: ManagedKind,
    R: Reconciler<K>,
{
    let kind = K::kind(&()).into_owned();
    let state = Arc::new(ControllerState::<K, R>::new(ctx, reconciler));
    // No limit in kube: every reconcile takes one of `state.workers`' slots first, in the
    // order they came due (kube's own limit can starve objects, see `runtime::workers`).
    let config = controller::Config::default().concurrency(0);

    // Cache sync is observed on the watch stream itself (the first `InitDone` after the
    // reflector stored the initial list), not with `Store::wait_until_ready`: that future shares
    // one waker slot with the controller's own wait for the store, so a second waiter loses
    // wake-ups (readiness that never comes, or a runner that never starts).
    let (synced_tx, mut synced_rx) = tokio::sync::watch::channel(false);
    let (reader, writer) = reflector::store::<K>();
    let declaring = (reader.clone(), state.clone());
    let objects = reflector(
        writer,
        watcher(state.api.clone(), watcher::Config::default()).modify(trim_for_cache),
    )
    .inspect(move |event| {
        let state = &declaring.1;
        // The store already holds the change: declare the queues the cache names now (not
        // per object of the initial list, once when it is complete; not again for a change
        // that left every object's interest as it was).
        let declare = match event {
            Ok(watcher::Event::Init) => {
                state.declared.clear();
                false
            }
            Ok(watcher::Event::InitApply(object)) => {
                state
                    .queue
                    .arrived(object_key(object), object.meta().generation);
                state
                    .declared
                    .changed(&object_key(object), &state.interest(object));
                false
            }
            Ok(watcher::Event::InitDone) => {
                let live: std::collections::HashSet<String> = declaring
                    .0
                    .state()
                    .iter()
                    .map(|object| object_key(object.as_ref()))
                    .collect();
                state.queue.keep_only(|key| live.contains(key));
                synced_tx.send_replace(true);
                true
            }
            Ok(watcher::Event::Apply(object)) => {
                state
                    .queue
                    .arrived(object_key(object), object.meta().generation);
                state
                    .declared
                    .changed(&object_key(object), &state.interest(object))
            }
            Ok(watcher::Event::Delete(object)) => {
                let key = object_key(object);
                state.queue.gone(&key);
                state.declared.forget(&key);
                true
            }
            Err(_) => false,
        };
        if declare {
            declare_event_queues(&declaring.0, state);
        }
    })
    .applied_objects();
    let census = super::census::census_loop(reader.clone(), state.ctx.clone(), kind.clone());
    let controller = Controller::for_stream(objects, reader)
        .with_config(config)
        .reconcile_on(triggered::<K>(&state.ctx, &kind))
        .graceful_shutdown_on(shutdown.wait());

    let run_kind = kind.clone();
    let (closing_state, stop) = (state.clone(), shutdown.wait());
    let run = controller
        .run(
            |object, state: Arc<ControllerState<K, R>>| async move {
                let Some(_slot) = state.workers.take().await else {
                    // Shutting down: not reconciled here (the next start or leader will).
                    return Ok(Action::await_change());
                };
                Box::pin(state.reconcile(object)).await
            },
            |object, error, state| state.error_policy(&object, error),
            state,
        )
        .for_each(|result| async {
            // Reconcile errors were already logged by the error policy; what remains are
            // watch and queue errors, which the controller retries by itself.
            if let Err(error) = result {
                match error {
                    controller::Error::ReconcilerFailed(..) => {}
                    other => tracing::warn!(kind = %K::kind(&()), error = %other, "controller error (retrying)"),
                }
            }
        })
        .map(move |()| tracing::info!(kind = %run_kind, "controller stopped"));
    // Once shutdown begins, reconciles still waiting for a slot give up; the graceful
    // shutdown waits for the running ones only.
    let closing = async move {
        stop.await;
        closing_state.workers.close();
        std::future::pending::<()>().await;
    };
    // The census and the closing run as long as the controller does.
    let run = async move {
        tokio::select! {
            () = run => {}
            () = census => {}
            () = closing => {}
        }
    };

    ControllerHandle {
        kind,
        // An error means the stream (and with it the sender) is gone before the first sync.
        caches_synced: Box::pin(async move { synced_rx.wait_for(|synced| *synced).await.is_ok() }),
        run: Box::pin(run),
    }
}

/// The event feed's reconcile-now requests for kind `K`, as `ObjectRef`s for
/// `Controller::reconcile_on`.
fn triggered<K: ManagedKind>(
    ctx: &Context,
    kind: &str,
) -> impl futures::Stream<Item = ObjectRef<K>> + Send + 'static {
    let requests = ctx.feed.triggers.subscribe(kind);
    futures::stream::unfold(requests, |mut requests| async move {
        let target = requests.recv().await?;
        Some((
            ObjectRef::<K>::new(&target.name).within(&target.namespace),
            requests,
        ))
    })
}

/// Tells the event feed which queues the cached objects of kind `K` name, and which objects
/// name each.
fn declare_event_queues<K, R>(reader: &reflector::Store<K>, state: &ControllerState<K, R>)
where
    K: ManagedKind,
    R: Reconciler<K>,
{
    let kind = K::kind(&());
    let mut users = QueueUsers::new();
    let mut watchers = Watchers::new();
    for object in reader.state() {
        let target = Target::new(
            &kind,
            &object.namespace().unwrap_or_default(),
            &object.name_any(),
        );
        for queue in state.reconciler.event_queues(&object) {
            users.entry(queue).or_default().insert(target.clone());
        }
        let Some(interest) = state.reconciler.feed_interest(&object) else {
            continue;
        };
        if let Some((region, queue)) = state.ctx.inventory.event_queue(&interest.region) {
            users
                .entry(EventQueue::new(&region, &queue))
                .or_default()
                .insert(target.clone());
            watchers.insert(target, interest);
        }
    }
    state.ctx.feed.demand.declare(&kind, users);
    state.ctx.feed.demand.declare_watchers(&kind, watchers);
}

/// `kubectl apply`'s copy of the whole applied manifest, kept as an annotation by client-side
/// apply (`kubectl apply` without `--server-side`, Argo CD's default sync).
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// What the cache keeps of a watched object: all of it but what nothing here reads and every
/// object carries — its managed fields (status is written by server-side apply, which needs
/// none; they were most of each cached object's memory, docs/benchmarks.md "10,000 objects")
/// and client-side apply's copy of the manifest (the spec once more, as one JSON string).
/// Nothing writes a cached object back whole (patches and server-side apply only), so what is
/// dropped here is never dropped on the server.
fn trim_for_cache<K: Resource>(object: &mut K) {
    object.managed_fields_mut().clear();
    if let Some(annotations) = object.meta_mut().annotations.as_mut() {
        annotations.remove(LAST_APPLIED);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_cache_keeps_neither_managed_fields_nor_the_last_applied_manifest() {
        use k8s_openapi::api::core::v1::ConfigMap;
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;
        let mut object = ConfigMap::default();
        object.metadata.name = Some("stage".into());
        object.metadata.managed_fields = Some(vec![ManagedFieldsEntry {
            manager: Some("kubectl".into()),
            ..ManagedFieldsEntry::default()
        }]);
        object.metadata.annotations = Some(
            [
                (super::LAST_APPLIED.to_owned(), "{\"spec\":{}}".to_owned()),
                (
                    stagehand_crds::REFRESH_ANNOTATION.to_owned(),
                    "1".to_owned(),
                ),
            ]
            .into(),
        );
        super::trim_for_cache(&mut object);
        assert!(
            object
                .metadata
                .managed_fields
                .unwrap_or_default()
                .is_empty()
        );
        let annotations = object.metadata.annotations.unwrap_or_default();
        assert_eq!(
            annotations.keys().collect::<Vec<_>>(),
            [stagehand_crds::REFRESH_ANNOTATION],
            "every other annotation stays"
        );
    }

    #[test]
    fn only_a_change_of_interest_declares_the_queues_again() {
        use crate::feed::{EventQueue, FeedInterest, Watched};
        let declared = super::DeclaredInterest::default();
        let interest = |distribution: Option<&str>| {
            let mut watches = vec![Watched::Bucket("site".into())];
            watches.extend(distribution.map(|d| Watched::Distribution(d.into())));
            (
                vec![EventQueue::new("eu-west-1", "events")],
                Some(FeedInterest {
                    region: "eu-west-1".into(),
                    watches,
                }),
            )
        };
        assert!(declared.changed("web/a", &interest(None)), "new");
        assert!(
            !declared.changed("web/a", &interest(None)),
            "a status write that changed nothing the feed reads"
        );
        assert!(
            declared.changed("web/a", &interest(Some("E123"))),
            "the created distribution, from status, is watched"
        );
        assert!(
            declared.changed("web/b", &interest(Some("E123"))),
            "another object asking the same is new"
        );
        assert!(!declared.changed("web/b", &interest(Some("E123"))));
        declared.forget("web/a");
        assert!(declared.changed("web/a", &interest(Some("E123"))));
        assert!(!declared.changed("web/b", &interest(Some("E123"))), "kept");
        declared.clear();
        assert!(declared.changed("web/a", &interest(Some("E123"))));
    }

    use super::*;
    use crate::runtime::metrics::Metrics;
    use crate::settings::Settings;
    use aws_config::{Region, SdkConfig};
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::ObjectMeta;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    #[test]
    fn recoverable_errors_back_off_per_object_and_reset_on_success() {
        let retries = RetryTracker::default();
        let secs = |s| Action::requeue(Duration::from_secs(s));
        assert_eq!(retries.on_error("ns/a", ErrorClass::Recoverable), secs(5));
        assert_eq!(retries.on_error("ns/a", ErrorClass::Recoverable), secs(10));
        assert_eq!(retries.on_error("ns/a", ErrorClass::Recoverable), secs(20));
        // Another object has its own counter.
        assert_eq!(retries.on_error("ns/b", ErrorClass::Recoverable), secs(5));
        assert_eq!(retries.attempts("ns/a"), 3);
        retries.on_success("ns/a");
        assert_eq!(retries.attempts("ns/a"), 0);
        assert_eq!(retries.on_error("ns/a", ErrorClass::Recoverable), secs(5));
        for _ in 0..20 {
            retries.on_error("ns/a", ErrorClass::Recoverable);
        }
        assert_eq!(retries.on_error("ns/a", ErrorClass::Recoverable), secs(300));
    }

    #[test]
    fn stalled_errors_wait_for_a_spec_change_and_reset_the_backoff() {
        let retries = RetryTracker::default();
        retries.on_error("ns/a", ErrorClass::Recoverable);
        retries.on_error("ns/a", ErrorClass::Recoverable);
        assert_eq!(
            retries.on_error("ns/a", ErrorClass::Stalled),
            Action::await_change()
        );
        assert_eq!(retries.attempts("ns/a"), 0);
        assert_eq!(
            retries.on_error("ns/a", ErrorClass::Recoverable),
            Action::requeue(Duration::from_secs(5))
        );
    }

    // --- the reconcile wrapper, with an API server that is never reached -------------------

    #[derive(Debug, thiserror::Error)]
    enum TestError {
        #[error("AWS is throttling")]
        Throttled,
        #[error("function is owned by another stage")]
        OwnershipConflict,
    }
    impl Classify for TestError {
        fn class(&self) -> ErrorClass {
            match self {
                Self::Throttled => ErrorClass::Recoverable,
                Self::OwnershipConflict => ErrorClass::Stalled,
            }
        }
        fn reason(&self) -> &'static str {
            match self {
                Self::Throttled => "Throttled",
                Self::OwnershipConflict => "OwnershipConflict",
            }
        }
    }

    /// Fails with the error named in the object's `fail` data key, else converges.
    #[derive(Default)]
    struct TestReconciler {
        applied: AtomicU32,
        cleaned_up: AtomicU32,
    }
    impl Reconciler<ConfigMap> for TestReconciler {
        type Error = TestError;
        async fn apply(
            &self,
            object: Arc<ConfigMap>,
            _ctx: Arc<Context>,
        ) -> Result<Action, TestError> {
            self.applied.fetch_add(1, Ordering::SeqCst);
            match object
                .data
                .as_ref()
                .and_then(|d| d.get("fail"))
                .map(String::as_str)
            {
                Some("throttled") => Err(TestError::Throttled),
                Some("owned") => Err(TestError::OwnershipConflict),
                _ => Ok(Action::requeue(Duration::from_secs(300))),
            }
        }
        async fn cleanup(
            &self,
            _object: Arc<ConfigMap>,
            _ctx: Arc<Context>,
        ) -> Result<Action, TestError> {
            self.cleaned_up.fetch_add(1, Ordering::SeqCst);
            Ok(Action::await_change())
        }
    }

    /// A context whose Kubernetes client points at a closed local port (nothing listens on
    /// port 1): any API call fails at once, without leaving the machine.
    fn offline_context() -> Arc<Context> {
        let config = kube::Config::new("http://127.0.0.1:1".parse().unwrap());
        let client = kube::Client::try_from(config).unwrap();
        let aws = SdkConfig::builder()
            .region(Region::new("eu-west-1"))
            .build();
        Arc::new(Context::new(
            client,
            aws,
            Metrics::new().unwrap(),
            Settings::default(),
        ))
    }

    fn config_map(fail: Option<&str>, deleting: bool) -> Arc<ConfigMap> {
        Arc::new(ConfigMap {
            metadata: ObjectMeta {
                name: Some("orders".into()),
                namespace: Some("shop".into()),
                generation: Some(1),
                finalizers: Some(vec![stagehand_crds::FINALIZER.into()]),
                deletion_timestamp: deleting.then(|| {
                    k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                        k8s_openapi::jiff::Timestamp::from_second(1_700_000_000).unwrap(),
                    )
                }),
                ..ObjectMeta::default()
            },
            data: fail.map(|f| [("fail".to_owned(), f.to_owned())].into()),
            ..ConfigMap::default()
        })
    }

    /// The rendered value of one series ("" when absent).
    fn counter(ctx: &Context, series: &str) -> String {
        let text = ctx.metrics.render().unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(series).map(|v| v.trim().to_owned()))
            .unwrap_or_default()
    }

    #[tokio::test]
    async fn apply_is_dispatched_timed_and_counted() {
        let ctx = offline_context();
        let state = ControllerState::new(ctx.clone(), TestReconciler::default());
        let action = state.reconcile(config_map(None, false)).await.unwrap();
        assert_eq!(action, Action::requeue(Duration::from_secs(300)));
        assert_eq!(state.reconciler.applied.load(Ordering::SeqCst), 1);
        assert_eq!(state.reconciler.cleaned_up.load(Ordering::SeqCst), 0);
        assert_eq!(
            counter(
                &ctx,
                r#"controller_runtime_reconcile_total{controller="configmap",result="requeue_after"}"#
            ),
            "1"
        );
        assert_eq!(
            counter(
                &ctx,
                r#"controller_runtime_reconcile_time_seconds_count{controller="configmap"}"#
            ),
            "1"
        );
        assert_eq!(
            counter(
                &ctx,
                r#"controller_runtime_active_workers{controller="configmap"}"#
            ),
            "0"
        );
        assert_eq!(
            counter(
                &ctx,
                r#"controller_runtime_max_concurrent_reconciles{controller="configmap"}"#
            ),
            "8"
        );
    }

    #[tokio::test]
    async fn failures_are_counted_by_reason_and_requeued_by_class() {
        let ctx = offline_context();
        let state = ControllerState::new(ctx.clone(), TestReconciler::default());

        let throttled = config_map(Some("throttled"), false);
        let error = state.reconcile(throttled.clone()).await.unwrap_err();
        assert!(matches!(error, ReconcileError::Apply(TestError::Throttled)));
        assert_eq!(
            state.error_policy(&throttled, &error),
            Action::requeue(Duration::from_secs(5))
        );
        let error = state.reconcile(throttled.clone()).await.unwrap_err();
        assert_eq!(
            state.error_policy(&throttled, &error),
            Action::requeue(Duration::from_secs(10))
        );

        let owned = config_map(Some("owned"), false);
        let error = state.reconcile(owned.clone()).await.unwrap_err();
        assert_eq!(state.error_policy(&owned, &error), Action::await_change());

        // A success resets the backoff of that object.
        state.reconcile(config_map(None, false)).await.unwrap();
        assert_eq!(state.retries.attempts("shop/orders"), 0);

        assert_eq!(
            counter(
                &ctx,
                r#"controller_runtime_reconcile_total{controller="configmap",result="error"}"#
            ),
            "3"
        );
        assert_eq!(
            counter(
                &ctx,
                r#"controller_runtime_reconcile_errors_total{controller="configmap"}"#
            ),
            "3"
        );
        assert_eq!(
            counter(
                &ctx,
                r#"controller_runtime_terminal_reconcile_errors_total{controller="configmap"}"#
            ),
            "1"
        );
        assert_eq!(
            counter(
                &ctx,
                r#"stagehand_reconcile_errors_total{kind="ConfigMap",reason="Throttled"}"#
            ),
            "2"
        );
        assert_eq!(
            counter(
                &ctx,
                r#"stagehand_reconcile_errors_total{kind="ConfigMap",reason="OwnershipConflict"}"#
            ),
            "1"
        );
    }

    #[tokio::test]
    async fn deletion_runs_cleanup_and_keeps_the_finalizer_when_removal_fails() {
        let ctx = offline_context();
        let state = ControllerState::new(ctx.clone(), TestReconciler::default());
        let deleting = config_map(None, true);
        let error = state.reconcile(deleting.clone()).await.unwrap_err();
        assert_eq!(state.reconciler.cleaned_up.load(Ordering::SeqCst), 1);
        assert_eq!(state.reconciler.applied.load(Ordering::SeqCst), 0);
        // Cleanup succeeded; removing the finalizer needs the (unreachable) API server.
        assert!(
            matches!(
                &error,
                ReconcileError::Runtime(crate::runtime::Error::Finalizer {
                    operation: "remove",
                    ..
                })
            ),
            "{error}"
        );
        assert_eq!(error.reason(), "FinalizerUpdateFailed");
        assert_eq!(
            state.error_policy(&deleting, &error),
            Action::requeue(Duration::from_secs(5))
        );
    }

    #[tokio::test]
    async fn objects_without_the_finalizer_get_it_before_any_apply() {
        let ctx = offline_context();
        let state = ControllerState::new(ctx, TestReconciler::default());
        let mut fresh = (*config_map(None, false)).clone();
        fresh.metadata.finalizers = None;
        let error = state.reconcile(Arc::new(fresh)).await.unwrap_err();
        assert_eq!(
            state.reconciler.applied.load(Ordering::SeqCst),
            0,
            "apply must wait for the finalizer"
        );
        assert!(
            matches!(
                &error,
                ReconcileError::Runtime(crate::runtime::Error::Finalizer {
                    operation: "add",
                    ..
                })
            ),
            "{error}"
        );
    }

    #[tokio::test]
    async fn watch_scope_follows_the_namespace_setting() {
        let ctx = offline_context();
        let all = ControllerState::<ConfigMap, _>::new(ctx.clone(), TestReconciler::default());
        assert_eq!(all.api.resource_url(), "/api/v1/configmaps");
        let mut scoped = (*ctx).clone();
        scoped.settings.namespace = Some("shop".into());
        let one = ControllerState::<ConfigMap, _>::new(Arc::new(scoped), TestReconciler::default());
        assert_eq!(one.api.resource_url(), "/api/v1/namespaces/shop/configmaps");
    }
}
