"""Exercise checks for notebook 07 (durability under real crashes).

Both checks act on real servers: the first starts its own sacrificial redis-server, lets the
learner's function configure it, writes, SIGKILLs it, restarts it with the configuration it had,
and counts; the second asks the 3-broker cluster how the learner's topic is really configured.
The learner's functions run through :func:`helpers.checks.call` (time limit, their own traceback).
"""

from __future__ import annotations

import secrets
import shutil
import time

from . import CheckResult, call, check, learner_redis, not_yet, passed

WRITES = 300


def _wait(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def _crash_and_count(server, r, key: str) -> tuple[int, dict]:
    """Write WRITES entries, SIGKILL, restart with the configuration the server had; return (lost, config)."""
    from ..services.redis_server import RedisServer

    cfg = r.config_get("appendonly", "appendfsync", "save")
    acked = []
    for i in range(WRITES):
        r.xadd(key, {"seq": i})  # returned: acknowledged
        acked.append(i)
    server.kill()
    again = RedisServer(server.name, server.home, server.port, save=cfg.get("save", ""),
                        appendonly=cfg.get("appendonly") == "yes",
                        options={"appendfsync": cfg.get("appendfsync", "everysec")})
    again.start()
    try:
        kept = {int(f["seq"]) for _, f in again.client().xrange(key)}
    finally:
        again.stop()
        shutil.rmtree(server.home, ignore_errors=True)
    return len(set(acked) - kept), cfg


@check
def durable_redis(make_durable, lab, ns) -> CheckResult:
    """``make_durable(r)`` must make a running Redis keep every acknowledged write across a kill -9
    of its process and a power cut, with CONFIG SET only."""
    name = f"nb07-check-{secrets.token_hex(2)}"
    server = lab.extra_redis(name, save="", appendonly=False)
    lab.extras.pop(f"redis-{name}", None)
    r = server.client()
    try:
        call(make_durable, learner_redis(r))  # the stub raises NotImplementedError -> "not attempted"
        if r.config_get("appendonly").get("appendonly") == "yes":  # enabling AOF at runtime rewrites it first
            _wait(lambda: (p := r.info("persistence"))["aof_enabled"] == 1 and not p["aof_rewrite_in_progress"], 20)
        lost, cfg = _crash_and_count(server, r, ns.key("check-durable"))
    finally:
        server.stop()
        shutil.rmtree(server.home, ignore_errors=True)
    summary = f"{WRITES} acknowledged XADDs, kill -9, restart: {lost} lost"
    if cfg.get("appendonly") != "yes":
        return not_yet(f"{summary}. appendonly is {cfg.get('appendonly')!r}: nothing but the snapshots "
                       f"({cfg.get('save') or 'none'}) reaches the disk.",
                       "r.config_set('appendonly', 'yes') turns the append-only file on")
    if lost:
        return not_yet(f"{summary}, with appendonly yes and appendfsync {cfg.get('appendfsync')}.",
                       "wait until INFO persistence says aof_rewrite_in_progress:0 before returning")
    if cfg.get("appendfsync") != "always":
        return not_yet(f"{summary}: the process crash lost nothing, but appendfsync is {cfg.get('appendfsync')!r}, "
                       "so a power cut could still lose what the OS had not written to the disk yet.",
                       "r.config_set('appendfsync', 'always') makes Redis fsync before it answers")
    return passed(f"{summary}; appendonly yes + appendfsync always: Redis fsyncs every write before it "
                  "answers, so a power cut cannot take an acknowledged write either (at a cost in speed).")


@check
def durable_topic(create_durable_topic, cluster, ns) -> CheckResult:
    """``create_durable_topic(admin, topic)`` must create a 1-partition topic with 3 replicas,
    ``min.insync.replicas=2`` on the topic itself and unclean leader election off."""
    from kafka.admin import ConfigResource, ConfigResourceType

    topic = ns.topic(f"check-{secrets.token_hex(2)}")
    admin = cluster.admin()
    try:
        call(create_durable_topic, admin, topic)  # the stub -> "not attempted"; a hang -> "time limit"
        if not _wait(lambda: cluster.leader(topic, admin=admin) is not None, 15):
            return not_yet(f"no topic {topic} with a leader appeared on the cluster.",
                           "admin.create_topics({topic: {'num_partitions': 1, 'replication_factor': 3, 'configs': {...}}})")
        part = cluster.partitions(topic, admin)
        if not part:  # a broker's metadata can lag the leader just seen on another
            _wait(lambda: bool(cluster.partitions(topic, admin)), 10)
            part = cluster.partitions(topic, admin)
        keys = {"min.insync.replicas": None, "unclean.leader.election.enable": None}
        cfg = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic, keys)],
                                     config_filter="all")["topic"][topic]
    finally:
        try:
            admin.delete_topics([topic], timeout_ms=10000)
        except Exception:
            pass  # it may not exist
        admin.close()
    min_isr, unclean = cfg["min.insync.replicas"], cfg["unclean.leader.election.enable"]
    if len(part) != 1 or len(part[0]["replicas"]) != 3:
        return not_yet(f"{topic} has {len(part)} partition(s) with {len(part[0]['replicas']) if part else 0} replica(s).",
                       "one partition, replication_factor 3: one copy on every broker")
    if min_isr["config_source"] != "DYNAMIC_TOPIC_CONFIG" or min_isr["value"] != "2":
        return not_yet(f"min.insync.replicas is {min_isr['value']} from {min_isr['config_source']}, not 2 set on the topic.",
                       "put 'min.insync.replicas': '2' in the topic's configs: a broker default can change under you")
    if unclean["value"] != "false":
        return not_yet("unclean.leader.election.enable is true: a stale replica may become leader and drop records.",
                       "leave it false (or set 'unclean.leader.election.enable': 'false')")
    return passed(f"{topic}: 3 replicas, min.insync.replicas=2 on the topic, unclean election off. With acks=all, "
                  "one broker may die without losing an acknowledged record; with two down, writes are refused.")
