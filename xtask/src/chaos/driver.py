"""The client side of `cargo xtask chaos`: sets up, publishes, and has `verify.py` check.

Run by xtask with CHAOS_* variables (see xtask/src/chaos/driver.rs). It creates a tenant, an
API key and one catch-all webhook per endpoint path of the receiver, creates the `publishing`
marker file, and publishes at a steady rate, singles and batches, with ids of its own choosing.
Only ids answered 202 count as accepted; a request that fails or times out is retried a couple
of times with the same ids, as a client would. Then it waits for xtask's line
`healed <faults> <holdback until>` on stdin and hands over to `verify.py`.

Exit status: 0 nothing lost, 1 something lost (or a bad signature), 2 the harness failed.
"""

import collections
import concurrent.futures
import os
import random
import sys
import threading
import time
import traceback
from datetime import datetime, timezone

import verify
from common import INGEST, RECEIVER, SEED, WORK, call

ADMIN = os.environ["CHAOS_ADMIN_TOKEN"]
PUBLISH_SECS = float(os.environ["CHAOS_PUBLISH_SECS"])
ENDPOINTS = int(os.environ["CHAOS_ENDPOINTS"])

EVENTS_PER_SECOND = 50
TICK_SECS = 0.1
# Requests in flight at most; beyond, a tick's events are not sent (and so not accepted): a
# stalled ingest must not pile up a burst for when it comes back.
IN_FLIGHT = 32
TRIES = 3


def setup_call(method, path, token, body, expected):
    """A setup request, retried while the fresh services finish starting."""
    deadline = time.monotonic() + 60
    while True:
        status, answer = call(method, INGEST + path, token, body)
        if status == expected:
            return answer
        if time.monotonic() > deadline or (status is not None and status < 500):
            raise RuntimeError(f"{method} {path} answered {status}: {answer}")
        time.sleep(1)


def setup():
    """The tenant's key and its webhooks: [(path, webhook id)]."""
    tenant = setup_call("POST", "/v1/tenants", ADMIN, {"name": "chaos"}, 201)
    scopes = ["events:publish", "webhooks:manage", "deliveries:read"]
    key = setup_call(
        "POST", f"/v1/tenants/{tenant['id']}/keys", ADMIN, {"name": "chaos", "scopes": scopes}, 201
    )["key"]
    webhooks = []
    for index in range(ENDPOINTS):
        path = f"/w{index}"
        body = {"url": RECEIVER + path, "events": ["*"], "description": f"chaos {path}"}
        created = setup_call("POST", "/v1/webhooks", key, body, 201)
        status, answer = call(
            "POST", RECEIVER + "/_configure", body={"path": path, "secret": created["secret"]}
        )
        if status != 204:
            raise RuntimeError(f"the receiver refused its configuration: {status} {answer}")
        webhooks.append((path, created["id"]))
    return key, webhooks


class Publisher:
    def __init__(self, key):
        self.key = key
        self.rng = random.Random(SEED)
        self.lock = threading.Lock()
        # id -> seconds after publishing started that it was accepted
        self.accepted = {}
        self.failures = collections.Counter()
        self.skipped = 0
        self.published = 0
        # per 10 s: [accepted events, failed requests]
        self.timeline = collections.defaultdict(lambda: [0, 0])
        self.start = None

    def run(self):
        slots = threading.BoundedSemaphore(IN_FLIGHT)
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=IN_FLIGHT)
        self.start = time.monotonic()
        per_tick = round(EVENTS_PER_SECOND * TICK_SECS)
        tick = 0
        while tick * TICK_SECS < PUBLISH_SECS:
            wait = self.start + tick * TICK_SECS - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            ids = [f"chaos.{self.published + n:07d}" for n in range(per_tick)]
            self.published += per_tick
            for group in self.shape(ids):
                if slots.acquire(blocking=False):
                    pool.submit(self.send, group, slots)
                else:
                    self.skipped += len(group)
            tick += 1
        pool.shutdown(wait=True)

    def shape(self, ids):
        """Half the ticks one batch, the others single events."""
        return [ids] if self.rng.random() < 0.5 else [[event_id] for event_id in ids]

    def send(self, ids, slots):
        try:
            events = [{"id": id_, "type": "chaos.event", "data": {"id": id_}} for id_ in ids]
            if len(ids) == 1:
                path, body = "/v1/events", events[0]
            else:
                path, body = "/v1/events/batch", {"events": events}
            for attempt in range(TRIES):
                status, answer = call("POST", INGEST + path, self.key, body)
                if status == 202:
                    answered = [answer["id"]] if len(ids) == 1 else answer["ids"]
                    if answered != ids:
                        raise RuntimeError(f"ingest answered ids {answered} for {ids}")
                    self.record(ids)
                    return
                self.fail(status if status is not None else answer)
                time.sleep(0.5 * (attempt + 1))
        finally:
            slots.release()

    def record(self, ids):
        at = time.monotonic() - self.start
        with self.lock:
            for event_id in ids:
                self.accepted[event_id] = at
            self.timeline[int(at // 10)][0] += len(ids)

    def fail(self, reason):
        at = time.monotonic() - self.start
        with self.lock:
            self.failures[str(reason)] += 1
            self.timeline[int(at // 10)][1] += 1


def main():
    began = time.monotonic()
    started_at = datetime.now(timezone.utc)
    key, webhooks = setup()
    print(
        f"[chaos] {len(webhooks)} webhooks set up; "
        f"publishing {EVENTS_PER_SECOND} events/s for {PUBLISH_SECS:.0f}s"
    )
    open(os.path.join(WORK, "publishing"), "w").close()
    publisher = Publisher(key)
    publisher.run()
    with open(os.path.join(WORK, "accepted.txt"), "w") as out:
        out.writelines(f"{event_id}\n" for event_id in sorted(publisher.accepted))
    failed = sum(publisher.failures.values())
    print(
        f"[chaos] published {publisher.published} events: {len(publisher.accepted)} accepted, "
        f"{failed} failed requests, {publisher.skipped} events not sent (ingest stalled); "
        "waiting for the faults to heal"
    )
    line = sys.stdin.readline().split()
    if len(line) != 3 or line[0] != "healed":
        print("[chaos] xtask went away before the faults healed", file=sys.stderr)
        return 2
    run = verify.Run(
        key=key,
        webhooks=webhooks,
        publisher=publisher,
        faults=int(line[1]),
        holdback_until=float(line[2]),
        started_at=started_at,
        began=began,
    )
    return verify.settle_and_check(run)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception:
        traceback.print_exc()
        sys.exit(2)
