"""Exceptions that show one clear sentence in Jupyter instead of a long traceback, and the sentence
for a server that went away in the middle of a notebook.

:func:`explain` turns a redis-py or kafka-python connection error (or a wait that timed out because a
server died) into one sentence naming the service, its address (password masked) and the fix;
:func:`install_ipython_handler` makes IPython show that sentence instead of the traceback. The
notebooks get both through ``require_redis()`` / ``require_kafka()``.
"""

from __future__ import annotations

import socket
import sys

START_HINT = "start the course services with `make services-up` (or `python -m helpers.services up`)"
SERVICES = {"redis": ("Redis", "REDIS_URL"), "kafka": ("Kafka", "KAFKA_BOOTSTRAP")}


class CourseError(RuntimeError):
    """Base class: IPython renders it as its message alone (no 40-line traceback)."""

    def _render_traceback_(self) -> list[str]:  # IPython hook
        return [f"\x1b[1;31m{type(self).__name__}\x1b[0m: {self}"]


class ServiceUnavailable(CourseError):
    """A course service (Redis or Kafka) cannot be reached; the message says what to run."""


class ServiceSetupError(CourseError):
    """A service could not be installed or started; the message names the fix."""


class PortTaken(ServiceSetupError):
    """A port the course wants is held by a process the course did not start."""


class CleanupIncomplete(CourseError):
    """A cleanup could not remove what it deleted (a topic still listed, or created again); the
    message says why and what to run."""


class ServiceDown(BaseException):
    """Raised into a running cell when a server it uses went away (see :mod:`helpers.watchdog`).

    A BaseException, so an ``except Exception`` in the cell's code cannot swallow it.
    """

    _render_traceback_ = CourseError._render_traceback_


# --- the sentence -----------------------------------------------------------------------------
def address(service: str) -> str:
    """The address the notebooks use for ``service``, with any password masked."""
    from . import config

    return config.mask_url(config.redis_url()) if service == "redis" else config.kafka_bootstrap()


def fix_hint(service: str) -> str:
    """`make services-up` for the course's own servers; the variable to check for an external one."""
    from . import config

    return f"check the server at {SERVICES[service][1]}" if config.is_external(service) else START_HINT


def down_sentence(service: str, reason: str) -> str:
    """One sentence: which service stopped answering, where, why, and the fix."""
    name = SERVICES[service][0]
    return (f"{name} stopped answering at {address(service)} ({reason}): {fix_hint(service)}, "
            "then run this notebook again from the top.")


def endpoints(service: str) -> list[tuple[str, int]]:
    """(host, port) pairs of ``service`` as configured (no connection made)."""
    from urllib.parse import urlsplit

    from . import config

    if service == "redis":
        parts = urlsplit(config.redis_url())
        return [(parts.hostname or "127.0.0.1", parts.port or 6379)] if parts.scheme != "unix" else []
    from .kafka_clients import parse_bootstrap

    return parse_bootstrap(config.kafka_bootstrap())


def probe(service: str, timeout: float = 1.0) -> str | None:
    """None when one server of ``service`` accepts a TCP connection, else why not (e.g. 'connection refused')."""
    try:
        servers = endpoints(service)
    except Exception:  # noqa: BLE001  (a bad address is require_*'s sentence, not ours)
        return None
    reason = None
    for host, port in servers:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                return None
        except ConnectionRefusedError:
            reason = "connection refused"
        except OSError as exc:
            reason = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or type(exc).__name__).lower()
    return reason


# --- which errors mean "the server went away" ---------------------------------------------------
USED: set[str] = set()  # services this process required (require_redis / require_kafka add to it)


def _chain(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def suspects(exc: BaseException) -> list[str]:
    """The services an exception may come from: redis-py errors -> redis, kafka-python -> kafka,
    a plain timeout or connection error -> every service this process uses."""
    found: list[str] = []
    redis_exc = sys.modules.get("redis.exceptions")
    kafka_exc = sys.modules.get("kafka.errors")
    for e in _chain(exc):
        if redis_exc and isinstance(e, (redis_exc.ConnectionError, redis_exc.TimeoutError)):
            found.append("redis")
        elif kafka_exc and isinstance(e, kafka_exc.KafkaError):
            found.append("kafka")
        elif isinstance(e, (TimeoutError, ConnectionError)):
            found.extend(sorted(USED))
    return list(dict.fromkeys(found))


def explain(exc: BaseException) -> str | None:
    """The course's one sentence for ``exc`` when a server it used is gone (probed now), else None."""
    if isinstance(exc, (ServiceDown, ServiceUnavailable)):
        return str(exc)
    redis_exc = sys.modules.get("redis.exceptions")
    if redis_exc and any(isinstance(e, redis_exc.AuthenticationError) for e in _chain(exc)):
        return f"Redis at {address('redis')} refused the login: check the password in REDIS_URL."
    for service in suspects(exc):
        reason = probe(service)
        if reason:
            return down_sentence(service, reason)
    return None


# --- IPython: show the sentence instead of the traceback -----------------------------------------
def _handler(shell, etype, value, tb, tb_offset=None):
    sentence = explain(value)
    if sentence is None:
        shell.showtraceback((etype, value, tb), tb_offset=tb_offset)
    else:
        shell.showtraceback((ServiceUnavailable, ServiceUnavailable(sentence), None))
    return None


def install_ipython_handler() -> bool:
    """Route connection errors of a notebook cell through :func:`explain` (idempotent; False outside IPython)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    if shell is None:
        return False
    types = [ServiceDown, TimeoutError, ConnectionError]
    if "redis.exceptions" in sys.modules:
        types += [sys.modules["redis.exceptions"].ConnectionError, sys.modules["redis.exceptions"].TimeoutError]
    if "kafka.errors" in sys.modules:
        types.append(sys.modules["kafka.errors"].KafkaError)
    shell.set_custom_exc(tuple(dict.fromkeys(types)), _handler)
    return True
