"""Notebook 10's claims ledger, run against a synthetic results file with some claims missing.

The notebook runs once (COURSE_QUICK=1, through tests/nbrun.py) with ``COURSE_RESULTS`` pointing at a
file written here: records for 15 claims, none for the 8 in MISSING, a superseded figure, a quick-mode
figure, one from another machine, one 90 days old, a disagreement, a list value, a None value, a record
whose metric is not in the course map, an unreadable line and a compared prediction. Asserted: the
ledger names exactly MISSING as not yet measured (in the notebook and in both exports); every figure it
shows (and exports) is the newest record of its metric, value equal to the record at the line it cites;
the superseded value appears nowhere; the marks; the verdicts; the exercise check; Run All again.
"""

from __future__ import annotations

import csv
import json
import platform
from datetime import datetime, timedelta, timezone

import pytest
from nbrun import NotebookRun
from nbtext import assert_no_emoji

from helpers import claims_map, results

pytestmark = pytest.mark.notebook

MISSING = ["C04", "C05", "C10", "C11", "C13", "C15", "C17", "C21"]
SUPERSEDED = 424242          # an older value of C03's metric: the ledger must never show it
HOST = platform.node()
NOW = datetime.now(timezone.utc)


def stamp(days_ago: float = 0.0) -> str:
    return (NOW - timedelta(days=days_ago)).strftime("%Y-%m-%dT%H:%M:%S%z")


def rec(claim, metric, value, unit, notebook, verdict=None, *, host=HOST, quick=False, days_ago=0.01) -> dict:
    return {"kind": "measurement", "claim": claim, "claim_text": results.CLAIMS[claim], "metric": metric,
            "value": value, "unit": unit, "notebook": notebook, "verdict": verdict, "details": {},
            "time": stamp(days_ago), "machine": {"host": host, "quick": quick, "cpus": 2}}


RECORDS = [
    rec("C01", "receivers of a message published with no subscriber", 0, "clients", "01", "confirmed"),
    rec("C02", "Pub/Sub publish-to-receive latency p50", 0.1834, "ms", "01", "confirmed"),
    rec("C02", "Redis Pub/Sub end-to-end latency p50, open loop at 500/s", 1.3377, "ms", "06", "refuted", quick=True),
    rec("C03", "messages missed during a disconnect window", SUPERSEDED, "messages", "01", "confirmed", days_ago=2),
    rec("C03", "messages missed during a disconnect window", 37, "messages", "01", "confirmed"),
    rec("C06", "jobs lost when a BRPOP worker was SIGKILLed mid-job", 3, "jobs", "02", "confirmed"),
    rec("C06", "jobs lost with BLMOVE + processing list + LREM ack + reaper (same SIGKILLs)", 0, "jobs", "02"),
    rec("C07", "entries a SIGKILLed consumer held, reclaimed with XAUTOCLAIM", 5, "entries", "03", "confirmed",
        host="another-laptop"),
    rec("C08", "billing consumers' share of the stream (3 consumers, one group)", [34, 33, 33], "entries", "03"),
    rec("C09", "XADD/s on one Redis (redis-benchmark, 50 connections, pipeline 16)", 61234, "ops/s", "06",
        "confirmed", days_ago=90),
    rec("C12", "records_still_readable_after_a_full_read", 600, "records", "04", "confirmed"),
    rec("C14", "groups_that_read_every_record", 3, "groups", "05", "confirmed"),
    rec("C16", "Kafka producer records/s, one partition, acks=all (best of Java / confluent-kafka)", 187654,
        "records/s", "06", "confirmed"),
    rec("C18", "acknowledged writes lost: Redis (1 server), AOF always, kill -9 of the server, restart", 0,
        "writes", "07", "confirmed"),
    rec("C19", "acknowledged writes lost: Kafka, 3 brokers, acks=all, RF 3, min ISR 2, kill -9 of the partition "
               "leader", 0, "writes", "07", "confirmed"),
    rec("C20", "broker_rss_growth_vs_redis_used_memory_growth", None, "ratio", "04", "inconclusive"),
    rec("C22", "redelivered_after_sigkill", 12, "records", "05", "confirmed"),
    rec("C22", "a metric no notebook of the course records", 1, "records", "99"),
    rec("C23", "view_equal_after_rebuild_by_replay", 1, "equal (1) or not (0)", "09", "confirmed"),
]
PREDICTION = {"kind": "prediction", "key": "nb01-missed", "claim": "C03", "metric": None, "value": 20,
              "unit": "messages", "notebook": "01", "question": "How many?", "measured": 37, "outcome": "close",
              "time": stamp(0.01)}


def write_results(path) -> None:
    lines = [json.dumps(r) for r in RECORDS[:5]] + ["{not json"] + [json.dumps(r) for r in RECORDS[5:]]
    lines.append(json.dumps(PREDICTION))
    path.write_text("\n".join(lines) + "\n")


def records_by_line(path) -> dict[int, dict]:
    out = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        try:
            out[number] = json.loads(line)
        except ValueError:
            pass
    return out


@pytest.fixture(scope="module")
def run10(tmp_path_factory):
    folder = tmp_path_factory.mktemp("nb10-results")
    path = folder / "results.jsonl"
    write_results(path)
    with NotebookRun("10", env={"COURSE_RESULTS": str(path), "COURSE_QUICK": "1"}) as run:
        ok = run.run_all()
        assert ok, (run.failed_index, run.error)
        yield run, path


def test_the_synthetic_file_covers_every_claim_but_missing():
    assert sorted(set(results.CLAIMS) - {r["claim"] for r in RECORDS}) == MISSING


def test_ledger_names_exactly_the_missing_claims_as_not_yet_measured(run10):
    run, path = run10
    m = run.value("measured")
    assert m["not_measured"] == MISSING
    assert {c for c, v in m["verdicts"].items() if v == "NOT YET MEASURED"} == set(MISSING)
    rows = list(csv.DictReader(open(m["export"]["csv"])))
    assert sorted(r["claim"] for r in rows if r["status"] == "NOT YET MEASURED") == MISSING
    for r in rows:
        if r["claim"] in MISSING:   # the notebook to run, no figure
            assert r["value"] == "" and r["results_line"] == ""
            assert r["notebook"] == ", ".join(claims_map.notebooks_for(r["claim"]))
    md = open(m["export"]["markdown"]).read()
    listed = md.split("## Not yet measured")[1]
    assert sorted(c for c in results.CLAIMS if f"**{c}**" in listed) == MISSING


def test_every_ledger_figure_traces_to_the_newest_record_of_its_metric(run10):
    run, path = run10
    figures = run.value("measured")["figures"]
    by_line = records_by_line(path)
    keys = {(r["claim"], r["notebook"], r["metric"]) for r in by_line.values() if r.get("kind") == "measurement"}
    assert len(figures) == len(keys)           # one figure per recorded metric, no more
    for f in figures:
        record = by_line[f["line"]]
        assert record["kind"] == "measurement"
        assert (record["claim"], record["notebook"], record["metric"]) == (f["claim"], f["notebook"], f["metric"])
        assert record["value"] == f["value"] and record["unit"] == f["unit"], f
        later = [n for n, r in by_line.items() if n > f["line"] and r.get("kind") == "measurement"
                 and (r["claim"], r["notebook"], r["metric"]) == (f["claim"], f["notebook"], f["metric"])]
        assert later == [], f"line {f['line']} is not the newest record of {f['metric']}"


def test_the_export_carries_only_recorded_values(run10):
    run, path = run10
    by_line = records_by_line(path)
    rows = [r for r in csv.DictReader(open(run.value("measured")["export"]["csv"])) if r["results_line"]]
    assert len(rows) == len(run.value("measured")["figures"])
    for r in rows:
        record = by_line[int(r["results_line"])]
        assert json.loads(r["value"]) == record["value"] and r["metric"] == record["metric"], r


def test_a_superseded_figure_is_shown_nowhere(run10):
    run, path = run10
    shown = json.dumps([o for c in run.nb.cells if c.cell_type == "code" for o in c.outputs])
    exported = "".join(open(p).read() for p in run.value("measured")["export"].values())
    for text in (shown, exported):
        assert str(SUPERSEDED) not in text and f"{SUPERSEDED:,}" not in text
    assert "37 messages" in exported                 # its newest value is there


def test_quick_and_stale_marks(run10):
    run, _ = run10
    marks = {(f["claim"], f["notebook"]): f["marks"] for f in run.value("measured")["figures"]}
    assert marks[("C02", "06")] == "QUICK"
    assert marks[("C07", "03")] == "STALE: measured on another-laptop"
    assert marks[("C09", "06")] == "STALE: 90 days old"
    assert marks[("C01", "01")] == marks[("C02", "01")] == ""


def test_verdicts_from_the_records(run10):
    run, _ = run10
    v = run.value("measured")["verdicts"]
    assert v["C02"] == "depends"        # confirmed in 01, refuted in 06
    assert v["C01"] == v["C06"] == "confirmed"
    assert v["C08"] == "NO VERDICT" and v["C20"] == "inconclusive"
    figures = run.value("measured")["figures"]
    assert [f["section"] for f in figures if f["notebook"] == "99"] == ["(not in the course map)"]


def test_predictions_beside_measurements(run10):
    run, path = run10
    (p,) = run.value("measured")["predictions"]
    assert p["claim"] == "C03" and p["status"] == "CLOSE" and p["measured"] == "37 messages"
    assert records_by_line(path)[p["line"]]["key"] == "nb01-missed"


def test_guide_and_scenarios_ran_on_this_ledger(run10):
    run, _ = run10
    m = run.value("measured")
    assert m["guide"] == "streams"
    assert m["scenarios"]["order events with a live dashboard under 2 ms"] == "both"
    assert m["ranges"][0].startswith("**C02**") and "1.3377 ms (notebook 06" in m["ranges"][0]


def test_exercise_not_attempted_then_passes_with_the_solution(run10):
    run, _ = run10
    from conftest import solution

    assert run.value("check_choose.status") == "not-attempted"
    run.execute(solution("10_choose"))
    assert run.value("checks10.choose_check(choose).status") == "pass"
    run.execute("def choose(req):\n    return 'kafka'")
    assert run.value("checks10.choose_check(choose).status") == "not-yet"


def test_no_emoji_and_run_all_again(run10):
    run, _ = run10
    assert_no_emoji(run.nb)
    before = run.value("measured")
    assert run.run_all(), (run.failed_index, run.error)
    after = run.value("measured")
    assert after["not_measured"] == before["not_measured"] and after["figures"] == before["figures"]
