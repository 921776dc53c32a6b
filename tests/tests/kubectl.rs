//! The stand-in driven by the real `kubectl` (`/usr/bin/kubectl`, a dispatcher that picks the
//! bundled binary matching the server's `/version`). A missing kubectl fails these tests.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::{AtomicUsize, Ordering};

use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::json;
use stagehand_testenv::TestApiServer;
use tokio::io::{AsyncBufReadExt, BufReader};

const KUBECTL: &str = "/usr/bin/kubectl";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// kubectl with its own kubeconfig and discovery cache, removed on drop.
struct Kubectl {
    dir: PathBuf,
}

impl Kubectl {
    fn new(server: &TestApiServer) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        assert!(
            Path::new(KUBECTL).exists(),
            "{KUBECTL} is missing: the kubectl conformance tests need the real kubectl (machine image package); they fail rather than skip"
        );
        let dir = std::env::temp_dir().join(format!(
            "stagehand-kubectl-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        server.write_kubeconfig(dir.join("kubeconfig")).unwrap();
        Self { dir }
    }

    /// A kubectl command (not started) with this kubeconfig and cache.
    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let kubeconfig = self.dir.join("kubeconfig");
        let cache = self.dir.join("cache");
        let mut cmd = tokio::process::Command::new(KUBECTL);
        cmd.arg("--kubeconfig")
            .arg(kubeconfig)
            .arg("--cache-dir")
            .arg(cache)
            .args(args)
            .current_dir(repo())
            .env_remove("KUBECONFIG")
            .kill_on_drop(true);
        cmd
    }

    async fn output(&self, args: &[&str]) -> Output {
        let kubeconfig = self.dir.join("kubeconfig");
        let cache = self.dir.join("cache");
        let mut full: Vec<&str> = vec![
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "--cache-dir",
            cache.to_str().unwrap(),
        ];
        full.extend_from_slice(args);
        tokio::process::Command::new(KUBECTL)
            .args(&full)
            .current_dir(repo())
            .env_remove("KUBECONFIG")
            .output()
            .await
            .unwrap_or_else(|e| panic!("cannot run {KUBECTL}: {e}"))
    }

    /// Runs kubectl, expecting success; returns stdout.
    async fn ok(&self, args: &[&str]) -> String {
        let out = self.output(args).await;
        if !out.status.success() {
            let version = self.output(&["version"]).await;
            panic!(
                "kubectl {args:?} failed ({}):\nstdout: {}\nstderr: {}\nkubectl version: {}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                String::from_utf8_lossy(&version.stdout),
                String::from_utf8_lossy(&version.stderr),
            );
        }
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs kubectl, expecting failure; returns stderr.
    async fn fails(&self, args: &[&str]) -> String {
        let out = self.output(args).await;
        assert!(
            !out.status.success(),
            "kubectl {args:?} should fail; stdout: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }
}

impl Drop for Kubectl {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Namespaces the examples use, applied from YAML (kubectl sends JSON for `apply`).
async fn apply_example_namespaces(k: &Kubectl) {
    let mut namespaces: Vec<String> = Vec::new();
    for entry in std::fs::read_dir(repo().join("examples")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        for line in std::fs::read_to_string(&path).unwrap().lines() {
            if let Some(ns) = line.strip_prefix("  namespace: ") {
                namespaces.push(ns.trim().to_owned());
            }
        }
    }
    namespaces.sort();
    namespaces.dedup();
    let mut yaml = String::new();
    for ns in &namespaces {
        yaml.push_str("---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: ");
        yaml.push_str(ns);
        yaml.push('\n');
    }
    let file = k.dir.join("namespaces.yaml");
    std::fs::write(&file, yaml).unwrap();
    k.ok(&["apply", "-f", file.to_str().unwrap()]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_applies_crds_and_examples_and_prints_columns() {
    let server = TestApiServer::start().await.unwrap();
    let k = Kubectl::new(&server);

    let out = k.ok(&["version"]).await;
    assert!(out.contains("Server Version: v1.33.0"), "{out}");

    let out = k.ok(&["apply", "-f", "crds/yaml/"]).await;
    for crd in ["lambdastages", "spotfleets", "staticsites"] {
        assert!(
            out.contains(&format!(
                "customresourcedefinition.apiextensions.k8s.io/{crd}.stagehand.dev created"
            )),
            "{out}"
        );
    }
    let out = k.ok(&["api-resources", "--api-group=stagehand.dev"]).await;
    assert!(
        out.contains("lambdastages") && out.contains("ls,lstage"),
        "{out}"
    );

    apply_example_namespaces(&k).await;
    let out = k.ok(&["apply", "-f", "examples/"]).await;
    assert_eq!(
        out.matches(" created").count(),
        out.lines().count(),
        "{out}"
    );
    assert!(out.lines().count() >= 3, "{out}");
    // Client-side apply again (3-way merge patches) and server-side apply.
    k.ok(&["apply", "-f", "examples/"]).await;
    let out = k.ok(&["apply", "--server-side", "-f", "examples/"]).await;
    assert!(out.contains("serverside-applied"), "{out}");

    let out = k.ok(&["get", "lambdastages", "-A"]).await;
    let header = out.lines().next().unwrap_or_default();
    for column in [
        "NAMESPACE",
        "NAME",
        "READY",
        "REASON",
        "FUNCTIONS",
        "CODE",
        "AGE",
    ] {
        assert!(header.contains(column), "printer column {column}: {out}");
    }
    assert!(
        !header.contains("STACK"),
        "priority-1 columns only with -o wide: {out}"
    );
    let wide = k.ok(&["get", "ls", "-A", "-o", "wide"]).await;
    assert!(
        wide.lines().next().unwrap_or_default().contains("STACK"),
        "{wide}"
    );

    let out = k.ok(&["get", "stagehand", "-A"]).await;
    for kind in [
        "lambdastage.stagehand.dev/",
        "spotfleet.stagehand.dev/",
        "staticsite.stagehand.dev/",
    ] {
        assert!(out.contains(kind), "category stagehand lists {kind}: {out}");
    }

    // A status written by a client shows in the printer columns; `wait` sees the condition.
    let listed = k
        .ok(&[
            "get",
            "ls",
            "-A",
            "-o",
            "jsonpath={.items[0].metadata.namespace}/{.items[0].metadata.name}",
        ])
        .await;
    let (ns, name) = listed.split_once('/').unwrap();
    let api: Api<DynamicObject> = Api::namespaced_with(
        server.client(),
        ns,
        &ApiResource::erase::<stagehand_crds::LambdaStage>(&()),
    );
    api.patch_status(
        name,
        &PatchParams::apply("stagehand").force(),
        &Patch::Apply(json!({
            "apiVersion": "stagehand.dev/v1alpha1", "kind": "LambdaStage",
            "status": {"functionsInSync": "2/2", "conditions": [{"type": "Ready", "status": "True", "reason": "InSync", "message": "in sync", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}
        })),
    )
    .await
    .unwrap();
    let out = k.ok(&["get", "ls", "-n", ns, name, "--no-headers"]).await;
    let cells: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(&cells[..4], &[name, "True", "InSync", "2/2"], "{out}");
    k.ok(&[
        "wait",
        "-n",
        ns,
        "--for=condition=Ready",
        &format!("lambdastage/{name}"),
        "--timeout=10s",
    ])
    .await;

    // Patch merge and json, then delete.
    k.ok(&[
        "patch",
        "-n",
        ns,
        "ls",
        name,
        "--type=merge",
        "-p",
        r#"{"metadata":{"labels":{"patched":"merge"}}}"#,
    ])
    .await;
    k.ok(&[
        "patch",
        "-n",
        ns,
        "ls",
        name,
        "--type=json",
        "-p",
        r#"[{"op":"add","path":"/metadata/labels/json","value":"yes"}]"#,
    ])
    .await;
    let labels = k
        .ok(&[
            "get",
            "ls",
            "-n",
            ns,
            name,
            "-o",
            "jsonpath={.metadata.labels.patched},{.metadata.labels.json}",
        ])
        .await;
    assert_eq!(labels, "merge,yes");
    k.ok(&["delete", "-n", ns, "ls", name]).await;
    let err = k.fails(&["get", "ls", "-n", ns, name]).await;
    assert!(
        err.contains("NotFound") && err.contains("not found"),
        "{err}"
    );
}

/// `# expect:` texts written for the JSON-schema checker of the crds crate use its wording for
/// OpenAPI errors; CEL rule messages are the same everywhere.
fn is_cel_expectation(expect: &str) -> bool {
    !(expect.starts_with('/')
        || expect.starts_with('"')
        || expect.starts_with('\'')
        || expect.contains("is a required property")
        || expect.contains("has more than"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_rejects_every_invalid_example_with_the_field_path() {
    let server = TestApiServer::start().await.unwrap();
    let k = Kubectl::new(&server);
    k.ok(&["apply", "-f", "crds/yaml/"]).await;
    apply_example_namespaces(&k).await;
    let dir = repo().join("examples/invalid");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "examples/invalid holds manifests");
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let err = k.fails(&["apply", "-f", file.to_str().unwrap()]).await;
        assert!(
            err.contains("is invalid: spec")
                || err.contains("strict decoding error: unknown field \"spec."),
            "{}: rejected with a field path: {err}",
            file.display()
        );
        let expect = text
            .lines()
            .find_map(|l| l.strip_prefix("# expect: "))
            .unwrap_or_default();
        if !expect.is_empty() && is_cel_expectation(expect) {
            assert!(
                err.contains(expect),
                "{}: {expect:?} in {err}",
                file.display()
            );
        }
    }

    // Transition rules: apply the old manifest, then the new one is refused.
    let transitions = dir.join("transitions");
    let mut olds: Vec<PathBuf> = std::fs::read_dir(&transitions)
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    olds.retain(|p| p.to_string_lossy().ends_with(".old.yaml"));
    olds.sort();
    for old in olds {
        let new = PathBuf::from(old.to_string_lossy().replace(".old.yaml", ".new.yaml"));
        k.ok(&["apply", "-f", old.to_str().unwrap()]).await;
        let err = k.fails(&["apply", "-f", new.to_str().unwrap()]).await;
        assert!(err.contains("is immutable"), "{}: {err}", new.display());
    }
}

const WAIT: std::time::Duration = std::time::Duration::from_secs(20);

fn lambda_stages(server: &TestApiServer) -> Api<DynamicObject> {
    Api::namespaced_with(
        server.client(),
        "default",
        &ApiResource::erase::<stagehand_crds::LambdaStage>(&()),
    )
}

fn stage(name: &str) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "stagehand.dev/v1alpha1", "kind": "LambdaStage",
        "metadata": {"name": name},
        "spec": {"region": "eu-west-1", "functions": [{"name": "orders-api", "code": {"s3": {"bucket": "artifacts-bucket", "key": "orders.zip"}}}]}
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_explain_shows_the_crd_field_docs() {
    let server = TestApiServer::start().await.unwrap();
    let k = Kubectl::new(&server);
    k.ok(&["apply", "-f", "crds/yaml/"]).await;
    let out = k.ok(&["explain", "lambdastage.spec"]).await;
    assert!(
        out.contains("KIND:       LambdaStage") && out.contains("region\t<string>"),
        "{out}"
    );
    let out = k.ok(&["explain", "lambdastage.spec.region"]).await;
    assert!(
        out.contains("AWS region of every resource in this stage"),
        "{out}"
    );
    let out = k.ok(&["explain", "lambdastage.metadata"]).await;
    assert!(
        out.contains("<ObjectMeta>") && out.contains("labels"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_wait_watch_describe_and_finalizers() {
    let server = TestApiServer::start().await.unwrap();
    let k = Kubectl::new(&server);
    k.ok(&["apply", "-f", "crds/yaml/"]).await;
    let api = lambda_stages(&server);
    api.create(&PostParams::default(), &stage("w"))
        .await
        .unwrap();

    // `wait` started before the status exists returns once Ready=True is written.
    let wait = k
        .command(&[
            "wait",
            "--for=condition=Ready",
            "lambdastage/w",
            "--timeout=60s",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // `get -w` streams changes: read its first line (the object as it is), then change it.
    let mut watch = k
        .command(&[
            "get",
            "lambdastage",
            "w",
            "-w",
            "-o",
            "jsonpath={.metadata.name}={.metadata.labels.step}{\"\\n\"}",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(watch.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(WAIT, lines.next_line())
        .await
        .expect("get -w prints the object")
        .unwrap();
    assert_eq!(first.as_deref(), Some("w="));
    // kubectl prints the object from a GET, then opens its watch with `resourceVersion=0` and
    // skips the watch's first event (the object it already printed). A change made before the
    // watch is established is folded into that skipped event — kubectl's own race, on a real
    // API server too. So wait for get -w's watch request (the `wait` above has its own, with a
    // resourceVersion), then change the object until a change is streamed (bounded).
    let get_watch =
        |r: &String| r.contains("metadata.name%3Dw") && r.contains("resourceVersion=0&watch=true");
    tokio::time::timeout(WAIT, async {
        while !server.requests().iter().any(get_watch) {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "kubectl get -w never opened its watch: {:?}",
            server.requests()
        )
    });
    let mut streamed = None;
    for step in 2..12 {
        api.patch(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"step": format!("s{step}")}}})),
        )
        .await
        .unwrap();
        if let Ok(line) =
            tokio::time::timeout(std::time::Duration::from_secs(2), lines.next_line()).await
        {
            streamed = line.unwrap();
            break;
        }
    }
    let streamed = streamed.unwrap_or_else(|| {
        let requests = server.requests();
        let tail = &requests[requests.len().saturating_sub(10)..];
        panic!("get -w streamed none of 10 label changes; last requests: {tail:?}")
    });
    assert!(
        streamed.starts_with("w=s"),
        "get -w printed {streamed:?} for a label change"
    );
    watch.kill().await.unwrap();

    api.patch_status(
        "w",
        &PatchParams::apply("stagehand").force(),
        &Patch::Apply(json!({
            "apiVersion": "stagehand.dev/v1alpha1", "kind": "LambdaStage",
            "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "InSync", "message": "in sync", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}
        })),
    )
    .await
    .unwrap();
    let out = tokio::time::timeout(WAIT, wait.wait_with_output())
        .await
        .expect("kubectl wait returns once Ready=True")
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("lambdastage.stagehand.dev/w condition met")
    );

    let out = k.ok(&["describe", "lambdastage", "w"]).await;
    for text in [
        "Name:         w",
        "Namespace:    default",
        "Region:",
        "eu-west-1",
        "Ready",
    ] {
        assert!(out.contains(text), "describe shows {text:?}: {out}");
    }

    // Delete with a finalizer: Terminating (deletionTimestamp) until the finalizer goes.
    k.ok(&[
        "patch",
        "lambdastage",
        "w",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":["stagehand.dev/cleanup"]}}"#,
    ])
    .await;
    k.ok(&["delete", "lambdastage", "w", "--wait=false"]).await;
    let ts = k
        .ok(&[
            "get",
            "lambdastage",
            "w",
            "-o",
            "jsonpath={.metadata.deletionTimestamp}",
        ])
        .await;
    assert!(!ts.is_empty(), "still there, with a deletionTimestamp");
    k.ok(&[
        "patch",
        "lambdastage",
        "w",
        "--type=json",
        "-p",
        r#"[{"op":"remove","path":"/metadata/finalizers"}]"#,
    ])
    .await;
    let err = k.fails(&["get", "lambdastage", "w"]).await;
    assert!(err.contains("NotFound"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_reports_server_side_apply_conflicts() {
    let server = TestApiServer::start().await.unwrap();
    let k = Kubectl::new(&server);
    k.ok(&["apply", "-f", "crds/yaml/"]).await;
    let manifest = |interval: &str| {
        format!(
            "apiVersion: stagehand.dev/v1alpha1\nkind: LambdaStage\nmetadata:\n  name: ssa\n  namespace: default\nspec:\n  region: eu-west-1\n  resyncInterval: {interval}\n  functions:\n  - name: orders-api\n    code:\n      s3: {{bucket: artifacts-bucket, key: orders.zip}}\n"
        )
    };
    let first = k.dir.join("first.yaml");
    let second = k.dir.join("second.yaml");
    std::fs::write(&first, manifest("60s")).unwrap();
    std::fs::write(&second, manifest("120s")).unwrap();
    k.ok(&["apply", "--server-side", "-f", first.to_str().unwrap()])
        .await;
    let err = k
        .fails(&[
            "apply",
            "--server-side",
            "--field-manager",
            "other",
            "-f",
            second.to_str().unwrap(),
        ])
        .await;
    assert!(
        err.contains(
            "Apply failed with 1 conflict: conflict with \"kubectl\": .spec.resyncInterval"
        ),
        "{err}"
    );
    assert!(err.contains("--force-conflicts"), "{err}");
    k.ok(&[
        "apply",
        "--server-side",
        "--field-manager",
        "other",
        "--force-conflicts",
        "-f",
        second.to_str().unwrap(),
    ])
    .await;
    let out = k
        .ok(&[
            "get",
            "lambdastage",
            "ssa",
            "-o",
            "jsonpath={.spec.resyncInterval}",
        ])
        .await;
    assert_eq!(out, "120s");
    let managers = k
        .ok(&[
            "get",
            "lambdastage",
            "ssa",
            "--show-managed-fields",
            "-o",
            "jsonpath={.metadata.managedFields[*].manager}",
        ])
        .await;
    assert_eq!(managers, "kubectl other");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_namespaces_and_built_in_kinds() {
    let server = TestApiServer::start().await.unwrap();
    let k = Kubectl::new(&server);
    // `kubectl create namespace` sends a protobuf body (kubectl's typed clients do), decoded by
    // the stand-in; `--dry-run=client -o yaml | kubectl apply -f -` gives the same object.
    let out = k.ok(&["create", "namespace", "team-a"]).await;
    assert_eq!(out.trim(), "namespace/team-a created");
    let out = k
        .ok(&[
            "get",
            "namespace",
            "team-a",
            "-o",
            "jsonpath={.status.phase}",
        ])
        .await;
    assert_eq!(out, "Active");
    let yaml = k
        .ok(&[
            "create",
            "namespace",
            "team-b",
            "--dry-run=client",
            "-o",
            "yaml",
        ])
        .await;
    let file = k.dir.join("ns.yaml");
    std::fs::write(&file, yaml).unwrap();
    k.ok(&["apply", "-f", file.to_str().unwrap()]).await;
    let out = k.ok(&["get", "namespaces", "-o", "name"]).await;
    assert!(out.contains("namespace/team-a\nnamespace/team-b"), "{out}");
    let err = k.fails(&["create", "namespace", "team-a"]).await;
    assert!(err.contains("AlreadyExists"), "{err}");
    // Client-side apply of a built-in kind sends strategic merge patches: a removed key goes.
    let cm = |data: &str| {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: team-a\ndata:\n{data}"
        )
    };
    std::fs::write(&file, cm("  a: \"1\"\n  b: \"2\"\n")).unwrap();
    k.ok(&["apply", "-f", file.to_str().unwrap()]).await;
    std::fs::write(&file, cm("  a: \"1\"\n  c: \"3\"\n")).unwrap();
    let out = k.ok(&["apply", "-f", file.to_str().unwrap()]).await;
    assert!(out.contains("configured"), "{out}");
    let data = k
        .ok(&[
            "get",
            "cm",
            "-n",
            "team-a",
            "settings",
            "-o",
            "jsonpath={.data}",
        ])
        .await;
    assert_eq!(data, r#"{"a":"1","c":"3"}"#);
    k.ok(&["label", "namespace", "team-a", "tier=test"]).await;
    let out = k.ok(&["describe", "namespace", "team-a"]).await;
    assert!(out.contains("tier=test") && out.contains("Active"), "{out}");
}

/// `kubectl create configmap|secret|serviceaccount` (protobuf bodies) store what they say.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_create_configmap_secret_and_service_account() {
    let server = TestApiServer::start().await.unwrap();
    let k = Kubectl::new(&server);
    k.ok(&["create", "namespace", "team-a"]).await;
    let out = k
        .ok(&[
            "create",
            "configmap",
            "settings",
            "-n",
            "team-a",
            "--from-literal=region=eu-west-1",
            "--from-literal=tier=test",
        ])
        .await;
    assert_eq!(out.trim(), "configmap/settings created");
    let data = k
        .ok(&[
            "get",
            "cm",
            "settings",
            "-n",
            "team-a",
            "-o",
            "jsonpath={.data}",
        ])
        .await;
    assert_eq!(data, r#"{"region":"eu-west-1","tier":"test"}"#);
    let out = k
        .ok(&[
            "create",
            "secret",
            "generic",
            "token",
            "-n",
            "team-a",
            "--from-literal=key=s3cr3t",
        ])
        .await;
    assert_eq!(out.trim(), "secret/token created");
    let secret = k
        .ok(&[
            "get",
            "secret",
            "token",
            "-n",
            "team-a",
            "-o",
            "jsonpath={.data.key}",
        ])
        .await;
    assert_eq!(secret, "czNjcjN0", "base64 of s3cr3t");
    let out = k
        .ok(&["create", "serviceaccount", "robot", "-n", "team-a"])
        .await;
    assert_eq!(out.trim(), "serviceaccount/robot created");
    // Labels set by `kubectl create` flags travel in the protobuf metadata.
    let out = k
        .ok(&[
            "create",
            "configmap",
            "labelled",
            "-n",
            "team-a",
            "--from-literal=a=1",
            "--dry-run=server",
            "-o",
            "jsonpath={.metadata.name}",
        ])
        .await;
    assert_eq!(out, "labelled");
    let err = k.fails(&["get", "cm", "labelled", "-n", "team-a"]).await;
    assert!(
        err.contains("NotFound"),
        "a server dry run stores nothing: {err}"
    );
}

/// Events written through `events.k8s.io/v1` (kube-runtime's recorder, what Stagehand uses) are
/// listed by `kubectl get events` (core `v1`) and shown by `kubectl describe`, as a real API
/// server serves one storage through both APIs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_get_events_lists_events_k8s_io_events() {
    use kube::Resource;
    use kube::runtime::events::{Event, EventType, Recorder, Reporter};

    let server = TestApiServer::start().await.unwrap();
    let k = Kubectl::new(&server);
    k.ok(&["create", "namespace", "team-a"]).await;
    k.ok(&[
        "create",
        "configmap",
        "settings",
        "-n",
        "team-a",
        "--from-literal=a=1",
    ])
    .await;
    let cm: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::namespaced(server.client(), "team-a");
    let reference = cm.get("settings").await.unwrap().object_ref(&());
    let recorder = Recorder::new(server.client(), Reporter::from("stagehand"));
    let event = |reason: &str, note: &str| Event {
        type_: EventType::Warning,
        reason: reason.to_owned(),
        note: Some(note.to_owned()),
        action: "Reconcile".to_owned(),
        secondary: None,
    };
    recorder
        .publish(
            &event("AccessDenied", "lambda:UpdateFunctionCode denied"),
            &reference,
        )
        .await
        .unwrap();
    // A repeat becomes a series (a PATCH of the events.k8s.io object) and stays one Event.
    recorder
        .publish(
            &event("AccessDenied", "lambda:UpdateFunctionCode denied"),
            &reference,
        )
        .await
        .unwrap();

    let out = k.ok(&["get", "events", "-n", "team-a"]).await;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "a header and one event: {out}");
    for column in ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"] {
        assert!(lines[0].contains(column), "{out}");
    }
    for cell in [
        "Warning",
        "AccessDenied",
        "settings",
        "lambda:UpdateFunctionCode denied",
    ] {
        assert!(lines[1].contains(cell), "{cell}: {out}");
    }
    assert!(
        !lines[1].contains("<unknown>"),
        "LAST SEEN from the series: {out}"
    );
    let core: serde_json::Value =
        serde_json::from_str(&k.ok(&["get", "events", "-n", "team-a", "-o", "json"]).await)
            .unwrap();
    let item = &core["items"][0];
    assert_eq!(item["apiVersion"], "v1");
    assert_eq!(item["involvedObject"]["name"], "settings");
    assert_eq!(item["message"], "lambda:UpdateFunctionCode denied");
    assert_eq!(item["reportingComponent"], "stagehand");
    assert_eq!(item["series"]["count"], 2);
    // The same object through events.k8s.io/v1, under its own field names.
    let new = k
        .ok(&[
            "get",
            "events.events.k8s.io",
            "-n",
            "team-a",
            "-o",
            "jsonpath={.items[0].regarding.name} {.items[0].note}",
        ])
        .await;
    assert_eq!(new, "settings lambda:UpdateFunctionCode denied");
    // `describe` finds an object's events with a core field selector on involvedObject.
    let out = k
        .ok(&["describe", "configmap", "settings", "-n", "team-a"])
        .await;
    let events = out.split("Events:").nth(1).unwrap_or_default();
    assert!(
        events.contains("AccessDenied") && events.contains("lambda:UpdateFunctionCode denied"),
        "{out}"
    );
    let out = k
        .ok(&[
            "get",
            "events",
            "-n",
            "team-a",
            "--field-selector",
            "involvedObject.name=other",
        ])
        .await;
    assert!(out.is_empty() || !out.contains("AccessDenied"), "{out}");
}
