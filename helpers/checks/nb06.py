"""Notebook 06's exercise checks: each runs the learner's code against the real Redis / Kafka and
judges what the client and the server did (round trips counted, produce requests counted). The
learner's functions run only through :func:`helpers.checks.call` (time limit, clients closed)."""

from __future__ import annotations

import json
import math
import time

from . import CheckResult, call, check, learner_redis, not_yet, passed


class CountingRedis:
    """A redis-py client that counts round trips: one per direct command, one per pipeline execute()."""

    def __init__(self, r):
        self._r, self.round_trips = r, 0

    def pipeline(self, transaction: bool = True, **kw):
        outer, pipe = self, self._r.pipeline(transaction=transaction, **kw)
        real_execute = pipe.execute

        def execute(*args, **kwargs):
            if len(pipe.command_stack):
                outer.round_trips += 1
            return real_execute(*args, **kwargs)

        pipe.execute = execute
        return pipe

    def __getattr__(self, name):
        attr = getattr(self._r, name)
        if callable(attr):
            def counted(*args, **kwargs):
                self.round_trips += 1
                return attr(*args, **kwargs)
            return counted
        return attr


@check
def pipelined(add_pipelined, r, ns, n: int = 2000) -> CheckResult:
    """``add_pipelined(r, stream, payloads, depth)`` must XADD every payload, in order, ``depth`` per round trip."""
    payloads = [f"event-{i:05d}" for i in range(n)]
    timings = {}
    try:
        for depth in (1, 64):
            stream = ns.key(f"check-pipelined-{depth}")
            r.delete(stream)
            client = CountingRedis(learner_redis(r))      # its own connection, closed by call()
            t = time.perf_counter()
            call(add_pipelined, client, stream, payloads, depth)   # the stub: NotImplementedError
            timings[depth] = time.perf_counter() - t
            stored = [fields.get("p") for _, fields in r.xrange(stream)]
            if stored != payloads:
                wrong = next((i for i, (a, b) in enumerate(zip(stored, payloads, strict=False)) if a != b), min(len(stored), n))
                return not_yet(f"With depth={depth} the stream holds {len(stored)} entries; expected the {n} payloads "
                               f"in order (first difference at position {wrong}).",
                               "XADD stream {'p': payload} for each payload, in the order given")
            expected = math.ceil(n / depth)
            if client.round_trips != expected:
                return not_yet(f"With depth={depth} your code made {client.round_trips} round trips; {n} entries "
                               f"at {depth} per round trip need {expected}.",
                               "pipe = r.pipeline(transaction=False); queue `depth` XADDs; pipe.execute(); repeat")
    finally:
        for depth in (1, 64):
            r.delete(ns.key(f"check-pipelined-{depth}"))
    speedup = timings[1] / timings[64]
    return passed(f"{n} entries in order; {n} round trips at depth 1, {math.ceil(n / 64)} at depth 64: "
                  f"{speedup:.1f}x faster here ({n / timings[1]:,.0f} vs {n / timings[64]:,.0f} XADD/s).")


@check
def batching(producer_config, admin, ns, rate: int = 1000, n: int = 600, min_batch: float = 10.0,
             budget_ms: float = 100.0) -> CheckResult:
    """``producer_config()`` -> a confluent-kafka config that keeps acks=all, batches at least
    ``min_batch`` records per produce request at ``rate``/s, and acknowledges 90 % within ``budget_ms``."""
    from confluent_kafka import Producer
    from kafka.admin import NewTopic

    from .. import config, measure

    conf = call(producer_config)                                # the stub: NotImplementedError
    if not isinstance(conf, dict):
        return not_yet(f"producer_config returned {conf!r}, not a dict of settings.",
                       "return {'acks': ..., 'linger.ms': ...}")
    if str(conf.get("acks", conf.get("request.required.acks", "all"))) not in ("all", "-1"):
        return not_yet(f"acks={conf.get('acks')!r} gives up durability for speed.", "keep acks='all'")
    topic = ns.topic(f"check-batching-{int(time.time() * 1000)}")
    admin.create_topics([NewTopic(topic, 1, 1)])
    stats, acked_ms = [], []
    p = Producer({**conf, "bootstrap.servers": config.kafka_bootstrap(), "statistics.interval.ms": 100,
                  "stats_cb": stats.append})
    t0 = time.perf_counter_ns() + 10_000_000
    for seq in range(n):
        due = t0 + seq * 1_000_000_000 // rate
        wait = due - time.perf_counter_ns()
        if wait > 0:
            time.sleep(wait / 1e9)
        p.produce(topic, b"x" * 100, on_delivery=lambda err, _m, due=due: err is None and acked_ms.append(
            (time.perf_counter_ns() - due) / 1e6))
        p.poll(0)
    if p.flush(15):
        return not_yet("Some records were not acknowledged within 15 s.", "check the broker with `make services-status`")
    before = len(stats)
    deadline = time.monotonic() + 3
    while len(stats) <= before and time.monotonic() < deadline:
        p.poll(0.05)                                            # one more statistics report after the flush
    admin.delete_topics([topic])
    requests = sum(b.get("req", {}).get("Produce", 0) for b in json.loads(stats[-1])["brokers"].values())
    per_request = len(acked_ms) / max(1, requests)
    p90 = measure.percentiles(acked_ms)["p90"]
    figures = f"{len(acked_ms)} records in {requests} produce requests ({per_request:.1f} per request), ack p90 {p90:.1f} ms"
    if per_request < min_batch:
        return not_yet(f"{figures}: fewer than {min_batch:.0f} records per request.",
                       "records arrive every 1 ms: how long must the producer wait to collect about 10? (linger.ms)")
    if p90 > budget_ms:
        return not_yet(f"{figures}: over the {budget_ms:.0f} ms latency budget.", "a shorter linger.ms")
    return passed(f"{figures}: batched, durable (acks=all) and within the {budget_ms:.0f} ms budget.")
