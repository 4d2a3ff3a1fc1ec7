"""Notebook 05's crash experiment: a consumer PROCESS that is SIGKILLed mid-batch, and what it cost.

:func:`crash_worker` runs in its own process (``workers.ProcessWorker("helpers.group_crash:crash_worker",
...)``) and reports every step into Redis; :func:`wait_drained` waits for the survivor to finish,
:func:`crash_outcome` counts what was redelivered or lost, and :func:`swimlane` turns the reports
into one lane per consumer for ``charts.swimlane`` (polled, processed, committed, the kill, the
rebalance, the redelivery).
"""

from __future__ import annotations

import json
import time
from collections import Counter

from kafka import ConsumerRebalanceListener

from . import clients
from .groups import lag, subscribed, wait_for


def crash_worker(*, topic: str, group: str, client_id: str, mode: str, report: str, bootstrap: str,
                 redis_url: str, batch: int = 10, process_ms: float = 5.0, stall_batch: int = 0,
                 stall_at: int = 0, session_timeout_ms: int = 6000, heartbeat_interval_ms: int = 1000,
                 lifetime: float = 120.0) -> None:
    """A consumer PROCESS (run by ``workers.ProcessWorker``) that reports its work into Redis.

    ``mode="commit-after"`` processes a batch, then commits (at-least-once); ``"commit-before"``
    commits the batch first, then processes it (at-most-once). Every processed record is RPUSHed
    to ``<report>:processed`` as ``partition:offset:member:time`` (and counted in the hash
    ``<report>:count``); empty polls stamp ``<report>:idle``; each poll, processed batch, commit
    and (re)assignment is an event in ``<report>:events``. With ``stall_batch`` > 0 the worker
    stops inside that batch (or the first later one with more than ``stall_at`` records) after
    ``stall_at`` records, as if a downstream call hung, records ``<report>:stalled`` and waits there
    to be killed. It exits when ``<report>:stop`` exists.
    """
    from kafka.errors import CommitFailedError

    r = clients.redis_client(redis_url)

    def event(kind: str, **data) -> None:
        r.rpush(f"{report}:events", json.dumps({"t": time.time(), "member": client_id, "event": kind, **data}))

    class Listener(ConsumerRebalanceListener):
        def on_partitions_revoked(self, revoked):
            event("revoked", partitions=sorted(tp.partition for tp in revoked))

        def on_partitions_assigned(self, assigned):
            event("assigned", partitions=sorted(tp.partition for tp in assigned))

    consumer = subscribed(topic, bootstrap=bootstrap, group_id=group, client_id=client_id,
                          listener=Listener(), max_poll_records=batch,
                          session_timeout_ms=session_timeout_ms, heartbeat_interval_ms=heartbeat_interval_ms)
    batches, stalled, deadline = 0, False, time.monotonic() + lifetime
    while time.monotonic() < deadline and not r.exists(f"{report}:stop"):
        polled = consumer.poll(timeout_ms=200)
        records = [rec for tp in sorted(polled) for rec in polled[tp]]
        if not records:
            r.hset(f"{report}:idle", client_id, time.time())
            continue
        batches += 1
        span = {str(p): [min(o), max(o)] for p, o in _offsets(records).items()}
        event("polled", n=len(records), offsets=span)
        upto = {str(p): max(o) + 1 for p, o in _offsets(records).items()}  # what commit() stores
        try:
            if mode == "commit-before":
                consumer.commit()  # the whole batch is marked done before any of it is processed
                event("committed", offsets=upto)
            for i, rec in enumerate(records):
                if stall_batch and not stalled and batches >= stall_batch and i == stall_at:
                    stalled = True
                    r.hset(f"{report}:stalled", mapping={"member": client_id, "partition": rec.partition,
                                                          "offset": rec.offset, "in_batch": i,
                                                          "batch": len(records), "t": time.time()})
                    event("stalled", n=i, offsets={str(rec.partition): [rec.offset, rec.offset]})
                    while time.monotonic() < deadline:  # the hung call the SIGKILL interrupts
                        time.sleep(0.05)
                time.sleep(process_ms / 1000)
                r.rpush(f"{report}:processed", f"{rec.partition}:{rec.offset}:{client_id}:{time.time():.4f}")
                r.hincrby(f"{report}:count", client_id, 1)
            event("processed", n=len(records), offsets=span)
            if mode == "commit-after":
                consumer.commit()  # only now is the batch marked done
                event("committed", offsets=upto)
        except CommitFailedError:
            event("commit-failed")
    consumer.close()


def _offsets(records) -> dict[int, list[int]]:
    found: dict[int, list[int]] = {}
    for rec in records:
        found.setdefault(rec.partition, []).append(rec.offset)
    return found


def wait_drained(admin, r, report: str, group: str, topic: str, end: dict[int, int], member: str,
                 timeout: float = 45.0, workers=()) -> float:
    """Wait until ``group`` has committed ``end`` and ``member`` has polled empty since (all processed).

    Returns the seconds waited. The empty poll must come after the last commit: with commit-before
    the last batch is still being processed when its offsets are already committed. A worker in
    ``workers`` that exits meanwhile is reported at once (see :func:`helpers.groups.check_alive`).
    """
    from .groups import check_alive

    t0 = time.time()

    def committed_all() -> bool:
        check_alive(workers)
        return lag(admin, group, topic, end) == 0

    wait_for(committed_all, timeout, f"group {group} to commit {end}")
    committed_at = time.time()
    wait_for(lambda: float(r.hget(f"{report}:idle", member) or 0) > committed_at, 10, f"{member} to go idle")
    return time.time() - t0


def crash_outcome(r, report: str, end: dict[int, int], killed_at: float, victim_partitions: list[int],
                  survivor: str) -> dict:
    """Count what a crash did, from the workers' reports: redelivered, lost, and the pause.

    ``end`` is {partition: end offset} (every offset below it was produced). ``redelivered`` counts
    extra processings of an offset; ``lost`` lists offsets nobody processed. ``reassigned_s`` is the
    time from the kill until the survivor was assigned the victim's partitions, ``resumed_s`` until
    it processed the first of their records.
    """
    done = [line.split(":") for line in r.lrange(f"{report}:processed", 0, -1)]
    counts = Counter((int(p), int(o)) for p, o, _, _ in done)
    produced = {(p, o) for p, last in end.items() for o in range(last)}
    events = [json.loads(e) for e in r.lrange(f"{report}:events", 0, -1)]
    assigned = [e["t"] for e in events if e["member"] == survivor and e["event"] == "assigned"
                and set(victim_partitions) <= set(e["partitions"]) and e["t"] >= killed_at]
    resumed = [float(t) for p, _, who, t in done
               if who == survivor and int(p) in victim_partitions and float(t) >= killed_at]
    return {"produced": len(produced), "processed": sum(counts.values()),
            "redelivered": sum(n - 1 for n in counts.values() if n > 1),
            "lost": sorted(f"{p}:{o}" for p, o in produced - set(counts)),
            "reassigned_s": round(min(assigned) - killed_at, 2) if assigned else None,
            "resumed_s": round(min(resumed) - killed_at, 2) if resumed else None}


def swimlane(r, reports: dict[str, str], killed_at: dict[str, float], victim: str = "victim"):
    """Rows for ``charts.swimlane``: one lane per consumer of each experiment (``reports``: label ->
    report key), times in seconds from just before a victim's first poll (the joins before it are
    left out), and the kill of each victim.

    Events: ``polled``, ``processed``, ``committed`` (one per batch), ``stalled`` (the victim hangs
    mid-batch), ``revoked`` / ``assigned`` (a rebalance), ``redelivered`` (one per record a consumer
    processed that another had processed already), ``commit-failed``. Returns (rows, kills).
    """
    raw, t0 = [], None
    for label, report in reports.items():
        for e in map(json.loads, r.lrange(f"{report}:events", 0, -1)):
            raw.append((label, e))
        seen: dict[tuple[int, int], str] = {}
        for line in r.lrange(f"{report}:processed", 0, -1):
            p, o, who, t = line.split(":")
            key = (int(p), int(o))
            if key in seen:
                raw.append((label, {"t": float(t), "member": who, "event": "redelivered",
                                    "offsets": {p: [int(o), int(o)]}, "first_by": seen[key]}))
            seen.setdefault(key, who)
    first = [e["t"] for _, e in raw if e["event"] == "polled" and e["member"] == victim]
    t0 = min(first, default=min(killed_at.values(), default=0)) - 0.25  # the setup's joins are left out
    rows = []
    for label, e in sorted(raw, key=lambda x: x[1]["t"]):
        if e["t"] < t0:
            continue
        spans = e.get("offsets") or {}
        detail = ", ".join(f"p{p} {a}-{b}" if a != b else f"p{p} {a}" for p, (a, b) in
                           ((p, v if isinstance(v, list) else [v - 1, v - 1]) for p, v in spans.items()))
        if e["event"] == "committed":
            detail = ", ".join(f"p{p} next {v}" for p, v in spans.items())
        if e["event"] in ("assigned", "revoked"):
            detail = "partitions " + (", ".join(map(str, e.get("partitions", []))) or "none")
        rows.append({"consumer": f"{label}: {e['member']}", "t": round(e["t"] - t0, 3), "event": e["event"],
                     "records": e.get("n", ""), "detail": detail})
    kills = {f"{label}: {victim}": round(t - t0, 3) for label, t in killed_at.items()}
    # lanes grouped per experiment (victim above survivor); the routine marks first, so that the stall,
    # the rebalance and the redelivery are drawn on top of them
    lanes = [f"{label}: {who}" for label in reports for who in (victim, "survivor")]
    routine = ("polled", "processed", "committed")
    rows.sort(key=lambda row: (row["event"] not in routine, lanes.index(row["consumer"])
                               if row["consumer"] in lanes else len(lanes), row["t"]))
    return rows, kills
