"""The decision guide: requirements in, a recommendation out, each reason tied to a figure you measured.

:func:`recommend` is a plain function (no widgets): it takes :class:`Requirements` and a
:class:`helpers.ledger.Ledger` and returns a :class:`Recommendation` whose reasons each cite a claim
id and the learner's own recorded figure for it, or say "not measured yet — run notebook NN".
The only measured figure that changes the choice is one Redis's stream throughput (C09); without it
the article's lower bound ("tens of thousands": 10,000 ops/s) stands in, and the reason says so.
:mod:`helpers.decision_view` draws the form around it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import claims_map

CHOICES = {
    "pubsub": "Redis Pub/Sub",
    "lists": "Redis Lists (LPUSH / BRPOP)",
    "streams": "Redis Streams (consumer groups)",
    "kafka": "Kafka (consumer groups)",
    "kafka-share": "Kafka (share groups)",
    "both": "Kafka + Redis (Kafka the backbone, Redis the serving layer)",
}
RETENTION = {"none": "none: deliver now or never", "hours": "hours: replay a recent window",
             "weeks": "weeks or months: audit, backfill, rebuild"}
OPS = {"redis": "one Redis is all we want to run", "kafka": "we can run (or buy) a Kafka cluster"}
ARTICLE_REDIS_OPS = 10_000   # "tens of thousands of operations per second": the range's lower end
KAFKA_BATCH_MS = 5           # the article: batching adds "typically 5-50ms"
SUB_MS = 1.0


@dataclass(frozen=True)
class Requirements:
    latency_ms: float = 50.0              # end-to-end latency you can accept (median), ms
    throughput: float = 1_000.0           # events per second at peak
    retention: str = "none"               # a key of RETENTION
    independent_consumers: bool = False   # several services each need EVERY event, at their own pace
    per_message_ack: bool = False         # a job queue: one worker per message, acked one by one, redelivered
    loss_ok: bool = True                  # may a crash or a disconnect lose messages?
    ops: str = "redis"                    # a key of OPS

    def __post_init__(self):
        if self.retention not in RETENTION:
            raise ValueError(f"retention must be one of {list(RETENTION)}, not {self.retention!r}")
        if self.ops not in OPS:
            raise ValueError(f"ops must be one of {list(OPS)}, not {self.ops!r}")
        if not (self.latency_ms > 0 and self.throughput > 0):
            raise ValueError("latency_ms and throughput must be positive numbers")


@dataclass
class Reason:
    """One reason: a statement about the tools, the claim that tests it and the learner's figure (or None)."""
    statement: str
    claim: str | None              # None: the article's judgement, which no experiment measures
    figure: object = None          # a helpers.ledger.Figure, or None when not measured
    notebook: str = ""             # the notebook to run when not measured

    @property
    def measured(self) -> bool:
        return self.figure is not None

    @property
    def evidence(self) -> str:
        f = self.figure
        if self.claim is None:
            return "the article's judgement: no experiment of the course measures it"
        if f is None:
            return f"{self.claim}: not measured yet — run notebook {self.notebook}"
        return f"{self.claim}: you measured {f.text} ({f.metric}; notebook {f.notebook}, results line {f.line})"

    @property
    def text(self) -> str:
        return f"{self.statement} [{self.evidence}]"


@dataclass
class Recommendation:
    choice: str                                   # a key of CHOICES
    reasons: list[Reason] = field(default_factory=list)
    caveats: list[Reason] = field(default_factory=list)

    @property
    def name(self) -> str:
        return CHOICES[self.choice]


def _reason(ledger, statement: str, claim: str | None, notebook: str | None = None,
            metric: str | None = None) -> Reason:
    if claim is None:
        return Reason(statement, None)
    fig = ledger.figure(claim, notebook=notebook, metric=metric) if ledger is not None else None
    run = notebook or ", ".join(claims_map.notebooks_for(claim))
    return Reason(statement, claim, fig, run)


def redis_ceiling(ledger) -> tuple[float, bool]:
    """``(ops/s, measured?)``: one Redis's stream throughput as measured (C09), else the article's 10,000."""
    fig = ledger.figure("C09") if ledger is not None else None
    if fig is not None and isinstance(fig.value, (int, float)) and not isinstance(fig.value, bool) and fig.value > 0:
        return float(fig.value), True
    return float(ARTICLE_REDIS_OPS), False


def recommend(req: Requirements, ledger=None) -> Recommendation:
    """The tool for ``req``, with reasons citing the learner's figures from ``ledger`` (a Ledger or None)."""
    R = lambda *a, **k: _reason(ledger, *a, **k)  # noqa: E731
    ceiling, measured = redis_ceiling(ledger)
    why_kafka: list[Reason] = []
    if req.retention == "weeks":
        why_kafka += [
            R("Redis keeps a stream in RAM, so weeks of retention cost memory, and trimming with MAXLEN/MINID "
              "discards what a later replay needs.", "C10", "03", "RAM to retain"),
            R("Kafka keeps records on disk whether or not they were consumed, until its retention policy (time "
              "or size) removes them.", "C12", "04"),
            R("A new Kafka consumer group can start from the earliest retained record.", "C14", "05", "new_group")]
    if req.throughput > ceiling:
        source = "as you measured" if measured else "the article's lower bound; not measured here"
        why_kafka += [
            R(f"{req.throughput:,.0f} events/s is above one Redis's {ceiling:,.0f} stream operations/s "
              f"({source}); one stream cannot be split across Redis Cluster shards.", "C09", "06"),
            R("Kafka spreads a topic over partitions; each partition is read by one consumer of a group, so "
              "partitions (and brokers) are how it scales.", "C13", "08", "speed-up"),
            R("Kafka producers batch records; the measured throughput of one partition:", "C16", "06")]
    if not req.loss_ok and req.ops == "kafka":
        why_kafka.append(R("With acks=all, replication factor 3 and min.insync.replicas=2, a record is acknowledged "
                           "only once the in-sync replicas have it; killing the partition leader lost this many "
                           "acknowledged records:", "C19", "07", "acks=all, RF 3"))

    if why_kafka:
        kafka = "kafka-share" if req.per_message_ack else "kafka"
        rec = Recommendation("both" if req.latency_ms < KAFKA_BATCH_MS else kafka, why_kafka)
        if req.per_message_ack:
            rec.reasons.append(R("A share group hands each record to one consumer at a time, acknowledged record by "
                                 "record with a delivery count; a record a killed consumer held becomes available "
                                 "again, at the latest when its acquisition lock times out. Records are processed "
                                 "one at a time, not as an ordered stream.",
                                 "C07", "08", "share group"))
        else:
            rec.reasons.append(R("A consumer group member that crashes before committing has its uncommitted "
                                 "records redelivered to the group (at-least-once).", "C22", "05"))
        if req.independent_consumers:
            rec.reasons.append(R("Independent consumer groups each read every record, with their own offsets.",
                                 "C14", "05", "groups_that_read"))
        if rec.choice == "both":
            rec.reasons += [
                R(f"Your {req.latency_ms:g} ms target leaves no room for Kafka's batching (the article: typically "
                  "5-50 ms; linger.ms trades latency for throughput), so Redis serves the hot path.", "C15", "06"),
                R("Redis answers from memory: the measured latency of a message through it:",
                  "C17" if req.per_message_ack else "C02", "06"),
                R("Data flows one way, Kafka -> processor -> Redis; the Redis view can be wiped and rebuilt by "
                  "replaying Kafka.", "C23", "09", "rebuild")]
        if req.ops == "redis":
            rec.caveats.append(R("Kafka is a cluster to operate (brokers, KRaft controllers, partitions, "
                                 "replication), and your budget says one Redis: a managed Kafka service narrows "
                                 "that gap.", None))
        return rec

    fits = R(f"{req.throughput:,.0f} events/s fits one Redis ({ceiling:,.0f} stream operations/s, "
             + ("as you measured with redis-benchmark)." if measured else "the article's lower bound; not measured "
                "here)."), "C09", "06")
    if req.per_message_ack or not req.loss_ok or req.retention == "hours":
        rec = Recommendation("streams", [
            R("Entries a consumer read but did not XACK stay in the group's pending entries list; another "
              "consumer claims them with XAUTOCLAIM (at-least-once).", "C07", "03", "reclaimed"),
            R("Consumers of one group share the entries; each separate group reads all of them.", "C08", "03"),
            fits])
        if req.retention == "hours":
            rec.reasons.append(R("A stream keeps its entries in RAM until trimmed: a replay reads them back, and "
                                 "entries trimmed with MAXLEN/MINID are gone for it.", "C10", "03", "replay missed"))
        if not req.loss_ok:
            rec.caveats.append(R("Redis persistence is per node: with RDB snapshots a crash loses the writes "
                                 "since the last one; the AOF with appendfsync always narrows that window at a cost in latency, "
                                 "and the data still sits on one machine's disk unless you add a replica. Lost "
                                 "with AOF always after a kill -9:", "C18", "07", "AOF always"))
    elif req.independent_consumers:
        rec = Recommendation("pubsub", [
            R("Every connected subscriber receives every message: a broadcast, not a work split.", "C04", "01"),
            R("Nothing is stored: a message published while nobody is subscribed reaches nobody.", "C01", "01"),
            R("A subscriber that is disconnected misses everything published meanwhile (you said losses are "
              "acceptable).", "C03", "01"),
            R("Publish-to-receive latency, median:", "C02", "01")])
        rec.caveats.append(R("No backpressure: a subscriber that cannot keep up is disconnected when its output "
                             "buffer limit is reached.", "C05", "01"))
    else:
        rec = Recommendation("lists", [
            R("LPUSH + BRPOP hands each job to one worker; a worker that crashes after the pop loses that job "
              "(you said losses are acceptable).", "C06", "02", "BRPOP"),
            fits])
        rec.caveats.append(R("BLMOVE keeps a popped job in a processing list until LREM acknowledges it, so a "
                             "reaper can push back the job of a crashed worker. Lost with that pattern:",
                             "C06", "02", "BLMOVE"))
    if req.latency_ms < SUB_MS:
        rec.reasons.append(R(f"Your {req.latency_ms:g} ms target needs an in-memory path: Redis stream latency, "
                             "median:", "C17", "06"))
    return rec


#: example scenarios the guide answers in the notebook: name -> requirements
SCENARIOS = {
    "cache invalidation across app servers": Requirements(latency_ms=5, throughput=500, independent_consumers=True),
    "thumbnail jobs, a lost one is re-requested": Requirements(throughput=200),
    "payment jobs, each handled once, never lost": Requirements(throughput=300, per_message_ack=True, loss_ok=False),
    "audit log kept for a year, read by three services": Requirements(throughput=2_000, retention="weeks",
                                                                      independent_consumers=True, loss_ok=False,
                                                                      ops="kafka"),
    "clickstream peaks of 5 million events/s": Requirements(throughput=5_000_000, retention="hours", ops="kafka"),
    "order events with a live dashboard under 2 ms": Requirements(latency_ms=2, throughput=5_000, retention="weeks",
                                                                  loss_ok=False, ops="kafka"),
}
