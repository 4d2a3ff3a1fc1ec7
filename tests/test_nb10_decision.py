"""Notebook 10's decision guide and ledger logic, as plain functions (no widgets, no servers), and the
notebook on the session's own results file.

Asserted: the tool chosen for several requirement sets; that the learner's measured C09 moves the
Redis/Kafka boundary; that every reason's figure is the ledger's (the record's) value and a reason
without one names the notebook to run; that the exercise's scenarios agree with the guide; the
verdict rules; that an empty results file gives 23 claims not yet measured and not one figure.
"""

from __future__ import annotations

import json
import platform

import pytest
from conftest import plain, run_notebook

from helpers import decision, ledger, results
from helpers.checks import nb10 as checks10
from helpers.decision import Requirements

HOST = platform.node()


def write(path, records) -> ledger.Ledger:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return ledger.build(path)


def rec(claim, metric, value, notebook, verdict=None, unit="x") -> dict:
    return {"kind": "measurement", "claim": claim, "metric": metric, "value": value, "unit": unit,
            "notebook": notebook, "verdict": verdict, "time": "2099-01-01T00:00:00+0000",
            "machine": {"host": HOST, "quick": False}}


C09 = "XADD/s on one Redis (redis-benchmark, 50 connections, pipeline 16)"


@pytest.mark.parametrize("req, choice", [
    (Requirements(independent_consumers=True), "pubsub"),
    (Requirements(), "lists"),
    (Requirements(per_message_ack=True, loss_ok=False), "streams"),
    (Requirements(retention="hours", independent_consumers=True), "streams"),
    (Requirements(retention="weeks", ops="kafka"), "kafka"),
    (Requirements(retention="weeks", per_message_ack=True, ops="kafka"), "kafka-share"),
    (Requirements(retention="weeks", latency_ms=2, ops="kafka"), "both"),
    (Requirements(loss_ok=False, ops="kafka"), "kafka"),
    (Requirements(loss_ok=False, ops="redis"), "streams"),
    (Requirements(throughput=5_000_000, ops="redis"), "kafka"),
])
def test_choices_for_requirement_sets(req, choice):
    assert decision.recommend(req).choice == choice


def test_the_measured_redis_throughput_moves_the_boundary(tmp_path):
    req = Requirements(throughput=50_000, per_message_ack=True)
    assert decision.recommend(req).choice == "kafka-share"          # the article's 10,000/s
    fast = write(tmp_path / "fast.jsonl", [rec("C09", C09, 120_000, "06", "confirmed", "ops/s")])
    assert decision.recommend(req, fast).choice == "streams"
    slow = write(tmp_path / "slow.jsonl", [rec("C09", C09, 20_000, "06", "confirmed", "ops/s")])
    rec_slow = decision.recommend(req, slow)
    assert rec_slow.choice == "kafka-share"
    assert "20,000" in rec_slow.reasons[0].statement and rec_slow.reasons[0].figure.value == 20_000


def test_reasons_cite_recorded_figures_or_the_notebook_to_run(tmp_path):
    path = tmp_path / "r.jsonl"
    book = write(path, [rec("C10", "RAM to retain one week at 1,000 events/s", 51.2, "03", "confirmed", "GiB"),
                        rec("C12", "records_still_readable_after_a_full_read", 600, "04", "confirmed")])
    lines = path.read_text().splitlines()
    r = decision.recommend(Requirements(retention="weeks", ops="redis"), book)
    assert r.choice == "kafka" and [c.claim for c in r.caveats] == [None]   # the operations caveat
    cited = r.reasons + r.caveats
    assert {x.claim for x in cited if x.measured} == {"C10", "C12"}
    for x in cited:
        if x.claim is None:
            assert x.figure is None and "the article's judgement" in x.text
        elif x.measured:
            assert json.loads(lines[x.figure.line - 1])["value"] == x.figure.value
            assert f"results line {x.figure.line}" in x.text
        else:
            assert x.figure is None and f"not measured yet — run notebook {x.notebook}" in x.text


def test_the_exercise_scenarios_agree_with_the_guide():
    for scenario, req, accepted, _ in checks10.SCENARIOS:
        assert decision.recommend(req).choice in accepted, scenario


def test_bad_requirements_are_refused():
    with pytest.raises(ValueError, match="retention"):
        Requirements(retention="forever")
    with pytest.raises(ValueError, match="ops"):
        Requirements(ops="cloud")


def test_verdict_rules(tmp_path):
    book = write(tmp_path / "v.jsonl", [
        rec("C01", "a", 0, "01", "confirmed"), rec("C01", "b", 0, "02", "confirmed"),
        rec("C02", "a", 0.2, "01", "confirmed"), rec("C02", "b", 1.4, "06", "refuted"),
        rec("C03", "a", 1, "01", "inconclusive"),
        rec("C04", "a", 1, "01"),
        rec("C05", "a", 1, "01", "confirmed"), rec("C05", "a", 0, "01", "refuted"),   # newest wins
    ])
    v = book.verdicts
    assert v["C01"] == ("confirmed", "")
    assert v["C02"][0] == "depends" and "confirmed by a (01: 0.2 x)" in v["C02"][1] and "refuted by b (06" in v["C02"][1]
    assert v["C03"][0] == "inconclusive" and v["C04"][0] == ledger.NO_VERDICT
    assert v["C05"][0] == "refuted" and [f.value for f in book.by_claim["C05"]] == [0]
    assert v["C06"] == (ledger.NOT_MEASURED, "")


def test_an_empty_results_file_shows_no_figure(tmp_path):
    book = ledger.build(tmp_path / "none.jsonl")
    assert book.figures == [] and book.not_measured == list(results.CLAIMS)
    assert all(row["measured here"].startswith("not yet measured: run notebook") for row in book.claims_rows())


@pytest.mark.notebook
def test_notebook_runs_on_the_sessions_results_file():
    """Notebook 10 on whatever this test session recorded: the claims it names as not measured are exactly
    those without a measurement record in that file."""
    path = results.results_path()
    with run_notebook("10") as tb:
        m = plain(tb, "measured")
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
    measured_claims = {r["claim"] for r in rows if r.get("kind") == "measurement"}
    assert m["not_measured"] == [c for c in results.CLAIMS if c not in measured_claims]
    assert m["cleanup"]["server state changed"] is False


def test_every_literal_record_of_the_course_is_in_the_claims_map():
    """Each ``results.record("Cxx", "<metric>", ...)`` written out in a course notebook maps to an experiment
    (metrics built at run time, f-strings, are matched by the map's patterns and by the notebook tests)."""
    import re
    from pathlib import Path

    from helpers import claims_map

    found = []
    for path in sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        source = "\n".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"])
        for claim, metric in re.findall(r'results\.record\(\s*"(C\d\d)",\s*"((?:[^"\\]|\\.)+)"', source):
            found.append((claim, path.name[:2], metric.replace('\\"', '"')))
    assert len(found) > 20
    unmapped = [f for f in found if claims_map.find(*f) is None]
    assert unmapped == []
    assert {e.claim for e in claims_map.EXPERIMENTS} == set(results.CLAIMS)


def test_each_reason_is_badged_by_its_own_figure(tmp_path):
    """A reason whose figure is missing reads NOT YET MEASURED even when its claim has another figure
    (the browser showed CONFIRMED beside 'not measured yet' once); the article's own judgement reads ARTICLE."""
    from helpers import decision_view

    book = write(tmp_path / "b.jsonl", [rec("C14", "groups_that_read_every_record", 3, "05", "confirmed")])
    text = repr(decision_view.explain(Requirements(retention="weeks", independent_consumers=True), book))
    line = {key: next(x for x in text.splitlines() if key in x)
            for key in ("earliest retained record", "each read every record", "managed Kafka")}
    assert "[NOT YET MEASURED]" in line["earliest retained record"] and "not measured yet" in line["earliest retained record"]
    assert "[CONFIRMED]" in line["each read every record"] and "you measured 3 x" in line["each read every record"]
    assert "[ARTICLE]" in line["managed Kafka"]


def test_the_live_form_builds_and_answers_a_change(monkeypatch):
    """The form's ipywidgets are built as in JupyterLab (a bad widget option raised only there once)."""
    from helpers import decision_view

    monkeypatch.setenv("COURSE_DISPLAY", "interactive")
    guide = decision_view.guide(None, per_message_ack=True)
    guide._ipython_display_()
    assert guide._out is not None and guide.result.rec.choice == "streams"
    assert guide.set(retention="weeks").rec.choice == "kafka-share"
    assert guide.set(per_message_ack=False).rec.choice == "kafka"


def test_a_recorded_depends_shows_what_it_hinged_on(tmp_path):
    record = rec("C17", "Redis Stream (XADD / XREADGROUP) end-to-end latency p50, open loop at 500/s", 0.5582, "06",
                 "depends", "ms")
    record["details"] = {"p90": 1.1275, "p99": 2.985, "lost": 0, "note": "text is not a figure"}
    book = write(tmp_path / "d.jsonl", [record])
    word, condition = book.verdicts["C17"]
    assert word == "depends" and "(06: 0.5582 ms, with p90 1.1275, p99 2.985, lost 0)" in condition
