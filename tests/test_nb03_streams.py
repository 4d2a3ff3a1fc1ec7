"""Notebook 03: consumer groups split a stream and every group sees all of it; a SIGKILLed consumer's
pending entries are reclaimed with XAUTOCLAIM (each processed once or counted as a redelivery); a
poison entry is dead-lettered; a replay after trimming misses exactly the trimmed entries; RAM per
entry is measured; the exercises are checked.

The notebook is executed once (fresh kernel, COURSE_QUICK=1) for the whole module; the tests read
what it measured, exercise the checks, then re-run every cell in the same kernel.
"""

import pytest
from conftest import cleanup_then_rerun, module_notebook, plain, solution

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
    assert nb.value("check_drain.status") == "not-attempted"              # the stub cells ran again
    assert nb.value("check_dead_letter.status") == "not-attempted"
    assert list(r.scan_iter(match=prefix + "*")) == []
    assert nb.value("workers.stop_all()") == 0                            # nothing left running
