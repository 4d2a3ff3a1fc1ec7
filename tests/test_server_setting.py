"""Issue 7, a server-wide setting on a shared server (notebook 01 lowers
``client-output-buffer-limit pubsub``): it is changed under a lock that keeps the ORIGINAL value,
never re-reads it while lowered, and is repaired by the next run after a crash.

- A kernel SIGKILLed mid-flood, then a new run at once (within the dead lock's lifetime): the server
  ends at its original value and the new run's cleanup cell says so truthfully.
- Three learners at once, two of them running their setup while the first has the setting lowered
  (its kernel is frozen with SIGSTOP there): the server ends at its original value.
Both on a throwaway Redis (``scratch_course``), so a failure cannot leave the course's server lowered.
"""

import os
import signal
import threading

import pytest
from nbrun import NotebookRun, in_thread

from helpers import pubsub
from helpers.workers import wait_until

LIMIT = "client-output-buffer-limit"
LOWERED = "pubsub 262144 65536 1"
# parallel-safe: the setting changed here is the throwaway Redis's (`scratch_course`, one per
# xdist worker), so no other test sees it
WARM = "import altair, pandas, redis, tqdm.auto; from helpers import charts, clients, config, pubsub, results"


@pytest.fixture(scope="module")
def scratch_limit(scratch_course) -> str:
    """The scratch Redis's own client-output-buffer-limit, before any test here changed it."""
    return scratch_course.redis.client().config_get(LIMIT)[LIMIT]


@pytest.fixture
def pristine(scratch_course, scratch_limit):
    """Each test starts from the server's own setting and no lock (whatever a failed test left)."""
    r = scratch_course.redis.client()
    r.config_set(LIMIT, scratch_limit)
    r.delete(pubsub.LIMIT_LOCK, pubsub.LIMIT_STASH)
    return r


def lowered(r) -> bool:
    return pubsub.pubsub_class(r.config_get(LIMIT)[LIMIT]) == LOWERED


@pytest.mark.notebook
def test_kernel_killed_mid_flood_then_a_new_run_restores_the_original(scratch_course, pristine):
    r = pristine
    original = r.config_get(LIMIT)[LIMIT]
    env = {"COURSE_DIR": str(scratch_course.home), "COURSE_LEARNER": "crashing"}
    runs = {}

    def first() -> None:  # a kernel is driven from one thread only
        with NotebookRun("01", env=env) as run:
            runs["first"] = run
            run.run_all()

    flooding = in_thread(first)
    wait_until(lambda: lowered(r), 90, "the flood to lower the setting", every=0.002)
    os.kill(runs["first"].pid, signal.SIGKILL)
    assert lowered(r), "the kernel was not killed mid-flood (the setting was already restored)"
    flooding.join(30)
    assert lowered(r) and r.exists(pubsub.LIMIT_LOCK)  # the crash left it lowered, the lock not yet expired

    def second() -> None:
        with NotebookRun("01", env=env) as run:
            runs["second"] = run.run_all() and (run.value('measured["limit_restored"]'),
                                                run.value('measured["c05"]["limit_during"]'))
            runs["second:error"] = run.error

    in_thread(second).join(180)
    assert runs.get("second") == (True, LOWERED), runs.get("second:error")
    assert r.config_get(LIMIT)[LIMIT] == original
    assert not r.exists(pubsub.LIMIT_LOCK) and not r.exists(pubsub.LIMIT_STASH)


@pytest.mark.notebook
def test_three_learners_at_once_leave_the_original_value(scratch_course, pristine):
    r = pristine
    original = r.config_get(LIMIT)[LIMIT]
    runs, done, go = {}, {}, threading.Event()

    def learner(name: str) -> None:
        env = {"COURSE_DIR": str(scratch_course.home), "COURSE_LEARNER": name}
        with NotebookRun("01", env=env) as run:
            run.execute(WARM)
            runs[name] = run
            if name != "ada":
                go.wait(120)
            done[name] = run.run_all()
            done[name + ":during"] = run.value('measured["c05"]["limit_during"]') if done[name] else run.error

    threads = {name: in_thread(learner, name) for name in ("ada", "bob", "cyd")}
    wait_until(lambda: "ada" in runs and lowered(r), 90, "ada's flood to lower the setting", every=0.002)
    os.kill(runs["ada"].pid, signal.SIGSTOP)  # ada's kernel stays frozen mid-flood ...
    try:
        go.set()  # ... while bob and cyd run their setup cells
        wait_until(lambda: all(runs[n].ended.get(runs[n].index("setup")) for n in ("bob", "cyd")), 60,
                   "bob's and cyd's setup cells")
    finally:
        os.kill(runs["ada"].pid, signal.SIGCONT)
    for thread in threads.values():
        thread.join(240)
    assert all(done.get(n) for n in ("ada", "bob", "cyd")), done
    assert [done[n + ":during"] for n in ("ada", "bob", "cyd")] == [LOWERED] * 3  # each took its turn
    assert r.config_get(LIMIT)[LIMIT] == original
    assert not r.exists(pubsub.LIMIT_LOCK) and not r.exists(pubsub.LIMIT_STASH)
