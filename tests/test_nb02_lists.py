"""Notebook 02: Lists split work; a SIGKILLed BRPOP worker loses exactly the job it held; the
BLMOVE + ack + reaper pattern loses none and its duplicates are counted; the exercises are checked.

The notebook is executed once (fresh kernel, COURSE_QUICK=1) for the whole module; the tests read
what it measured, exercise the checks, then re-run every cell in the same kernel.
"""

import json
import time

import pytest
from conftest import cleanup_then_rerun, module_notebook, plain, solution

pytestmark = pytest.mark.notebook

WRONG_REAPER = """
def reap(r, processing_key, queue_key, claimed_key, max_age):
    jobs = r.lrange(processing_key, 0, -1)      # ignores the claim time: steals live workers' jobs
    for job in jobs:
        r.lrem(processing_key, 1, job)
        r.rpush(queue_key, job)
    return jobs
"""

NAIVE_HANDLER = """
def handle_payment(r, job, balance_key, processed_key):
    r.incrby(balance_key, job["amount"])       # counts a redelivered payment twice
"""


def cell_output_text(tb, tag):
    cell = next(c for c in tb.cells if tag in c.metadata.get("tags", []))
    return json.dumps([o.get("data", o.get("text", "")) for o in cell.outputs])


def test_course_reaper_passes_the_exercise_check_and_recovers_unstamped_jobs(r):
    from helpers import config, queues
    from helpers.checks import nb02

    ns = config.namespace("nb02", run_id="helpertest")
    try:
        assert nb02.reaper(queues.reap, r, ns).status == "pass"
        # a worker killed between BLMOVE and HSET leaves a job with no claim time: stamped, then reaped
        keys = queues.experiment_keys(ns, "unstamped")
        r.rpush(keys["processing"], "job-x")
        assert queues.reap(r, keys["processing"], keys["queue"], keys["claimed"], 0.2) == []
        assert r.hexists(keys["claimed"], "job-x")
        time.sleep(0.3)
        assert queues.reap(r, keys["processing"], keys["queue"], keys["claimed"], 0.2) == ["job-x"]
        assert r.lrange(keys["queue"], 0, -1) == ["job-x"] and r.llen(keys["processing"]) == 0
        # nothing hangs: waiting for an event that never comes ends in a TimeoutError
        t0 = time.monotonic()
        with pytest.raises(TimeoutError):
            queues.wait_for_event(r, keys["log"], "nobody", "popped", timeout=0.3)
        assert time.monotonic() - t0 < 2
    finally:
        keys_left = list(r.scan_iter(match=ns.prefix + "*"))
        if keys_left:
            r.unlink(*keys_left)


nb = module_notebook("02")


def test_list_workers_share_jobs_pubsub_copies(nb):
    d = plain(nb, 'measured["distribution"]')
    produced = d["produced"]
    assert d["handled"] == produced and d["twice"] == [] and d["skipped"] == [] and d["overlap"] == 0
    assert len(d["per_worker"]) == 4 and all(n > 0 for n in d["per_worker"].values()), d["per_worker"]
    assert sum(d["per_worker"].values()) == produced
    # the contrast: every subscriber got every message
    assert all(n == produced for n in d["pubsub_per_subscriber"].values()), d["pubsub_per_subscriber"]
    assert d["pubsub_copies_per_message"] == 4


def test_brpop_crash_loses_exactly_the_popped_unfinished_job(nb):
    b = plain(nb, 'measured["brpop"]')
    assert b["returncodes"] == {"doomed-mid": -9, "doomed-after": -9}
    assert nb.value('crew2["doomed-mid"].returncode') == -9 and nb.value('crew2["doomed-after"].returncode') == -9
    assert b["exits"] == {"healthy-1": 0, "healthy-2": 0}
    assert b["lost"] > 0
    # lost = produced - completed - still queued, and those are the ids the killed workers popped unfinished
    assert b["lost"] == b["produced"] - b["completed"] - b["still_queued"] == len(b["lost_ids"])
    assert b["still_queued"] == 0
    assert b["lost_ids"] == b["killed_unfinished"] == [b["victim_mid"]]
    assert b["victim_after"] not in b["lost_ids"]  # killed after finishing: nothing lost
    assert b["duplicates"] == 0 and b["requeued_ids"] == []
    explained = cell_output_text(nb, "exp-brpop-explain")
    assert f"Lost: {b['lost']} job(s)" in explained and all(j in explained for j in b["lost_ids"])


def test_reliable_pattern_loses_nothing_and_counts_duplicates(nb):
    rel = plain(nb, 'measured["reliable"]')
    produced = plain(nb, "produced3")
    runs = plain(nb, 'reliable["runs_per_job"]')
    assert rel["returncodes"] == {"doomed-mid": -9, "doomed-after": -9}
    assert nb.value('crew3["doomed-mid"].returncode') == -9 and nb.value('crew3["doomed-after"].returncode') == -9
    assert rel["exits"] == {"healthy-1": 0, "healthy-2": 0}
    # the dead workers' jobs were still held in the processing list right after the kills
    assert {rel["victim_mid"], rel["victim_after"]} <= set(rel["held_after_kill"])
    assert rel["lost"] == 0 and rel["lost_ids"] == [] and rel["still_queued"] == 0
    assert rel["completed_ids"] == sorted(produced) and set(runs) == set(produced)  # every id at least once
    assert {rel["victim_mid"], rel["victim_after"]} <= set(rel["requeued_ids"])
    # duplicates are counted from the real run counts, and the engineered one is among them
    assert rel["duplicates"] == sum(n - 1 for n in runs.values()) >= 1
    assert rel["duplicate_ids"] == sorted(j for j, n in runs.items() if n > 1)
    assert rel["victim_after"] in rel["duplicate_ids"] and runs[rel["victim_after"]] == 2
    assert rel["killed_done_unacked"] == [rel["victim_after"]]
    assert rel["killed_unfinished"] == [rel["victim_mid"]] and runs[rel["victim_mid"]] >= 1
    # every duplicate is named in the notebook's explanation
    explained = cell_output_text(nb, "exp-reliable-explain")
    assert f"Duplicates: {rel['duplicates']}" in explained
    assert all(j in explained for j in rel["duplicate_ids"])


def test_exercises_stub_wrong_and_solution(nb, r):
    assert nb.value("check_reaper.status") == "not-attempted"
    assert nb.value("check_idempotent.status") == "not-attempted"
    nb.inject(WRONG_REAPER, pop=True)
    nb.execute_cell("check-reaper")
    assert nb.value("check_reaper.status") == "not-yet"
    nb.inject(solution("02_reaper"), pop=True)
    nb.execute_cell("check-reaper")
    assert nb.value("check_reaper.status") == "pass", nb.value("str(check_reaper)")
    nb.inject(NAIVE_HANDLER, pop=True)
    nb.execute_cell("check-idempotent")
    assert nb.value("check_idempotent.status") == "not-yet"
    assert "counted twice" in nb.value("check_idempotent.message")
    nb.inject(solution("02_idempotent"), pop=True)
    nb.execute_cell("check-idempotent")
    assert nb.value("check_idempotent.status") == "pass", nb.value("str(check_idempotent)")
    # the checks delete the state they built
    assert list(r.scan_iter(match=nb.value("ns.prefix") + "check-*")) == []


def test_cleanup_and_rerun_in_same_kernel(nb, r):
    prefix = cleanup_then_rerun(nb, r)
    assert plain(nb, 'measured["brpop"]["lost"]') > 0
    assert plain(nb, 'measured["reliable"]["lost"]') == 0
    assert plain(nb, 'measured["reliable"]["duplicates"]') >= 1
    assert nb.value("check_reaper.status") == "not-attempted"  # the stub cells ran again
    assert nb.value("check_idempotent.status") == "not-attempted"
    assert list(r.scan_iter(match=prefix + "*")) == []
    assert nb.value("workers.stop_all()") == 0  # no worker process or thread left running
