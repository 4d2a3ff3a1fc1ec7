"""The services supervisor: real redis-server and Kafka (KRaft) processes on 127.0.0.1.

CLI: ``python -m helpers.services up|down|status|logs``. Python: ``from helpers.services import
get_lab; lab = get_lab(); lab.kafka.kill(); lab.redis.restart()``; throwaway clusters:
``lab.kafka_cluster("nb07", brokers=3)``, ``lab.redis_cluster("nb08", masters=3)``.
"""

from __future__ import annotations

from .kafka_cluster import KafkaCluster
from .kafka_server import KafkaBroker
from .lab import Lab
from .process import ManagedProcess, port_open
from .redis_cluster import RedisCluster
from .redis_server import RedisServer

_LAB: Lab | None = None


def get_lab() -> Lab:
    """The course's Lab for this project's ``.course/`` (created on first use)."""
    global _LAB
    if _LAB is None:
        _LAB = Lab()
    return _LAB


__all__ = ["Lab", "KafkaBroker", "KafkaCluster", "RedisCluster", "RedisServer", "ManagedProcess", "get_lab", "port_open"]
