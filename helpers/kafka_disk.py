"""Notebook 04's look at the broker's disk: the course broker's data dir, a topic's partition
directories and ``.log`` segment files, their bytes beside what the broker reports, and how the
log-start offset moves as time-based retention deletes whole segments.

Everything here reads files only when the broker runs on this machine (:func:`local_data_dir` says
why not otherwise). Topics, offsets and the reading and ordering plumbing are in :mod:`helpers.kafka_log`.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

from kafka.admin import OffsetSpec

from . import config
from .kafka_log import offsets


def local_data_dir() -> tuple[Path | None, str]:
    """``(data_dir, why)``: the course broker's data dir when KAFKA_BOOTSTRAP is that broker, else None."""
    from .services import get_lab

    kafka = get_lab().kafka
    bootstrap = config.kafka_bootstrap()
    if os.environ.get("KAFKA_BOOTSTRAP") and bootstrap != kafka.bootstrap:
        return None, (f"KAFKA_BOOTSTRAP points to {bootstrap}, an external broker: its log files are on "
                      "another machine, so this notebook cannot measure them")
    if not kafka.data_dir.is_dir():
        return None, f"the course broker's data dir {kafka.data_dir} does not exist on this machine"
    return kafka.data_dir, f"the course broker (pid {kafka.pid}) writes its logs under {kafka.data_dir}"


def partition_dirs(data_dir: Path, topic: str) -> dict[int, Path]:
    """``{partition: directory}`` of ``topic`` under the data dir (``<topic>-<partition>``)."""
    pattern = re.compile(re.escape(topic) + r"-(\d+)$")
    found = {}
    for path in data_dir.iterdir():
        m = pattern.match(path.name)
        if m and path.is_dir():
            found[int(m.group(1))] = path
    return dict(sorted(found.items()))


def log_files(data_dir: Path, topic: str) -> dict[int, list[tuple[str, int]]]:
    """``{partition: [(segment file name, bytes), ...]}`` for the ``.log`` segment files of ``topic``."""
    out = {}
    for p, path in partition_dirs(data_dir, topic).items():
        files = []
        for f in sorted(path.glob("*.log")):
            try:
                files.append((f.name, f.stat().st_size))
            except FileNotFoundError:  # a segment deleted while we looked
                pass
        out[p] = files
    return out


def log_bytes(data_dir: Path, topic: str) -> dict[int, int]:
    """``{partition: bytes}``: the sum of the ``.log`` segment files in each partition directory."""
    return {p: sum(size for _, size in files) for p, files in log_files(data_dir, topic).items()}


def broker_reported_bytes(admin, topic: str) -> dict[int, int]:
    """``{partition: bytes}`` as the broker itself reports them (DescribeLogDirs)."""
    sizes = {}
    for broker in admin.describe_log_dirs([topic]):
        for log_dir in broker["log_dirs"]:
            for t in log_dir["topics"]:
                if t["name"] == topic:
                    for part in t["partitions"]:
                        sizes[part["partition_index"]] = sizes.get(part["partition_index"], 0) + part["partition_size"]
    return dict(sorted(sizes.items()))


# --- time-based retention ----------------------------------------------------------------------
def watch_log_start(admin, topic: str, done, timeout: float, data_dir: Path | None = None,
                    interval: float = 0.5, on_sample=None) -> list[dict]:
    """Sample log-start / log-end offsets (and the segment files: how many, and the base offset each
    one is named after) until ``done(rows)`` or ``timeout`` s."""
    rows, t0 = [], time.monotonic()
    while True:
        now = round(time.monotonic() - t0, 1)
        start, end = offsets(admin, topic, OffsetSpec.EARLIEST), offsets(admin, topic)
        files = log_files(data_dir, topic) if data_dir else {}
        for p in sorted(end):
            rows.append({"seconds": now, "partition": p, "log-start offset": start[p], "log-end offset": end[p],
                         "segment files": len(files[p]) if p in files else None,
                         "segment bases": [int(name.split(".")[0]) for name, _ in files.get(p, [])]})
        if on_sample:
            on_sample(rows)
        if done(rows) or now > timeout:
            return rows
        time.sleep(interval)


def log_start_moves(rows: list[dict]) -> list[dict]:
    """Every move of a partition's log-start offset in :func:`watch_log_start`'s samples: when, from
    where to where, and whether the new log start is the base offset of a segment file seen on disk
    (None when the files could not be listed): whole segments deleted, not single records."""
    bases: dict[int, set[int]] = {}
    for row in rows:
        bases.setdefault(row["partition"], set()).update(row.get("segment bases") or [])
    last: dict[int, int] = {}
    moves = []
    for row in rows:
        p, start = row["partition"], row["log-start offset"]
        if start > last.get(p, 0):
            moves.append({"seconds": row["seconds"], "partition": p, "from": last.get(p, 0), "to": start,
                          "at a segment base": (start in bases[p]) if bases[p] else None})
        last[p] = max(last.get(p, 0), start)
    return moves
