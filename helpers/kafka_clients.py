"""Kafka clients: the kafka-python factories with short timeouts and the lessons' defaults,
``require_kafka()``, and the cleanup of a run's topics and groups.

Notebooks reach these through :mod:`helpers.clients` (``clients.require_kafka()``,
``clients.kafka_producer()``, ...), which re-exports every public name; the Redis half lives there.
The factories set explicitly every client default the lessons rely on (acks, idempotence, session
timeout) and apply the KAFKA_SECURITY_PROTOCOL / KAFKA_SASL_* / KAFKA_SSL_* settings when the
servers are the course's Kafka (see :mod:`helpers.kafka_security`).
"""

from __future__ import annotations

import re
import socket
import time
from collections import Counter

from . import config, errors, kafka_security, security_check
from .errors import ServiceUnavailable

_HOSTPORT = re.compile(r"^\[?([A-Za-z0-9_.:-]+?)\]?:(\d{1,5})$")


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


#: every kafka-python client: short timeouts, and a quick reconnect once a restarted broker is back
#: (kafka-python 3's reconnect back-off grows to 30 s by default)
KAFKA_COMMON = dict(request_timeout_ms=15000, bootstrap_timeout_ms=5000, reconnect_backoff_ms=50,
                    reconnect_backoff_max_ms=1000)
#: producers and consumers never ask the broker to create a topic: the course creates its topics
#: explicitly, and kafka-python's default (allow_auto_create_topics=True) puts allowAutoTopicCreation
#: in every MetadataRequest, so on a broker with auto.create.topics.enable=true (the course's, and
#: Kafka's default) a request the broker handles just after a cleanup deleted the topic created it
#: again, empty: even one sent before close(), queued on the connection behind a long-poll fetch
#: (see :func:`_honour_auto_create`)
NO_AUTO_CREATE = dict(allow_auto_create_topics=False)
#: what the lessons say about producers: every write waits for all in-sync replicas, and retries
#: cannot duplicate (kafka-python 3's defaults; kafka-python 2.x had acks=1 and no idempotence)
PRODUCER_DEFAULTS = dict(acks="all", enable_idempotence=True, max_block_ms=10000, delivery_timeout_ms=30000,
                         **NO_AUTO_CREATE)
#: what the lessons say about group members: declared dead after 45 s of silence, heartbeat every
#: 3 s, 5 minutes between polls (kafka-python 3 = the Java client since Kafka 3.0; 2.x used 10 s)
CONSUMER_DEFAULTS = dict(session_timeout_ms=45000, heartbeat_interval_ms=3000, max_poll_interval_ms=300000,
                         consumer_timeout_ms=5000, auto_offset_reset="earliest", enable_auto_commit=False,
                         **NO_AUTO_CREATE)


def _kafka_opts(bootstrap: str | None, client_id: str, *defaults: dict) -> dict:
    """Options every kafka-python factory starts from: the servers, short timeouts, the lesson's
    defaults, and the KAFKA_* security settings when ``bootstrap`` is the course's Kafka."""
    bootstrap = bootstrap or config.kafka_bootstrap()
    opts = dict(bootstrap_servers=bootstrap, client_id=client_id, **KAFKA_COMMON)
    for extra in defaults:
        opts.update(extra)
    opts.update(kafka_security.kafka_for(bootstrap).kafka_python())
    return opts


def librdkafka_config(bootstrap: str | None = None, **overrides) -> dict:
    """The config dict of a confluent-kafka (librdkafka) client of the course's Kafka (or ``bootstrap``),
    security settings included: ``Producer(clients.librdkafka_config(**{"client.id": "x"}))``."""
    return kafka_security.librdkafka_config(bootstrap, **overrides)


def kafka_admin(bootstrap: str | None = None, **overrides):
    """A kafka-python admin client with short timeouts."""
    from kafka import KafkaAdminClient

    opts = _kafka_opts(bootstrap, "streamslab-admin")
    opts.update(overrides)
    return KafkaAdminClient(**opts)


def _honour_auto_create(client):
    """Make ``client``'s MetadataRequests carry its own ``allow_auto_create_topics``.

    kafka-python 3.0.12 keeps the setting in ``client.config`` but builds the ClusterMetadata that
    writes the requests without it (KafkaConnectionManager passes it three settings), so every request
    says allowAutoTopicCreation=true whatever the setting: the broker's request log showed it for a
    producer made with False. The requests read the flag from that ClusterMetadata's config when they
    are built, so setting it there takes effect from the next request."""
    cluster = client._metadata if hasattr(client, "_metadata") else client._client.cluster
    cluster.config["allow_auto_create_topics"] = client.config["allow_auto_create_topics"]
    return client


def kafka_producer(bootstrap: str | None = None, **overrides):
    """A kafka-python producer with acks='all' and idempotence set explicitly (:data:`PRODUCER_DEFAULTS`);
    it never has the broker create a topic (:data:`NO_AUTO_CREATE`) unless ``allow_auto_create_topics=True``."""
    from kafka import KafkaProducer

    opts = _kafka_opts(bootstrap, "streamslab-producer", PRODUCER_DEFAULTS)
    opts.update(overrides)
    return _honour_auto_create(KafkaProducer(**opts))


def kafka_consumer(*topics: str, bootstrap: str | None = None, **overrides):
    """A kafka-python consumer (:data:`CONSUMER_DEFAULTS`); ``consumer_timeout_ms`` makes iteration end.
    A topic it subscribes to or is assigned must exist: it never has the broker create one."""
    from kafka import KafkaConsumer

    opts = _kafka_opts(bootstrap, "streamslab-consumer", CONSUMER_DEFAULTS)
    opts.update(overrides)
    return _honour_auto_create(KafkaConsumer(*topics, **opts))


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
        raise ServiceUnavailable(f"Kafka is not reachable at {bootstrap} ({error}): {errors.fix_hint('kafka')}.")
    from kafka.errors import KafkaError

    left_ms = max(500, int((deadline - time.monotonic()) * 1000))
    kafka_security.kafka_for(bootstrap)  # a wrong KAFKA_* setting: its sentence before any connection
    try:
        admin = kafka_admin(bootstrap, bootstrap_timeout_ms=left_ms, request_timeout_ms=max(left_ms, 1000))
        admin.describe_cluster()
    except (KafkaError, OSError) as exc:
        why = security_check.explain_kafka(bootstrap, servers)  # TLS or a login, when that is the reason
        if why:
            raise ServiceUnavailable(why) from None
        raise ServiceUnavailable(
            f"Kafka at {bootstrap} accepted a connection but did not answer as a broker ({type(exc).__name__}); "
            f"if it is still starting wait a few seconds, otherwise {errors.fix_hint('kafka')}."
        ) from None
    from . import watchdog

    watchdog.arm("kafka")
    return admin


def _retrying(call, wait: float):
    """``call()``, retried for up to ``wait`` s while the broker answers with a retriable error
    (a freshly restarted broker says COORDINATOR_LOAD_IN_PROGRESS until its group coordinator loaded)."""
    from kafka.errors import KafkaError

    deadline = time.monotonic() + wait
    while True:
        try:
            return call()
        except KafkaError as exc:
            if not getattr(exc, "retriable", False) or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


#: how many times :func:`cleanup_kafka` deletes a topic that came back under a new topic id before it
#: says a client is still open
REDELETES = 3


def _listed_ids(admin, topics) -> dict[str, str]:
    """``{name: topic id}`` of those of ``topics`` the broker lists now."""
    listed = sorted(set(topics) & set(admin.list_topics()))
    if not listed:
        return {}
    return {d["name"]: str(d.get("topic_id")) for d in admin.describe_topics(listed) if not d.get("error_code")}


def _delete_topics(admin, topics: list[str], wait: float) -> None:
    """Delete ``topics`` and wait up to ``wait`` s until the broker no longer lists them.

    A topic listed again under a NEW topic id was created again after the delete: a metadata request
    that allows auto-creation reached the broker after it (a client outside the course's factories,
    or a late request of a closed one). Such a topic, empty and in this run's namespace, is deleted
    again, up to :data:`REDELETES` times; more means a client is still open and asking for it."""
    ids = _listed_ids(admin, topics)
    admin.delete_topics(topics, timeout_ms=15000)
    deadline, again = time.monotonic() + wait, Counter()
    while now := _listed_ids(admin, topics):
        back = sorted(t for t, topic_id in now.items() if topic_id != ids.get(t))
        if back:
            again.update(back)
            ids.update({t: now[t] for t in back})
            worst = max(back, key=again.__getitem__)
            if again[worst] > REDELETES:
                raise errors.CleanupIncomplete(
                    f"topic {worst} came back {again[worst]} times after this cleanup deleted it (a new topic id "
                    f"each time): a producer or consumer still open asks the broker for it and the broker creates "
                    f"missing topics (auto.create.topics.enable), so close that client (e.g. producer.close()) "
                    f"and run the cleanup cell again.")
            admin.delete_topics(back, timeout_ms=15000, raise_errors=False)
            continue
        if time.monotonic() > deadline:
            raise errors.CleanupIncomplete(
                f"the broker still lists {', '.join(sorted(now)[:3])} {wait:.0f} s after this cleanup deleted "
                f"{'it' if len(now) == 1 else 'them'} (the same topic id: a busy broker deleting slowly), "
                f"so run the cleanup cell again in a minute.")
        time.sleep(0.2)


def cleanup_kafka(admin, ns: config.Namespace, *, previous_runs: bool = False, wait: float = 15.0) -> dict:
    """Delete this run's topics and consumer groups (with ``previous_runs`` also those of dead runs,
    as :func:`helpers.clients.cleanup_redis`), then wait up to ``wait`` seconds until the broker no
    longer lists the topics (a topic created again after the delete is deleted again: :func:`_delete_topics`).
    Raises :class:`~helpers.errors.CleanupIncomplete` with what to do when they stay."""
    from . import runs

    mine = runs.dead_filter(runs.liveness_client(ns), ns) if previous_runs else (
        lambda name: name.startswith(ns.kafka_prefix))
    topics = [t for t in admin.list_topics() if mine(t)]
    groups = [g.get("group_id") if isinstance(g, dict) else g[0] for g in _retrying(admin.list_groups, wait)]
    groups = [g for g in groups if isinstance(g, str) and mine(g)]
    if groups:
        admin.delete_groups(groups)
    if topics:
        _delete_topics(admin, topics, wait)
    return {"topics": len(topics), "groups": len(groups)}
