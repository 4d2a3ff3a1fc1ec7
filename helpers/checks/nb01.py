"""Exercise checks for notebook 01 (Redis Pub/Sub).

Both checks run the learner's code against real Redis traffic: the truth is counted at publish time
(which sequence numbers were published while the subscriber was away; which channels match), never
recomputed from the learner's answer.
"""

from __future__ import annotations

import random
import secrets

from .. import pubsub
from ..clients import redis_client
from . import CheckResult, call, check, not_yet, passed


def _received_with_gaps(r, channel: str) -> tuple[list[int], list[int]]:
    """Publish seq numbers in five phases to ``channel``; the subscriber is away during phases 2 and 4.

    Returns (sequence numbers received through Redis, sequence numbers published while away).
    """
    sizes = [random.randint(8, 25) for _ in range(5)]
    seq, received, away = 0, [], []
    p = None
    for phase, n in enumerate(sizes):
        present = phase % 2 == 0
        if present:
            p = redis_client().pubsub(ignore_subscribe_messages=True)
            p.subscribe(channel)
            p.get_message(timeout=1.0)  # the subscribe confirmation: from here on we are listening
        for _ in range(n):
            r.publish(channel, pubsub.payload(seq))
            if not present:
                away.append(seq)
            seq += 1
        if present:
            received += pubsub.drain_seqs(p, expected=n, timeout=5)
            p.close()  # disconnect: the next phase is published while nobody listens
    return received, away


@check
def gap_detector(find_gaps, r, ns) -> CheckResult:
    """``find_gaps(seqs) -> list[int]``: the sequence numbers missing between the first and last received."""
    channel = ns.key(f"check-gaps-{secrets.token_hex(2)}")
    received, away = _received_with_gaps(r, channel)
    if sorted(set(received) | set(away)) != list(range(len(received) + len(away))):
        return not_yet("The check's own subscriber lost messages it should have received; run it again.")
    got = call(find_gaps, list(received))  # the stub raises NotImplementedError -> "not attempted"
    if got is None:
        return not_yet("find_gaps returned None.", "return the list of missing sequence numbers")
    got = [int(x) for x in got]
    if got != away:
        extra = sorted(set(got) - set(away))
        missing = sorted(set(away) - set(got))
        if not extra and not missing:
            return not_yet("You found the right numbers, but not in ascending order.", "return sorted(...)")
        return not_yet(f"Real traffic: {len(received)} received, {len(away)} published while the subscriber was "
                       f"away. Your find_gaps reported {len(got)}: {len(missing)} missed gaps, "
                       f"{len(extra)} numbers that were not gaps.",
                       "walk the received numbers in order; every jump from a to b (b > a + 1) "
                       "means a+1 .. b-1 were lost")
    no_gap = call(find_gaps, list(range(received[0], received[0] + 10)))
    if list(no_gap or []) != []:
        return not_yet(f"For 10 consecutive numbers find_gaps returned {list(no_gap)}; expected [].",
                       "only report numbers strictly between received ones")
    return passed(f"From {len(received)} messages received through Redis you found exactly the {len(away)} "
                  f"sequence numbers published while the subscriber was away "
                  f"({away[0]}..{away[-1]} in two windows).")


def pattern_channels(ns) -> tuple[list[str], list[str]]:
    """(channels the learner's subscription must receive, channels it must not)."""
    p = ns.prefix
    wanted = [p + "orders:eu:created", p + "orders:us:created", p + "orders:apac:created"]
    unwanted = [p + "orders:eu:cancelled", p + "payments:eu:created", p + "orders:eu:created:retry",
                p + "archive:orders:eu:created", ns.notebook_prefix + "otherrun:orders:eu:created"]
    return wanted, unwanted


@check
def pattern_subscription(subscribe, ns) -> CheckResult:
    """``subscribe(p, prefix)`` must make PubSub ``p`` receive exactly the ``orders:<region>:created`` channels."""
    p = redis_client().pubsub(ignore_subscribe_messages=True)
    publisher = redis_client()
    try:
        call(subscribe, p, ns.prefix)  # the stub raises NotImplementedError -> "not attempted"
        if not p.subscribed and not (p.patterns or p.channels):
            return not_yet("After your function ran, the PubSub object is not subscribed to anything.",
                           "call p.psubscribe(pattern) inside the function")
        for _ in range(10):  # read the subscribe confirmations, so the server has registered everything
            if not p.get_message(timeout=0.1):
                break
        wanted, unwanted = pattern_channels(ns)
        channels = wanted + unwanted
        random.shuffle(channels)
        for ch in channels:
            publisher.publish(ch, ch)
        counts = {ch: 0 for ch in channels}
        for msg in pubsub.drain(p, idle=0.5, timeout=5):
            counts[msg["channel"]] = counts.get(msg["channel"], 0) + 1
    finally:
        p.close()
    short = {ch: ch[len(ns.prefix):] if ch.startswith(ns.prefix) else ch[len(ns.notebook_prefix):] for ch in counts}
    missed = [short[ch] for ch in wanted if counts[ch] == 0]
    dupes = [short[ch] for ch in wanted if counts[ch] > 1]
    leaked = [short[ch] for ch in counts if ch not in wanted and counts[ch] > 0]
    if missed or dupes or leaked:
        parts = ([f"missed {missed}"] if missed else []) + ([f"received twice {dupes}"] if dupes else []) + \
                ([f"also received {leaked}"] if leaked else [])
        return not_yet("Published one message to each of 8 channels; your subscription " + "; ".join(parts) + ".",
                       "one PSUBSCRIBE whose pattern starts with the prefix: prefix + 'orders:*:created'")
    return passed(f"One message on each of {len(counts)} channels: you received exactly the {len(wanted)} "
                  f"order-created ones, once each, and none of the other {len(unwanted)}.")
