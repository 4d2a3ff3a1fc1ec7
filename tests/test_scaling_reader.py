"""scaling.ordered_reader against a real broker: a member the kafka-python 3.0.12 leader bug leaves
without partitions after a partition-count change joins again by itself (docs/known-client-bugs.md, 1).

The bug needs the group leader's join to finish while the leader is outside ``poll()``. The test makes
both members spend nearly all their time outside it (each poll waits 1 ms, then the member sleeps
0.5 s), which is how tools/kafka_python_repro.py leader-drop provokes it; the broker, the group and
the rebalance are real.
"""

import json
import threading
import time

from kafka.admin import NewPartitions

from helpers import clients, config, groups, scaling, workers

PER_BURST = 60


def dawdling(monkeypatch, when: threading.Event):
    """From ``when`` on, each poll of a reader's FIRST consumer waits 1 ms and the reader then sleeps 0.5 s.
    Before it, the group forms normally; a consumer a reader makes again after being left out polls
    normally too (a join that ends between polls is lost whatever caused it, a first join included, so
    a reader that always dawdled would be left out again and again)."""
    real, made = scaling._subscribe, set()

    def subscribe(*args, **kwargs):
        consumer = real(*args, **kwargs)
        if kwargs["client_id"] in made:
            return consumer
        made.add(kwargs["client_id"])
        inner = consumer.poll

        def poll(timeout_ms=0, **kw):
            if not when.is_set():
                return inner(timeout_ms=timeout_ms, **kw)
            records = inner(timeout_ms=1, **kw)
            time.sleep(0.5)                      # a consumer busy elsewhere: the join ends between polls
            return records
        consumer.poll = poll
        return consumer
    monkeypatch.setattr(scaling, "_subscribe", subscribe)


def send(producer, topic: str, phase: int) -> None:
    for i in range(PER_BURST):
        producer.send(topic, key=f"k{i % 12}".encode(), value=json.dumps({"seq": i, "phase": phase}).encode())
    producer.flush(timeout=15)


def test_a_member_left_without_partitions_joins_again(kafka_admin, monkeypatch):
    dawdle = threading.Event()
    dawdling(monkeypatch, dawdle)
    ns = config.namespace("readertest")
    topic, group = groups.create_topic(kafka_admin, ns.topic("orders"), 3), ns.group("app")
    seen, owned, restarts, stall = [], {}, [], threading.Event()
    stall.set()
    producer = clients.kafka_producer(metadata_max_age_ms=500)
    readers = [workers.background(scaling.ordered_reader, topic, group, f"m{i}", seen, hold=stall, owned=owned,
                                  restarts=restarts, name=f"readertest-m{i}", metadata_max_age_ms=500,
                                  session_timeout_ms=6000, heartbeat_interval_ms=500) for i in (1, 2)]
    try:
        scaling.wait_members(kafka_admin, group, 2, 3, readers)
        scaling.wait_taken(owned, 3)
        send(producer, topic, 1)
        dawdle.set()
        kafka_admin.create_partitions({topic: NewPartitions(6)})
        scaling.wait_producer_partitions(producer, topic, 6)
        send(producer, topic, 2)
        t0 = time.monotonic()
        scaling.wait_taken(owned, 6)             # 40 s: the left-out member rejoins after LEFT_OUT_S
        print(f"both members hold their share {time.monotonic() - t0:.1f} s after the change; restarts: {restarts}")
        assert len(seen) == 0                    # stalled: nothing processed yet
        dawdle.clear()
        stall.clear()
        workers.wait_until(lambda: len(seen) >= 2 * PER_BURST, 60, "the readers to process both bursts")
        time.sleep(1.0)                          # nothing more should come
        assert len(seen) == 2 * PER_BURST == len({(e["partition"], e["offset"]) for e in seen})
        assert restarts, ("no member was left without partitions: the leader bug did not show, or kafka-python "
                          "fixed it (then scaling.LEFT_OUT_S and this test can go)")
    finally:
        stall.clear()
        for task in readers:
            task.stop()
        producer.close(timeout=10)
        clients.cleanup_kafka(kafka_admin, ns)
