"""Exercise checks for notebook 08 (scaling): each runs the learner's function against the real
servers (the throwaway Redis Cluster, the course's Kafka) and judges what the servers did."""

from __future__ import annotations

import random
import secrets

from kafka.admin import NewPartitions

from .. import clients, groups, scaling
from . import CheckResult, call, check, not_yet, passed

#: Move one entry from a stream to its dead-letter stream in ONE atomic step (a Lua script runs as
#: one command): both keys must be in the same hash slot in a Redis Cluster.
MOVE_TO_DLQ = """
local entry = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])[1]
if not entry then return 0 end
redis.call('XADD', KEYS[2], '*', 'original_id', ARGV[1], unpack(entry[2]))
return redis.call('XDEL', KEYS[1], ARGV[1])
"""


@check
def colocated_dead_letters(stream_keys, rc, ns, partitions: int = 6) -> CheckResult:
    """``stream_keys(p) -> (stream, dead_letter_stream)`` for partition ``p``: each pair must share a
    hash slot (so MOVE_TO_DLQ runs on one node) while the partitions' streams spread over the shards."""
    pairs = [tuple(call(stream_keys, p)) for p in range(partitions)]  # the stub raises -> not attempted
    if any(len(pair) != 2 for pair in pairs):
        return not_yet("stream_keys must return a pair (stream key, dead-letter key).", "return (stream, dlq)")
    foreign = [k for pair in pairs for k in pair if not str(k).startswith(ns.prefix)]
    if foreign:
        return not_yet(f"{foreign[0]!r} is outside this notebook's namespace.",
                       "build every key with ns.key(...), so cleanup can find it")
    if len({k for pair in pairs for k in pair}) != 2 * partitions:
        return not_yet("Two partitions (or a stream and its dead-letter stream) share a key name.",
                       "put the partition number into both names")
    if not rc.running:
        return not_yet("The Redis Cluster of section 3 is not running (the cleanup cell stops it).",
                       "run the first cell of section 3 again, then this check")
    node = rc.node_client(0)
    slot = {k: node.execute_command("CLUSTER KEYSLOT", k) for pair in pairs for k in pair}
    split = [pair for pair in pairs if slot[pair[0]] != slot[pair[1]]]
    client = rc.client()
    try:
        if split:
            stream, dlq = split[0]
            try:  # ask a node directly, so the answer is the server's own
                node.eval(MOVE_TO_DLQ, 2, stream, dlq, "0-1")
            except Exception as exc:  # the server's CROSSSLOT reply
                return not_yet(f"{len(split)} of {partitions} pairs are in two slots; the server answered "
                               f"{str(exc).split(chr(10))[0]!r} for {stream!r} + {dlq!r}.",
                               "a hash tag {...} makes Redis hash only the part inside the braces")
        moved = 0
        for stream, dlq in pairs:
            entry = client.xadd(stream, {"job": "poison", "partition": stream})
            moved += int(client.eval(MOVE_TO_DLQ, 2, stream, dlq, entry) == 1 and client.xlen(dlq) == 1
                         and client.xlen(stream) == 0)
        if moved != partitions:
            return not_yet(f"The move worked for {moved} of {partitions} partitions.", "check the two names")
        owners = {client.get_node_from_key(pair[0]).port for pair in pairs}
        slots = {slot[pair[0]] for pair in pairs}
        if len(slots) < partitions or len(owners) < 2:
            return not_yet(f"Every pair is co-located, but the {partitions} partitions use {len(slots)} slot(s) "
                           f"on {len(owners)} node(s): one shard does all the work again.",
                           "give each partition its own hash tag, e.g. {jobs-3}, not one tag for all")
        return passed(f"Each stream and its dead-letter stream share a slot (the atomic move ran on "
                      f"{partitions} partitions), and the partitions spread over {len(owners)} shards.")
    finally:
        keys = [k for pair in pairs for k in pair]
        for key in keys:
            client.unlink(key)


@check
def moved_keys(predict_moved, admin, ns, keys: int = 40) -> CheckResult:
    """``predict_moved(keys, old, new) -> set of keys`` that change partition when a topic grows from
    ``old`` to ``new`` partitions; compared with what the broker really did, on a fresh topic."""
    old, new = random.choice([(2, 3), (3, 4), (4, 6), (4, 8)])
    names = [f"user-{secrets.token_hex(3)}" for _ in range(keys)]
    guess = call(predict_moved, list(names), old, new)  # the stub raises -> not attempted
    topic = groups.create_topic(admin, ns.topic(f"check-moved-{secrets.token_hex(2)}"), old)
    producer = clients.kafka_producer(metadata_max_age_ms=500)
    try:
        before = {k: producer.send(topic, key=k.encode(), value=b"1").get(timeout=10).partition for k in names}
        admin.create_partitions({topic: NewPartitions(new)})
        scaling.wait_producer_partitions(producer, topic, new)
        after = {k: producer.send(topic, key=k.encode(), value=b"2").get(timeout=10).partition for k in names}
    finally:
        producer.close(timeout=10)    # before the delete: its metadata refresh would re-create the topic
        admin.delete_topics([topic], timeout_ms=15000)
    truth = {k for k in names if before[k] != after[k]}
    guess = set(guess or ())
    if guess == truth:
        return passed(f"Exactly right: growing a topic from {old} to {new} partitions moved {len(truth)} of "
                      f"{keys} fresh keys, the ones you named.")
    return not_yet(f"For {old} -> {new} partitions you named {len(guess)} keys; the broker moved {len(truth)} "
                   f"({len(guess - truth)} named wrongly, {len(truth - guess)} missed).",
                   "a key's partition is murmur2(key) % partitions: scaling.partition_for(key, n)")
