"""Plumbing for notebook 08, Kafka half: consumers that pay a fixed cost per record, keys spread
evenly over partitions, and the per-key order bookkeeping of the repartitioning experiment.

The lesson's calls (create_partitions, the poll-work-commit loop, the counts) stay in the notebook;
this module holds the consumer *process* (:func:`group_worker`), Kafka's key -> partition formula
(:func:`partition_for`), and the small tables built from what the consumers reported.
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict

from kafka import ConsumerRebalanceListener
from kafka.partitioner.default import murmur2

from . import clients, groups
from .workers import BackgroundTask, ProcessWorker, wait_until


def partition_for(key: str, partitions: int) -> int:
    """The partition Kafka's default partitioner picks for ``key``: ``murmur2(key) % partitions``
    (the same formula in the Java client, kafka-python and librdkafka's ``murmur2_random``)."""
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions


def balanced_keys(partitions: int, per_partition: int, prefix: str = "customer") -> list[str]:
    """``per_partition`` keys for each of ``partitions`` partitions (the first names that hash there),
    so a fixed amount of work lands on every partition and only the consumer count varies."""
    picked: dict[int, list[str]] = defaultdict(list)
    i = 0
    while min((len(picked[p]) for p in range(partitions)), default=0) < per_partition:
        key = f"{prefix}-{i:03d}"
        p = partition_for(key, partitions)
        if len(picked[p]) < per_partition:
            picked[p].append(key)
        i += 1
    return [k for p in range(partitions) for k in picked[p]]


def _subscribe(topic: str, attempts: int = 3, **consumer_kw):
    """``groups.subscribed`` with retries: on a busy machine the first metadata wait can run out."""
    for attempt in range(attempts):
        try:
            return groups.subscribed(topic, **consumer_kw)
        except TimeoutError:
            if attempt == attempts - 1:
                raise


def group_worker(*, topic: str, group: str, client_id: str, bootstrap: str, redis_url: str, report: str,
                 work_ms: float, lifetime: float = 300.0) -> None:
    """One consumer-group member as a PROCESS (run by ``workers.ProcessWorker``).

    It starts, then waits until its name is in the Redis set ``<report>:join`` (so a step's start-up
    cost is paid before the clock runs), joins ``group``, and loops: poll, spend ``work_ms`` per
    record (the job), report each record as JSON to the list ``<report>:done``, commit. It leaves
    the group and exits when ``<report>:stop`` exists (the broker reports who owns what).
    """
    r = clients.redis_client(redis_url)
    deadline = time.monotonic() + lifetime
    while not r.sismember(f"{report}:join", client_id):
        if time.monotonic() > deadline or r.exists(f"{report}:stop"):
            return
        time.sleep(0.02)
    consumer = _subscribe(topic, bootstrap=bootstrap, group_id=group, client_id=client_id, max_poll_records=5,
                          session_timeout_ms=6000, heartbeat_interval_ms=500)
    try:
        while time.monotonic() < deadline and not r.exists(f"{report}:stop"):
            polled = consumer.poll(timeout_ms=100)
            rows = []
            for tp in sorted(polled):
                for rec in polled[tp]:
                    time.sleep(work_ms / 1000)                       # the job: a fixed cost per record
                    value = json.loads(rec.value)
                    rows.append(json.dumps({"member": client_id, "partition": rec.partition,
                                            "offset": rec.offset, "key": rec.key.decode(), **value,
                                            "t": time.time()}))
            if rows:
                r.rpush(f"{report}:done", *rows)
                consumer.commit()                                    # after the work: at-least-once
    finally:
        consumer.close()


def wait_members(admin, group: str, members: int, partitions: int, pool: list, timeout: float = 60.0):
    """``groups.wait_stable`` that also watches the consumers in ``pool`` (worker processes or
    background threads): one that died is reported with its error instead of a wait that runs out."""
    deadline = time.monotonic() + timeout
    while True:
        for w in pool:
            if isinstance(w, ProcessWorker) and w.proc is not None and not w.alive:
                raise RuntimeError(f"consumer process {w.name} exited ({w.returncode}): "
                                   f"{w.output().strip().splitlines()[-1:]}")
            if isinstance(w, BackgroundTask) and not w.running:
                raise RuntimeError(f"consumer thread {w.name} stopped: {w.error!r}")
        try:
            return groups.wait_stable(admin, group, members=members, partitions=partitions,
                                      timeout=min(5.0, max(0.1, deadline - time.monotonic())))
        except TimeoutError:
            if time.monotonic() > deadline:
                raise


def done_rows(r, report: str) -> list[dict]:
    """Every record the workers reported as processed, in report order."""
    return [json.loads(x) for x in r.lrange(f"{report}:done", 0, -1)]


def send_step(producer, topic: str, keys: list[str], n: int, seq: dict[str, int], step) -> float:
    """Send ``n`` records round-robin over ``keys``, each ``{"seq": per-key number, "step": step}``;
    returns the wall-clock time the first one was sent (the step's clock starts there)."""
    t0 = time.time()
    futures = []
    for i in range(n):
        key = keys[i % len(keys)]
        futures.append(producer.send(topic, key=key.encode(),
                                     value=json.dumps({"seq": seq[key], "step": step}).encode()))
        seq[key] += 1
    producer.flush(timeout=15)
    for f in futures:
        f.get(timeout=10)
    return t0


def out_of_order(rows: list[dict], order_by: str = "t") -> dict[str, int]:
    """{key: number of records processed after a record of the same key with a larger ``seq``}.

    ``rows`` are processed records (``key``, ``seq``); processing order is ``order_by`` (a timestamp)
    or, with ``order_by=None``, the list order. Zero everywhere means per-key order held."""
    ordered = rows if order_by is None else sorted(rows, key=lambda row: row[order_by])
    highest: dict[str, int] = {}
    late: dict[str, int] = defaultdict(int)
    for row in ordered:
        key, seq = row["key"], row["seq"]
        if seq < highest.get(key, -1):
            late[key] += 1
        highest[key] = max(seq, highest.get(key, -1))
    return {key: late.get(key, 0) for key in highest}


def in_flight(seen: list[dict], old: int) -> dict:
    """How far behind the group was when it began on the new partitions (numbered ``old`` and up):
    ``first_new_at``, the position in ``seen`` of its first record from a new partition, and
    ``old_after``, the first-burst (``phase`` 1) records it processed after that one."""
    first = next((i for i, e in enumerate(seen) if e["partition"] >= old), len(seen))
    return {"first_new_at": first, "old_after": sum(e["phase"] == 1 for e in seen[first:])}


HOLD_POLL_MS = 5000      # a stalled member's poll: long enough to wait out a whole rebalance inside it
LEFT_OUT_S = 10.0        # a member that has held no partition this long since a rebalance began starts afresh


class _Owned(ConsumerRebalanceListener):
    """Keeps ``owned[name]`` up to date: the partitions this member's own client holds (``None`` from the
    moment it gives them up for a rebalance until it is handed its new ones, with ``since`` that moment)."""

    def __init__(self, owned: dict, name: str):
        self.owned, self.name = owned, name
        self.on_partitions_revoked(())

    def on_partitions_revoked(self, revoked):
        self.owned[self.name], self.since = None, time.monotonic()

    def on_partitions_assigned(self, assigned):
        self.owned[self.name] = sorted(tp.partition for tp in assigned)

    def left_out(self, limit: float) -> bool:
        """True when this member has held nothing for ``limit`` seconds (its group would have settled)."""
        return self.owned[self.name] is None and time.monotonic() - self.since > limit


def ordered_reader(stop_event, topic: str, group: str, name: str, seen: list, *, work_ms: float = 0.0,
                   hold: threading.Event | None = None, owned: dict | None = None, restarts: list | None = None,
                   **consumer_kw) -> int:
    """A group member as a THREAD that appends ``{member, partition, offset, key, seq}`` to the shared
    list ``seen`` for every record it processes: the list's order is the order the group processed them.
    ``owned`` (a dict shared by the members) gets ``owned[name]``: the partitions this client holds.

    While ``hold`` is set the member is stalled (as behind a slow database): it keeps polling, so it
    stays in the group and takes part in rebalances, but it puts back what a poll returns (``seek`` to
    the first offset) and processes nothing; records pile up as consumer lag. (Not ``pause``: with
    kafka-python 3.0.12, a partition paused while part of its fetched batch is undelivered and later
    resumed is never fetched again; in this experiment 492 of 720 records were processed, 3 of 3 runs.)

    A stalled member polls with a long timeout (``HOLD_POLL_MS``), for another kafka-python 3.0.12 bug:
    a group *leader* that rejoins because the topic gained partitions drops its own new assignment when
    that rejoin completes between two polls rather than inside one. Computing the assignment makes its
    ``need_rejoin()`` false, so no later poll collects the finished join: the member never gets its
    partitions, never fetches, stops heartbeating, and the broker removes it after ``session.timeout.ms``.
    With ``poll(timeout_ms=100)`` it spoilt 4 of 46 of our runs on a loaded machine, and left a member
    without partitions in 7 of 9 runs with 200 ms between polls; a poll that waits out the rebalance
    collects the join itself (0 of 9 with the same 200 ms), but a join can still end in the moment
    between two polls (tools/kafka_python_repro.py leader-drop: 1 of 9 with 5 s polls and 200 ms between
    them). So a member that has held no partition for ``LEFT_OUT_S`` seconds since it gave its partitions
    up closes its consumer and joins again as a new member (noted in ``restarts``), as an operator restarts
    a stuck consumer; the broker has removed the old one by then (``session.timeout.ms``). ``wait_taken``
    checks the clients' own view, which the broker's "Stable" does not show. docs/known-client-bugs.md
    has both bugs, with reproductions.

    A commit the group refuses because it is rebalancing (the partition change triggers one) is not
    fatal: the member polls on, which completes the rebalance. The records of that refused commit come
    back (at-least-once); the members process each (partition, offset) once, as an idempotent consumer
    does, by looking it up in ``seen``."""
    from kafka.errors import CommitFailedError, RebalanceInProgressError

    listener = _Owned(owned if owned is not None else {}, name)

    def join():
        return _subscribe(topic, listener=listener, group_id=group, client_id=name, max_poll_records=5, **consumer_kw)

    consumer = join()
    count = 0
    try:
        while not stop_event.is_set():
            if listener.left_out(LEFT_OUT_S):              # dropped by the leader bug above: join afresh
                consumer.close(timeout_ms=5000)
                listener.on_partitions_revoked(())
                consumer = join()
                if restarts is not None:
                    restarts.append({"member": name, "t": time.time()})
            polled = consumer.poll(timeout_ms=HOLD_POLL_MS if hold is not None and hold.is_set() else 100)
            if hold is not None and hold.is_set():     # asked again: the hold may have begun during the poll
                for tp, records in polled.items():
                    consumer.seek(tp, records[0].offset)   # put them back: read again after the hold
                continue
            for tp in sorted(polled):
                for rec in polled[tp]:
                    with _SEEN_LOCK:                       # check and take it in one step: no two members
                        if any(e["partition"] == rec.partition and e["offset"] == rec.offset for e in seen):
                            continue                       # redelivered after a refused commit
                        seen.append({"member": name, "partition": rec.partition, "offset": rec.offset,
                                     "key": rec.key.decode(), **json.loads(rec.value)})
                    time.sleep(work_ms / 1000)             # the work on it (the list keeps the order it began)
                    count += 1
            if polled:
                try:
                    consumer.commit()
                except (RebalanceInProgressError, CommitFailedError):
                    pass                                   # the next poll rejoins; redeliveries are skipped
    finally:
        consumer.close()
    return count


def wait_taken(owned: dict, partitions: int, timeout: float = 40.0) -> dict:
    """Wait until every member's own client holds its share and the shares cover ``partitions``, each once.

    The broker calls a group Stable once the leader has sent the assignment; a member's client takes its
    share up only when its poll collects it (see :func:`ordered_reader`). Returns ``owned`` as it was."""
    def taken() -> bool:
        shares = list(owned.values())                # None: that member is still between two assignments
        return None not in shares and sorted(p for share in shares for p in share) == list(range(partitions))
    try:
        wait_until(taken, timeout, f"the consumers to take up all {partitions} partitions", every=0.05)
    except TimeoutError:
        waiting = sorted(name for name, parts in owned.items() if parts is None)
        if not waiting:
            raise TimeoutError(f"after the rebalance the consumers hold {dict(owned)}, not each of the {partitions} "
                               f"partitions once, {timeout:.0f} s on") from None
        raise TimeoutError(f"after the rebalance, consumer(s) {', '.join(waiting)} never took up their "
                           f"partitions within {timeout:.0f} s (kafka-python can drop a group leader's "
                           f"assignment, see scaling.ordered_reader); run the notebook again (Restart & Run All): "
                           f"a new run uses a new topic and group") from None
    return dict(owned)


_SEEN_LOCK = threading.Lock()


def wait_producer_partitions(producer, topic: str, partitions: int, timeout: float = 15.0) -> int:
    """Wait until ``producer``'s metadata shows ``partitions`` partitions of ``topic`` (a producer
    learns of new partitions only at its next metadata refresh, ``metadata_max_age_ms``)."""
    def seen() -> int:
        producer._metadata.request_update()        # ask for a refresh now rather than at max age
        return len(producer.partitions_for(topic) or ()) >= partitions
    wait_until(seen, timeout, f"the producer to see {partitions} partitions of {topic}", every=0.1)
    return len(producer.partitions_for(topic))
