"""The course's services as one object: ``Lab().up()``, ``.down()``, ``.status()``, fault handles.

Port policy: when the default port (6379 / 9092) is held by a server the course did not start,
the course leaves that server alone, starts its own on the next free port and records the
endpoint in ``.course/endpoints.json`` where the notebooks find it. When the learner pinned a
port (``COURSE_REDIS_PORT`` / ``COURSE_KAFKA_PORT``) and it is taken, ``up`` stops with one
sentence naming the port, its process and the variable to change.

Concurrency: ``up`` and ``down`` hold an exclusive file lock (``.course/supervisor.lock``), so three
``make services-up`` at once start one Redis and one Kafka, and ``up`` re-reads the state files
under the lock. ``up`` always rewrites ``endpoints.json`` (atomically), also when all was running,
once the ports are chosen; a server that failed to start is recorded as failed, not at an address.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from contextlib import contextmanager
from pathlib import Path

from .. import config
from ..errors import SERVICES, PortTaken, ServiceSetupError
from . import cluster as clusters
from .jupyter_server import JupyterLab
from .kafka_cluster import DEFAULT_HEAP, KafkaCluster, replication_defaults
from .kafka_server import KafkaBroker
from .process import ManagedProcess, free_port, port_open, port_owner
from .redis_cluster import RedisCluster
from .redis_server import RedisServer

DEFAULT_REDIS_PORT = 6379
DEFAULT_KAFKA_PORT = 9092
DEFAULT_LAB_PORT = 8888
EXTRA_REDIS_PORTS = (18000, 18900)  # sacrificial Redis servers (away from the clusters' ranges)
BIND_RACE = ("Address already in use", "already taken")


def extra_redis_port() -> int:
    """A free port for a sacrificial Redis, searched from a random point of :data:`EXTRA_REDIS_PORTS`
    (several worktrees starting extra servers at once rarely pick the same one)."""
    return clusters.pick_ports(1, EXTRA_REDIS_PORTS)[0]


def _env_port(var: str) -> int | None:
    value = os.environ.get(var, "").strip()
    if not value:
        return None
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise PortTaken(f"{var}={value!r} is not a port number; set it to a number from 1 to 65535.")
    return int(value)


class Lab:
    """Course-managed Redis and Kafka under ``home`` (default ``.course/``)."""

    def __init__(self, home: Path | str | None = None, *, redis_port: int | None = None,
                 kafka_port: int | None = None, log=print):
        self.home = Path(home or config.course_dir()).resolve()
        self.log = log
        pinned_redis = redis_port or _env_port("COURSE_REDIS_PORT")
        pinned_kafka = kafka_port or _env_port("COURSE_KAFKA_PORT")
        pinned_lab = _env_port("COURSE_LAB_PORT")
        self.pinned = {"redis": pinned_redis is not None, "kafka": pinned_kafka is not None,
                       "jupyter": pinned_lab is not None}
        self.redis = RedisServer("redis", self.home / "redis", pinned_redis or DEFAULT_REDIS_PORT)
        kport = pinned_kafka or DEFAULT_KAFKA_PORT
        self.kafka = KafkaBroker("kafka", self.home / "kafka" / "broker", kport, controller_port=kport + 1,
                                 libs=self.home / "kafka" / "libs")
        self.jupyter = JupyterLab("jupyter", self.home / "jupyter", pinned_lab or DEFAULT_LAB_PORT)
        self._adopt_running()
        self.extras: dict[str, ManagedProcess] = {}
        self._locked = 0

    def _adopt_running(self) -> None:
        """A running course server keeps the port it has (read from its state file)."""
        for proc in (self.redis, self.kafka, self.jupyter):
            st = proc._state()
            if proc.running and st.get("port"):
                proc.port = st["port"]
                proc.host = st.get("host") or proc.host  # e.g. JupyterLab on 0.0.0.0 in a container
                if isinstance(proc, KafkaBroker):
                    proc.controller_port = st["port"] + 1
                    proc.voters = f"{proc.node_id}@{proc.host}:{proc.controller_port}"

    @contextmanager
    def supervisor_lock(self, timeout: float = 1900.0):
        """Hold ``.course/supervisor.lock`` (fcntl) while starting or stopping (re-entrant per Lab)."""
        if self._locked:
            self._locked += 1
            try:
                yield
            finally:
                self._locked -= 1
            return
        self.home.mkdir(parents=True, exist_ok=True)
        path = self.home / "supervisor.lock"
        with open(path, "a+") as fh:
            deadline, told = time.monotonic() + timeout, False
            while True:
                try:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise ServiceSetupError(f"another `up` or `down` of this course has held {path} for "
                                                f"more than {timeout:.0f} s; wait for it to finish, or stop it.") from None
                    if not told:
                        self.log(f"waiting for another `up`/`down` of this course ({path}) ...")
                        told = True
                    time.sleep(0.2)
            self._locked = 1
            try:
                yield
            finally:
                self._locked = 0
                fcntl.flock(fh, fcntl.LOCK_UN)

    # --- endpoints -------------------------------------------------------------------------
    @property
    def endpoints_path(self) -> Path:
        return self.home / "endpoints.json"

    def _write_endpoints(self, failed: dict[str, str] | None = None) -> None:
        """Write endpoints.json atomically (a reader never sees half a file).

        A running server is recorded at its address. A server whose start just failed (``failed``:
        service -> why) is recorded as ``null`` with ``<service>_failed``: the sentence the helpers show
        instead of an address where nothing of the course listens (or a foreign server does). Any other
        server keeps what the file said (its own address when the file had none)."""
        self.home.mkdir(parents=True, exist_ok=True)
        try:
            record = json.loads(self.endpoints_path.read_text())
            record = record if isinstance(record, dict) else {}
        except (OSError, ValueError):
            record = {}
        for service, proc, key, address in (("redis", self.redis, "redis_url", self.redis.url),
                                             ("kafka", self.kafka, "kafka_bootstrap", self.kafka.bootstrap)):
            if (failed or {}).get(service):
                record[key], record[f"{service}_failed"] = None, failed[service]
            elif proc.running or key not in record:
                record[key] = address
                record.pop(f"{service}_failed", None)
        tmp = self.endpoints_path.with_name(f".endpoints.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(record, indent=2))
        os.replace(tmp, self.endpoints_path)

    def _start_failed(self, service: str, proc: ManagedProcess, exc: Exception) -> None:
        """After ``proc`` failed to start: stop what is left of it (a broker not ready in time still
        runs), forget its state file (its port is where nothing of the course listens, or where another
        process bound first) and record the failure in endpoints.json instead of an address."""
        proc.stop()
        proc.state_path.unlink(missing_ok=True)
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0].rstrip(";:,. ")
        name = SERVICES[service][0]
        self._write_endpoints({service: f"the course's {name} did not start at the last `make services-up` "
                                        f"({first[:300]}); run `make services-up` again to see why and start it."})

    def _choose_port(self, service: str, proc: ManagedProcess) -> None:
        """Move off a default port held by a foreign server (never touch that server)."""
        ports = [proc.port, *proc.extra_ports()]
        busy = [p for p in ports if port_open(p)]
        if not busy:
            return
        if self.pinned[service]:
            proc.check_ports()  # raises PortTaken with the fix
        taken = busy[0]
        if isinstance(proc, KafkaBroker):
            port = proc.port + 2
            while port_open(port) or port_open(port + 1):
                port += 2
            proc.port, proc.controller_port = port, port + 1
            proc.voters = f"{proc.node_id}@{proc.host}:{port + 1}"
        else:
            proc.port = free_port(proc.port + 1)
        self.log(f"note: port {taken} is taken by {port_owner(taken)}, which the course did not start; "
                 f"leaving it alone and starting the course's {service} on port {proc.port} "
                 f"(recorded in {self.endpoints_path}; set {proc.env_port_var} to choose a port).")

    def _start_on_a_free_port(self, service: str, proc: ManagedProcess, attempts: int = 3) -> float:
        """``_choose_port`` then start; when another process (a teammate's course, a parallel test)
        took the chosen port between the check and the bind, choose again (never for a pinned port)."""
        for attempt in range(attempts):
            self._choose_port(service, proc)
            try:
                return proc.start()
            except ServiceSetupError:
                lost = not proc.running and any(port_open(p) for p in [proc.port, *proc.extra_ports()])
                if self.pinned[service] or not lost or attempt == attempts - 1:
                    raise
                self.log(f"note: port {proc.port} was taken while {service} started; choosing another.")
        raise AssertionError("unreachable")

    # --- lifecycle -------------------------------------------------------------------------
    def _external(self, service: str) -> str | None:
        var = {"redis": "REDIS_URL", "kafka": "KAFKA_BOOTSTRAP"}.get(service)
        return (os.environ.get(var) or None) if var else None

    def up(self, services: tuple[str, ...] = ("redis", "kafka")) -> dict[str, dict]:
        """Start what is not running (idempotent, serialised with other ``up``/``down``). Returns
        per-service state and ready time; endpoints.json is rewritten every time."""
        report = {}
        with self.supervisor_lock():
            self._adopt_running()  # another `up` may have started something while we waited
            for service in services:
                proc: ManagedProcess = getattr(self, service)
                external = self._external(service)
                if external:
                    report[service] = {"state": "external", "address": config.mask_url(external), "seconds": 0.0}
                    continue
                if proc.running:
                    report[service] = {"state": "already running", "pid": proc.pid, "seconds": 0.0}
                    continue
                try:
                    seconds = self._start_on_a_free_port(service, proc)
                except ServiceSetupError as exc:
                    if service != "jupyter":
                        self._start_failed(service, proc, exc)
                    raise
                report[service] = {"state": "started", "pid": proc.pid, "seconds": seconds}
            if any(s != "jupyter" and not self._external(s) for s in services):
                self._write_endpoints()
        return report

    def down(self) -> dict[str, int | None]:
        """Stop what the course started (extras included), and nothing else (serialised with ``up``)."""
        stopped = {}
        with self.supervisor_lock():
            for found in self._clusters_from_disk().values():  # all nodes of a cluster at once
                stopped.update(found.stop())
            for name, proc in {"jupyter": self.jupyter, **self._extra_from_disk(), **self.extras,
                               "kafka": self.kafka, "redis": self.redis}.items():
                stopped[name] = proc.stop()
        return stopped

    def status(self) -> list[dict]:
        """One row per service: service, pid, address, version, state, data dir."""
        rows = []
        procs = [("redis", self.redis), ("kafka", self.kafka), ("jupyter", self.jupyter),
                 *self._extra_from_disk().items(),
                 *((n.name, n) for c in self._clusters_from_disk().values() for n in c.nodes)]
        for name, proc in procs:
            external = self._external(name)
            pid = proc.pid
            state = "external" if external else ("running" if pid else "stopped")
            address = config.mask_url(external) if external else f"{proc.host}:{proc.port}"
            rows.append({"service": name, "pid": pid or "-", "address": address,
                         "version": proc.version(), "state": state, "data dir": str(proc.home)})
        return rows

    # --- throwaway instances -----------------------------------------------------------------
    def extra_redis(self, name: str = "scratch", port: int | None = None, **options) -> RedisServer:
        """Start a sacrificial Redis (e.g. for crash and persistence experiments) on a free port."""
        key = f"redis-{name}"
        proc = self.extras.get(key) or self._extra_from_disk().get(key)
        for attempt in range(3):
            if proc is not None and proc.running:
                break
            proc = RedisServer(key, self.home / "extra" / key, port or extra_redis_port(), **options)
            try:
                proc.start()
            except ServiceSetupError as exc:  # another process bound the port between the pick and the bind
                if port is not None or attempt == 2 or not any(s in str(exc) for s in BIND_RACE):
                    raise
        self.extras[key] = proc
        return proc

    def _extra_from_disk(self) -> dict[str, ManagedProcess]:
        found = {}
        for state in sorted((self.home / "extra").glob("*/*.state.json")):
            name = state.name[: -len(".state.json")]
            if name in self.extras:
                found[name] = self.extras[name]
            elif name.startswith("redis-"):
                port = json.loads(state.read_text()).get("port", 0)
                found[name] = RedisServer(name, state.parent, port)
            elif name.startswith("kafka-"):  # a single throwaway broker: notebook 06 / make bench full-JIT `kafka-bench-<run>`
                port = json.loads(state.read_text()).get("port", 0)
                found[name] = KafkaBroker(name, state.parent, port, controller_port=port + 1, libs=self.kafka.libs)
        return found

    # --- throwaway clusters (helpers/services/cluster.py) ------------------------------------
    def kafka_cluster(self, name: str = "cluster", brokers: int = 3, *, heap: str = DEFAULT_HEAP,
                      dedicated_controller: bool = False, extra_config: dict | None = None) -> KafkaCluster:
        """A KRaft cluster of ``brokers`` nodes on free loopback ports, ready when every broker is
        registered (reused if already running with this shape). See CONTRIBUTING.md."""
        return clusters.get_or_start(
            self.home / "extra", "kafka", name,
            lambda home: KafkaCluster.create(home, name, brokers, libs=self.kafka.libs, heap=heap,
                                                      dedicated_controller=dedicated_controller,
                                                      extra_config=extra_config),
            lambda c: len(c.brokers) == brokers and c.heap == heap
            and any(n.roles == "controller" for n in c.nodes) == dedicated_controller
            and c.nodes[0].extra_config == {**replication_defaults(brokers), **(extra_config or {})})

    def redis_cluster(self, name: str = "cluster", masters: int = 3, replicas: int = 0) -> RedisCluster:
        """A Redis Cluster (``masters`` masters, ``replicas`` per master), ready at cluster_state:ok."""
        return clusters.get_or_start(
            self.home / "extra", "redis", name,
            lambda home: RedisCluster.create(home, name, masters, replicas),
            lambda c: (c.masters, c.replicas) == (masters, replicas))

    def _clusters_from_disk(self) -> dict:
        return clusters.find_clusters(self.home / "extra")
