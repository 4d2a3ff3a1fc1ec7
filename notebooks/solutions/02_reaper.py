import time


def reap(r, processing_key, queue_key, claimed_key, max_age):
    """Put back on the queue every job claimed more than max_age seconds ago."""
    requeued = []
    for job in r.lrange(processing_key, 0, -1):
        claimed_at = r.hget(claimed_key, job)
        if claimed_at is None or time.time() - float(claimed_at) <= max_age:
            continue                          # unknown claim time or still fresh: leave it
        if r.lrem(processing_key, 1, job):    # 1 only if no worker acked it meanwhile
            r.rpush(queue_key, job)           # RPUSH: the consumer end, so it is retried next
            r.hdel(claimed_key, job)
            requeued.append(job)
    return requeued
