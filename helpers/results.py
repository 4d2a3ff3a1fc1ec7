"""Record each experiment's headline figure against a claim id, for the claims ledger.

Every record carries the claim id (C01-C23, from the article's claims list), the figure, its unit,
the notebook, machine info and time. Records append to ``.course/results.jsonl``
(``COURSE_RESULTS`` overrides the path); :func:`load` reads them back as a DataFrame.

A learner's prediction (``helpers.widgets.predict``) is kept in the same file as a record of
``kind="prediction"`` beside the measured figure (:func:`record_prediction`); :func:`predictions`
pairs them for the claims ledger, and :func:`latest` never returns one.
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
    if verdict not in (None, "confirmed", "refuted", "depends", "inconclusive"):
        raise ValueError("verdict must be 'confirmed', 'refuted', 'depends', 'inconclusive' or None")
    entry = {"kind": "measurement", "claim": claim, "claim_text": CLAIMS[claim], "metric": metric, "value": value,
             "unit": unit, "notebook": notebook, "verdict": verdict, "details": details or {},
             "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": machine_info()}
    return _append(entry)


def _append(entry: dict) -> dict:
    path = results_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fh.write(json.dumps(entry, default=str) + "\n")
    return entry


def record_prediction(key: str, value, *, notebook: str, question: str = "", claim: str | None = None,
                      metric: str | None = None, unit: str = "", measured=None, outcome: str | None = None) -> dict:
    """Keep a learner's prediction ``key`` (``"nb01-missed"``) beside the figure it predicts.

    Saved once when the learner makes it, and again by the compare step with ``measured`` and
    ``outcome`` ("as predicted", "close", "surprise"); the newest record per key wins.
    """
    if claim is not None and claim not in CLAIMS:
        raise ValueError(f"unknown claim id {claim!r}; use one of C01-C23 or None")
    return _append({"kind": "prediction", "key": key, "claim": claim, "metric": metric, "value": value,
                    "unit": unit, "notebook": notebook, "question": question, "measured": measured,
                    "outcome": outcome, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")})


def _rows() -> list[dict]:
    path = results_path()
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def predictions(notebook: str | None = None):
    """The newest prediction per (notebook, key) as a DataFrame: what the learner predicted, what
    was measured and the outcome (empty when none was made)."""
    import pandas as pd

    newest: dict[tuple, dict] = {}
    for row in _rows():
        if row.get("kind") == "prediction" and (notebook is None or str(row["notebook"]) == notebook):
            newest[(str(row["notebook"]), row["key"])] = row
    cols = ["notebook", "key", "claim", "question", "value", "measured", "unit", "outcome", "time"]
    return pd.DataFrame([{c: r.get(c) for c in cols} for r in newest.values()], columns=cols)


def load():
    """Every recorded figure as a pandas DataFrame (empty when nothing is recorded yet)."""
    import pandas as pd

    rows = _rows()
    return pd.DataFrame(rows, columns=None if rows else ["kind", "claim", "metric", "value", "unit", "notebook", "time"])


def latest(claim: str, metric: str | None = None, notebook: str | None = None) -> dict | None:
    """The newest measured record for ``claim`` (optionally only ``metric`` and/or ``notebook``), or
    None. Predictions are never returned."""
    rows = [r for r in _rows() if r.get("kind") != "prediction" and r["claim"] == claim
            and (metric is None or r["metric"] == metric) and (notebook is None or str(r["notebook"]) == notebook)]
    return rows[-1] if rows else None
