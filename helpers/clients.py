"""Client factories with timeouts, and the ``require_*`` preflight checks.

``require_redis()`` / ``require_kafka()`` answer within a few seconds: a client when the server
is there, otherwise one :class:`ServiceUnavailable` sentence that says what to run.
"""

from __future__ import annotations

import re
import socket
import time
from urllib.parse import urlparse

import redis

from . import config
from .errors import ServiceUnavailable

START_HINT = "start the course services with `make services-up` (or `python -m helpers.services up`)"
_HOSTPORT = re.compile(r"^\[?([A-Za-z0-9_.:-]+?)\]?:(\d{1,5})$")


def _check_redis_url(url: str) -> None:
    try:
        parsed = urlparse(url)
        port = parsed.port
    except ValueError as exc:
        raise ServiceUnavailable(
            f"REDIS_URL {url!r} is not a valid address ({exc}); use the form redis://127.0.0.1:6379/0."
        ) from None
    if parsed.scheme not in {"redis", "rediss", "unix"} or (parsed.scheme != "unix" and not parsed.hostname):
        raise ServiceUnavailable(
            f"REDIS_URL {url!r} is not a valid address; use the form redis://127.0.0.1:6379/0."
        )
    if port is not None and not 0 < port < 65536:
        raise ServiceUnavailable(f"REDIS_URL {url!r} has an invalid port; use 1-65535.")


def redis_client(url: str | None = None, *, decode_responses: bool = True, **kwargs) -> redis.Redis:
    """A redis-py client with connect and read timeouts (no call can hang forever)."""
    url = url or config.redis_url()
    _check_redis_url(url)
    kwargs.setdefault("socket_connect_timeout", 2)
    kwargs.setdefault("socket_timeout", 10)
    kwargs.setdefault("health_check_interval", 0)
    return redis.Redis.from_url(url, decode_responses=decode_responses, **kwargs)


def require_redis(url: str | None = None, *, timeout: float = 3.0) -> redis.Redis:
    """Return a client after a successful PING, or raise one clear sentence within ``timeout``."""
    url = url or config.redis_url()
    client = redis_client(url, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        client.ping()
    except redis.exceptions.AuthenticationError as exc:
        raise ServiceUnavailable(f"Redis at {url} refused the login ({exc}); check the password in REDIS_URL.") from None
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as exc:
        reason = re.sub(r"^Error \d+ connecting to \S+?\. ", "", str(exc)).rstrip(".") or type(exc).__name__
        raise ServiceUnavailable(f"Redis is not reachable at {url} ({reason}): {START_HINT}.") from None
    return redis_client(url)


def parse_bootstrap(bootstrap: str) -> list[tuple[str, int]]:
    """Split ``host:port[,host:port]``; a malformed string raises :class:`ServiceUnavailable`."""
    servers = []
    for part in (bootstrap or "").split(","):
        m = _HOSTPORT.match(part.strip())
        if not m or not 0 < int(m.group(2)) < 65536:
            raise ServiceUnavailable(
                f"KAFKA_BOOTSTRAP {bootstrap!r} is not a valid address list; use the form 127.0.0.1:9092."
            )
        servers.append((m.group(1), int(m.group(2))))
    return servers


def _tcp_reachable(servers: list[tuple[str, int]], timeout: float) -> str | None:
    """None if one server accepts a TCP connection, else the last error text."""
    error = "no server"
    for host, port in servers:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                return None
        except OSError as exc:
            error = exc.strerror or str(exc)
    return error


def kafka_admin(bootstrap: str | None = None, **overrides):
    """A kafka-python admin client with short timeouts."""
    from kafka import KafkaAdminClient

    opts = dict(bootstrap_servers=bootstrap or config.kafka_bootstrap(), request_timeout_ms=15000,
                bootstrap_timeout_ms=5000, client_id="streamslab-admin")
    opts.update(overrides)
    return KafkaAdminClient(**opts)


def kafka_producer(bootstrap: str | None = None, **overrides):
    """A kafka-python producer (acks='all' and idempotence are kafka-python 3's defaults)."""
    from kafka import KafkaProducer

    opts = dict(bootstrap_servers=bootstrap or config.kafka_bootstrap(), request_timeout_ms=15000,
                bootstrap_timeout_ms=5000, max_block_ms=10000, client_id="streamslab-producer")
    opts.update(overrides)
    return KafkaProducer(**opts)


def kafka_consumer(*topics: str, bootstrap: str | None = None, **overrides):
    """A kafka-python consumer; pass ``consumer_timeout_ms`` so iteration always ends."""
    from kafka import KafkaConsumer

    opts = dict(bootstrap_servers=bootstrap or config.kafka_bootstrap(), request_timeout_ms=15000,
                bootstrap_timeout_ms=5000, consumer_timeout_ms=5000, auto_offset_reset="earliest",
                enable_auto_commit=False, client_id="streamslab-consumer")
    opts.update(overrides)
    return KafkaConsumer(*topics, **opts)


def drain_assigned(consumer, timeout: float = 20.0) -> list:
    """Poll an ``assign()``-ed consumer until it reaches the end offsets it saw at the start.

    Returns the records in the order ``poll`` handed them out (the *receive order*); raises
    TimeoutError after ``timeout`` seconds instead of polling for ever.
    """
    parts = list(consumer.assignment())
    end = consumer.end_offsets(parts, timeout_ms=10000)
    records, deadline = [], time.monotonic() + timeout
    while any(consumer.position(tp, timeout_ms=10000) < end[tp] for tp in parts):
        if time.monotonic() > deadline:
            raise TimeoutError(f"the read did not reach the end offsets within {timeout} s")
        for batch in consumer.poll(timeout_ms=200).values():
            records.extend(batch)
    return records


def require_kafka(bootstrap: str | None = None, *, timeout: float = 4.0):
    """Return an admin client after the broker answered, or raise one clear sentence within ``timeout``."""
    bootstrap = bootstrap or config.kafka_bootstrap()
    servers = parse_bootstrap(bootstrap)
    deadline = time.monotonic() + timeout
    error = _tcp_reachable(servers, timeout=min(2.0, timeout))
    if error is not None:
        raise ServiceUnavailable(f"Kafka is not reachable at {bootstrap} ({error}): {START_HINT}.")
    from kafka.errors import KafkaError

    left_ms = max(500, int((deadline - time.monotonic()) * 1000))
    try:
        admin = kafka_admin(bootstrap, bootstrap_timeout_ms=left_ms, request_timeout_ms=max(left_ms, 1000))
        admin.describe_cluster()
    except (KafkaError, OSError) as exc:
        raise ServiceUnavailable(
            f"Kafka at {bootstrap} accepted a connection but did not answer as a broker ({type(exc).__name__}); "
            f"if it is still starting wait a few seconds, otherwise {START_HINT}."
        ) from None
    return admin


def cleanup_redis(client: redis.Redis, ns: config.Namespace, *, previous_runs: bool = False) -> int:
    """Delete this run's keys (or, with ``previous_runs``, every run of this notebook). Returns the count."""
    pattern = (ns.notebook_prefix if previous_runs else ns.prefix) + "*"
    deleted = 0
    batch = []
    for key in client.scan_iter(match=pattern, count=500):
        batch.append(key)
        if len(batch) >= 500:
            deleted += client.unlink(*batch)
            batch.clear()
    if batch:
        deleted += client.unlink(*batch)
    return deleted


def cleanup_kafka(admin, ns: config.Namespace, *, previous_runs: bool = False, wait: float = 15.0) -> dict:
    """Delete this run's topics and consumer groups (or every run's, with ``previous_runs``), then
    wait up to ``wait`` seconds until the broker no longer lists the topics."""
    prefix = ns.kafka_notebook_prefix if previous_runs else ns.kafka_prefix
    topics = [t for t in admin.list_topics() if t.startswith(prefix)]
    groups = [g.get("group_id") if isinstance(g, dict) else g[0] for g in admin.list_groups()]
    groups = [g for g in groups if isinstance(g, str) and g.startswith(prefix)]
    if groups:
        admin.delete_groups(groups)
    if topics:
        admin.delete_topics(topics, timeout_ms=15000)
        deadline = time.monotonic() + wait
        while any(t.startswith(prefix) for t in admin.list_topics()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"topics under {prefix} still listed {wait} s after deletion")
            time.sleep(0.2)
    return {"topics": len(topics), "groups": len(groups)}
