def add_pipelined(r, stream, payloads, depth):
    """XADD every payload to stream, in order, sending `depth` commands per round trip."""
    pipe = r.pipeline(transaction=False)          # no MULTI/EXEC: just send many commands, read many replies
    for i, payload in enumerate(payloads, 1):
        pipe.xadd(stream, {"p": payload})
        if i % depth == 0:
            pipe.execute()                        # one round trip for `depth` commands
    pipe.execute()                                # the rest (a no-op when nothing is queued)
