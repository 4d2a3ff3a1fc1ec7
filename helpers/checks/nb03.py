"""Notebook 03's exercise checks: each builds real pending entries on the course's Redis, runs the
learner's function, and judges the server state it left (then deletes what it built)."""

from __future__ import annotations

import json
import time

from .. import streams
from ..workers import ProcessWorker
from . import CheckResult, call, check, learner_redis, not_attempted, not_yet, passed


def _delete(r, ns, name: str) -> None:
    keys = list(r.scan_iter(match=ns.key(name) + "*"))
    if keys:
        r.unlink(*keys)


@check
def drain(drain_pending, r, redis_url: str, ns, entries: int = 150, min_idle_ms: int = 300) -> CheckResult:
    """``drain_pending(r, stream, group, consumer, min_idle_ms)`` must empty a dead consumer's PEL.

    A real consumer process reads ``entries`` entries (more than one XAUTOCLAIM's default COUNT of
    100, so a single call is not enough) and is SIGKILLed before it acknowledges any of them.
    """
    name = "check-drain"
    _delete(r, ns, name)
    stream, report = ns.key(f"{name}:stream"), ns.key(f"{name}:report")
    group, rescuer = "drainers", "rescuer"
    try:
        pipe = r.pipeline(transaction=False)
        for i in range(entries):
            pipe.xadd(stream, {"job": f"job-{i:03d}"})
        pipe.execute()
        r.xgroup_create(stream, group, id="0")
        dead = ProcessWorker("helpers.streams:doomed_consumer", name="nb03-check-dead", max_seconds=60,
                             redis_url=redis_url, stream=stream, group=group, consumer="dead",
                             report_key=report, handled_key=ns.key(f"{name}:handled"), count=entries,
                             sleep_seconds=30).start()
        try:
            streams.wait_until(lambda: r.exists(report), 20, "the doomed consumer to read its batch")
        finally:
            code = dead.kill()
        held = set(json.loads(r.get(report))["read"])
        before = {p["message_id"] for p in r.xpending_range(stream, group, "-", "+", entries + 10)}
        if code != -9 or len(held) != entries or before != held:
            return not_yet("The check could not set up its dead consumer (try again).")
        time.sleep(min_idle_ms / 1000 + 0.05)
        returned = call(drain_pending, learner_redis(r), stream, group, rescuer, min_idle_ms)
        left = r.xpending(stream, group)["pending"]
        returned = list(returned or [])
        if left:
            return not_yet(f"{left} of {entries} entries are still pending after drain_pending.",
                           "XAUTOCLAIM returns (next_cursor, entries, deleted): call it again from "
                           "next_cursor until it is '0-0', and XACK each entry you processed")
        dupes = len(returned) - len(set(returned))
        missing, extra = held - set(returned), set(returned) - held
        if missing or extra or dupes:
            return not_yet(f"Pending list empty, but drain_pending returned {len(returned)} ids for {entries} "
                           f"dead entries ({len(missing)} missing, {len(extra)} unknown, {dupes} repeated).",
                           "return the ids you processed, each once")
        consumers = {c["name"] for c in r.xinfo_consumers(stream, group)}
        if rescuer not in consumers:
            return not_yet(f"The entries were acknowledged, but never claimed by {rescuer!r}.",
                           "use XAUTOCLAIM with the consumer argument, so the group knows who took them")
        return passed(f"drain_pending reclaimed and acknowledged all {entries} entries a SIGKILLed consumer "
                      f"held (XPENDING is now 0): at-least-once, with nothing left behind.")
    finally:
        _delete(r, ns, name)


@check
def dead_letter_policy(dead_letter, r, ns, max_deliveries: int = 3) -> CheckResult:
    """``dead_letter(r, stream, group, dlq, max_deliveries)`` moves over-delivered entries to ``dlq``.

    Real delivery counts are built with XREADGROUP then XCLAIM (each claim is a delivery): 4, 3, 2,
    1, 1, 1. The entries with >= ``max_deliveries`` must be in ``dlq`` (fields kept, plus
    ``original_id``) and acknowledged; the others must stay pending with their counts untouched.
    """
    name = "check-dlq"
    _delete(r, ns, name)
    stream, dlq, group = ns.key(f"{name}:stream"), ns.key(f"{name}:dlq"), "payments"
    try:
        ids = [r.xadd(stream, {"payment": f"p-{i}", "amount": str(10 * (i + 1))}) for i in range(6)]
        r.xgroup_create(stream, group, id="0")
        r.xreadgroup(group, "w1", {stream: ">"}, count=10, block=100)     # every entry: 1 delivery
        for consumer, chosen in (("w2", ids[:3]), ("w3", ids[:2]), ("w4", ids[:1])):
            r.xclaim(stream, group, consumer, 0, chosen)                  # each claim: +1 delivery
        before = {p["message_id"]: p["times_delivered"] for p in r.xpending_range(stream, group, "-", "+", 20)}
        expected = sorted(i for i, n in before.items() if n >= max_deliveries)
        returned = call(dead_letter, learner_redis(r), stream, group, dlq, max_deliveries)
        after = {p["message_id"]: p["times_delivered"] for p in r.xpending_range(stream, group, "-", "+", 20)}
        if r.exists(dlq) and r.type(dlq) != "stream":
            return not_yet(f"The dead-letter key is a {r.type(dlq)}, not a stream.", "XADD to the dlq stream")
        letters = r.xrange(dlq) if r.exists(dlq) else []
        if not letters and after == before:
            return not_yet("Nothing changed: no dead letters and the same pending list.",
                           "read the delivery counts with r.xpending_range(stream, group, '-', '+', count)")
        originals = dict(r.xrange(stream))
        moved = sorted(f.get("original_id", "?") for _, f in letters)
        if moved != expected:
            return not_yet(f"The dead-letter stream holds {moved}; expected exactly {expected} "
                           f"(deliveries >= {max_deliveries}).",
                           "compare times_delivered with max_deliveries (>=), and add field original_id")
        for _, fields in letters:
            kept = {k: v for k, v in fields.items() if k in originals[fields["original_id"]]}
            if kept != originals[fields["original_id"]]:
                return not_yet(f"Dead letter for {fields['original_id']} lost its fields.",
                               "copy the entry's fields (XRANGE stream id id) into the dead letter")
        if set(after) & set(expected):
            return not_yet(f"Dead-lettered entries are still pending: {sorted(set(after) & set(expected))}.",
                           "XACK each entry after adding it to the dead-letter stream")
        keep = {i: n for i, n in before.items() if i not in expected}
        if after != keep:
            return not_yet("The entries below the limit changed: their pending list or delivery counts "
                           f"went from {keep} to {after}.",
                           "read with XPENDING/XRANGE: XCLAIM or XAUTOCLAIM counts as another delivery")
        if not isinstance(returned, (list, tuple, set)) or sorted(returned) != expected:
            return not_yet(f"The right entries moved, but the function returned {returned!r}; expected the "
                           f"list of the {len(expected)} ids it dead-lettered.",
                           "collect the ids you dead-letter in a list and return it")
        return passed(f"{len(expected)} entries delivered >= {max_deliveries} times moved to the dead-letter "
                      f"stream and were acknowledged; {len(keep)} others stay pending, untouched.")
    finally:
        _delete(r, ns, name)


__all__ = ["dead_letter_policy", "drain", "not_attempted"]
