"""Issue 7, exercise checks: the harness every check uses to call the learner's code (time limit, no
thread or connection left behind, the learner's own traceback), and the checks' return-value rules.
Against the real servers; the learner functions are written here as a learner would write them."""

import threading
import time

import pytest

from helpers import checks, clients, config, groups, queues
from helpers.checks import nb02, nb03, nb04, nb05

LIMIT = 2.0


@pytest.fixture(autouse=True)
def short_limit(monkeypatch):
    monkeypatch.setenv("COURSE_CHECK_TIMEOUT", str(LIMIT))


@checks.check
def runs(fn, *args):
    """The smallest check: calls the learner's function and passes when it returns."""
    return checks.passed(f"returned {checks.call(fn, *args)!r}")


def hangs():
    while True:
        time.sleep(1)


def swallows_everything():
    while True:
        try:
            time.sleep(1)
        except Exception:  # a learner's catch-all must not defeat the limit
            pass


def timed(fn, *args):
    t0 = time.monotonic()
    result = runs(fn, *args)
    return result, time.monotonic() - t0


@pytest.mark.parametrize("fn", [hangs, swallows_everything])
def test_a_function_that_never_returns_is_stopped_at_the_limit(fn):
    result, seconds = timed(fn)
    assert result.status == checks.TIME_LIMIT
    assert f"{fn.__name__}: your function did not return within {LIMIT:g} s" in result.message
    assert str(result).startswith("[TIME LIMIT] ") and "TIME LIMIT" in result._repr_html_()
    assert LIMIT - 0.1 < seconds < LIMIT + 1.5
    assert runs(lambda: 42).status == checks.PASS  # the process stays usable, the next call is normal


def test_no_client_thread_or_connection_is_left_behind(r, kafka_admin):
    ns = config.namespace("tests")
    topic = groups.create_topic(kafka_admin, ns.topic("harness"), 1)
    made = {}
    client_name = ns.key("learner-sub")

    def greedy(topic):
        made["consumer"] = clients.kafka_consumer(topic, group_id=ns.group("harness"))
        made["consumer"].poll(timeout_ms=3000)  # joins the group: a heartbeat thread starts
        made["producer"] = clients.kafka_producer()  # its sender thread
        made["pubsub"] = clients.redis_client(client_name=client_name).pubsub()
        made["pubsub"].subscribe(ns.key("chan"))
        hangs()

    before = set(threading.enumerate())
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("COURSE_CHECK_TIMEOUT", "8")
            result = runs(greedy, topic)
        assert result.status == checks.TIME_LIMIT, str(result)
        assert set(made) == {"consumer", "producer", "pubsub"}
        time.sleep(0.5)
        left = [t.name for t in set(threading.enumerate()) - before if t.is_alive()]
        assert left == [], left
        assert made["consumer"]._closed and made["producer"]._closed
        assert [c for c in r.client_list() if c.get("name") == client_name] == []
    finally:
        clients.cleanup_kafka(kafka_admin, ns)


def test_off_the_main_thread_the_limit_still_holds():
    box = {}
    thread = threading.Thread(target=lambda: box.update(zip(("result", "seconds"), timed(hangs), strict=True)))
    thread.start()
    thread.join(LIMIT + 6)
    assert not thread.is_alive() and box["result"].status == checks.TIME_LIMIT
    time.sleep(0.2)
    assert not [t for t in threading.enumerate() if t.name == "streamslab-check"]


def bad_answer(values):
    total = sum(values)
    return total / (len(values) - len(values))  # the learner's bug: a division by zero


def test_a_learner_error_shows_their_own_line_not_only_the_message():
    result = runs(bad_answer, [1, 2])
    assert result.status == checks.NOT_YET
    assert "bad_answer raised ZeroDivisionError" in result.message
    text = str(result)
    assert "test_checks_harness.py, line" in text and "in bad_answer" in text
    assert "return total / (len(values) - len(values))" in text
    assert result.details[-1].startswith("ZeroDivisionError: ")
    assert not any("helpers/" in line for line in result.details)  # the course's frames are left out
    assert "run the exercise cell again" not in text
    assert "<pre" in result._repr_html_()
    assert runs(lambda: 1 // 0).hint == ""


# --- return values --------------------------------------------------------------------------------
def test_reap_must_return_the_requeued_jobs(r):
    ns = config.namespace("nb02")

    def reap_returns_nothing(r, processing, queue, claimed, max_age):
        queues.reap(r, processing, queue, claimed, max_age)  # moves the right jobs ... returns None

    def reap_returns_everything(r, processing, queue, claimed, max_age):
        queues.reap(r, processing, queue, claimed, max_age)
        return r.lrange(queue, 0, -1)  # also the job that was already waiting

    for wrong in (reap_returns_nothing, reap_returns_everything):
        result = nb02.reaper(wrong, r, ns)
        assert result.status == checks.NOT_YET and "returned" in result.message, str(result)
    assert nb02.reaper(queues.reap, r, ns).status == checks.PASS
    assert list(r.scan_iter(match=ns.prefix + "*")) == []


def test_dead_letter_returning_none_does_not_pass(r):
    ns = config.namespace("nb03")
    scope = {}
    exec((config.PROJECT_ROOT / "notebooks/solutions/03_dead_letter.py").read_text(), scope)  # noqa: S102
    right = scope["dead_letter"]

    def right_but_returns_none(*args):
        right(*args)

    result = nb03.dead_letter_policy(right_but_returns_none, r, ns)
    assert result.status == checks.NOT_YET and "returned None" in result.message, str(result)
    assert nb03.dead_letter_policy(right, r, ns).status == checks.PASS
    assert list(r.scan_iter(match=ns.prefix + "*")) == []


def test_none_from_key_for_or_read_from_is_a_wrong_answer(kafka_admin):
    ns = config.namespace("nb04")
    try:
        assert nb04.key_choice(lambda event: None, kafka_admin, ns.topic("k")).status == checks.NOT_YET
        assert nb04.read_from_check(lambda topic, p, o: None, kafka_admin, ns.topic("r")).status == checks.NOT_YET
    finally:
        clients.cleanup_kafka(kafka_admin, ns)


def test_a_failed_start_group_at_attempt_cannot_poison_the_next(kafka_admin):
    ns = config.namespace("nb05")
    topic = groups.create_topic(kafka_admin, ns.topic("orders"), 2)
    producer = clients.kafka_producer()
    hour_ago = int(time.time() * 1000) - 3_600_000
    truth = [f.get(timeout=10) for f in [producer.send(topic, value=b"o", timestamp_ms=hour_ago + i * 60_000)
                                          for i in range(60)]]
    producer.close(timeout=5)
    ts = hour_ago + 20 * 60_000
    scope = {}
    exec((config.PROJECT_ROOT / "notebooks/solutions/05_start_at.py").read_text(), scope)  # noqa: S102

    def leaves_a_member_behind(topic, group_id, ts_ms):
        stray = groups.subscribed(topic, group_id=group_id, session_timeout_ms=45000)
        stray.poll(timeout_ms=3000)  # a live member of the group, never closed by the learner
        return clients.kafka_consumer(topic, group_id=group_id)  # and reads from the beginning

    try:
        group = ns.group("refunds")
        first = nb05.start_group_at(leaves_a_member_behind, kafka_admin, topic, group, ts, truth)
        assert first.status == checks.NOT_YET, str(first)
        second = nb05.start_group_at(scope["start_group_at"], kafka_admin, topic, group, ts, truth)
        assert second.status == checks.PASS, str(second)
    finally:
        clients.cleanup_kafka(kafka_admin, ns)
