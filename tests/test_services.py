"""The supervisor against real processes: idempotent up, clear errors, foreign servers left alone."""

import json
import subprocess
import sys
import time

import psutil
import pytest
import redis
from conftest import plain_redis_server

from helpers import clients, groups
from helpers.errors import PortTaken, ServiceUnavailable
from helpers.services import Lab
from helpers.services import lab as lab_module
from helpers.services.process import free_port

ROOT = __import__("pathlib").Path(__file__).resolve().parent.parent


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "helpers.services", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_up_twice_changes_nothing(lab):
    before = (lab.redis.pid, lab.kafka.pid)
    report = lab.up()
    assert {s: i["state"] for s, i in report.items()} == {"redis": "already running", "kafka": "already running"}
    assert (lab.redis.pid, lab.kafka.pid) == before
    out = cli("up")
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("already running") == 2
    assert (lab.redis.pid, lab.kafka.pid) == before


def test_status_table_lists_real_processes(lab):
    rows = {row["service"]: row for row in lab.status()}
    for name in ("redis", "kafka"):
        assert rows[name]["state"] == "running"
        assert psutil.pid_exists(rows[name]["pid"])
        assert rows[name]["address"].startswith("127.0.0.1:")
    assert rows["redis"]["version"][0].isdigit() and rows["kafka"]["version"].startswith("4.")
    out = cli("status")
    assert out.returncode == 0 and "service" in out.stdout and "running" in out.stdout


def test_services_listen_on_loopback_only(lab):
    ports = {lab.redis.port, lab.kafka.port, lab.kafka.controller_port}
    listening = [c for c in psutil.net_connections("tcp") if c.status == psutil.CONN_LISTEN and c.laddr.port in ports]
    assert listening, "the course's ports are not listening"
    assert {c.laddr.ip for c in listening} <= {"127.0.0.1", "::ffff:127.0.0.1"}


def test_bad_addresses_give_one_clear_sentence(monkeypatch):
    for url in ("nonsense", "redis://127.0.0.1:99999/0", "http://127.0.0.1:6379"):
        monkeypatch.setenv("REDIS_URL", url)
        with pytest.raises(ServiceUnavailable, match="REDIS_URL .* redis://127.0.0.1:6379/0"):
            clients.require_redis()
    for bootstrap in ("nonsense", "127.0.0.1", "127.0.0.1:0", "host:port"):
        monkeypatch.setenv("KAFKA_BOOTSTRAP", bootstrap)
        with pytest.raises(ServiceUnavailable, match="KAFKA_BOOTSTRAP .* 127.0.0.1:9092"):
            clients.require_kafka()


def test_redis_killed_then_require_redis_fails_fast(tmp_path):
    lab = Lab(tmp_path, log=lambda *_: None)
    scratch = lab.extra_redis("probe")
    client = scratch.client()
    client.set("k", "v")
    assert clients.require_redis(scratch.url).get("k") == "v"
    pid = scratch.kill()  # a real SIGKILL
    assert pid is not None and not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    t0 = time.monotonic()
    with pytest.raises(ServiceUnavailable, match="Redis is not reachable .*make services-up"):
        clients.require_redis(scratch.url)
    assert time.monotonic() - t0 < 5
    assert scratch.start() < 5 and scratch.client().ping()  # restart works
    lab.down()
    assert not scratch.running


def test_kafka_lifecycle_and_require_kafka_when_down(tmp_path, lab):
    """A second, throwaway broker: start, produce/consume, SIGKILL, clear error in < 5 s, restart."""
    port = free_port(19192)
    while not all(free_port(p) == p for p in (port, port + 1)):
        port += 2
    iso = Lab(tmp_path, redis_port=free_port(16390), kafka_port=port, log=lambda *_: None)
    iso.kafka.libs = lab.kafka.libs  # reuse the jars the session already resolved
    try:
        seconds = iso.kafka.start()
        print(f"throwaway broker ready in {seconds:.1f} s")
        admin = clients.require_kafka(iso.kafka.bootstrap)
        # ready means ready for groups: a fresh broker's first group lookup must not fail
        assert "streamslab.test.g" in admin.describe_groups(["streamslab.test.g"])
        groups.create_topic(admin, "streamslab.test.lifecycle", 1)   # the course's clients never auto-create
        producer = clients.kafka_producer(iso.kafka.bootstrap)
        producer.send("streamslab.test.lifecycle", b"x").get(timeout=20)
        producer.close(timeout=5)
        assert "streamslab.test.lifecycle" in admin.list_topics()
        admin.close()
        pid = iso.kafka.kill()
        assert pid and not iso.kafka.running
        t0 = time.monotonic()
        with pytest.raises(ServiceUnavailable, match="Kafka is not reachable .*make services-up"):
            clients.require_kafka(iso.kafka.bootstrap)
        assert time.monotonic() - t0 < 5
        iso.kafka.start()  # restart after a crash: KRaft recovers its log
        consumer = clients.kafka_consumer("streamslab.test.lifecycle", bootstrap=iso.kafka.bootstrap)
        assert [m.value for m in consumer] == [b"x"]
        consumer.close()
    finally:
        iso.down()
    assert not iso.kafka.running


@pytest.fixture
def foreign_redis(tmp_path):
    """A redis-server the course did NOT start, holding a key of its own."""
    port, proc = plain_redis_server(tmp_path, 17379)
    client = redis.Redis(port=port, decode_responses=True, socket_timeout=2)
    client.set("foreign:key", "keep me")
    yield port, proc, client
    proc.kill()
    proc.wait(5)


def _untouched(proc, client):
    assert proc.poll() is None, "the foreign server was stopped"
    assert client.get("foreign:key") == "keep me" and client.dbsize() == 1


def test_pinned_port_taken_stops_with_the_fix(tmp_path, foreign_redis):
    port, proc, client = foreign_redis
    lab = Lab(tmp_path / "course", redis_port=port, log=lambda *_: None)
    with pytest.raises(PortTaken) as err:
        lab.up(("redis",))
    text = str(err.value)
    assert f"port {port}" in text and "redis-server" in text and "COURSE_REDIS_PORT" in text
    assert "\n" not in text
    _untouched(proc, client)


def test_default_port_taken_moves_and_records_endpoint(tmp_path, foreign_redis, monkeypatch):
    port, proc, client = foreign_redis
    monkeypatch.setattr(lab_module, "DEFAULT_REDIS_PORT", port)
    monkeypatch.delenv("COURSE_REDIS_PORT", raising=False)
    notes = []
    lab = Lab(tmp_path / "course", log=notes.append)
    try:
        lab.up(("redis",))
        assert lab.redis.port != port and lab.redis.running
        assert any(f"port {port} is taken" in n for n in notes)
        recorded = json.loads((tmp_path / "course" / "endpoints.json").read_text())
        assert recorded["redis_url"] == f"redis://127.0.0.1:{lab.redis.port}/0"
        lab.redis.client().set("course:key", "1")
        again = Lab(tmp_path / "course", log=notes.append)  # a second `up` finds the moved server
        assert again.up(("redis",))["redis"]["state"] == "already running" and again.redis.port == lab.redis.port
    finally:
        stopped = lab.down()
    assert stopped["redis"] is not None
    _untouched(proc, client)


def test_stop_does_not_wait_for_the_zombie_of_a_server_another_process_started(tmp_path):
    """A Redis started by another live process (a notebook kernel) stays a zombie once it exits, until
    that process reaps it; ``stop`` from here (``make services-down``) must count it as exited at once,
    not wait out the SIGTERM timeout and then SIGKILL a process that is already gone."""
    script = ("import sys\nfrom helpers.services import Lab\n"
              f"lab = Lab({str(tmp_path)!r}, log=lambda *_: None)\n"
              "print(lab.extra_redis('kernel-started').pid, flush=True)\n"
              "sys.stdin.readline()\n")   # stays alive and never reaps its child, like a busy kernel
    parent = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        pid = int(parent.stdout.readline())
        server = Lab(tmp_path, log=lambda *_: None)._extra_from_disk()["redis-kernel-started"]
        assert server.pid == pid and psutil.Process(pid).ppid() == parent.pid
        t0 = time.monotonic()
        assert server.stop() == pid
        seconds = time.monotonic() - t0
        assert psutil.Process(pid).status() == psutil.STATUS_ZOMBIE   # exited; its parent has not reaped it
        assert not server.running and seconds < 5, f"stop took {seconds:.1f} s"
    finally:
        parent.stdin.close()
        parent.wait(10)


def test_extra_redis_picks_another_port_when_its_port_is_taken_before_the_bind(tmp_path, monkeypatch):
    """Extra Redis servers of several worktrees start at the same time: a port found free can be taken
    before redis-server binds it. The supervisor picks another port instead of failing."""
    import socket

    taken = socket.socket()                          # bound, not listening: free to a probe, not to a bind
    taken.bind(("127.0.0.1", 0))
    port = taken.getsockname()[1]
    starts = iter([port, free_port(16500)])
    monkeypatch.setattr(lab_module, "extra_redis_port", lambda: next(starts))
    lab = Lab(tmp_path, log=lambda *_: None)
    try:
        server = lab.extra_redis("race")
        assert server.running and server.port != port and server.client().ping()
    finally:
        lab.down()
        taken.close()
    assert not server.running
