"""Plumbing for notebook 05 (Kafka consumer groups and replay), also used by 08 and 09.

The lesson's own calls (subscribe, commit, seek, offsets_for_times, reset_group_offsets) stay in the
notebook; this module holds what the notebook does not need to show: offset and lag look-ups, waiting
for a group to settle (watching its members, so a member that died is reported at once), a group
consumer that has its topic's metadata before it joins (:func:`subscribed`) and a member loop run as
a thread (:func:`member`). The crash worker process lives in :mod:`helpers.group_crash`, the
assignor comparison in :mod:`helpers.rebalance`.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable

from kafka import TopicPartition
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


def lag_per_partition(admin, group: str, topic: str, end: dict[int, int] | None = None) -> dict[int, int]:
    """{partition: end offset - committed offset} of ``group`` (a partition never committed counts from 0,
    as if the group read from the beginning)."""
    end = end if end is not None else offsets(admin, topic)
    done = committed(admin, group, topic)
    return {p: max(0, last - done.get(p, 0)) for p, last in end.items()}


def lag(admin, group: str, topic: str, end: dict[int, int] | None = None) -> int:
    """Records in ``topic`` the group has not committed yet (a partition never committed counts from 0)."""
    return sum(lag_per_partition(admin, group, topic, end).values())


def assignment_table(admin, group: str) -> list[dict]:
    """One row per member of ``group`` as the broker sees it: client id, the member id the broker gave
    it, and its assigned partitions (the assignment the leader sent in SyncGroup, which the broker keeps)."""
    desc = admin.describe_groups([group])[group]
    rows = []
    for m in sorted(desc["members"], key=lambda m: m["client_id"]):
        parts = sorted(p for a in (m.get("member_assignment") or {}).get("assigned_partitions", [])
                       for p in a["partitions"])
        rows.append({"member": m["client_id"], "member_id": m["member_id"], "partitions": parts,
                     "state": "reading" if parts else "idle"})
    return rows


def check_alive(workers: Iterable = ()) -> None:
    """Raise one sentence if a consumer thread or process in ``workers`` has ended (with its error or
    the last line of its log), instead of letting a wait for its group run out."""
    for w in workers:
        if hasattr(w, "proc"):  # a ProcessWorker
            if w.proc is not None and not w.alive:
                last = (w.output().strip().splitlines() or ["(no output)"])[-1]
                raise RuntimeError(f"consumer process {w.name!r} exited with code {w.returncode}: {last}")
        elif not w.running:  # a BackgroundTask
            raise RuntimeError(f"consumer thread {w.name!r} stopped: "
                               f"{type(w.error).__name__ + ': ' + str(w.error) if w.error else 'it returned'}")


def wait_stable(admin, group: str, members: int, partitions: int, timeout: float = 20.0,
                workers: Iterable = ()) -> list[dict]:
    """Wait until ``group`` is Stable with ``members`` members sharing all ``partitions``; return the table.

    ``workers`` (the threads or processes running the members) are watched while waiting: one that
    ended is reported at once with its own error, not as a group that never settled.
    """
    deadline = time.monotonic() + timeout
    workers = list(workers)
    while True:
        check_alive(workers)
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


def await_partitions(consumer, topic: str, timeout: float = 10.0) -> set[int]:
    """Wait until a subscribed group consumer knows ``topic``'s partitions for its next JoinGroup; return them.

    kafka-python 3.0.12 joins with its coordinator's metadata snapshot of the subscription; if that
    is still empty, the leader assigns nothing and a second rebalance follows once the metadata
    arrives. Waiting for the client to fetch it by itself is not enough: the metadata request that
    ``subscribe()`` asks for is lost when an older request (sent without the new topic) is still in
    flight -- its response clears the "update needed" flag -- and the next refresh comes only after
    ``metadata_max_age_ms`` (5 minutes). On a busy machine that window is wide: a worker waited 10 s
    for metadata that never came and died, and the notebook reported a group "not stable after 40 s".
    So we ask again every 0.25 s until the snapshot (filled by the coordinator's metadata listener)
    has the topic, for at most ``timeout`` seconds (kafka-python internals, used only when present).
    """
    coordinator, cluster = getattr(consumer, "_coordinator", None), getattr(consumer, "_cluster", None)
    if not (isinstance(getattr(coordinator, "_metadata_snapshot", None), dict) and hasattr(cluster, "request_update")):
        return consumer.partitions_for_topic(topic)

    def known():
        found = coordinator._metadata_snapshot.get(topic)  # a new dict after every metadata update
        if not found:
            cluster.request_update()  # again: one made while an older request was in flight is lost
        return found

    return set(wait_for(known, timeout, f"the partitions of {topic} (does the topic exist?)", interval=0.25))


def subscribed(topic: str, *, listener=None, metadata_timeout: float = 10.0, **consumer_kw):
    """A group consumer subscribed to ``topic`` that knows the topic's partitions BEFORE its first poll
    joins the group (see :func:`await_partitions`): ``clients.kafka_consumer(**consumer_kw)`` +
    ``subscribe([topic], listener=listener)``."""
    consumer = clients.kafka_consumer(**consumer_kw)
    try:
        consumer.subscribe([topic], listener=listener)
        await_partitions(consumer, topic, metadata_timeout)
    except BaseException:
        consumer.close()
        raise
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


def cli_rows(output: str, first: str = "GROUP") -> list[dict]:
    """The table a Kafka command-line tool printed (``kafka-consumer-groups --describe`` or
    ``--reset-offsets``: a header row starting with ``first``, then one row per partition) as dicts."""
    lines = [line.split() for line in output.splitlines() if line.strip()]
    for i, cols in enumerate(lines):
        if cols[0] == first:
            return [dict(zip(cols, row, strict=True)) for row in lines[i + 1:] if len(row) == len(cols)]
    return []
