"""The event log of a crash experiment (notebooks 02 and 03), kept in Redis in the notebook's namespace.

Every worker or consumer, in a thread or in a process that may be SIGKILLed, appends what it does
to one Redis stream: ``worker`` (or consumer), ``event``, ``job`` (or entry id) and ``t`` (the Unix
time it happened, taken in that process). The notebook adds the ``SIGKILL`` with :func:`sigkill`.
So the story of a process that no longer exists can still be read back: as a table per job
(:func:`table`) or as the rows of a swimlane chart (:func:`lanes`, drawn by ``charts.swimlane``).
"""

from __future__ import annotations

import time

from .workers import wait_until


def log_event(r, log: str, worker: str, event: str, job: str = "", t: float | None = None, **extra) -> None:
    """Append one event (at time ``t``, default now; ``extra`` fields too) to the experiment's log."""
    r.xadd(log, {"worker": worker, "event": event, "job": job, "t": f"{t or time.time():.6f}",
                 **{k: str(v) for k, v in extra.items()}})


def hello(r, log: str, worker: str) -> None:
    """A worker's first words: its name on its connection (``CLIENT LIST`` shows it) and ``ready``."""
    r.client_setname(worker)
    log_event(r, log, worker, "ready", client_id=r.client_id())


def sigkill(r, log: str, proc, worker: str) -> int:
    """SIGKILL ``proc`` (a real crash), log the kill with the time it was sent; returns the exit code (-9)."""
    t = time.time()
    returncode = proc.kill()
    log_event(r, log, worker, "SIGKILL", t=t)
    return returncode


def events(r, log: str) -> list[dict]:
    """Every event of the log, oldest first."""
    return [fields for _, fields in r.xrange(log)]


def wait_for_event(r, log: str, worker: str, event: str, nth: int = 1, timeout: float = 20) -> str:
    """Wait until ``worker`` has logged ``event`` ``nth`` times; return that event's job id."""
    def found():
        hits = [e["job"] for e in events(r, log) if e["worker"] == worker and e["event"] == event]
        return hits[nth - 1] if len(hits) >= nth else None
    return wait_until(found, timeout, f"{worker} to log {event!r} #{nth}")


def wait_ready(r, log: str, names: list[str], timeout: float = 20) -> None:
    """Wait until every worker in ``names`` has started and logged ``ready``."""
    wait_until(lambda: set(names) <= {e["worker"] for e in events(r, log) if e["event"] == "ready"},
               timeout, f"workers {names} to start")


def client_ids(r, log: str, names) -> list[str]:
    """The Redis client ids the workers ``names`` reported when they started (for ``CLIENT LIST ID``)."""
    return [e["client_id"] for e in events(r, log) if e["event"] == "ready" and e["worker"] in set(names)]


def table(r, log: str, jobs):
    """The events of ``jobs`` (seconds since the experiment's first event): each job's story."""
    import pandas as pd

    ev = events(r, log)
    t0 = float(ev[0]["t"]) if ev else 0.0
    rows = [{"job": e["job"], "t (s)": round(float(e["t"]) - t0, 3), "worker": e["worker"],
             "event": e["event"]} for e in ev if e["job"] in set(jobs)]
    df = pd.DataFrame(rows, columns=["job", "t (s)", "worker", "event"])
    return df.sort_values(["job", "t (s)"], kind="stable").reset_index(drop=True)


def lanes(r, log: str, focus=None, *, always=("reaper", "rescuer"), lane: str = "worker") -> tuple:
    """The swimlane rows of one experiment: ``(rows, routine)``.

    Drawn: every event of a killed worker and of the workers in ``always``, the kills, each
    worker's ``ready`` and ``stopped``, and every event on a ``focus`` job (``None``: all jobs). A
    ``popped`` of a job the reaper had re-queued is renamed ``redelivered``. ``routine`` counts,
    per worker, the pops left out (the healthy workers' ordinary jobs), so the few events that
    matter stay visible and the caption can say what was not drawn.
    """
    import pandas as pd

    ev = sorted(events(r, log), key=lambda e: float(e["t"]))
    t0 = float(ev[0]["t"]) if ev else 0.0
    killed = {e["worker"] for e in ev if e["event"] == "SIGKILL"}
    requeued, rows, routine = set(), [], {}
    for e in ev:
        event = e["event"]
        if event == "requeued":
            requeued.add(e["job"])
        elif event == "popped" and e["job"] in requeued:
            event = "redelivered"
        if (focus is None or e["worker"] in killed or e["worker"] in always or e["job"] in focus
                or event in ("ready", "stopped")):
            rows.append({lane: e["worker"], "t": round(float(e["t"]) - t0, 3), "event": event, "job": e["job"],
                         **{k: v for k, v in e.items() if k not in ("worker", "event", "job", "t", "client_id")}})
        elif event == "popped":
            routine[e["worker"]] = routine.get(e["worker"], 0) + 1
    return pd.DataFrame(rows).reindex(columns=list(dict.fromkeys([lane, "t", "event", "job", *(
        k for row in rows for k in row)]))), routine
