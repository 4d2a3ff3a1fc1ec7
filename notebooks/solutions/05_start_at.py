# Solution for notebook 05, exercise 2: a new group that starts at timestamp ts_ms.
from kafka.admin import OffsetTimestamp

from helpers import clients, groups


def start_group_at(topic, group_id, ts_ms):
    # The group is new (no members), so the admin client may write its committed offsets:
    # per partition, the first offset whose timestamp is >= ts_ms (resolved by the broker).
    admin = clients.kafka_admin()
    try:
        parts = groups.topic_partitions(admin, topic)
        admin.reset_group_offsets(group_id, {tp: OffsetTimestamp(ts_ms) for tp in parts})
    finally:
        admin.close()
    return groups.subscribed(topic, group_id=group_id)   # starts at the committed offsets
