"""Plumbing for notebook 07 (durability under real crashes): sacrificial Redis servers per
persistence setting, counting acknowledged-but-lost writes by id, the one results table, and
the throwaway servers' owner: one kernel at a time runs the notebook's servers, and every server
it started is stopped by its cleanup cell, by its exit, or by the next run's setup once it is dead.

The lesson itself (the XADD loop, the kill, the restart, the XRANGE) stays in the notebook.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import time
from collections.abc import Iterable

import psutil

from .errors import CourseError
from .measure import percentiles
from .services import Lab
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


#: the prediction of section 1: which settings lose acknowledged writes after kill -9 of the server
REDIS_LOSS_ANSWERS: dict[str, list[str]] = {
    "none of them": [],
    "only no persistence": ["no persistence"],
    "no persistence and both RDB settings": ["no persistence", "RDB save 60 1", "RDB save 1 1"],
    "all but AOF always": [label for label in REDIS_SETTINGS if label != "AOF always"],
    "all five": list(REDIS_SETTINGS),
}


def answer(lost: Iterable[str], answers: dict[str, list[str]]) -> str:
    """The answer of ``answers`` whose list is exactly ``lost`` (the configurations that lost
    acknowledged writes), else ``"only <those>"`` spelled out: what a prediction is compared with."""
    lost = sorted(lost)
    return next((a for a, labels in answers.items() if sorted(labels) == lost), "only " + ", ".join(lost))


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
    shutil.rmtree(home, ignore_errors=True)
    return lab.extra_redis(name, **REDIS_SETTINGS[label])  # a free port (picked again if a bind loses a race)


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


def redis_tally(run: dict, kept_seqs: list[int]) -> dict:
    """Counts for one crash run: ``run`` has ``acked`` {seq: seconds since start}, ``killed_at``,
    ``seconds`` and ``latencies_ms``; ``kept_seqs`` are the seq fields found after the restart."""
    acked, kept_all = run["acked"], set(kept_seqs)
    lost = sorted(set(acked) - kept_all)
    first_lost_at = acked[lost[0]] if lost else None
    latency = percentiles(run["latencies_ms"], (50, 99))
    return {
        "acknowledged": len(acked), "kept": len(set(acked) & kept_all), "lost": len(lost),
        "duplicated": len(kept_seqs) - len(kept_all),
        "unacknowledged_kept": len(kept_all - set(acked)),  # the XADD in flight at the kill, applied
        "lost_ids": lost, "lost_ranges": id_ranges(lost),
        "window_ms": round((run["killed_at"] - first_lost_at) * 1000, 1) if lost else 0.0,
        "writes_per_s": round(len(acked) / run["seconds"]) if run["seconds"] else 0,
        "p50_ms": round(latency.get("p50", float("nan")), 3),
        "p99_ms": round(latency.get("p99", float("nan")), 3),
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


# --- one run at a time owns the throwaway servers -------------------------------------------------
def owner_path(lab: Lab):
    return lab.home / "extra" / f"{NOTEBOOK}.owner.json"


def owner(lab: Lab) -> dict | None:
    """The run that owns this notebook's throwaway servers, if its kernel is still alive."""
    try:
        info = json.loads(owner_path(lab).read_text())
        if abs(psutil.Process(info["pid"]).create_time() - info["create_time"]) < 1.0:
            return info
    except (OSError, ValueError, KeyError, psutil.Error):
        pass
    return None  # no record, or its process is gone (a pid of a later process does not count)


def _mine(info: dict | None) -> bool:
    return info is not None and info["pid"] == os.getpid()


def take_over(lab: Lab, ns, wait: float = 10.0) -> dict:
    """The setup cell: stop the throwaway servers an earlier, dead run (or this kernel's own earlier
    run) left behind, and record this kernel as their owner. While another live kernel runs this
    notebook, its servers are left alone: after ``wait`` seconds (a restarting kernel exits within
    them) one sentence says what to do. Returns ``{name: pid stopped}``."""
    deadline = time.monotonic() + wait
    while (other := owner(lab)) is not None and not _mine(other):
        if time.monotonic() > deadline:
            raise CourseError(
                f"Notebook 07 is running in another kernel (pid {other['pid']}, learner {other['learner']}, run {other['run']}), which owns the "
                "throwaway Redis servers and Kafka cluster; run its cleanup cell or shut that kernel down, then "
                "run this cell again.")
        time.sleep(0.2)
    stopped = stop_everything(lab)
    path = owner_path(lab)
    path.parent.mkdir(parents=True, exist_ok=True)
    me = psutil.Process()
    path.write_text(json.dumps({"pid": me.pid, "create_time": me.create_time(), "run": ns.run_id,
                                "learner": ns.learner, "at": time.time()}))
    if lab not in _REGISTERED:  # the kernel stops them on exit too, if the cleanup cell never runs
        _REGISTERED.append(lab)
    if len(_REGISTERED) == 1:
        atexit.register(_stop_at_exit)
    return stopped


def release(lab: Lab) -> dict:
    """The cleanup cell: stop every throwaway server of this notebook and delete their data, unless
    another live kernel has taken them over since. Returns ``{name: pid stopped}``."""
    other = owner(lab)
    if other is not None and not _mine(other):
        return {}
    stopped = stop_everything(lab)
    owner_path(lab).unlink(missing_ok=True)
    return stopped


_REGISTERED: list[Lab] = []


def _stop_at_exit() -> None:
    """At kernel exit: release the servers this kernel still owns, or that nobody owns any more (a
    cell run again after the cleanup cell); a later run's are not touched."""
    for lab in _REGISTERED:
        info = owner(lab)
        if info is None or _mine(info):
            release(lab)
