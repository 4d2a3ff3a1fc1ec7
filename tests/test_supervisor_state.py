"""Issue 7, the supervisor's state on disk: endpoints.json and concurrent up/down.

- A missing or corrupt ``.course/endpoints.json`` while the course's Redis runs on a moved port
  (the default port held by a server the course did not start): the helpers still find the
  course's server, from its state file; ``up`` rewrites the file even when all is running.
- Three ``python -m helpers.services up`` at once on a fresh course: one Redis and one Kafka;
  ``down`` then leaves none.
"""

import json
import os
import re
import subprocess
import sys

import psutil
import pytest
from test_services import foreign_redis  # noqa: F401  (a redis-server the course did not start)

from helpers import clients, config
from helpers.errors import ServiceSetupError, ServiceUnavailable
from helpers.services import Lab
from helpers.services import lab as lab_module
from helpers.services.process import free_port

ROOT = config.PROJECT_ROOT


def test_endpoints_come_from_the_course_state_when_the_file_is_lost(tmp_path, foreign_redis, monkeypatch):  # noqa: F811
    port, proc, foreign = foreign_redis
    home = tmp_path / "course"
    monkeypatch.setenv("COURSE_DIR", str(home))
    for var in ("REDIS_URL", "COURSE_REDIS_PORT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(lab_module, "DEFAULT_REDIS_PORT", port)
    monkeypatch.setattr(config, "DEFAULT_REDIS_URL", f"redis://127.0.0.1:{port}/0")  # where a silent fallback lands
    lab = Lab(home, log=lambda *_: None)
    try:
        lab.up(("redis",))
        assert lab.redis.port != port
        course_url = f"redis://127.0.0.1:{lab.redis.port}/0"
        lab.redis.client().set("course:key", "ours")
        endpoints = home / "endpoints.json"
        for damage in ("missing", "corrupt"):
            endpoints.unlink() if damage == "missing" else endpoints.write_text('{"redis_url": "redis://127.0.')
            assert config.redis_url() == course_url, damage
            assert clients.require_redis().get("course:key") == "ours", damage  # the course's server, not the foreign one
            report = Lab(home, log=lambda *_: None).up(("redis",))  # everything already runs ...
            assert report["redis"]["state"] == "already running"
            assert json.loads(endpoints.read_text())["redis_url"] == course_url  # ... and up rewrote it
        state = home / "redis" / "redis.state.json"
        saved = state.read_text()
        state.write_text("{garbage")
        with pytest.raises(ServiceUnavailable, match="state file .* `make services-up`"):
            config.redis_url()
        state.write_text(saved)
    finally:
        lab.down()
    assert foreign.get("foreign:key") == "keep me" and proc.poll() is None


def course_processes(home) -> dict[str, list[int]]:
    """pids of the redis-servers and Kafka brokers started for the course under ``home``."""
    found = {"redis": [], "kafka": []}
    for p in psutil.process_iter(["name", "cmdline"]):
        try:
            cmd = " ".join(p.info["cmdline"] or [])
            if "redis-server" in (p.info["name"] or "") and p.cwd() == str(home / "redis"):
                found["redis"].append(p.pid)
            elif "kafka.Kafka" in cmd and str(home) in cmd:
                found["kafka"].append(p.pid)
        except psutil.Error:
            pass
    return found


def test_three_concurrent_ups_start_one_of_each_and_down_stops_them(tmp_path, lab):
    home = tmp_path / "course"
    (home / "kafka").mkdir(parents=True)
    (home / "kafka" / "libs").symlink_to(lab.kafka.libs)  # the broker jars, already resolved
    env = {k: v for k, v in os.environ.items()
           if k not in ("REDIS_URL", "KAFKA_BOOTSTRAP", "COURSE_REDIS_PORT", "COURSE_KAFKA_PORT")}
    env["COURSE_DIR"] = str(home)

    def cli(*args):
        return subprocess.Popen([sys.executable, "-m", "helpers.services", *args], cwd=ROOT, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    try:
        ups = [cli("up") for _ in range(3)]
        outs = [p.communicate(timeout=300)[0] for p in ups]
        assert [p.returncode for p in ups] == [0, 0, 0], outs
        running = course_processes(home)
        assert {k: len(v) for k, v in running.items()} == {"redis": 1, "kafka": 1}, (running, outs)
        text = "\n".join(outs)
        assert text.count("redis    started") == 1 and text.count("kafka    started") == 1, text
        assert text.count("already running") == 4, text
        called_foreign = {int(pid) for pid in re.findall(r"taken by pid (\d+)", text)}
        assert not called_foreign & set(sum(running.values(), [])), text  # the course's own server is not "foreign"
        recorded = json.loads((home / "endpoints.json").read_text())
        assert recorded["kafka_bootstrap"].endswith(f":{Lab(home).kafka.port}")

        down = cli("down")
        assert down.wait(120) == 0, down.stdout.read()
        assert course_processes(home) == {"redis": [], "kafka": []}
    finally:
        for pid in sum(course_processes(home).values(), []):
            psutil.Process(pid).kill()


def test_log_since_start_follows_a_roll_over(tmp_path):
    from helpers.services.kafka_server import READY_LINE, log_position, log_since

    log = tmp_path / "server.log"
    assert log_since(log, log_position(log)) == ""                      # no log yet
    log.write_text("old line\n" * 1000)
    start = log_position(log)
    with open(log, "a") as fh:
        fh.write("starting\n")
    assert log_since(log, start) == "starting\n"                        # no roll-over: what was appended
    log.rename(tmp_path / "server.log.2")                               # log4j's roll-over: renamed ...
    (tmp_path / "server.log.1").write_text("an older roll-over\n" * 2000)
    log.write_text(f"[..] INFO {READY_LINE}\n")                          # ... and a new, short server.log
    assert log_since(log, start) == f"starting\n[..] INFO {READY_LINE}\n"


def test_a_broker_whose_start_rolls_its_log_over_is_ready(tmp_path, lab):
    """server.log 20 kB short of log4j's 10 MB roll-over size: the broker's own start-up lines roll it
    over. The supervisor read the new, short server.log from the old size, never saw the readiness
    line, and reported a started broker "not ready within 60 s" (seen once on `make classroom-drill`)."""
    from helpers.services.kafka_server import READY_LINE

    home = tmp_path / "course"
    (home / "kafka").mkdir(parents=True)
    (home / "kafka" / "libs").symlink_to(lab.kafka.libs)
    course = Lab(home)
    broker = course.kafka
    broker.log_path.parent.mkdir(parents=True, exist_ok=True)
    line = "[2026-01-01 00:00:00,000] INFO filler line for the roll-over test (test)\n"
    broker.log_path.write_text(line * ((10 * 1024 * 1024 - 20_000) // len(line)))
    try:
        seconds = course._start_on_a_free_port("kafka", broker)
        assert broker.running and seconds < 60
        rolled = list(broker.log_path.parent.glob("server.log.*"))
        assert rolled, ("the start-up lines did not roll server.log over: the test proves nothing",
                        broker.log_path.stat().st_size)
        assert READY_LINE in broker.log_path.read_text(errors="replace")   # ... in the new server.log
    finally:
        broker.stop()


def test_a_failed_kafka_start_is_recorded_as_failed_not_at_an_address(tmp_path, foreign_redis, monkeypatch, lab):  # noqa: F811
    """Kafka's default port is held by a server the course did not start (here a redis-server stands in
    for another course's broker), so ``up`` moves Kafka to another port, and then Kafka fails to start
    (a real failure: a config value the broker rejects). endpoints.json, written after Redis started and
    before Kafka's port was chosen, recorded Kafka at the default port, the foreign server's; an earlier
    run's state file named that port too: the helpers sent the notebooks there without a word. Now the
    file records the failure, the helpers say it in one sentence, and the next good start clears it."""
    port, proc, foreign = foreign_redis
    home = tmp_path / "course"
    (home / "kafka").mkdir(parents=True)
    (home / "kafka" / "libs").symlink_to(lab.kafka.libs)  # the broker jars, already resolved
    monkeypatch.setenv("COURSE_DIR", str(home))
    for var in ("REDIS_URL", "KAFKA_BOOTSTRAP", "COURSE_REDIS_PORT", "COURSE_KAFKA_PORT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(lab_module, "DEFAULT_KAFKA_PORT", port)
    monkeypatch.setattr(config, "DEFAULT_KAFKA_BOOTSTRAP", f"127.0.0.1:{port}")  # where a silent fallback lands
    course = Lab(home, redis_port=free_port(16420), log=lambda *_: None)
    stale = course.kafka.state_path  # an earlier run's broker, gone, ran on the port the foreign server holds now
    stale.parent.mkdir(parents=True, exist_ok=True)
    stale.write_text(json.dumps({"pid": os.getpid(), "create_time": 0, "port": port, "host": "127.0.0.1"}))
    course.kafka.extra_config = {"log.segment.bytes": "not-a-number"}
    try:
        with pytest.raises(ServiceSetupError):
            course.up(("redis", "kafka"))
        assert course.kafka.port != port  # the supervisor had moved Kafka off the foreign server's port
        recorded = json.loads((home / "endpoints.json").read_text())
        assert recorded["redis_url"] == course.redis.url
        assert recorded["kafka_bootstrap"] is None and "did not start" in recorded["kafka_failed"]
        assert not stale.exists()
        for call in (config.kafka_bootstrap, clients.require_kafka):
            with pytest.raises(ServiceUnavailable) as err:
                call()
            text = str(err.value)
            assert "Kafka did not start" in text and "`make services-up`" in text and "\n" not in text
        assert clients.require_redis().ping()  # Redis started: its address is recorded
        course.kafka.extra_config = {}
        assert course.up(("kafka",))["kafka"]["state"] == "started"
        recorded = json.loads((home / "endpoints.json").read_text())
        assert recorded["kafka_bootstrap"] == course.kafka.bootstrap and "kafka_failed" not in recorded
        assert config.kafka_bootstrap() == course.kafka.bootstrap
    finally:
        course.down()
    assert foreign.get("foreign:key") == "keep me" and proc.poll() is None
