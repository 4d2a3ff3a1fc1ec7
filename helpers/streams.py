"""Plumbing for notebook 03 (Redis Streams).

The lesson's commands (XADD, XREADGROUP, XPENDING, XAUTOCLAIM, XTRIM, MEMORY USAGE) stay in the
notebook. This module holds what the notebook does not need to show: the consumer *process* that
the crash experiment SIGKILLs (:func:`doomed_consumer`), polling with a deadline, and small
converters that turn Redis replies into pandas tables.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone

from .clients import redis_client
from .workers import wait_until  # noqa: F401 re-exported: the notebook calls streams.wait_until


def doomed_consumer(redis_url: str, stream: str, group: str, consumer: str, report_key: str,
                    handled_key: str, count: int = 10, handle_first: int = 0, block_ms: int = 2000,
                    sleep_seconds: float = 60.0) -> None:
    """A consumer process that reads one batch, handles part of it, and never acknowledges.

    It calls ``XREADGROUP GROUP group consumer COUNT count BLOCK block_ms STREAMS stream >``,
    handles (``HINCRBY handled_key id 1``) the first ``handle_first`` entries of the batch, writes
    the ids it read to ``report_key`` (a JSON list) and then sleeps ``sleep_seconds``: the notebook
    waits for the report and SIGKILLs it there, so the crash point is deterministic.
    """
    r = redis_client(redis_url)
    reply = r.xreadgroup(group, consumer, {stream: ">"}, count=count, block=block_ms)
    entries = reply[0][1] if reply else []
    ids = [entry_id for entry_id, _ in entries]
    for entry_id in ids[:handle_first]:
        r.hincrby(handled_key, entry_id, 1)       # the work's effect... but no XACK follows
    r.set(report_key, json.dumps({"read": ids, "handled": ids[:handle_first]}))
    time.sleep(sleep_seconds)                     # holding the entries: the SIGKILL lands here


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
