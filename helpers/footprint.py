"""Plumbing for notebook 04's backlog experiment (claim C20): where the bytes of a backlog live.

The notebook shows the lesson's own calls (``producer.send``, ``XADD``, ``MEMORY USAGE``, the
``XADD`` that a full Redis refuses). This module measures around them:

- :func:`broker_process` — the course broker's JVM as a ``psutil.Process`` (its RSS), or why not;
- :func:`page_cache_bytes` — how many bytes of some files the kernel's page cache holds right now
  (``mincore(2)``, the call ``fincore`` uses): Kafka's recent log segments live there, outside RSS;
- :func:`snapshot` — one row of the backlog table (RSS, used_memory, ``.log`` bytes, page cache);
- :func:`memory_verdict` — the C20 verdict from the measured growths, decided in one place;
- :func:`discard` — stop a sacrificial redis-server and delete its data dir.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import mmap
import os
import shutil
from pathlib import Path

MB = 2**20


def broker_process():
    """``(process, why)``: the course broker's JVM (``psutil.Process``) when KAFKA_BOOTSTRAP is that
    broker on this machine, else ``(None, the reason)``."""
    import psutil

    from . import config
    from .services import get_lab

    kafka = get_lab().kafka
    if os.environ.get("KAFKA_BOOTSTRAP") and config.kafka_bootstrap() != kafka.bootstrap:
        return None, (f"KAFKA_BOOTSTRAP points to {config.kafka_bootstrap()}, an external broker: its "
                      "process runs on another machine, so this notebook cannot read its memory")
    pid = kafka.pid
    if pid is None:
        return None, "the course broker is not running on this machine (run `make services-up`)"
    try:
        return psutil.Process(pid), f"the course broker's JVM, pid {pid}"
    except psutil.Error as exc:
        return None, f"cannot read the broker process (pid {pid}): {exc}"


def rss(process) -> int | None:
    """Resident set size of ``process`` in bytes (None when it cannot be read)."""
    import psutil

    try:
        return int(process.memory_info().rss) if process is not None else None
    except psutil.Error:
        return None


def _libc():
    libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p]
    return libc


def page_cache_bytes(paths) -> int | None:
    """Bytes of ``paths`` resident in the OS page cache now (resident pages x page size, as ``fincore``
    counts them), or None where ``mincore`` is not available. Mapping a file does not read it: only pages
    the kernel already holds are counted."""
    try:
        libc = _libc()
    except (OSError, AttributeError):
        return None
    page, total = mmap.PAGESIZE, 0
    for path in paths:
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:  # a segment deleted while we looked
            continue
        try:
            size = os.fstat(fd).st_size
            if size == 0:
                continue
            addr = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
            if addr is None or addr == ctypes.c_void_p(-1).value:
                return None
            try:
                pages = (size + page - 1) // page
                vec = ctypes.create_string_buffer(pages)
                if libc.mincore(addr, size, vec) != 0:
                    return None
                total += page * sum(b & 1 for b in vec.raw[:pages])
            finally:
                libc.munmap(addr, size)
        finally:
            os.close(fd)
    return total


def segment_files(data_dir: Path, topic: str) -> list[Path]:
    """Every ``.log`` segment file of ``topic`` under the broker's data dir."""
    from .kafka_disk import partition_dirs

    return [f for d in partition_dirs(data_dir, topic).values() for f in sorted(d.glob("*.log"))]


def snapshot(r, stream: str, broker, data_dir: Path | None, topic: str, records: int) -> dict:
    """One row of the backlog table after ``records`` records: the broker's RSS, Redis's
    ``used_memory`` (INFO memory), the Stream's ``MEMORY USAGE``, the topic's ``.log`` bytes on disk
    and how many of them the page cache holds (None where a figure cannot be measured here)."""
    files = segment_files(data_dir, topic) if data_dir else []
    on_disk = sum(f.stat().st_size for f in files if f.exists()) if data_dir else None
    return {"records": records, "broker RSS": rss(broker), "Redis used_memory": int(r.info("memory")["used_memory"]),
            "Stream MEMORY USAGE": int(r.memory_usage(stream, samples=0) or 0), ".log bytes on disk": on_disk,
            ".log bytes in page cache": page_cache_bytes(files) if data_dir else None}


def discard(server) -> None:
    """Stop a sacrificial redis-server (``lab.extra_redis(...)``) and delete its data dir."""
    server.stop(timeout=10)
    shutil.rmtree(server.home, ignore_errors=True)


def memory_verdict(redis_growth: int, broker_growth: int | None, payload: int) -> str:
    """C20 for one backlog of ``payload`` bytes, measured over the same records on both sides:

    - "confirmed": Redis's used_memory grew by at least half the payload AND the broker's RSS grew
      by less than a quarter of what Redis grew;
    - "refuted": the broker's RSS grew at least as much as Redis's memory;
    - "inconclusive": anything between, or the broker could not be measured (None).
    """
    if broker_growth is None or payload <= 0:
        return "inconclusive"
    if broker_growth >= redis_growth:
        return "refuted"
    if redis_growth >= payload / 2 and broker_growth < redis_growth / 4:
        return "confirmed"
    return "inconclusive"
