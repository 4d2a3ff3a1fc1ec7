"""Plumbing for notebook 08's queue comparison: one job workload on a Kafka **share group** (KIP-932,
confluent-kafka's ``ShareConsumer``) and on a Redis **Stream consumer group**, run by worker
PROCESSES that can be SIGKILLed or get stuck holding jobs.

Both workers report every step as a JSON event to the list ``<report>:events`` on the course Redis
(``t, system, consumer, event, job, delivery``) and apply a job's effect as ``HINCRBY
<report>:done:<system> job 1`` *before* acknowledging it (at-least-once). The acknowledgement calls
(``acknowledge`` / ``XACK``), the reclaim (``XAUTOCLAIM``) and the delivery counts are the lesson;
they are written out below and shown in the notebook with ``inspect.getsource``.
"""

from __future__ import annotations

import json
import time

from . import clients

COLUMNS = ["t", "system", "consumer", "event", "job", "delivery"]
STALL_SECONDS = 600  # a stuck worker holds its jobs this long (it is killed or stopped long before)
MIN_CLIENT = (2, 16)  # confluent-kafka with the KIP-932 ShareConsumer


def require_share_groups(admin) -> dict:
    """Check that the client and the broker can run share groups; one clear sentence if not.

    Returns ``{"client": version, "share.version": finalized level}``. Share groups need the cluster
    feature ``share.version`` >= 1 (finalized by default on a Kafka 4.2+ cluster formatted fresh; an
    upgraded cluster enables it with ``kafka-features.sh ... upgrade --feature share.version=1``).
    """
    from .errors import ServiceUnavailable

    try:
        import confluent_kafka
    except ImportError:
        raise ServiceUnavailable("confluent-kafka is not installed: run `make setup` (it is a course "
                                 "dependency) and restart the kernel.") from None
    version = getattr(confluent_kafka, "__version__", "0.0")
    if tuple(int(x) for x in version.split(".")[:2]) < MIN_CLIENT:
        raise ServiceUnavailable(f"confluent-kafka {version} has no share consumer; version 2.16 or newer is "
                                 "needed: run `make setup` and restart the kernel.")
    level = admin.describe_features().get("share.version", {}).get("finalized", (0, 0))[1]
    if level < 1:
        raise ServiceUnavailable("This Kafka cluster has share groups switched off (share.version=0): an "
                                 "operator enables them with `kafka-features.sh --bootstrap-server <broker> "
                                 "upgrade --feature share.version=1`.")
    return {"client": version, "share.version": level}


def set_group_config(admin, group: str, **configs) -> dict:
    """Set group-level configs (e.g. ``share.record.lock.duration.ms``) of ``group`` with kafka-python's
    IncrementalAlterConfigs on a GROUP resource; names use dots: pass ``{"a.b": v}`` via ``**{...}``."""
    from kafka.admin import ConfigResource, ConfigResourceType

    resource = ConfigResource(ConfigResourceType.GROUP, group, configs={k: str(v) for k, v in configs.items()})
    return admin.alter_configs([resource], incremental=True)


class _Reporter:
    """Events and effects of one worker, written to the course Redis."""

    def __init__(self, redis_url: str, report: str, system: str, consumer: str):
        self.r = clients.redis_client(redis_url)
        self.report, self.system, self.consumer = report, system, consumer

    def event(self, kind: str, job: str = "", delivery: int = 0, **extra) -> None:
        self.r.rpush(f"{self.report}:events", json.dumps({
            "t": time.time(), "system": self.system, "consumer": self.consumer, "event": kind,
            "job": job, "delivery": delivery, **extra}))

    def effect(self, job: str) -> None:
        self.r.hincrby(f"{self.report}:done:{self.system}", job, 1)   # e.g. the e-mail is sent

    def ready(self) -> None:
        self.r.hset(f"{self.report}:ready", f"{self.system}:{self.consumer}", time.time())

    def stop_requested(self) -> bool:
        return bool(self.r.exists(f"{self.report}:stop"))

    def stall(self, held: list[str]) -> None:
        """Stop making progress while holding ``held`` (no acknowledgement will come)."""
        self.event("stalled", held=held)
        deadline = time.monotonic() + STALL_SECONDS
        while time.monotonic() < deadline and not self.stop_requested():
            time.sleep(0.1)


def share_worker(*, bootstrap: str, topic: str, group: str, consumer: str, redis_url: str, report: str,
                 work_ms: float, stall_at: int = 0, max_poll_records: int = 2, lifetime: float = 180.0) -> None:
    """A Kafka share-group consumer PROCESS with explicit acknowledgement.

    Each polled record is *acquired* by this consumer (delivery count + 1). A job takes ``work_ms``;
    a job named ``poison-*`` always fails and is released (``RELEASE``: deliver again, to anyone);
    the others are accepted (``ACCEPT``) after their effect. With ``stall_at`` > 0 the worker stalls
    before its (stall_at + 1)-th job, holding the rest of its batch. Records named ``ping-*`` only
    prove the consumer has been assigned the partition (``ready``).
    """
    from confluent_kafka import AcknowledgeType, ShareConsumer

    rep = _Reporter(redis_url, report, "kafka", consumer)
    share = ShareConsumer(clients.librdkafka_config(bootstrap, **{  # + the KAFKA_* security settings
        "group.id": group, "client.id": consumer, "share.acknowledgement.mode": "explicit",
        "max.poll.records": max_poll_records, "socket.timeout.ms": 10000, "log_level": 3}))
    share.subscribe([topic])
    handled, deadline = 0, time.monotonic() + lifetime
    try:
        while time.monotonic() < deadline and not rep.stop_requested():
            batch = [m for m in share.poll(0.2) if m.error() is None]
            for i, msg in enumerate(batch):
                job, delivery = msg.value().decode(), msg.delivery_count()
                if job.startswith("ping-"):
                    share.acknowledge(msg)
                    rep.ready()
                    continue
                rep.event("got", job, delivery)
                if stall_at and handled == stall_at:
                    rep.stall([m.value().decode() for m in batch[i:]])
                    return
                time.sleep(work_ms / 1000)
                if job.startswith("poison-"):
                    share.acknowledge(msg, AcknowledgeType.RELEASE)        # failed: deliver it again
                    rep.event("failed", job, delivery)
                else:
                    rep.effect(job)
                    share.acknowledge(msg, AcknowledgeType.ACCEPT)         # done: never again
                    rep.event("done", job, delivery)
                handled += 1
                for error in (share.commit_sync(10) or {}).values():      # send it to the broker now
                    if error is not None:
                        rep.event("ack-failed", job, delivery, error=str(error))
            if batch:
                share.commit_sync(10)                                      # the pings' acknowledgements
    finally:
        share.close()


def stream_worker(*, redis_url: str, stream: str, group: str, consumer: str, report: str, work_ms: float,
                  min_idle_ms: int, max_deliveries: int, dlq: str, stall_at: int = 0, count: int = 2,
                  lifetime: float = 180.0) -> None:
    """A Redis Stream consumer-group consumer PROCESS: the same jobs, the same failures.

    Each round it first takes over entries pending for at least ``min_idle_ms`` (``XAUTOCLAIM``: a
    dead or stuck consumer's), else reads new ones (``XREADGROUP >``). The delivery count comes from
    ``XPENDING``. A failed job stays pending (to be reclaimed) until it has been delivered
    ``max_deliveries`` times; then it is copied to the dead-letter stream ``dlq`` and acknowledged.
    """
    rep = _Reporter(redis_url, report, "redis", consumer)
    r, handled, deadline = rep.r, 0, time.monotonic() + lifetime
    rep.ready()
    while time.monotonic() < deadline and not rep.stop_requested():
        _, entries, _ = r.xautoclaim(stream, group, consumer, min_idle_ms, "0-0", count=count)
        if not entries:
            reply = r.xreadgroup(group, consumer, {stream: ">"}, count=count, block=200)
            entries = reply[0][1] if reply else []
        for i, (entry_id, fields) in enumerate(entries):
            job = fields["job"]
            delivery = r.xpending_range(stream, group, entry_id, entry_id, 1)[0]["times_delivered"]
            rep.event("got", job, delivery)
            if stall_at and handled == stall_at:
                rep.stall([f["job"] for _, f in entries[i:]])
                return
            time.sleep(work_ms / 1000)
            if job.startswith("poison-"):
                if delivery >= max_deliveries:                               # give up: dead-letter it
                    r.xadd(dlq, {**fields, "original_id": entry_id, "deliveries": delivery})
                    r.xack(stream, group, entry_id)
                    rep.event("dead-lettered", job, delivery)
                else:
                    rep.event("failed", job, delivery)                       # no XACK: stays pending
            else:
                rep.effect(job)
                r.xack(stream, group, entry_id)
                rep.event("done", job, delivery)
            handled += 1


def wait_ready(r, report: str, producer, topic: str, expected: list[str], timeout: float = 60.0) -> dict:
    """Send ``ping-N`` records one at a time until every worker in ``expected`` (``"kafka:c1"`` ...)
    has reported ready (a share consumer is ready once it has received a record). Returns
    ``{"seconds": ..., "pings": ...}``."""
    t0, n = time.monotonic(), 0
    while not set(expected) <= set(r.hkeys(f"{report}:ready")):
        if time.monotonic() - t0 > timeout:
            missing = sorted(set(expected) - set(r.hkeys(f"{report}:ready")))
            raise TimeoutError(f"workers {missing} not ready after {timeout:.0f} s")
        producer.send(topic, value=f"ping-{n}".encode()).get(timeout=10)
        n += 1
        time.sleep(0.2)
    return {"seconds": round(time.monotonic() - t0, 1), "pings": n}


def events(r, report: str):
    """Every event of a run as a DataFrame, ``seconds`` counted from the first event."""
    import pandas as pd

    df = pd.DataFrame([json.loads(x) for x in r.lrange(f"{report}:events", 0, -1)],
                      columns=None if r.llen(f"{report}:events") else COLUMNS)
    df["seconds"] = (df["t"] - df["t"].min()).round(3) if len(df) else []
    return df


def redeliveries(ev, system: str, victim: str, since: float) -> list[dict]:
    """For each job ``victim`` held when it stalled: who got it next, with which delivery count,
    and how many seconds after ``since`` (the kill; ``None``: the stall, for a consumer left stuck)."""
    mine = ev[(ev.system == system) & (ev.consumer == victim)]
    stalled = mine[mine.event == "stalled"]
    if not len(stalled):
        return []
    rows = []
    for job in stalled.iloc[0]["held"]:
        later = ev[(ev.system == system) & (ev.job == job) & (ev.event == "got") & (ev.consumer != victim)]
        first = later.sort_values("t").iloc[0] if len(later) else None
        start = since if since else float(stalled.iloc[0].t)
        rows.append({"system": system, "victim": victim, "job": job,
                     "redelivered to": None if first is None else first.consumer,
                     "delivery count": None if first is None else int(first.delivery),
                     "after (s)": None if first is None else round(float(first.t) - start, 2)})
    return rows
