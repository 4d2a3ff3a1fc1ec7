"""Plumbing for notebook 07 (durability under real crashes): sacrificial Redis servers per
persistence setting, counting acknowledged-but-lost writes by id, the one results table, and
stopping every throwaway server this notebook starts (also after an interrupted run).

The lesson itself (the XADD loop, the kill, the restart, the XRANGE) stays in the notebook.
"""

from __future__ import annotations

import atexit
import os
import random
import shutil
from collections.abc import Iterable

from .errors import ServiceSetupError
from .services import Lab
from .services.process import free_port
from .services.redis_server import RedisServer

NOTEBOOK = "nb07"
CLUSTER = "nb07"  # the 3-broker Kafka cluster: .course/extra/kafka-nb07/

#: label -> RedisServer settings; every server starts empty on its own data dir
REDIS_SETTINGS: dict[str, dict] = {
    "no persistence": {"save": "", "appendonly": False},
    "RDB save 60 1": {"save": "60 1", "appendonly": False},
    "RDB save 1 1": {"save": "1 1", "appendonly": False},
    "AOF everysec": {"save": "", "appendonly": True, "options": {"appendfsync": "everysec"}},
    "AOF always": {"save": "", "appendonly": True, "options": {"appendfsync": "always"}},
}


def redis_name(label: str) -> str:
    """``"AOF always"`` -> ``"nb07-aof-always"`` (the extra server's name; its dir is .course/extra/redis-<name>)."""
    return f"{NOTEBOOK}-" + "".join(c if c.isalnum() else "-" for c in label.lower()).strip("-")


def fresh_redis(lab: Lab, label: str) -> RedisServer:
    """A sacrificial redis-server for ``label`` (see :data:`REDIS_SETTINGS`) with an EMPTY data dir:
    a leftover of an earlier run is stopped and its files removed first."""
    name = redis_name(label)
    home = lab.home / "extra" / f"redis-{name}"
    old = lab.extras.pop(f"redis-{name}", None) or RedisServer(f"redis-{name}", home, 0)
    old.stop()
    for attempt in range(3):  # a teammate's server may take the port between the pick and the bind
        shutil.rmtree(home, ignore_errors=True)
        try:
            return lab.extra_redis(name, port=free_port(random.randrange(16400, 16900)), **REDIS_SETTINGS[label])
        except ServiceSetupError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def id_ranges(ids: Iterable[int]) -> str:
    """``[3, 4, 5, 9]`` -> ``"3-5, 9"`` (how a loss window reads best)."""
    ids = sorted(ids)
    if not ids:
        return "none"
    parts, start, prev = [], ids[0], ids[0]
    for i in ids[1:] + [None]:
        if i is not None and i == prev + 1:
            prev = i
            continue
        parts.append(f"{start}" if start == prev else f"{start}-{prev}")
        if i is not None:
            start = prev = i
    return ", ".join(parts)


def percentile(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, max(0, round(p / 100 * len(values)) - 1))] if values else float("nan")


def redis_tally(run: dict, kept_seqs: list[int]) -> dict:
    """Counts for one crash run: ``run`` has ``acked`` {seq: seconds since start}, ``killed_at``,
    ``seconds`` and ``latencies_ms``; ``kept_seqs`` are the seq fields found after the restart."""
    acked, kept_all = run["acked"], set(kept_seqs)
    lost = sorted(set(acked) - kept_all)
    first_lost_at = acked[lost[0]] if lost else None
    return {
        "acknowledged": len(acked), "kept": len(set(acked) & kept_all), "lost": len(lost),
        "duplicated": len(kept_seqs) - len(kept_all),
        "unacknowledged_kept": len(kept_all - set(acked)),  # the XADD in flight at the kill, applied
        "lost_ids": lost, "lost_ranges": id_ranges(lost),
        "window_ms": round((run["killed_at"] - first_lost_at) * 1000, 1) if lost else 0.0,
        "writes_per_s": round(len(acked) / run["seconds"]) if run["seconds"] else 0,
        "p50_ms": round(percentile(run["latencies_ms"], 50), 3),
        "p99_ms": round(percentile(run["latencies_ms"], 99), 3),
    }


# --- the one table -------------------------------------------------------------------------------
COLUMNS = ["system", "configuration", "crash", "acknowledged", "kept", "lost", "duplicated", "refused",
           "latency cost", "status", "claim"]


def row(system: str, configuration: str, crash: str, counts: dict, cost: str, claim: str) -> dict:
    """One row of the durability table; ``status`` is OK when nothing acknowledged was lost."""
    return {"system": system, "configuration": configuration, "crash": crash,
            "acknowledged": counts["acknowledged"], "kept": counts["kept"], "lost": counts["lost"],
            "duplicated": counts.get("duplicated", 0), "refused": counts.get("refused", 0),
            "latency cost": cost, "status": "OK" if counts["lost"] == 0 else "FAILED", "claim": claim}


def record_rows(rows: list[dict], verdicts: dict[int, str | None]) -> list[dict]:
    """``results.record`` every row against its claim (C18 / C19); ``verdicts`` by row index."""
    from . import results

    out = []
    for i, r in enumerate(rows):
        out.append(results.record(
            r["claim"], f"acknowledged writes lost: {r['system']}, {r['configuration']}, {r['crash']}",
            r["lost"], "writes", notebook="07", verdict=verdicts.get(i),
            details={k: r[k] for k in ("acknowledged", "kept", "duplicated", "refused", "latency cost")}))
    return out


# --- every throwaway server of this notebook --------------------------------------------------------
def throwaway(lab: Lab) -> dict:
    """This notebook's sacrificial Redis servers and Kafka cluster, found on disk (running or not)."""
    found = {name: proc for name, proc in lab._extra_from_disk().items() if name.startswith(f"redis-{NOTEBOOK}-")}
    found.update({name: c for name, c in lab._clusters_from_disk().items() if name == f"kafka-{CLUSTER}"})
    return found


def stop_everything(lab: Lab, remove_data: bool = True) -> dict:
    """Stop (and by default delete the data of) every throwaway server of this notebook.
    Returns ``{name: pid stopped or None}``; safe to call in any state, any number of times."""
    stopped = {}
    for name, thing in throwaway(lab).items():
        if hasattr(thing, "nodes"):
            stopped.update(thing.stop(remove_data=remove_data))
        else:
            stopped[name] = thing.stop()
            lab.extras.pop(name, None)
            if remove_data:
                shutil.rmtree(thing.home, ignore_errors=True)
    return stopped


def still_running(lab: Lab) -> list[str]:
    """Names of this notebook's throwaway servers that still have a live process."""
    names = []
    for thing in throwaway(lab).values():
        procs = thing.nodes if hasattr(thing, "nodes") else [thing]
        names += [p.name for p in procs if p.running]
    return names


def _started_here(proc) -> bool:
    """True when ``proc`` runs as a child of this Python process (this kernel started it)."""
    import psutil

    try:
        return proc.pid is not None and psutil.Process(proc.pid).ppid() == os.getpid()
    except psutil.Error:
        return False


def stop_mine(lab: Lab) -> list[str]:
    """Stop this notebook's throwaway servers that THIS process started (never another kernel's)."""
    stopped = []
    for name, thing in throwaway(lab).items():
        procs = thing.nodes if hasattr(thing, "nodes") else [thing]
        if any(_started_here(p) for p in procs):
            thing.stop()
            stopped.append(name)
    return stopped


_REGISTERED: list[Lab] = []


def stop_at_exit(lab: Lab) -> None:
    """Also stop them when the kernel exits (restart or shutdown) without running the cleanup cell;
    only the servers this kernel started, so a late exit never stops a newer run's servers."""
    if not _REGISTERED:
        atexit.register(lambda: [stop_mine(one) for one in _REGISTERED])
    if lab not in _REGISTERED:
        _REGISTERED.append(lab)
