"""Notebook 00's preflight: versions, resources, and one timed round trip per messaging model.

Each check returns a row ``{"check", "status", "measured", "fix"}`` with status 🟢 / 🟡 / 🔴, so
the notebook can show one traffic-light table and a specific fix for each failure.
"""

from __future__ import annotations

import platform
import sys
import time
import uuid
from importlib import metadata

from . import clients, config
from .errors import CourseError

GREEN, AMBER, RED = "🟢", "🟡", "🔴"
PACKAGES = ["redis", "kafka-python", "jupyterlab", "ipywidgets", "pandas", "altair", "testbook"]


def row(check: str, status: str, measured: str, fix: str = "") -> dict:
    return {"check": check, "status": status, "measured": measured, "fix": fix}


def versions() -> list[dict]:
    """Python and client library versions (Python >= 3.10 and each package importable)."""
    ok = sys.version_info >= (3, 10)
    rows = [row("python", GREEN if ok else RED, platform.python_version(),
                "" if ok else "use Python 3.10 or newer (make setup builds .venv with python3)")]
    for pkg in PACKAGES:
        try:
            rows.append(row(pkg, GREEN, metadata.version(pkg)))
        except metadata.PackageNotFoundError:
            rows.append(row(pkg, RED, "missing", "run `make setup` (pip install -e '.[dev]')"))
    return rows


def resources(min_free_gb: float = 1.0) -> list[dict]:
    """Free memory and the course's endpoints."""
    import psutil

    free = psutil.virtual_memory().available / 2**30
    return [row("free memory", GREEN if free >= min_free_gb else AMBER, f"{free:.1f} GiB",
                "" if free >= min_free_gb else "close other programs: Kafka's JVM needs ~0.5 GiB"),
            row("cpus", GREEN, str(psutil.cpu_count())),
            row("REDIS_URL", GREEN, config.redis_url()),
            row("KAFKA_BOOTSTRAP", GREEN, config.kafka_bootstrap())]


def server(name: str, require) -> tuple[dict, object]:
    """(row, client or None) for one server: reachable and its version."""
    try:
        client = require()
    except CourseError as exc:
        return row(f"{name} server", RED, "unreachable", str(exc)), None
    if name == "redis":
        version = client.info("server")["redis_version"]
        ok = tuple(int(x) for x in version.split(".")[:2]) >= (6, 2)
        return row("redis server", GREEN if ok else AMBER, version,
                   "" if ok else "the course needs Redis >= 6.2 (XAUTOCLAIM, BLMOVE)"), client
    brokers = client.describe_cluster().get("brokers", [])
    return row("kafka server", GREEN, f"{len(brokers)} broker(s) answering"), client


def _timed(name: str, fn, slow_ms: float) -> dict:
    try:
        ms = fn()
    except Exception as exc:  # one failed round trip must not hide the others
        return row(name, RED, f"failed: {type(exc).__name__}", f"{exc}; see `make services-logs`")
    return row(name, GREEN if ms <= slow_ms else AMBER, f"{ms:.2f} ms",
               "" if ms <= slow_ms else "slow: is the machine busy? re-run this cell")


def pubsub_roundtrip(r, ns: config.Namespace) -> float:
    channel = ns.key("preflight:channel")
    p = r.pubsub(ignore_subscribe_messages=True)
    p.subscribe(channel)
    try:
        p.get_message(timeout=1.0)  # the subscribe confirmation
        payload = uuid.uuid4().hex
        t0 = time.perf_counter()
        r.publish(channel, payload)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            msg = p.get_message(timeout=0.5)
            if msg and msg["data"] == payload:
                return (time.perf_counter() - t0) * 1000
        raise TimeoutError("no Pub/Sub message within 5 s")
    finally:
        p.close()


def list_roundtrip(r, ns: config.Namespace) -> float:
    key = ns.key("preflight:list")
    t0 = time.perf_counter()
    r.lpush(key, "job-1")
    popped = r.brpop([key], timeout=5)
    if not popped:
        raise TimeoutError("BRPOP returned nothing within 5 s")
    return (time.perf_counter() - t0) * 1000


def stream_roundtrip(r, ns: config.Namespace) -> float:
    key = ns.key("preflight:stream")
    t0 = time.perf_counter()
    entry = r.xadd(key, {"hello": "stream"})
    got = r.xread({key: "0-0"}, count=1, block=5000)
    if not got or got[0][1][0][0] != entry:
        raise TimeoutError("XREAD did not return the entry within 5 s")
    return (time.perf_counter() - t0) * 1000


def kafka_roundtrip(ns: config.Namespace) -> float:
    from kafka import TopicPartition

    topic = ns.topic("preflight")
    producer = clients.kafka_producer(linger_ms=0)
    consumer = clients.kafka_consumer(fetch_max_wait_ms=50)
    try:
        producer.send(topic, b"warm-up").get(timeout=15)  # creates the topic, fills metadata
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.seek_to_end(tp)
        consumer.position(tp)
        t0 = time.perf_counter()
        producer.send(topic, b"hello kafka").get(timeout=10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=200).values():
                if any(rec.value == b"hello kafka" for rec in records):
                    return (time.perf_counter() - t0) * 1000
        raise TimeoutError("the record did not come back within 10 s")
    finally:
        producer.close(timeout=5)
        consumer.close()


def roundtrips(r, kafka_ok: bool, ns: config.Namespace) -> list[dict]:
    """One timed message through each model (a red row, not an exception, when one fails)."""
    rows = []
    if r is not None:
        rows += [_timed("Redis Pub/Sub round trip", lambda: pubsub_roundtrip(r, ns), 5),
                 _timed("Redis List round trip", lambda: list_roundtrip(r, ns), 5),
                 _timed("Redis Stream round trip", lambda: stream_roundtrip(r, ns), 5)]
    else:
        rows += [row(f"Redis {m} round trip", RED, "skipped", "start Redis first (see above)")
                 for m in ("Pub/Sub", "List", "Stream")]
    if kafka_ok:
        rows.append(_timed("Kafka topic round trip", lambda: kafka_roundtrip(ns), 500))
    else:
        rows.append(row("Kafka topic round trip", RED, "skipped", "start Kafka first (see above)"))
    return rows
