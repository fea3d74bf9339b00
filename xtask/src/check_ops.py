"""Checks of Hookline's deployment files, run by `cargo xtask check-ops [--live]`.

Usage: check_ops.py offline ROOT RENDERED_DIR COMPOSE_SCHEMA PROMTOOL
       check_ops.py live ROOT   (with the OPS_* variables set by check_ops_live.rs)

Offline:
RENDERED_DIR holds the kustomize output of each overlay (<name>.yaml). Checks:
- every Kubernetes object validates (strict) against the Kubernetes OpenAPI schemas bundled by
  the kubernetes-validate package; operator resources (CRDs) are listed and skipped;
- docker-compose.yml validates against the Compose specification schema and agrees with the
  Kubernetes config (same variables, ports and probe paths);
- every PromQL expression in the dashboards parses (promtool) and every metric it names is one
  Hookline's code registers;
- the PrometheusRule of deploy/k8s/base is deploy/prometheus/alerts.yml wrapped (with
  HOOKLINE_BLESS=1 it is rewritten from it), and its rules as kustomize renders them pass promtool.

Live, against a real Prometheus scraping the running services: sends events to a healthy and to
a refusing webhook, then checks every alert rule evaluates without error, every metric the rules
and dashboards name is scraped, and every dashboard expression returns data.
"""

import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

import jsonschema
import kubernetes_validate
import yaml

KUBERNETES_VERSION = "1.33.0"
# Kinds whose schemas come with their operators, not with Kubernetes.
OPERATOR_KINDS = {
    "ServiceMonitor": "prometheus-operator",
    "PrometheusRule": "prometheus-operator",
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
ALERTS = "deploy/prometheus/alerts.yml"
PROMETHEUS_RULE = "deploy/k8s/base/prometheusrule.yaml"
PROMETHEUS_RULE_HEAD = f"""# Generated from {ALERTS} by `HOOKLINE_BLESS=1 cargo xtask check-ops`: edit that
# file, not this one. prometheus-operator loads these rules into the Prometheus whose
# ruleSelector matches the labels below (add yours, e.g. `release`, in your overlay).
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: hookline
  labels: {{app.kubernetes.io/part-of: hookline}}
spec:
"""

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


def prometheus_rule_text(root):
    """The PrometheusRule: the alert rules file from its `groups:` on, indented under `spec`."""
    lines = (root / ALERTS).read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("groups:"))
    body = "".join(f"  {line}\n" if line.strip() else "\n" for line in lines[start:])
    return PROMETHEUS_RULE_HEAD + body


def check_prometheus_rule(root, rendered, promtool):
    expected, path = prometheus_rule_text(root), root / PROMETHEUS_RULE
    if os.environ.get("HOOKLINE_BLESS") == "1":
        path.write_text(expected)
        print(f"ok   {PROMETHEUS_RULE} rewritten from {ALERTS}")
    elif path.read_text() != expected:
        fail(f"{PROMETHEUS_RULE} differs from {ALERTS}; regenerate: HOOKLINE_BLESS=1 cargo xtask check-ops")
        return
    for overlay in sorted(rendered.glob("*.yaml")):
        rules = [d for d in yaml.safe_load_all(overlay.read_text()) if d and d["kind"] == "PrometheusRule"]
        if [rule["metadata"]["name"] for rule in rules] != ["hookline"]:
            fail(f"{overlay.name}: expected one PrometheusRule named hookline")
            continue
        with tempfile.NamedTemporaryFile("w", suffix=".yml") as file:
            yaml.safe_dump(rules[0]["spec"], file)
            file.flush()
            checked = subprocess.run([promtool, "check", "rules", file.name], capture_output=True, text=True)
        if checked.returncode != 0:
            fail(f"{overlay.name}: PrometheusRule does not pass promtool:\n{checked.stdout}{checked.stderr}")
    print(f"ok   {PROMETHEUS_RULE} is {ALERTS}, and passes promtool in every overlay")


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
    rules = yaml.safe_load((root / ALERTS).read_text())
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


def request(method, url, token=None, body=None):
    """The status and decoded JSON body (or None) of one HTTP request."""
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as err:
        status, raw = err.code, err.read()
    return status, (json.loads(raw) if raw.strip() else None)


def api(method, url, token, body, expected=2):
    status, answer = request(method, url, token, body)
    if status // 100 != expected:
        raise SystemExit(f"{method} {url} answered {status}: {answer}")
    return answer


def query(prometheus, promql):
    url = f"{prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    status, answer = request("GET", url)
    if status != 200 or answer["status"] != "success":
        return None, f"{status}: {answer}"
    return answer["data"]["result"], None


def send_traffic(env):
    ingest, admin = env["OPS_INGEST"], env["OPS_ADMIN_TOKEN"]
    tenant = api("POST", f"{ingest}/v1/tenants", admin, {"name": "ops-check"})
    scopes = ["events:publish", "webhooks:manage", "deliveries:read"]
    key = api("POST", f"{ingest}/v1/tenants/{tenant['id']}/keys", admin, {"name": "ops", "scopes": scopes})["key"]
    api("POST", f"{ingest}/v1/webhooks", key,
        {"url": env["OPS_RECEIVER"], "events": ["*"], "secret": env["OPS_RECEIVER_SECRET"]})
    api("POST", f"{ingest}/v1/webhooks", key, {"url": env["OPS_REFUSING"], "events": ["*"]})
    # A refused event and an unknown delivery: the rejection and ledger-route series exist.
    api("POST", f"{ingest}/v1/events", key, {"data": {}}, expected=4)
    api("GET", f"{env['OPS_LEDGER']}/v1/deliveries/unknown", key, None, expected=4)
    return key


def wait_for(prometheus, promql, deadline):
    while time.monotonic() < deadline:
        result, _ = query(prometheus, promql)
        if result:
            return True
        time.sleep(1)
    return False


def live(root):
    env = os.environ
    prometheus = env["OPS_PROMETHEUS"]
    key = send_traffic(env)
    # Events keep flowing while the checks run.
    deadline = time.monotonic() + 120
    sent = 0
    conditions = [
        "sum(hookline_ledger_attempts_written_total) > 0",
        "sum(hookline_sender_dead_letters_total) > 0",
        'sum(hookline_sender_attempts_total{outcome="succeeded"}) > 0',
        "count(hookline_kafka_consumer_lag_records) >= 5",
        "sum(hookline_sender_retry_due_lag_seconds_count) > 0",
        # The refusing endpoint's circuit opens, its webhook turns failing, and ingest sees it.
        'max(hookline_webhooks{state="failing"}) > 0',
        'count(up{job=~"hookline-.*"} == 1) == 4',
    ]
    pending = list(conditions)
    while pending and time.monotonic() < deadline:
        events = [{"type": "invoice.paid", "data": {"n": sent + i}} for i in range(10)]
        api("POST", f"{env['OPS_INGEST']}/v1/events/batch", key, {"events": events})
        sent += len(events)
        pending = [c for c in pending if not query(prometheus, c)[0]]
        time.sleep(0.5)
    for condition in pending:
        fail(f"live: not true within 120 s: {condition}")
    print(f"ok   live: {sent} events sent; every stage scraped with data")
    # Two more scrapes of rates with two samples each.
    time.sleep(5)

    _, rules = request("GET", f"{prometheus}/api/v1/rules")
    alerting = [r for g in rules["data"]["groups"] for r in g["rules"] if r["type"] == "alerting"]
    expected = yaml.safe_load((root / ALERTS).read_text())
    expected_names = {r["alert"] for g in expected["groups"] for r in g["rules"]}
    if {r["name"] for r in alerting} != expected_names:
        fail(f"live: Prometheus loaded {sorted(r['name'] for r in alerting)}, expected {sorted(expected_names)}")
    for rule in alerting:
        if rule.get("health") != "ok":
            fail(f"live: alert {rule['name']} does not evaluate: {rule.get('lastError')}")
        result, error = query(prometheus, rule["query"])
        if error:
            fail(f"live: alert {rule['name']}: {error}")
    print(f"ok   live: {len(alerting)} alert rules loaded and evaluating")

    names = set()
    for _, expr in dashboard_expressions(root):
        names |= metric_names(grafana_to_promql(expr))
    for group in expected["groups"]:
        for rule in group["rules"]:
            names |= metric_names(rule["expr"])
    for name in sorted(names):
        result, error = query(prometheus, f"count({name})")
        if not result:
            fail(f"live: no series of {name} scraped {error or ''}")
    print(f"ok   live: all {len(names)} metrics named by dashboards and rules are scraped")

    status, answer = request("GET", f"{prometheus}/api/v1/label/job/values?" + urllib.parse.urlencode({"match[]": "hookline_build_info"}))
    jobs = answer["data"] if status == 200 else []
    if sorted(jobs) != ["hookline-fanout", "hookline-ingest", "hookline-ledger", "hookline-sender"]:
        fail(f"live: the service dashboard's job variable lists {jobs}")
    lags, _ = query(prometheus, 'max by (group, topic) (hookline_kafka_consumer_lag_records{group!~".*-retry"})')
    for lag in lags or []:
        print(f"     lag {lag['metric']['group']} on {lag['metric']['topic']}: {lag['value'][1]} records")
    failed_before, checked = len(failures), 0
    for where, expr in dashboard_expressions(root):
        variants = [expr.replace("$job", job) for job in jobs] if "$job" in expr else [expr]
        answers = [query(prometheus, v.replace("$__rate_interval", "30s")) for v in variants]
        errors = [error for _, error in answers if error]
        if errors:
            fail(f"live: {where}: {errors[0]}")
        elif not any(result for result, _ in answers):
            fail(f"live: {where}: no data for {expr}")
        checked += 1
    if len(failures) == failed_before:
        print(f"ok   live: all {checked} dashboard expressions return data")


def main():
    mode, root = sys.argv[1], pathlib.Path(sys.argv[2])
    if mode == "live":
        live(root)
    else:
        rendered, schema_path, promtool = pathlib.Path(sys.argv[3]), sys.argv[4], sys.argv[5]
        check_manifests(rendered)
        check_compose(root, rendered, schema_path)
        check_promql(root, promtool)
        check_prometheus_rule(root, rendered, promtool)
    if failures:
        print(f"{len(failures)} problems")
        sys.exit(1)


if __name__ == "__main__":
    main()
