"""Throwaway clusters on this machine: shared plumbing and discovery.

``Lab.kafka_cluster("nb07", brokers=3)`` (:mod:`.kafka_cluster`) and ``Lab.redis_cluster("nb08",
masters=3)`` (:mod:`.redis_cluster`) start them under ``.course/extra/<kind>-<name>/`` (one data dir
per node, free loopback ports). Each cluster writes ``cluster.json`` (its layout: node ids, ports);
each node keeps its own state file (pid + start time), so a new Python process (``make
services-status`` / ``services-down``) finds them, and only processes the course started are
ever signalled.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import threading
import time
from pathlib import Path

import psutil

from ..errors import ServiceSetupError
from .process import ManagedProcess, port_open, wait_exited

CLUSTER_FILE = "cluster.json"


def pick_ports(count: int, span: tuple[int, int], *, bus_offset: int = 0) -> list[int]:
    """``count`` free loopback ports in ``span`` (random start, so teammates' clusters rarely collide);
    with ``bus_offset`` the port + offset must be free as well."""
    lo, hi = span
    start = random.randrange(lo, hi)
    ports: list[int] = []
    for i in range(hi - lo):
        port = lo + (start - lo + i) % (hi - lo)
        if not port_open(port) and not (bus_offset and port_open(port + bus_offset)):
            ports.append(port)
            if len(ports) == count:
                return ports
    raise ServiceSetupError(f"no {count} free ports in {lo}-{hi}; stop other servers or free some ports.")


def run_parallel(fn, items) -> list:
    """``fn(item)`` for every item in threads; re-raises the first error after all have finished."""
    results, errors = [None] * len(items), []

    def run(i, item):
        try:
            results[i] = fn(item)
        except BaseException as exc:  # collected and re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i, it), daemon=True) for i, it in enumerate(items)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results


def stop_many(procs: list[ManagedProcess], timeout: float = 15.0, sig: int = signal.SIGTERM) -> dict:
    """Signal every process at once (SIGTERM), SIGKILL whatever is left after ``timeout``.
    Returns ``{name: pid or None}``."""
    pids = {p.name: p.signal(sig) for p in procs}
    deadline = time.monotonic() + timeout
    for p in procs:
        pid = pids[p.name]
        if pid and not wait_exited(pid, max(0.1, deadline - time.monotonic())):
            os.kill(pid, signal.SIGKILL)
            wait_exited(pid, 10)
    return pids


def rss_bytes(pid: int | None) -> int:
    try:
        return psutil.Process(pid).memory_info().rss if pid else 0
    except psutil.Error:
        return 0


# --- discovery -----------------------------------------------------------------------------------
def cluster_dir(extra: Path, kind: str, name: str) -> Path:
    return extra / f"{kind}-{name}"


def find_clusters(extra: Path) -> dict:
    """Every cluster whose ``cluster.json`` is under ``extra`` (running or not), by ``<kind>-<name>``."""
    from .kafka_cluster import KafkaCluster
    from .redis_cluster import RedisCluster

    found: dict = {}
    for path in sorted(extra.glob(f"*/{CLUSTER_FILE}")):
        try:
            kind = json.loads(path.read_text()).get("kind")
            cls = {"kafka": KafkaCluster, "redis": RedisCluster}[kind]
            found[path.parent.name] = cls.load(path.parent)
        except (OSError, ValueError, KeyError):
            continue  # a half-written or foreign file: not ours to touch
    return found


def get_or_start(extra: Path, kind: str, name: str, build, matches):
    """The running cluster ``<kind>-<name>`` if it ``matches`` the request, else a fresh one from
    ``build(home)``: a partly running one gets its stopped nodes started again; a stopped or
    differently shaped one is stopped, its data removed, and built anew."""
    home = cluster_dir(extra, kind, name)
    cluster = find_clusters(extra).get(home.name)
    if cluster is not None and matches(cluster) and any(n.running for n in cluster.nodes):
        cluster.start()
        return cluster
    if cluster is not None:
        cluster.stop(remove_data=True)
    shutil.rmtree(home, ignore_errors=True)
    last = None
    for _attempt in range(3):  # a teammate may grab a port between the pick and the bind: pick again
        cluster = build(home)
        try:
            cluster.start()
            return cluster
        except ServiceSetupError as exc:
            last = exc
            cluster.stop(remove_data=True)
            if not any(s in str(exc) for s in ("Address already in use", "BindException", "already taken")):
                raise
    raise last
