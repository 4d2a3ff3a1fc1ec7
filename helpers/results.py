"""Record each experiment's headline figure against a claim id, for the claims ledger.

Every record carries the claim id (C01-C23, from the article's claims list), the figure, its unit,
the notebook, machine info and time. Records append to ``.course/results.jsonl``
(``COURSE_RESULTS`` overrides the path); :func:`load` reads them back as a DataFrame.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

from . import config

CLAIMS = {
    "C01": "A Pub/Sub message published while nobody is subscribed is gone.",
    "C02": "Pub/Sub latency is sub-millisecond.",
    "C03": "A subscriber that disconnects for a window misses every message published during it.",
    "C04": "Pub/Sub has no consumer groups: every subscriber gets every message.",
    "C05": "No backpressure: a subscriber that cannot keep up is disconnected when its output buffer fills.",
    "C06": "A List worker (LPUSH/BRPOP) that pops a job and crashes loses the job.",
    "C07": "Unacknowledged Stream entries stay pending and can be claimed by another consumer.",
    "C08": "Consumers in one Stream group get different entries; separate groups each get all.",
    "C09": "A single Redis handles stream workloads in the tens of thousands of ops per second.",
    "C10": "Streams live in memory; MAXLEN/MINID trimming discards entries a replay then misses.",
    "C11": "In Redis Cluster one stream lives on one shard.",
    "C12": "Kafka keeps events whether or not they were consumed.",
    "C13": "Kafka orders within a partition only; partitions give parallelism.",
    "C14": "Independent consumer groups read one topic; a new group can start from the earliest event.",
    "C15": "Kafka's batching adds small delays; lowering linger.ms trades throughput for latency.",
    "C16": "Kafka sustains hundreds of thousands to millions of events per second.",
    "C17": "A single Redis Stream message has sub-millisecond latency.",
    "C18": "With RDB a crash loses writes since the last snapshot; AOF narrows the window.",
    "C19": "Kafka with acks=all and replication loses no acknowledged record when a broker fails.",
    "C20": "Kafka absorbs a backlog on disk; a Redis Stream backlog grows memory.",
    "C21": "Changing a topic's partition count changes which partition a key maps to.",
    "C22": "A consumer crash in Kafka leads to redelivery from the last committed offset.",
    "C23": "Kafka as backbone + Redis as serving layer: the Redis view can be rebuilt by replay.",
}


def results_path() -> Path:
    return Path(os.environ.get("COURSE_RESULTS") or config.course_dir() / "results.jsonl")


def machine_info() -> dict:
    import psutil

    return {"host": platform.node(), "os": f"{platform.system()} {platform.release()}",
            "python": platform.python_version(), "cpus": os.cpu_count(),
            "memory_gb": round(psutil.virtual_memory().total / 2**30, 1), "quick": config.quick()}


def record(claim: str, metric: str, value: float, unit: str, *, notebook: str,
           details: dict | None = None, verdict: str | None = None) -> dict:
    """Append one measured figure for ``claim`` (e.g. ``record("C03", "missed", 42, "messages", notebook="01")``)."""
    if claim not in CLAIMS:
        raise ValueError(f"unknown claim id {claim!r}; use one of C01-C23")
    if verdict not in (None, "confirmed", "refuted", "depends"):
        raise ValueError("verdict must be 'confirmed', 'refuted', 'depends' or None")
    entry = {"claim": claim, "claim_text": CLAIMS[claim], "metric": metric, "value": value, "unit": unit,
             "notebook": notebook, "verdict": verdict, "details": details or {},
             "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": machine_info()}
    path = results_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fh.write(json.dumps(entry, default=str) + "\n")
    return entry


def load():
    """Every recorded figure as a pandas DataFrame (empty when nothing is recorded yet)."""
    import pandas as pd

    path = results_path()
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
    return pd.DataFrame(rows, columns=None if rows else ["claim", "metric", "value", "unit", "notebook", "time"])


def latest(claim: str, metric: str | None = None, notebook: str | None = None) -> dict | None:
    """The newest record for ``claim`` (optionally only ``metric`` and/or ``notebook``), or None."""
    path = results_path()
    if not path.exists():
        return None
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    rows = [r for r in rows if r["claim"] == claim and (metric is None or r["metric"] == metric)
            and (notebook is None or str(r["notebook"]) == notebook)]
    return rows[-1] if rows else None
