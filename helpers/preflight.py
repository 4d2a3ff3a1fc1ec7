"""Notebook 00's preflight: versions, resources, and timed round trips through each messaging model.

Each check returns a row ``{"check", "status", "measured", "fix"}`` whose status is a word, OK,
SLOW, FAILED or NOT ATTEMPTED, that ``helpers.ui.style_status`` draws as a coloured badge (no
emoji: without a colour-emoji font they turn into empty boxes), with a specific fix for each failure.
"""

from __future__ import annotations

import platform
import statistics
import sys
import time
import uuid
from importlib import metadata

from . import clients, config
from .errors import CourseError

OK, SLOW, FAILED, NOT_ATTEMPTED = "OK", "SLOW", "FAILED", "NOT ATTEMPTED"
COLUMNS = ["check", "status", "measured", "fix"]  # the preflight table (round-trip rows carry more keys)
PACKAGES = ["redis", "kafka-python", "jupyterlab", "ipywidgets", "pandas", "altair", "testbook"]


def row(check: str, status: str, measured: str, fix: str = "") -> dict:
    return {"check": check, "status": status, "measured": measured, "fix": fix}


def versions() -> list[dict]:
    """Python and client library versions (Python >= 3.10 and each package importable)."""
    ok = sys.version_info >= (3, 10)
    rows = [row("python", OK if ok else FAILED, platform.python_version(),
                "" if ok else "use Python 3.10 or newer (make setup builds .venv with python3)")]
    for pkg in PACKAGES:
        try:
            rows.append(row(pkg, OK, metadata.version(pkg)))
        except metadata.PackageNotFoundError:
            rows.append(row(pkg, FAILED, "missing", "run `make setup` (pip install -e '.[dev]')"))
    return rows


def resources(min_free_gb: float = 1.0) -> list[dict]:
    """Free memory and the course's endpoints."""
    import psutil

    free = psutil.virtual_memory().available / 2**30
    return [row("free memory", OK if free >= min_free_gb else SLOW, f"{free:.1f} GiB",
                "" if free >= min_free_gb else "close other programs: Kafka's JVM needs ~0.5 GiB"),
            row("cpus", OK, str(psutil.cpu_count())),
            row("REDIS_URL", OK, config.mask_url(config.redis_url())),
            row("KAFKA_BOOTSTRAP", OK, config.kafka_bootstrap())]


def server(name: str, require) -> tuple[dict, object]:
    """(row, client or None) for one server: reachable and its version."""
    try:
        client = require()
    except CourseError as exc:
        return row(f"{name} server", FAILED, "unreachable", str(exc)), None
    if name == "redis":
        version = client.info("server")["redis_version"]
        ok = tuple(int(x) for x in version.split(".")[:2]) >= (6, 2)
        return row("redis server", OK if ok else FAILED, version,
                   "" if ok else "the course needs Redis >= 6.2 (XAUTOCLAIM, BLMOVE)"), client
    brokers = client.describe_cluster().get("brokers", [])
    return row("kafka server", OK, f"{len(brokers)} broker(s) answering"), client


#: round trips timed per model in the preflight table; its row shows their median
SAMPLES = 5


def _timed(name: str, fn, slow_ms: float, samples: int) -> dict:
    """A row for ``samples`` timed round trips: the median, SLOW only when the median is above ``slow_ms``
    (one cold or unlucky message cannot flag it). ``samples_ms`` and ``median_ms`` keep the figures."""
    try:
        times = fn()
    except Exception as exc:  # one failed round trip must not hide the others
        return row(name, FAILED, f"failed: {type(exc).__name__}", f"{exc}; see `make services-logs`")
    times = [round(t, 4) for t in times]  # what samples_ms keeps: the row's figures all come from these
    ms = statistics.median(times)
    slow = ms > slow_ms
    return {**row(name, SLOW if slow else OK, f"{ms:.2f} ms (median of {len(times)}; SLOW above {slow_ms:g} ms)",
                  f"the median of {len(times)} was above {slow_ms:g} ms: is the machine busy? re-run this cell"
                  if slow else ""),
            "median_ms": round(ms, 4), "samples_ms": times}


def pubsub_roundtrips(r, ns: config.Namespace, n: int = 1) -> list[float]:
    """``n`` PUBLISH -> subscriber deliveries, in ms each (one subscription for all of them)."""
    channel = ns.key("preflight:channel")
    p = r.pubsub(ignore_subscribe_messages=True)
    p.subscribe(channel)
    try:
        p.get_message(timeout=1.0)  # the subscribe confirmation
        times = []
        for _ in range(n):
            payload = uuid.uuid4().hex
            t0 = time.perf_counter()
            r.publish(channel, payload)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                msg = p.get_message(timeout=0.5)
                if msg and msg["data"] == payload:
                    times.append((time.perf_counter() - t0) * 1000)
                    break
            else:
                raise TimeoutError("no Pub/Sub message within 5 s")
        return times
    finally:
        p.close()


def list_roundtrips(r, ns: config.Namespace, n: int = 1) -> list[float]:
    """``n`` LPUSH + BRPOP pairs, in ms each."""
    key, times = ns.key("preflight:list"), []
    for i in range(n):
        t0 = time.perf_counter()
        r.lpush(key, f"job-{i}")
        if not r.brpop([key], timeout=5):
            raise TimeoutError("BRPOP returned nothing within 5 s")
        times.append((time.perf_counter() - t0) * 1000)
    return times


def stream_roundtrips(r, ns: config.Namespace, n: int = 1) -> list[float]:
    """``n`` XADD + XREAD (from the previous entry) pairs, in ms each."""
    key, times = ns.key("preflight:stream"), []
    newest = r.xrevrange(key, count=1)
    last = newest[0][0] if newest else "0-0"
    for _ in range(n):
        t0 = time.perf_counter()
        entry = r.xadd(key, {"hello": "stream"})
        got = r.xread({key: last}, count=1, block=5000)
        if not got or got[0][1][0][0] != entry:
            raise TimeoutError("XREAD did not return the entry within 5 s")
        times.append((time.perf_counter() - t0) * 1000)
        last = entry
    return times


def kafka_roundtrips(ns: config.Namespace, n: int = 1) -> list[float]:
    """``n`` Kafka sends (acks='all') each polled back by a consumer, in ms each."""
    from kafka import TopicPartition

    topic = ns.topic("preflight")
    producer = clients.kafka_producer(linger_ms=0, allow_auto_create_topics=True)  # the one that may create a topic
    consumer = clients.kafka_consumer(fetch_max_wait_ms=50)
    try:
        producer.send(topic, b"warm-up").get(timeout=15)  # creates the topic (auto-creation), fills metadata
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.seek_to_end(tp)
        consumer.position(tp)
        times = []
        for i in range(n):
            value = f"hello kafka {i}".encode()
            t0 = time.perf_counter()
            producer.send(topic, value).get(timeout=10)
            deadline = time.monotonic() + 10
            while not any(rec.value == value for records in consumer.poll(timeout_ms=200).values()
                          for rec in records):
                if time.monotonic() > deadline:
                    raise TimeoutError("the record did not come back within 10 s")
            times.append((time.perf_counter() - t0) * 1000)
        return times
    finally:
        producer.close(timeout=5)
        consumer.close()


#: model -> (timing function, SLOW above this median in ms). A Redis round trip over loopback
#: normally takes a fraction of a millisecond, so a median above 5 ms means a busy machine; a Kafka one
#: (send with acks='all', then a consumer fetch) a few milliseconds, so 500 ms means something is wrong.
MODELS = {"Redis Pub/Sub": (pubsub_roundtrips, 5), "Redis List": (list_roundtrips, 5),
          "Redis Stream": (stream_roundtrips, 5), "Kafka topic": (kafka_roundtrips, 500)}


def _trips(model: str, r, ns: config.Namespace, n: int) -> list[float]:
    fn = MODELS[model][0]
    return fn(ns, n) if model == "Kafka topic" else fn(r, ns, n)


def roundtrips(r, kafka_ok: bool, ns: config.Namespace, samples: int = SAMPLES) -> list[dict]:
    """``samples`` timed messages through each model, one row each with their median (a FAILED row,
    not an exception, when one fails)."""
    rows = []
    for model, (_, slow_ms) in MODELS.items():
        reachable = kafka_ok if model == "Kafka topic" else r is not None
        if reachable:
            rows.append(_timed(f"{model} round trip", lambda m=model: _trips(m, r, ns, samples), slow_ms, samples))
        else:
            server = "Kafka" if model == "Kafka topic" else "Redis"
            rows.append(row(f"{model} round trip", NOT_ATTEMPTED, "skipped", f"start {server} first (see above)"))
    return rows


def sample_roundtrips(r, kafka_ok: bool, ns: config.Namespace, n: int) -> list[dict]:
    """``n`` timed messages through each reachable model: rows ``{"model", "message", "ms"}``."""
    return [{"model": model, "message": i, "ms": round(ms, 4)}
            for model in MODELS if (kafka_ok if model == "Kafka topic" else r is not None)
            for i, ms in enumerate(_trips(model, r, ns, n))]


def _ms(value: float) -> str:
    return f"{value:.2f} ms" if value < 10 else f"{value:.0f} ms"


def slowest_note(medians: dict[str, float]) -> str:
    """The observe step of notebook 00's prediction, from the measured medians (model -> ms)."""
    if not medians:
        return "No round trip could be timed: fix the FAILED rows above."
    slowest, fastest = max(medians, key=medians.get), min(medians, key=medians.get)
    text = ("Medians here: " + ", ".join(f"{m} {_ms(v)}" for m, v in medians.items())
            + f". {slowest} was the slowest, {medians[slowest] / medians[fastest]:.1f}x {fastest}.")
    if slowest == "Kafka topic":
        return text + " Its round trip is two requests to the broker (the send, then the consumer's fetch)."
    return text + (" With five messages each, a busy moment can still reorder the medians:"
                   " the next cell times more.")


def medians_sentence(medians: dict[str, float], n: int) -> str:
    """One sentence over the medians of ``n`` round trips per model (model -> ms)."""
    if not medians:
        return "No round trip could be timed."
    slowest, fastest = max(medians, key=medians.get), min(medians, key=medians.get)
    listed = ", ".join(f"{m} **{_ms(v)}**" for m, v in medians.items())
    return (f"Median of {n} round trip{'s' if n != 1 else ''} per model: {listed}. The slowest, {slowest}, took "
            f"{medians[slowest] / medians[fastest]:.1f}x as long as the fastest, {fastest}.")
