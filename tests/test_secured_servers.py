"""Issue 13, secured servers: Redis with a password, an ACL user and TLS (client certificates
required); Kafka with SASL (SCRAM-SHA-512 and PLAIN) over TLS. Both are started here with
certificates made here (tests/secured.py), one of each for the module.

Guards: the course's clients, workers, CLI wrappers and notebook 00 work against them with only
REDIS_URL / REDIS_TLS_* / KAFKA_* set; a wrong setting (password, CA, plain text to a TLS port, TLS
to a plain port, mechanism) gives one sentence naming the variable to fix within a few seconds; and
no secret ever shows in a message, a log, the results file, a notebook output or a process list.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
import redis
from conftest import run_notebook
from secured import (
    DEFAULT_PASSWORD,
    KAFKA_PASSWORD,
    PLAIN_PASSWORD,
    REDIS_PASSWORD,
    SECRETS,
    USER,
    SecuredKafka,
    SecuredRedis,
    make_pki,
)

from helpers import cli, clients, config, groups, kafka_clients, kafka_security, workers
from helpers.errors import ServiceUnavailable

pytestmark = pytest.mark.timeout(300)


class ProcessWatch:
    """Every process on the machine, sampled 5 times a second: command lines that show a secret."""

    def __init__(self):
        self.leaks: dict[int, str] = {}
        self.seen: dict[int, str] = {}
        self.expected: set[str] = set()  # kinds of process the tests that ran started (see the last test)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while not self.stop.is_set():
            for proc in psutil.process_iter(["pid", "cmdline"]):
                line = " ".join(proc.info.get("cmdline") or [])
                if any(secret in line for secret in SECRETS):
                    self.leaks[proc.info["pid"]] = line
                if "helpers.workers" in line or "--command-config" in line or "ipykernel" in line:
                    self.seen[proc.info["pid"]] = line
            self.stop.wait(0.2)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)


@pytest.fixture(scope="module")
def watch():
    w = ProcessWatch()
    yield w
    w.close()


@pytest.fixture(scope="module")
def servers(lab, tmp_path_factory, watch, module_start):
    """(pki, secured Redis, secured Kafka) for the module. The broker starts in the background (about
    15 s) while the Redis tests run; a Kafka test asks for ``kafka_ready``."""
    home = tmp_path_factory.mktemp("secured")
    pki = make_pki(home / "pki")
    rds = SecuredRedis(home / "redis", pki)
    kafka = SecuredKafka(home / "kafka", pki, lab.kafka.libs)
    started: dict = {}

    def start():
        try:
            kafka.start()
        except BaseException as exc:  # handed to the first Kafka test
            started["error"] = exc

    kafka.starting = threading.Thread(target=start, name="secured-kafka-start", daemon=True)
    kafka.starting.start()
    kafka.start_error = started
    yield pki, rds, kafka
    kafka.starting.join(120)
    kafka.stop()
    rds.stop()


@pytest.fixture
def kafka_ready(servers):
    kafka = servers[2]
    kafka.starting.join(120)
    assert not kafka.starting.is_alive(), "the secured broker did not start within 120 s"
    if kafka.start_error.get("error"):
        raise kafka.start_error["error"]
    return kafka


@pytest.fixture(scope="module")
def module_start():
    return time.time()


@pytest.fixture
def secured_env(servers, monkeypatch, tmp_path):
    """The environment a learner sets for the secured pair (REDIS_URL + REDIS_TLS_* + KAFKA_*)."""
    pki, rds, kafka = servers
    env = {"REDIS_URL": rds.url(), "REDIS_TLS_CA": str(pki.ca), "REDIS_TLS_CERT": str(pki.client_cert),
           "REDIS_TLS_KEY": str(pki.client_key), **kafka.env()}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


def no_secret(text: str, where: str) -> None:
    for secret in SECRETS:
        if secret in text:
            at = text.index(secret)
            shown = text[max(0, at - 150):at + 150].replace(secret, "<SECRET>")
            pytest.fail(f"a secret shows in {where}: ...{shown}...")


def sentence(fn, limit: float) -> str:
    """The one ServiceUnavailable sentence ``fn`` raises, within ``limit`` seconds, secret-free."""
    t0 = time.monotonic()
    with pytest.raises(ServiceUnavailable) as err:
        fn()
    took = time.monotonic() - t0
    text = str(err.value)
    assert took < limit, f"took {took:.1f} s: {text}"
    assert "\n" not in text and len(text) < 400, text
    no_secret(text, "the error sentence")
    return text


# --- Redis: a password, an ACL user and TLS --------------------------------------------------------
def test_redis_acl_user_over_tls_runs_a_stream_round_trip(secured_env, servers):
    pki, rds, _ = servers
    r = clients.require_redis()
    conn = r.connection_pool.get_connection()
    try:
        assert type(conn).__name__ == "SSLConnection"  # TLS, not a plain socket that happened to work
    finally:
        r.connection_pool.release(conn)
    assert r.acl_whoami() == USER
    ns = config.namespace("nbsec")
    stream, group = ns.key("orders"), "billing"
    r.xgroup_create(stream, group, id="0", mkstream=True)
    ids = [r.xadd(stream, {"n": i}) for i in range(20)]
    got = r.xreadgroup(group, "c1", {stream: ">"}, count=100, block=2000)
    assert [entry_id for entry_id, _ in got[0][1]] == ids
    assert r.xack(stream, group, *ids) == 20
    with pytest.raises(redis.exceptions.NoPermissionError):  # the ACL user sees the course's names only
        r.get("someone-elses-key")
    assert clients.cleanup_redis(r, ns) >= 1

    # the same user on the plain port, and the default user (requirepass)
    assert clients.require_redis(rds.url(tls=False)).acl_whoami() == USER
    assert clients.require_redis(f"redis://:{DEFAULT_PASSWORD}@127.0.0.1:{rds.port}/0").acl_whoami() == "default"

    # the clients built by hand in notebook 01 (app_client, the raw subscriber) use TLS too
    from helpers import pubsub

    app = pubsub.app_client("streamslab-sec-app")
    assert app.ping() and app.client_getname() == "streamslab-sec-app"
    raw = pubsub.RawSubscriber(ns.key("ch"), "streamslab-sec-raw")
    assert r.publish(ns.key("ch"), "1:x") == 1
    raw.close()

    shown = cli.redis("XINFO", "STREAM", stream)  # redis-cli with --tls --cacert --cert --key and REDISCLI_AUTH
    # redis-cli got through TLS + AUTH and the server answered: an error reply (the stream was deleted
    # above), which cli.redis no longer calls OK (main's 4f47b27)
    assert shown.returncode == 0 and shown.error_reply == "ERR", shown
    assert "--tls" in shown.command and f"--cacert {pki.ca}" in shown.command, shown
    assert "no such key" in shown.output.lower(), shown
    conn, env = cli.redis_args()  # what redis-cli gets: the password in its environment, not its argv
    no_secret(" ".join(conn), "redis-cli's argv")
    assert env == {"REDISCLI_AUTH": REDIS_PASSWORD} and conn[-2:] == ["--user", USER]
    ping = cli.redis("PING")
    assert ping.ok and ping.lines == ["PONG"], ping
    no_secret(ping.command + ping.output, "redis-cli's command")


@pytest.mark.parametrize("case, expect", [
    ("wrong password", "refused the login of user 'alice': check the password in REDIS_URL"),
    ("no password", "asks for a password: put it in REDIS_URL"),
    ("wrong CA", "is not the CA that signed it"),
    ("no CA", "set REDIS_TLS_CA to the CA file that signed it"),
    ("no client certificate", "asks for a client certificate"),
    ("plain text to the TLS port", "expects TLS: use a rediss:// URL"),
    ("TLS to the plain port", "speaks plain Redis without TLS: use a redis:// URL"),
    ("CA file missing", "REDIS_TLS_CA='/nonexistent/ca.pem' is not a readable file"),
])
def test_wrong_redis_settings_give_one_sentence(case, expect, secured_env, servers, monkeypatch):
    pki, rds, _ = servers
    url = {"wrong password": rds.url(password="wrong-" + REDIS_PASSWORD[:5]),
           "no password": f"redis://127.0.0.1:{rds.port}/0",
           "plain text to the TLS port": rds.url().replace("rediss://", "redis://"),
           "TLS to the plain port": rds.url(tls=False).replace("redis://", "rediss://")}.get(case, rds.url())
    monkeypatch.setenv("REDIS_URL", url)
    if case == "wrong CA":
        monkeypatch.setenv("REDIS_TLS_CA", str(pki.other_ca))
    if case == "no CA":
        monkeypatch.delenv("REDIS_TLS_CA")
    if case == "no client certificate":
        monkeypatch.delenv("REDIS_TLS_CERT")
        monkeypatch.delenv("REDIS_TLS_KEY")
    if case == "CA file missing":
        monkeypatch.setenv("REDIS_TLS_CA", "/nonexistent/ca.pem")
    text = sentence(clients.require_redis, limit=6.0)
    assert expect in text, text
    assert config.mask_url(url) in text or case == "CA file missing", text


# --- Kafka: SASL over TLS --------------------------------------------------------------------------
def test_kafka_sasl_ssl_produce_consume_with_every_client(secured_env, servers, kafka_ready):
    _, _, kafka = servers
    admin = clients.require_kafka()
    ns = config.namespace("nbsec")
    topic = ns.topic("orders")
    from kafka.admin import NewTopic

    admin.create_topics([NewTopic(topic, 2, 1)])
    producer = clients.kafka_producer()
    for i in range(30):
        producer.send(topic, key=f"k{i % 5}".encode(), value=f"v{i}".encode())
    producer.flush(timeout=15)
    producer.close(timeout=5)
    consumer = clients.kafka_consumer(topic, group_id=ns.group("readers"))
    values, deadline = [], time.monotonic() + 30
    while len(values) < 30 and time.monotonic() < deadline:
        values += [int(rec.value.decode()[1:]) for batch in consumer.poll(timeout_ms=500).values() for rec in batch]
    consumer.close()
    values.sort()
    assert values == list(range(30))

    # librdkafka (confluent-kafka) with the config the course hands out
    from confluent_kafka import Consumer, Producer

    conf = clients.librdkafka_config()
    assert conf["security.protocol"] == "sasl_ssl" and conf["sasl.username"] == USER
    p = Producer(clients.librdkafka_config(**{"client.id": "streamslab-sec"}))
    p.produce(topic, key=b"k-rd", value=b"from-librdkafka")
    assert p.flush(15) == 0
    c = Consumer(clients.librdkafka_config(**{"group.id": ns.group("rd"), "auto.offset.reset": "earliest"}))
    c.subscribe([topic])
    got, deadline = [], time.monotonic() + 20
    while len(got) < 31 and time.monotonic() < deadline:
        msg = c.poll(0.5)
        if msg is not None and msg.error() is None:
            got.append(msg.value())
    c.close()
    assert b"from-librdkafka" in got and len(got) == 31

    # the PLAIN mechanism on the same listener
    plain = dict(secured_env, KAFKA_SASL_MECHANISM="PLAIN", KAFKA_SASL_PASSWORD=PLAIN_PASSWORD)
    with pytest.MonkeyPatch.context() as mp:
        for key, value in plain.items():
            mp.setenv(key, value)
        assert clients.require_kafka().describe_cluster()["brokers"]

    # a throwaway cluster the course starts itself is PLAINTEXT whatever KAFKA_* says
    assert kafka_clients._kafka_opts("127.0.0.1:1", "x")["security_protocol"] == "PLAINTEXT"
    assert kafka_clients._kafka_opts(None, "x")["sasl_plain_password"] == KAFKA_PASSWORD
    assert KAFKA_PASSWORD not in repr(kafka_security.kafka_security())
    assert clients.cleanup_kafka(admin, ns)["topics"] == 1


@pytest.mark.parametrize("case, expect", [
    ("wrong password", "refused the login of 'alice' with SCRAM-SHA-512"),
    ("wrong mechanism", "does not offer SASL SCRAM-SHA-256 (it offers SCRAM-SHA-512,PLAIN)"),
    ("wrong CA", "KAFKA_SSL_CAFILE"),
    ("plain text to the SASL_SSL port", "expects TLS but KAFKA_SECURITY_PROTOCOL=PLAINTEXT"),
    ("SASL_SSL to the plain port", "did not answer a TLS handshake"),
    ("no client certificate", "asks for a client certificate"),
    ("no mechanism", "needs KAFKA_SASL_MECHANISM"),
])
def test_wrong_kafka_settings_give_one_sentence(case, expect, secured_env, servers, kafka_ready, monkeypatch):
    pki, _, kafka = servers
    if case == "wrong password":
        monkeypatch.setenv("KAFKA_SASL_PASSWORD", "wrong-" + KAFKA_PASSWORD[:5])
    if case == "wrong mechanism":
        monkeypatch.setenv("KAFKA_SASL_MECHANISM", "SCRAM-SHA-256")
    if case == "wrong CA":
        monkeypatch.setenv("KAFKA_SSL_CAFILE", str(pki.other_ca))
    if case == "plain text to the SASL_SSL port":
        for var in kafka_security.KAFKA_VARS:
            monkeypatch.delenv(var, raising=False)
    if case == "SASL_SSL to the plain port":
        monkeypatch.setenv("KAFKA_BOOTSTRAP", kafka.broker.bootstrap)
    if case == "no mechanism":
        monkeypatch.delenv("KAFKA_SASL_MECHANISM")
    if case == "no client certificate":
        monkeypatch.delenv("KAFKA_SSL_CERTFILE")
        monkeypatch.delenv("KAFKA_SSL_KEYFILE")
    # require_kafka's default is 4 s; 2 s keeps this module short (the diagnosis after it adds <= ~2 s)
    text = sentence(lambda: clients.require_kafka(timeout=2.0), limit=2.0 + 4.0)
    assert expect in text, text


def test_kafka_cli_tools_get_the_settings_in_a_private_file(secured_env, servers, kafka_ready, watch):
    """``!kafka-topics --bootstrap-server {BOOTSTRAP} ...`` in a cell: the console script adds a
    0600 --command-config file that is gone afterwards, and no secret is on any command line."""
    _, _, kafka = servers
    watch.expected.add("kafka tool")
    before = set(Path("/tmp").glob("streamslab-kafka-*"))
    with kafka_security.command_config() as path:
        mode = Path(path).stat().st_mode & 0o777
        text = Path(path).read_text()
    assert mode == 0o600 and "ScramLoginModule" in text and "ssl.truststore.type=PEM" in text
    assert not Path(path).exists()
    # the console script, as `!kafka-topics --bootstrap-server {BOOTSTRAP} --list` runs it (cli.kafka is
    # exercised by notebook 00's exp-cli cell below)
    out = subprocess.run([str(Path(sys.executable).parent / "kafka-topics"), "--bootstrap-server", kafka.bootstrap,
                          "--list"], capture_output=True, text=True, timeout=90)
    assert out.returncode == 0 and "__consumer_offsets" in out.stdout, out.stdout + out.stderr
    no_secret(out.stdout + out.stderr, "kafka-topics' output")
    assert set(Path("/tmp").glob("streamslab-kafka-*")) == before  # the properties file was removed


# --- a notebook and a worker process against the secured pair, and where secrets could leak --------
@pytest.mark.notebook
def test_notebook_00_and_a_worker_run_against_the_secured_pair(secured_env, servers, kafka_ready, watch, module_start,
                                                               tmp_path, monkeypatch):
    watch.expected |= {"kernel", "worker", "kafka tool"}
    results = tmp_path / "results.jsonl"
    monkeypatch.setenv("COURSE_RESULTS", str(results))
    t0 = time.monotonic()
    with run_notebook("00") as tb:
        tb.inject("guess_slowest.set('Kafka topic')")   # a prediction and its comparison go to the results file
        tb.execute_cell("compare-slowest")
        print(f"notebook 00: {time.monotonic() - t0:.1f} s")
        measured = json.loads(tb.value("__import__('json').dumps(measured, default=str)"))
        servers_table = tb.value("servers.to_json()")
        cli_out = json.dumps([c.get("outputs") for c in tb.cells if "exp-cli" in c.metadata.get("tags", [])])
        outputs = json.dumps([c.get("outputs") for c in tb.cells if c.cell_type == "code"])
    assert measured["failed"] == 0 and measured["not_attempted"] == 0, measured
    assert {row["check"] for row in measured["roundtrips"]} >= {"Redis Stream round trip", "Kafka topic round trip"}
    assert "rediss://alice:***@127.0.0.1" in outputs and "1 broker(s) answering" in servers_table
    assert "PONG" in cli_out and "--command-config" in cli_out and "__consumer_offsets" in cli_out, cli_out
    no_secret(outputs, "notebook 00's outputs")
    assert results.exists()
    no_secret(results.read_text(), "the results file")

    # a worker process using both servers: a consumer-group member reporting to Redis
    _, rds, kafka = servers
    ns = config.namespace("nbsec")
    topic, report = ns.topic("work"), ns.key("report")
    r = clients.require_redis()
    t0 = time.monotonic()
    worker = workers.ProcessWorker("helpers.scaling:group_worker", topic=topic, group=ns.group("g"),
                                   client_id="w1", bootstrap=config.kafka_bootstrap(), redis_url=config.redis_url(),
                                   report=report, work_ms=0, lifetime=60).start()
    try:
        admin = clients.require_kafka()
        groups.create_topic(admin, topic, 1)                 # the course's clients never auto-create a topic
        admin.close()
        producer = clients.kafka_producer()
        for i in range(10):
            producer.send(topic, key=f"k{i}".encode(), value=json.dumps({"seq": i}).encode())
        producer.flush(timeout=15)
        producer.close(timeout=5)
        r.sadd(f"{report}:join", "w1")
        workers.wait_until(lambda: r.llen(f"{report}:done") >= 10 or not worker.alive, 45, "the worker's reports")
        assert sorted(json.loads(x)["seq"] for x in r.lrange(f"{report}:done", 0, -1)) == list(range(10)), \
            worker.output()[-600:]
    finally:
        r.set(f"{report}:stop", 1)
        if worker.alive:
            worker.wait(20)
        workers.stop_all()
    clients.cleanup_redis(r, ns)
    clients.cleanup_kafka(clients.require_kafka(), ns)
    print(f"worker: {time.monotonic() - t0:.1f} s")

    no_secret(Path(worker.log_path).read_text(errors="replace"), f"the worker log {worker.log_path}")
    for log in (config.course_dir() / "workers").glob("*.log"):
        if log.stat().st_mtime >= module_start:
            no_secret(log.read_text(errors="replace"), f"the worker log {log}")
    no_secret(rds.log(), "the secured redis-server's log")
    no_secret(kafka.log(), "the secured broker's server.log")


def test_no_secret_on_any_command_line(watch):
    """Runs last: none of the processes on the machine had a secret in its command line while this
    module ran, and the sampler did see the notebook's kernel, the worker process and a Kafka tool
    with --command-config (those of the tests that ran: ``-m "not notebook"`` skips notebook 00)."""
    watch.close()
    leaks = {}
    for pid, line in watch.leaks.items():
        for secret in SECRETS:
            line = line.replace(secret, "<SECRET>")
        leaks[pid] = line[:400]
    assert not leaks, f"a secret on the command line of: {leaks}"
    kinds = {"kernel": "ipykernel", "worker": "helpers.workers", "kafka tool": "--command-config"}
    missing = [k for k, marker in kinds.items()
               if k in watch.expected and not any(marker in line for line in watch.seen.values())]
    assert not missing, f"the sampler never saw a {missing} process"
