"""Notebook 02: Lists split work; a SIGKILLed BRPOP worker loses exactly the job it held; the
BLMOVE + ack + reaper pattern loses none and its duplicates are counted (after a kill, or taken from a
live worker slower than MAX_AGE); the MAX_AGE re-run control; swimlanes with the kills; redis-cli's
CLIENT LIST and LRANGE where an operator would look; predictions kept with their measured figures;
the exercises are checked.

The notebook is executed once (fresh kernel, COURSE_QUICK=1) for the whole module; the tests read
what it measured, exercise the checks, then re-run every cell in the same kernel.
"""

import json
import os
import re
import time

import pytest
from conftest import cleanup_then_rerun, module_notebook, notebook_path, plain, solution

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


@pytest.mark.parametrize("stall_where", ["after-work", "work"])
def test_outcome_reads_the_claim_a_killed_worker_held_not_earlier_claims_of_that_id(r, stall_where):
    """A reaper with a short MAX_AGE can hand a worker back the very job it has just finished and
    acked too late (``ack-late``). What a killed worker held is its LAST claim: done but unacked
    (``after-work``) or unfinished (``work``), whatever its earlier claims of the same id were (the
    count that made the notebook's 5 ms row show 0 crash duplicates). Real processes, real SIGKILL."""
    from helpers import config, queues, workers

    ns = config.namespace("nb02", run_id=f"reclaim-{stall_where}")
    K, url = queues.experiment_keys(ns, "reclaim"), config.redis_url()
    keys = {k: K[k] for k in ("queue", "processing", "claimed", "done", "log")}
    procs, reaper = {}, None
    try:
        # one worker whose job takes 0.8 s and a reaper that re-queues after 0.05 s: the job goes back
        # to the end BLMOVE takes from, and the same worker, acking late, claims it again
        reaper = workers.background(queues.reaper_loop, url, K["processing"], K["queue"], K["claimed"], K["log"],
                                    0.05, every=0.05, name="reaper")
        procs = queues.start_crew(r, "helpers.queues:blmove_worker",
                                  {"doomed": {"stall_at": 2, "stall_where": stall_where}},
                                  redis_url=url, stop_key=K["stop"], work_ms=800, **keys)
        produced = ["job-00000", "job-00001", "job-00002"]
        r.lpush(K["queue"], *produced)
        held = queues.wait_for_event(r, K["log"], "doomed", "done" if stall_where == "after-work" else "popped", nth=2)
        assert queues.sigkill(r, K["log"], procs["doomed"], "doomed") == -9
        reaper.stop()
        ev = queues.events(r, K["log"])
        mine = [(e["event"], e["job"]) for e in ev if e["worker"] == "doomed" and e["event"] != "ready"]
        # the set-up really happened: the job it was killed on was one it had finished and acked (late) before
        assert mine[:4] == [("popped", held), ("done", held), ("ack-late", held), ("popped", held)], mine
        queues.reap(r, K["processing"], K["queue"], K["claimed"], 0)   # its claim back on the queue
        procs["healthy"] = queues.start_crew(r, "helpers.queues:blmove_worker", {"healthy": {}}, redis_url=url,
                                             stop_key=K["stop"], work_ms=10, **keys)["healthy"]
        queues.drain(r, [K["queue"], K["processing"]], len(produced), timeout=30)
        r.set(K["stop"], 1)
        assert procs["healthy"].wait(10) == 0
        o = queues.outcome(r, produced, K["done"], K["log"], K["queue"], K["processing"], killed=("doomed",))
        assert o["lost"] == 0
        if stall_where == "after-work":   # ran by the doomed worker twice, then once after the kill
            assert o["runs_per_job"][held] == 3
            assert o["killed_done_unacked"] == o["duplicate_ids_crash"] == [held] and o["killed_unfinished"] == []
        else:                             # finished once (acked late), claimed again, killed mid-work
            assert o["runs_per_job"][held] == 2
            assert o["killed_unfinished"] == [held] and o["killed_done_unacked"] == o["duplicate_ids_crash"] == []
            assert held in o["duplicate_ids_live"]
    finally:
        if reaper is not None and reaper.running:
            reaper.stop()
        for p in procs.values():
            if p.alive:
                p.kill()
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


def test_cli_client_list_shows_only_the_live_workers(nb):
    seen = plain(nb, 'measured["cli_clients"]')
    assert seen["ok"] and seen["connected"] == ["healthy-1", "healthy-2"]   # the killed workers' connections are gone
    assert set(seen["cmd"].values()) <= {"brpop", "exists"}                  # waiting for the next job
    assert seen["queue_llen"] == 0
    explained = cell_output_text(nb, "cli-clients")
    assert "2 of 4 workers are connected" in explained and "doomed-mid" in explained


def test_reliable_cli_lrange_shows_the_dead_workers_jobs(nb):
    rel = plain(nb, 'measured["reliable"]')
    lines = rel["cli_lrange"].splitlines()      # redis-cli LRANGE processing 0 -1, right after the kills
    assert {rel["victim_mid"], rel["victim_after"]} <= set(lines) & set(rel["held_after_kill"])
    assert all(re.fullmatch(r"job-\d{5}", job) for job in lines)   # the rest: healthy workers' jobs in flight


def lanes_by(rows, lane="worker"):
    by = {}
    for row in rows:
        by.setdefault((row[lane], row["event"]), []).append(row)
    return by


def test_swimlanes_have_the_kills_and_each_lane(nb):
    b = plain(nb, 'measured["brpop"]')
    sw = plain(nb, 'measured["swimlane_brpop"]')
    by = lanes_by(sw["rows"])
    assert {row["worker"] for row in sw["rows"]} == {"healthy-1", "healthy-2", "doomed-mid", "doomed-after"}
    for w in ("doomed-mid", "doomed-after"):
        [kill] = by[(w, "SIGKILL")]
        assert len(by[(w, "popped")]) == nb.value("STALL_AT")                 # its 5 pops, all before the kill
        assert all(x["t"] <= kill["t"] for x in by[(w, "popped")] + by.get((w, "done"), []))
        assert (w, "stopped") not in by                                      # a killed worker never says goodbye
    assert [x["job"] for x in by[("doomed-mid", "popped")]][-1] == b["victim_mid"]
    for w in ("healthy-1", "healthy-2"):
        assert len(by[(w, "ready")]) == 1 and len(by[(w, "stopped")]) == 1
    drawn_pops = sum(len(v) for (w, e), v in by.items() if e == "popped")
    assert drawn_pops + sum(sw["routine"].values()) == b["produced"]      # every pop drawn or counted
    rel = plain(nb, 'measured["reliable"]')
    by = lanes_by(plain(nb, 'measured["swimlane_reliable"]["rows"]'))
    assert len(by[("doomed-mid", "SIGKILL")]) == len(by[("doomed-after", "SIGKILL")]) == 1
    assert sorted(x["job"] for x in by[("reaper", "requeued")]) == rel["requeued_ids"]
    redelivered = {x["job"]: x for w in ("healthy-1", "healthy-2") for x in by.get((w, "redelivered"), [])}
    assert {rel["victim_mid"], rel["victim_after"]} <= set(redelivered)
    requeued_t = {x["job"]: x["t"] for x in by[("reaper", "requeued")]}
    assert all(redelivered[j]["t"] >= requeued_t[j] for j in (rel["victim_mid"], rel["victim_after"]))


def test_swimlane_marks_mean_the_same_in_every_chart(nb):
    """One event, one colour and shape in all of the notebook's swimlanes; the cross is the kill's alone."""
    import pandas as pd

    from helpers import charts

    order = nb.value("EVENT_ORDER")
    specs = [charts.swimlane(pd.DataFrame(plain(nb, f'measured["{name}"]["rows"]')), order=order).to_dict()
             for name in ("swimlane_brpop", "swimlane_reliable")]
    marks = {}
    for spec in specs:
        point = next(layer for layer in spec["layer"] if layer["mark"]["type"] == "point"
                     and "shape" in layer["encoding"] and "field" in layer["encoding"]["shape"])
        color, shape = point["encoding"]["color"]["scale"], point["encoding"]["shape"]["scale"]
        assert "cross" not in shape["range"]
        for name, c, s in zip(color["domain"], color["range"], shape["range"], strict=True):
            assert marks.setdefault(name, (c, s)) == (c, s), name
    assert {"popped", "done", "ready", "stopped", "requeued", "redelivered"} <= set(marks)


def test_max_age_rerun_trades_recovery_time_for_duplicates(nb):
    rows = plain(nb, 'measured["max_age"]')
    assert [row["MAX_AGE (s)"] for row in rows] == [1.5, 0.005]
    slow_reaper, fast_reaper = rows
    assert slow_reaper["lost"] == fast_reaper["lost"] == 0
    assert slow_reaper["after a kill before the ack"] == fast_reaper["after a kill before the ack"] == 1
    assert slow_reaper["taken from a live worker"] == 0
    assert fast_reaper["taken from a live worker"] >= 1                       # live workers' jobs re-queued under them
    assert fast_reaper["acks that found their job gone"] >= 1
    after = "killed worker's job re-queued after (s)"
    # ... but a dead worker's job waits less. The reaper counts MAX_AGE from the claim (the pop), not from the
    # kill, which came some milliseconds after it: the slow reaper's wait is a little under 1.5 s after the kill.
    assert slow_reaper[after] >= 1.0 > fast_reaper[after]
    nb.inject("max_age_control.run(0.5); None", pop=True)
    third = plain(nb, "max_age_runs[-1]")
    assert third["MAX_AGE (s)"] == 0.5 and third["lost"] == 0 and third["after a kill before the ack"] == 1
    assert 0.35 <= third[after] < slow_reaper[after]                         # about MAX_AGE, counted from the pop
    table = plain(nb, "max_age_control.result[1].to_dict('records')")
    assert [row["MAX_AGE (s)"] for row in table] == [1.5, 0.005, 0.5]


def test_predictions_are_compared_and_kept(nb):
    from helpers import results

    for var, value in {"guess_copies": 4, "guess_lost": 0, "guess_dups": 1, "guess_max_age": 1}.items():
        nb.inject(f"{var}.set({value}); None", pop=True)
    for tag in ("compare-copies", "exp-brpop-explain", "exp-reliable-explain", "compare-max-age"):
        nb.execute_cell(tag)
    kept = results.predictions(notebook="02").set_index("key")
    b, rel = plain(nb, 'measured["brpop"]'), plain(nb, 'measured["reliable"]')
    assert kept.loc["nb02-pubsub-copies", "outcome"] == "as predicted" and kept.loc["nb02-pubsub-copies", "claim"] == "C04"
    assert kept.loc["nb02-brpop-lost", "measured"] == b["lost"] and kept.loc["nb02-brpop-lost", "outcome"] == "surprise"
    assert kept.loc["nb02-reliable-duplicates", "measured"] == rel["duplicates"]
    assert kept.loc["nb02-max-age-duplicates", "measured"] == plain(nb, 'measured["max_age"][1]["ran twice or more"]')
    assert os.environ["COURSE_RESULTS"] in nb.value("str(results.results_path())")


def test_prose_states_no_result_before_it_is_measured_and_no_emoji(nb):
    cells = json.loads(notebook_path("02").read_text())["cells"]
    markdown = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    for verdict in ("confirmed", "zero loss", "is not perfectly even", "cost nothing"):
        assert verdict not in markdown, verdict
    emoji = re.compile("[\U0001F300-\U0001FAFF\u2600-\u27BF\uFE0F\u2B50\u2705\u274C]")
    assert not emoji.findall(notebook_path("02").read_text())
    assert not emoji.findall(json.dumps([c.get("outputs", []) for c in nb.cells], ensure_ascii=False))


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
    assert [row["MAX_AGE (s)"] for row in plain(nb, 'measured["max_age"]')] == [1.5, 0.005]   # a fresh control
    assert nb.value("check_reaper.status") == "not-attempted"  # the stub cells ran again
    assert nb.value("check_idempotent.status") == "not-attempted"
    assert list(r.scan_iter(match=prefix + "*")) == []
    assert nb.value("workers.stop_all()") == 0  # no worker process or thread left running
