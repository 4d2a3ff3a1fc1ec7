"""config, results, measure, checks and workers, against the real Redis where a server is involved."""

import json
import time

import pytest

from helpers import checks, config, kafka_clients, measure, results, workers


def test_namespace_names_are_prefixed_and_kafka_safe(monkeypatch):
    monkeypatch.setenv("COURSE_LEARNER", "Ada Lovelace")
    ns = config.namespace("nb03", run_id="abc123")
    assert ns.key("jobs") == "streamslab:ada-lovelace:nb03:abc123:jobs"
    assert ns.topic("orders") == "streamslab.ada-lovelace.nb03.abc123.orders"
    assert ns.group("billing").startswith(ns.kafka_notebook_prefix)
    assert config.namespace("nb03").run_id != config.namespace("nb03").run_id
    with pytest.raises(ValueError):
        config.namespace("NB 03")


def test_size_knob(monkeypatch):
    monkeypatch.setenv("COURSE_QUICK", "1")
    assert config.size(100_000, 1_000) == 1_000
    monkeypatch.setenv("COURSE_QUICK", "0")
    assert config.size(100_000, 1_000) == 100_000


def test_endpoints_come_from_env_then_file(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_DIR", str(tmp_path))
    monkeypatch.delenv("REDIS_URL", raising=False)
    assert config.redis_url() == config.DEFAULT_REDIS_URL
    (tmp_path / "endpoints.json").write_text(json.dumps({"redis_url": "redis://127.0.0.1:6380/0"}))
    assert config.redis_url() == "redis://127.0.0.1:6380/0"
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:7000/0")
    assert config.redis_url() == "redis://127.0.0.1:7000/0"


def test_results_record_and_load(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_RESULTS", str(tmp_path / "r.jsonl"))
    results.record("C03", "missed", 42, "messages", notebook="01", details={"window_s": 2})
    results.record("C03", "missed", 40, "messages", notebook="01")
    df = results.load()
    assert list(df.value) == [42, 40] and set(df.claim) == {"C03"}
    assert results.latest("C03")["value"] == 40 and "cpus" in results.latest("C03")["machine"]
    with pytest.raises(ValueError):
        results.record("C99", "x", 1, "u", notebook="01")


def test_percentiles_nearest_rank():
    p = measure.percentiles(range(1, 101))
    assert (p["p50"], p["p99"], p["max"], p["count"]) == (50, 99, 100, 100)
    assert measure.percentiles([]) == {"count": 0}


def test_check_results_and_decorator():
    @checks.check
    def stub_check():
        raise NotImplementedError

    @checks.check
    def broken_check():
        raise KeyError("x")

    assert stub_check().status == checks.NOT_ATTEMPTED
    assert broken_check().status == checks.NOT_YET and "KeyError" in broken_check().message
    assert str(checks.passed("ok")) == "[PASS] ok" and "hint: h" in str(checks.not_yet("no", "h"))
    assert "[NOT YET]" in str(checks.not_yet("no")) and "✅" not in checks.passed("ok")._repr_html_()


def test_process_worker_is_really_killed(r):
    key = config.namespace("tests").key("heartbeat")
    worker = workers.ProcessWorker("helpers.workers:heartbeat", redis_url=config.redis_url(), key=key).start()
    try:
        deadline = time.monotonic() + 15
        while int(r.get(key) or 0) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert int(r.get(key)) >= 3, worker.output()
        assert worker.kill() == -9
        count = int(r.get(key))
        time.sleep(0.3)
        assert int(r.get(key)) == count  # nothing runs after SIGKILL
    finally:
        r.delete(key)
        workers.stop_all()


def test_background_task_stops_and_keeps_errors():
    def loop(stop, box):
        while not stop.wait(0.01):
            box.append(1)
        return len(box)

    task = workers.background(loop, [])
    time.sleep(0.1)
    assert task.running and task.stop(timeout=2) > 0 and not task.running

    def boom(stop):
        raise RuntimeError("kaboom")

    failing = workers.background(boom)
    with pytest.raises(RuntimeError, match="kaboom"):
        failing.stop(timeout=2)


def test_cleanup_kafka_retries_a_coordinator_still_loading():
    """A freshly restarted broker answers list_groups with COORDINATOR_LOAD_IN_PROGRESS for a moment
    (seen failing test_server_dies); cleanup retries retriable errors for a bounded time, and
    re-raises anything else at once."""
    from kafka.errors import CoordinatorLoadInProgressError, TopicAuthorizationFailedError

    calls = []

    def loading_twice():
        calls.append(1)
        if len(calls) < 3:
            raise CoordinatorLoadInProgressError()
        return [("g", "consumer")]

    assert kafka_clients._retrying(loading_twice, 5) == [("g", "consumer")] and len(calls) == 3

    def refused():
        raise TopicAuthorizationFailedError()

    with pytest.raises(TopicAuthorizationFailedError):
        kafka_clients._retrying(refused, 5)


def test_wait_taken_needs_every_member_placed_and_every_partition_held_once():
    from helpers import scaling
    assert scaling.wait_taken({"a": [0, 1, 2], "b": [3, 4, 5]}, 6, timeout=1) == {"a": [0, 1, 2], "b": [3, 4, 5]}
    assert scaling.wait_taken({"a": [0, 1, 2, 3], "b": []}, 4, timeout=1)      # an idle member is placed too
    # the broker already moved b's partitions to a, but b's client never took up its assignment
    with pytest.raises(TimeoutError, match=r"consumer\(s\) b never took up their partitions"):
        scaling.wait_taken({"a": [0, 1, 2, 3, 4, 5], "b": None}, 6, timeout=0.3)
    with pytest.raises(TimeoutError):
        scaling.wait_taken({"a": [0, 1, 2], "b": [2, 3, 4]}, 6, timeout=0.3)    # 2 twice, 5 nowhere
