def producer_config():
    """A confluent-kafka producer config for a sensor feed of 1,000 records/s: batched, durable, fast enough."""
    return {
        "acks": "all",        # durability is not negotiable
        "linger.ms": 20,      # wait up to 20 ms for more records: about 20 per request at 1,000/s
    }
