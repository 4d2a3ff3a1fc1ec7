"""Which experiment of the course tests each claim of the article (C01-C23), and which figures it records.

One :class:`Experiment` per figure a notebook records with ``results.record``: the claim, the notebook,
the section that runs it, the metric name it records (a regular expression where the notebook builds
the name, e.g. from a rate or a configuration) and whether it is a *headline* figure of the claim.
Built from the ``results.record(...)`` calls of notebooks 01-09; :mod:`helpers.ledger` matches every
record of the results file against it (a record that matches nothing is still shown, with its notebook).
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Experiment:
    claim: str
    notebook: str
    section: str
    metric: str              # a regular expression, matched against the whole recorded metric name
    headline: bool = False

    def matches(self, notebook: str, metric: str) -> bool:
        return str(notebook) == self.notebook and re.fullmatch(self.metric, str(metric)) is not None


def _x(text: str) -> str:
    return re.escape(text)


NOTEBOOKS = {
    "01": "01_redis_pubsub.ipynb", "02": "02_redis_lists.ipynb", "03": "03_redis_streams.ipynb",
    "04": "04_kafka_log.ipynb", "05": "05_kafka_consumer_groups_replay.ipynb",
    "06": "06_latency_vs_throughput.ipynb", "07": "07_durability_and_crashes.ipynb",
    "08": "08_scaling.ipynb", "09": "09_using_both_together.ipynb",
}

E = Experiment
EXPERIMENTS: list[Experiment] = [
    E("C01", "01", "1 Nobody listening", _x("receivers of a message published with no subscriber"), True),
    E("C02", "01", "5 Latency", _x("Pub/Sub publish-to-receive latency p50"), True),
    E("C02", "06", "2 End-to-end latency at a fixed rate", r"Redis Pub/Sub end-to-end latency p50, open loop at .*", True),
    E("C03", "01", "3 Loss on disconnect", _x("messages missed during a disconnect window"), True),
    E("C04", "01", "2 Broadcast", _x("messages received by each subscriber / published"), True),
    E("C04", "02", "1 Several workers, one list", _x("Pub/Sub copies per message with 4 subscribers") + ".*"),
    E("C05", "01", "4 A slow subscriber", r"messages (a stuck subscriber had been sent but never read when the server "
                                          r"cut it|lost by a subscriber that stopped reading)", True),
    E("C06", "02", "2 Pop, then crash", _x("jobs lost when a BRPOP worker was SIGKILLed mid-job"), True),
    E("C06", "02", "3 The reliable-queue pattern", _x("jobs lost with BLMOVE + processing list") + ".*"),
    E("C06", "08", "4 Share groups vs Stream groups", _x("jobs lost when a queue consumer was SIGKILLed") + ".*"),
    E("C07", "03", "3 A consumer dies before XACK", _x("entries a SIGKILLed consumer held, reclaimed with XAUTOCLAIM"), True),
    E("C07", "03", "3c A poison entry", _x("deliveries before a poison entry was dead-lettered")),
    E("C07", "08", "4 Share groups vs Stream groups", _x("Kafka share group: seconds until a SIGKILLed consumer's job "
                                                         "was redelivered")),
    E("C08", "03", "2 Consumer groups", _x("billing consumers' share of the stream") + ".*", True),
    E("C09", "06", "4 Redis throughput: pipelining", r"XADD/s on one Redis.*", True),
    E("C10", "03", "4 Replay while the data is in memory", _x("entries a replay missed after MAXLEN/MINID trimming"), True),
    E("C10", "03", "5 Memory is the boundary", _x("RAM to retain one week at 1,000 events/s"), True),
    E("C11", "08", "3 Redis Cluster: one stream, one shard", _x("one stream: entries/s with 3 writers vs 1 writer") + ".*", True),
    E("C11", "08", "3 Redis Cluster: one stream, one shard", _x("three stream keys on three shards vs one stream") + ".*"),
    E("C12", "04", "3 Reading does not remove", _x("records_still_readable_after_a_full_read"), True),
    E("C12", "05", "4 Replay", _x("replayed_from_beginning"), True),
    E("C12", "09", "4 Drill: Redis goes down", _x("orders_accepted_while_redis_down")),
    E("C13", "04", "1.2 Two clients, two hash functions", _x("keys_split_by_mixed_default_partitioners")),
    E("C13", "04", "2 Order within a partition", _x("inversions_within_partitions"), True),
    E("C13", "08", "1 Partitions cap the parallelism", _x("consumer-group speed-up with P consumers") + ".*", True),
    E("C13", "08", "1 Partitions cap the parallelism", _x("per-key order violations within partitions") + ".*"),
    E("C14", "05", "2 Independent groups", _x("groups_that_read_every_record"), True),
    E("C14", "05", "4 Replay", _x("new_group_read_all_retained"), True),
    E("C14", "09", "4 Drill: Redis goes down", _x("new_group_view_equal_to_recount")),
    E("C15", "06", "3 Kafka's batching: linger.ms", r"p50 latency added by linger\.ms=.*", True),
    E("C16", "06", "6 Kafka throughput", r"Kafka producer records/s.*", True),
    E("C17", "06", "2 End-to-end latency at a fixed rate", r"Redis Stream.* end-to-end latency p50, open loop at .*", True),
    E("C18", "07", "1 Redis: what is left after kill -9", r"acknowledged writes lost: Redis.*", True),
    E("C19", "07", "2 Kafka: one copy, three acks settings", r"acknowledged writes lost: Kafka, 1 replica.*"),
    E("C19", "07", "3 Three brokers: kill the partition leader", r"acknowledged writes lost: Kafka, 3 brokers, acks=.*"
                                                               r"RF 3.*partition leader", True),
    E("C19", "07", "4 A second broker down", r"acknowledged writes lost: Kafka, 3 brokers, 2 down.*"),
    E("C19", "07", "5 The last in-sync replica dies", r"acknowledged writes lost: Kafka, 3 brokers, acks=1, unclean.*"),
    E("C20", "03", "5 Memory is the boundary", _x("redis_stream_bytes_per_entry")),
    E("C20", "04", "4.3 A backlog on disk vs a backlog in RAM", _x("kafka_log_bytes_on_disk_per_record"), True),
    E("C20", "04", "4.3 A backlog on disk vs a backlog in RAM", _x("redis_stream_ram_bytes_per_record"), True),
    E("C20", "04", "4.3 A backlog on disk vs a backlog in RAM", _x("broker_rss_growth_vs_redis_used_memory_growth")),
    E("C20", "04", "4.4 When Redis's memory is full", _x("redis_stream_entries_accepted_before_oom")),
    E("C21", "08", "2 Repartitioning a live topic", _x("share of keys that changed partition") + ".*", True),
    E("C22", "05", "3 A member crashes", _x("redelivered_after_sigkill"), True),
    E("C22", "09", "2 Drill: kill -9 the processor", _x("redelivered_after_sigkill")),
    E("C23", "09", "1 The pipeline, live", _x("live_view_equal_to_recount")),
    E("C23", "09", "3 Drill: rebuild by replaying Kafka", _x("view_equal_after_rebuild_by_replay"), True),
    E("C23", "09", "5 A compacted topic", _x("records_kept_by_compaction")),
]


def experiments(claim: str) -> list[Experiment]:
    """The experiments that test ``claim``, in course order."""
    return [e for e in EXPERIMENTS if e.claim == claim]


def notebooks_for(claim: str) -> list[str]:
    """The notebooks to run to measure ``claim`` (``["01", "06"]`` for C02)."""
    return sorted({e.notebook for e in experiments(claim)})


def find(claim: str, notebook: str, metric: str) -> Experiment | None:
    """The experiment that recorded ``metric`` for ``claim`` in ``notebook``, or None."""
    return next((e for e in experiments(claim) if e.matches(notebook, metric)), None)


def experiment_text(claim: str) -> str:
    """``"01 §1 Nobody listening"`` for every section that tests ``claim``, joined with '; '."""
    seen = dict.fromkeys(f"{e.notebook} §{e.section}" for e in experiments(claim))
    return "; ".join(seen)

