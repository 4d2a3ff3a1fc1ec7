"""Plumbing for notebook 04 (the Kafka log: partitions, ordering, offsets, retention, disk).

The lesson's own calls (``NewTopic``, ``producer.send(key=...)``, ``assign`` + ``seek``,
``delete_records``, ``XADD`` + ``MEMORY USAGE``) stay in the notebook. This module holds what the
notebook does not need to show: idempotent topic creation for the checks, offset look-ups, a
bounded read-to-the-end loop, the inversion count and the C13 verdict it supports, the two default
partitioners (murmur2 in the Java client and kafka-python, CRC32 in librdkafka) and a bounded send for
confluent-kafka. The broker's data dir, the ``.log`` bytes of a topic's partition directories and
the retention watch are in :mod:`helpers.kafka_disk`.
"""

from __future__ import annotations

import json
import random
import zlib

from kafka import TopicPartition
from kafka.admin import OffsetSpec
from kafka.partitioner.default import murmur2

from . import clients, config

CUSTOMERS = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"]
STEPS = ["created", "paid", "packed", "shipped", "delivered"]


# --- topics and offsets ------------------------------------------------------------------------
def ensure_topic(admin, topic: str, partitions: int, configs: dict | None = None) -> str:
    """Create ``topic`` (replication 1) unless it exists, and wait until every partition has a leader."""
    if topic not in admin.list_topics():
        admin.create_topics({topic: {"num_partitions": partitions, "replication_factor": 1,
                                     "configs": configs or {}}}, timeout_ms=15000, wait_for_metadata=True)
    return topic


def partitions_of(admin, topic: str) -> list[TopicPartition]:
    """Every partition of ``topic`` as TopicPartition objects, in order."""
    (desc,) = admin.describe_topics([topic])
    return [TopicPartition(topic, p) for p in sorted(p["partition_index"] for p in desc["partitions"])]


def offsets(admin, topic: str, spec=OffsetSpec.LATEST) -> dict[int, int]:
    """``{partition: offset}``: LATEST = the log-end offsets, EARLIEST = the log-start offsets."""
    found = admin.list_partition_offsets({tp: spec for tp in partitions_of(admin, topic)}, timeout_ms=10000)
    return {tp.partition: ot.offset for tp, ot in sorted(found.items())}


def offsets_table(admin, topic: str):
    """One row per partition: log-start offset, log-end offset, records retained."""
    import pandas as pd

    start, end = offsets(admin, topic, OffsetSpec.EARLIEST), offsets(admin, topic)
    return pd.DataFrame([{"partition": p, "log-start offset": start[p], "log-end offset": end[p],
                          "records retained": end[p] - start[p]} for p in sorted(end)]).set_index("partition")


# --- reading -----------------------------------------------------------------------------------
def drain(consumer, timeout: float = 20.0) -> list:
    """Read an ``assign()``-ed consumer to the end offsets it saw at the start (see :func:`clients.drain_assigned`)."""
    return clients.drain_assigned(consumer, timeout)


def read_partitions(topic: str, partitions: list[int], start: dict[int, int] | None = None,
                    timeout: float = 20.0) -> list:
    """Read ``partitions`` of ``topic`` from ``start`` (default: the beginning) to their current end."""
    consumer = clients.kafka_consumer(consumer_timeout_ms=2000)  # no group: assign, no rebalance wait
    try:
        tps = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(tps)
        for tp in tps:
            if start is None:
                consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, start.get(tp.partition, 0))
        return drain(consumer, timeout)
    finally:
        consumer.close()


# --- ordering ----------------------------------------------------------------------------------
def inversions(seq) -> int:
    """How many pairs (i < j) have ``seq[i] > seq[j]`` (0 = perfectly ordered), in O(n log n)."""

    def sort(xs):
        if len(xs) <= 1:
            return xs, 0
        mid = len(xs) // 2
        (left, a), (right, b) = sort(xs[:mid]), sort(xs[mid:])
        merged, count, i, j = [], a + b, 0, 0
        while i < len(left) and j < len(right):
            if left[i] <= right[j]:
                merged.append(left[i])
                i += 1
            else:
                merged.append(right[j])
                count += len(left) - i
                j += 1
        return merged + left[i:] + right[j:], count

    return sort(list(seq))[1]


def max_inversions(n: int) -> int:
    """The inversions of a fully reversed sequence of length ``n`` (to turn a count into a fraction)."""
    return n * (n - 1) // 2


def order_verdict(within: int, across: int) -> str:
    """The C13 verdict of one read ("Kafka orders strictly within a partition only"), from the
    inversions counted within the partitions (in offset order) and across them (in receive order):

    - "refuted" when any partition came back out of order (``within > 0``);
    - "confirmed" when every partition was in order and the whole read was not;
    - "inconclusive" when both were in order: Kafka promises nothing across partitions, so one read
      that happens to be ordered is one possible outcome of no promise and refutes nothing.
    """
    if within > 0:
        return "refuted"
    return "confirmed" if across > 0 else "inconclusive"


# --- partitioners ----------------------------------------------------------------------------------
def predicted_partition(key: bytes, num_partitions: int) -> int:
    """The partition the Java client's and kafka-python's default partitioner picks for a non-null
    ``key``: murmur2(key) with the sign bit masked, modulo the partition count."""
    return (murmur2(key) & 0x7FFFFFFF) % num_partitions


def crc32_partition(key: bytes, num_partitions: int) -> int:
    """The partition librdkafka's default partitioner (``consistent_random``) picks for a non-empty
    ``key``: CRC32(key) modulo the partition count."""
    return zlib.crc32(key) % num_partitions


def rd_send(producer, topic: str, keys: list[bytes], value: bytes, timeout: float = 15.0) -> dict[bytes, int]:
    """Produce one record per key with a confluent-kafka ``Producer`` and wait (at most ``timeout``
    s) for every delivery report: ``{key: partition}``, or one clear error when some were not delivered."""
    landed, failed = {}, []

    def report(err, msg):
        if err is not None:
            failed.append(err)
        else:
            landed[msg.key()] = msg.partition()

    for key in keys:
        producer.produce(topic, key=key, value=value, on_delivery=report)
        producer.poll(0)
    left = producer.flush(timeout)
    if left or failed:
        raise RuntimeError(f"confluent-kafka delivered {len(landed)} of {len(keys)} records to {topic} within "
                           f"{timeout:.0f} s ({left} still queued{', first error: ' + str(failed[0]) if failed else ''}); "
                           f"is Kafka at {config.kafka_bootstrap()} up? (`make services-up`)")
    return landed


def partitions_by_key(topic: str, num_partitions: int) -> dict[bytes, list[int]]:
    """Read ``topic`` back from the log: ``{key: sorted partitions holding a record with that key}``."""
    found: dict[bytes, set[int]] = {}
    for rec in read_partitions(topic, list(range(num_partitions))):
        found.setdefault(rec.key, set()).add(rec.partition)
    return {k: sorted(v) for k, v in found.items()}


def customer_events(n: int, customers=CUSTOMERS, seed: int = 4, pad: int = 0) -> list[dict]:
    """``n`` events with a global sequence number ``seq`` and a per-customer counter ``n``
    (``pad`` > 0 adds a ``note`` of that many characters, e.g. to make ~1 kB records)."""
    rng, counters, events = random.Random(seed), {c: 0 for c in customers}, []
    filler = ("the quick brown fox jumps over the lazy dog " * (pad // 44 + 1))[:pad]
    for seq in range(n):
        who = rng.choice(customers)
        counters[who] += 1
        event = {"seq": seq, "customer": who, "n": counters[who], "amount": rng.randint(5, 500)}
        events.append({**event, "note": filler} if pad else event)
    return events


def order_lifecycle_events(orders: int = 12, seed: int | None = None, tag: str = "") -> list[dict]:
    """Events of ``orders`` orders, each going created -> ... -> delivered, interleaved across orders."""
    rng = random.Random(seed)
    ids = [f"o-{1001 + i}{tag}" for i in range(orders)]
    customer = {oid: CUSTOMERS[i % len(CUSTOMERS)] for i, oid in enumerate(ids)}
    events = []
    for step, status in enumerate(STEPS, start=1):
        rng.shuffle(ids)
        events += [{"order_id": oid, "customer": customer[oid], "step": step, "status": status} for oid in ids]
    return events


def to_bytes(event: dict) -> bytes:
    return json.dumps(event, separators=(",", ":")).encode()


# --- results and cleanup -----------------------------------------------------------------------
def cleanup(admin, r, ns, *, previous_runs: bool = False, timeout: float = 15.0) -> dict:
    """Delete this run's topics, groups and keys (waiting until the broker no longer lists the topics)."""
    removed = clients.cleanup_kafka(admin, ns, previous_runs=previous_runs, wait=timeout)
    removed["redis keys"] = clients.cleanup_redis(r, ns, previous_runs=previous_runs)
    return removed


def order_chart(received, title: str = "Sequence number per record, in the order the consumer received them"):
    """Receive position (x) vs sequence number (y), one colour per partition: rising lines, a sawtooth overall."""
    from .charts import alt  # the course's offline renderer comes with it

    df = received.reset_index()
    return alt.Chart(df).mark_circle(size=14, opacity=0.7).encode(
        x=alt.X("receive order:Q", title="position in the receive order"),
        y=alt.Y("seq:Q", title="sequence number (send order)"),
        color=alt.Color("partition:N"),
        tooltip=["receive order", "partition", "offset", "seq", "customer"],
    ).properties(title=title, width=460, height=260)
