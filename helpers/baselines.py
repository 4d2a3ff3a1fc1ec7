"""The native tools beside the course's Python figures: redis-benchmark, redis-cli --latency, and
Kafka's own ProducerPerformance / ConsumerPerformance / EndToEndLatency from the broker's tools jar.

Each runner calls the tool with a timeout, parses its summary line and returns a plain dict; a
missing tool or a failed run raises :class:`~helpers.errors.ServiceSetupError` with one sentence.
Keys and topics are the caller's (namespaced): no tool here writes to a name the course did not choose.
:class:`FullJitBroker` is a throwaway second Kafka broker started without ``-XX:TieredStopAtLevel=1``
(the course broker's fast-start flag), to measure whether that flag caps throughput.
"""

from __future__ import annotations

import csv
import io
import re
import shutil
import signal
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

import psutil

from . import config
from .errors import ServiceSetupError
from .services.kafka_server import KafkaBroker
from .services.process import port_open

TOOLS = "org.apache.kafka.tools."
BENCH_BROKER = "kafka-bench"


def _run(cmd: list[str], timeout: float, what: str) -> str:
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise ServiceSetupError(f"{what} did not finish within {timeout:.0f} s.") from None
    except FileNotFoundError:
        raise ServiceSetupError(f"{cmd[0]} is not installed; `make services-up` installs it "
                                "(redis-tools comes with redis-server; Java 17 for Kafka's tools).") from None
    if res.returncode != 0:
        raise ServiceSetupError(f"{what} failed (exit {res.returncode}): {(res.stdout + res.stderr).strip()[-400:]}")
    return res.stdout + res.stderr


def _redis_args(redis_url: str | None) -> list[str]:
    from urllib.parse import urlparse

    url = urlparse(redis_url or config.redis_url())
    args = ["-h", url.hostname or "127.0.0.1", "-p", str(url.port or 6379)]
    return args + (["-n", url.path.strip("/")] if url.path.strip("/") else [])


def redis_benchmark(*command: str, requests: int, clients: int = 1, pipeline: int = 1,
                    redis_url: str | None = None, timeout: float = 120) -> dict:
    """``redis-benchmark -c clients -P pipeline -n requests <command>`` (a custom command on the
    caller's own key, never the tool's built-in ``mylist``/``mystream`` keys). Returns rps and the
    latency percentiles (ms) from its ``--csv`` summary."""
    tool = shutil.which("redis-benchmark") or "redis-benchmark"
    out = _run([tool, *_redis_args(redis_url), "-c", str(clients), "-P", str(pipeline), "-n", str(requests),
                "--csv", *command], timeout, "redis-benchmark")
    rows = list(csv.DictReader(io.StringIO(out[out.index('"test"'):])))
    row = rows[-1]
    return {"tool": "redis-benchmark", "rps": float(row["rps"]), "p50_ms": float(row["p50_latency_ms"]),
            "p99_ms": float(row["p99_latency_ms"]), "avg_ms": float(row["avg_latency_ms"]),
            "max_ms": float(row["max_latency_ms"]), "clients": clients, "pipeline": pipeline,
            "command": " ".join([f"redis-benchmark -c {clients} -P {pipeline} -n {requests}", command[0]])}


def redis_cli_latency(seconds: int = 2, redis_url: str | None = None) -> dict:
    """``redis-cli --latency -i seconds``: one PING every 10 ms for ``seconds`` s; not on a terminal it
    prints one line, ``min max avg samples`` (min/max in whole ms, avg with two decimals)."""
    tool = shutil.which("redis-cli") or "redis-cli"
    out = _run([tool, *_redis_args(redis_url), "--latency", "--raw", "-i", str(seconds)], seconds + 30,
               "redis-cli --latency")
    lo, hi, avg, n = out.strip().splitlines()[-1].split()
    return {"tool": "redis-cli --latency", "min_ms": float(lo), "max_ms": float(hi), "avg_ms": float(avg),
            "samples": int(n), "command": f"redis-cli --latency -i {seconds}"}


# --- Kafka's tools ------------------------------------------------------------------------------
def kafka_libs() -> Path:
    return config.course_dir() / "kafka" / "libs"


def java_tool(cls: str, *args: str, timeout: float = 300, heap: str = "512m") -> str:
    """Run ``org.apache.kafka.tools.<cls>`` from the broker's jars (the Kafka CLI's own classes)."""
    libs = kafka_libs()
    if not any(libs.glob("kafka-tools-*.jar")):
        raise ServiceSetupError(f"Kafka's tools jar is not in {libs}; run `make services-up` first.")
    java = shutil.which("java") or "java"
    return _run([java, f"-Xmx{heap}", "-cp", f"{libs}/*", TOOLS + cls, *args], timeout, cls)


_PP = re.compile(r"(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg latency, "
                 r"([\d.]+) ms max latency, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th, (\d+) ms 99.9th")


def producer_performance(bootstrap: str, topic: str, records: int, *, size: int = 100, acks: str = "all",
                         linger_ms: int | None = None, throughput: int = -1, timeout: float = 300) -> dict:
    """Kafka's ProducerPerformance (the ``kafka-producer-perf-test`` tool): the Java client's records/s."""
    props = [f"acks={acks}"] + ([f"linger.ms={linger_ms}"] if linger_ms is not None else [])
    out = java_tool("ProducerPerformance", "--bootstrap-server", bootstrap, "--topic", topic,
                    "--num-records", str(records), "--record-size", str(size), "--throughput", str(throughput),
                    "--command-property", *props, timeout=timeout)
    m = _PP.findall(out)
    if not m:
        raise ServiceSetupError(f"ProducerPerformance printed no summary: {out.strip()[-300:]}")
    sent, rps, mbs, avg, mx, p50, p95, p99, p999 = m[-1]
    return {"tool": "ProducerPerformance", "records": int(sent), "rps": float(rps), "mb_s": float(mbs),
            "avg_ms": float(avg), "p50_ms": float(p50), "p99_ms": float(p99), "max_ms": float(mx),
            "acks": acks, "linger_ms": linger_ms,
            "command": f"ProducerPerformance --num-records {records} --record-size {size} --throughput {throughput} "
                       f"--command-property {' '.join(props)}"}


def consumer_performance(bootstrap: str, topic: str, records: int, group: str, timeout: float = 300) -> dict:
    """Kafka's ConsumerPerformance (``kafka-consumer-perf-test``): records/s reading ``topic`` from the start."""
    out = java_tool("ConsumerPerformance", "--bootstrap-server", bootstrap, "--topic", topic,
                    "--num-records", str(records), "--group", group, "--timeout", "20000", timeout=timeout)
    lines = [line for line in out.splitlines() if line.count(",") >= 8]
    row = dict(zip([h.strip() for h in lines[0].split(",")], [v.strip() for v in lines[-1].split(",")], strict=True))
    return {"tool": "ConsumerPerformance", "records": int(row["data.consumed.in.nMsg"]),
            "rps": float(row["nMsg.sec"]), "fetch_rps": float(row["fetch.nMsg.sec"]),
            "command": f"ConsumerPerformance --num-records {records} --group <namespaced>"}


def end_to_end_latency(bootstrap: str, topic: str, records: int, *, size: int = 100, acks: str = "all",
                       timeout: float = 300) -> dict:
    """Kafka's EndToEndLatency: send one record, wait for the ack, poll until it is read back, repeat.
    It prints the mean in ms with 4 decimals and p50/p99/p99.9 truncated to whole milliseconds."""
    out = java_tool("EndToEndLatency", "--bootstrap-server", bootstrap, "--topic", topic,
                    "--num-records", str(records), "--producer-acks", acks, "--record-size", str(size),
                    timeout=timeout)
    avg = re.search(r"Avg latency: ([\d.]+) ms", out)
    pct = re.search(r"50th = (\d+), 99th = (\d+), 99.9th = (\d+)", out)
    if not (avg and pct):
        raise ServiceSetupError(f"EndToEndLatency printed no summary: {out.strip()[-300:]}")
    return {"tool": "EndToEndLatency", "avg_ms": float(avg.group(1)), "p50_ms": float(pct.group(1)),
            "p99_ms": float(pct.group(2)), "p999_ms": float(pct.group(3)), "records": records,
            "command": f"EndToEndLatency --num-records {records} --producer-acks {acks} --record-size {size}"}


# --- a second broker with full JIT ------------------------------------------------------------------
@dataclass
class FullJitBroker(KafkaBroker):
    """A throwaway broker like the course's, but its JVM may use the optimising C2 compiler.

    It runs under ``timeout`` (``max_seconds``), so even a kernel that dies without cleanup leaves
    it running for at most that long; :meth:`stop` also ends the JVM child if the wrapper went first.
    ``make services-down`` finds it from its state file (``.course/extra/kafka-bench/``) and stops it
    from another process: SIGTERM to the wrapper, which passes it on to the JVM (and SIGKILLs it 10 s
    later if it is still there); the process that started it reaps the wrapper in a thread, so it
    never lingers as a zombie that the other process would wait for.
    """

    max_seconds: int = 1800

    def start(self, env: dict | None = None) -> float:
        seconds = super().start(env)
        if self._popen is not None:
            threading.Thread(target=self._popen.wait, name=f"reap {self.name}", daemon=True).start()
        return seconds

    def _java(self, *args: str) -> list[str]:
        return [a for a in super()._java(*args) if a != "-XX:TieredStopAtLevel=1"]

    def command(self) -> list[str]:
        return ["timeout", "-k", "10", str(self.max_seconds), *super().command()]

    def stop(self, timeout: float = 20.0) -> int | None:
        pid = self.pid
        children = []
        if pid:
            try:
                children = psutil.Process(pid).children(recursive=True)
            except psutil.Error:
                pass
        stopped = super().stop(timeout)
        for child in children:
            try:
                child.send_signal(signal.SIGKILL)
                child.wait(10)
            except psutil.Error:
                pass
        return stopped


def _free_pair(start: int) -> int:
    port = start
    while port_open(port) or port_open(port + 1):
        port += 2
    return port


def bench_broker(max_seconds: int = 1800) -> FullJitBroker:
    """The full-JIT broker's handle (home ``.course/extra/kafka-bench``); not started."""
    home = config.course_dir() / "extra" / BENCH_BROKER
    broker = FullJitBroker(BENCH_BROKER, home, 0, libs=kafka_libs(), max_seconds=max_seconds)
    state = broker._state()
    if broker.running and state.get("port"):
        broker.port = state["port"]
    else:
        broker.port = _free_pair(19700)
    broker.controller_port = broker.port + 1
    broker.voters = f"{broker.node_id}@{broker.host}:{broker.controller_port}"
    return broker


def stop_bench_broker() -> int | None:
    """Stop a full-JIT broker left by this or an earlier run (a crashed kernel) and delete its data
    (only the throwaway broker's own log dir: each throughput run writes hundreds of MB there).
    Returns the pid it stopped, or None."""
    broker = bench_broker()
    pid = broker.stop() if broker.running else None
    if not broker.running and broker.data_dir.exists():
        shutil.rmtree(broker.data_dir, ignore_errors=True)
    return pid
