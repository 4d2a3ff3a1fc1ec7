import time

from kafka import TopicPartition

from helpers import clients


def read_from(topic: str, partition: int, offset: int) -> list:
    tp = TopicPartition(topic, partition)
    consumer = clients.kafka_consumer(consumer_timeout_ms=2000)   # no group: nothing to join
    try:
        consumer.assign([tp])
        consumer.seek(tp, offset)
        end = consumer.end_offsets([tp], timeout_ms=10000)[tp]
        records, deadline = [], time.monotonic() + 20
        while consumer.position(tp, timeout_ms=10000) < end and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=200).values():
                records.extend(batch)
        return [rec for rec in records if rec.offset < end]
    finally:
        consumer.close()
