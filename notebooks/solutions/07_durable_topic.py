def create_durable_topic(admin, topic):
    """One partition, a copy on each of the 3 brokers, at least 2 in sync for acks=all, never a stale leader."""
    admin.create_topics({topic: {
        "num_partitions": 1,
        "replication_factor": 3,
        "configs": {"min.insync.replicas": "2", "unclean.leader.election.enable": "false"},
    }})
