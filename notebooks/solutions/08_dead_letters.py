def stream_keys(partition):
    # one hash tag per partition: the stream and its dead letters share a slot, partitions spread out
    tag = f"{{jobs-{partition}}}"
    return ns.key(f"{tag}:stream"), ns.key(f"{tag}:dead")
