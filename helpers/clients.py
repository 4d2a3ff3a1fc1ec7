"""Client factories with timeouts, and the ``require_*`` preflight checks.

``require_redis()`` / ``require_kafka()`` answer within a few seconds: a client when the server
is there, otherwise one :class:`ServiceUnavailable` sentence that says what to run. In a notebook
they also make a server that dies later end the running cell with one sentence (see
:mod:`helpers.errors` and :mod:`helpers.watchdog`).

The factories set explicitly every client default the lessons rely on (acks, idempotence, session
timeout, retries), so the prose holds whichever supported library version is installed. They also
apply the secured-server settings (a ``rediss://`` URL with REDIS_TLS_*, Kafka's KAFKA_SECURITY_PROTOCOL
/ KAFKA_SASL_* / KAFKA_SSL_*: see :mod:`helpers.security`), so every notebook works against a
classroom's secured servers unchanged.
"""

from __future__ import annotations

import re
import socket
import time
from urllib.parse import urlparse

import redis
from redis.backoff import ExponentialWithJitterBackoff, NoBackoff
from redis.retry import Retry

from . import config, errors, security, security_check
from .errors import ServiceUnavailable

START_HINT = errors.START_HINT
_HOSTPORT = re.compile(r"^\[?([A-Za-z0-9_.:-]+?)\]?:(\d{1,5})$")


def _check_redis_url(url: str) -> None:
    shown = config.mask_url(url)
    try:
        parsed = urlparse(url)
        port = parsed.port
    except ValueError as exc:
        raise ServiceUnavailable(
            f"REDIS_URL {shown!r} is not a valid address ({exc}); use the form redis://127.0.0.1:6379/0."
        ) from None
    if parsed.scheme not in {"redis", "rediss", "unix"} or (parsed.scheme != "unix" and not parsed.hostname):
        raise ServiceUnavailable(
            f"REDIS_URL {shown!r} is not a valid address; use the form redis://127.0.0.1:6379/0."
        )
    if port is not None and not 0 < port < 65536:
        raise ServiceUnavailable(f"REDIS_URL {shown!r} has an invalid port; use 1-65535.")


#: redis_client(): no automatic retry, so a failure is visible (set here, not left to the library default)
NO_RETRY = Retry(NoBackoff(), 0)
#: app-style clients (pubsub.app_client): reconnect by themselves, as redis-py >= 6 does by default
APP_RETRY = Retry(ExponentialWithJitterBackoff(base=0.01, cap=1), 3)


def redis_client(url: str | None = None, *, decode_responses: bool = True, **kwargs) -> redis.Redis:
    """A redis-py client with connect and read timeouts (no call can hang forever) and no retries;
    TLS settings for a ``rediss://`` URL (REDIS_TLS_CA / _CERT / _KEY, the server's name verified)."""
    url = url or config.redis_url()
    _check_redis_url(url)
    for key, value in security.redis_ssl_kwargs(url).items():
        kwargs.setdefault(key, value)
    kwargs.setdefault("socket_connect_timeout", 2)
    kwargs.setdefault("socket_timeout", 10)
    kwargs.setdefault("health_check_interval", 0)
    kwargs.setdefault("retry", NO_RETRY)
    return redis.Redis.from_url(url, decode_responses=decode_responses, **kwargs)


def require_redis(url: str | None = None, *, timeout: float = 3.0) -> redis.Redis:
    """Return a client after a successful PING, or raise one clear sentence within ``timeout``."""
    url = url or config.redis_url()
    shown = config.mask_url(url)
    client = redis_client(url, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        client.ping()
    except redis.exceptions.AuthenticationError:
        raise ServiceUnavailable(_login_refused(url, shown)) from None
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as exc:
        if not isinstance(exc, redis.exceptions.TimeoutError) or urlparse(url).scheme == "rediss":
            tls_reason = security_check.explain_redis(url, exc)
            if tls_reason:
                raise ServiceUnavailable(tls_reason) from None
        reason = re.sub(r"^Error \d+ connecting to \S+?\. ", "", str(exc)).rstrip(".") or type(exc).__name__
        if "closed by server" in reason.lower():
            raise _not_redis(shown, reason) from None
        if isinstance(exc, redis.exceptions.TimeoutError) and "reading" in reason.lower():
            raise ServiceUnavailable(f"the server at {shown} accepted a connection but did not answer within "
                                     f"{timeout:g} s: {errors.fix_hint('redis')}.") from None
        raise ServiceUnavailable(f"Redis is not reachable at {shown} ({reason}): {errors.fix_hint('redis')}.") from None
    except redis.exceptions.RedisError as exc:  # InvalidResponse, a protocol error, an unknown reply
        raise _not_redis(shown, type(exc).__name__) from None
    finally:
        client.close()
    _watch("redis")
    return redis_client(url)


def _login_refused(url: str, shown: str) -> str:
    parsed = urlparse(url)
    if not parsed.password:
        return (f"Redis at {shown} asks for a password: put it in REDIS_URL "
                "(redis://user:password@host:port/0, or redis://:password@... for the default user).")
    who = f"user {parsed.username!r}" if parsed.username else "the default user"
    return f"Redis at {shown} refused the login of {who}: check the password in REDIS_URL (and the user name)."


def _not_redis(shown: str, reason: str) -> ServiceUnavailable:
    return ServiceUnavailable(f"the server at {shown} answered, but not as Redis ({reason}): "
                              "check that REDIS_URL names a Redis server (its host and port).")


def _watch(service: str) -> None:
    """In a notebook: a later death of ``service`` ends the running cell with one sentence."""
    from . import watchdog

    errors.USED.add(service)
    errors.install_ipython_handler()
    watchdog.watch(service)


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
#: what the lessons say about producers: every write waits for all in-sync replicas, and retries
#: cannot duplicate (kafka-python 3's defaults; kafka-python 2.x had acks=1 and no idempotence)
PRODUCER_DEFAULTS = dict(acks="all", enable_idempotence=True, max_block_ms=10000, delivery_timeout_ms=30000)
#: what the lessons say about group members: declared dead after 45 s of silence, heartbeat every
#: 3 s, 5 minutes between polls (kafka-python 3 = the Java client since Kafka 3.0; 2.x used 10 s)
CONSUMER_DEFAULTS = dict(session_timeout_ms=45000, heartbeat_interval_ms=3000, max_poll_interval_ms=300000,
                         consumer_timeout_ms=5000, auto_offset_reset="earliest", enable_auto_commit=False)


def _kafka_opts(bootstrap: str | None, client_id: str, *defaults: dict) -> dict:
    """Options every kafka-python factory starts from: the servers, short timeouts, the lesson's
    defaults, and the KAFKA_* security settings when ``bootstrap`` is the course's Kafka."""
    bootstrap = bootstrap or config.kafka_bootstrap()
    opts = dict(bootstrap_servers=bootstrap, client_id=client_id, **KAFKA_COMMON)
    for extra in defaults:
        opts.update(extra)
    opts.update(security.kafka_for(bootstrap).kafka_python())
    return opts


def librdkafka_config(bootstrap: str | None = None, **overrides) -> dict:
    """The config dict of a confluent-kafka (librdkafka) client of the course's Kafka (or ``bootstrap``),
    security settings included: ``Producer(clients.librdkafka_config(**{"client.id": "x"}))``."""
    return security.librdkafka_config(bootstrap, **overrides)


def kafka_admin(bootstrap: str | None = None, **overrides):
    """A kafka-python admin client with short timeouts."""
    from kafka import KafkaAdminClient

    opts = _kafka_opts(bootstrap, "streamslab-admin")
    opts.update(overrides)
    return KafkaAdminClient(**opts)


def kafka_producer(bootstrap: str | None = None, **overrides):
    """A kafka-python producer with acks='all' and idempotence set explicitly (:data:`PRODUCER_DEFAULTS`)."""
    from kafka import KafkaProducer

    opts = _kafka_opts(bootstrap, "streamslab-producer", PRODUCER_DEFAULTS)
    opts.update(overrides)
    return KafkaProducer(**opts)


def kafka_consumer(*topics: str, bootstrap: str | None = None, **overrides):
    """A kafka-python consumer (:data:`CONSUMER_DEFAULTS`); ``consumer_timeout_ms`` makes iteration end."""
    from kafka import KafkaConsumer

    opts = _kafka_opts(bootstrap, "streamslab-consumer", CONSUMER_DEFAULTS)
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
        raise ServiceUnavailable(f"Kafka is not reachable at {bootstrap} ({error}): {errors.fix_hint('kafka')}.")
    from kafka.errors import KafkaError

    left_ms = max(500, int((deadline - time.monotonic()) * 1000))
    security.kafka_for(bootstrap)  # a wrong KAFKA_* setting: its sentence before any connection
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
    _watch("kafka")
    return admin


def cleanup_redis(client: redis.Redis, ns: config.Namespace, *, previous_runs: bool = False) -> int:
    """Delete this run's keys; with ``previous_runs`` also those of this notebook's DEAD runs (a run
    whose kernel no longer refreshes its heartbeat, see :mod:`helpers.runs`). Names of a run that is
    still alive (another kernel, same learner) are never touched, on a throwaway server too: liveness
    is read where the heartbeats are (the course's Redis), not on ``client``. Returns the count."""
    from . import runs

    keep = runs.dead_filter(runs.liveness_client(ns), ns) if previous_runs else (
        lambda key: key.startswith(ns.prefix))
    pattern = (ns.notebook_prefix if previous_runs else ns.prefix) + "*"
    deleted = 0
    batch = []
    for key in client.scan_iter(match=pattern, count=500):
        if not keep(key.decode() if isinstance(key, bytes) else key):
            continue
        batch.append(key)
        if len(batch) >= 500:
            deleted += client.unlink(*batch)
            batch.clear()
    if batch:
        deleted += client.unlink(*batch)
    return deleted


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


def cleanup_kafka(admin, ns: config.Namespace, *, previous_runs: bool = False, wait: float = 15.0) -> dict:
    """Delete this run's topics and consumer groups (with ``previous_runs`` also those of dead runs,
    as :func:`cleanup_redis`), then wait up to ``wait`` seconds until the broker no longer lists them."""
    from . import runs

    mine = runs.dead_filter(runs.liveness_client(ns), ns) if previous_runs else (
        lambda name: name.startswith(ns.kafka_prefix))
    topics = [t for t in admin.list_topics() if mine(t)]
    groups = [g.get("group_id") if isinstance(g, dict) else g[0] for g in _retrying(admin.list_groups, wait)]
    groups = [g for g in groups if isinstance(g, str) and mine(g)]
    if groups:
        admin.delete_groups(groups)
    if topics:
        admin.delete_topics(topics, timeout_ms=15000)
        deadline = time.monotonic() + wait
        while set(topics) & set(admin.list_topics()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"topics {sorted(topics)[:3]} still listed {wait} s after deletion")
            time.sleep(0.2)
    return {"topics": len(topics), "groups": len(groups)}
