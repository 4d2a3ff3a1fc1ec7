"""Closed-loop round trips and maximum rates, measured the way the native tools measure them.

- :func:`round_trips`: one command, wait for the reply, repeat (``redis-benchmark -c 1``), or one
  every ``pace`` seconds (``redis-cli --latency`` sends a PING every 10 ms).
- :func:`redis_rate`: commands per second from one connection, ``depth`` commands per round trip.
- :func:`kafka_produce_rate` / :func:`kafka_consume_rate`: records per second for one producer or
  consumer of either Python client, counting only acknowledged (or read) records.
- :func:`kafka_e2e` : EndToEndLatency's method in Python: send one record, wait for its ack, poll
  until it is read back, repeat.
"""

from __future__ import annotations

import time

from . import config

KAFKA_CLIENTS = ("confluent-kafka", "kafka-python")


def round_trips(call, n: int, *, pace: float = 0.0, progress=None) -> list[float]:
    """Milliseconds of ``call()`` ``n`` times, back to back or one every ``pace`` s."""
    out = []
    for i in range(n):
        t = time.perf_counter_ns()
        call()
        out.append((time.perf_counter_ns() - t) / 1e6)
        if pace:
            time.sleep(pace)
        if progress is not None and i % 100 == 99:
            progress.update(100)
    if progress is not None:
        progress.update(n % 100)
    return out


def resp_ping(redis_url: str | None = None):
    """A PING over a plain socket, no client library (a method check: what is left without redis-py)."""
    import socket
    from urllib.parse import urlparse

    url = urlparse(redis_url or config.redis_url())
    sock = socket.create_connection((url.hostname or "127.0.0.1", url.port or 6379), timeout=5)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def ping():
        sock.sendall(b"*1\r\n$4\r\nPING\r\n")
        reply = b""
        while not reply.endswith(b"\r\n"):
            reply += sock.recv(64)

    return ping, sock.close


def redis_rate(r, command: tuple, n: int, depth: int = 1) -> float:
    """Commands per second for ``n`` x ``command`` on one connection, ``depth`` per round trip."""
    t = time.perf_counter()
    if depth == 1:
        for _ in range(n):
            r.execute_command(*command)
    else:
        pipe = r.pipeline(transaction=False)
        for i in range(n):
            pipe.execute_command(*command)
            if (i + 1) % depth == 0:
                pipe.execute()
        pipe.execute()
    return n / (time.perf_counter() - t)


def _confluent_producer(bootstrap: str, **conf):
    from confluent_kafka import Producer

    return Producer({"bootstrap.servers": bootstrap, "client.id": "streamslab-nb06", **conf})


def kafka_produce_rate(client: str, topic: str, n: int, *, size: int = 100, bootstrap: str | None = None,
                       timeout: float = 120.0, **conf) -> dict:
    """Send ``n`` records of ``size`` bytes as fast as the client allows; records/s counted when
    every one is acknowledged. ``conf`` uses each client's own names (``linger.ms`` / ``linger_ms``)."""
    bootstrap = bootstrap or config.kafka_bootstrap()
    value, acked = b"x" * size, [0]
    t = time.perf_counter()
    if client == "confluent-kafka":
        producer = _confluent_producer(bootstrap, **conf)

        def delivered(err, _msg):
            if err is None:
                acked[0] += 1

        for _ in range(n):
            while True:
                try:
                    producer.produce(topic, value, on_delivery=delivered)
                    break
                except BufferError:                       # local queue full: let librdkafka send
                    producer.poll(0.01)
            producer.poll(0)
        left = producer.flush(timeout)
    elif client == "kafka-python":
        from kafka import KafkaProducer

        producer = KafkaProducer(bootstrap_servers=bootstrap, max_block_ms=10000, **conf)
        futures = [producer.send(topic, value) for _ in range(n)]
        producer.flush(timeout=timeout)
        acked[0] = sum(1 for f in futures if f.succeeded())
        left = n - acked[0]
        producer.close(timeout=5)
    else:
        raise ValueError(f"client must be one of {KAFKA_CLIENTS}")
    seconds = time.perf_counter() - t
    return {"client": client, "records": n, "acked": acked[0], "unacked": left, "seconds": round(seconds, 3),
            "rps": round(acked[0] / seconds, 1), **{k.replace("_", "."): v for k, v in conf.items()}}


def kafka_consume_rate(client: str, topic: str, n: int, *, bootstrap: str | None = None,
                       timeout: float = 60.0) -> dict:
    """Read the first ``n`` records of partition 0 of ``topic``; records/s from the first poll."""
    bootstrap = bootstrap or config.kafka_bootstrap()
    got, deadline = 0, time.monotonic() + timeout
    t = time.perf_counter()
    if client == "confluent-kafka":
        from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

        c = Consumer({"bootstrap.servers": bootstrap, "group.id": topic, "enable.auto.commit": False})
        c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        while got < n and time.monotonic() < deadline:
            got += sum(1 for m in c.consume(num_messages=10000, timeout=0.5) if not m.error())
    else:
        from kafka import KafkaConsumer, TopicPartition

        c = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
        c.assign([TopicPartition(topic, 0)])
        c.seek_to_beginning()
        while got < n and time.monotonic() < deadline:
            got += sum(len(v) for v in c.poll(timeout_ms=500, max_records=10000).values())
    seconds = time.perf_counter() - t
    c.close()
    return {"client": client, "records": got, "seconds": round(seconds, 3), "rps": round(got / seconds, 1)}


def kafka_e2e(client: str, topic: str, n: int, *, size: int = 100, bootstrap: str | None = None) -> list[float]:
    """EndToEndLatency's loop in Python (acks=all, linger 0, fetch wait 0): send one record, wait
    for the broker's ack, poll until that record is read back; milliseconds per record."""
    bootstrap = bootstrap or config.kafka_bootstrap()
    value, out = b"x" * size, []
    if client == "confluent-kafka":
        from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

        p = _confluent_producer(bootstrap, **{"linger.ms": 0, "acks": "all"})
        c = Consumer({"bootstrap.servers": bootstrap, "group.id": topic, "enable.auto.commit": False,
                      "fetch.wait.max.ms": 0})
        c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])

        def one():
            p.produce(topic, value)
            if p.flush(10):                                   # returns when the ack (delivery report) is in
                raise TimeoutError("no ack within 10 s")
            deadline = time.monotonic() + 10
            while c.poll(0.5) is None:
                if time.monotonic() > deadline:
                    raise TimeoutError("record not read back within 10 s")
    else:
        from kafka import KafkaConsumer, KafkaProducer, TopicPartition

        p = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=0, acks="all", max_block_ms=10000)
        c = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None, fetch_max_wait_ms=0)
        c.assign([TopicPartition(topic, 0)])
        c.seek_to_beginning()

        def one():
            p.send(topic, value).get(timeout=10)
            deadline = time.monotonic() + 10
            while not c.poll(timeout_ms=500, max_records=1):
                if time.monotonic() > deadline:
                    raise TimeoutError("record not read back within 10 s")
    try:
        out = round_trips(one, n)
    finally:
        c.close()
        p.flush(5)
    return out
