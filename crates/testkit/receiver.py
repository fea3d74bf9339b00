"""A webhook receiver for Hookline's integration tests.

It checks every request with the `standardwebhooks` package from PyPI, an implementation of the
Standard Webhooks specification independent of Hookline's own signer, or, when the path's
configuration has a `verifier`, the way another platform's documented receiver does (see
`verify_as_documented`), and records what arrived.

    POST /_configure {"path": "/hooks/a", "secret": "whsec_...", "status": 204,
                      "fail_first": 0, "fail_for_ms": 0, "fail_once_every": 0, "delay_ms": 0,
                      "retry_after": null,
                      "verifier": null, "body": "", "headers": [["Name", "value"]]}
    POST <path>      a webhook, recorded on arrival; after `delay_ms`, answered 500 for the first `fail_first`
                     requests, for `fail_for_ms` after configuration, and once for every
                     `fail_once_every`-th new `webhook-id` (the first of each) (with `Retry-After`
                     when set) and then with `status`, `body` and `headers`, when its
                     signature verifies; 401 otherwise
    GET  /_received  every request so far, as a JSON list

The first line printed is the port it listens on.
"""

import hashlib
import hmac
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook

lock = threading.Lock()
endpoints = {}
received = []
counts = {}
deliveries_seen = {}  # path -> webhook-ids seen there


def reserialized(body):
    """What Node's `JSON.stringify(req.body)` makes of a parsed body (for plain JSON data)."""
    return json.dumps(json.loads(body), separators=(",", ":"), ensure_ascii=False).encode()


def verify_as_documented(verifier, secret, body, headers):
    """Re-implements the receivers of the platform docs Hookline's profiles serve:

    {"scheme": "hmac-hex", "header": h}          hex HMAC-SHA256(secret, body) in h (Ruune)
    {"scheme": "sha256-prefixed", "header": h}   "sha256=" + that hex in h (GitHub)
    {"scheme": "timestamped", "prefix": p}       "sha256=" + hex HMAC(secret, ts + "." + body) in
                                                 p + "signature", ts in p + "timestamp" (Ardela)
    "reserialize": true signs JSON.stringify(JSON.parse(body)) instead (Ringyo, recordings docs).
    """
    signed = reserialized(body) if verifier.get("reserialize") else body
    key = secret.encode()
    scheme = verifier["scheme"]
    if scheme == "timestamped":
        prefix = verifier["prefix"]
        timestamp = headers[prefix + "timestamp"]
        if abs(time.time() - int(timestamp)) > 300:
            raise ValueError("stale timestamp")
        digest = hmac.new(key, timestamp.encode() + b"." + signed, hashlib.sha256).hexdigest()
        expected, given = "sha256=" + digest, headers[prefix + "signature"]
        for name in ("event", "delivery"):
            if not headers.get(prefix + name):
                raise ValueError(f"missing {prefix}{name}")
    else:
        digest = hmac.new(key, signed, hashlib.sha256).hexdigest()
        expected = "sha256=" + digest if scheme == "sha256-prefixed" else digest
        given = headers[verifier["header"].lower()]
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise ValueError("signature mismatch")


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def _reply(self, status, body=b"", headers=()):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path != "/_received":
            return self._reply(404)
        with lock:
            body = json.dumps(received).encode()
        self._reply(200, body)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path == "/_configure":
            config = json.loads(body)
            config["configured_at"] = time.time()
            with lock:
                endpoints[config["path"]] = config
            return self._reply(204)
        with lock:
            config = endpoints.get(self.path)
            counts[self.path] = counts.get(self.path, 0) + 1
            seen = counts[self.path]
            ids = deliveries_seen.setdefault(self.path, set())
            webhook_id = self.headers.get("webhook-id")
            every = (config or {}).get("fail_once_every", 0)
            fail_once = bool(every) and webhook_id not in ids and len(ids) % every == 0
            ids.add(webhook_id)
        arrived = time.time()
        headers = {name.lower(): value for name, value in self.headers.items()}
        error = None
        if config is None:
            error = "no endpoint configured at this path"
        else:
            try:
                if config.get("verifier"):
                    verify_as_documented(config["verifier"], config["secret"], body, headers)
                else:
                    Webhook(config["secret"]).verify(body, headers)
            except Exception as exc:  # the library raises its own verification errors
                error = f"{type(exc).__name__}: {exc}"
        with lock:
            received.append(
                {
                    "path": self.path,
                    "webhook_id": headers.get("webhook-id"),
                    "webhook_timestamp": headers.get("webhook-timestamp"),
                    "content_type": headers.get("content-type"),
                    "headers": headers,
                    "body": body.decode("utf-8", "replace"),
                    "verified": error is None,
                    "error": error,
                    "received_at": arrived,
                    "failed": error is not None
                    or seen <= config.get("fail_first", 0)
                    or fail_once
                    or arrived < config["configured_at"] + config.get("fail_for_ms", 0) / 1000,
                }
            )
        if config is not None and config.get("delay_ms"):
            time.sleep(config["delay_ms"] / 1000)
        if error is not None:
            return self._reply(401, error.encode())
        failing_until = config["configured_at"] + config.get("fail_for_ms", 0) / 1000
        if seen <= config.get("fail_first", 0) or fail_once or arrived < failing_until:
            retry_after = config.get("retry_after")
            extra = [("Retry-After", str(retry_after))] if retry_after is not None else []
            return self._reply(500, b"failing on purpose", extra)
        answer_headers = [(name, value) for name, value in config.get("headers", [])]
        self._reply(config.get("status", 204), config.get("body", "").encode(), answer_headers)


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
