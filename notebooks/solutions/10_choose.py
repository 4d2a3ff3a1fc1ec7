# Solution to notebook 10's exercise: rule tools out by the hardest requirement first.
def choose(req):
    ceiling = 10_000                                  # one Redis's stream ops/s (the article's lower bound) ...
    c09 = my_ledger.figure("C09")                      # ... or what you measured in notebook 06
    if c09 is not None and isinstance(c09.value, (int, float)):
        ceiling = c09.value
    needs_kafka = (req.retention == "weeks"           # weeks in RAM cost too much (C10); Kafka keeps them on disk (C12)
                   or req.throughput > ceiling        # beyond one Redis (C09); Kafka scales by partitions (C13)
                   or (not req.loss_ok and req.ops == "kafka"))   # acks=all + replication (C19)
    if needs_kafka:
        if req.latency_ms < 5:                        # no room for batching (C15): Redis serves, Kafka keeps (C23)
            return "both"
        return "kafka-share" if req.per_message_ack else "kafka"
    if req.per_message_ack or not req.loss_ok or req.retention == "hours":
        return "streams"                              # pending entries + XAUTOCLAIM (C07)
    if req.independent_consumers:
        return "pubsub"                               # a broadcast that keeps nothing (C01, C04)
    return "lists"                                    # a crash loses the popped job (C06): acceptable here
