//! Leader election against the `stagehand-testenv` API stand-in, with short timings: one leader
//! among two electors, release on graceful shutdown and takeover, takeover of an expired lease,
//! and the manager running controllers only while leading.

#![allow(
    clippy::unwrap_used,
    reason = "a test module: a panic with its location is the failure report we want"
)]

use std::sync::Arc;
use std::time::Duration;

use aws_config::{Region, SdkConfig};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, ObjectMeta, PostParams};
use stagehand::aws::fence::Refusal;
use stagehand::runtime::leader::{Ended, LeaderElector, LeaseConfig, LeaseTimings};
use stagehand::runtime::{Context, Metrics, Registry, Shutdown, manager};
use stagehand::settings::Settings;
use stagehand_testenv::TestApiServer;

const TIMEOUT: Duration = Duration::from_secs(20);
const LEASE: &str = "stagehand-leader";

fn timings() -> LeaseTimings {
    LeaseTimings {
        lease_duration: Duration::from_secs(3),
        renew_interval: Duration::from_millis(200),
        renew_deadline: Duration::from_secs(2),
        retry_interval: Duration::from_millis(100),
    }
}

fn elector(server: &TestApiServer, identity: &str, metrics: &Metrics) -> LeaderElector {
    LeaderElector::new(
        server.client(),
        LeaseConfig {
            namespace: "default".into(),
            name: LEASE.into(),
            identity: identity.into(),
            timings: timings(),
            wall_clock_offset: SignedDuration::ZERO,
        },
        metrics,
    )
}

async fn holder(server: &TestApiServer) -> Option<String> {
    Api::<Lease>::namespaced(server.client(), "default")
        .get_opt(LEASE)
        .await
        .unwrap()
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity)
}

fn transitions(metrics: &Metrics, transition: &str) -> u64 {
    metrics
        .leader_transitions_total
        .with_label_values(&[LEASE, transition])
        .get()
}

fn leader_gauge(metrics: &Metrics) -> String {
    let text = metrics.render().unwrap();
    let series = format!("leader_election_master_status{{name=\"{LEASE}\"}}");
    text.lines()
        .find_map(|l| l.strip_prefix(series.as_str()).map(|v| v.trim().to_owned()))
        .unwrap_or_else(|| panic!("no {series} in:\n{text}"))
}

async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(TIMEOUT, future)
        .await
        .unwrap_or_else(|_| panic!("timed out: {what}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_of_two_leads_and_the_other_takes_over_after_release() {
    let server = TestApiServer::start().await.unwrap();
    let (metrics_a, metrics_b) = (Metrics::new().unwrap(), Metrics::new().unwrap());
    let a = elector(&server, "replica-a", &metrics_a);
    let b = elector(&server, "replica-b", &metrics_b);
    let (shutdown_a, shutdown_b) = (Shutdown::new(), Shutdown::new());

    // A first: it leads.
    assert!(within("a acquires", a.acquire(&shutdown_a)).await);
    assert_eq!(holder(&server).await.as_deref(), Some("replica-a"));
    assert_eq!(leader_gauge(&metrics_a), "1");

    // B stands by while A renews.
    let b_acquires = tokio::spawn({
        let b = b.clone();
        let shutdown_b = shutdown_b.clone();
        async move { b.acquire(&shutdown_b).await }
    });
    let a_holds = tokio::spawn({
        let a = a.clone();
        let shutdown_a = shutdown_a.clone();
        async move { a.hold(shutdown_a.wait()).await }
    });
    // B has tried and lost at least once (a direct round shows the same).
    assert!(!b.try_acquire_or_renew().await.unwrap());
    assert_eq!(leader_gauge(&metrics_b), "0");
    // Several renewals by A (renewTime moves) while B still waits.
    let first_renewal = renew_time(&server).await;
    within("a renews", async {
        while renew_time(&server).await == first_renewal {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(!b_acquires.is_finished(), "b led while a was renewing");
    assert_eq!(holder(&server).await.as_deref(), Some("replica-a"));

    // A shuts down gracefully and releases; B takes over (long before A's lease would expire
    // on its own, which the short takeover shows only loosely; the holder check is exact).
    shutdown_a.trigger();
    assert_eq!(
        within("a stops holding", a_holds).await.unwrap(),
        Ended::Shutdown
    );
    a.release().await;
    assert_eq!(leader_gauge(&metrics_a), "0");
    assert!(within("b takes over", b_acquires).await.unwrap());
    assert_eq!(holder(&server).await.as_deref(), Some("replica-b"));
    assert_eq!(leader_gauge(&metrics_b), "1");
    let lease = Api::<Lease>::namespaced(server.client(), "default")
        .get(LEASE)
        .await
        .unwrap();
    assert_eq!(lease.spec.unwrap().lease_transitions, Some(1));

    // A, still running, now finds the lease taken: it has lost.
    assert!(!a.try_acquire_or_renew().await.unwrap());
    shutdown_b.trigger();
}

async fn renew_time(server: &TestApiServer) -> Option<Timestamp> {
    Api::<Lease>::namespaced(server.client(), "default")
        .get(LEASE)
        .await
        .unwrap()
        .spec
        .and_then(|s| s.renew_time)
        .map(|t| t.0)
}

async fn seed_lease(server: &TestApiServer, holder: &str, renewed_ago: Duration) {
    let renewed = Timestamp::now() - SignedDuration::try_from(renewed_ago).unwrap();
    Api::<Lease>::namespaced(server.client(), "default")
        .create(
            &PostParams::default(),
            &Lease {
                metadata: ObjectMeta {
                    name: Some(LEASE.into()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(holder.into()),
                    lease_duration_seconds: Some(3),
                    acquire_time: Some(MicroTime(renewed)),
                    renew_time: Some(MicroTime(renewed)),
                    lease_transitions: Some(4),
                    ..LeaseSpec::default()
                }),
            },
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_is_taken_one_duration_after_this_replica_last_saw_it_change() {
    let server = TestApiServer::start().await.unwrap();
    let metrics = Metrics::new().unwrap();
    let me = elector(&server, "replica-b", &metrics);

    // A crashed holder's renewTime says a minute ago (or its clock was a minute behind): the
    // wall clock in the lease is not trusted, this replica has only just seen it.
    seed_lease(&server, "crashed", Duration::from_secs(60)).await;
    let first_sight = tokio::time::Instant::now();
    assert!(!me.try_acquire_or_renew().await.unwrap());
    within("b takes the unchanged lease", async {
        while !me.try_acquire_or_renew().await.unwrap() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    let waited = first_sight.elapsed();
    assert!(
        waited >= timings().lease_duration,
        "taken after {waited:?}, before a lease duration without change"
    );
    let lease = Api::<Lease>::namespaced(server.client(), "default")
        .get(LEASE)
        .await
        .unwrap()
        .spec
        .unwrap();
    assert_eq!(lease.holder_identity.as_deref(), Some("replica-b"));
    assert_eq!(lease.lease_transitions, Some(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_the_lease_stops_the_manager_with_an_error() {
    let server = TestApiServer::start().await.unwrap();
    let metrics = Metrics::new().unwrap();
    let ctx = Arc::new(Context::new(
        server.client(),
        SdkConfig::builder()
            .region(Region::new("eu-west-1"))
            .build(),
        metrics.clone(),
        Settings::default(),
    ));
    let shutdown = Shutdown::new();
    let running = tokio::spawn(manager::run_controllers(
        ctx.clone(),
        Registry::new(),
        Some(elector(&server, "replica-a", &metrics)),
        shutdown.clone(),
    ));
    within("replica-a leads", async {
        while holder(&server).await.as_deref() != Some("replica-a") {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    // Leading with no controllers: ready at once.
    within("ready", async {
        while !ctx.readiness.is_ready() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;

    // Someone else forcibly takes the lease (an admin, or a split brain after a long pause).
    let leases: Api<Lease> = Api::namespaced(server.client(), "default");
    let mut lease = leases.get(LEASE).await.unwrap();
    lease.spec.as_mut().unwrap().holder_identity = Some("usurper".into());
    leases
        .replace(LEASE, &PostParams::default(), &lease)
        .await
        .unwrap();

    let result = within("the manager stops", running).await.unwrap();
    let error = result.unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("lost leadership of lease default/{LEASE}")
    );
    assert!(shutdown.is_triggered(), "losing must stop everything");
    assert_eq!(leader_gauge(&metrics), "0");
    assert_eq!(transitions(&metrics, "acquired"), 1);
    assert_eq!(transitions(&metrics, "lost"), 1);
    // The fence closed with the loss: this replica's AWS writes are refused.
    assert_eq!(
        ctx.aws.write_fence().check(tokio::time::Instant::now()),
        Err(Refusal::NotLeading)
    );
    // Reported on the Lease, for `kubectl describe lease`.
    let events: Api<k8s_openapi::api::events::v1::Event> =
        Api::namespaced(server.client(), "default");
    let reasons: Vec<(Option<String>, Option<String>)> = events
        .list(&kube::api::ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(LEASE))
        .map(|e| (e.reason, e.type_))
        .collect();
    assert!(
        reasons.contains(&(Some("LeaderElected".into()), Some("Normal".into())))
            && reasons.contains(&(Some("LeadershipLost".into()), Some("Warning".into()))),
        "{reasons:?}"
    );
    // It did not release a lease it no longer holds.
    assert_eq!(holder(&server).await.as_deref(), Some("usurper"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_shutdown_releases_the_lease_after_the_controllers_stop() {
    let server = TestApiServer::start().await.unwrap();
    let metrics = Metrics::new().unwrap();
    let ctx = Arc::new(Context::new(
        server.client(),
        SdkConfig::builder()
            .region(Region::new("eu-west-1"))
            .build(),
        metrics.clone(),
        Settings::default(),
    ));
    // Another replica holds the lease: this one is a ready standby.
    seed_lease(&server, "replica-a", Duration::ZERO).await;
    let shutdown = Shutdown::new();
    let running = tokio::spawn(manager::run_controllers(
        ctx.clone(),
        Registry::new(),
        Some(elector(&server, "replica-b", &metrics)),
        shutdown.clone(),
    ));
    within("standby is ready", async {
        while !ctx.readiness.is_ready() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert_eq!(leader_gauge(&metrics), "0");
    // The seeded lease (3s) expires without renewal: replica-b takes over.
    within("replica-b leads", async {
        while holder(&server).await.as_deref() != Some("replica-b") {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    within("leader gauge", async {
        while leader_gauge(&metrics) != "1" {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;

    shutdown.trigger();
    within("the manager stops", running).await.unwrap().unwrap();
    assert_eq!(holder(&server).await, None, "lease not released");
    assert_eq!(leader_gauge(&metrics), "0");
}
