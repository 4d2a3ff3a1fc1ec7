"""Issue 7, a server that dies mid-notebook: the running cell ends within 15 s with the course's one
sentence (the service, its address and `make services-up`), and after a restart a Run All in the
same kernel passes and leaves nothing behind.

Notebooks 03 (Redis SIGKILLed) and 05 (Kafka SIGKILLed) run against a throwaway course
(``scratch_course``): they find its servers through its state files, as a learner's notebooks do.
"""

import threading
import time

import pytest
from nbrun import NotebookRun

# parallel-safe: the servers killed here are the throwaway course's (`scratch_course`, one per
# xdist worker), never the course's shared Redis and Kafka
pytestmark = pytest.mark.notebook


def kill_during(run, lab_proc, tag: str, delay: float) -> dict:
    """A ``before`` hook: SIGKILL ``lab_proc`` ``delay`` s after the cell tagged ``tag`` starts."""
    killed: dict = {}
    kill_at = run.index(tag)

    def before(index, cell):
        if index == kill_at:
            def kill():
                killed["pid"] = lab_proc.kill()
                killed["t"] = time.monotonic()
            threading.Timer(delay, kill).start()

    return before, killed, kill_at


def assert_one_sentence(run, killed, kill_at, service: str, address: str) -> None:
    assert killed.get("pid"), "the server was not killed"
    assert run.failed_index is not None and run.failed_index >= kill_at
    seconds = run.ended[run.failed_index] - killed["t"]
    assert seconds < 15, f"the cell ended {seconds:.1f} s after the kill"
    err = run.error_output(run.failed_index)
    assert len(err["traceback"]) == 1, err["traceback"]
    line = err["traceback"][0]
    assert f"{service} stopped answering at {address}" in line, line
    assert "make services-up" in line and "\n" not in line.strip(), line
    print(f"{service}: cell {run.failed_index} ended {seconds:.1f} s after the kill with: {line}")


def crash_then_rerun(run, proc, tag: str, delay: float, service: str, address: str) -> None:
    """Run All, SIGKILL ``proc`` ``delay`` s into the cell ``tag``: one sentence within 15 s; then
    restart it and Run All again in the same kernel: it must pass."""
    before, killed, kill_at = kill_during(run, proc, tag, delay)
    try:
        assert not run.run_all(before), f"the notebook ran on although {service} was killed"
        assert_one_sentence(run, killed, kill_at, service, address)
    finally:
        proc.start()  # whatever happened: the next test gets its server back
    assert run.run_all(), run.error


def test_redis_killed_during_notebook_03(scratch_course):
    redis = scratch_course.redis
    with NotebookRun("03", env={"COURSE_DIR": str(scratch_course.home)}) as run:
        crash_then_rerun(run, redis, "exp-groups", 0.5, "Redis", f"redis://127.0.0.1:{redis.port}/0")
        c = run.value('measured["crash"]')
        assert c["pending_before"] == c["claimed"] and c["pending_after"] == 0
        assert run.value("workers.stop_all()") == 0
        assert list(redis.client().scan_iter(match=run.value("ns.notebook_prefix") + "*")) == []


def test_kafka_killed_during_notebook_05(scratch_course):
    kafka = scratch_course.kafka
    with NotebookRun("05", env={"COURSE_DIR": str(scratch_course.home)}) as run:
        crash_then_rerun(run, kafka, "exp-independent", 2.0, "Kafka", kafka.bootstrap)
        assert run.value('measured["replay"]["from_beginning"]') == run.value('measured["replay"]["produced"]') > 0
        from helpers.clients import kafka_admin

        admin = kafka_admin(kafka.bootstrap)
        try:
            prefix = run.value("ns.kafka_notebook_prefix")
            assert [t for t in admin.list_topics() if t.startswith(prefix)] == []
            assert [g["group_id"] for g in admin.list_groups() if g["group_id"].startswith(prefix)] == []
        finally:
            admin.close()
        assert list(scratch_course.redis.client().scan_iter(match=run.value("ns.notebook_prefix") + "*")) == []
