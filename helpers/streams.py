"""Plumbing for notebook 03 (Redis Streams).

The lesson's commands (XADD, XREADGROUP, XPENDING, XAUTOCLAIM, XTRIM, MEMORY USAGE) stay in the
notebook. This module holds what the notebook does not need to show: the consumer *process* that
the crash experiments SIGKILL (:func:`doomed_consumer`), the live consumers of the min-idle race
(:func:`live_consumer`: a slow one and a fast one), the counting of that race by entry id
(:func:`race_outcome`), polling with a deadline, and small converters that turn Redis replies into
pandas tables. Every consumer writes what it does, with the time, to the experiment's event log
(``helpers.timeline``), so the swimlane chart can be drawn after a SIGKILL.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone

from .clients import redis_client
from .timeline import log_event
from .workers import wait_until  # noqa: F401 re-exported: the notebook calls streams.wait_until


def doomed_consumer(redis_url: str, stream: str, group: str, consumer: str, report_key: str,
                    handled_key: str, count: int = 10, handle_first: int = 0, block_ms: int = 2000,
                    sleep_seconds: float = 60.0, log_key: str = "") -> None:
    """A consumer process that reads one batch, handles part of it, and never acknowledges.

    It calls ``XREADGROUP GROUP group consumer COUNT count BLOCK block_ms STREAMS stream >``,
    handles (``HINCRBY handled_key id 1``) the first ``handle_first`` entries of the batch, writes
    the ids it read to ``report_key`` (a JSON list) and then sleeps ``sleep_seconds``: the notebook
    waits for the report and SIGKILLs it there, so the crash point is deterministic. With
    ``log_key`` it also logs each ``read`` and ``processed`` with its time (for the swimlane).
    """
    r = redis_client(redis_url)
    reply = r.xreadgroup(group, consumer, {stream: ">"}, count=count, block=block_ms)
    entries = reply[0][1] if reply else []
    ids = [entry_id for entry_id, _ in entries]
    for entry_id in ids if log_key else []:
        log_event(r, log_key, consumer, "read", entry_id)
    for entry_id in ids[:handle_first]:
        r.hincrby(handled_key, entry_id, 1)       # the work's effect... but no XACK follows
        if log_key:
            log_event(r, log_key, consumer, "processed", entry_id)
    r.set(report_key, json.dumps({"read": ids, "handled": ids[:handle_first]}))
    time.sleep(sleep_seconds)                     # holding the entries: the SIGKILL lands here


def live_consumer(stop, redis_url: str, stream: str, group: str, consumer: str, handled_key: str, log: str,
                  work_s: float = 0.005, max_entries: int | None = None) -> int:
    """A healthy consumer (run it with ``workers.background``): ``XREADGROUP ... >`` one entry at a
    time, work ``work_s`` seconds, ``HINCRBY handled_key id 1``, then ``XACK``; until ``stop`` or
    after ``max_entries``. It logs ``read``, ``processed`` and ``ack`` (with XACK's reply: ``acked=0``
    means the entry was no longer pending, someone else had acknowledged it). Returns how many it read."""
    r, n = redis_client(redis_url), 0
    while not stop.is_set() and (max_entries is None or n < max_entries):
        reply = r.xreadgroup(group, consumer, {stream: ">"}, count=1, block=100)
        for _stream, entries in reply or []:
            for entry_id, _fields in entries:
                n += 1
                log_event(r, log, consumer, "read", entry_id)
                stop.wait(work_s)                          # the work (a live consumer, just slow)
                r.hincrby(handled_key, entry_id, 1)
                log_event(r, log, consumer, "processed", entry_id)
                acked = r.xack(stream, group, entry_id)
                log_event(r, log, consumer, "ack" if acked else "ack (nothing pending)", entry_id, acked=acked)
    return n


def race_keys(ns, run: int) -> dict[str, str]:
    """The keys of one run of the min-idle race, in the notebook's namespace."""
    return {k: ns.key(f"s3b:run{run}:{k}") for k in ("stream", "handled", "log", "report")}


def race_outcome(r, keys: dict, ids: list[str], min_idle_ms: int) -> dict:
    """Count one run of the race by entry id, from Redis alone: who read each entry first, what the
    rescuer claimed from whom (with the delivery count XPENDING showed), how often each entry's
    work ran, how long the dead consumer's entries waited, and what is still pending."""
    from .timeline import events

    ev = events(r, keys["log"])
    first_reader: dict[str, str] = {}
    for e in ev:
        if e["event"] == "read":
            first_reader.setdefault(e["job"], e["worker"])
    claims = [e for e in ev if e["event"] == "claimed"]
    kill_t = next((float(e["t"]) for e in ev if e["event"] == "SIGKILL"), None)
    runs = {k: int(v) for k, v in r.hgetall(keys["handled"]).items()}
    slow_entry = next((e for e, w in first_reader.items() if w == "slow"), None)
    slow_ack = next((int(e["acked"]) for e in ev if e["worker"] == "slow" and e["event"].startswith("ack")), None)
    from_ = {w: sorted({c["job"] for c in claims if first_reader.get(c["job"]) == w}) for w in ("dead", "slow", "fast")}
    dead_claims = [float(c["t"]) for c in claims if first_reader.get(c["job"]) == "dead"]
    return {
        "min_idle_ms": min_idle_ms, "entries": len(ids), "runs": runs,
        "claimed_from": from_, "slow_entry": slow_entry, "slow_ack": slow_ack,
        "slow_deliveries_at_claim": next((int(c["deliveries"]) for c in claims
                                          if c["job"] == slow_entry and "deliveries" in c), None),
        "twice": sorted(e for e, n in runs.items() if n > 1),
        "never_processed": sorted(set(ids) - set(runs)),
        "dead_recovered_after_s": round(max(dead_claims) - kill_t, 2) if dead_claims and kill_t else None,
        "pending_after": r.xpending(keys["stream"], "workers")["pending"],
    }


def pending_view(r, stream: str | None, group: str):
    """What the server says right now, one row per consumer of ``group`` (``XINFO CONSUMERS``): how many
    entries it holds and which (``XPENDING``, extended form), the longest idle time and the highest
    delivery count among them. The live view of the race; a consumer holding nothing shows 0."""
    import pandas as pd
    import redis

    cols = ["consumer", "pending", "entries", "max idle (ms)", "max deliveries"]
    try:
        consumers = [c["name"] for c in r.xinfo_consumers(stream, group)] if stream else []
        rows = r.xpending_range(stream, group, "-", "+", 100) if consumers else []
    except redis.ResponseError:  # no stream or no group yet
        consumers, rows = [], []
    by: dict[str, list] = {c: [] for c in consumers}
    for p in rows:
        by.setdefault(p["consumer"], []).append(p)
    return pd.DataFrame([{"consumer": c, "pending": len(ps), "entries": ", ".join(p["message_id"] for p in ps),
                          "max idle (ms)": max((p["time_since_delivered"] for p in ps), default=0),
                          "max deliveries": max((p["times_delivered"] for p in ps), default=0)}
                         for c, ps in by.items()], columns=cols)


def id_time(entry_id: str) -> str:
    """The wall-clock time encoded in a stream id's millisecond part (UTC, ms precision)."""
    ms = int(entry_id.split("-")[0])
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%H:%M:%S.%f")[:-3]


def id_key(entry_id: str) -> tuple[int, int]:
    """Sort key for stream ids (``ms-seq`` compares numerically, not as text)."""
    ms, seq = entry_id.split("-")
    return int(ms), int(seq)


def sorted_ids(ids) -> list[str]:
    """Stream ids in stream order."""
    return sorted(ids, key=id_key)


def entries_table(entries):
    """``[(id, fields), ...]`` (an XRANGE / XREAD reply) as a DataFrame with the id's parts."""
    import pandas as pd

    rows = [{"id": eid, "ms part": int(eid.split("-")[0]), "seq part": int(eid.split("-")[1]),
             "time (UTC)": id_time(eid), **fields} for eid, fields in entries]
    return pd.DataFrame(rows)


def pending_table(pending: list[dict]):
    """An XPENDING extended-form reply as a DataFrame (id, consumer, idle ms, deliveries)."""
    import pandas as pd

    return pd.DataFrame([{"id": p["message_id"], "consumer": p["consumer"],
                          "idle (ms)": p["time_since_delivered"], "deliveries": p["times_delivered"]}
                         for p in pending], columns=["id", "consumer", "idle (ms)", "deliveries"])


def id_ranges(ids: list[str]) -> str:
    """A short text for a sorted list of ids: ``first … last (n ids)``."""
    if not ids:
        return "(none)"
    ids = sorted_ids(ids)
    return ids[0] if len(ids) == 1 else f"{ids[0]} … {ids[-1]} ({len(ids)} ids)"


def human_bytes(n: float) -> str:
    """``1536`` -> ``'1.5 KiB'``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:,.1f} {unit}" if unit != "B" else f"{n:,.0f} B"
        n /= 1024
    return f"{n:,.1f} TiB"
