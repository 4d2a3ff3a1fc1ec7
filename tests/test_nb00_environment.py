"""Notebook 00: the preflight finds both servers, times four real round trips, and the exercise check works."""

import pytest
from conftest import rerun_all, run_notebook, solution

pytestmark = pytest.mark.notebook


def test_nb00_preflight_exercise_and_rerun(lab, r):
    with run_notebook("00") as tb:
        measured = tb.ref("measured")
        prefix = tb.value("ns.prefix")
        assert measured["red"] == 0, tb.value("preflight_table.to_string()")
        trips = {row["check"]: row for row in measured["roundtrips"]}
        assert set(trips) == {"Redis Pub/Sub round trip", "Redis List round trip",
                              "Redis Stream round trip", "Kafka topic round trip"}
        for row in trips.values():
            assert row["measured"].endswith(" ms") and float(row["measured"].split()[0]) > 0
        assert measured["down_error_seconds"] < 5
        assert "make services-up" in tb.value("down_error")

        # the stub reports "not attempted"; the solution passes a check that reads the real stream
        assert tb.value("check_checkin.status") == "not-attempted"
        tb.inject(solution("00_checkin"), pop=True)
        tb.execute_cell("check-checkin")
        assert tb.value("check_checkin.status") == "pass"
        assert r.xlen(tb.value("CHECKIN_KEY")) >= 1

        # cleanup removed the notebook's keys, and Run All a second time in the same kernel is green
        tb.execute_cell("cleanup")
        assert list(r.scan_iter(match=prefix + "*")) == []
        rerun_all(tb)
        assert tb.ref("measured")["red"] == 0
        assert tb.value("check_checkin.status") == "not-attempted"  # the stub cell ran again
        assert list(r.scan_iter(match=tb.value("ns.prefix") + "*")) == []
