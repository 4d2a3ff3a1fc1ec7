"""Issue 7, a shared name: a run never deletes the names of another live run under the same learner
name; cleanup of previous runs deletes only DEAD runs' keys, topics and groups (helpers.runs).

- Two runs of notebook 02 under one learner name at once, the second one's setup (which cleans up
  "previous runs") running while the first is about to count its crash experiment from its keys:
  both count exactly what they did.
- The namespace API: another live process's keys and topics survive a cleanup of previous runs; a
  dead (exited) run's and a retired (same kernel, Run All again) run's names do not.
"""

import json
import os
import subprocess
import sys
import threading
import time

import pytest
from nbrun import NotebookRun, in_thread

from helpers import clients, config, groups


def exact_nb02_counts(m: dict) -> None:
    d, b, rel = m["distribution"], m["brpop"], m["reliable"]
    assert d["handled"] == d["produced"] and d["twice"] == [] and d["skipped"] == []
    assert b["lost"] == 1 == len(b["lost_ids"]) and b["lost_ids"] == b["killed_unfinished"] == [b["victim_mid"]]
    assert b["still_queued"] == 0 and b["duplicates"] == 0
    assert rel["lost"] == 0 and rel["still_queued"] == 0 and rel["duplicates"] >= 1


@pytest.mark.notebook
def test_two_runs_of_notebook_02_under_one_learner_name(lab, r):
    """The second run's setup (which cleans up "previous runs") runs while the first run has just
    finished its crash experiment and is about to count its outcome from the keys it wrote."""
    env = {"COURSE_LEARNER": "twin"}
    results, go, setup_done = {}, threading.Event(), threading.Event()

    def first() -> None:
        with NotebookRun("02", env=env) as run:
            outcome = run.index("exp-reliable-outcome")

            def before(index, cell):
                if index == outcome:
                    go.set()
                    setup_done.wait(120)

            results["first"] = run.run_all(before)
            results["first:measured"] = run.value("measured") if results["first"] else str(run.error)[-800:]

    def second() -> None:
        with NotebookRun("02", env=env) as run:
            run.execute("import pandas, tqdm.auto; from helpers import clients, config, queues, results, workers")
            go.wait(120)
            setup = run.index("setup")
            ok = run.run_cells(0, setup + 1)
            setup_done.set()
            results["second"] = ok and run.run_cells(setup + 1)
            results["second:measured"] = run.value("measured") if results["second"] else str(run.error)[-800:]

    threads = [in_thread(first), in_thread(second)]
    for thread in threads:
        thread.join(300)
    assert results.get("first") and results.get("second"), results
    exact_nb02_counts(results["first:measured"])
    exact_nb02_counts(results["second:measured"])
    assert list(r.scan_iter(match="streamslab:twin:nb02:*")) == []


# --- the namespace API --------------------------------------------------------------------------
OTHER_RUN = """
import sys
from helpers import clients, config, groups
ns = config.namespace("nbshared")
clients.require_redis().set(ns.key("mine"), 1)
groups.create_topic(clients.require_kafka(), ns.topic("mine"), 1)
print(ns.run_id, flush=True)
sys.stdin.read()   # stays alive (its heartbeat running) until the test closes stdin
"""


def test_cleanup_spares_live_runs_and_removes_dead_and_retired_ones(r, kafka_admin, monkeypatch):
    learner = f"sharer-{os.getpid()}-{int(time.time())}"  # no leftovers of an earlier test run
    monkeypatch.setenv("COURSE_LEARNER", learner)
    other = subprocess.Popen([sys.executable, "-c", OTHER_RUN], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True, cwd=config.PROJECT_ROOT)
    try:
        other_run = other.stdout.readline().strip()
        assert other_run, "the other run did not start"
        old = config.namespace("nbshared")
        r.set(old.key("k"), 1)
        ns = config.namespace("nbshared")  # Run All again in this process: `old` is retired
        r.set(ns.key("k"), 1)
        groups.create_topic(kafka_admin, ns.topic("t"), 1)
        assert r.exists(f"streamslab:_live:{learner}:nbshared:{other_run}")

        removed = clients.cleanup_redis(r, ns, previous_runs=True)
        assert removed == 2  # this run's key and the retired run's key
        assert r.get(f"streamslab:{learner}:nbshared:{other_run}:mine") == "1"  # the live run's key stays
        assert clients.cleanup_kafka(kafka_admin, ns, previous_runs=True)["topics"] == 1
        assert f"streamslab.{learner}.nbshared.{other_run}.mine" in kafka_admin.list_topics()

        other.stdin.close()  # the other run ends (its heartbeat key is removed at exit)
        other.wait(20)
        assert clients.cleanup_redis(r, ns, previous_runs=True) == 1
        assert clients.cleanup_kafka(kafka_admin, ns, previous_runs=True)["topics"] == 1
        assert [t for t in kafka_admin.list_topics() if t.startswith(f"streamslab.{learner}.")] == []
        assert json.loads(r.get(f"streamslab:_live:{learner}:nbshared:{ns.run_id}"))["pid"] == os.getpid()
    finally:
        if other.poll() is None:
            other.kill()
