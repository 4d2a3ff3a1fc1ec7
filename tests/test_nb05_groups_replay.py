"""Notebook 05: who computes a group's assignment and what moves under range vs cooperative-sticky,
independent groups each read every record, a SIGKILLed consumer process redelivers (commit after
processing) or loses (commit before), and every replay reads exactly the records it should, with
Kafka's own kafka-consumer-groups tool for the lag and the offset reset. Both exercises: stub -> not
attempted, solution -> pass, a wrong answer -> not yet. Run All a second time in the same kernel is
green and cleans up; with predictions made, each is recorded beside the figure it predicted.

Issue 7 items guarded here: the leader client's computed assignment equals what the broker reports
and what each member holds; partitions moved by range vs cooperative-sticky are counted and the
generated sentences carry those counts; the heartbeat ratio sentence is computed from the settings.
Issue 8 items: the predictions are recorded with the measurement; the re-run control runs the
assignment experiment with another partition/consumer count; the swimlane data has the kill, the
rebalance and the redelivery; the CLI's --describe shows the lag the admin API reports, --dry-run
changes nothing and --execute moves the offsets.
"""

import json
import os
from pathlib import Path

import pytest
from conftest import run_notebook, solution

pytestmark = pytest.mark.notebook

#: what the test predicts before each experiment of the second run (quick sizes)
PREDICTIONS = {"guess_idle": 0, "guess_moved": 1, "guess_alerting": 300, "guess_redelivered": 6,
               "guess_lost": 4, "guess_since": 100, "guess_first": "0"}


def leftovers(r, admin, tb) -> dict:
    """What of this run's namespace is still on the servers (should be nothing after cleanup)."""
    prefix, kprefix = tb.value("ns.prefix"), tb.value("ns.kafka_prefix")
    groups = [g["group_id"] for g in admin.list_groups()]
    return {"keys": list(r.scan_iter(match=prefix + "*")),
            "topics": [t for t in admin.list_topics() if t.startswith(kprefix)],
            "groups": [g for g in groups if g.startswith(kprefix)]}


def owners(assignment: dict) -> dict:
    return {p: m for m, parts in assignment.items() for p in parts}


def moved(steps: list[dict], assignor: str, step: str) -> list[int]:
    """Partitions whose owner changed in ``step``, recomputed here from the broker's tables."""
    mine = [s for s in steps if s["assignor"] == assignor]
    i = [s["step"] for s in mine].index(step)
    before, after = owners(mine[i - 1]["broker"]), owners(mine[i]["broker"])
    return sorted(int(p) for p in after if p in before and before[p] != after[p])


def assert_assignment(a: dict) -> None:
    """Section 1 with 3 partitions and 4 consumers (c1 joins; c2, c3 join; c4 joins; c1 leaves)."""
    steps, table = a["steps"], {(row["step"], row["assignor"]): row for row in a["table"]}
    assert [s["step"] for s in steps if s["assignor"] == "range"] == ["c1 joins", "c2, c3 join", "c4 joins",
                                                                      "c1 leaves"]
    for s in steps:  # a consumer computed each assignment; the broker and every member hold exactly that
        assert s["leader"] in s["broker"], s
        assert s["leader_computed"] == s["broker"] == s["members_hold"], s
        assert all(mid.startswith(member + "-") for member, mid in s["member_ids"].items()), s
    for assignor in ("range", "cooperative-sticky"):
        assert table[("c4 joins", assignor)]["idle"] == "c4"
    assert a["newcomer_partitions"] == 0
    # c1 leaves: range deals partitions over the members sorted by member id, so every one moves;
    # cooperative-sticky moves only c1's own partition
    assert moved(steps, "range", "c1 leaves") == [0, 1, 2]
    assert moved(steps, "cooperative-sticky", "c1 leaves") == [0]
    for assignor, n in (("range", 3), ("cooperative-sticky", 1)):
        assert table[("c1 leaves", assignor)]["moved"] == n, table[("c1 leaves", assignor)]
        assert table[("c1 leaves", assignor)]["max pause moved (s)"] is not None
    # c4 joins: nothing moves, yet eager range revokes all 3 partitions; cooperative revokes none
    assert moved(steps, "range", "c4 joins") == moved(steps, "cooperative-sticky", "c4 joins") == []
    assert table[("c4 joins", "range")]["revoked"] == 3 and table[("c4 joins", "cooperative-sticky")]["revoked"] == 0
    # the sentences carry the counted figures
    story = a["story"]
    assert "range moved 3 of 3 partitions" in story and "cooperative-sticky, 1 of 3 moved" in story, story
    assert "range moved 0 partitions yet revoked 3" in story and "(cooperative-sticky revoked 0)" in story, story
    assert "**c4** had nothing to read" in story and "in 8 of 8 steps" in story, story
    leaders = ", ".join(s["leader"] for s in steps if s["assignor"] == "range")
    assert f"step by step: {leaders})" in story, story
    # whatever moved, each group read every record the producer wrote
    assert a["produced"] > 0 and a["read"] == {"range": a["produced"], "cooperative-sticky": a["produced"]}, a


def assert_measured(m: dict) -> None:
    assert_assignment(m["assignment"])
    assert m["broker"]["group.min.session.timeout.ms"] == "6000"

    hb = m["heartbeat"]  # 1 s is a sixth of 6 s, written from the two settings
    assert hb["ratio"] == hb["session_s"] / hb["heartbeat_s"] == 6
    assert "a heartbeat every 1 s is **1/6 of the 6 s session timeout**" in hb["sentence"], hb

    # 2. every independent group read every produced record, whatever its speed (C14)
    ind = m["independent"]
    assert ind["produced"] > 0 and ind["samples"] > 3
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
    assert pauses["leave, close() (c1)"] < after["reassigned_s"], pauses  # a clean leave is faster than a crash

    # the swimlane: one lane per consumer, the kill, the rebalance after it, the redelivery
    lanes = m["swimlane"]
    assert set(lanes["counts"]) == {"after: victim", "after: survivor", "before: victim", "before: survivor"}
    assert set(lanes["kills"]) == {"after: victim", "before: victim"}
    for label in ("after", "before"):
        victim = lanes["counts"][f"{label}: victim"]
        assert victim["stalled"] == 1 and victim["polled"] >= 3 and victim["processed"] >= 2, victim
        assert victim["committed"] >= 2, victim
        victim_partition = m["crash"][f"commit-{label}"]["victim_partition"]
        got = [detail.removeprefix("partitions ").split(", ") for detail in lanes["survivor_assigned_after_kill"][label]]
        assert any(str(victim_partition) in parts for parts in got), lanes  # the rebalance after the kill
    assert lanes["counts"]["after: survivor"].get("redelivered", 0) == after["redelivered"], lanes
    assert "redelivered" not in lanes["counts"]["before: survivor"], lanes

    # 4. every replay reads exactly what it should
    rep = m["replay"]
    assert rep["from_beginning"] == rep["produced"] > 0, rep
    assert 0 < rep["expected_since_T"] < rep["produced"], rep
    assert rep["since_T"] == rep["expected_since_T"] and rep["earliest_timestamp_read"], rep
    assert rep["reset_while_active"] != ["NoError"], rep  # the broker refuses while members are active
    assert rep["billing_first_pass"] == rep["billing_after_reset"] == rep["produced"], rep
    cli = m["cli"]  # Kafka's own tool: the dry run changes nothing, --execute does, --describe shows the lag
    assert cli["dry_run_ok"] and cli["executed_ok"], cli
    assert cli["dry_run_offsets"] == rep["starts_at_T"], cli  # --to-datetime == offsets_for_times
    assert cli["committed_after_dry_run"] == cli["committed_before"] != cli["dry_run_offsets"], cli
    assert cli["committed_after_execute"] == cli["earliest"], cli
    assert cli["describe_lag"] == cli["admin_lag"] and sum(cli["admin_lag"].values()) == rep["produced"], cli
    later = m["months_later"]
    assert later["read"] == later["retained"] < rep["produced"], later
    assert later["first_offset_read"] == later["log_start"], later  # the earliest RETAINED offset
    assert any(v > 0 for v in later["log_start"].values()), later
    assert later["committed"] == later["end"], later


def predictions_kept(notebook: str) -> list[dict]:
    """The newest prediction record per key in the results file the kernel wrote (``COURSE_RESULTS``)."""
    path = Path(os.environ["COURSE_RESULTS"])
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
    newest = {row["key"]: row for row in rows if row.get("kind") == "prediction" and row["notebook"] == notebook}
    return list(newest.values())


def run_all_but_cleanup(tb, predictions: dict | None = None) -> None:
    """Run every code cell again in the SAME kernel, in order, stopping before the cleanup cell; with
    ``predictions`` ({variable: value}), save each prediction as soon as its box exists."""
    for index, cell in enumerate(tb.cells):
        if "cleanup" in cell.get("metadata", {}).get("tags", []):
            return
        if cell.cell_type == "code":
            tb.execute_cell(index)
            if predictions and "widgets.predict(" in cell.source:
                tb.inject(f"for _n, _v in {predictions!r}.items():\n"
                          "    if _n in globals() and globals()[_n].value is None:\n"
                          "        globals()[_n].set(_v)", pop=True)


def test_nb05_groups_crash_replay_exercises_rerun(lab, r, kafka_admin, ref_value):
    with run_notebook("05") as tb:
        # a fresh kernel ran every cell, cleanup included
        assert_measured(ref_value(tb, "measured"))
        assert tb.value("check_rebuild.status") == "not-attempted"
        assert tb.value("check_start_at.status") == "not-attempted"
        assert leftovers(r, kafka_admin, tb) == {"keys": [], "topics": [], "groups": []}
        assert predictions_kept("05") == []  # headless: nobody predicted

        # Run All again in the same kernel, this time with a prediction before each experiment
        first_prefix = tb.value("ns.prefix")
        run_all_but_cleanup(tb, PREDICTIONS)
        assert tb.value("ns.prefix") != first_prefix
        m = ref_value(tb, "measured")
        assert_measured(m)
        assert tb.value("check_rebuild.status") == "not-attempted"
        assert tb.value("check_start_at.status") == "not-attempted"
        kept = {row["key"]: row for row in predictions_kept("05")}
        expected = {"nb05-idle": (0, m["assignment"]["newcomer_partitions"], "C13"),
                    "nb05-moved-range": (1, 3, None),
                    "nb05-alerting": (300, m["independent"]["distinct"]["alerting"], "C14"),
                    "nb05-redelivered": (6, m["crash"]["commit-after"]["redelivered"], "C22"),
                    "nb05-lost": (4, m["crash"]["commit-before"]["lost"], "C22"),
                    "nb05-since-T": (100, m["replay"]["since_T"], "C12"),
                    "nb05-first-offset": ("0", "the earliest retained offset", "C14")}
        assert set(kept) == set(expected), kept
        for key, (value, measured, claim) in expected.items():
            assert (kept[key]["value"], kept[key]["measured"], kept[key]["claim"]) == (value, measured, claim), kept[key]
        assert kept["nb05-idle"]["outcome"] == "as predicted" and kept["nb05-moved-range"]["outcome"] == "surprise"
        assert kept["nb05-first-offset"]["outcome"] == "surprise"

        # the re-run control: another partition/consumer count, a new run with its own counts
        tb.inject("assignment.run('4 partitions, 3 consumers')", pop=True)
        other = ref_value(tb, "[len(assignment.history), assignment.value, rebalance.analyse(runs[-1])"
                              ".to_dict('records'), runs[-1].partitions, runs[-1].steps]")
        history, value, rows, partitions, steps = other
        assert (history, value, partitions) == (2, "4 partitions, 3 consumers", 4)
        row = {(x["step"], x["assignor"]): x for x in rows}
        assert all(x["idle"] == "none" for x in rows), rows  # fewer consumers than partitions
        assert [x["step"] for x in rows if x["assignor"] == "range"] == ["c1 joins", "c2 joins", "c3 joins", "c1 leaves"]
        assert row[("c1 leaves", "range")]["moved"] == len(moved(steps, "range", "c1 leaves")) == 3, rows
        c1_had = [s["broker"]["c1"] for s in steps if s["assignor"] == "cooperative-sticky" and s["step"] == "c3 joins"][0]
        assert moved(steps, "cooperative-sticky", "c1 leaves") == sorted(c1_had), steps  # only c1's own

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
