"""Plumbing for notebook 07's Kafka experiments: the read-back that counts what the log kept, the
probes of what a producer is told with brokers down, and what the learner watches (a live table
while the leader dies, the swimlane afterwards).

The threads that run during the experiment, :class:`SeqProducer` (numbered records, every
acknowledgement kept: what "acknowledged" means for each ``acks`` is said there) and
:class:`LeaderWatch`, live in :mod:`helpers.kafka_live` and are re-exported here, so the notebook
calls them as ``kd.SeqProducer(...)``.
"""

from __future__ import annotations

import time
from collections import Counter

import pandas as pd
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from .clients import drain_assigned
from .kafka_live import LeaderWatch, SeqProducer

__all__ = [
    "ACKS_LOSS_ANSWERS", "PROBE_ANSWERS", "UNCLEAN_ANSWERS", "ack_latency_ms", "create_topics", "live_table",
    "probe_acks_all", "probe_answer", "read_back", "read_seqs", "resumed_at", "swimlane_events", "tally",
    # re-exported from helpers.kafka_live
    "LeaderWatch", "SeqProducer",
]

#: the prediction of section 2: which acks settings lose acknowledged records on one killed broker
ACKS_LOSS_ANSWERS: dict[str, list[str]] = {
    "none": [], "acks=0 only": ["acks=0"], "acks=0 and acks=1": ["acks=0", "acks=1"],
    "all three": ["acks=0", "acks=1", "acks=all"],
}
#: the prediction of section 4: what acks=all probes get with two of three brokers down
PROBE_ANSWERS = ["all acknowledged", "some acknowledged, some refused", "all refused", "no answer: they time out"]
#: the prediction of section 5: which topic loses acknowledged records after an election without the last ISR
UNCLEAN_ANSWERS: dict[str, list[str]] = {
    "neither": [], "only unclean election off": ["off"], "only unclean election on": ["on"], "both": ["off", "on"],
}


def probe_answer(outcomes: list[str]) -> str:
    """Which of :data:`PROBE_ANSWERS` the outcomes of :func:`probe_acks_all` are."""
    ok = outcomes.count("ok")
    if ok == len(outcomes):
        return PROBE_ANSWERS[0]
    if ok:
        return PROBE_ANSWERS[1]
    if all("Timeout" in o or "TimedOut" in o for o in outcomes):
        return PROBE_ANSWERS[3]
    return PROBE_ANSWERS[2]


def read_seqs(bootstrap: str, topic: str, *, at_least: int = 0, timeout: float = 30.0) -> list[int]:
    """Every sequence number in partition 0 of ``topic``, in log order, up to its high watermark;
    the ``-1`` records of :func:`ack_latency_ms` and :func:`probe_acks_all` are left out.

    A consumer sees only records below the high watermark, which moves once the followers have
    them: so first wait until it reaches ``at_least`` or has not moved for 3 s (a truncated log
    never reaches it), else a lagging follower would look like lost records."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, request_timeout_ms=10000,
                             bootstrap_timeout_ms=10000, reconnect_backoff_max_ms=1000,
                             client_id="streamslab-nb07-reader")
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        deadline, last, since = time.monotonic() + timeout, -1, time.monotonic()
        while time.monotonic() < deadline:
            end = consumer.end_offsets([tp], timeout_ms=10000)[tp]
            if end >= at_least or time.monotonic() - since > 3.0:
                break
            if end != last:
                last, since = end, time.monotonic()
            time.sleep(0.1)
        consumer.seek_to_beginning(tp)
        values = (int(rec.value) for rec in drain_assigned(consumer, timeout))
        return [v for v in values if v >= 0]  # -1: latency probes, not part of the numbered stream
    finally:
        consumer.close()


def read_back(producer: SeqProducer, bootstrap: str) -> list[int]:
    """:func:`read_seqs` of ``producer``'s topic, waiting for the high watermark to pass its last acknowledgement."""
    return read_seqs(bootstrap, producer.topic, at_least=producer.last_offset() + 1)


def tally(producer: SeqProducer, log: list[int]) -> dict:
    """Count by id: acknowledged = kept + lost; duplicated = seqs the log holds more than once;
    unacknowledged_kept = in the log although the producer never got an OK for them."""
    counts = Counter(log)
    acked = set(producer.acked)
    lost = sorted(acked - counts.keys())
    return {"sent": len(producer.sent), "acknowledged": len(acked), "kept": len(acked & counts.keys()),
            "lost": len(lost), "lost_ids": lost, "duplicated": sum(1 for n in counts.values() if n > 1),
            "failed": len(producer.failed), "failed_errors": dict(Counter(producer.failed.values())),
            "unacknowledged_kept": len(counts.keys() - acked), "log_records": len(log)}


def create_topics(cluster, specs: dict[str, tuple[list[int], dict]], timeout: float = 30.0) -> None:
    """Create one-partition topics ``{name: (replicas, configs)}``; the first replica is the
    preferred leader. Waits until each has a leader."""
    admin = cluster.admin()
    try:
        admin.create_topics({name: {"assignments": {0: replicas}, "configs": {k: str(v) for k, v in cfg.items()}}
                             for name, (replicas, cfg) in specs.items()})
        deadline = time.monotonic() + timeout
        while not all(cluster.leader(name, admin=admin) for name in specs):
            if time.monotonic() > deadline:
                raise TimeoutError(f"topics {list(specs)} had no leader after {timeout} s")
            time.sleep(0.1)
    finally:
        admin.close()


def ack_latency_ms(bootstrap: str, topic: str, acks, n: int = 100) -> list[float]:
    """Send ``n`` records one at a time, each waiting for its acknowledgement: the latency cost of ``acks``."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks=acks, linger_ms=0, request_timeout_ms=10000,
                             max_block_ms=10000, **({} if acks == "all" else {"enable_idempotence": False}))
    try:
        producer.send(topic, b"-1", partition=0).get(timeout=15)  # warm-up: connections, metadata
        out = []
        for _ in range(n):
            t = time.perf_counter()
            producer.send(topic, b"-1", partition=0).get(timeout=15)
            out.append((time.perf_counter() - t) * 1000)
        return out
    finally:
        producer.close(timeout=5)


def probe_acks_all(bootstrap: str, topic: str, n: int = 5) -> list[str]:
    """Send ``n`` records with ``acks=all`` and NO retries: each outcome is "ok" or the broker's
    error class (e.g. ``NotEnoughReplicasError``) instead of a silent wait."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", retries=0, enable_idempotence=False,
                             request_timeout_ms=5000, delivery_timeout_ms=6000, max_block_ms=5000)
    outcomes = []
    try:
        for _ in range(n):
            try:
                producer.send(topic, b"-1", partition=0).get(timeout=10)
                outcomes.append("ok")
            except Exception as exc:  # the error class is the lesson
                outcomes.append(type(exc).__name__)
    finally:
        producer.close(timeout=2)
    return outcomes


# --- what the learner watches: a live table while the leader dies, and the swimlane afterwards ------
def live_table(producers: dict, watch: LeaderWatch, topic: str) -> pd.DataFrame:
    """One row per producer: acknowledged so far, failed, still waiting for an answer, and the
    partition's leader and ISR as the watcher saw them last (for ``widgets.LiveView``)."""
    last = next((c for c in reversed(watch.changes) if c["topic"] == topic), None)
    leader = "?" if last is None else ("none" if last["leader"] is None else f"broker {last['leader']}")
    rows = []
    for p in producers.values():
        acked, failed, sent = p.counts()
        rows.append({"producer": p.label, "acknowledged": acked, "waiting for an answer": sent - acked - failed,
                     "failed": failed, "leader": leader, "ISR": "" if last is None else str(last["isr"])})
    return pd.DataFrame(rows).set_index("producer")


def resumed_at(ack_times: list[float], kill_at: float, gap: float = 0.5) -> float | None:
    """When acknowledgements resumed after the kill at ``kill_at``: the first ack after it that
    follows ``gap`` seconds without one (answers already on their way at the kill do not count)."""
    times = sorted(ack_times)
    before = max((t for t in times if t <= kill_at), default=kill_at)
    for t in times:
        if t > kill_at:
            if t - before > gap:
                return t
            before = t
    return None


def swimlane_events(producers: dict, changes: list[dict], topic: str, *, kill_at: float, until: float,
                    bin_s: float = 0.25) -> pd.DataFrame:
    """The leader kill as swimlane events (``lane, t, event, detail``): each producer's
    acknowledgements per ``bin_s`` window and when they resumed after the kill at ``kill_at``, and the
    partition's leader and ISR changes (the controller's elections) up to clock time ``until``."""
    rows = []
    for p in producers.values():
        times = sorted(p.ack_times())
        for start, n in pd.Series(times).floordiv(bin_s).value_counts().sort_index().items():
            rows.append({"lane": f"producer {p.label}", "t": (start + 0.5) * bin_s, "event": "acknowledged",
                         "detail": f"{n} acks in {start * bin_s:.2f}-{(start + 1) * bin_s:.2f} s"})
        back = resumed_at(times, kill_at)
        if back is not None:
            rows.append({"lane": f"producer {p.label}", "t": back, "event": "acks resume",
                         "detail": f"the first ack after the outage, {back - kill_at:.1f} s after the kill"})
    previous = None
    for c in changes:
        if c["topic"] != topic or c["t"] > until:
            continue
        leader = "none" if c["leader"] is None else f"broker {c['leader']}"
        event = ("leader at start" if previous is None else
                 "leader elected" if c["leader"] != previous["leader"] else "ISR changed")
        rows.append({"lane": "controller", "t": c["t"], "event": event, "detail": f"leader {leader}, ISR {c['isr']}"})
        previous = c
    return pd.DataFrame(rows, columns=["lane", "t", "event", "detail"])
