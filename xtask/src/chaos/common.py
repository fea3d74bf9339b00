"""What the chaos driver's modules share: its settings (CHAOS_* variables set by xtask, see
xtask/src/chaos/driver.rs) and one HTTP call."""

import json
import os
import urllib.error
import urllib.request

ENV = os.environ
WORK = ENV["CHAOS_WORK"]
INGEST = ENV["CHAOS_INGEST"]
LEDGER = ENV["CHAOS_LEDGER"]
RECEIVER = ENV["CHAOS_RECEIVER"]
SEED = int(ENV["CHAOS_SEED"])
REQUEST_TIMEOUT_SECS = 5


def call(method, url, token=None, body=None, timeout=REQUEST_TIMEOUT_SECS):
    """(status, parsed JSON or text); status None when no answer came."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    except Exception as error:  # refused, reset, timed out: no answer
        return None, type(error).__name__
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw.decode("utf-8", "replace")
