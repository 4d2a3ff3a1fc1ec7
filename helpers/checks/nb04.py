"""Exercise checks for notebook 04 (the Kafka log).

Each check produces real records to a namespaced topic on the real broker, reads them back with
``assign`` + ``seek`` and compares what it read with what it produced.
"""

from __future__ import annotations

import json
import secrets
from collections import defaultdict

from .. import clients, kafka_log
from . import CheckResult, call, check, not_yet, passed


@check
def key_choice(key_for, admin, topic: str, partitions: int = 4, orders: int = 12) -> CheckResult:
    """Exercise 1: ``key_for(event) -> bytes`` keeps each order's events in one partition, in order."""
    tag = "-" + secrets.token_hex(2)  # this attempt's orders, distinct from a previous attempt's
    events = kafka_log.order_lifecycle_events(orders, tag=tag)
    keys = [call(key_for, dict(e)) for e in events]  # the stub raises NotImplementedError -> not attempted
    if any(k is None for k in keys):
        return not_yet(f"key_for returned None for {sum(k is None for k in keys)} of {len(keys)} events: without "
                       "a key Kafka spreads an order's events over the partitions, where their order is lost.",
                       "return a key (bytes) for every event")
    wrong = [k for k in keys if not isinstance(k, bytes)]
    if wrong:
        return not_yet(f"key_for returned {type(wrong[0]).__name__} {wrong[0]!r}; a Kafka key is bytes.",
                       "encode it, e.g. return some_string.encode()")
    kafka_log.ensure_topic(admin, topic, partitions)
    start = kafka_log.offsets(admin, topic)
    producer = clients.kafka_producer()  # the check's own: it works even after the cleanup cell ran
    try:
        futures = [producer.send(topic, key=k, value=kafka_log.to_bytes(e)) for k, e in zip(keys, events, strict=False)]
        for f in futures:
            f.get(timeout=15)
    finally:
        producer.close(timeout=5)
    records = kafka_log.read_partitions(topic, sorted(start), start=start)
    parts, steps = defaultdict(set), defaultdict(list)
    for rec in records:
        event = json.loads(rec.value)
        if not event["order_id"].endswith(tag):
            continue
        parts[event["order_id"]].add(rec.partition)
        steps[event["order_id"]].append((rec.partition, rec.offset, event["step"]))
    if sum(len(v) for v in steps.values()) != len(events):
        return not_yet(f"produced {len(events)} events but read back {sum(len(v) for v in steps.values())}.",
                       "run the check again; if it persists, the broker may be overloaded")
    split = {o: sorted(p) for o, p in parts.items() if len(p) > 1}
    if split:
        order, where = next(iter(split.items()))
        return not_yet(f"{len(split)} of {orders} orders were split over several partitions "
                       f"(e.g. {order.removesuffix(tag)} in partitions {where}): Kafka orders only within a "
                       "partition, so their events can be read out of order.",
                       "every event of one order must carry the same key: which field do they all share?")
    disordered = [o for o, s in steps.items() if [st for _, _, st in sorted(s)] != sorted(st for *_, st in s)]
    if disordered:
        return not_yet(f"{len(disordered)} orders were read out of step order.", "keep one key per order")
    used = sorted({p for ps in parts.values() for p in ps})
    if len(used) < 2:
        return not_yet(f"Every order is in order, but all {len(events)} events went to partition {used[0]}: "
                       f"one consumer reads the whole topic and the other {partitions - 1} partitions sit idle.",
                       "a constant key serialises everything; choose a key with many distinct values")
    return passed(f"{orders} orders x {len(kafka_log.STEPS)} events, read back from {topic.split('.')[-1]}: each "
                  f"order stayed in one partition and in step order, spread over partitions {used}.")


@check
def read_from_check(read_from, admin, topic: str, partitions: int = 3, per_partition: int = 20) -> CheckResult:
    """Exercise 2: ``read_from(topic, partition, offset)`` returns that partition's records from ``offset`` on."""
    kafka_log.ensure_topic(admin, topic, partitions)
    tag = secrets.token_hex(2)
    producer = clients.kafka_producer()
    try:
        futures = [(p, i, producer.send(topic, value=f"ex2-{tag}-p{p}-{i}".encode(), partition=p))
                   for i in range(per_partition) for p in range(partitions)]
        produced = defaultdict(list)  # partition -> [(offset, value)]
        for p, i, f in futures:
            produced[p].append((f.get(timeout=15).offset, f"ex2-{tag}-p{p}-{i}".encode()))
    finally:
        producer.close(timeout=5)
    cases = [(1, produced[1][per_partition // 2][0]), (partitions - 1, produced[partitions - 1][per_partition - 3][0])]
    for partition, offset in cases:
        got = call(read_from, topic, partition, offset)
        if got is None:
            return not_yet(f"read_from(topic, {partition}, {offset}) returned None.",
                           "return the list of records (or their values)")
        values = [getattr(x, "value", x) for x in got]
        expected = [v for o, v in produced[partition] if o >= offset]
        if values != expected:
            extra = [v for v in values if v not in expected]
            return not_yet(f"read_from(topic, {partition}, {offset}) returned {len(values)} records; the check produced "
                           f"{len(expected)} at offsets >= {offset} in partition {partition}"
                           + (f" (first unexpected: {extra[0]!r})" if extra else "") + ".",
                           "assign([TopicPartition(topic, partition)]), seek(tp, offset), then poll(timeout_ms=...) "
                           "until position(tp) reaches end_offsets([tp])[tp]")
    return passed(f"read_from returned exactly the records the check produced, from the requested offset to the end, "
                  f"for {len(cases)} (partition, offset) pairs: a Kafka offset is an address you can go back to.")
