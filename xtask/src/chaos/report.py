"""The report of a chaos run: report.md in the work directory, and a summary on stdout."""

import json
import os
from datetime import datetime, timezone

# Lost events printed on stdout; the report lists every one.
SHOWN = 20


def read(work, name):
    try:
        with open(os.path.join(work, name)) as text:
            return text.read().rstrip()
    except OSError:
        return "(missing)"


def summary_lines(facts):
    failures = ", ".join(f"{reason} × {n}" for reason, n in sorted(facts["failures"].items()))
    return [
        f"seed          {facts['seed']}",
        f"accepted      {facts['accepted']} of {facts['published']} events published "
        f"({facts['failed_requests']} failed requests{': ' + failures if failures else ''}; "
        f"{facts['not_sent']} events not sent while ingest was stalled)",
        f"delivered     {facts['delivered']} of {facts['expected']} (event, webhook) pairs "
        f"to {facts['webhooks']} webhooks, in {facts['requests']} requests",
        f"lost          {facts['lost']} (event, webhook) pairs",
        *(f"                {n} × {why}" for why, n in sorted(facts.get("diagnoses", {}).items())),
        f"duplicates    {facts['duplicates']} extra successful deliveries "
        f"({facts['unconfirmed']} events arrived whose publishing was never confirmed)",
        f"signatures    {facts['bad_signatures']} did not verify",
        f"ledger        {facts['ledger_deliveries']} deliveries, {facts['ledger_attempts']} attempts "
        f"listed; {facts['ledger_gaps']} delivered pairs without a delivery and its attempts",
        f"faults        {facts['faults']} injected",
        f"time          {facts['seconds']:.0f}s from setup to verdict",
    ]


def print_summary(facts, lost_ids, seen, gaps, replay):
    print("[chaos] summary")
    for line in summary_lines(facts):
        print(f"[chaos]   {line}")
    for event_id in lost_ids[:SHOWN]:
        print(f"[chaos] lost {event_id}, last seen: {json.dumps(seen.get(event_id))}")
    if len(lost_ids) > SHOWN:
        print(f"[chaos] … and {len(lost_ids) - SHOWN} more lost events (see the report)")
    for (event_id, path), why in sorted(gaps.items())[:SHOWN]:
        print(f"[chaos] ledger gap: {event_id} to {path}: {why}")
    for example in facts["bad_examples"][:5]:
        print(f"[chaos] bad signature: {example}")
    if lost_ids or gaps or facts["bad_signatures"]:
        print(f"[chaos] FAILED; the same faults again: {replay}")


def write(run, facts, lost, lost_ids, seen, gaps, replay, work):
    verdict = "FAILED" if lost or gaps or facts["bad_signatures"] else "passed"
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    out = [f"# Chaos run: {verdict}", "", f"{now}. Replay its faults: `{replay}`", ""]
    out += ["```", *summary_lines(facts), "```", ""]
    out += ["## Webhooks", ""]
    out += [f"- `{path}`: {webhook_id}" for path, webhook_id in run.webhooks] + [""]
    if lost:
        out += ["## Lost events", "", "Accepted (202) but never delivered to these webhooks:", ""]
        for path, ids in sorted(lost.items()):
            out.append(f"- `{path}`: {len(ids)}: {' '.join(ids)}")
        out += ["", "Where each was last seen (`GET /v1/events/{id}`; receiver refusals):", ""]
        for event_id in lost_ids:
            out.append(f"- `{event_id}`: `{json.dumps(seen.get(event_id, 'not looked up'))}`")
        out.append("")
    if gaps:
        out += ["## Ledger gaps", "", "Delivered, but the ledger does not show it:", ""]
        out += [f"- `{id_}` to `{path}`: {why}" for (id_, path), why in sorted(gaps.items())]
        out += ["", "The ledger's metrics at the verdict:", "", "```", *facts["ledger_metrics"], "```", ""]
    out += ["## Faults", "", "Planned:", "", "```", read(work, "plan.txt"), "```", ""]
    out += ["As they happened (seconds since publishing started):", ""]
    out += ["```", read(work, "faults.log"), "```", ""]
    out += ["## Publishing", "", "| seconds | accepted events | failed requests |", "|---|---|---|"]
    for bucket, (accepted, failed) in sorted(facts["timeline"].items()):
        out.append(f"| {bucket * 10}–{bucket * 10 + 10} | {accepted} | {failed} |")
    out += ["", "## Files", ""]
    out += [f"- `{name}`" for name in sorted(os.listdir(work)) if name not in ("publishing", "bin")]
    with open(os.path.join(work, "report.md"), "w") as report:
        report.write("\n".join(out) + "\n")
