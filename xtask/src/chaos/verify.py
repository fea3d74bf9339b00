"""The checks of `cargo xtask chaos`, once its faults are healed (called by driver.py).

1. Every accepted event reached every webhook (all were created before publishing): the
   receiver is polled until it has them all, or nothing missing has arrived for QUIET_SECS
   (and no fault may still hold deliveries back: a killed fanout's open transaction, for a
   minute), or CHAOS_SETTLE_SECS have passed.
2. The ledger holds a delivery of each one to each webhook, with its attempts (a succeeded one
   among them): once the ledger has written nothing new for a while (or CATCH_UP_SECS
   passed), read from the listings, then each gap again by id until it closes or the wait
   ends. A sample is also read by id and must agree with the listings.
3. Duplicates are counted, not failed.

Each lost event is reported with where it was last seen: the ledger's `GET /v1/events/{id}`
and what the receiver refused of it. The report goes to report.md in the work directory.
"""

import collections
import dataclasses
import random
import time
import urllib.parse
from datetime import datetime, timedelta

import report
from common import ENV, LEDGER, RECEIVER, SEED, WORK, call

SETTLE_SECS = float(ENV["CHAOS_SETTLE_SECS"])
# Longer than any wait of a healthy pipeline: a retry (5 s), a circuit's cooldown (3 s), a
# stalled sender's partitions moving to the other one (10 s of session timeout).
QUIET_SECS = 30
REPLAY = ENV["CHAOS_REPLAY"]
# How long the ledger gets, after the settle wait, to write everything before it is listed,
# and then for the gaps the listing finds to close.
CATCH_UP_SECS = 300
LEDGER_SECS = 60
# How long the ledger must write nothing new to count as caught up (its retries wait up to
# 12 s between tries).
LEDGER_QUIET_SECS = 15
SAMPLE = 20


@dataclasses.dataclass
class Run:
    key: str
    webhooks: list
    publisher: object
    faults: int
    # Unix time until which a fault may still hold deliveries back without losing them.
    holdback_until: float
    started_at: datetime
    began: float


def summary():
    status, answer = call("GET", RECEIVER + "/_summary", timeout=30)
    if status != 200:
        raise RuntimeError(f"the receiver answered {status}: {answer}")
    return answer


def missing(run, received):
    """{path: accepted ids the path has not had delivered}"""
    accepted = run.publisher.accepted
    return {
        path: sorted(set(accepted) - set(received[path]["delivered"])) for path, _ in run.webhooks
    }


def settle(run):
    """Polls the receiver until nothing is missing or waiting is pointless; its last summary."""
    deadline = time.monotonic() + SETTLE_SECS
    best, progress, shown = None, time.monotonic(), 0
    while True:
        received = summary()
        left = sum(len(ids) for ids in missing(run, received).values())
        now = time.monotonic()
        if left == 0:
            return received
        if best is None or left < best:
            best, progress = left, now
        held_back = time.time() < run.holdback_until
        if (now - progress > QUIET_SECS and not held_back) or now > deadline:
            quiet = now - progress
            print(f"[chaos] gave up waiting: {left} deliveries missing, none for {quiet:.0f}s")
            return received
        if now - shown >= 10:
            print(f"[chaos] settling: {left} (event, webhook) deliveries missing")
            shown = now
        time.sleep(2)


def ledger_get(path, key, timeout=30):
    status, answer = call("GET", LEDGER + path, key, timeout=timeout)
    return status, answer


def pages(path, key, params):
    """Every item of a cursor-paged ledger listing."""
    items, cursor = [], None
    while True:
        query = dict(params, limit=100, **({"cursor": cursor} if cursor else {}))
        status, answer = ledger_get(f"{path}?{urllib.parse.urlencode(query)}", key)
        if status != 200:
            raise RuntimeError(f"GET {path} answered {status}: {answer}")
        items += answer["data"]
        cursor = answer.get("next_cursor")
        if not cursor:
            return items


def ledger_listing(run):
    """{(event id, path): {"delivery": summary, "attempts": [outcomes]}} from the listings."""
    since = (run.started_at - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    found = {}
    for path, webhook_id in run.webhooks:
        deliveries = pages("/v1/deliveries", run.key, {"webhook_id": webhook_id, "since": since})
        attempts = {}
        for attempt in pages(f"/v1/webhooks/{webhook_id}/attempts", run.key, {"since": since}):
            attempts.setdefault(attempt["delivery_id"], []).append(attempt["outcome"])
        for delivery in deliveries:
            found[(delivery["event_id"], path)] = {
                "delivery": delivery,
                "attempts": attempts.get(delivery["id"], []),
            }
    return found


def ledger_by_id(run, event_id, path):
    """The same entry read by id: GET /v1/events/{id}, then GET /v1/deliveries/{id}."""
    webhook_id = dict(run.webhooks)[path]
    status, event = ledger_get(f"/v1/events/{urllib.parse.quote(event_id)}", run.key)
    if status != 200:
        return None
    delivery = next((d for d in event["deliveries"] if d["webhook_id"] == webhook_id), None)
    if delivery is None:
        return None
    status, detail = ledger_get(f"/v1/deliveries/{delivery['id']}", run.key)
    if status != 200:
        return None
    return {"delivery": detail, "attempts": [a["outcome"] for a in detail["attempts"]]}


def gap(entry):
    """Why a ledger entry does not show a delivery with its attempts, or None."""
    if entry is None:
        return "no delivery"
    if not entry["attempts"]:
        return "a delivery without attempts"
    if "succeeded" not in entry["attempts"]:
        return f"no succeeded attempt (outcomes {sorted(set(entry['attempts']))})"
    return None


def ledger_written():
    """Attempts and events the ledger has written since it started, or None when its /metrics
    cannot say."""
    written = ("hookline_ledger_attempts_written_total", "hookline_ledger_events_written_total")
    lines = [line for line in ledger_metrics() if line.startswith(written)]
    try:
        return sum(float(line.rsplit(" ", 1)[1]) for line in lines) if lines else None
    except ValueError:
        return None


def await_ledger_caught_up():
    """Waits until the ledger has written nothing new for LEDGER_QUIET_SECS (it has read
    everything: its consumer lag cannot say so, as a partition written in transactions keeps a
    lag of one for its last commit marker), or gives up after CATCH_UP_SECS."""
    deadline = time.monotonic() + CATCH_UP_SECS
    last, quiet_since, shown = None, time.monotonic(), 0
    while time.monotonic() < deadline:
        written, now = ledger_written(), time.monotonic()
        if written != last:
            last, quiet_since = written, now
        elif now - quiet_since >= LEDGER_QUIET_SECS:
            return
        if now - shown >= 10:
            print(f"[chaos] ledger: {written} records written since its start; waiting for it to settle")
            shown = now
        time.sleep(1)
    print(f"[chaos] ledger: still writing after {CATCH_UP_SECS}s; listing what it has")


def check_ledger(run, delivered):
    """{(event id, path): why} for delivered pairs the ledger does not show, once the wait ends."""
    await_ledger_caught_up()
    listing = ledger_listing(run)
    # The listing of a long run takes minutes: gaps get their own time to close after it.
    deadline = time.monotonic() + LEDGER_SECS
    gaps = {pair: gap(listing.get(pair)) for pair in delivered}
    gaps = {pair: why for pair, why in gaps.items() if why}
    # A sample read by id must agree with the listings.
    for pair in random.Random(SEED).sample(sorted(delivered), min(SAMPLE, len(delivered))):
        if pair not in gaps and gap(ledger_by_id(run, *pair)):
            gaps[pair] = "listed, but not found by id"
    while gaps and time.monotonic() < deadline:
        print(f"[chaos] ledger: {len(gaps)} deliveries not written yet")
        time.sleep(5)
        gaps = {pair: gap(ledger_by_id(run, *pair)) for pair in gaps}
        gaps = {pair: why for pair, why in gaps.items() if why}
    return gaps, listing


# The ledger's own account of where it stands, kept in the report when it shows gaps.
LEDGER_METRICS = ("hookline_kafka_consumer_lag_records", "hookline_ledger_", "hookline_records_dead")


def ledger_metrics():
    """The ledger's lag and write counters from its /metrics, or why they could not be read."""
    status, text = call("GET", LEDGER + "/metrics", timeout=10)
    if status != 200 or not isinstance(text, str):
        return [f"/metrics answered {status}: {text}"]
    return [line for line in text.splitlines() if line.startswith(LEDGER_METRICS)]


def last_seen(run, event_id, received):
    """Where a lost event was last seen: the ledger's answer and the receiver's refusals."""
    status, answer = ledger_get(f"/v1/events/{urllib.parse.quote(event_id)}", run.key)
    if status == 200:
        answer.pop("data", None)
    refused = {
        path: got["refused"][event_id] for path, got in received.items() if event_id in got["refused"]
    }
    return {"ledger": {"status": status, "answer": answer}, "receiver_refused": refused}


def diagnosis(run, path, seen):
    """What the ledger says of a lost event at one webhook, in a few words."""
    if seen is None:
        return "not looked up"
    status, answer = seen["ledger"]["status"], seen["ledger"]["answer"]
    if status == 404:
        return "the ledger has no such event"
    if status != 200:
        return f"the ledger answered {status}"
    webhook_id = dict(run.webhooks)[path]
    delivery = next((d for d in answer["deliveries"] if d["webhook_id"] == webhook_id), None)
    if delivery is None:
        return "the event is in the ledger, without a delivery to this webhook"
    return f"its delivery is {delivery['status']} after {delivery['attempt_count']} attempts"


def settle_and_check(run):
    print(f"[chaos] {run.faults} faults healed; waiting for every delivery")
    received = settle(run)
    lost = {path: ids for path, ids in missing(run, received).items() if ids}
    delivered = [
        (event_id, path)
        for path, _ in run.webhooks
        for event_id in run.publisher.accepted
        if event_id in received[path]["delivered"]
    ]
    reading = time.monotonic()
    gaps, listing = check_ledger(run, delivered)
    print(f"[chaos] ledger checked in {time.monotonic() - reading:.0f}s")
    lost_ids = sorted({event_id for ids in lost.values() for event_id in ids})
    seen = {event_id: last_seen(run, event_id, received) for event_id in lost_ids[:200]}
    facts = facts_of(run, received, lost, gaps, listing)
    facts["diagnoses"] = dict(
        collections.Counter(
            diagnosis(run, path, seen.get(event_id))
            for path, ids in lost.items()
            for event_id in ids
        )
    )
    facts["ledger_metrics"] = ledger_metrics() if gaps else []
    report.write(run, facts, lost, lost_ids, seen, gaps, REPLAY, WORK)
    report.print_summary(facts, lost_ids, seen, gaps, REPLAY)
    return 1 if lost or gaps or facts["bad_signatures"] else 0


def facts_of(run, received, lost, gaps, listing):
    accepted = run.publisher.accepted
    paths = [path for path, _ in run.webhooks]
    duplicates = sum(
        times - 1 for path in paths for times in received[path]["delivered"].values() if times > 1
    )
    unconfirmed = {
        event_id
        for path in paths
        for event_id in received[path]["delivered"]
        if event_id not in accepted
    }
    attempts = sum(len(entry["attempts"]) for entry in listing.values())
    return {
        "seed": SEED,
        "published": run.publisher.published,
        "accepted": len(accepted),
        "failed_requests": sum(run.publisher.failures.values()),
        "failures": dict(run.publisher.failures),
        "not_sent": run.publisher.skipped,
        "webhooks": len(paths),
        "expected": len(accepted) * len(paths),
        "delivered": len(accepted) * len(paths) - sum(len(ids) for ids in lost.values()),
        "duplicates": duplicates,
        "unconfirmed": len(unconfirmed),
        "requests": sum(received[path]["requests"] for path in paths),
        "bad_signatures": sum(received[path]["bad_signatures"] for path in paths),
        "bad_examples": [e for path in paths for e in received[path]["bad_examples"]],
        "ledger_deliveries": len(listing),
        "ledger_attempts": attempts,
        "ledger_gaps": len(gaps),
        "faults": run.faults,
        "lost": sum(len(ids) for ids in lost.values()),
        "seconds": time.monotonic() - run.began,
        "timeline": dict(run.publisher.timeline),
    }
