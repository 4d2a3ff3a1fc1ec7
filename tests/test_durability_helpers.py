"""Notebook 07's helpers without the notebook: counting by id, the answers predictions are compared
with, and the owner of the throwaway servers: one live kernel at a time; its exit stops them; a dead
owner's leftovers are stopped by the next setup; a late-exiting old kernel never stops a newer run's."""

import json
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from helpers import config, durability
from helpers import kafka_durability as kd
from helpers.errors import CourseError
from helpers.kafka_durability import tally
from helpers.services import Lab

ROOT = Path(__file__).resolve().parent.parent


def test_id_ranges_and_redis_tally():
    assert durability.id_ranges([]) == "none"
    assert durability.id_ranges([9, 3, 4, 5, 11, 12]) == "3-5, 9, 11-12"
    run = {"acked": {i: i / 100 for i in range(10)}, "killed_at": 0.1, "seconds": 0.1,
           "latencies_ms": [1.0] * 10}
    c = durability.redis_tally(run, kept_seqs=[0, 1, 2, 3, 4, 5, 6, 10])      # 10: applied, never answered
    assert (c["acknowledged"], c["kept"], c["lost"]) == (10, 7, 3)
    assert c["lost_ids"] == [7, 8, 9] and c["lost_ranges"] == "7-9" and c["unacknowledged_kept"] == 1
    assert c["window_ms"] == 30.0 and c["writes_per_s"] == 100


def test_kafka_tally_counts_by_id():
    class Producer:
        sent = dict.fromkeys(range(6), 0.0)
        acked = {0: (0, 0.1), 1: (1, 0.1), 2: (2, 0.1), 4: (3, 0.2)}
        failed = {5: "KafkaTimeoutError"}

    c = tally(Producer(), log=[0, 1, 1, 3, 4])         # 1 twice, 2 lost, 3 written but never acknowledged
    assert (c["acknowledged"], c["kept"], c["lost"], c["duplicated"]) == (4, 3, 1, 1)
    assert c["lost_ids"] == [2] and c["unacknowledged_kept"] == 1 and c["failed_errors"] == {"KafkaTimeoutError": 1}


def test_prediction_answers_come_from_the_counts():
    assert durability.answer([], durability.REDIS_LOSS_ANSWERS) == "none of them"
    assert durability.answer(["RDB save 1 1", "no persistence", "RDB save 60 1"],
                             durability.REDIS_LOSS_ANSWERS) == "no persistence and both RDB settings"
    assert durability.answer(["AOF always"], durability.REDIS_LOSS_ANSWERS) == "only AOF always"
    assert durability.answer(["acks=0"], kd.ACKS_LOSS_ANSWERS) == "acks=0 only"
    assert kd.probe_answer(["NotEnoughReplicasError"] * 5) == "all refused"
    assert kd.probe_answer(["ok", "NotEnoughReplicasError"]) == "some acknowledged, some refused"
    assert kd.probe_answer(["KafkaTimeoutError"] * 2) == "no answer: they time out"
    assert kd.probe_answer(["ok"] * 5) == "all acknowledged"


def test_acks_resume_after_the_outage_not_with_answers_already_on_their_way():
    times = [0.1, 0.5, 1.0, 1.05, 1.1, 4.0, 4.1]               # killed at 1.02: 1.05 and 1.1 were in flight
    assert kd.resumed_at(times, kill_at=1.02) == 4.0
    assert kd.resumed_at([0.1, 0.5], kill_at=1.0) is None       # never resumed


KERNEL = """
import sys
from helpers import config, durability
from helpers.services import Lab
lab = Lab({course!r}, log=lambda *_: None)
durability.take_over(lab, config.Namespace("nb07", who="{who}"))
print(lab.extra_redis("nb07-{who}").pid, flush=True)
sys.stdin.readline()                      # a kernel that runs until its stdin closes
"""


def kernel(course: Path, who: str) -> tuple[subprocess.Popen, int]:
    """A process that takes over notebook 07's servers and starts one, like a kernel running the setup."""
    proc = subprocess.Popen([sys.executable, "-c", KERNEL.format(course=str(course), who=who)], cwd=ROOT,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    return proc, int(proc.stdout.readline())


def test_one_live_kernel_owns_the_servers_and_its_exit_stops_only_what_it_owns(tmp_path):
    course = tmp_path / "course"
    lab = Lab(course, log=lambda *_: None)
    me = config.Namespace("nb07", who="pytest")
    a, pid_a = kernel(course, "a")
    try:
        with pytest.raises(CourseError, match=f"another kernel \\(pid {a.pid}, learner a"):
            durability.take_over(lab, me, wait=0.5)           # a live kernel's servers are left alone
        assert durability.release(lab) == {} and durability.still_running(lab) == ["redis-nb07-a"]
    finally:
        a.stdin.close()
        a.wait(30)
    assert durability.still_running(lab) == [] and durability.owner(lab) is None   # its exit stopped them

    b, pid_b = kernel(course, "b")
    b.send_signal(signal.SIGKILL)                              # a kernel that dies: no exit hook runs
    b.wait(10)
    assert durability.still_running(lab) == ["redis-nb07-b"]
    assert durability.take_over(lab, me) == {"redis-nb07-b": pid_b}   # the next setup stops its leftovers
    assert durability.still_running(lab) == [] and durability.owner(lab)["learner"] == "pytest"
    durability.release(lab)

    c, pid_c = kernel(course, "c")
    mine = psutil.Process()                                    # a newer run takes over while c is exiting
    durability.owner_path(lab).write_text(json.dumps({"pid": mine.pid, "create_time": mine.create_time(),
                                                      "run": me.run_id, "learner": "pytest"}))
    theirs = lab.extra_redis("nb07-newer")
    c.stdin.close()
    c.wait(30)
    try:
        assert theirs.running and psutil.pid_exists(pid_c)    # c's exit hook stopped nothing it no longer owns
    finally:
        stopped = durability.release(lab)
    assert set(stopped) == {"redis-nb07-c", "redis-nb07-newer"} and durability.still_running(lab) == []
