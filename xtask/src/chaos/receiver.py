"""The webhook receiver of `cargo xtask chaos`, independent of Hookline's own code.

Every request is checked with the `standardwebhooks` package from PyPI against its path's secret
and recorded by the event id of its body. A request counts as delivered only if its signature
verifies and it was answered 2xx: a failing endpoint answers 500, and a hanging one holds the
request past the sender's timeout and then answers 503 to a connection the sender gave up on.

    POST /_configure {"path": "/w0", "secret": "whsec_..."}
    POST /_fault     {"path": "/w0", "mode": "ok" | "fail" | "hang", "hold_secs": 4}
    GET  /_summary   per path: {"delivered": {event id: times}, "refused": {event id: times},
                     "requests": n, "bad_signatures": n, "bad_examples": [...]}

Usage: receiver.py <port>
"""

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook

lock = threading.Lock()
secrets = {}
modes = {}
paths = {}


def path_record(path):
    return paths.setdefault(
        path,
        {"delivered": {}, "refused": {}, "requests": 0, "bad_signatures": 0, "bad_examples": []},
    )


def count(table, event_id):
    table[event_id] = table.get(event_id, 0) + 1


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def _reply(self, status, body=b""):
        try:
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return True
        except OSError:
            # The sender gave up on a held request: nothing was delivered.
            return False

    def do_GET(self):
        if self.path != "/_summary":
            return self._reply(404)
        with lock:
            body = json.dumps(paths).encode()
        self._reply(200, body)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path == "/_configure":
            config = json.loads(body)
            with lock:
                secrets[config["path"]] = config["secret"]
                path_record(config["path"])
            return self._reply(204)
        if self.path == "/_fault":
            fault = json.loads(body)
            with lock:
                modes[fault["path"]] = (fault["mode"], fault.get("hold_secs", 0))
            return self._reply(204)
        self.webhook(body)

    def webhook(self, body):
        headers = {name.lower(): value for name, value in self.headers.items()}
        with lock:
            secret = secrets.get(self.path)
            mode, hold = modes.get(self.path, ("ok", 0))
            record = path_record(self.path)
            record["requests"] += 1
        try:
            if secret is None:
                raise ValueError("no secret configured for this path")
            Webhook(secret).verify(body, headers)
            event_id = json.loads(body)["id"]
        except Exception as exc:  # the library raises its own verification errors
            with lock:
                record["bad_signatures"] += 1
                if len(record["bad_examples"]) < 5:
                    record["bad_examples"].append(f"{type(exc).__name__}: {exc}")
            return self._reply(401)
        if mode == "hang":
            time.sleep(hold)
        if mode != "ok":
            with lock:
                count(record["refused"], event_id)
            return self._reply(500 if mode == "fail" else 503)
        # Recorded before the answer: an answer the sender misses still delivered the event,
        # and the sender's retry then counts as a duplicate.
        with lock:
            count(record["delivered"], event_id)
        self._reply(204)


def main():
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
