"""Plumbing for notebook 05 (Kafka consumer groups and replay).

The lesson's own calls (subscribe, commit, seek, offsets_for_times, reset_group_offsets) stay in the
notebook; this module holds what the notebook does not need to show: offset look-ups, waiting for a
group to settle, the consumer loops run as threads (:func:`member`) or as killable processes
(:func:`crash_worker`), and counting what a crash redelivered or lost (:func:`crash_outcome`).
"""

from __future__ import annotations

import json
import time
from collections import Counter

from kafka import ConsumerRebalanceListener, TopicPartition
from kafka.admin import OffsetSpec
from kafka.errors import KafkaError

from . import clients, errors
from .workers import wait_until


def create_topic(admin, topic: str, partitions: int) -> str:
    """Create ``topic`` with ``partitions`` partitions (replication 1) and wait until it has leaders."""
    admin.create_topics({topic: {"num_partitions": partitions, "replication_factor": 1}},
                        timeout_ms=15000, wait_for_metadata=True)
    return topic


def topic_partitions(admin, topic: str) -> list[TopicPartition]:
    """Every partition of ``topic`` as TopicPartition objects, in order."""
    (desc,) = admin.describe_topics([topic])
    return [TopicPartition(topic, p["partition_index"]) for p in sorted(desc["partitions"],
                                                                      key=lambda p: p["partition_index"])]


def offsets(admin, topic: str, spec=OffsetSpec.LATEST) -> dict[int, int]:
    """{partition: offset} for ``spec`` (LATEST = the end offsets, EARLIEST = the earliest retained)."""
    found = admin.list_partition_offsets({tp: spec for tp in topic_partitions(admin, topic)})
    return {tp.partition: ot.offset for tp, ot in sorted(found.items())}


def committed(admin, group: str, topic: str | None = None) -> dict[int, int]:
    """{partition: committed offset} of ``group`` (optionally only for ``topic``)."""
    found = admin.list_group_offsets(group).get(group, {})
    return {tp.partition: om.offset for tp, om in sorted(found.items())
            if (topic is None or tp.topic == topic) and om.offset >= 0}


def lag(admin, group: str, topic: str, end: dict[int, int] | None = None) -> int:
    """Records in ``topic`` the group has not committed yet (a partition never committed counts from 0)."""
    end = end if end is not None else offsets(admin, topic)
    done = committed(admin, group, topic)
    return sum(max(0, last - done.get(p, 0)) for p, last in end.items())


def assignment_table(admin, group: str) -> list[dict]:
    """One row per member of ``group`` as the broker sees it: client id and assigned partitions."""
    desc = admin.describe_groups([group])[group]
    rows = []
    for m in sorted(desc["members"], key=lambda m: m["client_id"]):
        parts = sorted(p for a in (m.get("member_assignment") or {}).get("assigned_partitions", [])
                       for p in a["partitions"])
        rows.append({"member": m["client_id"], "partitions": parts, "state": "reading" if parts else "idle"})
    return rows


def wait_stable(admin, group: str, members: int, partitions: int, timeout: float = 20.0) -> list[dict]:
    """Wait until ``group`` is Stable with ``members`` members sharing all ``partitions``; return the table."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            desc = admin.describe_groups([group])[group]
        except KafkaError as exc:  # e.g. CoordinatorNotAvailable while a fresh broker sets up its offsets topic
            if not getattr(exc, "retriable", False) or time.monotonic() > deadline:
                raise
            if errors.probe("kafka") == "connection refused":  # not starting up: gone, so do not retry
                raise errors.ServiceUnavailable(errors.down_sentence("kafka", "connection refused")) from None
            time.sleep(0.2)
            continue
        if desc["group_state"] == "Stable" and len(desc["members"]) == members:
            table = assignment_table(admin, group)
            if sum(len(row["partitions"]) for row in table) == partitions:
                return table
        if time.monotonic() > deadline:
            raise TimeoutError(f"group {group} not stable with {members} members after {timeout} s "
                               f"(state {desc['group_state']}, {len(desc['members'])} members)")
        time.sleep(0.1)


def wait_for(predicate, timeout: float, what: str, interval: float = 0.05):
    """Poll ``predicate()`` until truthy (see :func:`helpers.workers.wait_until`)."""
    return wait_until(predicate, timeout, what, every=interval)


def drain(consumer, timeout: float = 15.0) -> list:
    """Read an ``assign()``-ed consumer to the end offsets it saw at the start (see :func:`clients.drain_assigned`)."""
    return clients.drain_assigned(consumer, timeout)


def drain_group(consumer, end: dict[int, int], timeout: float = 20.0) -> list:
    """Poll a group consumer until it owns every partition in ``end`` and has read up to ``end``.

    Returns the records read. The caller commits (or not): this helper only reads.
    """
    records, deadline = [], time.monotonic() + timeout

    def caught_up() -> bool:
        owned = {tp.partition: tp for tp in consumer.assignment()}
        return set(owned) >= set(end) and all(
            consumer.position(owned[p], timeout_ms=10000) >= last for p, last in end.items())

    while True:
        for batch in consumer.poll(timeout_ms=200).values():
            records.extend(batch)
        if caught_up():
            return records
        if time.monotonic() > deadline:
            raise TimeoutError(f"the group consumer did not reach the end offsets within {timeout} s")


def steady_producer(stop_event, producer, topic: str, n: int, per_second: float, keys: list[str],
                    truth: Counter) -> int:
    """Background thread: send ``n`` keyed records at about ``per_second``; count each key in ``truth``."""
    start = time.monotonic()
    for i in range(n):
        if stop_event.is_set():
            break
        key = keys[i % len(keys)]
        producer.send(topic, key=key.encode(), value=f"event-{i}".encode()).get(timeout=10)
        truth[key] += 1
        time.sleep(max(0.0, start + (i + 1) / per_second - time.monotonic()))
    producer.flush(timeout=10)
    return sum(truth.values())


def subscribed(topic: str, *, listener=None, **consumer_kw):
    """A group consumer that knows ``topic``'s partitions BEFORE its first poll joins the group.

    kafka-python 3.0.12 joins with the coordinator's metadata snapshot of the subscription; if that
    is still empty, the leader assigns nothing and rejoins as soon as the metadata arrives (a second
    rebalance within ~0.5 s). We saw a member stop heartbeating for good right after such a
    back-to-back rebalance, so we wait for the snapshot (the client's IO thread fetches it).
    """
    consumer = clients.kafka_consumer(**consumer_kw)
    consumer.subscribe([topic], listener=listener)
    coordinator = getattr(consumer, "_coordinator", None)
    if hasattr(coordinator, "_metadata_snapshot"):
        wait_for(lambda: coordinator._metadata_snapshot.get(topic), 10, f"metadata for {topic}")
    return consumer


def member(stop_event, topic: str, group: str, name: str, *, seen: list | None = None,
           record_delay: float = 0.0, **consumer_kw) -> int:
    """A consumer-group member as a background thread (``workers.background(member, ...)``).

    Polls with a timeout, appends each record's value to ``seen``, sleeps ``record_delay`` per record
    (a slow service) and commits after every batch. Leaves the group cleanly when stopped.
    """
    consumer = subscribed(topic, group_id=group, client_id=name, **consumer_kw)
    count = 0
    try:
        while not stop_event.is_set():
            polled = consumer.poll(timeout_ms=200)
            for batch in polled.values():
                for rec in batch:
                    if record_delay:
                        time.sleep(record_delay)
                    if seen is not None:
                        seen.append(rec.value.decode())
                    count += 1
            if polled:
                consumer.commit()  # after processing the batch: at-least-once
    finally:
        consumer.close()
    return count


def crash_worker(*, topic: str, group: str, client_id: str, mode: str, report: str, bootstrap: str,
                 redis_url: str, batch: int = 10, process_ms: float = 5.0, stall_batch: int = 0,
                 stall_at: int = 0, session_timeout_ms: int = 6000, heartbeat_interval_ms: int = 1000,
                 lifetime: float = 120.0) -> None:
    """A consumer PROCESS (run by ``workers.ProcessWorker``) that reports its work into Redis.

    ``mode="commit-after"`` processes a batch, then commits (at-least-once); ``"commit-before"``
    commits the batch first, then processes it (at-most-once). Every processed record is RPUSHed
    to ``<report>:processed`` as ``partition:offset:member:time`` (and counted in the hash
    ``<report>:count``); empty polls stamp ``<report>:idle``; assignments go to
    ``<report>:events``. With ``stall_batch`` > 0 the worker stops inside that batch (or the
    first later one with more than ``stall_at`` records) after ``stall_at`` records, as if a
    downstream call hung, records ``<report>:stalled`` and waits there to be killed. It exits
    when ``<report>:stop`` exists.
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
        try:
            if mode == "commit-before":
                consumer.commit()  # the whole batch is marked done before any of it is processed
            for i, rec in enumerate(records):
                if stall_batch and not stalled and batches >= stall_batch and i == stall_at:
                    stalled = True
                    r.hset(f"{report}:stalled", mapping={"member": client_id, "partition": rec.partition,
                                                          "offset": rec.offset, "in_batch": i,
                                                          "batch": len(records), "t": time.time()})
                    while time.monotonic() < deadline:  # the hung call the SIGKILL interrupts
                        time.sleep(0.05)
                time.sleep(process_ms / 1000)
                r.rpush(f"{report}:processed", f"{rec.partition}:{rec.offset}:{client_id}:{time.time():.4f}")
                r.hincrby(f"{report}:count", client_id, 1)
            if mode == "commit-after":
                consumer.commit()  # only now is the batch marked done
        except CommitFailedError:
            event("commit-failed")
    consumer.close()


def wait_drained(admin, r, report: str, group: str, topic: str, end: dict[int, int], member: str,
                 timeout: float = 45.0) -> float:
    """Wait until ``group`` has committed ``end`` and ``member`` has polled empty since (all processed).

    Returns the seconds waited. The empty poll must come after the last commit: with commit-before
    the last batch is still being processed when its offsets are already committed.
    """
    t0 = time.time()
    wait_for(lambda: lag(admin, group, topic, end) == 0, timeout, f"group {group} to commit {end}")
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
