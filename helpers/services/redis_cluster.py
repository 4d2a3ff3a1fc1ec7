"""A throwaway Redis Cluster on this machine: ``masters`` masters sharing the 16384 hash slots and
``replicas`` replicas per master, each a ``redis-server`` with ``cluster-enabled yes``. See :mod:`.cluster`."""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ServiceSetupError
from .cluster import CLUSTER_FILE, pick_ports, rss_bytes, run_parallel, stop_many
from .redis_server import RedisServer, ensure_redis_installed

REDIS_PORTS = (17000, 17900)   # Redis Cluster nodes; each also uses port + 10000 (the cluster bus)


def _raw_nodes(client) -> list[str]:
    """``CLUSTER NODES`` lines, unparsed (redis-py reshapes the reply differently across versions)."""
    reply = client.execute_command("CLUSTER NODES")
    if isinstance(reply, dict):
        return [f"{v['node_id']} {k} {v['flags']}" for k, v in reply.items()]
    return [line for line in str(reply).splitlines() if line.strip()]


def _cluster_info(client) -> dict:
    reply = client.execute_command("CLUSTER INFO")
    if isinstance(reply, dict):
        return {k: str(v) for k, v in reply.items()}
    return dict(line.split(":", 1) for line in str(reply).splitlines() if ":" in line)


@dataclass
class RedisClusterNode(RedisServer):
    """redis-server with ``cluster-enabled yes``; the cluster bus listens on port + 10000."""

    def extra_ports(self) -> list[int]:
        return [self.port + 10000]


@dataclass
class RedisCluster:
    """``masters`` Redis Cluster masters (the 16384 slots split evenly) and ``replicas`` per master."""

    name: str
    home: Path
    nodes: list[RedisClusterNode] = field(default_factory=list)
    masters: int = 3
    replicas: int = 0
    node_timeout_ms: int = 2000
    kind = "redis"

    @classmethod
    def create(cls, home: Path, name: str, masters: int, replicas: int = 0, node_timeout_ms: int = 2000) -> RedisCluster:
        if masters < 1 or replicas < 0:
            raise ValueError("a Redis Cluster needs at least one master and replicas >= 0")
        ports = pick_ports(masters * (1 + replicas), REDIS_PORTS, bus_offset=10000)
        cluster = cls(name, home, [], masters, replicas, node_timeout_ms)
        cluster.nodes = [cluster._node(i, p) for i, p in enumerate(ports)]
        cluster.save()
        return cluster

    def _node(self, i: int, port: int) -> RedisClusterNode:
        return RedisClusterNode(f"redis-{self.name}-{i}", self.home / f"node-{i}", port, options={
            "cluster-enabled": "yes", "cluster-config-file": "nodes.conf",
            "cluster-node-timeout": self.node_timeout_ms})

    def save(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / CLUSTER_FILE).write_text(json.dumps({
            "kind": self.kind, "name": self.name, "masters": self.masters, "replicas": self.replicas,
            "node_timeout_ms": self.node_timeout_ms, "ports": [n.port for n in self.nodes]}, indent=2))

    @classmethod
    def load(cls, home: Path) -> RedisCluster:
        spec = json.loads((home / CLUSTER_FILE).read_text())
        cluster = cls(spec["name"], home, [], spec["masters"], spec["replicas"], spec["node_timeout_ms"])
        cluster.nodes = [cluster._node(i, p) for i, p in enumerate(spec["ports"])]
        return cluster

    @property
    def running(self) -> bool:
        return all(n.running for n in self.nodes)

    @property
    def startup_nodes(self) -> list[tuple[str, int]]:
        return [(n.host, n.port) for n in self.nodes]

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port of the first node>/0`` (a cluster client discovers the rest)."""
        return self.nodes[0].url

    def client(self, **kwargs):
        """A ``redis.cluster.RedisCluster`` client (follows MOVED redirections) with timeouts."""
        from redis.cluster import ClusterNode
        from redis.cluster import RedisCluster as Client

        kwargs.setdefault("decode_responses", True)
        kwargs.setdefault("socket_timeout", 5)
        kwargs.setdefault("socket_connect_timeout", 2)
        return Client(startup_nodes=[ClusterNode(h, p) for h, p in self.startup_nodes], **kwargs)

    def node_client(self, i: int, **kwargs):
        """A plain client of node ``i`` (CLUSTER NODES, KEYSLOT, a MOVED error seen first hand)."""
        return self.nodes[i].client(**kwargs)

    def kill(self, i: int) -> int | None:
        return self.nodes[i].kill()

    def restart(self, i: int) -> float:
        node = self.nodes[i]
        return node.start() if not node.running else node.restart()

    def cluster_info(self, i: int = 0) -> dict:
        """``CLUSTER INFO`` of node ``i`` as a dict of strings (cluster_state, cluster_slots_assigned, ...)."""
        return _cluster_info(self.node_client(i))

    def start(self, timeout: float = 60.0) -> float:
        """Start the nodes, then (first time) MEET them, assign slots, attach replicas; wait for state ok."""
        t0 = time.monotonic()
        ensure_redis_installed()
        run_parallel(lambda n: n.start(), [n for n in self.nodes if not n.running])
        clients = [n.client(socket_timeout=5) for n in self.nodes]
        if _cluster_info(clients[0]).get("cluster_slots_assigned") == "0":
            self._form(clients)
        deadline = time.monotonic() + timeout
        while not (all(_cluster_info(c).get("cluster_state") == "ok" for c in clients) and self._shaped(clients[0])):
            if time.monotonic() > deadline:
                raise ServiceSetupError(f"Redis Cluster {self.name} did not reach cluster_state:ok within "
                                        f"{timeout:.0f} s; see the logs under {self.home}.")
            time.sleep(0.2)
        return time.monotonic() - t0

    def _shaped(self, client) -> bool:
        """True once node 0's view holds every master with its slots and every replica."""
        flags = [line.split()[2] for line in _raw_nodes(client)]
        return (sum("master" in f for f in flags) == self.masters
                and sum("slave" in f for f in flags) == self.masters * self.replicas)

    def _form(self, clients) -> None:
        masters, first = clients[: self.masters], self.nodes[0]
        for c in clients[1:]:
            c.execute_command("CLUSTER MEET", first.host, first.port)
        per = 16384 // self.masters
        for k, c in enumerate(masters):
            lo, hi = k * per, (16383 if k == self.masters - 1 else (k + 1) * per - 1)
            c.execute_command("CLUSTER ADDSLOTSRANGE", lo, hi)
        ids = [c.execute_command("CLUSTER MYID") for c in clients]
        deadline = time.monotonic() + 30
        for k, c in enumerate(clients[self.masters:]):
            master_id = ids[k % self.masters]
            while True:  # a node can replicate a master only once gossip has told it about that master
                try:
                    c.execute_command("CLUSTER REPLICATE", master_id)
                    break
                except Exception:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)

    def stop(self, remove_data: bool = False) -> dict:
        pids = stop_many(self.nodes, timeout=10)
        if remove_data:
            shutil.rmtree(self.home, ignore_errors=True)
        return pids

    def status(self) -> list[dict]:
        return [{"node": i, "pid": n.pid or "-", "address": f"{n.host}:{n.port}",
                 "state": "running" if n.running else "stopped", "rss MB": round(rss_bytes(n.pid) / 2**20)}
                for i, n in enumerate(self.nodes)]
