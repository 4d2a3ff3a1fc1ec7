"""Issue 7, version floors: what the lessons say about client behaviour holds whatever supported
library version is installed, because the factories set it explicitly and pyproject's floors allow
no older library. Reads the factories' effective configuration."""

import re
from importlib import metadata

from helpers import clients, config, pubsub


def floors() -> dict[str, tuple[int, ...]]:
    """``{"redis": (6,), ...}``: the ``>=`` floors of pyproject.toml's dependencies."""
    text = (config.PROJECT_ROOT / "pyproject.toml").read_text()
    deps = text.split("dependencies = [", 1)[1].split("]", 1)[0]
    return {name: tuple(int(x) for x in floor.split("."))
            for name, floor in re.findall(r'"([A-Za-z0-9_.-]+)>=([0-9.]+)', deps)}


def version(pkg: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", metadata.version(pkg))[:3])


def test_pyproject_floors_exclude_the_versions_with_other_defaults():
    f = floors()
    assert f["kafka-python"] >= (3, 0)  # 2.x: acks=1, no idempotence, 10 s session timeout
    assert f["redis"] >= (6,)  # 5.x: no retry by default, a PubSub raised instead of reconnecting
    assert version("kafka-python") >= f["kafka-python"] and version("redis") >= f["redis"]


def test_kafka_factories_set_what_the_lessons_rely_on(kafka_admin):
    producer = clients.kafka_producer()
    try:
        assert producer.config["acks"] == -1  # 'all': every in-sync replica has the record
        assert producer.config["enable_idempotence"] is True
        assert producer.config["delivery_timeout_ms"] <= 30000 and producer.config["max_block_ms"] <= 10000
    finally:
        producer.close(timeout=5)
    consumer = clients.kafka_consumer()
    try:
        assert consumer.config["session_timeout_ms"] == 45000  # "the client default is 45 s"
        assert consumer.config["heartbeat_interval_ms"] == 3000
        assert consumer.config["enable_auto_commit"] is False
        assert consumer.config["reconnect_backoff_max_ms"] <= 1000  # back soon after a broker restart
    finally:
        consumer.close()
    assert clients.kafka_consumer.__doc__ and "session_timeout_ms" in clients.CONSUMER_DEFAULTS


def test_redis_factories_set_their_retry_policy(r):
    plain = clients.redis_client()
    app = pubsub.app_client("streamslab:pytest:defaults")
    try:
        assert plain.get_retry().get_retries() == 0  # a failure is visible, never retried silently
        assert app.get_retry().get_retries() == 3  # an application client reconnects by itself
        assert plain.connection_pool.connection_kwargs["socket_timeout"] == 10
    finally:
        plain.close()
        app.close()
