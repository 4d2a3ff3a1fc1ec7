"""The native tools beside the course's Python figures: redis-benchmark, redis-cli --latency, and
Kafka's own ProducerPerformance / ConsumerPerformance / EndToEndLatency from the broker's tools jar,
run as the course's console scripts (``kafka-producer-perf-test``, ``kafka-consumer-perf-test``,
``kafka-e2e-latency``) through :mod:`helpers.cli`, the same command line a learner types.

Each runner calls the tool with a timeout, parses its summary line and returns a plain dict; a
missing tool or a failed run raises :class:`~helpers.errors.ServiceSetupError` with one sentence.
Keys and topics are the caller's (namespaced): no tool here writes to a name the course did not choose.
:class:`FullJitBroker` is a throwaway second Kafka broker started without ``-XX:TieredStopAtLevel=1``
(the course broker's fast-start flag), to measure whether that flag caps throughput.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import signal
import threading
from dataclasses import dataclass, field

import psutil

from . import cli, config
from .errors import ServiceSetupError
from .services.kafka_server import KafkaBroker
from .services.process import port_open

BENCH_BROKER = "kafka-bench"   # .course/extra/kafka-bench-<run id>/: found by `make services-down`
OWNER_FILE = "owner.json"


def _checked(res: cli.Result, what: str, timeout: float) -> str:
    """The output of a finished :func:`helpers.cli.run`, or one sentence when it timed out or failed."""
    if res.timed_out:
        raise ServiceSetupError(f"{what} did not finish within {timeout:.0f} s.")
    if res.returncode != 0:
        raise ServiceSetupError(f"{what} failed (exit {res.returncode}): {res.output.strip()[-400:]}")
    return res.output


def _redis_tool(tool: str, args: list[str], timeout: float, what: str, redis_url: str | None) -> str:
    """``redis-benchmark`` / ``redis-cli`` with the connection arguments of :func:`helpers.cli.redis_args`."""
    binary = shutil.which(tool)
    if binary is None:
        raise ServiceSetupError(f"{tool} is not installed; `make services-up` installs it "
                                "(redis-tools comes with redis-server).")
    conn, env = cli.redis_args(redis_url)
    return _checked(cli.run([binary, *conn, *args], timeout=timeout, env=env), what, timeout)


def redis_benchmark(*command: str, requests: int, clients: int = 1, pipeline: int = 1,
                    redis_url: str | None = None, timeout: float = 120) -> dict:
    """``redis-benchmark -c clients -P pipeline -n requests <command>`` (a custom command on the
    caller's own key, never the tool's built-in ``mylist``/``mystream`` keys). Returns rps and the
    latency percentiles (ms) from its ``--csv`` summary."""
    out = _redis_tool("redis-benchmark", ["-c", str(clients), "-P", str(pipeline), "-n", str(requests), "--csv",
                                          *command], timeout, "redis-benchmark", redis_url)
    rows = list(csv.DictReader(io.StringIO(out[out.index('"test"'):])))
    row = rows[-1]
    return {"tool": "redis-benchmark", "rps": float(row["rps"]), "p50_ms": float(row["p50_latency_ms"]),
            "p99_ms": float(row["p99_latency_ms"]), "avg_ms": float(row["avg_latency_ms"]),
            "max_ms": float(row["max_latency_ms"]), "clients": clients, "pipeline": pipeline,
            "command": " ".join([f"redis-benchmark -c {clients} -P {pipeline} -n {requests}", command[0]])}


def redis_cli_latency(seconds: int = 2, redis_url: str | None = None) -> dict:
    """``redis-cli --latency -i seconds``: one PING every 10 ms for ``seconds`` s; not on a terminal it
    prints one line, ``min max avg samples`` (min/max in whole ms, avg with two decimals)."""
    out = _redis_tool("redis-cli", ["--latency", "--raw", "-i", str(seconds)], seconds + 30, "redis-cli --latency",
                      redis_url)
    lo, hi, avg, n = out.strip().splitlines()[-1].split()
    return {"tool": "redis-cli --latency", "min_ms": float(lo), "max_ms": float(hi), "avg_ms": float(avg),
            "samples": int(n), "command": f"redis-cli --latency -i {seconds}"}


# --- Kafka's tools (the course's console scripts, helpers.cli: full JIT, 512 MB heap) --------------
def kafka_tool(tool: str, *args: str, timeout: float = 300) -> str:
    """Kafka tool ``tool`` (``"kafka-producer-perf-test"``) through :func:`helpers.cli.kafka`; its output."""
    return _checked(cli.kafka(tool, *args, timeout=timeout, bootstrap=False), tool, timeout)


_PP = re.compile(r"(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg latency, "
                 r"([\d.]+) ms max latency, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th, (\d+) ms 99.9th")


def producer_performance(bootstrap: str, topic: str, records: int, *, size: int = 100, acks: str = "all",
                         linger_ms: int | None = None, throughput: int = -1, timeout: float = 300) -> dict:
    """Kafka's ProducerPerformance (the ``kafka-producer-perf-test`` tool): the Java client's records/s."""
    props = [f"acks={acks}"] + ([f"linger.ms={linger_ms}"] if linger_ms is not None else [])
    out = kafka_tool("kafka-producer-perf-test", "--bootstrap-server", bootstrap, "--topic", topic,
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
    out = kafka_tool("kafka-consumer-perf-test", "--bootstrap-server", bootstrap, "--topic", topic,
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
    out = kafka_tool("kafka-e2e-latency", "--bootstrap-server", bootstrap, "--topic", topic,
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
    ``make services-down`` finds it from its state file (``.course/extra/kafka-bench-<run id>/``) and stops it
    from another process: SIGTERM to the wrapper, which passes it on to the JVM (and SIGKILLs it 10 s
    later if it is still there); the process that started it reaps the wrapper in a thread, so it
    never lingers as a zombie that the other process would wait for.
    """

    max_seconds: int = 1800
    owner: dict = field(default_factory=dict)   # the run it belongs to: learner, notebook, run_id

    def start(self, env: dict | None = None) -> float:
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / OWNER_FILE).write_text(json.dumps(self.owner))
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


def bench_broker(ns: config.Namespace, max_seconds: int = 1800) -> FullJitBroker:
    """Run ``ns``'s full-JIT broker handle (home ``.course/extra/kafka-bench-<run id>/``); not started.

    One per run, like the run's keys and topics: a second live run of notebook 06 (the learner's
    kernel while ``make test`` runs it) or ``make bench`` gets its own and never stops this one."""
    name = f"{BENCH_BROKER}-{ns.run_id}"
    broker = FullJitBroker(name, config.course_dir() / "extra" / name, 0, libs=cli.libs_dir(), max_seconds=max_seconds)
    broker.owner = {"learner": ns.learner, "notebook": ns.notebook, "run_id": ns.run_id}
    state = broker._state()
    if broker.running and state.get("port"):
        broker.port = state["port"]
    else:
        broker.port = _free_pair(19700)
    broker.controller_port = broker.port + 1
    broker.voters = f"{broker.node_id}@{broker.host}:{broker.controller_port}"
    return broker


def _stop_and_remove(broker: KafkaBroker) -> int | None:
    """Stop ``broker`` and delete its home (data, logs, state: each throughput run writes hundreds of MB)."""
    pid = broker.stop() if broker.running else None
    if not broker.running:
        shutil.rmtree(broker.home, ignore_errors=True)
    return pid


def stop_bench_broker(ns: config.Namespace) -> int | None:
    """Stop run ``ns``'s full-JIT broker and delete its home. Returns the pid it stopped, or None."""
    return _stop_and_remove(bench_broker(ns))


def stop_dead_bench_brokers(r) -> dict[str, int | None]:
    """Stop and delete the full-JIT brokers of runs that are no longer live (a crashed or closed kernel,
    an interrupted ``make bench``), never one of a live run; ``r`` reads the live runs
    (:mod:`helpers.runs`). Returns ``{name: pid stopped or None}``."""
    from . import runs

    stopped = {}
    for home in sorted((config.course_dir() / "extra").glob(f"{BENCH_BROKER}-*")):
        try:
            owner = json.loads((home / OWNER_FILE).read_text())
            ns = config.Namespace(owner["notebook"], owner["run_id"], who=owner["learner"])
        except (OSError, ValueError, KeyError):
            continue                                # no owner recorded: not a broker this module started
        live = runs.live_runs(r, ns)
        if live is None or ns.run_id in live:
            continue                                # alive, or liveness unknown: leave it
        stopped[home.name] = _stop_and_remove(bench_broker(ns))
    return stopped
