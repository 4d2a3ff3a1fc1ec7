# Solution for notebook 09, exercise 1: an idempotent update with MULTI/EXEC (WATCH) instead of Lua.
import redis

from helpers import pipeline


def apply_order(r, keys, partition, offset, event):
    """Apply one order to the view once: the update and the partition's last applied offset change
    together in one MULTI/EXEC; WATCH makes EXEC fail (and we retry) if another client changed the
    applied offsets between our read and our EXEC."""
    minute = pipeline.minute_of(event["ts"])
    with r.pipeline() as pipe:
        while True:
            try:
                pipe.watch(keys["applied"])
                last = pipe.hget(keys["applied"], partition)
                if last is not None and offset <= int(last):
                    pipe.unwatch()
                    return False                      # a redelivery: already in the view
                pipe.multi()
                pipe.hincrby(keys["revenue"], event["product"], event["cents"])
                pipe.zincrby(keys["sold"], event["qty"], event["product"])
                pipe.hincrby(keys["per_minute"], minute, 1)
                pipe.hset(keys["applied"], partition, offset)
                pipe.execute()
                return True
            except redis.WatchError:
                continue                              # someone else wrote: read again
