"""Exercise check for notebook 10: ``choose(req) -> str`` picks a tool for a scenario.

The scenarios are clear-cut ones, each answered by a claim the course measured; a choice outside
the accepted set is NOT YET with the claim that rules it out. The learner's function runs only
through :func:`helpers.checks.call` (time limit, NOT ATTEMPTED for the stub).
"""

from __future__ import annotations

from ..decision import CHOICES, Requirements
from . import CheckResult, call, check, not_yet, passed

#: (scenario, requirements, accepted answers, why: the claim that decides it)
SCENARIOS = [
    ("cursor positions pushed to every open browser tab; a missed one is harmless",
     Requirements(latency_ms=5, throughput=200, independent_consumers=True),
     {"pubsub"}, "every subscriber gets every message and nothing needs to be kept (C04, C01)"),
    ("resize uploaded images; a job lost in a crash is simply requested again",
     Requirements(throughput=100),
     {"lists", "streams"}, "a plain work queue: LPUSH/BRPOP splits the jobs; a crash loses one (C06), which is acceptable"),
    ("each payment charged by one worker; a crashed worker's payment must be retried; only Redis is run",
     Requirements(throughput=200, per_message_ack=True, loss_ok=False),
     {"streams"}, "unacknowledged entries stay pending and another consumer claims them (C07); a List loses a "
                  "popped job (C06) and Pub/Sub keeps nothing (C01)"),
    ("every order event kept for a year, read by billing, search and audit at their own pace",
     Requirements(throughput=1_000, retention="weeks", independent_consumers=True, loss_ok=False, ops="kafka"),
     {"kafka"}, "Kafka keeps records on disk whether or not they were read (C12) and independent groups each "
                "read them all (C14); a year in Redis RAM costs too much (C10)"),
    ("clickstream peaks of 5 million events per second",
     Requirements(throughput=5_000_000, retention="hours", ops="kafka"),
     {"kafka", "both"}, "far above one Redis's throughput (C09); Kafka scales with partitions (C13, C16)"),
    ("order events kept for weeks, and a dashboard that must update within 2 ms",
     Requirements(latency_ms=2, throughput=5_000, retention="weeks", loss_ok=False, ops="kafka"),
     {"both"}, "Kafka as the durable backbone, Redis as the fast view rebuilt by replay (C23); batching "
               "trades latency for throughput (C15)"),
]


@check
def choose_check(choose) -> CheckResult:
    """``choose(req)`` returns one of ``CHOICES``' keys for each scenario; the accepted ones pass."""
    answers = []
    for scenario, req, accepted, why in SCENARIOS:
        got = call(choose, req)     # the stub raises NotImplementedError -> not attempted
        if got not in CHOICES:
            return not_yet(f"choose returned {got!r} for '{scenario}'; return one of {sorted(CHOICES)}.",
                           "return a key such as 'streams', not the tool's full name")
        if got not in accepted:
            return not_yet(f"For '{scenario}' you chose {got!r}; the course's measurements point to "
                           f"{' or '.join(repr(a) for a in sorted(accepted))}: {why}.",
                           "look at the requirements that rule a tool out first: retention, throughput, loss")
        answers.append(got)
    return passed(f"All {len(SCENARIOS)} scenarios answered as the measurements suggest: {', '.join(answers)}.")
