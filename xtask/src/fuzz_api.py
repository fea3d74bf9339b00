"""Fuzzes a running Hookline against its own OpenAPI document with Schemathesis.

Run by `cargo xtask fuzz-api`, which starts Hookline and passes FUZZ_BASE_URL,
FUZZ_ADMIN_TOKEN, FUZZ_REFUSING_URL (a loopback URL nothing listens on) and FUZZ_SECONDS.
Seeds what the path parameters need (tenants, keys, webhooks, a delivery, a recovery job) so
requests reach the handlers rather than stopping at `not_found`, writes schemathesis.toml into
the work directory given as the only argument, and runs Schemathesis there.
"""

import http.server
import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

BASE = os.environ["FUZZ_BASE_URL"]
ADMIN = os.environ["FUZZ_ADMIN_TOKEN"]
REFUSING = os.environ["FUZZ_REFUSING_URL"]
SECONDS = os.environ["FUZZ_SECONDS"]

# Responses that fit the schema but that a request cannot be expected to get (an opaque
# cursor, a URL that must reach the public internet) are not failures: every other check runs.
CHECKS = ["--checks", "all", "--exclude-checks", "positive_data_acceptance"]


def call(method, path, token, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(BASE + path, data=data, method=method)
    request.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)
    except urllib.error.HTTPError as error:
        sys.exit(f"seeding: {method} {path} answered {error.code}: {error.read().decode()}")


def tenant_with_key(name):
    tenant = call("POST", "/v1/tenants", ADMIN, {"name": name})
    key = call("POST", f"/v1/tenants/{tenant['id']}/keys", ADMIN, {"name": name})
    return tenant["id"], key


class Answering(http.server.BaseHTTPRequestHandler):
    """An endpoint that takes every request, for `POST /v1/webhooks/{id}/test`."""

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def answering_url():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Answering)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_port}/"


def webhook(key, url=REFUSING):
    body = {
        "url": url,
        "events": ["*"],
        "retry": {"max_attempts": 2, "initial_delay_secs": 1},
    }
    return call("POST", "/v1/webhooks", key, body)["id"]


def seed():
    _, key = tenant_with_key("fuzz")
    # Operator routes act on a tenant of their own: disabling it must not lock the fuzzer out.
    victim_id, victim_key = tenant_with_key("fuzz-operator-target")
    webhook_id = webhook(key["key"])
    doomed_id = webhook(key["key"])
    # A test request to a refusing endpoint is always `url_unreachable`, valid or not.
    answering_id = webhook(key["key"], answering_url())
    event_id = call("POST", "/v1/events", key["key"], {"type": "fuzz.seeded", "data": {}})["id"]
    deadline = time.monotonic() + 90
    while True:
        page = call("GET", f"/v1/deliveries?webhook_id={webhook_id}", key["key"])
        if page["data"]:
            delivery_id = page["data"][0]["id"]
            break
        if time.monotonic() > deadline:
            sys.exit("seeding: the seeded event's delivery never reached the ledger")
        time.sleep(1)
    job = call(
        "POST",
        f"/v1/webhooks/{webhook_id}/recover",
        key["key"],
        {"since": "2000-01-01T00:00:00Z"},
    )
    return {
        "api_key": key["key"],
        "parameters": {
            "tenant_id": victim_id,
            "key_id": victim_key["id"],
            "webhook_id": webhook_id,
            "event_id": event_id,
            "delivery_id": delivery_id,
            "job_id": job["id"],
        },
        "doomed_webhook_id": doomed_id,
        "answering_webhook_id": answering_id,
    }


def toml_string(value):
    return json.dumps(value)


def write_config(work, seeded):
    lines = [
        "[auth.openapi.api_key]",
        f"bearer = {toml_string(seeded['api_key'])}",
        "",
        "[auth.openapi.admin_token]",
        f"bearer = {toml_string(ADMIN)}",
        "",
        "[parameters]",
    ]
    lines += [f"{name} = {toml_string(value)}" for name, value in seeded["parameters"].items()]
    # Deleting the webhook every other operation uses would leave them only `not_found`. The
    # pinned id also replaces the one a stateful sequence carries from `POST /v1/webhooks`, so
    # its DELETE answers 404 for the webhook just created: not a read-your-writes failure.
    lines += [
        "",
        "[[operations]]",
        'include-name = "DELETE /v1/webhooks/{webhook_id}"',
        f"parameters = {{ webhook_id = {toml_string(seeded['doomed_webhook_id'])} }}",
        "checks.ensure_resource_availability.enabled = false",
        "",
        "[[operations]]",
        'include-name = "POST /v1/webhooks/{webhook_id}/test"',
        f"parameters = {{ webhook_id = {toml_string(seeded['answering_webhook_id'])} }}",
    ]
    path = os.path.join(work, "schemathesis.toml")
    with open(path, "w") as config:
        config.write("\n".join(lines) + "\n")
    return path


def main():
    work = sys.argv[1]
    config = write_config(work, seed())
    schemathesis = os.path.join(os.path.dirname(sys.executable), "schemathesis")
    command = [
        schemathesis,
        "--config-file",
        config,
        "run",
        f"{BASE}/openapi.json",
        *CHECKS,
        "--max-time",
        SECONDS,
        # One worker: Hypothesis describes its strategies with `ast.parse`, which is not
        # thread-safe on CPython 3.11 (gh-106905: spurious SystemErrors with several workers).
        "--workers",
        "1",
        "--report",
        "junit",
        "--report-dir",
        os.path.join(work, "report"),
    ]
    sys.exit(subprocess.run(command, cwd=work).returncode)


if __name__ == "__main__":
    main()
