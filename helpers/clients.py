"""Client factories with timeouts, and the ``require_*`` preflight checks.

``require_redis()`` / ``require_kafka()`` answer within a few seconds: a client when the server
is there, otherwise one :class:`ServiceUnavailable` sentence that says what to run. In a notebook
they also make a server that dies later end the running cell with one sentence (see
:mod:`helpers.errors` and :mod:`helpers.watchdog`).

The factories set explicitly every client default the lessons rely on (acks, idempotence, session
timeout, retries), so the prose holds whichever supported library version is installed. They also
apply the secured-server settings (a ``rediss://`` URL with REDIS_TLS_*: see :mod:`helpers.security`;
Kafka's KAFKA_SECURITY_PROTOCOL / KAFKA_SASL_* / KAFKA_SSL_*: see :mod:`helpers.kafka_security`), so
every notebook works against a classroom's secured servers unchanged.

The Redis clients live here; the Kafka ones (options, factories, ``require_kafka``, ``cleanup_kafka``)
live in :mod:`helpers.kafka_clients` and are re-exported below, so a notebook calls them all as
``clients.<name>``.
"""

from __future__ import annotations

import re
from urllib.parse import urlparse

import redis
from redis.backoff import ExponentialWithJitterBackoff, NoBackoff
from redis.retry import Retry

from . import config, errors, security, security_check
from .errors import ServiceUnavailable
from .kafka_clients import (
    CONSUMER_DEFAULTS,
    KAFKA_COMMON,
    PRODUCER_DEFAULTS,
    cleanup_kafka,
    drain_assigned,
    kafka_admin,
    kafka_consumer,
    kafka_producer,
    librdkafka_config,
    parse_bootstrap,
    require_kafka,
)

__all__ = [
    "APP_RETRY", "NO_RETRY", "START_HINT", "cleanup_redis", "redis_client", "require_redis",
    # re-exported from helpers.kafka_clients
    "CONSUMER_DEFAULTS", "KAFKA_COMMON", "PRODUCER_DEFAULTS", "cleanup_kafka", "drain_assigned", "kafka_admin",
    "kafka_consumer", "kafka_producer", "librdkafka_config", "parse_bootstrap", "require_kafka",
]

START_HINT = errors.START_HINT


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
    from . import watchdog

    watchdog.arm("redis")
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

