"""Plumbing for notebook 02 (Redis Lists as queues).

The worker processes the crash experiments SIGKILL live here (:func:`brpop_worker`,
:func:`blmove_worker`); the notebook shows their source, because their BRPOP / BLMOVE / LREM *are*
the lesson. Every worker reports through Redis: one event stream (``ready``, ``popped``, ``done``,
``acked``, ``ack-late``, ``stopped``; the reaper's ``requeued``; the notebook's ``SIGKILL``), each
event stamped with the time it happened, and one hash ``done`` counting how often each job's work
ran. :func:`outcome` turns that evidence into produced / completed / lost / duplicated job ids and
``helpers.timeline`` into the rows of a swimlane chart.
"""

from __future__ import annotations

import inspect
import threading
import time

from .clients import redis_client
from .timeline import events, hello, log_event, sigkill, table, wait_for_event, wait_ready  # noqa: F401 (re-exported)
from .workers import wait_until  # noqa: F401 re-exported: the notebook calls queues.wait_until

timeline = table  # the notebook's queues.timeline(r, log, jobs): each job's story

# Re-queue one stale job atomically: only if it is still in the processing list (not acked meanwhile).
_REQUEUE = """
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 1 then
  redis.call('RPUSH', KEYS[2], ARGV[1])
  redis.call('HDEL', KEYS[3], ARGV[1])
  return 1
end
return 0
"""


def brpop_worker(redis_url: str, queue: str, done: str, log: str, stop_key: str, worker: str,
                 work_ms: float = 10, stall_at: int = 0, stall_where: str = "work",
                 stall_seconds: float = 30.0) -> None:
    """A plain List worker: BRPOP a job, do the work, repeat until ``stop_key`` exists.

    The ``stall_at``-th job it pops is a slow one: it stalls ``stall_seconds`` either during the
    work (``stall_where="work"``) or just after it (``"after-work"``), so a SIGKILL lands there.
    """
    r = redis_client(redis_url)
    hello(r, log, worker)                          # CLIENT SETNAME worker; log 'ready'
    popped = 0
    while not r.exists(stop_key):
        item = r.brpop(queue, timeout=0.5)          # the job leaves Redis here
        if item is None:
            continue                                # nothing to do for 0.5 s: check stop, wait again
        job = item[1]
        popped += 1
        log_event(r, log, worker, "popped", job)
        slow = popped == stall_at
        time.sleep(stall_seconds if slow and stall_where == "work" else work_ms / 1000)
        r.hincrby(done, job, 1)                     # the job's effect (e.g. an e-mail sent)
        log_event(r, log, worker, "done", job)
        if slow and stall_where == "after-work":
            time.sleep(stall_seconds)
    log_event(r, log, worker, "stopped")


def blmove_worker(redis_url: str, queue: str, processing: str, claimed: str, done: str, log: str,
                  stop_key: str, worker: str, work_ms: float = 10, stall_at: int = 0,
                  stall_where: str = "work", stall_seconds: float = 30.0) -> None:
    """The reliable worker: BLMOVE the job into ``processing``, stamp it, work, then ack with LREM.

    Same stall options as :func:`brpop_worker`; ``"after-work"`` stalls between the work and the
    ack, the window in which a crash turns into a duplicate.
    """
    r = redis_client(redis_url)
    hello(r, log, worker)                          # CLIENT SETNAME worker; log 'ready'
    popped = 0
    while not r.exists(stop_key):
        job = r.blmove(queue, processing, 0.5, "RIGHT", "LEFT")   # pop AND keep a copy, atomically
        if job is None:
            continue
        r.hset(claimed, job, time.time())           # when it was claimed: the reaper's clock
        popped += 1
        log_event(r, log, worker, "popped", job)
        slow = popped == stall_at
        time.sleep(stall_seconds if slow and stall_where == "work" else work_ms / 1000)
        r.hincrby(done, job, 1)
        log_event(r, log, worker, "done", job)
        if slow and stall_where == "after-work":
            time.sleep(stall_seconds)
        with r.pipeline() as p:                     # the ack: the job is finished, forget it
            p.lrem(processing, 1, job)
            p.hdel(claimed, job)
            removed, _ = p.execute()
        log_event(r, log, worker, "acked" if removed else "ack-late", job)
    log_event(r, log, worker, "stopped")


def reap(r, processing: str, queue: str, claimed: str, max_age: float) -> list[str]:
    """The course's reaper: put back on ``queue`` every job claimed more than ``max_age`` s ago.

    A job in ``processing`` without a claim time (its worker died between BLMOVE and HSET) gets
    one now, so it is re-queued on a later pass. Each re-queue is one atomic Lua script.
    """
    now, requeued = time.time(), []
    for job in r.lrange(processing, 0, -1):
        claimed_at = r.hget(claimed, job)
        if claimed_at is None:
            r.hsetnx(claimed, job, now)
        elif now - float(claimed_at) > max_age and r.eval(_REQUEUE, 3, processing, queue, claimed, job):
            requeued.append(job)
    return requeued


def reaper_loop(stop: threading.Event, redis_url: str, processing: str, queue: str, claimed: str,
                log: str, max_age: float, every: float = 0.25, reap_fn=None) -> list[str]:
    """Run ``reap_fn`` (default :func:`reap`) every ``every`` s until ``stop``; log each re-queue."""
    r, reap_fn, all_requeued = redis_client(redis_url), reap_fn or reap, []
    while not stop.wait(every):
        started = time.time()                      # the re-queue happened during this pass
        for job in reap_fn(r, processing, queue, claimed, max_age) or []:
            log_event(r, log, "reaper", "requeued", job, t=started)
            all_requeued.append(job)
    return all_requeued


def experiment_keys(ns, name: str) -> dict[str, str]:
    """The keys of one crash experiment, all in the notebook's namespace."""
    return {k: ns.key(f"{name}:{k}") for k in ("queue", "processing", "claimed", "done", "log", "stop")}


def start_crew(r, target: str, crew: dict[str, dict], *, log: str, max_seconds: float = 120,
               **common) -> dict:
    """Start one :class:`~helpers.workers.ProcessWorker` per ``crew`` entry and wait until all are ready."""
    from .workers import ProcessWorker

    procs = {w: ProcessWorker(target, name=w, max_seconds=max_seconds, worker=w, log=log, **common, **extra)
             for w, extra in crew.items()}
    for p in procs.values():
        p.start()
    wait_ready(r, log, list(procs))
    return procs


def drain(r, keys: list[str], total: int, timeout: float = 60, desc: str = "jobs taken") -> None:
    """Wait (with a progress bar) until every list in ``keys`` is empty."""
    from tqdm.auto import tqdm

    deadline = time.monotonic() + timeout
    with tqdm(total=total, desc=desc, leave=False) as bar:
        while (left := sum(r.llen(k) for k in keys)) > 0:
            bar.update(max(0, total - left - bar.n))
            if time.monotonic() > deadline:
                raise TimeoutError(f"{left} jobs still in {keys} after {timeout} s")
            time.sleep(0.05)
        bar.update(total - bar.n)
        bar.refresh()                               # the final count is what a saved page shows


def outcome(r, produced: list[str], done: str, log: str, queue: str, processing: str | None = None,
            killed: tuple[str, ...] = ()) -> dict:
    """Count what happened to each produced job, from Redis state and the event stream only.

    ``lost`` = produced - completed - still queued (or still in the processing list);
    ``duplicates`` = jobs whose work ran more than once, split into those a killed worker had
    finished and died before sending its ack for (``duplicate_ids_crash``) and the others (``duplicate_ids_live``: a
    live worker was still on them when the reaper took them back; ``ack_late_ids`` are the acks
    that found their job gone); ``killed_unfinished`` = jobs a killed worker popped but never
    finished (with BRPOP these should be exactly the lost ones); both read each killed worker's
    LAST claim, the job it held when it died, from its own events in order: a short MAX_AGE can
    hand a worker back a job it finished and acked (late) before, and that earlier claim says
    nothing about the one the kill cut short. ``recovery_s`` = seconds from
    each kill to the re-queue of the job the killed worker held (0 when a reaper had already taken it back
    from the worker before the kill).
    """
    runs = {job: int(n) for job, n in r.hgetall(done).items()}
    queued = set(r.lrange(queue, 0, -1)) | (set(r.lrange(processing, 0, -1)) if processing else set())
    ev = events(r, log)

    def of(event, workers=None):
        return [e for e in ev if e["event"] == event and (workers is None or e["worker"] in workers)]

    last_claim = {}   # killed worker -> [job, how far it got: popped / done / acked / ack-late]
    for e in ev:      # one worker's events are in the order it sent them (one connection, one loop)
        if e["worker"] in killed and e["event"] == "popped":
            last_claim[e["worker"]] = [e["job"], "popped"]
        elif e["worker"] in last_claim and e["job"] == last_claim[e["worker"]][0] and e["event"] in (
                "done", "acked", "ack-late"):
            last_claim[e["worker"]][1] = e["event"]
    unfinished = sorted(job for job, got in last_claim.values() if got == "popped")
    unacked = sorted(job for job, got in last_claim.values() if got == "done") if processing else []
    duplicate_ids = sorted(j for j, n in runs.items() if n > 1)
    kill_t = {e["worker"]: float(e["t"]) for e in of("SIGKILL")}
    held = {e["job"]: (e["worker"], float(e["t"])) for e in of("popped", killed)}
    recovery = {}
    for e in of("requeued"):   # the first re-queue after the killed worker popped it (0 if already back at the kill)
        w, popped_t = held.get(e["job"], (None, 0.0))
        if w in kill_t and float(e["t"]) >= popped_t and e["job"] not in recovery:
            recovery[e["job"]] = round(max(0.0, float(e["t"]) - kill_t[w]), 3)
    lost = set(produced) - set(runs) - queued
    return {
        "produced": len(produced), "completed": len(set(produced) & set(runs)),
        "still_queued": len(queued), "lost": len(lost), "lost_ids": sorted(lost),
        "duplicates": sum(n - 1 for n in runs.values() if n > 1), "duplicate_ids": duplicate_ids,
        "duplicate_ids_crash": [j for j in duplicate_ids if j in unacked],
        "duplicate_ids_live": [j for j in duplicate_ids if j not in unacked],
        "ack_late_ids": sorted({e["job"] for e in of("ack-late")}),
        "requeued_ids": sorted(e["job"] for e in of("requeued")),
        "killed_unfinished": unfinished,
        "killed_done_unacked": unacked, "recovery_s": recovery,
        "runs_per_job": runs,
    }


def lists_view(r, keys: dict):
    """The live view of a reliable-queue run: the queue's length, the processing list's jobs and how
    long ago each was claimed (what the reaper compares with MAX_AGE)."""
    import pandas as pd

    cols = ["list", "LLEN", "jobs held (claimed s ago)"]
    if not keys:
        return pd.DataFrame(columns=cols)
    now, held = time.time(), r.lrange(keys["processing"], 0, -1)
    stamps = r.hmget(keys["claimed"], held) if held else []
    shown = ", ".join(f"{j} ({now - float(c):.2f})" if c else j for j, c in zip(held[:6], stamps[:6], strict=False))
    return pd.DataFrame([["queue", r.llen(keys["queue"]), ""],
                         ["processing", len(held), shown + (" ..." if len(held) > 6 else "")]], columns=cols)


def broadcast(redis_url: str, channel: str, names: list[str], messages: int,
              timeout: float = 10) -> dict[str, list[str]]:
    """The Pub/Sub contrast: ``names`` subscribers on ``channel``; publish ``messages``; who got what."""
    r, got, stop = redis_client(redis_url), {n: [] for n in names}, threading.Event()
    subs = [redis_client(redis_url).pubsub(ignore_subscribe_messages=True) for _ in names]

    def listen(p, name):
        while not stop.is_set():
            m = p.get_message(timeout=0.1)
            if m:
                got[name].append(m["data"])

    for p in subs:
        p.subscribe(channel)
    threads = [threading.Thread(target=listen, args=(p, n), daemon=True) for p, n in zip(subs, names, strict=False)]
    for t in threads:
        t.start()
    wait_until(lambda: r.pubsub_numsub(channel)[0][1] == len(names), timeout, "subscribers")
    with r.pipeline(transaction=False) as p:
        for i in range(messages):
            p.publish(channel, f"msg-{i:05d}")
        p.execute()
    try:
        wait_until(lambda: all(len(v) >= messages for v in got.values()), timeout, "broadcast")
    finally:
        stop.set()
        for t in threads:
            t.join(2)
        for p in subs:
            p.close()
    return got


def source(fn):
    """``fn``'s source as syntax-highlighted code for the notebook (what a worker process runs)."""
    from IPython.display import Code

    return Code(inspect.getsource(fn), language="python")


def grouped_bars(df, x: str, y: str, group: str, *, title: str = "", width: int = 110, height: int = 200):
    """Side-by-side bars of ``y`` per ``x``, one column per ``group`` (e.g. model or pattern)."""
    from .charts import alt  # the course's offline renderer comes with it

    top = int(df[y].max())
    axis = alt.Axis(format="d", values=list(range(top + 1))) if top <= 5 else alt.Axis(format="d")
    return alt.Chart(df).mark_bar().encode(
        x=alt.X(f"{x}:N", sort=None, title=None), y=alt.Y(f"{y}:Q", title=y, axis=axis),
        color=alt.Color(f"{x}:N", legend=None),
        column=alt.Column(f"{group}:N", title=None, sort=list(dict.fromkeys(df[group]))),
        tooltip=list(df.columns)).properties(title=title, width=width, height=height)
