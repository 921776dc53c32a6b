//! The `stagehand.dev/cleanup` finalizer: added before the first apply, so deletion always runs
//! the kind's cleanup, and removed only once cleanup succeeded. Apply and cleanup never share a
//! code path; [`dispatch`] routes each reconcile to one of them via `kube::runtime::finalizer`.

use std::sync::Arc;

use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{self, Event};
use kube::{Client, ResourceExt};
use stagehand_crds::{DeletionPolicy, FINALIZER};

use super::context::Context;
use super::controller::{ManagedKind, Reconciler};
use super::error::{Error, ReconcileError};

/// What happens to an object's AWS resources on deletion: `spec.deletionPolicy` when set;
/// otherwise what Stagehand created is deleted and what it adopted is retained (a user's
/// pre-existing resource must never disappear because they tried Stagehand).
pub const fn effective_deletion_policy(
    spec: Option<DeletionPolicy>,
    created_by_stagehand: bool,
) -> DeletionPolicy {
    match spec {
        Some(policy) => policy,
        None if created_by_stagehand => DeletionPolicy::Delete,
        None => DeletionPolicy::Retain,
    }
}

/// The API of `object`'s own namespace. The finalizer patches go to
/// `.../namespaces/<ns>/<plural>/<name>`: the controller's watch `Api` may be cluster-wide
/// (`Api::all`), whose URL has no namespace and would miss the object (404).
pub fn object_api<K: ManagedKind>(client: &Client, object: &K) -> Result<Api<K>, Error> {
    match object.namespace() {
        Some(namespace) => Ok(Api::namespaced(client.clone(), &namespace)),
        None => Err(Error::NoNamespace {
            kind: K::kind(&()).into_owned(),
            name: object.name_any(),
        }),
    }
}

/// Runs one reconcile of `object` through the finalizer: adds the finalizer if missing (the
/// patch triggers the next reconcile), calls `reconciler.apply` for live objects and
/// `reconciler.cleanup` for objects being deleted, then removes the finalizer.
pub async fn dispatch<K, R>(
    object: Arc<K>,
    reconciler: &R,
    ctx: Arc<Context>,
) -> Result<Action, ReconcileError<R::Error>>
where
    K: ManagedKind,
    R: Reconciler<K>,
{
    let kind = K::kind(&()).into_owned();
    let namespace = object.namespace().unwrap_or_default();
    let name = object.name_any();
    let api = object_api(&ctx.client, object.as_ref())?;
    finalizer::finalizer(&api, FINALIZER, object, |event| async move {
        match event {
            Event::Apply(object) => reconciler.apply(object, ctx).await,
            Event::Cleanup(object) => reconciler.cleanup(object, ctx).await,
        }
    })
    .await
    .map_err(|error| match error {
        finalizer::Error::ApplyFailed(e) => ReconcileError::Apply(e),
        finalizer::Error::CleanupFailed(e) => ReconcileError::Cleanup(e),
        finalizer::Error::AddFinalizer(source) => ReconcileError::Runtime(Error::Finalizer {
            operation: "add",
            kind,
            namespace,
            name,
            source: Box::new(source),
        }),
        finalizer::Error::RemoveFinalizer(source) => ReconcileError::Runtime(Error::Finalizer {
            operation: "remove",
            kind,
            namespace,
            name,
            source: Box::new(source),
        }),
        finalizer::Error::UnnamedObject => ReconcileError::Runtime(Error::UnnamedObject { kind }),
        finalizer::Error::InvalidFinalizer => ReconcileError::Runtime(Error::InvalidFinalizer),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::ObjectMeta;

    #[tokio::test]
    async fn finalizer_patches_go_to_the_objects_namespace() {
        let client =
            Client::try_from(kube::Config::new("http://127.0.0.1:1".parse().unwrap())).unwrap();
        let object = |namespace: Option<&str>| ConfigMap {
            metadata: ObjectMeta {
                name: Some("orders".into()),
                namespace: namespace.map(str::to_owned),
                ..ObjectMeta::default()
            },
            ..ConfigMap::default()
        };
        let api = object_api(&client, &object(Some("shop"))).unwrap();
        assert_eq!(api.resource_url(), "/api/v1/namespaces/shop/configmaps");
        let err = object_api(&client, &object(None)).unwrap_err();
        assert_eq!(err.to_string(), "ConfigMap orders has no namespace");
    }

    #[test]
    fn deletion_policy_table() {
        use DeletionPolicy::{Delete, Retain};
        let cases = [
            (None, true, Delete),
            (None, false, Retain),
            (Some(Delete), true, Delete),
            (Some(Delete), false, Delete),
            (Some(Retain), true, Retain),
            (Some(Retain), false, Retain),
        ];
        for (spec, created, expected) in cases {
            assert_eq!(
                effective_deletion_policy(spec, created),
                expected,
                "spec {spec:?}, created by stagehand {created}"
            );
        }
    }
}
