"""Offline checks of Hookline's deployment files, run by `cargo xtask check-ops`.

Usage: check_ops.py ROOT RENDERED_DIR COMPOSE_SCHEMA PROMTOOL

RENDERED_DIR holds the kustomize output of each overlay (<name>.yaml). Checks:
- every Kubernetes object validates (strict) against the Kubernetes OpenAPI schemas bundled by
  the kubernetes-validate package; operator resources (CRDs) are listed and skipped;
- docker-compose.yml validates against the Compose specification schema and agrees with the
  Kubernetes config (same variables, ports and probe paths);
- every PromQL expression in the dashboards parses (promtool) and every metric it names is one
  Hookline's code registers.
"""

import json
import pathlib
import re
import subprocess
import sys
import tempfile

import jsonschema
import kubernetes_validate
import yaml

KUBERNETES_VERSION = "1.33.0"
# Kinds whose schemas come with their operators, not with Kubernetes.
OPERATOR_KINDS = {
    "ServiceMonitor": "prometheus-operator",
    "ScaledObject": "KEDA",
    "Kafka": "Strimzi",
    "KafkaNodePool": "Strimzi",
    "KafkaTopic": "Strimzi",
    "ScyllaCluster": "Scylla operator",
}
SERVICES = {"ingest": 8080, "fanout": 8081, "sender": 8082, "ledger": 8083}
# Metrics every process exposes without Hookline code naming them.
STANDARD_METRICS = {
    "up",
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
    "process_virtual_memory_bytes",
    "process_open_fds",
    "process_max_fds",
    "process_threads",
    "process_start_time_seconds",
}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")

failures = []


def fail(message):
    failures.append(message)
    print(f"FAIL {message}")


def check_manifests(rendered):
    skipped = {}
    for path in sorted(rendered.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc:
                continue
            kind, name = doc["kind"], doc["metadata"]["name"]
            if kind in OPERATOR_KINDS:
                skipped[kind] = OPERATOR_KINDS[kind]
                continue
            try:
                kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
            except kubernetes_validate.ValidationError as err:
                fail(f"{path.name}: {kind}/{name}: {err.message}")
            except kubernetes_validate.SchemaNotFoundError:
                fail(f"{path.name}: {kind}/{name}: no Kubernetes schema and not a known operator kind")
        print(f"ok   {path.name}: Kubernetes {KUBERNETES_VERSION} schemas (strict)")
    for kind, operator in sorted(skipped.items()):
        print(f"skip {kind}: its schema ships with the {operator} CRDs, not with Kubernetes")


def check_compose(root, rendered, schema_path):
    compose = yaml.safe_load((root / "docker-compose.yml").read_text())
    schema = json.loads(pathlib.Path(schema_path).read_text())
    errors = list(jsonschema.Draft7Validator(schema).iter_errors(compose))
    for err in errors:
        fail(f"docker-compose.yml {err.json_path}: {err.message}")
    if not errors:
        print("ok   docker-compose.yml: Compose specification schema")

    base = list(yaml.safe_load_all((rendered / "base.yaml").read_text()))
    config = next(d for d in base if d["kind"] == "ConfigMap")
    for service, port in SERVICES.items():
        deployment = next(
            d for d in base if d["kind"] == "Deployment" and d["metadata"]["name"] == f"hookline-{service}"
        )
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        k8s_env = set(config["data"]) | {e["name"] for e in container.get("env", [])}
        compose_service = compose["services"][service]
        compose_env = set(compose_service["environment"])
        if k8s_env != compose_env:
            fail(
                f"{service}: variables differ; only in Kubernetes: {sorted(k8s_env - compose_env)}, "
                f"only in compose: {sorted(compose_env - k8s_env)}"
            )
        if [p["containerPort"] for p in container["ports"]] != [port]:
            fail(f"{service}: Kubernetes container port is not {port}")
        if compose_service["ports"] != [f"{port}:{port}"]:
            fail(f"{service}: compose port is not {port}")
        if compose_service["environment"]["HOOKLINE_LISTEN"] != f"0.0.0.0:{port}":
            fail(f"{service}: compose HOOKLINE_LISTEN is not on {port}")
        readiness = container["readinessProbe"]["httpGet"]["path"]
        if f"http://localhost:{port}{readiness}" not in compose_service["healthcheck"]["test"]:
            fail(f"{service}: compose healthcheck does not probe {readiness} on {port}")
    declared = declared_variables(root)
    for variable in sorted(set(config["data"]) - declared - {"RUST_LOG", "HOOKLINE_LOG_FORMAT"}):
        fail(f"hookline-config sets {variable}, which no service reads")
    print("ok   docker-compose.yml agrees with deploy/k8s (variables, ports, probes)")


def declared_variables(root):
    """Every `HOOKLINE_*` variable a service's flags read."""
    names = set()
    for source in list(root.glob("services/*/src/**/*.rs")) + list(root.glob("crates/*/src/**/*.rs")):
        names |= set(re.findall(r'env = "(HOOKLINE_[A-Z0-9_]+)"', source.read_text()))
    return names


def registered_metrics(root):
    names = set(STANDARD_METRICS)
    for source in list(root.glob("services/*/src/**/*.rs")) + list(root.glob("crates/*/src/**/*.rs")):
        names |= set(re.findall(r'"(hookline_[a-z0-9_]+)"', source.read_text()))
    return names


def metric_names(expr):
    """Metric names an expression selects: identifiers that are not functions, keywords, label
    names of a grouping clause, or inside a selector, range or string."""
    text = re.sub(r'"[^"]*"', "", expr)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    names = set()
    for match in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", text):
        if text[match.end() :].lstrip().startswith("("):
            continue
        if match.group() in {"and", "or", "unless", "bool", "offset"}:
            continue
        names.add(match.group())
    return names


def dashboard_expressions(root):
    for path in sorted((root / "deploy/grafana/dashboards").glob("*.json")):
        dashboard = json.loads(path.read_text())
        for panel in dashboard["panels"]:
            for target in panel.get("targets", []):
                yield f"{path.name}: {panel['title']}", target["expr"]


def grafana_to_promql(expr):
    """Grafana's variables, replaced by what Prometheus accepts."""
    return expr.replace("$__rate_interval", "1m").replace("$job", "hookline-sender")


def check_promql(root, promtool):
    known = registered_metrics(root)
    expressions = list(dashboard_expressions(root))
    rules = yaml.safe_load((root / "deploy/prometheus/alerts.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            expressions.append((f"alerts.yml: {rule['alert']}", rule["expr"]))
    for where, expr in expressions:
        for name in metric_names(grafana_to_promql(expr)):
            base = name
            for suffix in HISTOGRAM_SUFFIXES:
                if name.endswith(suffix) and name[: -len(suffix)] in known:
                    base = name[: -len(suffix)]
            if base not in known:
                fail(f"{where}: metric {name} is not registered by any service")
    # promtool parses every dashboard expression as a recording rule.
    recording = {
        "groups": [
            {
                "name": "dashboards",
                "rules": [
                    {"record": f"dashboard:expr{i}", "expr": grafana_to_promql(expr)}
                    for i, (_, expr) in enumerate(dashboard_expressions(root))
                ],
            }
        ]
    }
    with tempfile.NamedTemporaryFile("w", suffix=".yml") as file:
        yaml.safe_dump(recording, file)
        file.flush()
        parsed = subprocess.run([promtool, "check", "rules", file.name], capture_output=True, text=True)
    if parsed.returncode != 0:
        fail(f"dashboard expressions do not parse:\n{parsed.stdout}{parsed.stderr}")
    else:
        print(f"ok   {len(expressions)} PromQL expressions parse and name registered metrics")


def main():
    root, rendered, schema_path, promtool = sys.argv[1:5]
    root, rendered = pathlib.Path(root), pathlib.Path(rendered)
    check_manifests(rendered)
    check_compose(root, rendered, schema_path)
    check_promql(root, promtool)
    if failures:
        print(f"{len(failures)} problems")
        sys.exit(1)


if __name__ == "__main__":
    main()
