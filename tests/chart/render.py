"""Renders charts/stagehand with the Helm v4 Go library (helm-python-sdk) and validates every
manifest against the Kubernetes OpenAPI schemas (kubernetes-validate, strict: unknown fields
fail). Driven by tests/tests/operations/chart.rs; installed by scripts/ensure-helm.

usage: render.py CHART CASES_JSON OUT_DIR
CASES_JSON: {"case name": {values...}, ...}. Writes OUT_DIR/<case>.yaml (every manifest, the
chart's CRDs first, ready for `kubectl apply -f`) and prints one JSON object on stdout:
  {"lint": [...errors], "cases": {name: {"error": str|null, "objects": [...],
   "validation": [{"kind", "name", "result": "valid"|"no schema"|<error>}]}}}
"""

import json
import sys
from pathlib import Path

import helm_python
import kubernetes_validate
import yaml

# The Kubernetes version the manifests are validated for: the chart's lowest (Chart.yaml
# kubeVersion >= 1.30).
KUBERNETES_VERSION = "1.30.0"


def validate(obj):
    try:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        return "valid"
    except kubernetes_validate.SchemaNotFoundError:
        return "no schema"
    except kubernetes_validate.ValidationError as error:
        return f"invalid: {error.message} at {list(error.path)}"


def render(chart_dir, values):
    chart = helm_python.Chart.load(chart_dir)
    try:
        # Checks the values against values.schema.json first, as `helm install` does.
        rendered = chart.render(values, name="stagehand", namespace="stagehand", is_install=True)
    except helm_python.HelmError as error:
        return {"error": str(error), "objects": [], "validation": []}
    docs = []
    for path in sorted(Path(chart_dir, "crds").glob("*.yaml")):
        docs.extend(yaml.safe_load_all(path.read_text()))
    for path in sorted(rendered):
        docs.extend(yaml.safe_load_all(rendered[path]))
    objects = [doc for doc in docs if doc]
    return {
        "error": None,
        "objects": objects,
        "validation": [
            {"kind": o["kind"], "name": o["metadata"]["name"], "result": validate(o)}
            for o in objects
        ],
    }


def main():
    chart_dir, cases_json, out_dir = sys.argv[1:4]
    cases = json.loads(cases_json)
    lint = helm_python.lint(chart_dir)
    # The validator itself must refuse a broken object, or "valid" below would mean nothing.
    broken = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"},
              "spec": {"ports": [{"port": "metrics"}], "selectr": {}}}
    result = {"lint": lint.get("errors", []), "validator_refuses_broken": validate(broken) != "valid",
              "cases": {}}
    for name, values in cases.items():
        case = render(chart_dir, values)
        result["cases"][name] = case
        Path(out_dir, f"{name}.yaml").write_text(yaml.safe_dump_all(case["objects"]))
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
