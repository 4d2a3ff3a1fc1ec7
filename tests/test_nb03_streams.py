"""Notebook 03: consumer groups split a stream and every group sees all of it; a SIGKILLed consumer's
pending entries are reclaimed with XAUTOCLAIM (each processed once or counted as a redelivery); a
slow but LIVE consumer's entry is claimed after min-idle and processed twice, and the min-idle
re-run control changes what is claimed; a live view of XPENDING per consumer, a swimlane of the
crash with the SIGKILL, redis-cli's XINFO / XPENDING right after the crash, predictions kept with
their measured figures; a poison entry is dead-lettered; a replay after trimming (exact and `~`)
misses exactly the trimmed entries; RAM per entry is measured; the exercises are checked.

The notebook is executed once (fresh kernel, COURSE_QUICK=1) for the whole module; the tests read
what it measured, exercise the checks, then re-run every cell in the same kernel.
"""

import json
import os
import re

import pytest
from conftest import cleanup_then_rerun, module_notebook, notebook_path, plain, solution

pytestmark = pytest.mark.notebook

ONE_SHOT_DRAIN = """
def drain_pending(r, stream, group, consumer, min_idle_ms):
    cursor, entries, _ = r.xautoclaim(stream, group, consumer, min_idle_ms, "0-0")   # no loop: 100 at most
    for entry_id, _ in entries:
        r.xack(stream, group, entry_id)
    return [entry_id for entry_id, _ in entries]
"""

CLAIMING_DEAD_LETTER = """
def dead_letter(r, stream, group, dlq, max_deliveries):
    moved = []
    _, entries, _ = r.xautoclaim(stream, group, "inspector", 0, "0-0")   # a delivery for every entry!
    for p in r.xpending_range(stream, group, "-", "+", 100):
        if p["times_delivered"] >= max_deliveries:
            fields = r.xrange(stream, p["message_id"], p["message_id"])[0][1]
            r.xadd(dlq, {**fields, "original_id": p["message_id"]})
            r.xack(stream, group, p["message_id"])
            moved.append(p["message_id"])
    return moved
"""


def id_key(entry_id):
    ms, seq = entry_id.split("-")
    return int(ms), int(seq)


nb = module_notebook("03")


def cell_text(tb, tag):
    cell = next(c for c in tb.cells if tag in c.metadata.get("tags", []))
    return json.dumps([o.get("data", o.get("text", "")) for o in cell.outputs])


def cell_has_chart(tb, tag):
    cell = next(c for c in tb.cells if tag in c.metadata.get("tags", []))
    return any("image/svg+xml" in o.get("data", {}) for o in cell.outputs)


def test_ids_are_time_based_and_increasing(nb):
    ids = plain(nb, 'measured["ids"]')
    assert ids["increasing"] and ids["ids"] == sorted(ids["ids"], key=id_key)
    assert all(int(i.split("-")[0]) > 1_600_000_000_000 for i in ids["ids"])   # milliseconds since 1970
    assert ids["rejected"] and "smaller" in ids["rejected"]
    assert ids["xread_after"] == ids["ids"][4:]
    assert ids["block_empty"] and 0.25 <= ids["blocked_s"] < 2


def test_one_group_splits_two_groups_each_see_all(nb):
    s = plain(nb, 'measured["split"]')
    produced = set(s["produced"])
    billing = [s["by_consumer"][n] for n in ("billing-1", "billing-2", "billing-3")]
    assert len(produced) == len(s["produced"]) > 0
    assert all(len(b) > 0 for b in billing), [len(b) for b in billing]
    assert all(len(b) == len(set(b)) for b in billing)                      # nobody got an entry twice
    sets = [set(b) for b in billing]
    assert all(not (a & b) for i, a in enumerate(sets) for b in sets[i + 1:])   # disjoint
    assert sum(len(b) for b in billing) == len(produced)
    assert set().union(*sets) == produced                                    # complete
    assert s["overlap"] == 0 and s["billing_missing"] == []
    analytics = s["by_consumer"]["analytics-1"]
    assert sorted(analytics, key=id_key) == sorted(produced, key=id_key)    # the other group: everything
    assert s["analytics_missing"] == []


def test_crash_before_xack_reclaimed_once_or_counted(nb):
    c = plain(nb, 'measured["crash"]')
    assert c["returncode"] == -9 and nb.value("doomed.returncode") == -9
    held = c["doomed_read"]
    assert len(held) == 8 and c["doomed_handled"] == held[:3]
    # pending right after the crash == the entries the dead consumer read == what XAUTOCLAIM took
    assert c["pending_before"] == held == c["claimed"]
    assert c["too_fresh"] == 0
    assert c["pending_after"] == 0
    # every entry processed: exactly once, or more and counted as a redelivery
    assert set(c["runs"]) == set(c["produced"])
    assert set(c["healthy"]).isdisjoint(held) and set(c["healthy"]) | set(held) == set(c["produced"])
    for entry_id, runs in c["runs"].items():
        assert runs == 1 or (runs == 2 and c["redeliveries"].get(entry_id) == 1), (entry_id, runs)
    assert c["twice"] == c["doomed_handled"]
    assert c["redeliveries"] == {e: 1 for e in held}


def markdown_of(name: str) -> str:
    return "\n".join("".join(c["source"]) for c in json.loads(notebook_path(name).read_text())["cells"]
                     if c["cell_type"] == "markdown")


def test_no_sentence_says_xautoclaim_leaves_a_live_consumer_alone():
    """Issue 7: XAUTOCLAIM looks only at idle time; the prose must not promise it spares live consumers,
    and no static sentence states a verdict (the observed sentences are generated)."""
    text = markdown_of("03")
    assert "a live consumer's entries are left alone" not in text
    assert "idle time alone" in text or "Idle time is all it looks at" in text
    assert "Nothing was lost" not in text and "confirmed" not in text


def test_slow_live_consumer_entry_is_claimed_and_processed_twice(nb):
    race = plain(nb, "race_runs[0]")
    slow = race["slow_entry"]
    assert race["min_idle_ms"] == nb.value("MIN_IDLE_MS") == 500
    assert slow is not None and race["claimed_from"]["slow"] == [slow]      # taken from a consumer still alive
    assert race["runs"][slow] == 2                                          # processed by slow AND the rescuer
    assert race["slow_deliveries_at_claim"] == 2                            # XAUTOCLAIM counted a redelivery
    assert race["slow_ack"] == 0                # slow's late XACK found it already acknowledged by the rescuer
    assert len(race["claimed_from"]["dead"]) == 3 and race["claimed_from"]["fast"] == []
    dead_first = [e for e, n in race["runs"].items() if n == 2 and e != slow]
    assert len(dead_first) == 1 and sorted(race["twice"]) == sorted([slow, *dead_first])
    assert race["pending_after"] == 0 and race["never_processed"] == [] and len(race["runs"]) == race["entries"]
    observed = cell_text(nb, "compare-slow")
    assert f"processed **{race['runs'][slow]} time(s)**" in observed and "returned 0" in observed


def test_min_idle_rerun_changes_what_is_claimed(nb):
    assert plain(nb, "[h[0] for h in min_idle_control.history]") == [500]
    nb.inject("min_idle_control.run(3000); None", pop=True)
    runs = plain(nb, "race_runs")
    assert [r["min_idle_ms"] for r in runs] == [500, 3000]
    long = runs[1]
    slow = long["slow_entry"]
    assert long["claimed_from"]["slow"] == [] and long["runs"][slow] == 1   # slow finished (1.5 s) before 3 s idle
    assert long["slow_ack"] == 1 and long["slow_deliveries_at_claim"] is None
    assert len(long["claimed_from"]["dead"]) == 3                           # the dead one's entries still recovered
    assert long["dead_recovered_after_s"] >= 2.5 > runs[0]["dead_recovered_after_s"]   # ... but later
    assert long["pending_after"] == 0 and long["never_processed"] == []
    table = plain(nb, "min_idle_control.result[1].to_dict('records')")     # what the control shows: both runs
    assert [row["min-idle (ms)"] for row in table] == [500, 3000]
    assert [row["claimed from slow (alive)"] for row in table] == [1, 0]
    assert plain(nb, "min_idle_control.value") == 3000


def test_live_view_redrew_pending_per_consumer(nb):
    live = plain(nb, 'measured["live_view"]')
    assert live["frames"] >= 3
    seen = live["max_pending_seen"]
    assert seen.get("dead") == 3 and seen.get("slow") == 1                  # what XPENDING showed while it ran
    final = plain(nb, 'streams.pending_view(r, live_stream["key"], "workers").to_dict("records")')
    assert {row["consumer"] for row in final} == {"dead", "slow", "fast", "rescuer"}
    assert all(row["pending"] == 0 for row in final)


def test_swimlane_of_the_crash_has_the_kill_and_every_lane(nb):
    rows = plain(nb, 'measured["swimlane_crash"]["rows"]')
    c = plain(nb, 'measured["crash"]')
    kills = [row for row in rows if row["event"] == "SIGKILL"]
    assert [row["consumer"] for row in kills] == ["doomed"]
    kill_t = kills[0]["t"]
    by = {}
    for row in rows:
        by.setdefault((row["consumer"], row["event"]), []).append(row)
    assert {row["consumer"] for row in rows} == {"doomed", "healthy", "rescuer"}
    assert sorted(x["job"] for x in by[("doomed", "read")]) == sorted(c["doomed_read"])
    assert len(by[("doomed", "processed")]) == 3
    assert all(x["t"] <= kill_t for x in by[("doomed", "read")] + by[("doomed", "processed")])
    assert sorted(x["job"] for x in by[("rescuer", "claimed")]) == sorted(c["claimed"])
    assert all(x["t"] >= kill_t and x["deliveries"] == "2" for x in by[("rescuer", "claimed")])
    assert len(by[("rescuer", "ack")]) == 8 and len(by[("healthy", "ack")]) == len(c["healthy"])
    assert cell_has_chart(nb, "swimlane-crash")


def test_redis_cli_shows_the_pending_entries_after_the_crash(nb):
    out = plain(nb, 'measured["cli"]')
    c = plain(nb, 'measured["crash"]')
    assert all(v["ok"] for v in out.values()), out
    summary = out["XPENDING (summary)"]["output"].split()
    assert summary[0] == "8" and summary[1] == c["pending_before"][0] and summary[2] == c["pending_before"][-1]
    assert summary[3:] == ["doomed", "8"]
    extended = out["XPENDING (extended)"]["output"].split()
    assert [extended[i] for i in range(0, len(extended), 4)] == c["pending_before"]
    assert set(extended[1::4]) == {"doomed"} and set(extended[3::4]) == {"1"}
    consumers = out["XINFO CONSUMERS"]["output"].split()
    assert consumers[consumers.index("doomed") + 1: consumers.index("doomed") + 3] == ["pending", "8"]
    groups = out["XINFO GROUPS"]["output"].split()
    assert groups[groups.index("pending") + 1] == "8"


def test_predictions_are_compared_and_kept(nb):
    from helpers import results

    for var, value in {"guess_pending": 8, "guess_twice": 1, "guess_slow": 1, "guess_analytics": 100}.items():
        nb.inject(f"{var}.set({value}); None", pop=True)
    for tag in ("compare-groups", "compare-crash", "compare-slow"):
        nb.execute_cell(tag)
    kept = results.predictions(notebook="03").set_index("key")
    assert kept.loc["nb03-pending", "measured"] == 8 and kept.loc["nb03-pending", "outcome"] == "as predicted"
    assert kept.loc["nb03-twice", "measured"] == 3 and kept.loc["nb03-twice", "outcome"] == "surprise"
    assert kept.loc["nb03-slow-entry-runs", "measured"] == 2 and kept.loc["nb03-slow-entry-runs", "claim"] == "C07"
    assert kept.loc["nb03-analytics-share", "outcome"] == "as predicted"
    assert os.environ["COURSE_RESULTS"] in nb.value("str(results.results_path())")
    # every experiment has a prediction box before it and a comparison after it
    cells = json.loads(notebook_path("03").read_text())["cells"]
    keys = [re.search(r'widgets\.predict\(\s*"([\w-]+)"', "".join(c["source"])).group(1)
            for c in cells if any(t.startswith("predict-") for t in c.get("metadata", {}).get("tags", []))]
    assert len(keys) == 8, keys
    compared = [m for c in cells for m in re.findall(r"widgets\.compare\((guess_\w+)", "".join(c["source"]))]
    assert len(compared) == len(keys)


def test_no_emoji_in_the_notebook_or_its_outputs(nb):
    emoji = re.compile("[\U0001F300-\U0001FAFF\u2600-\u27BF\uFE0F\u2B50\u2705\u274C]")
    source = notebook_path("03").read_text()
    assert not emoji.findall(source)
    outputs = json.dumps([c.get("outputs", []) for c in nb.cells], ensure_ascii=False)
    assert not emoji.findall(outputs)


def test_poison_entry_dead_lettered_after_max_deliveries(nb):
    p = plain(nb, 'measured["poison"]')
    max_deliveries = nb.value("MAX_DELIVERIES")
    assert p["dlq_original_ids"] == [p["poison_id"]]
    assert p["dlq_deliveries"] == [max_deliveries]
    assert p["attempts"][p["poison_id"]] == max_deliveries
    assert all(n == 1 for e, n in p["attempts"].items() if e != p["poison_id"])
    assert p["pending_after"] == 0 and p["ledger_total"] == 80


def test_replay_then_trim_misses_exactly_the_trimmed(nb):
    t = plain(nb, 'measured["replay"]')
    produced = t["produced"]
    assert t["replay_before"] == produced                                  # a new group from 0: everything
    trimmed = t["trimmed_maxlen"] + t["trimmed_minid"]
    assert t["trimmed_maxlen"] > 0 and t["trimmed_minid"] > 0
    assert len(t["missing"]) == trimmed == len(produced) - len(t["replay_after"])
    assert t["missing"] == produced[:trimmed]                              # the oldest ones, by id
    assert t["replay_after"] == produced[trimmed:]
    assert t["xrange_missing"] == 0 and t["replay_after"][0] == t["cut"]
    # XADD ... MAXLEN ~ n keeps at least n entries, trimming only whole nodes (so usually more)
    assert t["approx_cap"] <= t["approx_len"] < t["approx_adds"]


def test_memory_per_entry_measured_and_recorded(nb):
    m = plain(nb, 'measured["memory"]')
    assert m["bytes_per_entry"] > 0
    assert m["bytes_per_entry"] >= m["payload_bytes"]                       # the payload is stored as is
    sizes = [row["MEMORY USAGE key (bytes)"] for row in m["growth"]]
    assert sizes == sorted(sizes) and len(sizes) >= 3
    assert m["week_bytes"] == pytest.approx(m["bytes_per_entry"] * 1000 * 7 * 24 * 3600)
    from helpers import results

    rec = results.latest("C20", "redis_stream_bytes_per_entry")
    assert rec is not None and rec["notebook"] == "03"
    assert rec["value"] == pytest.approx(m["bytes_per_entry"], abs=0.1)
    assert rec["details"]["payload_bytes"] == m["payload_bytes"]


def test_exercises_stub_wrong_and_solution(nb, r):
    assert nb.value("check_drain.status") == "not-attempted"
    assert nb.value("check_dead_letter.status") == "not-attempted"
    nb.inject(ONE_SHOT_DRAIN, pop=True)
    nb.execute_cell("check-drain")
    assert nb.value("check_drain.status") == "not-yet"
    assert "still pending" in nb.value("check_drain.message")
    nb.inject(solution("03_drain"), pop=True)
    nb.execute_cell("check-drain")
    assert nb.value("check_drain.status") == "pass", nb.value("str(check_drain)")
    nb.inject(CLAIMING_DEAD_LETTER, pop=True)
    nb.execute_cell("check-dead-letter")
    assert nb.value("check_dead_letter.status") == "not-yet"
    nb.inject(solution("03_dead_letter"), pop=True)
    nb.execute_cell("check-dead-letter")
    assert nb.value("check_dead_letter.status") == "pass", nb.value("str(check_dead_letter)")
    assert list(r.scan_iter(match=nb.value("ns.prefix") + "check-*")) == []   # the checks clean up


def test_cleanup_and_rerun_in_same_kernel(nb, r):
    prefix = cleanup_then_rerun(nb, r)
    c = plain(nb, 'measured["crash"]')
    assert c["pending_before"] == c["claimed"] and c["pending_after"] == 0
    t = plain(nb, 'measured["replay"]')
    assert len(t["missing"]) == t["trimmed_maxlen"] + t["trimmed_minid"] > 0
    race = plain(nb, "race_runs[0]")                                      # a fresh control after Run All
    assert race["runs"][race["slow_entry"]] == 2 and plain(nb, "len(race_runs)") == 1
    assert nb.value("check_drain.status") == "not-attempted"              # the stub cells ran again
    assert nb.value("check_dead_letter.status") == "not-attempted"
    assert list(r.scan_iter(match=prefix + "*")) == []
    assert nb.value("workers.stop_all()") == 0                            # nothing left running
