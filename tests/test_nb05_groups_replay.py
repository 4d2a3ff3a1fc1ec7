"""Notebook 05: a group splits partitions, independent groups each read every record, a SIGKILLed
consumer process redelivers (commit after processing) or loses (commit before), and every replay
reads exactly the records it should. Both exercises: stub -> not attempted, solution -> pass,
a wrong answer -> not yet. Run All a second time in the same kernel is green and cleans up."""

import pytest
from conftest import run_notebook, solution

pytestmark = pytest.mark.notebook


def leftovers(r, admin, tb) -> dict:
    """What of this run's namespace is still on the servers (should be nothing after cleanup)."""
    prefix, kprefix = tb.value("ns.prefix"), tb.value("ns.kafka_prefix")
    groups = [g["group_id"] for g in admin.list_groups()]
    return {"keys": list(r.scan_iter(match=prefix + "*")),
            "topics": [t for t in admin.list_topics() if t.startswith(kprefix)],
            "groups": [g for g in groups if g.startswith(kprefix)]}


def assert_measured(m: dict) -> None:
    # 1. one group splits 3 partitions: the 4th member is idle; 3 members read 30 records each
    split = m["split"]
    assert len(split["idle_with_4_members"]) == 1, split
    assert split["counts"] == {"c2": 30, "c3": 30, "c4": 30}, split
    assert split["total_read"] == split["distinct"] == 90, split

    # 2. every independent group read every produced record, whatever its speed (C14)
    ind = m["independent"]
    assert ind["produced"] > 0
    assert ind["distinct"] == {g: ind["produced"] for g in ("analytics", "search-indexer", "alerting")}, ind
    assert ind["max_lag"]["alerting"] > ind["max_lag"]["analytics"], ind  # the slow group really lagged

    # 3. a real SIGKILL mid-batch: commit-after redelivers and loses nothing; commit-before loses (C22)
    after, before = m["crash"]["commit-after"], m["crash"]["commit-before"]
    for out in (after, before):
        assert out["returncode"] == -9, out
        assert out["reassigned_s"] is not None and 4.0 < out["reassigned_s"] < 20.0, out  # ~session timeout
        assert out["resumed_s"] is not None and out["resumed_s"] >= out["reassigned_s"], out
    assert after["redelivered"] > 0 and after["lost"] == 0, after
    assert after["redelivered"] == after["processed_before_kill"], after  # exactly the uncommitted work
    assert before["lost"] > 0 and before["redelivered"] == 0, before
    assert before["lost"] + before["processed_before_kill"] == before["batch_len"], before  # rest of batch
    assert before["processed"] == before["produced"] - before["lost"], before
    pauses = m["pauses"]
    leave = pauses["leave, close() (c1)"]
    assert leave < after["reassigned_s"], pauses  # a clean leave rebalances faster than a crash

    # 4. every replay reads exactly what it should
    rep = m["replay"]
    assert rep["from_beginning"] == rep["produced"] > 0, rep
    assert 0 < rep["expected_since_T"] < rep["produced"], rep
    assert rep["since_T"] == rep["expected_since_T"] and rep["earliest_timestamp_read"], rep
    assert rep["reset_while_active"] != ["NoError"], rep  # the broker refuses while members are active
    assert rep["reset_when_empty"] == ["NoError"], rep
    assert rep["billing_first_pass"] == rep["billing_after_reset"] == rep["produced"], rep
    later = m["months_later"]
    assert later["read"] == later["retained"] < rep["produced"], later
    assert later["first_offset_read"] == later["log_start"], later  # the earliest RETAINED offset
    assert any(v > 0 for v in later["log_start"].values()), later
    assert later["committed"] == later["end"], later


def run_all_but_cleanup(tb) -> None:
    """Run every code cell again in the SAME kernel, in order, stopping before the cleanup cell."""
    for index, cell in enumerate(tb.cells):
        if "cleanup" in cell.get("metadata", {}).get("tags", []):
            return
        if cell.cell_type == "code":
            tb.execute_cell(index)


def test_nb05_groups_crash_replay_exercises_rerun(lab, r, kafka_admin, ref_value):
    with run_notebook("05") as tb:
        # a fresh kernel ran every cell, cleanup included
        assert_measured(ref_value(tb, "measured"))
        assert tb.value("check_rebuild.status") == "not-attempted"
        assert tb.value("check_start_at.status") == "not-attempted"
        assert leftovers(r, kafka_admin, tb) == {"keys": [], "topics": [], "groups": []}

        # Run All again in the same kernel: a new namespace, the same counted outcomes
        first_prefix = tb.value("ns.prefix")
        run_all_but_cleanup(tb)
        assert tb.value("ns.prefix") != first_prefix
        assert_measured(ref_value(tb, "measured"))
        assert tb.value("check_rebuild.status") == "not-attempted"
        assert tb.value("check_start_at.status") == "not-attempted"

        # exercises: the solutions pass, wrong answers do not
        tb.inject(solution("05_rebuild"), pop=True)
        tb.execute_cell("check-rebuild")
        assert tb.value("check_rebuild.status") == "pass", tb.value("str(check_rebuild)")
        tb.inject(solution("05_start_at"), pop=True)
        tb.execute_cell("check-start-at")
        assert tb.value("check_start_at.status") == "pass", tb.value("str(check_start_at)")
        wrong_rebuild = ("lambda topic: {k: v + (k == min(rebuild_counts(topic))) "
                         "for k, v in rebuild_counts(topic).items()}")     # one key off by one
        assert tb.value(f"checks05.rebuild_counts({wrong_rebuild}, admin, producer, ns).status") == "not-yet"
        wrong_start = "lambda topic, group_id, ts_ms: clients.kafka_consumer(topic, group_id=group_id)"
        assert tb.value(f"checks05.start_group_at({wrong_start}, admin, ORDERS, ns.group('wrong'), "
                        "REFUNDS_T, orders_truth).status") == "not-yet"  # reads from the beginning

        # cleanup removes this run's topics, groups and keys (and the first run's were already gone)
        tb.execute_cell("cleanup")
        assert leftovers(r, kafka_admin, tb) == {"keys": [], "topics": [], "groups": []}
