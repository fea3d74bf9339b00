"""A webhook receiver for Hookline's integration tests.

It checks every request with the `standardwebhooks` package from PyPI, an implementation of the
Standard Webhooks specification independent of Hookline's own signer, and records what arrived.

    POST /_configure {"path": "/hooks/a", "secret": "whsec_...", "status": 204}
    POST <path>      a webhook; answered with the configured status when its signature verifies,
                     401 otherwise
    GET  /_received  every request so far, as a JSON list

The first line printed is the port it listens on.
"""

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook

lock = threading.Lock()
endpoints = {}
received = []


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def _reply(self, status, body=b""):
        self.send_response(status)
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
            with lock:
                endpoints[config["path"]] = config
            return self._reply(204)
        with lock:
            config = endpoints.get(self.path)
        headers = {name.lower(): value for name, value in self.headers.items()}
        error = None
        if config is None:
            error = "no endpoint configured at this path"
        else:
            try:
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
                    "body": body.decode("utf-8", "replace"),
                    "verified": error is None,
                    "error": error,
                }
            )
        if error is not None:
            return self._reply(401, error.encode())
        self._reply(config.get("status", 204))


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
