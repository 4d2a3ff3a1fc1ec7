"""A real Apache Kafka broker in KRaft combined mode, started with plain ``java``.

Maven resolves the pinned jars of ``services/kafka/pom.xml`` into ``.course/kafka/libs`` once;
the data dir is formatted once with ``kafka.tools.StorageTool``; the broker runs as
``java -cp 'libs/*' kafka.Kafka server.properties`` on 127.0.0.1 only.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from ..config import PROJECT_ROOT
from ..errors import ServiceSetupError
from .process import ManagedProcess, port_open

KAFKA_SRC = PROJECT_ROOT / "services" / "kafka"
READY_LINE = "Kafka Server started"
JVM_OPTS = ["-Xms256m", "-Xmx512m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xshare:auto",
            "-Djava.awt.headless=true"]


def _apt_install(package: str, log=print) -> bool:
    if not shutil.which("apt-get"):
        return False
    prefix = [] if os.geteuid() == 0 else (["sudo", "-n"] if shutil.which("sudo") else None)
    if prefix is None:
        return False
    log(f"{package.split('-')[0]} not found: installing Debian's {package} package ...")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(prefix + ["apt-get", "update", "-qq"], env=env, capture_output=True, timeout=600)
    res = subprocess.run(prefix + ["apt-get", "install", "-y", "-qq", package], env=env,
                         capture_output=True, timeout=900)
    return res.returncode == 0


def require_tool(tool: str, package: str, fix: str, log=print) -> str:
    """Path of ``tool``, installing ``package`` through apt when missing and possible."""
    path = shutil.which(tool)
    if not path and _apt_install(package, log):
        path = shutil.which(tool)
    if not path:
        raise ServiceSetupError(f"`{tool}` is not installed; {fix}, then run `make services-up` again.")
    return path


def ensure_kafka_jars(libs: Path, log=print) -> float:
    """Resolve the pinned broker jars into ``libs`` with Maven (skipped when up to date). Returns seconds."""
    pom = KAFKA_SRC / "pom.xml"
    digest = hashlib.sha256(pom.read_bytes()).hexdigest()
    stamp = libs / ".pom.sha256"
    if stamp.exists() and stamp.read_text() == digest and any(libs.glob("kafka_2.13-*.jar")):
        return 0.0
    require_tool("java", "openjdk-17-jre-headless", "install Java 17 (`sudo apt-get install openjdk-17-jre-headless`)", log)
    mvn = require_tool("mvn", "maven", "install Maven (`sudo apt-get install maven`)", log)
    log(f"resolving the Kafka broker jars with Maven into {libs} (first time only) ...")
    t0 = time.monotonic()
    if libs.exists():
        shutil.rmtree(libs)
    libs.mkdir(parents=True)
    res = subprocess.run([mvn, "-q", "-B", "-f", str(pom), "dependency:copy-dependencies",
                          f"-DoutputDirectory={libs}", "-DincludeScope=runtime"],
                         capture_output=True, text=True, timeout=1800)
    if res.returncode != 0 or not any(libs.glob("kafka_2.13-*.jar")):
        raise ServiceSetupError("Maven could not resolve the Kafka jars "
                                f"({(res.stdout + res.stderr).strip()[-600:]}); check that Maven Central is "
                                "reachable (or a mirror in ~/.m2/settings.xml) and run `make services-up` again.")
    stamp.write_text(digest)
    return time.monotonic() - t0


@dataclass
class KafkaBroker(ManagedProcess):
    """One KRaft broker+controller. ``voters`` lets several share one quorum (a 3-broker cluster)."""

    node_id: int = 1
    controller_port: int = 9093
    voters: str = ""
    cluster_id: str = ""
    extra_config: dict = field(default_factory=dict)
    libs: Path | None = None
    heap: str = ""  # maximum heap, e.g. "256m" (throwaway cluster nodes); "" keeps JVM_OPTS' -Xmx512m
    env_port_var = "COURSE_KAFKA_PORT"
    ready_timeout = 60.0
    log_name = "logs/server.log"

    def __post_init__(self):
        self.libs = self.libs or self.home.parent / "libs"
        self.voters = self.voters or f"{self.node_id}@{self.host}:{self.controller_port}"
        self._log_start = (None, 0)  # (inode, size) of server.log before the last start

    def extra_ports(self) -> list[int]:
        return [self.controller_port]

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    def version(self) -> str:
        jars = sorted(self.libs.glob("kafka_2.13-*.jar")) if self.libs else []
        return jars[0].name[len("kafka_2.13-"):-len(".jar")] if jars else "not downloaded"

    def _java(self, *args: str) -> list[str]:
        java = require_tool("java", "openjdk-17-jre-headless", "install Java 17 (`sudo apt-get install openjdk-17-jre-headless`)")
        opts = JVM_OPTS if not self.heap else [
            *(o for o in JVM_OPTS if not o.startswith(("-Xms", "-Xmx"))), "-Xms64m", f"-Xmx{self.heap}"]
        return [java, *opts, f"-Dkafka.logs.dir={self.home / 'logs'}",
                f"-Dlog4j2.configurationFile={KAFKA_SRC / 'log4j2.properties'}",
                "-cp", f"{self.libs}/*", *args]

    def write_config(self) -> Path:
        template = (KAFKA_SRC / "server.properties.template").read_text()
        extra = "\n".join(f"{k}={v}" for k, v in self.extra_config.items())
        text = template.format(node_id=self.node_id, broker_port=self.port, controller_port=self.controller_port,
                               log_dir=self.data_dir, voters=self.voters, host=self.host, extra=extra)
        path = self.home / "server.properties"
        self.home.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    def format_storage(self) -> None:
        """Format the data dir once (KRaft needs a cluster id in meta.properties)."""
        if (self.data_dir / "meta.properties").exists():
            return
        id_file = self.home / "cluster.id"
        cluster_id = self.cluster_id or (id_file.read_text().strip() if id_file.exists() else _new_cluster_id())
        id_file.write_text(cluster_id)
        res = subprocess.run(self._java("kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}",
                                        "-c", str(self.home / "server.properties"), "--ignore-formatted"),
                             capture_output=True, text=True, timeout=120)
        if res.returncode != 0:
            raise ServiceSetupError(f"formatting the Kafka data dir failed: {(res.stdout + res.stderr).strip()[-600:]}")

    def command(self) -> list[str]:
        return self._java("kafka.Kafka", str(self.home / "server.properties"))

    def start(self, env: dict | None = None) -> float:
        if self.running:
            return 0.0
        self.check_ports()
        ensure_kafka_jars(self.libs)
        self.write_config()
        self.format_storage()
        self._log_start = log_position(self.log_path)
        t0 = time.monotonic()
        super().start(env)
        self.wait_group_coordinator()
        return time.monotonic() - t0

    def wait_group_coordinator(self, timeout: float = 30.0) -> None:
        """Wait until consumer groups work: on a fresh broker the first group lookup creates the
        ``__consumer_offsets`` topic, and admin calls fail with CoordinatorNotAvailable until it exists."""
        from kafka import KafkaAdminClient
        from kafka.errors import KafkaError

        deadline = time.monotonic() + timeout
        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=5000,
                                 bootstrap_timeout_ms=5000, client_id="streamslab-supervisor")
        try:
            while True:
                try:
                    admin.describe_groups(["streamslab-supervisor-readiness"])
                    return
                except KafkaError as exc:
                    if time.monotonic() > deadline:
                        raise ServiceSetupError(f"Kafka started but its group coordinator was not available "
                                                f"within {timeout:.0f} s ({exc}); see `make services-logs`.") from None
                    time.sleep(0.2)
        finally:
            admin.close()

    def is_ready(self) -> bool:
        return port_open(self.port, self.host) and READY_LINE in self.log_since_start()

    def log_since_start(self) -> str:
        """What the broker logged since its last start, also when log4j rolled ``server.log`` over
        meanwhile (at 10 MB it is renamed ``server.log.N``: services/kafka/log4j2.properties). Reading
        the new, short ``server.log`` from the old size would find nothing: the readiness line was
        missed that way once, and a started broker reported "not ready within 60 s"."""
        return log_since(self.log_path, self._log_start)


def log_position(path: Path) -> tuple[int | None, int]:
    """(inode, size) of a log file now; (None, 0) when it does not exist yet."""
    try:
        st = path.stat()
    except OSError:
        return None, 0
    return st.st_ino, st.st_size


def _read_from(path: Path, offset: int) -> str:
    try:
        with open(path, errors="replace") as fh:
            fh.seek(offset)
            return fh.read()
    except OSError:
        return ""


def log_since(path: Path, start: tuple[int | None, int]) -> str:
    """The text appended to the log ``path`` since ``start`` (:func:`log_position`), across roll-overs:
    when ``path`` is no longer the file it was (renamed ``<name>.N`` by the rolling appender), the rest
    of that file, then the new ``path`` from its beginning."""
    inode, offset = start
    current, _ = log_position(path)
    if inode is None or current == inode:
        return _read_from(path, offset)
    rolled = [f for f in path.parent.glob(path.name + ".*") if log_position(f)[0] == inode]
    return "".join(_read_from(f, offset) for f in rolled) + _read_from(path, 0)


def _new_cluster_id() -> str:
    """A random KRaft cluster id (base64 of a UUID); never one starting with '-', which the storage
    tool's argument parser would read as an option (as Kafka's own Uuid.randomUuid avoids too)."""
    import base64

    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id
