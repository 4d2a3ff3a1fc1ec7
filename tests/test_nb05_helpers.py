"""Notebook 05's helpers against the real broker: the waits that made the notebook fail under load.

Issue 7, robustness: on a busy machine notebook 05 once failed with "group ... not stable after 40 s".
The cause was kafka-python 3.0.12 losing a metadata update: ``subscribe()`` asks for the topic's
metadata, but when an older metadata request (without the topic) is still in flight, its response
clears the request, and the next refresh comes 5 minutes later. ``groups.subscribed`` waited 10 s for
metadata that never came, the worker process died, and the wait for its group ran out 40 s later
saying only "not stable". Guarded here: the lost update is reproduced on purpose and
``groups.await_partitions`` still gets the partitions; a wait for a group whose member died ends at
once with that member's own error.
"""

from __future__ import annotations

import threading
import time

import pytest

from helpers import clients, config, groups, workers


@pytest.fixture
def ns(lab):
    ns = config.namespace("nb05")
    yield ns
    workers.stop_all()
    clients.cleanup_kafka(clients.require_kafka(), ns)


def lose_the_subscription_update(consumer, topic: str) -> bool:
    """Make ``consumer.subscribe([topic])`` happen while an older metadata response is in flight (as
    it does by chance under load). Returns True when the subscription's update was lost: one second
    later the consumer still knows no partition of the topic."""
    cluster = consumer._cluster
    groups.wait_for(lambda: not cluster.metadata_refresh_in_progress, 10, "the first metadata refresh")
    original, fired = cluster.update_metadata, threading.Event()

    def late_response(response):  # runs on the client's IO thread, before the response is applied
        cluster.update_metadata = original
        consumer.subscribe([topic])  # its request_update() lands now: this older response clears it
        fired.set()
        return original(response)

    cluster.update_metadata = late_response
    cluster.request_update()
    assert fired.wait(10), "no metadata response arrived"
    time.sleep(1.0)
    return not consumer._coordinator._metadata_snapshot.get(topic)


def test_a_lost_metadata_update_does_not_leave_the_consumer_without_partitions(ns, kafka_admin):
    topic = groups.create_topic(kafka_admin, ns.topic("lost-update"), 2)
    consumer = clients.kafka_consumer(group_id=ns.group("lost-update"), client_id="lost-update",
                                      session_timeout_ms=6000, heartbeat_interval_ms=1000)
    try:
        assert lose_the_subscription_update(consumer, topic), (
            "kafka-python no longer loses this metadata update: groups.await_partitions' re-request may go")
        t0 = time.monotonic()
        assert groups.await_partitions(consumer, topic, timeout=5) == {0, 1}
        assert time.monotonic() - t0 < 5
        deadline = time.monotonic() + 20  # and the group it joins gives it both partitions at once
        while len(consumer.assignment()) < 2 and time.monotonic() < deadline:
            consumer.poll(timeout_ms=200)
        assert sorted(tp.partition for tp in consumer.assignment()) == [0, 1]
    finally:
        consumer.close()


def test_subscribed_joins_knowing_every_partition(ns, kafka_admin):
    topic = groups.create_topic(kafka_admin, ns.topic("known"), 3)
    consumer = groups.subscribed(topic, group_id=ns.group("known"), client_id="known")
    try:
        assert consumer._coordinator._metadata_snapshot[topic] == {0, 1, 2}
    finally:
        consumer.close()


def test_a_wait_for_a_group_ends_at_once_when_a_member_died(ns, kafka_admin):
    topic = groups.create_topic(kafka_admin, ns.topic("dead-member"), 1)
    thread = workers.background(lambda stop: 1 / 0, name="broken-member")
    thread.thread.join(5)
    t0 = time.monotonic()
    with pytest.raises(RuntimeError, match="consumer thread 'broken-member' stopped: ZeroDivisionError"):
        groups.wait_stable(kafka_admin, ns.group("dead-member"), members=1, partitions=1, timeout=30,
                           workers=[thread])
    proc = workers.ProcessWorker("helpers.group_crash:crash_worker", name="broken-worker", topic=topic,
                                 unknown_argument=1).start()
    assert time.monotonic() - t0 < 5
    proc.wait(30)
    t0 = time.monotonic()
    with pytest.raises(RuntimeError, match="consumer process 'broken-worker' exited with code 1: "
                                           "TypeError: .*unexpected keyword argument 'unknown_argument'"):
        groups.wait_stable(kafka_admin, ns.group("dead-member"), members=1, partitions=1, timeout=30,
                           workers=[proc])
    assert time.monotonic() - t0 < 5
