"""Which notebook runs are alive, so a cleanup deletes only the names of dead runs.

Every :func:`helpers.config.namespace` registers its run here: a key
``streamslab:_live:<learner>:<notebook>:<run id>`` on the course's Redis with a short TTL, refreshed
by one daemon thread of this process (the kernel). When the kernel dies (or is SIGKILLed) the key
expires within :data:`TTL` seconds and the run counts as dead; when the same process opens a newer
run of the same notebook (Run All again), the older run is retired at once.

Two runs of one notebook under the same learner name can therefore work side by side: a setup cell's
``cleanup_*(..., previous_runs=True)`` deletes this run's names and those of dead runs only.
"""

from __future__ import annotations

import atexit
import json
import os
import socket
import threading
import time
from contextlib import suppress

from . import config

TTL = 15.0  # seconds a run stays live without a heartbeat
BEAT = 3.0  # seconds between heartbeats
LIVE_PREFIX = f"{config.COURSE}:_live:"

_lock = threading.Lock()
_runs: dict[tuple[str, str], tuple[config.Namespace, str]] = {}  # (learner, notebook) -> (ns, redis url)
_clients: dict[str, object] = {}
_thread: threading.Thread | None = None


def live_key(ns: config.Namespace) -> str:
    """The heartbeat key of one run."""
    return f"{LIVE_PREFIX}{ns.learner}:{ns.notebook}:{ns.run_id}"


def _client(url: str):
    client = _clients.get(url)
    if client is None:
        from .clients import redis_client

        client = _clients[url] = redis_client(url, socket_connect_timeout=1, socket_timeout=2)
    return client


def _beat(ns: config.Namespace, url: str) -> bool:
    """Write one heartbeat; False when Redis is not reachable (the run then looks dead to others)."""
    value = json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "at": time.time()})
    try:
        _client(url).set(live_key(ns), value, px=int(TTL * 1000))
        return True
    except Exception:  # noqa: BLE001  (Redis down or not Redis: the notebook's own calls will say so)
        return False


def _retire(ns: config.Namespace, url: str) -> None:
    with suppress(Exception):
        _client(url).delete(live_key(ns))


def _loop() -> None:
    while True:
        time.sleep(BEAT)
        with _lock:
            current = list(_runs.values())
        for ns, url in current:
            _beat(ns, url)


def register(ns: config.Namespace, url: str | None = None) -> bool:
    """Mark ``ns`` live now and keep it live while this process runs; retire this process's older run
    of the same notebook. Returns whether the heartbeat reached Redis."""
    global _thread
    try:
        url = url or config.redis_url()
    except Exception:  # noqa: BLE001  (no usable endpoint: require_redis() will say why)
        return False
    with _lock:
        old = _runs.get((ns.learner, ns.notebook))
        _runs[(ns.learner, ns.notebook)] = (ns, url)
        if _thread is None:
            _thread = threading.Thread(target=_loop, name="streamslab-heartbeat", daemon=True)
            _thread.start()
    if old is not None and old[0].run_id != ns.run_id:
        _retire(*old)
    return _beat(ns, url)


def live_runs(r, ns: config.Namespace) -> set[str] | None:
    """Run ids of ``ns``'s notebook (same learner) that are live on the server, or None if unknown."""
    try:
        pattern = f"{LIVE_PREFIX}{ns.learner}:{ns.notebook}:*"
        return {key.rsplit(":", 1)[1] for key in _decoded(r.scan_iter(match=pattern, count=500))}
    except Exception:  # noqa: BLE001  (unknown liveness: callers then delete this run's names only)
        return None


def dead_filter(r, ns: config.Namespace):
    """A predicate: True for a name (key, topic or group) of this run or of a dead run of its notebook.

    The live runs are read once; when they cannot be read (``r`` is None or Redis is down) only this
    run's own names count as deletable: never guess that another run is dead.
    """
    live = live_runs(r, ns) if r is not None else None

    def ok(name: str) -> bool:
        run = ns.run_of(name)
        return run is not None and (run == ns.run_id or (live is not None and run not in live))

    return ok


def liveness_client(ns: config.Namespace):
    """The Redis client the heartbeat of ``ns`` uses (for callers without one, e.g. Kafka cleanup)."""
    with _lock:
        entry = _runs.get((ns.learner, ns.notebook))
    url = entry[1] if entry else None
    try:
        return _client(url or config.redis_url())
    except Exception:  # noqa: BLE001
        return None


def _decoded(keys):
    for key in keys:
        yield key.decode() if isinstance(key, bytes) else key


@atexit.register
def _retire_all() -> None:
    """A kernel that shuts down normally retires its runs at once (a killed one expires after TTL)."""
    with _lock:
        current = list(_runs.values())
        _runs.clear()
    for ns, url in current:
        _retire(ns, url)
