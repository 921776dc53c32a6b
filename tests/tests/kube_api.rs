//! The stand-in driven by the real kube client and kube-runtime.

#![allow(clippy::unwrap_used)]

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, ListParams, ObjectMeta, Patch, PatchParams,
    PostParams, WatchEvent, WatchParams,
};
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{Event as FinalizerEvent, finalizer};
use kube::runtime::watcher;
use serde_json::{Value, json};
use stagehand_testenv::TestApiServer;

const TIMEOUT: Duration = Duration::from_secs(10);

fn api_error(e: kube::Error) -> (u16, String, String) {
    match e {
        kube::Error::Api(s) => (s.code, s.reason.clone(), s.message.clone()),
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn cm(name: &str, data: &[(&str, &str)]) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            ..ObjectMeta::default()
        },
        data: Some(
            data.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        ),
        ..ConfigMap::default()
    }
}

/// Waits (bounded) for the first stream item satisfying `pred`; returns the items skipped on
/// the way, then the match.
async fn until<S, T>(stream: &mut S, what: &str, mut pred: impl FnMut(&T) -> bool) -> Vec<T>
where
    S: Stream<Item = T> + Unpin,
    T: std::fmt::Debug,
{
    let mut seen = Vec::new();
    let found = tokio::time::timeout(TIMEOUT, async {
        while let Some(item) = stream.next().await {
            let hit = pred(&item);
            seen.push(item);
            if hit {
                return true;
            }
        }
        false
    })
    .await;
    assert!(
        matches!(found, Ok(true)),
        "timed out or stream ended waiting for {what}; saw {seen:#?}"
    );
    seen
}

async fn install_crds(server: &TestApiServer) -> Vec<CustomResourceDefinition> {
    server
        .install_stagehand_crds()
        .await
        .expect("the Stagehand CRDs apply")
}

fn lambda_stage_api(server: &TestApiServer, ns: &str) -> Api<DynamicObject> {
    let ar = ApiResource::erase::<stagehand_crds::LambdaStage>(&());
    Api::namespaced_with(server.client(), ns, &ar)
}

fn lambda_stage(name: &str, spec: &Value) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "stagehand.dev/v1alpha1",
        "kind": "LambdaStage",
        "metadata": {"name": name},
        "spec": spec,
    }))
    .expect("a valid DynamicObject")
}

fn valid_spec() -> Value {
    json!({
        "region": "eu-west-1",
        "functions": [{"name": "orders-api", "code": {"s3": {"bucket": "artifacts-bucket", "key": "orders.zip"}}}]
    })
}

#[tokio::test]
async fn crud_with_real_status_codes() {
    let server = TestApiServer::start().await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");

    let created = api
        .create(&PostParams::default(), &cm("a", &[("k", "v")]))
        .await
        .unwrap();
    let meta = &created.metadata;
    assert!(meta.uid.is_some() && meta.creation_timestamp.is_some());
    assert_eq!(meta.namespace.as_deref(), Some("default"));
    let rv: u64 = meta.resource_version.as_deref().unwrap().parse().unwrap();

    let (code, reason, message) = api_error(
        api.create(&PostParams::default(), &cm("a", &[]))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (code, reason.as_str(), message.as_str()),
        (409, "AlreadyExists", "configmaps \"a\" already exists")
    );

    let (code, reason, message) = api_error(api.get("missing").await.unwrap_err());
    assert_eq!(
        (code, reason.as_str(), message.as_str()),
        (404, "NotFound", "configmaps \"missing\" not found")
    );
    assert!(api.get_opt("missing").await.unwrap().is_none());

    let mut changed = created.clone();
    changed.data = Some([("k".to_owned(), "v2".to_owned())].into());
    let replaced = api
        .replace("a", &PostParams::default(), &changed)
        .await
        .unwrap();
    let rv2: u64 = replaced
        .metadata
        .resource_version
        .as_deref()
        .unwrap()
        .parse()
        .unwrap();
    assert!(rv2 > rv, "resourceVersion grows: {rv} -> {rv2}");

    // Replacing with the old resourceVersion is a conflict.
    let (code, reason, message) = api_error(
        api.replace("a", &PostParams::default(), &changed)
            .await
            .unwrap_err(),
    );
    assert_eq!((code, reason.as_str()), (409, "Conflict"));
    assert!(
        message.contains("the object has been modified"),
        "{message}"
    );

    // generateName.
    let mut generated = cm("", &[]);
    generated.metadata.name = None;
    generated.metadata.generate_name = Some("gen-".to_owned());
    let generated = api
        .create(&PostParams::default(), &generated)
        .await
        .unwrap();
    let name = generated.metadata.name.unwrap();
    assert!(name.starts_with("gen-") && name.len() == 9, "{name}");

    // A namespace that does not exist.
    let other: Api<ConfigMap> = Api::namespaced(server.client(), "nowhere");
    let (code, _, message) = api_error(
        other
            .create(&PostParams::default(), &cm("x", &[]))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (code, message.as_str()),
        (404, "namespaces \"nowhere\" not found")
    );

    // Invalid name.
    let (code, reason, message) = api_error(
        api.create(&PostParams::default(), &cm("Bad_Name", &[]))
            .await
            .unwrap_err(),
    );
    assert_eq!((code, reason.as_str()), (422, "Invalid"));
    assert!(
        message.starts_with(
            "ConfigMap \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\""
        ),
        "{message}"
    );

    api.delete("a", &DeleteParams::default()).await.unwrap();
    assert!(api.get_opt("a").await.unwrap().is_none());
    let (code, _, _) = api_error(api.delete("a", &DeleteParams::default()).await.unwrap_err());
    assert_eq!(code, 404);
    server.shutdown().await;
}

#[tokio::test]
async fn list_pagination_and_selectors() {
    let server = TestApiServer::start().await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    for i in 0..5 {
        let mut c = cm(&format!("cm-{i}"), &[]);
        c.metadata.labels = Some(
            [(
                "tier".to_owned(),
                if i % 2 == 0 { "even" } else { "odd" }.to_owned(),
            )]
            .into(),
        );
        api.create(&PostParams::default(), &c).await.unwrap();
    }
    let page = api.list(&ListParams::default().limit(2)).await.unwrap();
    assert_eq!(page.items.len(), 2);
    assert!(
        page.metadata
            .resource_version
            .as_ref()
            .is_some_and(|r| !r.is_empty())
    );
    let token = page.metadata.continue_.clone().expect("a continue token");
    let page2 = api
        .list(&ListParams::default().limit(2).continue_token(&token))
        .await
        .unwrap();
    let page3 = api
        .list(
            &ListParams::default()
                .limit(2)
                .continue_token(page2.metadata.continue_.as_deref().unwrap()),
        )
        .await
        .unwrap();
    assert_eq!(page3.items.len(), 1);
    assert!(page3.metadata.continue_.is_none());
    let names = |l: &kube::api::ObjectList<ConfigMap>| {
        l.items
            .iter()
            .map(|c| c.metadata.name.clone().unwrap())
            .collect::<Vec<_>>()
    };
    let mut all = names(&page);
    all.extend(names(&page2));
    all.extend(names(&page3));
    assert_eq!(all, vec!["cm-0", "cm-1", "cm-2", "cm-3", "cm-4"]);

    let even = api
        .list(&ListParams::default().labels("tier=even"))
        .await
        .unwrap();
    assert_eq!(names(&even), vec!["cm-0", "cm-2", "cm-4"]);
    let set = api
        .list(&ListParams::default().labels("tier in (odd),tier"))
        .await
        .unwrap();
    assert_eq!(names(&set), vec!["cm-1", "cm-3"]);
    let by_name = api
        .list(&ListParams::default().fields("metadata.name=cm-3"))
        .await
        .unwrap();
    assert_eq!(names(&by_name), vec!["cm-3"]);
    let all_ns: Api<ConfigMap> = Api::all(server.client());
    let by_ns = all_ns
        .list(&ListParams::default().fields("metadata.namespace=kube-system"))
        .await
        .unwrap();
    assert!(by_ns.items.is_empty());
}

#[tokio::test]
async fn watcher_sees_changes_and_relists_after_410_expired() {
    let server = TestApiServer::start().await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let mut events = watcher(api.clone(), watcher::Config::default()).boxed();
    until(&mut events, "InitDone", |e| {
        matches!(e, Ok(watcher::Event::InitDone))
    })
    .await;

    api.create(&PostParams::default(), &cm("w", &[("a", "1")]))
        .await
        .unwrap();
    until(
        &mut events,
        "ADDED w",
        |e| matches!(e, Ok(watcher::Event::Apply(c)) if c.metadata.name.as_deref() == Some("w")),
    )
    .await;
    api.patch(
        "w",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"a": "2"}})),
    )
    .await
    .unwrap();
    until(&mut events, "MODIFIED w", |e| {
        matches!(e, Ok(watcher::Event::Apply(c)) if c.data.as_ref().and_then(|d| d.get("a")).map(String::as_str) == Some("2"))
    })
    .await;
    api.delete("w", &DeleteParams::default()).await.unwrap();
    until(&mut events, "DELETED w", |e| {
        matches!(e, Ok(watcher::Event::Delete(_)))
    })
    .await;

    // Expire the history: the watch ends, the resumed watch gets 410 Expired as an ERROR
    // event, and the watcher re-lists.
    let requests_before = server.requests().len();
    server.expire_watch_history();
    let seen = until(&mut events, "re-list after 410", |e| {
        matches!(e, Ok(watcher::Event::InitDone))
    })
    .await;
    assert!(
        seen.iter()
            .any(|e| matches!(e, Err(err) if format!("{err:?}").contains("410"))),
        "the watcher saw the 410 as an error event: {seen:#?}"
    );
    let after = server.requests()[requests_before..].to_vec();
    assert!(
        after.iter().any(
            |r| r.starts_with("GET /api/v1/namespaces/default/configmaps")
                && !r.contains("watch=true")
        ),
        "a re-list happened: {after:#?}"
    );
    api.create(&PostParams::default(), &cm("after", &[]))
        .await
        .unwrap();
    until(&mut events, "ADDED after", |e| {
        matches!(e, Ok(watcher::Event::Apply(c)) if c.metadata.name.as_deref() == Some("after"))
    })
    .await;
}

#[tokio::test]
async fn raw_watch_from_a_too_old_version_is_one_410_error_event() {
    let server = TestApiServer::builder()
        .history_limit(2)
        .start()
        .await
        .unwrap();
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let first = api
        .create(&PostParams::default(), &cm("a", &[]))
        .await
        .unwrap();
    let first_rv = first.metadata.resource_version.unwrap();
    for i in 0..3 {
        api.patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"i": i.to_string()}})),
        )
        .await
        .unwrap();
    }
    let events: Vec<WatchEvent<ConfigMap>> = api
        .watch(&WatchParams::default().timeout(5), &first_rv)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    match &events[0] {
        WatchEvent::Error(status) => {
            assert_eq!((status.code, status.reason.as_str()), (410, "Expired"));
        }
        other => panic!("expected an ERROR event, got {other:?}"),
    }
}

#[tokio::test]
async fn streaming_list_watcher_gets_initial_events_end_bookmark() {
    let server = TestApiServer::start().await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    api.create(&PostParams::default(), &cm("pre", &[]))
        .await
        .unwrap();
    let mut events = watcher(api.clone(), watcher::Config::default().streaming_lists()).boxed();
    let seen = until(&mut events, "InitDone", |e| {
        matches!(e, Ok(watcher::Event::InitDone))
    })
    .await;
    assert!(seen.iter().any(|e| matches!(e, Ok(watcher::Event::InitApply(c)) if c.metadata.name.as_deref() == Some("pre"))), "{seen:#?}");
    assert!(
        server
            .requests()
            .iter()
            .any(|r| r.contains("sendInitialEvents=true"))
    );
    api.create(&PostParams::default(), &cm("post", &[]))
        .await
        .unwrap();
    until(
        &mut events,
        "ADDED post",
        |e| matches!(e, Ok(watcher::Event::Apply(c)) if c.metadata.name.as_deref() == Some("post")),
    )
    .await;
}

#[tokio::test]
async fn watch_with_selector_turns_label_changes_into_added_and_deleted() {
    let server = TestApiServer::start().await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let created = api
        .create(&PostParams::default(), &cm("s", &[]))
        .await
        .unwrap();
    let rv = created.metadata.resource_version.unwrap();
    let mut stream = api
        .watch(&WatchParams::default().labels("app=web").timeout(10), &rv)
        .await
        .unwrap()
        .boxed();
    api.patch(
        "s",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"app": "web"}}})),
    )
    .await
    .unwrap();
    until(&mut stream, "ADDED on label match", |e| {
        matches!(e, Ok(WatchEvent::Added(_)))
    })
    .await;
    api.patch(
        "s",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"app": "api"}}})),
    )
    .await
    .unwrap();
    until(&mut stream, "DELETED on label mismatch", |e| {
        matches!(e, Ok(WatchEvent::Deleted(_)))
    })
    .await;
}

#[tokio::test]
async fn finalizer_helper_adds_and_removes_its_finalizer() {
    const NAME: &str = "test.stagehand.dev/cleanup";
    let server = TestApiServer::start().await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    api.create(&PostParams::default(), &cm("f", &[]))
        .await
        .unwrap();

    let run = |obj: ConfigMap| {
        let api = api.clone();
        async move {
            let mut seen = None;
            let action = finalizer(&api, NAME, Arc::new(obj), |event| {
                seen = Some(match event {
                    FinalizerEvent::Apply(_) => "apply",
                    FinalizerEvent::Cleanup(_) => "cleanup",
                });
                async { Ok::<_, Infallible>(Action::await_change()) }
            })
            .await
            .expect("the finalizer helper succeeds");
            (action, seen)
        }
    };
    // First pass: the helper adds its finalizer (JSON patch `test` null + `add`).
    let (_, seen) = run(api.get("f").await.unwrap()).await;
    assert_eq!(seen, None);
    let obj = api.get("f").await.unwrap();
    assert_eq!(
        obj.metadata.finalizers.as_deref(),
        Some(&[NAME.to_owned()][..])
    );
    let (_, seen) = run(obj).await;
    assert_eq!(seen, Some("apply"));

    // Delete: the object stays, with a deletionTimestamp, until the finalizer goes.
    api.delete("f", &DeleteParams::default()).await.unwrap();
    let deleting = api.get("f").await.unwrap();
    assert!(deleting.metadata.deletion_timestamp.is_some());
    let (_, seen) = run(deleting).await;
    assert_eq!(seen, Some("cleanup"));
    assert!(
        api.get_opt("f").await.unwrap().is_none(),
        "gone once the finalizer is removed"
    );
}

#[tokio::test]
async fn deletion_with_finalizers_refuses_new_ones_and_emits_deleted_last() {
    let server = TestApiServer::start().await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let mut c = cm("d", &[]);
    c.metadata.finalizers = Some(vec!["a/one".to_owned()]);
    let created = api.create(&PostParams::default(), &c).await.unwrap();
    let rv = created.metadata.resource_version.unwrap();
    let mut stream = api
        .watch(&WatchParams::default().timeout(10), &rv)
        .await
        .unwrap()
        .boxed();

    api.delete("d", &DeleteParams::default()).await.unwrap();
    until(
        &mut stream,
        "MODIFIED with deletionTimestamp",
        |e| matches!(e, Ok(WatchEvent::Modified(c)) if c.metadata.deletion_timestamp.is_some()),
    )
    .await;
    let (code, reason, message) = api_error(
        api.patch(
            "d",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": ["a/one", "b/two"]}})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!((code, reason.as_str()), (422, "Invalid"));
    assert!(message.contains("metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted"), "{message}");

    api.patch(
        "d",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    until(&mut stream, "DELETED", |e| {
        matches!(e, Ok(WatchEvent::Deleted(_)))
    })
    .await;
    assert!(api.get_opt("d").await.unwrap().is_none());
}

#[tokio::test]
async fn json_patch_test_of_a_missing_path_compares_with_null() {
    let server = TestApiServer::start().await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    api.create(&PostParams::default(), &cm("j", &[]))
        .await
        .unwrap();
    let patch: json_patch::Patch = serde_json::from_value(json!([
        {"op": "test", "path": "/metadata/annotations", "value": null},
        {"op": "add", "path": "/metadata/annotations", "value": {"x": "y"}}
    ]))
    .unwrap();
    let patched = api
        .patch("j", &PatchParams::default(), &Patch::Json::<()>(patch))
        .await
        .unwrap();
    assert_eq!(
        patched
            .metadata
            .annotations
            .unwrap()
            .get("x")
            .map(String::as_str),
        Some("y")
    );

    let failing: json_patch::Patch = serde_json::from_value(json!([
        {"op": "test", "path": "/metadata/annotations", "value": null}
    ]))
    .unwrap();
    let (code, _, _) = api_error(
        api.patch("j", &PatchParams::default(), &Patch::Json::<()>(failing))
            .await
            .unwrap_err(),
    );
    assert_eq!(code, 422);
}

#[tokio::test]
async fn no_op_writes_change_nothing() {
    let server = TestApiServer::start().await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let created = api
        .create(&PostParams::default(), &cm("n", &[("k", "v")]))
        .await
        .unwrap();
    let rv = created.metadata.resource_version.clone().unwrap();
    let global = server.resource_version();

    let same = api
        .replace("n", &PostParams::default(), &created)
        .await
        .unwrap();
    assert_eq!(same.metadata.resource_version.as_deref(), Some(rv.as_str()));
    let merged = api
        .patch(
            "n",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"k": "v"}})),
        )
        .await
        .unwrap();
    assert_eq!(
        merged.metadata.resource_version.as_deref(),
        Some(rv.as_str())
    );
    assert_eq!(server.resource_version(), global, "no write happened");
    // A first apply of the same values is a write, as on the real server: the applier becomes
    // a co-owner of `data.k` (a managedFields entry). Applying it again changes nothing.
    let pp = PatchParams::apply("tests");
    let cfg = Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"k": "v"}}));
    let apply = || api.patch("n", &pp, &cfg);
    let first = apply().await.unwrap();
    let managers: Vec<String> = first
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .filter_map(|m| m.manager.clone())
        .collect();
    assert_eq!(managers.len(), 2, "{managers:?}");
    assert!(managers.contains(&"tests".to_owned()), "{managers:?}");
    let rv = first.metadata.resource_version.clone().unwrap();
    let global = server.resource_version();
    let applied = apply().await.unwrap();
    assert_eq!(
        applied.metadata.resource_version.as_deref(),
        Some(rv.as_str())
    );
    assert_eq!(
        applied.metadata.managed_fields,
        first.metadata.managed_fields
    );
    assert_eq!(server.resource_version(), global, "no write happened");

    // No event either: a watch from `rv` sees nothing before it times out.
    let events: Vec<WatchEvent<ConfigMap>> = api
        .watch(&WatchParams::default().timeout(1), &rv)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert!(
        events.iter().all(|e| matches!(e, WatchEvent::Bookmark(_))),
        "only the closing bookmark: {events:?}"
    );
}

#[tokio::test]
async fn generation_tracks_spec_and_status_is_a_subresource() {
    let server = TestApiServer::start().await.unwrap();
    install_crds(&server).await;
    let api = lambda_stage_api(&server, "default");
    let mut obj = lambda_stage("gen", &valid_spec());
    obj.data["status"] = json!({"message": "ignored on create"});
    let created = api.create(&PostParams::default(), &obj).await.unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    assert!(
        created.data.get("status").is_none(),
        "status is dropped on create"
    );

    // A status write: generation unchanged, spec untouched.
    let status = json!({"apiVersion": "stagehand.dev/v1alpha1", "kind": "LambdaStage", "status": {"observedGeneration": 1, "message": "synced"}, "spec": {"region": "us-east-1"}});
    let after_status = api
        .patch_status("gen", &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();
    assert_eq!(after_status.metadata.generation, Some(1));
    assert_eq!(after_status.data["status"]["message"], "synced");
    assert_eq!(after_status.data["spec"]["region"], "eu-west-1");

    // A main-resource write ignores status; a metadata-only change keeps generation.
    let labelled = api
        .patch(
            "gen",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"labels": {"a": "b"}}, "status": {"message": "nope"}}),
            ),
        )
        .await
        .unwrap();
    assert_eq!(labelled.metadata.generation, Some(1));
    assert_eq!(labelled.data["status"]["message"], "synced");

    // A spec change bumps generation.
    let spec_changed = api
        .patch(
            "gen",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"resyncInterval": "10m"}})),
        )
        .await
        .unwrap();
    assert_eq!(spec_changed.metadata.generation, Some(2));

    // Status through server-side apply on /status.
    let applied = api
        .patch_status(
            "gen",
            &PatchParams::apply("stagehand").force(),
            &Patch::Apply(json!({"apiVersion": "stagehand.dev/v1alpha1", "kind": "LambdaStage", "status": {"observedGeneration": 2}})),
        )
        .await
        .unwrap();
    assert_eq!(applied.metadata.generation, Some(2));
    assert_eq!(applied.data["status"]["observedGeneration"], 2);
}

#[tokio::test]
async fn server_side_apply_creates_and_updates() {
    let server = TestApiServer::start().await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let pp = PatchParams::apply("tests").force();
    let obj = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"}, "data": {"a": "1"}});
    let created = api.patch("ssa", &pp, &Patch::Apply(&obj)).await.unwrap();
    assert_eq!(created.data.unwrap()["a"], "1");
    let updated = api
        .patch("ssa", &pp, &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"}, "data": {"b": "2"}})))
        .await
        .unwrap();
    assert_eq!(updated.data.unwrap()["b"], "2");
    // Apply without apiVersion/kind is a 400.
    let (code, _, _) = api_error(
        api.patch("ssa", &pp, &Patch::Apply(json!({"data": {"c": "3"}})))
            .await
            .unwrap_err(),
    );
    assert_eq!(code, 400);
}

/// The managers of an object and the top-level `fieldsV1` keys each owns under `spec`/`status`.
fn managers(obj: &DynamicObject) -> Vec<(String, String, Option<String>, Value)> {
    obj.metadata
        .managed_fields
        .iter()
        .flatten()
        .map(|m| {
            (
                m.manager.clone().unwrap_or_default(),
                m.operation.clone().unwrap_or_default(),
                m.subresource.clone(),
                m.fields_v1
                    .as_ref()
                    .map(|f| f.0.clone())
                    .unwrap_or_default(),
            )
        })
        .collect()
}

#[tokio::test]
async fn server_side_apply_tracks_field_managers_conflicts_and_force() {
    let server = TestApiServer::start().await.unwrap();
    install_crds(&server).await;
    let api = lambda_stage_api(&server, "default");
    let obj = |spec: Value| json!({"apiVersion": "stagehand.dev/v1alpha1", "kind": "LambdaStage", "metadata": {"name": "owned"}, "spec": spec});
    let mut spec = valid_spec();
    spec["resyncInterval"] = json!("60s");
    spec["environment"] = json!({"STAGE": "prod"});
    spec["layers"] = json!([{"name": "common"}]);
    // Manager "deployer" creates it by apply.
    let created = api
        .patch(
            "owned",
            &PatchParams::apply("deployer"),
            &Patch::Apply(obj(spec.clone())),
        )
        .await
        .unwrap();
    let m = managers(&created);
    assert_eq!(m.len(), 1, "{m:?}");
    assert_eq!((m[0].0.as_str(), m[0].1.as_str()), ("deployer", "Apply"));
    assert_eq!(m[0].3["f:spec"]["f:resyncInterval"], json!({}));
    assert_eq!(
        m[0].3["f:spec"]["f:layers"]["k:{\"name\":\"common\"}"]["."],
        json!({}),
        "map-type list items are keyed: {m:?}"
    );

    // A second manager changing a field "deployer" owns: 409 with the apiserver's wording.
    let other = json!({"region": "eu-west-1", "resyncInterval": "120s"});
    let err = api
        .patch(
            "owned",
            &PatchParams::apply("tuner"),
            &Patch::Apply(obj(other.clone())),
        )
        .await
        .unwrap_err();
    let kube::Error::Api(status) = err else {
        panic!("expected an API error");
    };
    assert_eq!((status.code, status.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        status.message,
        "Apply failed with 1 conflict: conflict with \"deployer\": .spec.resyncInterval"
    );
    let causes = status.details.map(|d| d.causes).unwrap_or_default();
    assert_eq!(causes.len(), 1);
    assert_eq!(causes[0].reason, "FieldManagerConflict");
    assert_eq!(causes[0].field, ".spec.resyncInterval");
    // The same value is no conflict: region becomes shared.
    let shared = api
        .patch(
            "owned",
            &PatchParams::apply("tuner"),
            &Patch::Apply(obj(json!({"region": "eu-west-1"}))),
        )
        .await
        .unwrap();
    assert_eq!(managers(&shared).len(), 2);

    // Forced: "tuner" takes resyncInterval from "deployer".
    let forced = api
        .patch(
            "owned",
            &PatchParams::apply("tuner").force(),
            &Patch::Apply(obj(other)),
        )
        .await
        .unwrap();
    assert_eq!(forced.data["spec"]["resyncInterval"], "120s");
    let m = managers(&forced);
    let deployer = &m.iter().find(|e| e.0 == "deployer").unwrap().3;
    let tuner = &m.iter().find(|e| e.0 == "tuner").unwrap().3;
    assert!(
        deployer["f:spec"].get("f:resyncInterval").is_none(),
        "{m:?}"
    );
    assert_eq!(tuner["f:spec"]["f:resyncInterval"], json!({}));

    // "deployer" stops applying `environment` (nobody else owns it): it is removed. It keeps
    // region, shared with "tuner".
    let mut without_env = valid_spec();
    without_env["resyncInterval"] = json!("120s");
    let reapplied = api
        .patch(
            "owned",
            &PatchParams::apply("deployer").force(),
            &Patch::Apply(obj(without_env)),
        )
        .await
        .unwrap();
    assert!(
        reapplied.data["spec"].get("environment").is_none(),
        "{:?}",
        reapplied.data
    );
    assert_eq!(reapplied.data["spec"]["region"], "eu-west-1");

    // An Update (merge patch) records its manager and takes the field it changed.
    let patched = api
        .patch(
            "owned",
            &PatchParams {
                field_manager: Some("kubectl-edit".to_owned()),
                ..PatchParams::default()
            },
            &Patch::Merge(json!({"spec": {"resyncInterval": "300s"}})),
        )
        .await
        .unwrap();
    let m = managers(&patched);
    let edit = m.iter().find(|e| e.0 == "kubectl-edit").unwrap();
    assert_eq!(edit.1, "Update");
    assert_eq!(edit.3["f:spec"]["f:resyncInterval"], json!({}));
    let err = api
        .patch(
            "owned",
            &PatchParams::apply("tuner"),
            &Patch::Apply(obj(
                json!({"region": "eu-west-1", "resyncInterval": "120s"}),
            )),
        )
        .await
        .unwrap_err();
    let kube::Error::Api(status) = err else {
        panic!("expected an API error");
    };
    assert_eq!(
        status.message,
        "Apply failed with 1 conflict: conflict with \"kubectl-edit\" using stagehand.dev/v1alpha1: .spec.resyncInterval"
    );

    // Status apply is owned separately, under the status subresource.
    let with_status = api
        .patch_status(
            "owned",
            &PatchParams::apply("deployer"),
            &Patch::Apply(json!({"apiVersion": "stagehand.dev/v1alpha1", "kind": "LambdaStage", "status": {"observedGeneration": 1}})),
        )
        .await
        .unwrap();
    let m = managers(&with_status);
    let status_entry = m
        .iter()
        .find(|e| e.2.as_deref() == Some("status"))
        .unwrap_or_else(|| panic!("a status entry: {m:?}"));
    assert_eq!(status_entry.0, "deployer");
    assert_eq!(
        status_entry.3,
        json!({"f:status": {"f:observedGeneration": {}}})
    );
    let main = m
        .iter()
        .find(|e| e.0 == "deployer" && e.2.is_none())
        .unwrap();
    assert!(main.3.get("f:status").is_none());
    assert_eq!(
        main.3["f:spec"]["f:functions"],
        json!({}),
        "an atomic list is one field"
    );
}

#[tokio::test]
async fn strategic_merge_patch_for_built_ins_and_415_for_custom_resources() {
    let server = TestApiServer::start().await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let mut c = cm("smp", &[("a", "1"), ("b", "2")]);
    c.metadata.finalizers = Some(vec!["x".to_owned()]);
    api.create(&PostParams::default(), &c).await.unwrap();
    let patched = api
        .patch(
            "smp",
            &PatchParams::default(),
            &Patch::Strategic(json!({
                "metadata": {"finalizers": ["y"], "labels": {"l": "1"}},
                "data": {"a": null, "c": "3"}
            })),
        )
        .await
        .unwrap();
    assert_eq!(
        patched.metadata.finalizers,
        Some(vec!["x".to_owned(), "y".to_owned()]),
        "finalizers merge"
    );
    let data = patched.data.unwrap();
    assert_eq!(
        data.keys().collect::<Vec<_>>(),
        vec!["b", "c"],
        "maps merge, null deletes"
    );
    let replaced = api
        .patch(
            "smp",
            &PatchParams::default(),
            &Patch::Strategic(json!({
                "metadata": {"$deleteFromPrimitiveList/finalizers": ["x", "y"]},
                "data": {"$patch": "replace", "only": "this"}
            })),
        )
        .await
        .unwrap();
    assert!(replaced.metadata.finalizers.unwrap_or_default().is_empty());
    assert_eq!(
        replaced.data.unwrap().keys().collect::<Vec<_>>(),
        vec!["only"]
    );

    install_crds(&server).await;
    let ls = lambda_stage_api(&server, "default");
    ls.create(&PostParams::default(), &lambda_stage("s", &valid_spec()))
        .await
        .unwrap();
    let (code, reason, _) = api_error(
        ls.patch(
            "s",
            &PatchParams::default(),
            &Patch::Strategic(json!({"metadata": {"labels": {"a": "b"}}})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!((code, reason.as_str()), (415, "UnsupportedMediaType"));
}

#[tokio::test]
async fn crds_register_kinds_and_custom_objects_are_validated() {
    let server = TestApiServer::start().await.unwrap();
    let crds = install_crds(&server).await;
    assert_eq!(crds.len(), 3);
    for crd in &crds {
        let established = crd
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| {
                c.iter()
                    .any(|c| c.type_ == "Established" && c.status == "True")
            });
        assert!(established, "{:?} is established", crd.metadata.name);
    }
    let api = lambda_stage_api(&server, "default");

    // Defaults applied, unknown fields pruned.
    let mut obj = lambda_stage("ok", &valid_spec());
    obj.data["spec"]["notAField"] = json!(true);
    let created = api.create(&PostParams::default(), &obj).await.unwrap();
    assert!(
        created.data["spec"].get("notAField").is_none(),
        "unknown field pruned"
    );
    assert_eq!(
        created.data["spec"]["management"], "Full",
        "default applied: {}",
        created.data["spec"]
    );

    // The CEL rule and its message, as the real server reports it.
    let mut spec = valid_spec();
    spec["code"] = json!({"s3": {"bucket": "artifacts-bucket", "key": "a.zip"}, "image": format!("repo/app@sha256:{}", "a".repeat(64))});
    let (code, reason, message) = api_error(
        api.create(&PostParams::default(), &lambda_stage("bad", &spec))
            .await
            .unwrap_err(),
    );
    assert_eq!((code, reason.as_str()), (422, "Invalid"));
    assert_eq!(
        message,
        "LambdaStage.stagehand.dev \"bad\" is invalid: spec.code: Invalid value: \"object\": set exactly one of code.s3 and code.image"
    );

    // Schema: pattern and required.
    let (code, _, message) = api_error(
        api.create(
            &PostParams::default(),
            &lambda_stage("bad2", &json!({"region": "Mars", "functions": []})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(code, 422);
    assert!(
        message.contains("spec.region: Invalid value: \"Mars\": spec.region in body should match"),
        "{message}"
    );
    let (code, _, message) = api_error(
        api.create(
            &PostParams::default(),
            &lambda_stage("bad3", &json!({"functions": []})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(code, 422);
    assert!(message.contains("spec.region: Required value"), "{message}");

    // Transition rule: region is immutable.
    let (code, _, message) = api_error(
        api.patch(
            "ok",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"region": "us-east-1"}})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(code, 422);
    assert!(
        message.contains("spec.region: Invalid value: \"string\": region is immutable"),
        "{message}"
    );

    // Discovery lists the kinds with short names and categories.
    let discovery = kube::Discovery::new(server.client()).run().await.unwrap();
    let (ar, caps) = discovery
        .groups()
        .flat_map(kube::discovery::ApiGroup::recommended_resources)
        .find(|(ar, _)| ar.kind == "LambdaStage")
        .expect("LambdaStage is discoverable");
    assert_eq!(ar.plural, "lambdastages");
    assert_eq!(caps.scope, kube::discovery::Scope::Namespaced);
    assert!(
        caps.subresources
            .iter()
            .any(|(s, _)| s.plural == "lambdastages/status" || s.plural == "status"),
        "{caps:?}"
    );
}

#[tokio::test]
async fn every_example_manifest_is_accepted() {
    let server = TestApiServer::start().await.unwrap();
    install_crds(&server).await;
    let client = server.client();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut created = 0;
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .expect("examples/ exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    paths.sort();
    for path in paths {
        let text = std::fs::read_to_string(&path).unwrap();
        for doc in text
            .split("\n---")
            .filter(|d| d.lines().any(|l| l.starts_with("kind:")))
        {
            let obj: DynamicObject = serde_saphyr::from_str(doc).unwrap();
            let types = obj.types.clone().expect("examples carry apiVersion/kind");
            let (group, version) = types
                .api_version
                .split_once('/')
                .unwrap_or(("", &types.api_version));
            let ar = ApiResource::from_gvk(&kube::api::GroupVersionKind::gvk(
                group,
                version,
                &types.kind,
            ));
            let ns = obj
                .metadata
                .namespace
                .clone()
                .unwrap_or_else(|| "default".to_owned());
            let namespaces: Api<Namespace> = Api::all(client.clone());
            if namespaces.get_opt(&ns).await.unwrap().is_none() {
                namespaces
                    .create(
                        &PostParams::default(),
                        &serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap(),
                    )
                    .await
                    .unwrap();
            }
            let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, &ar);
            api.create(&PostParams::default(), &obj)
                .await
                .unwrap_or_else(|e| panic!("{} is accepted: {e}", path.display()));
            created += 1;
        }
    }
    assert!(
        created >= 3,
        "the examples hold at least one object per kind ({created})"
    );
}

#[tokio::test]
async fn event_recorder_posts_then_patches_a_series() {
    use k8s_openapi::api::events::v1::Event as K8sEvent;
    use kube::Resource;
    use kube::runtime::events::{Event, EventType, Recorder, Reporter};

    let server = TestApiServer::start().await.unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let obj = cms
        .create(&PostParams::default(), &cm("evented", &[]))
        .await
        .unwrap();
    let recorder = Recorder::new(server.client(), Reporter::from("stagehand-tests"));
    let event = Event {
        type_: EventType::Normal,
        reason: "Deployed".to_owned(),
        note: Some("code updated".to_owned()),
        action: "UpdateFunctionCode".to_owned(),
        secondary: None,
    };
    let reference = obj.object_ref(&());
    recorder.publish(&event, &reference).await.unwrap();
    recorder.publish(&event, &reference).await.unwrap();
    let events: Api<K8sEvent> = Api::namespaced(server.client(), "default");
    let listed = events.list(&ListParams::default()).await.unwrap();
    assert_eq!(listed.items.len(), 1, "one event, repeated as a series");
    let ev = &listed.items[0];
    assert_eq!(ev.reason.as_deref(), Some("Deployed"));
    assert_eq!(ev.series.as_ref().map(|s| s.count), Some(2));
    assert_eq!(
        ev.regarding.as_ref().and_then(|r| r.name.as_deref()),
        Some("evented")
    );
}
