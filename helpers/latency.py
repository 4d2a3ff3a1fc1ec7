"""Open-loop load at a fixed rate and end-to-end latency, for notebook 06 and ``make bench``.

Message ``seq`` is *scheduled* at ``t0 + seq / rate``; the sender sleeps until then (never longer)
and stamps the scheduled time, not the moment it managed to send, into the payload. A receiver
thread in the same process notes ``perf_counter_ns()`` on arrival, so a latency is *arrival minus
schedule*: when the sender or the server falls behind, the wait shows up in the latencies instead
of silently lowering the load (no "coordinated omission"). The first ``warmup`` messages are
dropped from the statistics. ``perf_counter_ns`` is CLOCK_MONOTONIC: one clock for both threads.
"""

from __future__ import annotations

import threading
import time

from . import config, measure
from .clients import redis_client

POINTS = (50, 90, 99, 99.9)


def payload(seq: int, due_ns: int, size: int = 100) -> bytes:
    """``seq|scheduled ns|`` padded with ``x`` to ``size`` bytes."""
    head = f"{seq:09d}|{due_ns:020d}|".encode()
    return head + b"x" * max(0, size - len(head))


def parse(data: bytes | str) -> tuple[int, int]:
    data = data.encode() if isinstance(data, str) else data
    return int(data[:9]), int(data[10:30])


class Transport:
    """One path a message can take: ``send(bytes)`` here, ``receive(timeout)`` -> list of payloads there."""

    name = "transport"

    def open(self) -> None:
        """Prepare both ends (subscribe, create the group, assign the partition) before the first send."""

    def send(self, data: bytes) -> None:
        raise NotImplementedError

    def receive(self, timeout: float) -> list:
        raise NotImplementedError

    def flush(self, timeout: float = 10.0) -> None:
        """Push out anything the client still buffers (Kafka producers)."""

    def close(self) -> None:
        """Close both ends."""


class RedisPubSub(Transport):
    name = "Redis Pub/Sub"

    def __init__(self, channel: str):
        self.channel = channel

    def open(self):
        self.tx = redis_client(decode_responses=False, single_connection_client=True)
        self.rx = redis_client(decode_responses=False).pubsub(ignore_subscribe_messages=True)
        self.rx.subscribe(self.channel)
        self.rx.get_message(timeout=2)                        # the subscribe confirmation

    def send(self, data):
        self.tx.publish(self.channel, data)

    def receive(self, timeout):
        m = self.rx.get_message(timeout=timeout)
        return [m["data"]] if m else []

    def close(self):
        self.rx.close()
        self.tx.close()


class RedisList(Transport):
    name = "Redis List (LPUSH / BRPOP)"

    def __init__(self, key: str):
        self.key = key

    def open(self):
        self.tx = redis_client(decode_responses=False, single_connection_client=True)
        self.rx = redis_client(decode_responses=False, single_connection_client=True)

    def send(self, data):
        self.tx.lpush(self.key, data)

    def receive(self, timeout):
        got = self.rx.brpop([self.key], timeout=timeout)      # BRPOP with a timeout, never for ever
        return [got[1]] if got else []

    def close(self):
        self.rx.close()
        self.tx.close()


class RedisStream(Transport):
    name = "Redis Stream (XADD / XREADGROUP)"

    def __init__(self, key: str, group: str = "lat"):
        self.key, self.group = key, group

    def open(self):
        self.tx = redis_client(decode_responses=False, single_connection_client=True)
        self.rx = redis_client(decode_responses=False, single_connection_client=True)
        self.rx.xgroup_create(self.key, self.group, id="$", mkstream=True)

    def send(self, data):
        self.tx.xadd(self.key, {b"p": data})

    def receive(self, timeout):
        reply = self.rx.xreadgroup(self.group, "c1", {self.key: ">"}, count=100, block=max(1, int(timeout * 1000)))
        entries = reply[0][1] if reply else []
        if entries:
            self.rx.xack(self.key, self.group, *[e for e, _ in entries])
        return [fields[b"p"] for _, fields in entries]

    def close(self):
        self.rx.close()
        self.tx.close()


def _wait_ready(poll, timeout: float = 15.0) -> None:
    """Kafka transports read one probe record before the clock starts: the consumer has found the
    partition leader and fetches, so its start-up is not counted as the first messages' latency."""
    deadline = time.monotonic() + timeout
    while not poll():
        if time.monotonic() > deadline:
            raise TimeoutError(f"the consumer read nothing within {timeout} s of assigning the partition")


class ConfluentKafka(Transport):
    """confluent-kafka (librdkafka, C) producer and consumer on a fresh one-partition topic."""

    name = "Kafka (confluent-kafka)"

    def __init__(self, topic: str, bootstrap: str | None = None, **producer_conf):
        self.topic, self.bootstrap = topic, bootstrap or config.kafka_bootstrap()
        self.conf = {"linger.ms": 5, "acks": "all", **producer_conf}

    def open(self):
        from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

        self.tx = Producer({"bootstrap.servers": self.bootstrap, "client.id": "streamslab-nb06", **self.conf})
        self.rx = Consumer({"bootstrap.servers": self.bootstrap, "group.id": self.topic, "enable.auto.commit": False,
                            "client.id": "streamslab-nb06"})
        self.rx.assign([TopicPartition(self.topic, 0, OFFSET_BEGINNING)])   # a fresh topic: from offset 0
        self.tx.produce(self.topic, b"ready")
        self.tx.flush(10)
        _wait_ready(lambda: [m for m in [self.rx.poll(0.2)] if m is not None and not m.error()])

    def send(self, data):
        self.tx.produce(self.topic, data)
        self.tx.poll(0)                                        # serve delivery reports, never block

    def flush(self, timeout=10.0):
        left = self.tx.flush(timeout)
        if left:
            raise TimeoutError(f"{left} records still unacknowledged after {timeout} s")

    def receive(self, timeout):
        first = self.rx.poll(timeout)                          # returns as soon as one record is there
        if first is None:
            return []
        more = self.rx.consume(num_messages=500, timeout=0)    # consume(n, t) would wait for n or t: t=0
        return [m.value() for m in [first, *more] if not m.error()]

    def close(self):
        self.rx.close()
        self.tx.flush(5)


class KafkaPython(Transport):
    """kafka-python (pure Python) producer and consumer, the course's default client."""

    name = "Kafka (kafka-python)"

    def __init__(self, topic: str, bootstrap: str | None = None, **producer_kw):
        self.topic, self.bootstrap = topic, bootstrap or config.kafka_bootstrap()
        self.kw = {"linger_ms": 5, "acks": "all", **producer_kw}

    def open(self):
        from kafka import KafkaConsumer, KafkaProducer, TopicPartition

        self.tx = KafkaProducer(bootstrap_servers=self.bootstrap, max_block_ms=10000, **self.kw)
        self.rx = KafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False, group_id=None)
        self.rx.assign([TopicPartition(self.topic, 0)])
        self.rx.seek_to_beginning()
        self.tx.send(self.topic, b"ready").get(timeout=10)
        _wait_ready(lambda: self.rx.poll(timeout_ms=200))

    def send(self, data):
        self.tx.send(self.topic, data)

    def flush(self, timeout=10.0):
        self.tx.flush(timeout=timeout)

    def receive(self, timeout):
        batches = self.rx.poll(timeout_ms=int(timeout * 1000))
        return [rec.value for recs in batches.values() for rec in recs]

    def close(self):
        self.rx.close()
        self.tx.close(timeout=5)


def open_loop(transport: Transport, *, rate: float, n: int, warmup: int = 0, size: int = 100,
              timeout: float = 15.0, progress=None) -> dict:
    """Send ``n`` messages at ``rate`` per second through ``transport`` (open loop) and time each one
    from its scheduled send time to its arrival. Returns counts, percentiles (ms) and the samples."""
    arrived: dict[int, float] = {}
    stop = threading.Event()
    errors: list[BaseException] = []

    def receiver():
        try:
            while not stop.is_set():
                for data in transport.receive(0.05):
                    now = time.perf_counter_ns()
                    seq, due = parse(data)
                    arrived[seq] = (now - due) / 1e6
        except BaseException as exc:  # kept and re-raised in the caller's thread
            errors.append(exc)

    transport.open()
    thread = threading.Thread(target=receiver, name=f"rx {transport.name}", daemon=True)
    thread.start()
    try:
        interval = 1e9 / rate
        t0 = time.perf_counter_ns() + 20_000_000
        behind = 0.0
        for seq in range(n):
            due = t0 + int(seq * interval)
            wait = due - time.perf_counter_ns()
            if wait > 0:
                time.sleep(wait / 1e9)
            else:
                behind = max(behind, -wait / 1e6)
            transport.send(payload(seq, due, size))
            if progress is not None and seq % 100 == 99:
                progress.update(100)
        if progress is not None:
            progress.update(n % 100)
        sent_s = (time.perf_counter_ns() - t0) / 1e9
        transport.flush(timeout)
        deadline = time.monotonic() + timeout
        while len(arrived) < n and time.monotonic() < deadline and not errors:
            time.sleep(0.01)
    finally:
        stop.set()
        thread.join(5)
        transport.close()
    if errors:
        raise errors[0]
    samples = [arrived[s] for s in sorted(arrived) if s >= warmup]
    stats = measure.percentiles(samples, points=POINTS) if samples else {"count": 0}
    return {"transport": transport.name, "rate": rate, "sent": n, "received": len(arrived),
            "lost": n - len(arrived), "warmup": warmup, "achieved_rate": round(n / sent_s, 1),
            "sender_behind_ms": round(behind, 3), **{k: round(v, 4) for k, v in stats.items()},
            "samples": samples}


def summary(run: dict) -> dict:
    """One table row of an :func:`open_loop` result (everything but the samples)."""
    return {k: v for k, v in run.items() if k != "samples"}
