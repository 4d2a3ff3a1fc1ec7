"""Exercise checks for notebook 09 (Kafka as the backbone, Redis as the serving view).

Both checks build fresh inputs the learner has never seen (random orders, random redeliveries,
a fresh changelog topic) and compare with a truth computed at creation time.
"""

from __future__ import annotations

import json
import random
import secrets

from .. import clients, groups, pipeline
from . import CheckResult, call, check, learner_redis, not_yet, passed


def _deliveries(rng: random.Random, n: int, partitions: int = 2) -> tuple[list[tuple[int, int, dict]], list[dict]]:
    """(partition, offset, event) in at-least-once order: each partition is read in order, and a
    few simulated crashes send it back to its last commit (redelivering what came after)."""
    events = [pipeline.order_event(f"chk-{i}", rng, ts_ms=1_700_000_000_000 + i * 7_000) for i in range(n)]
    lanes = []
    for p in range(partitions):
        evs, lane, committed, offset, crashes = events[p::partitions], [], 0, 0, 0
        while offset < len(evs):
            lane.append((p, offset, evs[offset]))
            offset += 1
            if crashes < 4 and offset - committed >= 2 and rng.random() < 0.2:
                offset, crashes = committed, crashes + 1  # crash before the commit: redeliver
            elif rng.random() < 0.3:
                committed = offset
        if crashes == 0:  # every partition sees at least one redelivery
            lane.extend(lane[-2:])
        lanes.append(lane)
    deliveries = []
    while any(lanes):  # partitions interleave in any order; each keeps its own order
        lane = rng.choice([lane for lane in lanes if lane])
        deliveries.append(lane.pop(0))
    return deliveries, events


@check
def idempotent_apply(apply_order, r, ns, n: int = 60) -> CheckResult:
    """``apply_order(r, keys, partition, offset, event)`` must update the view so that
    redelivered records count once. The check replays ``n`` orders with redeliveries into a fresh
    view and compares the view with the orders counted once."""
    rng = random.Random(secrets.randbits(32))
    view = ns.key(f"check-view-{secrets.token_hex(2)}")
    keys = pipeline.view_keys(view)
    deliveries, events = _deliveries(rng, n)

    def deliver_all(client) -> None:  # every delivery within one time limit, on the learner's own client
        for partition, offset, event in deliveries:
            apply_order(client, keys, partition, offset, event)

    deliver_all.__name__ = getattr(apply_order, "__name__", "apply_order")  # what a message calls it
    try:
        call(deliver_all, learner_redis(r))  # the stub raises NotImplementedError -> "not attempted"
        got, truth = pipeline.read_view(r, view), pipeline.aggregate(events)
        diff = pipeline.compare(got, truth)
        extra = len(deliveries) - len(events)
        if diff["equal"]:
            return passed(f"{len(deliveries)} deliveries ({extra} of them redeliveries) left the view equal "
                          f"to the {len(events)} orders counted once.")
        if diff["extra_orders"] > 0:
            return not_yet(f"The view counted {diff['orders_view']} orders for {diff['orders_truth']}: "
                           f"{diff['extra_orders']} redeliveries were counted twice.",
                           "remember the last applied offset per partition (HSET keys['applied']) and skip "
                           "an offset at or below it, in the same MULTI/EXEC (WATCH the applied hash) or Lua script")
        return not_yet(f"The view differs from the orders counted once ({diff}).",
                       "apply every new offset: revenue (HINCRBY), units (ZINCRBY), orders per minute "
                       "(HINCRBY with pipeline.minute_of(event['ts']))")
    finally:
        r.delete(*(keys[k] for k in ("revenue", "sold", "per_minute", "applied")))


@check
def latest_per_key(latest, admin, ns, n: int = 120) -> CheckResult:
    """``latest(topic) -> {key: value dict}`` must return the newest value of every key of a
    changelog topic (written here, fresh, with random keys, by the check's own producer)."""
    rng = random.Random(secrets.randbits(32))
    topic = groups.create_topic(admin, ns.topic(f"check-changelog-{secrets.token_hex(2)}"), 2)
    keys = [f"sku-{rng.randint(100, 999)}" for _ in range(rng.randint(4, 8))]
    truth: dict[str, dict] = {}
    producer = clients.kafka_producer()
    try:
        futures = []
        for i in range(n):
            key = rng.choice(keys)
            value = {"version": i, "units": rng.randint(1, 500)}
            truth[key] = value
            futures.append(producer.send(topic, key=key.encode(), value=json.dumps(value).encode()))
        for f in futures:
            f.get(timeout=10)
    finally:
        producer.close(timeout=10)
    got = call(latest, topic)  # the stub raises NotImplementedError -> "not attempted"
    if not isinstance(got, dict):
        return not_yet(f"latest_per_key returned a {type(got).__name__}, not a dict.", "return {key: value}")
    got = {(k.decode() if isinstance(k, bytes) else k): (json.loads(v) if isinstance(v, (bytes, str)) else v)
           for k, v in got.items()}
    if got == truth:
        return passed(f"The newest value of each of {len(truth)} keys out of {n} updates: "
                      "exactly what a compacted topic keeps.")
    stale = sorted(k for k in truth if got.get(k) != truth[k])
    return not_yet(f"{len(stale)} of {len(truth)} keys have an older (or missing) value, e.g. {stale[:3]}.",
                   "read every partition from the beginning to its end offset and let a later record of "
                   "a key overwrite an earlier one (a dict does it)")
