"""Plumbing for notebook 01 (Redis Pub/Sub): sequence-numbered payloads, listeners that never block
the kernel, a raw subscriber that stops reading, and a safe way to lower (and restore) the server's
``client-output-buffer-limit pubsub`` setting.

The lesson's own calls (PUBLISH, SUBSCRIBE, CONFIG GET/SET, CLIENT LIST) stay in the notebook.
The output-buffer-limit experiment and the Redis log helpers live in :mod:`helpers.pubsub_limit`;
their public names are re-exported here, so the notebook calls them as ``pubsub.limit_experiment(r)``.
"""

from __future__ import annotations

import socket
import threading
import time
from contextlib import suppress
from urllib.parse import urlparse

import redis

from . import config, security
from .pubsub_limit import (
    LIMIT_LOCK,
    LIMIT_NAME,
    LIMIT_STASH,
    limit_experiment,
    limit_holder,
    limit_setting,
    log_lines,
    log_size,
    original_output_limit,
    output_limit,
    pubsub_class,
    recover_output_limit,
    restore_output_limit,
)
from .workers import background

__all__ = [
    "Listener", "RawSubscriber", "app_client", "close_quietly", "drain", "drain_seqs", "named_clients", "payload",
    "seq_of", "wait_gone",
    # re-exported from helpers.pubsub_limit
    "LIMIT_LOCK", "LIMIT_NAME", "LIMIT_STASH", "limit_experiment", "limit_holder", "limit_setting", "log_lines",
    "log_size", "original_output_limit", "output_limit", "pubsub_class", "recover_output_limit",
    "restore_output_limit",
]


# --- payloads ----------------------------------------------------------------------------------
def payload(seq: int, size: int = 0, stamp: bool = False) -> str:
    """``"00000042"`` (+ ``"|<perf_counter_ns>"`` when ``stamp``) padded with ``x`` to ``size`` bytes."""
    text = f"{seq:08d}" + (f"|{time.perf_counter_ns()}" if stamp else "")
    return text + "|" + "x" * (size - len(text) - 1) if size > len(text) + 1 else text


def seq_of(data) -> int:
    """The sequence number at the start of a payload (str or bytes)."""
    if isinstance(data, bytes):
        data = data.decode()
    return int(data[:8])


def drain(p, *, expected: int | None = None, idle: float = 0.5, timeout: float = 15.0) -> list[dict]:
    """Read messages from a redis-py PubSub until ``expected`` arrived, ``idle`` s passed without
    one, or ``timeout`` s in all. Subscribe confirmations are skipped."""
    out: list[dict] = []
    deadline = time.monotonic() + timeout
    last = time.monotonic()
    while time.monotonic() < deadline and (expected is None or len(out) < expected):
        msg = p.get_message(timeout=0.1)
        if msg and msg["type"] in ("message", "pmessage"):
            out.append(msg)
            last = time.monotonic()
        elif time.monotonic() - last > idle:
            break
    return out


def drain_seqs(p, **kwargs) -> list[int]:
    """:func:`drain`, keeping only the sequence numbers (in arrival order)."""
    return [seq_of(m["data"]) for m in drain(p, **kwargs)]


class Listener:
    """A background loop calling ``p.get_message(timeout=0.1)`` and keeping what arrives.

    ``.seqs`` (arrival order), ``.latencies_ms`` (for stamped payloads), ``.errors`` (exceptions the
    loop saw: an application would have seen them too), ``.wait_for(n, timeout)``, ``.stop()``.
    """

    def __init__(self, p, name: str = "listener"):
        self.p = p
        self.seqs: list[int] = []
        self.latencies_ms: list[float] = []
        self.errors: list[str] = []
        self._arrived = threading.Condition()
        self.task = background(self._loop, name=name)

    def _loop(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                msg = self.p.get_message(timeout=0.1)
            except redis.RedisError as exc:
                self.errors.append(f"{type(exc).__name__}: {exc}")
                time.sleep(0.05)
                continue
            if not msg or msg["type"] not in ("message", "pmessage"):
                continue
            now = time.perf_counter_ns()
            data = msg["data"].decode() if isinstance(msg["data"], bytes) else msg["data"]
            parts = data.split("|")
            with self._arrived:
                if len(parts) > 1 and parts[1].isdigit():
                    self.latencies_ms.append((now - int(parts[1])) / 1e6)
                self.seqs.append(int(parts[0]))
                self._arrived.notify_all()

    def wait_for(self, count: int, timeout: float = 10.0) -> bool:
        """Wait until ``count`` messages arrived (True) or ``timeout`` s passed (False)."""
        with self._arrived:
            return self._arrived.wait_for(lambda: len(self.seqs) >= count, timeout)

    def stop(self, close: bool = True) -> list[int]:
        """Stop the loop (and close the subscriber's connection); returns the sequence numbers."""
        self.task.stop(timeout=5)
        if close:
            self.p.close()
        return self.seqs


# --- clients -----------------------------------------------------------------------------------
def app_client(client_name: str, url: str | None = None) -> redis.Redis:
    """A redis-py client built the way applications usually build one, ``redis.Redis(host, port, ...)``,
    with a retry policy: after a connection error it reconnects (and a PubSub re-subscribes) by itself.

    The policy is set explicitly (:data:`helpers.clients.APP_RETRY`, 3 retries with a jittered back-off
    of 10 ms to 1 s) rather than left to the library: redis-py < 6 had no retry by default, so its
    PubSub raised where the lesson shows a silent reconnect."""
    from .clients import APP_RETRY

    parsed = urlparse(url or config.redis_url())
    return redis.Redis(host=parsed.hostname or "127.0.0.1", port=parsed.port or 6379,
                       db=int((parsed.path or "/0").lstrip("/") or 0), password=parsed.password,
                       username=parsed.username, client_name=client_name, decode_responses=True,
                       socket_connect_timeout=2, socket_timeout=10, retry=APP_RETRY,
                       **security.redis_ssl_kwargs(url or config.redis_url(), constructor=True))


def named_clients(r: redis.Redis, prefix: str) -> list[dict]:
    """CLIENT LIST rows whose name starts with ``prefix`` (the columns that tell the story)."""
    cols = ("id", "name", "age", "sub", "psub", "cmd", "obl", "oll", "omem", "tot-mem")
    return [{c: row.get(c) for c in cols} for row in r.client_list() if row.get("name", "").startswith(prefix)]


def wait_gone(r: redis.Redis, prefix: str, timeout: float = 2.0) -> int:
    """Wait until no client named ``prefix...`` is in CLIENT LIST (a closed socket is noticed by the
    server on its next read); returns how many are still there."""
    deadline = time.monotonic() + timeout
    while (left := len(named_clients(r, prefix))) and time.monotonic() < deadline:
        time.sleep(0.02)
    return left


class RawSubscriber:
    """A subscriber on a plain socket that subscribes, then does not read (a stuck consumer).

    Its receive buffer is kept small so the server's output buffer for it fills quickly.
    ``read_rest()`` later reads whatever the kernel still holds, until the server's close.
    """

    def __init__(self, channel: str, name: str, url: str | None = None, rcvbuf: int = 4096):
        parsed = urlparse(url or config.redis_url())
        self.channel, self.name = channel, name
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(5)
        self.sock.connect((parsed.hostname or "127.0.0.1", parsed.port or 6379))
        tls = security.redis_ssl_context(url or config.redis_url())  # a rediss:// URL: TLS as every client
        if tls is not None:
            self.sock = tls.wrap_socket(self.sock, server_hostname=parsed.hostname or "127.0.0.1")
        cmds = [["CLIENT", "SETNAME", name], ["SUBSCRIBE", channel]]
        if parsed.password:
            cmds.insert(0, ["AUTH", *([parsed.username] if parsed.username else []), parsed.password])
        self.sock.sendall(b"".join(_encode(c) for c in cmds))
        self.buffer = b""
        self.closed_by_server = False
        deadline = time.monotonic() + 5
        while b"subscribe\r\n" not in self.buffer or not self.buffer.endswith(b"\r\n"):
            if time.monotonic() > deadline:
                raise TimeoutError("the raw subscriber got no SUBSCRIBE confirmation within 5 s")
            self.buffer += self.sock.recv(4096)
        self.buffer = b""  # confirmations read; from here on it reads nothing until read_rest()

    def read_rest(self, timeout: float = 5.0) -> list[int]:
        """Read until the server closed the connection (or ``timeout``); return the sequence numbers."""
        deadline = time.monotonic() + timeout
        self.sock.settimeout(0.5)
        while time.monotonic() < deadline:
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                chunk = b""
            if not chunk:
                self.closed_by_server = True
                break
            self.buffer += chunk
        self.close()
        return [seq_of(m) for m in _messages(self.buffer)]

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


def _encode(args: list[str]) -> bytes:
    out = [f"*{len(args)}\r\n".encode()]
    for a in args:
        b = a.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


def _messages(buf: bytes) -> list[bytes]:
    """Payloads of complete RESP2 ``message`` pushes in ``buf`` (a trailing partial one is dropped)."""
    out, i = [], 0
    while True:
        if not buf.startswith(b"*3\r\n", i):
            return out
        i += 4
        items = []
        for _ in range(3):
            end = buf.find(b"\r\n", i)
            if end < 0 or buf[i:i + 1] != b"$":
                return out
            n = int(buf[i + 1:end])
            if end + 2 + n + 2 > len(buf):
                return out
            items.append(buf[end + 2:end + 2 + n])
            i = end + 2 + n + 2
        if items[0] == b"message":
            out.append(items[2])


def close_quietly(*things) -> int:
    """Close PubSub objects, clients and raw subscribers that exist (None is skipped). Returns the count."""
    closed = 0
    for thing in things:
        if thing is None or not hasattr(thing, "close"):
            continue
        with suppress(OSError, redis.RedisError):  # cleanup goes on whatever state a half-run left
            thing.close()
            closed += 1
    return closed

