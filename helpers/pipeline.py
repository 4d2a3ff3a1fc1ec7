"""Plumbing for notebook 09 (Kafka as the backbone, Redis as the serving view).

An order **generator** process writes order events into a Kafka topic at a rate it reads from a
Redis hash (a slider in the notebook changes it); a **processor** process (a consumer-group member)
folds each event into a Redis *view* — revenue per product (hash), units sold per product (sorted
set), orders per minute of event time (hash) — and publishes one Pub/Sub notification per update.

Two ways to apply an update: :data:`APPLY_LUA` (idempotent: the update and the partition's last
applied offset change together in one Lua script, and an offset already applied is skipped) and
``mode="naive"`` (the same increments without the guard: a redelivered record counts twice).
:func:`recount` recomputes the view from the topic itself, the truth every drill compares with.
The two processes live in :mod:`helpers.pipeline_workers` (targets for
:class:`helpers.workers.ProcessWorker`); they stop when ``<report>:stop`` exists.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter

from . import clients
from .workers import wait_until

#: product -> unit price in cents (integers: a replay must add up to the very same totals)
PRODUCTS = {"espresso": 250, "latte": 380, "croissant": 290, "bagel": 320, "muffin": 270,
            "tea": 220, "cookie": 150, "sandwich": 650}

#: The idempotent update: one atomic script per record (KEYS: revenue, sold, per_minute, applied;
#: ARGV: partition, offset, product, cents, qty, minute, channel). Returns 1 applied, 0 skipped.
APPLY_LUA = """
local last = tonumber(redis.call('HGET', KEYS[4], ARGV[1]) or '-1')
if tonumber(ARGV[2]) <= last then return 0 end            -- already applied: a redelivery
local revenue = redis.call('HINCRBY', KEYS[1], ARGV[3], ARGV[4])
local sold = redis.call('ZINCRBY', KEYS[2], ARGV[5], ARGV[3])
local orders = redis.call('HINCRBY', KEYS[3], ARGV[6], 1)
redis.call('HSET', KEYS[4], ARGV[1], ARGV[2])              -- the partition's last applied offset
redis.call('PUBLISH', ARGV[7], cjson.encode({product=ARGV[3], revenue=revenue, sold=tonumber(sold),
  minute=ARGV[6], orders=orders, partition=tonumber(ARGV[1]), offset=tonumber(ARGV[2])}))
return 1
"""


def view_keys(view: str) -> dict[str, str]:
    """The Redis names of one view: its three aggregates, its applied offsets and its channel."""
    return {"revenue": f"{view}:revenue", "sold": f"{view}:sold", "per_minute": f"{view}:per_minute",
            "applied": f"{view}:applied", "channel": f"{view}:updates"}


def minute_of(ts_ms: int) -> str:
    """The event-time minute bucket (UTC) an order counts in, e.g. ``2026-05-04 13:07``."""
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(ts_ms / 1000))


def order_event(seq: str, rng: random.Random, ts_ms: int | None = None) -> dict:
    """One order: a product, a quantity of 1-3, its amount in cents and its event time."""
    product = rng.choice(list(PRODUCTS))
    qty = rng.choice([1, 1, 1, 2, 2, 3])
    return {"order": seq, "product": product, "qty": qty, "cents": PRODUCTS[product] * qty,
            "ts": ts_ms if ts_ms is not None else int(time.time() * 1000)}


def aggregate(events) -> dict:
    """The view computed in Python from order events (dicts): what the Redis view must equal."""
    revenue, sold, per_minute = Counter(), Counter(), Counter()
    for e in events:
        revenue[e["product"]] += e["cents"]
        sold[e["product"]] += e["qty"]
        per_minute[minute_of(e["ts"])] += 1
    return {"revenue": dict(revenue), "sold": dict(sold), "per_minute": dict(per_minute),
            "orders": sum(per_minute.values())}


def read_topic(admin, topic: str, timeout: float = 30.0) -> list:
    """Every record of ``topic`` from the earliest retained offset to the end (no group, no commit)."""
    from .groups import topic_partitions

    consumer = clients.kafka_consumer(client_id="nb09-recount")
    try:
        consumer.assign(topic_partitions(admin, topic))
        consumer.seek_to_beginning()
        return clients.drain_assigned(consumer, timeout)
    finally:
        consumer.close()


def recount(admin, topic: str) -> dict:
    """The truth: the view recomputed from every order event in the topic."""
    return aggregate(json.loads(rec.value) for rec in read_topic(admin, topic))


def read_view(r, view: str) -> dict:
    """The view as Redis holds it now, in the shape of :func:`aggregate`."""
    k = view_keys(view)
    per_minute = {m: int(n) for m, n in r.hgetall(k["per_minute"]).items()}
    return {"revenue": {p: int(c) for p, c in r.hgetall(k["revenue"]).items()},
            "sold": {p: int(float(q)) for p, q in r.zrange(k["sold"], 0, -1, withscores=True)},
            "per_minute": per_minute, "orders": sum(per_minute.values())}


def compare(view: dict, truth: dict) -> dict:
    """How the view differs from the truth: equal or not, and by how much (cents, units, orders)."""
    wrong = sorted(p for p in set(view["revenue"]) | set(truth["revenue"])
                   if view["revenue"].get(p, 0) != truth["revenue"].get(p, 0)
                   or view["sold"].get(p, 0) != truth["sold"].get(p, 0))
    return {"equal": view == truth, "orders_view": view["orders"], "orders_truth": truth["orders"],
            "extra_orders": view["orders"] - truth["orders"],
            "extra_cents": sum(view["revenue"].values()) - sum(truth["revenue"].values()),
            "extra_units": sum(view["sold"].values()) - sum(truth["sold"].values()),
            "products_wrong": wrong}


def status(r, report: str) -> dict:
    """A processor's progress hash (applied, skipped, redis_errors, state, ...)."""
    return r.hgetall(f"{report}:status")


def wait_caught_up(admin, r, group: str, topic: str, report: str, timeout: float = 60.0) -> float:
    """Wait until ``group`` has committed the end of ``topic`` and its processor has polled empty
    since; returns the seconds waited (raises TimeoutError after ``timeout``)."""
    from .groups import lag, offsets

    t0 = time.time()
    end = offsets(admin, topic)
    wait_until(lambda: lag(admin, group, topic, end) == 0, timeout, f"group {group} to reach {end}", every=0.1)
    done = time.time()
    wait_until(lambda: float(status(r, report).get("idle_at", 0)) > done, 15, "the processor to go idle", every=0.1)
    return time.time() - t0


def set_rate(r, control: str, per_second: float) -> float:
    """Tell the generator process (it reads ``HGET control rate`` every 0.25 s) how many orders per
    second to write; 0 pauses it."""
    r.hset(control, "rate", per_second)
    return per_second


def measure_rate(r, control: str, per_second: float, seconds: float) -> dict:
    """Set the generator's rate, then count the orders Kafka acknowledged over about ``seconds``:
    between two of the generator's own reports (``produced`` at ``at``), the first one after it
    has read the new rate."""
    set_rate(r, control, per_second)

    def report(after: float) -> tuple[int, float]:
        wait_until(lambda: float(r.hget(control, "at") or 0) > after, max(0.0, after - time.time()) + 10,
                   "the generator to report", every=0.02)   # the window itself, then 10 s for the report
        produced, at = r.hmget(control, "produced", "at")
        return int(produced), float(at)

    p0, t0 = report(time.time() + 0.3)  # the generator reads the rate every 0.25 s
    p1, t1 = report(t0 + seconds)
    return {"rate set (orders/s)": per_second, "orders/s measured": round((p1 - p0) / (t1 - t0), 1)}


def pause(r, control: str, timeout: float = 15.0) -> int:
    """Set the generator's rate to 0 and wait until it has flushed; returns the events it produced."""
    r.hset(control, mapping={"rate": 0, "state": "pausing"})
    wait_until(lambda: r.hget(control, "state") in ("idle", "done"), timeout, "the generator to pause", every=0.05)
    return int(r.hget(control, "produced") or 0)


def stop(r, report: str, worker, timeout: float = 15.0) -> int:
    """Ask a processor (or, with its control key, the generator) to leave cleanly and wait for it."""
    r.set(f"{report}:stop", 1, ex=120)
    try:
        return worker.wait(timeout)
    finally:
        r.delete(f"{report}:stop")


def events(r, reports: list[str], since: float = 0.0):
    """The processors' events (``<report>:events``) as a DataFrame: worker, t (s since ``since``), event."""
    import pandas as pd

    rows = [json.loads(e) for report in reports for e in r.lrange(f"{report}:events", 0, -1)]
    rows = [dict(row, t=round(row["t"] - since, 2)) for row in rows if row["t"] >= since]
    return pd.DataFrame(rows, columns=["worker", "t", "event", "records", "skipped"]).sort_values("t")
