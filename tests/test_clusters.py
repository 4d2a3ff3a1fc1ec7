"""Throwaway clusters against real processes: a 3-broker KRaft Kafka cluster and a Redis Cluster
start, lose a node to SIGKILL, restart, are listed by `status` and stopped by `down` from a NEW
process (found from their state files), leaving no process behind and foreign servers untouched.
"""

import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from conftest import plain_redis_server

from helpers.services import Lab

ROOT = Path(__file__).resolve().parent.parent


def cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    """The supervisor's CLI in a new Python process, pointed at ``home`` (COURSE_DIR)."""
    return subprocess.run([sys.executable, "-m", "helpers.services", *args], cwd=ROOT, timeout=180,
                          capture_output=True, text=True, env={**os.environ, "COURSE_DIR": str(home)})


def processes_under(path: Path) -> list[psutil.Process]:
    """Live processes whose working directory is inside ``path`` (each course server runs in its home)."""
    found = []
    for proc in psutil.process_iter(["pid"]):
        try:
            if str(path) in proc.cwd() and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except psutil.Error:
            continue
    return found


@pytest.fixture
def iso(tmp_path, lab):
    """A Lab of its own under tmp_path, reusing the session's Kafka jars; torn down whatever happens."""
    home = tmp_path / "course"
    iso = Lab(home, log=lambda *_: None)
    iso.kafka.libs = lab.kafka.libs
    yield iso
    iso.down()


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"waited {timeout} s for {what}")


def test_kafka_cluster_kill_restart_status_down(iso, tmp_path):
    cluster = iso.kafka_cluster("t3", brokers=3, dedicated_controller=True)
    assert [n.node_id for n in cluster.brokers] == [1, 2, 3] and cluster.running
    pids = cluster.pids()
    assert all(psutil.pid_exists(p) for p in pids.values())
    rss = cluster.rss()
    print(f"RSS per node (MB): { {k: round(v / 2**20) for k, v in rss.items()} }, total {sum(rss.values()) / 2**20:.0f} MB")
    assert all(0 < v < 700 * 2**20 for v in rss.values())            # heap 256m per node
    assert iso.kafka_cluster("t3", brokers=3, dedicated_controller=True).pids() == pids   # reused, not restarted

    admin = cluster.admin()
    admin.create_topics({"streamslab.test.rf3": {"num_partitions": 1, "replication_factor": 3,
                                                 "configs": {"min.insync.replicas": "2"}}}, wait_for_metadata=True)
    leader = wait_for(lambda: cluster.leader("streamslab.test.rf3", admin=admin), 30, "the topic's leader")
    part = cluster.partitions("streamslab.test.rf3", admin)[0]
    assert sorted(part["replicas"]) == [1, 2, 3] and sorted(part["isr"]) == [1, 2, 3]

    killed = cluster.kill(leader)                                      # SIGKILL the partition leader
    assert killed == pids[leader] and not psutil.pid_exists(killed) and not cluster.broker(leader).running
    new = wait_for(lambda: (cluster.leader("streamslab.test.rf3", admin=admin) or leader) != leader and
                   cluster.leader("streamslab.test.rf3", admin=admin), 60, "a new leader")
    assert new in {1, 2, 3} - {leader}
    cluster.restart(leader)
    assert cluster.running and cluster.broker(leader).pid != killed
    wait_for(lambda: len(cluster.partitions("streamslab.test.rf3", admin)[0]["isr"]) == 3, 60, "the ISR back to 3")
    admin.close()

    status = cli(iso.home, "status")                                   # a new process finds the cluster on disk
    assert status.returncode == 0, status.stderr
    for node in cluster.nodes:
        line = next(x for x in status.stdout.splitlines() if x.startswith(node.name + " "))
        assert str(node.pid) in line and "running" in line

    down = cli(iso.home, "down")
    assert down.returncode == 0, down.stderr
    assert all(f"kafka-t3-{i}" in down.stdout for i in (1, 2, 3, 100))
    assert processes_under(iso.home) == []
    assert not any(psutil.pid_exists(p) for p in cluster.pids().values() if p)


@pytest.fixture
def foreign_redis(tmp_path):
    """A redis-server the course did NOT start, inside the Redis Cluster port range."""
    _, proc = plain_redis_server(tmp_path, 17950)
    yield proc
    proc.kill()
    proc.wait(5)


def test_redis_cluster_slots_kill_status_down(iso, foreign_redis):
    cluster = iso.redis_cluster("r3", masters=3, replicas=1)
    info = cluster.cluster_info()
    assert info["cluster_state"] == "ok" and info["cluster_slots_assigned"] == "16384"
    assert info["cluster_known_nodes"] == "6" and info["cluster_size"] == "3"
    rc = cluster.client()
    for i in range(200):
        rc.set(f"streamslab:test:{i}", i)
    assert rc.get("streamslab:test:42") == "42"
    owners = {rc.get_node_from_key(f"streamslab:test:{i}").port for i in range(200)}
    assert len(owners) == 3                                            # keys spread over the 3 masters
    nodes = cluster.node_client(0).execute_command("CLUSTER NODES")
    text = str(nodes)
    assert text.count("master") >= 3 and text.count("slave") >= 3

    victim = cluster.nodes[4]                                          # a replica: SIGKILL, then restart
    pid = cluster.kill(4)
    assert pid and not victim.running and not psutil.pid_exists(pid)
    cluster.restart(4)
    assert victim.running and rc.get("streamslab:test:7") == "7"

    status = cli(iso.home, "status")
    assert status.returncode == 0
    assert sum(1 for x in status.stdout.splitlines() if x.startswith("redis-r3-") and "running" in x) == 6
    down = cli(iso.home, "down")
    assert down.returncode == 0, down.stderr
    assert processes_under(iso.home) == []
    assert foreign_redis.poll() is None                                # the foreign server is untouched
