def key_for(event: dict) -> bytes:
    # One key per order: all of an order's events hash to the same partition, where Kafka keeps them
    # in the order they were sent; different orders spread over the partitions.
    return event["order_id"].encode()
