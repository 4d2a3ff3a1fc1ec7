"""Exercise checks for notebook 02 (Redis Lists as queues).

Both checks build fresh state in the real Redis (random job ids and amounts the learner has never
seen), run the learner's function against it, read the server back and delete what they created.
"""

from __future__ import annotations

import json
import random
import secrets
import time
from collections import Counter

from . import CheckResult, call, check, learner_redis, not_yet, passed


def _drop(r, prefix: str) -> None:
    keys = list(r.scan_iter(match=prefix + "*", count=500))
    if keys:
        r.unlink(*keys)


@check
def reaper(reap, r, ns, max_age: float = 5.0) -> CheckResult:
    """``reap(r, processing_key, queue_key, claimed_key, max_age)`` must re-queue stale jobs only.

    State built here: a queue holding one waiting job; a processing list holding some jobs claimed
    a minute ago (stale) and some claimed just now (their worker is presumed alive); a claimed-at hash.
    The reaper runs twice: the second pass must not re-queue anything again.
    """
    prefix = ns.key(f"check-reaper-{secrets.token_hex(2)}:")
    queue, processing, claimed = prefix + "queue", prefix + "processing", prefix + "claimed"
    now, tag = time.time(), secrets.token_hex(2)
    stale = [f"job-{tag}-stale-{i}" for i in range(random.randint(2, 4))]
    fresh = [f"job-{tag}-fresh-{i}" for i in range(random.randint(1, 3))]
    waiting = f"job-{tag}-waiting"
    held = stale + fresh
    random.shuffle(held)
    r.rpush(queue, waiting)
    r.lpush(processing, *held)
    r.hset(claimed, mapping={**{j: now - 60 - random.random() * 60 for j in stale}, **{j: now for j in fresh}})
    try:
        mine = learner_redis(r)
        first = call(reap, mine, processing, queue, claimed, max_age)  # the stub: NotImplementedError
        second = call(reap, mine, processing, queue, claimed, max_age)
        in_queue, in_processing = Counter(r.lrange(queue, 0, -1)), set(r.lrange(processing, 0, -1))
    finally:
        _drop(r, prefix)
    missing = [j for j in stale if j not in in_queue]
    if missing:
        return not_yet(f"{len(missing)} of the {len(stale)} stale jobs are not back on the queue: {missing}.",
                       "for each job in LRANGE processing, read its claim time with HGET claimed_key; "
                       "if time.time() - claimed_at > max_age, LREM it from processing and RPUSH it to the queue")
    if set(stale) & in_processing:
        return not_yet(f"stale jobs were copied to the queue but are still in the processing list: "
                       f"{sorted(set(stale) & in_processing)}.", "LREM processing_key 1 job removes it")
    twice = sorted(j for j, n in in_queue.items() if n > 1)
    if twice:
        return not_yet(f"after two reaper passes these jobs are on the queue twice: {twice}.",
                       "re-queue only when LREM removed the job (it returns 1), so a second pass finds nothing")
    early = [j for j in fresh if j in in_queue or j not in in_processing]
    if early:
        return not_yet(f"you took back jobs claimed just now: {early}; they are younger than max_age, so "
                       "their worker is presumed alive and may still finish them.",
                       "compare time.time() - float(claimed_at) with max_age and leave younger jobs alone")
    if waiting not in in_queue:
        return not_yet("the job that was already waiting on the queue disappeared.",
                       "add to the queue (RPUSH/LPUSH); never DEL or overwrite it")
    returned = first if isinstance(first, (list, tuple, set)) else None
    if returned is None or sorted(returned) != sorted(stale):
        return not_yet(f"The right jobs went back on the queue, but the first pass returned {first!r}; "
                       f"expected the {len(stale)} re-queued job ids {sorted(stale)}.",
                       "collect each job you re-queue in a list and return it")
    if second:
        return not_yet(f"The second pass re-queued nothing, but returned {second!r}.",
                       "return only the jobs this pass re-queued")
    return passed(f"Your reaper put the {len(stale)} stale jobs back on the queue, left the {len(fresh)} "
                  "fresh ones with their worker, kept the waiting job, and a second pass re-queued nothing.")


@check
def idempotent(handle, r, ns) -> CheckResult:
    """``handle(r, job, balance_key, processed_key)`` must apply each payment once, however often delivered.

    The check pushes some payment jobs, plus redeliveries of some of them, onto a real list, pops
    every delivery with RPOP and hands it to ``handle``; the balance must count each payment once.
    """
    prefix = ns.key(f"check-idem-{secrets.token_hex(2)}:")
    deliveries_key, balance, processed = prefix + "deliveries", prefix + "balance", prefix + "processed"
    tag = secrets.token_hex(2)
    jobs = [{"id": f"pay-{tag}-{i}", "amount": random.randint(1, 9)} for i in range(random.randint(4, 6))]
    again = random.sample(jobs, 2)
    deliveries = jobs + again
    random.shuffle(deliveries)
    truth, naive = sum(j["amount"] for j in jobs), sum(j["amount"] for j in deliveries)
    r.lpush(deliveries_key, *[json.dumps(j) for j in deliveries])
    try:
        mine = learner_redis(r)
        for _ in range(len(deliveries)):
            call(handle, mine, json.loads(r.rpop(deliveries_key)), balance, processed)  # stub: NotImplementedError
        got = int(r.get(balance) or 0)
    finally:
        _drop(r, prefix)
    summary = f"{len(deliveries)} deliveries of {len(jobs)} payments ({len(again)} redelivered)"
    if got == truth:
        return passed(f"{summary}: the balance is {got}, each payment counted once "
                      f"(a naive handler would have made it {naive}).")
    if got == 0:
        return not_yet(f"{summary}, but the balance is still 0.",
                       "apply the payment with r.incrby(balance_key, job['amount'])")
    if got == naive:
        return not_yet(f"{summary}: the balance is {got}, the redelivered payments were counted twice "
                       f"(it should be {truth}).",
                       "only INCRBY when r.sadd(processed_key, job['id']) returns 1 (first time seen)")
    return not_yet(f"{summary}: the balance is {got}, expected {truth}.",
                   "count each job['id'] exactly once: SADD processed_key job['id'] tells you if it is new")
