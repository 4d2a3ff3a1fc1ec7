"""Notebook 07: durability under real crashes, asserted by count.

Redis: no persistence loses acknowledged writes after kill -9, AOF always loses none, RDB loses a tail.
Kafka: acks=all with RF 3 / min ISR 2 loses nothing when the partition leader is SIGKILLed under load;
two brokers down -> NotEnoughReplicasError refusals; an unclean election loses the lone leader's
acks=1 records while unclean off loses none; the ISR recovers. Every row: acknowledged = kept + lost.
Cleanup stops every server the notebook started, also after a cell in the middle failed (a broker
already killed), and the setup runs again after it. The learner's screen: prediction boxes compared
with the counts, a re-run control that crashes a fresh server, a live table during the leader kill,
and charts (the swimlane among them) in their offline form (inline SVG, no script) headless.

The notebook is executed once (fresh kernel, COURSE_QUICK=1) for the whole module, every cell but
the cleanup: the exercise checks need the cluster, and the last test runs the cleanup itself.
"""

import json

import psutil
import pytest
from conftest import notebook_path, plain, run_notebook, solution
from kafka.errors import NotEnoughReplicasError
from nbtext import assert_no_emoji, predictions_kept

pytestmark = pytest.mark.notebook

EVERYSEC_ONLY = """
def make_durable(r):
    import time
    r.config_set("appendonly", "yes")                         # AOF on, but appendfsync stays everysec
    while r.info("persistence")["aof_rewrite_in_progress"]:
        time.sleep(0.05)
"""

BROKER_DEFAULT_ISR = """
def create_durable_topic(admin, topic):
    admin.create_topics({topic: {"num_partitions": 1, "replication_factor": 3}})   # min ISR left to the broker
"""

@pytest.fixture(scope="module")
def nb(lab):
    cells = json.loads(notebook_path("07").read_text())["cells"]
    before_cleanup = [i for i, c in enumerate(cells)
                      if c["cell_type"] == "code" and "cleanup" not in c.get("metadata", {}).get("tags", [])]
    with run_notebook("07", execute=before_cleanup) as tb:
        yield tb


def notebook_processes(lab) -> list[psutil.Process]:
    """Live processes working in one of notebook 07's throwaway server dirs."""
    extra = str(lab.home / "extra")
    found = []
    for proc in psutil.process_iter(["pid"]):
        try:
            cwd = proc.cwd()
            if cwd.startswith(extra) and ("/kafka-nb07" in cwd or "/redis-nb07-" in cwd) \
                    and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except psutil.Error:
            continue
    return found


def test_every_row_acknowledged_is_kept_plus_lost(nb):
    table = plain(nb, 'measured["table"]')
    assert len(table) == 13
    for row in table:
        assert row["acknowledged"] == row["kept"] + row["lost"], row
        assert row["claim"] == ("C18" if row["system"].startswith("Redis") else "C19")
        assert row["status"] == ("OK" if row["lost"] == 0 else "FAILED")
    tallies = [*plain(nb, 'measured["redis"]').values(), *plain(nb, 'measured["rf1"]').values()]
    lk = plain(nb, 'measured["leader_kill"]')
    tallies += [lk["acks=1"], lk["acks=all"]]
    u = plain(nb, 'measured["unclean"]')
    tallies += [u["unclean=false"], u["unclean=true"]]
    for c in tallies:
        assert c["acknowledged"] == c["kept"] + c["lost"] == c["kept"] + len(c["lost_ids"]), c


def test_redis_no_persistence_loses_aof_always_keeps(nb):
    redis = plain(nb, 'measured["redis"]')
    none, always = redis["no persistence"], redis["AOF always"]
    assert none["acknowledged"] > 0 and none["lost"] == none["acknowledged"]       # a restart starts empty
    assert always["acknowledged"] > 0 and always["lost"] == 0                       # fsync before every answer
    rdb = redis["RDB save 1 1"]
    if rdb["lost"]:                                                                 # what is lost is the tail
        assert rdb["lost_ids"] == list(range(rdb["acknowledged"] - rdb["lost"], rdb["acknowledged"]))
    for c in redis.values():                                                        # cost measured in the same cell
        assert c["writes_per_s"] > 0 and c["p50_ms"] > 0


def test_kafka_acks_all_rf3_loses_nothing_when_the_leader_is_killed(nb):
    lk = plain(nb, 'measured["leader_kill"]')
    assert lk["new_leader"] in {1, 2, 3} - {lk["first_leader"]}
    assert lk["kill_at"] < lk["elected_at"] < lk["resumed_at"]["all"] + 5
    acks_all = lk["acks=all"]
    assert acks_all["acknowledged"] > 0 and acks_all["lost"] == 0 and acks_all["duplicated"] == 0
    assert lk["resumed_at"]["all"] > lk["kill_at"] and lk["resumed_at"]["1"] > lk["kill_at"]   # acks resumed


def test_two_brokers_down_refuse_with_not_enough_replicas(nb):
    t = plain(nb, 'measured["two_down"]')
    assert len(t["refusals"]) == 5 and set(t["refusals"]) == {NotEnoughReplicasError.__name__}
    assert t["survivor"] not in t["killed"]
    assert all(n > 0 for n in t["lone_acked"].values())           # acks=1 was still accepted by the lone leader
    assert all(n == 0 for n in t["visible_now"].values())         # ... but not readable while ISR < min ISR


def test_unclean_election_loses_what_only_the_dead_leader_had(nb):
    u = plain(nb, 'measured["unclean"]')
    off, on = u["unclean=false"], u["unclean=true"]
    assert u["offline_while_down"]["False"]["leader"] == -1      # waited for the last in-sync replica
    assert u["elected"] is not None and u["offline_while_down"]["True"]["leader"] in {1, 2, 3}
    assert off["acknowledged"] > 0 and off["lost"] == 0
    assert on["acknowledged"] > 0 and on["lost"] > 0


def test_isr_recovers_and_cluster_fits_in_memory(nb):
    assert all(sorted(isr) == [1, 2, 3] for isr in plain(nb, 'measured["isr_final"]').values())
    history = plain(nb, 'measured["isr_history"]')
    assert [len(h["ISR"]) for h in history][-1] == 3 and min(len(h["ISR"]) for h in history) <= 1
    cluster = plain(nb, 'measured["cluster"]')
    rss = cluster["rss_mb"]
    assert cluster["heap"] == "256m" and len(rss) == 4
    for rss in (cluster["rss_mb"], cluster["rss_mb_after"]):     # idle, and after the experiments' load
        assert all(0 < mb < 700 for mb in rss.values()) and sum(rss.values()) < 2048, rss


def test_rows_recorded_against_c18_c19(nb):
    from helpers import results

    df = results.load()
    mine = df[(df["notebook"] == "07") & (df["kind"] == "measurement")]
    assert len(mine) >= nb.value('measured["recorded"]') == 13
    assert set(mine["claim"]) == {"C18", "C19"}
    always = mine[mine["metric"].str.contains("AOF always")].iloc[-1]
    assert always["value"] == 0 and always["verdict"] == "confirmed"
    rf3 = mine[mine["metric"].str.contains("acks=all, RF 3") & mine["metric"].str.contains("partition leader")].iloc[-1]
    assert rf3["value"] == 0 and rf3["verdict"] == "confirmed"


def check_with(nb, code: str, check: str) -> tuple[str, str]:
    """Define ``code`` in the kernel, run the check cell ``check-<check>``; return (status, message)."""
    nb.inject(code, pop=True)
    nb.execute_cell(f"check-{check}")
    var = "check_" + check.replace("-", "_")
    return nb.value(f"{var}.status"), nb.value(f"{var}.message")


def test_exercises_stub_wrong_and_solution(nb):
    assert nb.value("check_durable_redis.status") == "not-attempted"
    assert nb.value("check_durable_topic.status") == "not-attempted"
    status, message = check_with(nb, EVERYSEC_ONLY, "durable-redis")
    assert status == "not-yet" and "appendfsync" in message
    assert check_with(nb, solution("07_durable_redis"), "durable-redis")[0] == "pass"
    status, message = check_with(nb, BROKER_DEFAULT_ISR, "durable-topic")
    assert status == "not-yet" and "min.insync.replicas" in message
    assert check_with(nb, solution("07_durable_topic"), "durable-topic")[0] == "pass"


def test_exercise_that_hangs_ends_as_time_limit_and_leaves_no_server(nb, lab):
    """Both checks call the learner's function through the harness: a function that never returns is
    stopped at the time limit (1 s here), the kernel stays usable, the check's own Redis is stopped."""
    before = len(notebook_processes(lab))
    nb.inject("import os\nos.environ['COURSE_CHECK_TIMEOUT'] = '1'", pop=True)
    try:
        for check, stub in (("durable-redis", "make_durable(r)"), ("durable-topic", "create_durable_topic(admin, topic)")):
            status, message = check_with(nb, f"def {stub}:\n    import time\n    while True:\n        time.sleep(1)\n",
                                         check)
            assert status == "time-limit" and "did not return within 1 s" in message, (check, status, message)
    finally:
        nb.inject("os.environ.pop('COURSE_CHECK_TIMEOUT')", pop=True)
    assert nb.value("sum(range(5))") == 10 and len(notebook_processes(lab)) == before


def outputs(nb, tag: str) -> list[dict]:
    return nb.cells[nb._cell_index(tag)]["outputs"]


def test_charts_are_offline_svg_and_the_swimlane_marks_the_kill(nb):
    """Headless, every chart is the renderer's static form: an inline SVG, no script, no widget; status
    marks are words (no emoji anywhere in the sources or outputs)."""
    assert_no_emoji(nb.nb)
    lk = plain(nb, 'measured["leader_kill"]')
    for tag in ("exp-redis-chart", "exp-swimlane"):
        (out,) = [o for o in outputs(nb, tag) if o["output_type"] == "execute_result"]
        assert set(out["data"]) == {"image/svg+xml", "text/plain"}, (tag, set(out["data"]))
        assert out["data"]["text/plain"].startswith("Chart: ")
        svg = out["data"]["image/svg+xml"]
        assert "<svg" in svg and "<script" not in svg and "http" not in svg.replace("http://www.w3.org", "")
    svg = next(o for o in outputs(nb, "exp-swimlane") if o["output_type"] == "execute_result")["data"]["image/svg+xml"]
    assert f"SIGKILL broker {lk['first_leader']}" in svg                        # the kill, marked
    for lane in ("producer acks=1", "producer acks=all", "controller"):
        assert lane in svg
    events = plain(nb, 'measured["swimlane"]')
    assert events["acknowledged"] > 0 and events["acks resume"] == 2 and events["leader elected"] >= 1


def test_live_view_prediction_rerun_and_kafka_topics_describe(nb):
    # the live table's last frame (nbclient applies the display updates): both producers, the new leader
    frames = [o["data"]["text/html"] for o in outputs(nb, "exp-leader-kill")
              if o["output_type"] == "display_data" and "waiting for an answer" in o["data"].get("text/html", "")]
    lk = plain(nb, 'measured["leader_kill"]')
    assert len(frames) == 1 and "acks=all" in frames[0] and f"broker {lk['new_leader']}" in frames[0]
    # no prediction headless; one set in code is compared with the count and kept with its outcome
    assert "NO PREDICTION" in nb.value("repr(compare_leader)")
    nb.inject("guess_leader.set(0)", pop=True)
    assert "AS PREDICTED" in nb.value("repr(widgets.compare(guess_leader, leader_kill['all']['lost']))")
    kept = predictions_kept("nb07-leader-kill-lost")
    assert (kept[-1]["value"], kept[-1]["measured"], kept[-1]["outcome"]) == (0, 0, "as predicted")
    assert "NO PREDICTION" in nb.value("repr(compare_redis)")
    assert nb.value("compare_redis.measured") == "no persistence and both RDB settings"
    # the re-run control showed section 1's run; a click crashes a fresh AOF-always server: nothing lost again
    assert nb.value("redis_rerun.value") == "RDB save 1 1" and nb.value("len(redis_rerun.history)") == 1
    again = plain(nb, 'redis_rerun.run("AOF always")[1].iloc[0].to_dict()')
    assert again["acknowledged"] > 0 and again["lost"] == 0 and again["kept"] == again["acknowledged"]
    # Kafka's own kafka-topics, pointed at the cluster, agrees: every 3-replica topic has its ISR back
    cli = plain(nb, 'measured["cli_describe"]')
    rf3 = plain(nb, "[*RF3.values(), *UNCLEAN.values()]")
    assert cli["ok"] and {t: cli["isr"].get(t) for t in rf3} == {t: [1, 2, 3] for t in rf3}, cli


def test_cleanup_stops_everything_also_after_a_failure_midway(nb, lab):
    assert len(notebook_processes(lab)) == 4, "the cluster should still be running before the cleanup cell"
    # a cell in the middle fails after it started a sacrificial Redis and killed a broker: the cleanup
    # cell must still stop all of it and delete the data
    with pytest.raises(Exception, match="a cell in the middle fails"):
        nb.inject("server = durability.fresh_redis(lab, 'AOF always')\nkc.kill(2)\n"
                  "raise RuntimeError('a cell in the middle fails')", pop=True)
    assert len(notebook_processes(lab)) == 4                      # brokers 1 and 3, the controller, one redis-server
    nb.execute_cell("cleanup")
    assert nb.value("left") == [] and notebook_processes(lab) == []
    assert not (lab.home / "extra" / "kafka-nb07").exists() and nb.value("durability.owner(lab) is None")
    # the setup runs again in the same kernel (a new run owns the notebook's servers), and so does the cleanup
    first_run = nb.value("ns.run_id")
    nb.execute_cell("setup")
    assert nb.value("ns.run_id") != first_run and nb.value("durability.owner(lab)['run']") == nb.value("ns.run_id")
    nb.execute_cell("cleanup")
    assert nb.value("left") == [] and notebook_processes(lab) == [] and nb.value("durability.owner(lab) is None")
