"""Course figure beside native figure, measured in the same run: the rows of notebook 06's
comparison tables and of ``make bench`` (``tools/bench.py``).

Every row: ``experiment``, ``metric``, ``unit``, ``better`` (lower / higher), ``course`` and how it
was measured, ``native`` and the tool, and ``ratio = course / native``. For a latency a ratio above 1
means the course's Python client is slower than the native tool; for a rate, below 1 means slower.
"""

from __future__ import annotations

import statistics

from . import baselines, config, measure, throughput
from .clients import redis_client

PAYLOAD = "x" * 100


def row(experiment: str, metric: str, unit: str, better: str, course: float, course_how: str,
        native: float, native_how: str, **extra) -> dict:
    ratio = round(course / native, 3) if native else None
    return {"experiment": experiment, "metric": metric, "unit": unit, "better": better,
            "course": round(course, 6), "course_how": course_how, "native": round(native, 6),
            "native_how": native_how, "ratio": ratio, **extra}


def redis_round_trip(n: int, paced_seconds: int = 2, rounds: int = 3, progress=None) -> list[dict]:
    """PING round trips: back to back on one connection (vs ``redis-benchmark -c 1``) with redis-py's
    connection pool, with a dedicated connection, and with no client library (a socket: the method
    check); paced one per 10 ms (vs ``redis-cli --latency``). Native and course runs alternate in
    ``rounds`` rounds and each figure is the median of its rounds, so a burst of load on a shared
    machine hits both sides instead of one."""
    pooled = redis_client(decode_responses=False)
    dedicated = redis_client(decode_responses=False, single_connection_client=True)
    raw_ping, raw_close = throughput.resp_ping()
    back = {"redis-py, connection pool": pooled.ping, "redis-py, dedicated connection": dedicated.ping,
            "no client library: PING over a socket (method check)": raw_ping}
    paced = dict(list(back.items())[1:])
    got: dict = {"native": [], "cli": [], **{("b", k): [] for k in back}, **{("p", k): [] for k in paced}}
    chunk = max(100, n // rounds)
    try:
        for _ in range(rounds):
            native = baselines.redis_benchmark("PING", requests=chunk, clients=1)
            got["native"].append(native["p50_ms"])
            for how, call in back.items():
                call()
                got[("b", how)].append(measure.percentiles(throughput.round_trips(call, chunk, progress=progress)[chunk // 10:])["p50"])
            cli = baselines.redis_cli_latency(paced_seconds)
            got["cli"].append(cli["avg_ms"])
            for how, call in paced.items():
                got[("p", how)].append(measure.percentiles(throughput.round_trips(call, cli["samples"], pace=0.01)))
    finally:
        pooled.close()
        dedicated.close()
        raw_close()
    med = statistics.median
    rows = [row("Redis PING round trip, back to back", "p50", "ms", "lower", med(got[("b", how)]), how,
                med(got["native"]), native["command"].replace(f"-n {chunk}", f"-n {chunk} (x{rounds})"),
                rounds=rounds) for how in back]
    for how in paced:
        stats = got[("p", how)]
        rows.append(row("Redis PING round trip, one every 10 ms", "mean", "ms", "lower", med(s["mean"] for s in stats),
                        f"{how}; p50 {med(s['p50'] for s in stats):.3f} ms", med(got["cli"]),
                        f"{cli['command']} (x{rounds}; prints min/max/avg only)", rounds=rounds))
    return rows


def _step(progress) -> None:
    if progress is not None:
        progress.update(1)


def redis_rates(ns, n: int, progress=None) -> list[dict]:
    """PUBLISH, LPUSH and XADD of a 100-byte value from one connection, one per round trip and 16 per
    round trip, beside ``redis-benchmark -c 1 [-P 16]`` running the same command on this run's keys.
    ``progress`` (a bar) advances by one per command and depth: 6 steps."""
    r = redis_client(decode_responses=False, single_connection_client=True)
    commands = {"PUBLISH": ("PUBLISH", ns.key("bench-chan"), PAYLOAD),
                "LPUSH": ("LPUSH", ns.key("bench-list"), PAYLOAD),
                "XADD": ("XADD", ns.key("bench-stream"), "*", "p", PAYLOAD)}
    rows = []
    try:
        for name, cmd in commands.items():
            for depth in (1, 16):
                native = baselines.redis_benchmark(*cmd, requests=n, clients=1, pipeline=depth)
                course = throughput.redis_rate(r, cmd, n, depth)
                r.delete(*[c for c in cmd[1:2]])
                _step(progress)
                rows.append(row(f"Redis {name}, one connection, {depth} per round trip", "rate", "ops/s",
                                "higher", course, "redis-py" + (" pipeline" if depth > 1 else ""),
                                native["rps"], native["command"]))
    finally:
        r.close()
    return rows


def kafka_rates(ns, admin, n_native: int, n_confluent: int, n_python: int, bootstrap: str | None = None,
                lingers: tuple = (5, 0), progress=None) -> list[dict]:
    """Producer and consumer records/s, acks=all, 100-byte records: both Python clients beside
    ProducerPerformance (at each of ``lingers``: the Java default 5 ms, and 0) and ConsumerPerformance.
    ``progress`` advances by one per tool or client run: ``3 * len(lingers) + 3`` steps."""
    from kafka.admin import NewTopic

    bootstrap = bootstrap or config.kafka_bootstrap()
    names = {k: ns.topic(f"bench-{k}") for k in ("java0", "java5", "ck0", "ck5", "kp0", "kp5")}
    admin.create_topics([NewTopic(t, 1, 1) for t in names.values()])
    rows = []
    for linger in lingers:
        native = baselines.producer_performance(bootstrap, names[f"java{linger}"], n_native, linger_ms=linger)
        _step(progress)
        ck = throughput.kafka_produce_rate("confluent-kafka", names[f"ck{linger}"], n_confluent,
                                           bootstrap=bootstrap, **{"linger.ms": linger, "acks": "all"})
        _step(progress)
        kp = throughput.kafka_produce_rate("kafka-python", names[f"kp{linger}"], n_python, bootstrap=bootstrap,
                                           linger_ms=linger, acks="all")
        _step(progress)
        for res in (ck, kp):
            rows.append(row(f"Kafka producer, acks=all, linger.ms={linger}", "rate", "records/s", "higher",
                            res["rps"], f"{res['client']} ({res['acked']} acked)", native["rps"], native["command"]))
    native = baselines.consumer_performance(bootstrap, names["java5"], n_native, ns.group("bench-perf-consumer"))
    _step(progress)
    for client in throughput.KAFKA_CLIENTS:
        res = throughput.kafka_consume_rate(client, names["java5"], n_confluent if client == "confluent-kafka"
                                            else n_python * 2, bootstrap=bootstrap)
        rows.append(row("Kafka consumer, read from the start", "rate", "records/s", "higher", res["rps"],
                        f"{client} ({res['records']} read)", native["rps"], native["command"]))
        _step(progress)
    return rows


def kafka_e2e(ns, admin, n: int, bootstrap: str | None = None, progress=None) -> list[dict]:
    """EndToEndLatency (Java, closed loop, acks=all) beside the same loop with each Python client.
    The tool prints p50 truncated to whole ms, so the mean is compared as well (it has 4 decimals).
    ``progress`` advances by one per tool or client run: 3 steps."""
    from kafka.admin import NewTopic

    bootstrap = bootstrap or config.kafka_bootstrap()
    names = {k: ns.topic(f"bench-e2e-{k}") for k in ("java", "ck", "kp")}
    admin.create_topics([NewTopic(t, 1, 1) for t in names.values()])
    native = baselines.end_to_end_latency(bootstrap, names["java"], n)
    _step(progress)
    rows = []
    for client, key, count in (("confluent-kafka", "ck", n), ("kafka-python", "kp", max(200, n // 2))):
        lat = throughput.kafka_e2e(client, names[key], count, bootstrap=bootstrap)
        _step(progress)
        stats = measure.percentiles(lat[count // 10:])
        floor_ms = max(native["p50_ms"], 1.0)   # the tool's p50 is truncated: the true value is >= it
        rows.append(row("Kafka end-to-end, send + ack + read back, one at a time", "p50", "ms", "lower",
                        stats["p50"], client, floor_ms, native["command"] + " (p50 in whole ms)",
                        note="native p50 printed as whole ms (truncated), 0 shown as 1"))
        rows.append(row("Kafka end-to-end, send + ack + read back, one at a time", "mean", "ms", "lower",
                        stats["mean"], client, native["avg_ms"], native["command"]))
    return rows


def jit_check(ns, admin, broker, records: int, rounds: int = 3, warmup: bool = True,
              bootstrap: str | None = None, progress=None) -> dict:
    """ProducerPerformance against the course broker (``-XX:TieredStopAtLevel=1``) and against
    ``broker`` (full JIT), interleaved, after one warm-up run each (``warmup``). Medians of ``rounds`` runs.
    ``progress`` advances by one per ProducerPerformance run: ``2 * (rounds + warmup)`` steps."""
    from kafka.admin import NewTopic

    from .clients import kafka_admin

    bootstrap = bootstrap or config.kafka_bootstrap()
    runs = {"course broker (C1 only)": [], "full-JIT broker": []}
    targets = {"course broker (C1 only)": (bootstrap, admin), "full-JIT broker": (broker.bootstrap, None)}
    bench_admin = kafka_admin(broker.bootstrap)
    try:
        for i in range(0 if warmup else 1, rounds + 1):
            for label, (boot, adm) in targets.items():
                topic = ns.topic(f"bench-jit-{i}")
                (adm or bench_admin).create_topics([NewTopic(topic, 1, 1)])
                rps = baselines.producer_performance(boot, topic, records if i else max(10_000, records // 4))["rps"]
                if i:                                            # round 0 warms both JVMs up
                    runs[label].append(rps)
                _step(progress)
    finally:
        bench_admin.close()
    medians = {k: statistics.median(v) for k, v in runs.items()}
    ratio = round(medians["full-JIT broker"] / medians["course broker (C1 only)"], 3)
    return {"runs": runs, "medians": medians, "ratio": ratio, "caps": ratio >= 1.15}
