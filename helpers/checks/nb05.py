"""Exercise checks for notebook 05 (Kafka consumer groups and replay).

Both checks run the learner's function against the real broker and compare what it read with what
was produced (the truth is counted at produce time, never recomputed from the learner's answer).
"""

from __future__ import annotations

import random
import secrets
from collections import Counter
from contextlib import suppress

from kafka.admin import OffsetSpec

from .. import groups
from . import CheckResult, call, check, not_yet, passed


@check
def rebuild_counts(rebuild, admin, producer, ns, n: int = 200) -> CheckResult:
    """``rebuild(topic) -> {key: count}`` must rebuild per-key counts by replaying ``topic``.

    The check writes a fresh topic with random keys the learner has never seen, so only a real
    replay of the topic can give the right answer.
    """
    topic = groups.create_topic(admin, ns.topic(f"check-rebuild-{secrets.token_hex(2)}"), 3)
    keys = [f"user-{i}" for i in range(random.randint(4, 9))]
    truth = Counter(random.choice(keys) for _ in range(n))
    futures = [producer.send(topic, key=k.encode(), value=f"{k}:{i}".encode())
               for i, k in enumerate(truth.elements())]
    for f in futures:
        f.get(timeout=10)
    got = call(rebuild, topic)  # the stub raises NotImplementedError -> "not attempted"
    if not isinstance(got, dict):
        return not_yet(f"rebuild_counts returned a {type(got).__name__}, not a dict of key -> count.",
                       "return dict(counter) at the end")
    got = {(k.decode() if isinstance(k, bytes) else k): v for k, v in got.items()}
    if got == dict(truth):
        return passed(f"Your replay rebuilt the exact counts of {len(truth)} keys from {n} records "
                      f"of a topic written just now ({topic.rsplit('.', 1)[-1]}).")
    missing = sum(truth.values()) - sum(got.values())
    wrong = sorted(k for k in set(truth) | set(got) if truth.get(k, 0) != got.get(k, 0))
    return not_yet(f"{len(wrong)} of {len(truth)} keys have the wrong count "
                   f"({sum(got.values())} records counted, {n} produced; {missing:+d} missing).",
                   "assign() every partition, seek_to_beginning(), then read until the end offsets "
                   "(groups.drain(consumer) does the reading for you)")


@check
def start_group_at(start, admin, topic: str, group: str, ts_ms: int, truth) -> CheckResult:
    """``start(topic, group, ts_ms) -> consumer`` must make a new group read exactly the records at/after ts_ms.

    Each attempt uses a fresh group (``group`` plus a random suffix), so the offsets a failed attempt
    committed cannot decide the next one; the attempt's group is deleted afterwards.

    ``truth`` holds the producer's RecordMetadata (partition, offset, timestamp) for every record.
    The check reads with the returned consumer up to the end offsets, commits, then compares the
    (partition, offset) pairs read with the records whose timestamp is >= ``ts_ms`` that are still
    retained, and verifies the group's committed offsets reached the end of every partition.
    """
    group = f"{group}-{secrets.token_hex(2)}"
    consumer = call(start, topic, group, ts_ms)  # the stub raises NotImplementedError -> "not attempted"
    try:
        if consumer is None:
            return not_yet("start_group_at returned None.", "return the KafkaConsumer you created")
        if consumer.config.get("group_id") != group:
            return not_yet(f"the consumer's group_id is {consumer.config.get('group_id')!r}, not the group "
                           f"it was given ({group!r}).", "pass group_id=group_id when you create the consumer")
        end = groups.offsets(admin, topic)
        records = groups.drain_group(consumer, end, timeout=20)
        consumer.commit()
    finally:
        if consumer is not None and hasattr(consumer, "close"):
            consumer.close()
    try:
        return _judge(admin, topic, group, ts_ms, truth, records, end)
    finally:
        with suppress(Exception):  # an empty group of this attempt: nothing else refers to it
            admin.delete_groups([group])


def _judge(admin, topic: str, group: str, ts_ms: int, truth, records, end) -> CheckResult:
    log_start = groups.offsets(admin, topic, spec=OffsetSpec.EARLIEST)
    expected = {(m.partition, m.offset) for m in truth
                if m.timestamp >= ts_ms and m.offset >= log_start.get(m.partition, 0)}
    got = Counter((rec.partition, rec.offset) for rec in records)
    early = sum(1 for rec in records if rec.timestamp < ts_ms)
    committed = groups.committed(admin, group, topic)
    if set(got) == expected and max(got.values(), default=1) == 1 and committed == end:
        return passed(f"Group {group.rsplit('.', 1)[-1]!r} read exactly the {len(expected)} records at or "
                      f"after T (none earlier, none missing) and committed the end of every partition.")
    if early:
        return not_yet(f"The group read {len(records)} records, {early} of them from before T "
                       f"(expected {len(expected)}).",
                       "position each partition at the first offset with timestamp >= T "
                       "(OffsetTimestamp with admin.reset_group_offsets, or offsets_for_times + seek)")
    if set(got) != expected:
        return not_yet(f"The group read {len(set(got))} distinct records; {len(expected)} were produced "
                       f"at or after T.",
                       "a brand-new group with auto_offset_reset='latest' skips everything: give it "
                       "committed offsets at T before it starts reading")
    return not_yet(f"The records are right but the committed offsets {committed} are not the end offsets {end}.",
                   "subscribe with group_id=group_id so commit() stores the group's offsets")

