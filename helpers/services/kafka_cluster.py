"""A throwaway KRaft Kafka cluster on this machine: N brokers (and optionally one dedicated
controller), each its own ``java`` process with its own ports and data dir. See :mod:`.cluster`."""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ServiceSetupError
from .cluster import CLUSTER_FILE, pick_ports, rss_bytes, run_parallel, stop_many
from .kafka_server import READY_LINE, KafkaBroker, _new_cluster_id, ensure_kafka_jars
from .process import ManagedProcess, port_open

KAFKA_PORTS = (19100, 19900)   # broker + controller ports of throwaway Kafka nodes
DEFAULT_HEAP = "256m"          # per Kafka node: 3 brokers + a controller fit a 4 GB machine


@dataclass
class KafkaNode(KafkaBroker):
    """A KRaft node of a cluster: ``roles`` is "broker,controller", "broker" or "controller"."""

    roles: str = "broker,controller"
    ready_timeout = 120.0  # several JVMs starting at once on a busy 2-core machine

    @property
    def is_broker(self) -> bool:
        return "broker" in self.roles

    def extra_ports(self) -> list[int]:
        return [self.controller_port] if "controller" in self.roles else []

    def check_ports(self) -> None:
        if self.is_broker:
            return super().check_ports()
        probe = ManagedProcess(self.name, self.home, self.controller_port)
        probe.env_port_var = self.env_port_var
        probe.check_ports()

    def write_config(self) -> Path:
        path = super().write_config()
        overrides: dict[str, str | None] = {"process.roles": self.roles}
        if self.roles == "broker":
            overrides["listeners"] = f"PLAINTEXT://{self.host}:{self.port}"
        elif self.roles == "controller":
            overrides.update({"listeners": f"CONTROLLER://{self.host}:{self.controller_port}",
                              "advertised.listeners": None, "inter.broker.listener.name": None})
        lines = []
        for line in path.read_text().splitlines():
            key = line.split("=", 1)[0].strip() if "=" in line and not line.startswith("#") else None
            if key in overrides:
                if overrides[key] is not None:
                    lines.append(f"{key}={overrides.pop(key)}")
                continue
            lines.append(line)
        path.write_text("\n".join(lines + [f"{k}={v}" for k, v in overrides.items() if v is not None]) + "\n")
        return path

    def is_ready(self) -> bool:
        if self.is_broker:
            return super().is_ready()
        return port_open(self.controller_port, self.host) and READY_LINE in self.log_since_start()

    def wait_group_coordinator(self, timeout: float = 60.0) -> None:
        """Ready = this broker is registered (a node of a cluster must not wait for the group
        coordinator: its partition may be offline while other nodes are down)."""
        if not self.is_broker:
            return
        from kafka import KafkaAdminClient
        from kafka.errors import KafkaError

        deadline = time.monotonic() + timeout
        while True:
            admin = None
            try:
                admin = KafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=5000,
                                         bootstrap_timeout_ms=5000, client_id="streamslab-supervisor")
                if self.node_id in {b["broker_id"] for b in admin.describe_cluster()["brokers"]}:
                    return
            except KafkaError:
                pass
            finally:
                if admin is not None:
                    admin.close()
            if time.monotonic() > deadline:
                raise ServiceSetupError(f"{self.name} started but did not register with the cluster's controller "
                                        f"within {timeout:.0f} s; see {self.log_path}.")
            time.sleep(0.3)



def replication_defaults(brokers: int) -> dict:
    rf, isr = min(3, brokers), min(2, brokers)
    return {"default.replication.factor": rf, "min.insync.replicas": isr,
            "offsets.topic.replication.factor": rf, "transaction.state.log.replication.factor": rf,
            "transaction.state.log.min.isr": isr, "share.coordinator.state.topic.replication.factor": rf,
            "share.coordinator.state.topic.min.isr": isr}


@dataclass
class KafkaCluster:
    """N Kafka brokers (node ids 1..N) in one KRaft cluster; with ``dedicated_controller`` the
    metadata quorum is one controller-only process (node id 100) instead of every broker."""

    name: str
    home: Path
    nodes: list[KafkaNode] = field(default_factory=list)
    heap: str = DEFAULT_HEAP
    kind = "kafka"

    # --- layout ---------------------------------------------------------------------------
    @classmethod
    def create(cls, home: Path, name: str, brokers: int, *, libs: Path, heap: str = DEFAULT_HEAP,
               dedicated_controller: bool = False, extra_config: dict | None = None) -> KafkaCluster:
        if brokers < 1:
            raise ValueError("a cluster needs at least one broker")
        ids = list(range(1, brokers + 1)) + ([100] if dedicated_controller else [])
        ports = pick_ports(2 * len(ids), KAFKA_PORTS)
        voter_ids = [100] if dedicated_controller else ids
        voters = ",".join(f"{i}@127.0.0.1:{ports[2 * ids.index(i) + 1]}" for i in voter_ids)
        config = {**replication_defaults(brokers), **(extra_config or {})}
        cluster_id = _new_cluster_id()
        nodes = []
        for k, node_id in enumerate(ids):
            roles = "controller" if node_id == 100 else ("broker" if dedicated_controller else "broker,controller")
            port = ports[2 * k + 1] if roles == "controller" else ports[2 * k]  # a controller has no broker port
            nodes.append(KafkaNode(f"kafka-{name}-{node_id}", home / f"node-{node_id}", port,
                                   node_id=node_id, controller_port=ports[2 * k + 1], voters=voters,
                                   cluster_id=cluster_id, extra_config=config, libs=libs, heap=heap, roles=roles))
        cluster = cls(name, home, nodes, heap)
        cluster.save()
        return cluster

    def save(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        n0 = self.nodes[0]
        (self.home / CLUSTER_FILE).write_text(json.dumps({
            "kind": self.kind, "name": self.name, "heap": self.heap, "cluster_id": n0.cluster_id,
            "voters": n0.voters, "extra_config": n0.extra_config, "libs": str(n0.libs),
            "nodes": [{"node_id": n.node_id, "roles": n.roles, "port": n.port, "controller_port": n.controller_port}
                      for n in self.nodes]}, indent=2))

    @classmethod
    def load(cls, home: Path) -> KafkaCluster:
        spec = json.loads((home / CLUSTER_FILE).read_text())
        nodes = [KafkaNode(f"kafka-{spec['name']}-{n['node_id']}", home / f"node-{n['node_id']}", n["port"],
                           node_id=n["node_id"], controller_port=n["controller_port"], voters=spec["voters"],
                           cluster_id=spec["cluster_id"], extra_config=spec["extra_config"], libs=Path(spec["libs"]),
                           heap=spec["heap"], roles=n["roles"]) for n in spec["nodes"]]
        return cls(spec["name"], home, nodes, spec["heap"])

    # --- handles ---------------------------------------------------------------------------
    @property
    def brokers(self) -> list[KafkaNode]:
        return [n for n in self.nodes if n.is_broker]

    @property
    def bootstrap(self) -> str:
        """Every broker's address: a client finds the cluster while any one of them is up."""
        return ",".join(b.bootstrap for b in self.brokers)

    @property
    def live_bootstrap(self) -> str:
        """The addresses of the brokers running now (all of them when none is): for a client that
        must connect right away while some brokers are down."""
        return ",".join(b.bootstrap for b in self.brokers if b.running) or self.bootstrap

    def broker(self, node_id: int) -> KafkaNode:
        for n in self.nodes:
            if n.node_id == node_id:
                return n
        raise KeyError(f"no node {node_id} in cluster {self.name} (nodes: {[n.node_id for n in self.nodes]})")

    @property
    def running(self) -> bool:
        return all(n.running for n in self.nodes)

    def pids(self) -> dict[int, int | None]:
        return {n.node_id: n.pid for n in self.nodes}

    def rss(self) -> dict[int, int]:
        """Resident memory of each running node, in bytes."""
        return {n.node_id: rss_bytes(n.pid) for n in self.nodes}

    def kill(self, node_id: int) -> int | None:
        """SIGKILL one node (a real crash). Returns the pid killed."""
        return self.broker(node_id).kill()

    def restart(self, *node_ids: int) -> float:
        """Start nodes again on their own data dirs (after a kill), several in parallel; a node that
        is still running is stopped first. Returns seconds until all are ready."""
        t0 = time.monotonic()
        nodes = [self.broker(i) for i in node_ids]
        run_parallel(lambda n: n.start() if not n.running else n.restart(), nodes)
        return time.monotonic() - t0

    def admin(self, **overrides):
        from ..clients import kafka_admin

        return kafka_admin(self.live_bootstrap, **{"client_id": f"streamslab-{self.name}",
                                                   "bootstrap_timeout_ms": 15000, **overrides})

    def partitions(self, topic: str, admin=None) -> list[dict]:
        """``[{partition, leader, replicas, isr}]`` as the cluster's metadata says now (leader -1 = offline)."""
        from kafka.errors import KafkaConnectionError

        own = admin is None
        admin = admin or self.admin()
        try:
            for attempt in range(3):  # a client that knew a broker just killed may try it first: ask another
                try:
                    meta = admin.describe_topics([topic])[0]
                    break
                except KafkaConnectionError:
                    if attempt == 2:
                        raise
                    time.sleep(0.2)
        finally:
            if own:
                admin.close()
        return [{"partition": p["partition_index"], "leader": p["leader_id"], "replicas": p["replica_nodes"],
                 "isr": p["isr_nodes"]} for p in sorted(meta["partitions"], key=lambda p: p["partition_index"])]

    def leader(self, topic: str, partition: int = 0, admin=None) -> int | None:
        """The node id leading ``topic``'s ``partition``, or None while it has no leader."""
        parts = self.partitions(topic, admin)
        leader = parts[partition]["leader"] if len(parts) > partition else -1
        return leader if leader >= 0 else None

    # --- lifecycle -------------------------------------------------------------------------
    def format(self) -> None:
        """Format the data dir of every node that has none, with ONE run of Kafka's StorageTool: the
        other nodes get what it wrote, made theirs (the same ``bootstrap.checkpoint``, which differs
        between nodes only in timestamps and CRCs, and a ``meta.properties`` with their own node id
        and a new directory id). Four StorageTool JVMs at once took 20-28 s on a busy 2-core machine,
        one took 3 s."""
        todo = [n for n in self.nodes if not (n.data_dir / "meta.properties").exists()]
        if not todo:
            return
        first = todo[0]
        first.write_config()
        first.format_storage()
        checkpoint = (first.data_dir / "bootstrap.checkpoint").read_bytes()
        for node in todo[1:]:
            node.write_config()
            node.data_dir.mkdir(parents=True, exist_ok=True)
            (node.data_dir / "bootstrap.checkpoint").write_bytes(checkpoint)
            (node.data_dir / "meta.properties").write_text(
                f"#\n#written by the course as kafka-storage format writes it\nnode.id={node.node_id}\n"
                f"directory.id={_new_cluster_id()}\nversion=1\ncluster.id={node.cluster_id}\n")
            (node.home / "cluster.id").write_text(node.cluster_id)

    def start(self) -> float:
        """Start every stopped node in parallel (a KRaft node waits for its quorum); returns seconds."""
        t0 = time.monotonic()
        ensure_kafka_jars(self.nodes[0].libs)
        self.format()
        run_parallel(lambda n: n.start(), [n for n in self.nodes if not n.running])
        return time.monotonic() - t0

    def stop(self, remove_data: bool = False) -> dict:
        """Stop every node (brokers first, all at once, then a dedicated controller: a broker's
        controlled shutdown needs the controller); ``remove_data`` deletes the cluster's dir."""
        pids = stop_many(self.brokers)
        pids.update(stop_many([n for n in self.nodes if not n.is_broker]))
        if remove_data:
            shutil.rmtree(self.home, ignore_errors=True)
        return pids

    def status(self) -> list[dict]:
        return [{"node": n.node_id, "roles": n.roles, "pid": n.pid or "-",
                 "address": n.bootstrap if n.is_broker else f"127.0.0.1:{n.controller_port}",
                 "state": "running" if n.running else "stopped", "rss MB": round(rss_bytes(n.pid) / 2**20)}
                for n in self.nodes]
