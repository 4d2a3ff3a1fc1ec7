"""clients.cleanup_kafka against a real broker that auto-creates topics (the course's broker has
``auto.create.topics.enable=true``, as Kafka's default): a metadata request for a deleted topic from a
client that allows auto-creation brings the topic back, empty, under a new topic id.

That is how notebook 08's cleanup failed once in the classroom drill ("topics [...orders] still listed
15.0 s after deletion"): a reader's MetadataRequest (allowAutoTopicCreation=true) queued on its
connection behind a long-poll FETCH was handled by the broker just after the delete (the broker
handles one request per connection at a time), 28 ms after it, although the reader had closed.
"""

import time

import pytest
from kafka import KafkaProducer

from helpers import clients, config, errors, groups, kafka_clients


def listed(admin, topic: str) -> bool:
    return topic in admin.list_topics()


def topic_id(admin, topic: str) -> str:
    (desc,) = admin.describe_topics([topic])
    return str(desc["topic_id"])


def test_factories_never_ask_the_broker_to_create_a_topic(kafka_admin):
    producer, consumer = clients.kafka_producer(), clients.kafka_consumer()
    try:
        assert producer.config["allow_auto_create_topics"] is False
        assert consumer.config["allow_auto_create_topics"] is False
    finally:
        producer.close(timeout=5)
        consumer.close()


def test_an_open_producer_of_the_run_does_not_bring_its_deleted_topic_back(kafka_admin):
    # the producer refreshes its metadata for the topic every 0.1 s; with auto-creation allowed each
    # refresh after the delete re-created the topic and cleanup_kafka timed out
    ns = config.namespace("cleanuptest")
    topic = groups.create_topic(kafka_admin, ns.topic("orders"), 3)
    producer = clients.kafka_producer(metadata_max_age_ms=100)
    try:
        producer.send(topic, b"x").get(timeout=10)
        assert clients.cleanup_kafka(kafka_admin, ns, wait=10)["topics"] == 1
        for _ in range(10):  # 2 s: twenty of the producer's metadata refreshes
            assert not listed(kafka_admin, topic), "the open producer re-created the deleted topic"
            time.sleep(0.2)
    finally:
        producer.close(timeout=5)
        clients.cleanup_kafka(kafka_admin, ns)


def late_request(topic: str) -> None:
    """One MetadataRequest for ``topic`` with allowAutoTopicCreation=true, from a client outside the
    factories (kafka-python with its default allow_auto_create_topics=True, as a learner's own client)."""
    late = KafkaProducer(bootstrap_servers=config.kafka_bootstrap(), max_block_ms=10000)
    try:
        late.partitions_for(topic)  # the broker creates a missing topic: a new id, 1 partition
    finally:
        late.close(timeout=5)


def test_a_topic_recreated_by_one_late_metadata_request_is_deleted_again(kafka_admin, monkeypatch):
    # the request reaches the broker just after the delete (as the reader's request queued behind its fetch)
    ns = config.namespace("cleanuptest")
    topic = groups.create_topic(kafka_admin, ns.topic("orders"), 3)
    first_id = topic_id(kafka_admin, topic)
    real_delete, came_back = kafka_admin.delete_topics, []

    def delete_then_late_request(topics, **kw):
        result = real_delete(topics, **kw)
        if not came_back:
            late_request(topic)
            came_back.append(topic_id(kafka_admin, topic))
        return result

    monkeypatch.setattr(kafka_admin, "delete_topics", delete_then_late_request)
    try:
        assert clients.cleanup_kafka(kafka_admin, ns, wait=10)["topics"] == 1
        assert came_back and came_back[0] != first_id  # it really was created again
        assert not listed(kafka_admin, topic)
    finally:
        monkeypatch.undo()
        clients.cleanup_kafka(kafka_admin, ns)


def test_a_topic_that_keeps_coming_back_names_the_open_client(kafka_admin, monkeypatch):
    # a client that asks for the topic after every delete: deleting again cannot win, so the cleanup
    # says what to do (close the client, run the cleanup again) instead of a bare timeout
    ns = config.namespace("cleanuptest")
    topic = groups.create_topic(kafka_admin, ns.topic("orders"), 1)
    real_delete, deletes = kafka_admin.delete_topics, []

    def delete_then_late_request(topics, **kw):
        result = real_delete(topics, **kw)
        deletes.append(topics)
        late_request(topic)
        return result

    monkeypatch.setattr(kafka_admin, "delete_topics", delete_then_late_request)
    try:
        with pytest.raises(errors.CleanupIncomplete) as info:
            clients.cleanup_kafka(kafka_admin, ns, wait=30)
        message = str(info.value)
        assert len(deletes) == 1 + kafka_clients.REDELETES
        assert topic in message and "still open" in message and "run the cleanup cell again" in message
        assert "\n" not in message
    finally:
        monkeypatch.undo()
        clients.cleanup_kafka(kafka_admin, ns)
    assert not listed(kafka_admin, topic)
