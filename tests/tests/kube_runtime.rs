//! kube-runtime's `Controller` and Lease handling (what leader election uses) against the
//! stand-in: reconciles on create, update and delete; Lease create/renew/apply conflicts.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::wait::{await_condition, conditions};
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use serde_json::json;
use stagehand_testenv::TestApiServer;
use tokio::sync::mpsc;

const TIMEOUT: Duration = Duration::from_secs(10);
const HOLD: &str = "test.stagehand.dev/hold";

/// What the test controller saw: name, the `data.v` value, whether it was being deleted.
type Seen = (String, Option<String>, bool);

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct ReconcileFailed(#[from] kube::Error);

struct Ctx {
    client: Client,
    seen: mpsc::UnboundedSender<Seen>,
}

async fn reconcile(cm: Arc<ConfigMap>, ctx: Arc<Ctx>) -> Result<Action, ReconcileFailed> {
    let deleting = cm.metadata.deletion_timestamp.is_some();
    let value = cm.data.as_ref().and_then(|d| d.get("v").cloned());
    let _ = ctx.seen.send((cm.name_any(), value, deleting));
    if deleting && cm.finalizers().iter().any(|f| f == HOLD) {
        // Release: a JSON merge patch that empties the finalizer list.
        let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &cm.namespace().unwrap());
        api.patch(
            &cm.name_any(),
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": null}})),
        )
        .await?;
    }
    Ok(Action::await_change())
}

fn error_policy(_: Arc<ConfigMap>, _: &ReconcileFailed, _: Arc<Ctx>) -> Action {
    Action::requeue(Duration::from_millis(100))
}

async fn next_seen(
    rx: &mut mpsc::UnboundedReceiver<Seen>,
    what: &str,
    pred: impl Fn(&Seen) -> bool,
) -> Seen {
    tokio::time::timeout(TIMEOUT, async {
        loop {
            let seen = rx.recv().await.expect("controller stopped");
            if pred(&seen) {
                return seen;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for the controller to reconcile {what}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_reconciles_on_create_update_and_delete() {
    let server = TestApiServer::start().await.unwrap();
    let client = server.client();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let ctx = Arc::new(Ctx {
        client: client.clone(),
        seen: tx,
    });
    let controller = tokio::spawn(
        Controller::new(api.clone(), watcher::Config::default())
            .run(reconcile, error_policy, ctx)
            .for_each(|_| async {}),
    );

    let cm = ConfigMap {
        metadata: ObjectMeta {
            name: Some("watched".into()),
            finalizers: Some(vec![HOLD.into()]),
            ..ObjectMeta::default()
        },
        data: Some([("v".to_owned(), "1".to_owned())].into()),
        ..ConfigMap::default()
    };
    let uid = api
        .create(&PostParams::default(), &cm)
        .await
        .unwrap()
        .uid()
        .unwrap();
    next_seen(&mut rx, "the create", |s| {
        s.0 == "watched" && s.1.as_deref() == Some("1")
    })
    .await;

    api.patch(
        "watched",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"v": "2"}})),
    )
    .await
    .unwrap();
    next_seen(&mut rx, "the update", |s| {
        s.1.as_deref() == Some("2") && !s.2
    })
    .await;

    api.delete("watched", &DeleteParams::default())
        .await
        .unwrap();
    next_seen(&mut rx, "the deletion", |s| s.2).await;
    // The reconciler released its finalizer, so the object is gone for good.
    tokio::time::timeout(
        TIMEOUT,
        await_condition(api.clone(), "watched", conditions::is_deleted(&uid)),
    )
    .await
    .expect("object still present after its finalizer was released")
    .unwrap();
    controller.abort();
}

fn lease(holder: &str) -> serde_json::Value {
    json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "stagehand-leader", "namespace": "default"},
        "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15}
    })
}

#[tokio::test]
async fn leases_create_renew_and_apply_conflicts() {
    let server = TestApiServer::start().await.unwrap();
    let leases: Api<Lease> = Api::namespaced(server.client(), "default");

    // Acquire by server-side apply as manager "pod-a".
    let a = PatchParams::apply("pod-a");
    let created = leases
        .patch("stagehand-leader", &a, &Patch::Apply(lease("pod-a")))
        .await
        .unwrap();
    assert_eq!(
        created.spec.as_ref().unwrap().holder_identity.as_deref(),
        Some("pod-a")
    );
    let first_version = created.resource_version().unwrap();

    // Renew: a replace with the current resourceVersion succeeds; a stale one is a 409.
    let mut renewed = created.clone();
    renewed.spec.as_mut().unwrap().lease_transitions = Some(1);
    let renewed = leases
        .replace("stagehand-leader", &PostParams::default(), &renewed)
        .await
        .unwrap();
    assert_ne!(renewed.resource_version().unwrap(), first_version);
    let mut stale = created.clone();
    stale.spec.as_mut().unwrap().lease_transitions = Some(2);
    match leases
        .replace("stagehand-leader", &PostParams::default(), &stale)
        .await
    {
        Err(kube::Error::Api(status)) => {
            assert_eq!((status.code, status.reason.as_str()), (409, "Conflict"));
        }
        other => panic!("a stale renew must be a 409 Conflict, got {other:?}"),
    }

    // Another manager taking the lease without force conflicts on holderIdentity...
    let b = PatchParams::apply("pod-b");
    match leases
        .patch("stagehand-leader", &b, &Patch::Apply(lease("pod-b")))
        .await
    {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 409);
            assert!(
                status.message.contains("holderIdentity"),
                "{}",
                status.message
            );
        }
        other => {
            panic!("a non-forced apply over pod-a's holderIdentity must conflict, got {other:?}")
        }
    }
    // ...and wins with force.
    let taken = leases
        .patch(
            "stagehand-leader",
            &b.force(),
            &Patch::Apply(lease("pod-b")),
        )
        .await
        .unwrap();
    assert_eq!(
        taken.spec.unwrap().holder_identity.as_deref(),
        Some("pod-b")
    );
    let got = leases.get("stagehand-leader").await.unwrap();
    assert_eq!(got.spec.unwrap().holder_identity.as_deref(), Some("pod-b"));
}
