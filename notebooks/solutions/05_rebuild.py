# Solution for notebook 05, exercise 1: rebuild per-key counts by replaying the topic.
from collections import Counter

from kafka import TopicPartition

from helpers import clients, groups


def rebuild_counts(topic):
    consumer = clients.kafka_consumer(consumer_timeout_ms=5000)     # no group_id: a pure replay
    consumer.assign([TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)])
    consumer.seek_to_beginning()
    counts = Counter(rec.key.decode() for rec in groups.drain(consumer))   # up to the end offsets
    consumer.close()
    return dict(counts)
