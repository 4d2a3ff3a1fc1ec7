"""The operators' tools from a notebook: ``redis-cli`` and Kafka's own command-line tools.

Kafka's tools run from the broker's jars (``.course/kafka/libs``, kafka-tools in
``services/kafka/pom.xml``) through small console scripts that ``make setup`` installs into
``.venv/bin`` (on the kernel's PATH), so a cell can run the real command::

    !kafka-topics --bootstrap-server {BOOTSTRAP} --describe --topic {ORDERS}
    !kafka-consumer-groups --bootstrap-server {BOOTSTRAP} --describe --group {GROUP}

The Python API runs a tool with a timeout and returns a :class:`Result` that displays the
command and its output (secrets masked)::

    cli.kafka("kafka-get-offsets", "--topic", ORDERS)      # --bootstrap-server added
    cli.redis("XPENDING", STREAM, GROUP)                    # redis-cli against the course's Redis
    cli.redis("MONITOR", timeout=2)                         # what the server saw in 2 s
"""

from __future__ import annotations

import html
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from . import config, kafka_security, security, ui

TOOLS_LOG4J = config.PROJECT_ROOT / "services" / "kafka" / "tools-log4j2.properties"
#: console script -> (main class, JVM profile); the names of Kafka's bin/*.sh scripts
KAFKA_TOOLS = {
    "kafka-topics": ("org.apache.kafka.tools.TopicCommand", "admin"),
    "kafka-consumer-groups": ("org.apache.kafka.tools.consumer.group.ConsumerGroupCommand", "admin"),
    "kafka-share-groups": ("org.apache.kafka.tools.consumer.group.ShareGroupCommand", "admin"),
    "kafka-get-offsets": ("org.apache.kafka.tools.GetOffsetShell", "admin"),
    "kafka-dump-log": ("org.apache.kafka.tools.DumpLogSegments", "admin"),
    "kafka-configs": ("kafka.admin.ConfigCommand", "admin"),
    "kafka-log-dirs": ("org.apache.kafka.tools.LogDirsCommand", "admin"),
    "kafka-delete-records": ("org.apache.kafka.tools.DeleteRecordsCommand", "admin"),
    "kafka-console-producer": ("org.apache.kafka.tools.ConsoleProducer", "admin"),
    "kafka-console-consumer": ("org.apache.kafka.tools.consumer.ConsoleConsumer", "admin"),
    "kafka-producer-perf-test": ("org.apache.kafka.tools.ProducerPerformance", "perf"),
    "kafka-consumer-perf-test": ("org.apache.kafka.tools.ConsumerPerformance", "perf"),
    "kafka-e2e-latency": ("org.apache.kafka.tools.EndToEndLatency", "perf"),
    "kafka-share-consumer-perf-test": ("org.apache.kafka.tools.ShareConsumerPerformance", "perf"),
}
#: tools that take --bootstrap-server (the Python API adds it when missing)
BOOTSTRAP_TOOLS = {"kafka-topics", "kafka-consumer-groups", "kafka-share-groups", "kafka-get-offsets",
                   "kafka-configs", "kafka-log-dirs", "kafka-delete-records", "kafka-console-producer",
                   "kafka-console-consumer", "kafka-consumer-perf-test"}
#: tools that talk to a broker: against a secured Kafka (KAFKA_SECURITY_PROTOCOL) they get the
#: settings in a 0600 properties file (``--command-config``; kafka-e2e-latency: its 6th argument)
CONFIG_TOOLS = BOOTSTRAP_TOOLS | {"kafka-producer-perf-test", "kafka-e2e-latency", "kafka-share-consumer-perf-test"}
#: a short-lived admin tool starts fast with C1 only and a small serial heap; a perf tool gets the
#: full JIT (C2) so its figures measure Kafka, not a half-compiled client
JVM_FLAGS = {
    "admin": ["-Xms32m", "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xshare:auto",
              "-XX:-UsePerfData"],
    "perf": ["-Xms256m", "-Xmx512m", "-XX:+UseG1GC", "-Xshare:auto", "-XX:-UsePerfData"],
}


def libs_dir() -> Path:
    return config.course_dir() / "kafka" / "libs"


def java_command(tool: str, args: list[str]) -> list[str]:
    """The ``java`` command line that runs Kafka tool ``tool`` (a key of :data:`KAFKA_TOOLS`)."""
    if tool not in KAFKA_TOOLS:
        raise ValueError(f"unknown Kafka tool {tool!r}; the course has {', '.join(sorted(KAFKA_TOOLS))}")
    main, profile = KAFKA_TOOLS[tool]
    libs = libs_dir()
    if not any(libs.glob("kafka-tools-*.jar")):
        # the jars are resolved with Maven once (as `make services-up` does)
        from .services.kafka_server import ensure_kafka_jars

        ensure_kafka_jars(libs, log=lambda msg: print(msg, file=sys.stderr))
    java_home = os.environ.get("JAVA_HOME")
    java = str(Path(java_home) / "bin" / "java") if java_home else (shutil.which("java") or "java")
    return [java, *JVM_FLAGS[profile], "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={TOOLS_LOG4J}", "-cp", f"{libs}/*", main, *args]


def tool_main() -> None:
    """Entry point of the console scripts: ``kafka-topics ...`` becomes ``java ... TopicCommand ...``."""
    tool = Path(sys.argv[0]).name.removesuffix(".exe")
    args = sys.argv[1:]
    try:
        secured = kafka_security.needs_command_config(tool, args, CONFIG_TOOLS)
        argv = java_command(tool, args)
    except Exception as exc:  # one sentence, not a traceback
        sys.exit(f"{tool}: {exc}")
    if secured:  # the course's secured Kafka: the settings in a 0600 file that is removed afterwards
        with kafka_security.command_config() as path:
            child = subprocess.Popen(java_command(tool, kafka_security.with_command_config(tool, args, path)))
            try:
                code = child.wait()
            except KeyboardInterrupt:
                child.terminate()
                code = child.wait(10)
        sys.exit(code)
    try:
        os.execv(argv[0], argv)
    except OSError:
        sys.exit(f"{tool}: cannot run {argv[0]!r}: install Java 17 (`sudo apt-get install openjdk-17-jre-headless`).")


# --- secrets ---------------------------------------------------------------------------------
def _known_secrets() -> set[str]:
    found = {unquote(urlparse(config.redis_url()).password or "")}
    found |= {v for k, v in os.environ.items() if re.search(r"PASSWORD|SECRET|TOKEN|REDISCLI_AUTH", k) and v}
    return {s for s in found if len(s) >= 4}


def mask(text: str) -> str:
    """``text`` with passwords replaced by ``***``: in URLs, ``password=`` settings and known secrets."""
    text = re.sub(r"(\b[a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@\s/]+@", r"\1***@", text, flags=re.I)
    text = re.sub(r'(password\s*=\s*)("[^"]*"|\S+)', r"\1***", text, flags=re.I)
    for secret in sorted(_known_secrets(), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


# --- running a tool ----------------------------------------------------------------------------
@dataclass
class Result:
    """A finished command: what ran (as shown: masked, short names), its output and exit code."""

    command: str
    output: str
    returncode: int | None
    seconds: float
    timed_out: bool = False
    error_reply: str | None = None  # redis-cli exits 0 when the server answers with an error

    @property
    def ok(self) -> bool:
        return (self.returncode == 0 or self.timed_out) and self.error_reply is None

    @property
    def lines(self) -> list[str]:
        return self.output.splitlines()

    def _status(self) -> tuple[str, str]:
        if self.timed_out:
            return "STOPPED", f"stopped after {self.seconds:.1f} s (its timeout)"
        if self.error_reply is not None:
            return "ERROR REPLY", f"the server refused the command ({self.error_reply}); redis-cli itself exits 0"
        if self.returncode == 0:
            return "OK", f"{self.seconds:.1f} s"
        return "FAILED", f"exit code {self.returncode} after {self.seconds:.1f} s"

    def __repr__(self) -> str:
        word, note = self._status()
        return f"$ {self.command}\n{self.output.rstrip()}\n{ui.badge_text(word)} {note}"

    def _repr_html_(self) -> str:
        word, note = self._status()
        return (f'<pre style="margin:0;padding:6px 8px;background:#f6f8fa;border-left:3px solid #57606a;'
                f'white-space:pre-wrap"><b>$ {html.escape(self.command)}</b>\n{html.escape(self.output.rstrip())}'
                f"</pre>{ui.badge_html(word)} <small>{html.escape(note)}</small>")


def run(argv: list[str], *, timeout: float = 30, env: dict | None = None, shown: str | None = None,
        max_lines: int | None = None, input: str | None = None) -> Result:
    """Run ``argv`` (no shell) for at most ``timeout`` seconds; output merged, masked, optionally cut
    to ``max_lines``. A command still running at the timeout is stopped and keeps what it printed."""
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                            env={**os.environ, **(env or {})}, start_new_session=True)
    timed_out = False
    try:
        out, _ = proc.communicate(input=input, timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            out, _ = proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
    lines = (out or "").splitlines()
    if max_lines is not None and len(lines) > max_lines:
        lines = lines[:max_lines] + [f"... ({len(lines) - max_lines} more lines)"]
    return Result(mask(shown or " ".join(argv)), mask("\n".join(lines)), None if timed_out else proc.returncode,
                  time.monotonic() - t0, timed_out)


def kafka(tool: str, *args: str, timeout: float = 60, bootstrap: bool = True, max_lines: int | None = None) -> Result:
    """Run Kafka tool ``tool`` (``"kafka-topics"``) with ``args``; ``--bootstrap-server`` is added
    for the tools that take it unless given (or ``bootstrap=False``)."""
    args = [str(a) for a in args]
    if bootstrap and tool in BOOTSTRAP_TOOLS and "--bootstrap-server" not in args:
        args = ["--bootstrap-server", config.kafka_bootstrap(), *args]
    if not kafka_security.needs_command_config(tool, args, CONFIG_TOOLS):
        return run(java_command(tool, args), timeout=timeout, shown=" ".join([tool, *args]), max_lines=max_lines)
    with kafka_security.command_config() as path:  # SASL/TLS settings from KAFKA_*, never on the command line
        args = kafka_security.with_command_config(tool, args, path)
        return run(java_command(tool, args), timeout=timeout, shown=" ".join([tool, *args]), max_lines=max_lines)


def redis_args(url: str | None = None) -> tuple[list[str], dict]:
    """``redis-cli`` connection arguments for ``url`` (default: the course's Redis) and the
    environment carrying its password (``REDISCLI_AUTH``: never on the command line)."""
    parsed = urlparse(url or config.redis_url())
    args = ["-h", parsed.hostname or "127.0.0.1", "-p", str(parsed.port or 6379)]
    db = (parsed.path or "/0").strip("/") or "0"
    if db != "0":
        args += ["-n", db]
    if parsed.scheme == "rediss":
        args.append("--tls")
        files = security.redis_tls_files()  # REDIS_TLS_CA / _CERT / _KEY (paths, not secrets)
        for flag, key in (("--cacert", "ca"), ("--cert", "cert"), ("--key", "key")):
            if files[key]:
                args += [flag, files[key]]
        if files["cert"] and not files["key"]:
            args += ["--key", files["cert"]]
    if parsed.username:
        args += ["--user", unquote(parsed.username)]
    env = {"REDISCLI_AUTH": unquote(parsed.password)} if parsed.password else {}
    return args, env


def redis(*args: str, timeout: float = 10, url: str | None = None, max_lines: int | None = None) -> Result:
    """Run ``redis-cli <args>`` against the course's Redis (``url`` for another one)."""
    binary = shutil.which("redis-cli")
    if binary is None:
        raise FileNotFoundError("redis-cli is not installed: it comes with Redis (`sudo apt-get install "
                                "redis-tools`, or redis-server which includes it).")
    conn, env = redis_args(url)
    argv = [binary, *conn, *map(str, args)]
    result = run(argv, timeout=timeout, env=env, shown=" ".join(["redis-cli", *argv[1:]]), max_lines=max_lines)
    first = next((line for line in result.lines if line.strip()), "")
    match = re.match(r"(?:\(error\) )?([A-Z][A-Z_]{1,19})\b", first)   # an error reply: ERR, OOM, WRONGTYPE, ...
    if match and match.group(1) in ERROR_PREFIXES:
        result.error_reply = match.group(1)
    return result


ERROR_PREFIXES = {"ERR", "WRONGTYPE", "OOM", "NOGROUP", "BUSYGROUP", "CROSSSLOT", "MOVED", "ASK", "NOSCRIPT",
                  "NOAUTH", "WRONGPASS", "NOPERM", "READONLY", "LOADING", "EXECABORT", "BUSY", "MISCONF",
                  "NOREPLICAS", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN", "NOPROTO", "UNKILLABLE"}
