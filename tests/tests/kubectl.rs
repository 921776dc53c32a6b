//! The stand-in driven by the real `kubectl` (`/usr/bin/kubectl`, a dispatcher that picks the
//! bundled binary matching the server's `/version`). A missing kubectl fails these tests.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::{AtomicUsize, Ordering};

use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use serde_json::json;
use stagehand_testenv::TestApiServer;

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
