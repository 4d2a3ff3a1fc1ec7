"""The two processes of notebook 09's pipeline, run by :class:`helpers.workers.ProcessWorker`.

- :func:`generator` writes order events to Kafka at the rate the notebook sets in Redis;
- :func:`processor` is a consumer-group member folding the orders into the Redis view
  (:data:`helpers.pipeline.APPLY_LUA`, or the naive increments) and committing after each batch.

Both exit after ``lifetime`` seconds, when ``<control or report>:stop`` exists, or (through
ProcessWorker) when the kernel that started them dies; every blocking call has a timeout.
"""

from __future__ import annotations

import json
import os
import random
import time

from . import clients
from .pipeline import APPLY_LUA, minute_of, order_event, view_keys


def generator(*, topic: str, bootstrap: str, redis_url: str, control: str, seed: int = 9,
              limit: int = 0, lifetime: float = 600.0) -> None:
    """A PROCESS writing order events to ``topic`` (key = product) at ``HGET control rate`` per second.

    Rate 0 pauses. Every ~0.25 s it flushes and writes ``produced`` (acknowledged events), ``at``
    (when, epoch seconds) and ``state`` (``running`` / ``idle``) into the hash ``control``. It exits after ``limit`` events
    (0 = no limit), after ``lifetime`` seconds, or when ``<control>:stop`` exists.
    """
    r = clients.redis_client(redis_url)
    producer = clients.kafka_producer(bootstrap, linger_ms=5, client_id="nb09-generator")
    rng, sent, acked = random.Random(seed), 0, 0
    deadline, last_report = time.monotonic() + lifetime, 0.0
    rate, next_at = 0.0, time.monotonic()
    while time.monotonic() < deadline and not (limit and sent >= limit):
        now = time.monotonic()
        if now - last_report >= 0.25:
            producer.flush(timeout=10)
            acked = sent
            rate = float(r.hget(control, "rate") or 0)
            r.hset(control, mapping={"produced": acked, "at": time.time(),
                                     "state": "running" if rate > 0 else "idle", "pid": os.getpid()})
            last_report = now
            if r.exists(f"{control}:stop"):
                break
        if rate <= 0:
            time.sleep(0.05)
            next_at = time.monotonic()
            continue
        event = order_event(f"{os.getpid()}-{sent}", rng)
        producer.send(topic, key=event["product"].encode(), value=json.dumps(event).encode())
        sent += 1
        next_at = max(next_at + 1.0 / rate, now - 0.5)  # catch up at most half a second
        time.sleep(max(0.0, next_at - time.monotonic()))
    producer.flush(timeout=10)
    r.hset(control, mapping={"produced": sent, "state": "done"})
    producer.close(timeout=10)


def _apply_batch(sink, script, records, keys: dict, mode: str) -> tuple[int, int]:
    """Apply a batch to the view in one round trip. Returns (applied, skipped)."""
    pipe = sink.pipeline(transaction=False)
    for rec in records:
        e = json.loads(rec.value)
        minute = minute_of(e["ts"])
        if mode == "idempotent":
            script(keys=[keys["revenue"], keys["sold"], keys["per_minute"], keys["applied"]],
                   args=[rec.partition, rec.offset, e["product"], e["cents"], e["qty"], minute,
                         keys["channel"]], client=pipe)
        else:  # naive: the same increments, no memory of what was applied
            pipe.hincrby(keys["revenue"], e["product"], e["cents"])
            pipe.zincrby(keys["sold"], e["qty"], e["product"])
            pipe.hincrby(keys["per_minute"], minute, 1)
            pipe.publish(keys["channel"], json.dumps({"product": e["product"], "offset": rec.offset,
                                                      "partition": rec.partition, "minute": minute}))
    replies = pipe.execute()
    if mode == "idempotent":
        applied = sum(int(x) for x in replies)
        return applied, len(records) - applied
    return len(records), 0


def processor(*, topic: str, group: str, bootstrap: str, sink_url: str, report_url: str, view: str,
              report: str, mode: str = "idempotent", client_id: str = "processor", batch: int = 50,
              stall_after: int = 0, retry_s: float = 0.5, lifetime: float = 600.0,
              session_timeout_ms: int = 6000, heartbeat_interval_ms: int = 1000) -> None:
    """A consumer-group PROCESS folding ``topic`` into the view ``view`` on the Redis at ``sink_url``.

    Per batch: apply every record (``mode`` "idempotent" or "naive"), then ``commit()``: a crash
    between the two redelivers the batch (at-least-once). If the sink Redis is unreachable the
    batch is not committed: the consumer seeks back to the batch's first offsets and retries every
    ``retry_s`` seconds, so nothing is skipped. With ``stall_after`` > 0 it stops after the batch
    that takes its total past that many records — applied, NOT committed — writes
    ``<report>:stalled`` and waits to be killed. Progress goes to the hash ``<report>:status`` on
    the Redis at ``report_url`` (which stays up while the sink is down); its events (started,
    batch applied, redelivery skipped, stalled, left the group) to the list ``<report>:events``.
    """
    import redis
    from kafka.errors import CommitFailedError, KafkaTimeoutError

    from .groups import subscribed

    rep = clients.redis_client(report_url)
    sink = clients.redis_client(sink_url, socket_timeout=2)
    script = sink.register_script(APPLY_LUA)
    keys = view_keys(view)
    status = f"{report}:status"
    lane = f"{report.rsplit(':', 1)[-1]} (pid {os.getpid()})"

    def event(kind: str, **data) -> None:  # for the notebook's timeline (one lane per process)
        rep.rpush(f"{report}:events", json.dumps({"t": time.time(), "worker": lane, "event": kind, **data}))

    event("started")
    rep.hset(status, mapping={"pid": os.getpid(), "mode": mode, "state": "joining", "applied": 0,
                              "skipped": 0, "redis_errors": 0, "batches": 0})
    consumer = subscribed(topic, bootstrap=bootstrap, group_id=group, client_id=client_id,
                          max_poll_records=batch, session_timeout_ms=session_timeout_ms,
                          heartbeat_interval_ms=heartbeat_interval_ms)
    total = 0
    deadline = time.monotonic() + lifetime
    try:
        while time.monotonic() < deadline and not rep.exists(f"{report}:stop"):
            polled = consumer.poll(timeout_ms=200)
            records = [rec for tp in sorted(polled) for rec in polled[tp]]
            if not records:
                rep.hset(status, mapping={"state": "idle", "idle_at": time.time()})
                continue
            try:
                applied, skipped = _apply_batch(sink, script, records, keys, mode)
            except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError) as exc:
                rep.hincrby(status, "redis_errors", 1)
                rep.hset(status, mapping={"state": "waiting for Redis", "error": type(exc).__name__})
                for tp, recs in polled.items():
                    consumer.seek(tp, recs[0].offset)  # nothing is committed: read this batch again
                time.sleep(retry_s)
                continue
            total += len(records)
            rep.hincrby(status, "applied", applied)
            rep.hincrby(status, "skipped", skipped)
            rep.hincrby(status, "batches", 1)
            rep.hset(status, "state", "running")
            event("redelivery skipped" if skipped else "batch applied", records=len(records), skipped=skipped)
            if stall_after and total >= stall_after:
                rep.hset(f"{report}:stalled", mapping={
                    "records": len(records), "cents": sum(json.loads(x.value)["cents"] for x in records),
                    "offsets": json.dumps({tp.partition: [recs[0].offset, recs[-1].offset]
                                           for tp, recs in polled.items()}), "t": time.time()})
                event("stalled: applied, not committed", records=len(records))
                while time.monotonic() < deadline:  # applied, not committed: the kill lands here
                    time.sleep(0.05)
            try:
                consumer.commit(timeout_ms=10000)
            except (CommitFailedError, KafkaTimeoutError) as exc:  # e.g. a rebalance took the partitions
                event("commit failed", error=type(exc).__name__)   # they are redelivered: the guard skips them
    finally:
        rep.hset(status, "state", "stopped")
        event("left the group")
        consumer.close(timeout_ms=10000)
