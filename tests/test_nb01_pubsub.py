"""Notebook 01 (Redis Pub/Sub): every claim is asserted on what the notebook counted on the real server.

- C01: PUBLISH with no subscriber returns 0 and a late subscriber gets nothing.
- C04: with 1, 2 and 4 subscribers, each receives every message published.
- C03: the sequence numbers missed EQUAL those published during the disconnect window (and > 0).
- C05: the stuck subscribers are gone from CLIENT LIST, logged by Redis, lost > 0 messages; redis-py
  came back silently with a gap; the server's client-output-buffer-limit is back to its original value.
- C02: a latency distribution was measured and the verdict follows from its p50 / p99.
Plus both exercises (stub -> not attempted, solution -> pass, wrong answers -> not yet), cleanup, and a
second Run All in the same kernel.
"""

import pytest
from conftest import rerun_all, run_notebook, solution

from helpers import config, pubsub
from helpers.checks import nb01 as checks01

pytestmark = pytest.mark.notebook

LIMIT = "client-output-buffer-limit"


def _assert_measured(m: dict, original_limit: str) -> None:
    # C01: nobody listening -> gone
    assert m["c01"] == {"receivers": 0, "late_received": 0, "key_exists": 0}

    # C04: every subscriber count == published count, for 1, 2 and 4 subscribers
    published = m["c04"]["published"]
    counts = m["c04"]["counts"]
    assert sorted({row["subscribers"] for row in counts}) == [1, 2, 4]
    assert len(counts) == 1 + 2 + 4
    for row in counts:
        assert row["received"] == published and row["distinct"] == published and row["all of 0..M-1"], row

    # C03: missed EQUALS the window, non-empty, nothing delivered during it, nothing replayable
    c03 = m["c03"]
    assert len(c03["missed"]) > 0
    assert c03["missed"] == c03["during"]
    assert c03["received"] == c03["published"] - len(c03["during"])
    assert c03["deliveries_during"] == 0 and c03["replayed"] == 0 and c03["keys"] == 0

    # C05: the server cut the stuck clients off, with evidence, and they lost messages
    c05 = m["c05"]
    assert c05["limit_during"] == "pubsub 262144 65536 1"
    assert len(c05["ids_before"]) == 2
    assert c05["clients_after"] == 0, "a stuck subscriber is still in CLIENT LIST"
    assert c05["log_lines"] == 2, "expected one 'output buffer limits' log line per stuck client"
    assert c05["first_none"] is not None and c05["first_none"] < c05["published"]
    assert c05["raw_closed"] is True and c05["raw_prefix"] is True
    assert c05["raw_lost"] > 0 and c05["raw_received"] + c05["raw_lost"] == c05["published"]
    # redis-py: no exception reached the app, it reconnected (new id) and got the later messages, with a gap
    assert c05["app_errors"] == []
    assert c05["app_id_after"] is not None and c05["app_id_after"] != c05["app_id_before"]
    assert c05["app_later_received"] == 50
    gap = c05["app_gap"]
    assert len(gap) > 0 and gap == list(range(gap[0], c05["published"]))
    assert c05["app_received"] + len(gap) == c05["published"] + 50
    # ... and the setting was restored right after the experiment
    assert c05["restored"] is True and c05["limit_after"] == original_limit

    # C02: a real distribution, and the verdict follows from the numbers
    c02 = m["c02"]
    assert c02["count"] == config.size(5000, 1000)
    assert 0 < c02["min"] <= c02["p50"] <= c02["p99"] <= c02["max"]
    expected = "confirmed" if c02["p99"] < 1 else "depends" if c02["p50"] < 1 else "refuted"
    assert c02["verdict"] == expected


def _no_leftovers(r, prefix: str, original_limit: str) -> None:
    assert list(r.scan_iter(match=prefix + "*")) == []
    assert pubsub.named_clients(r, prefix) == []
    assert r.config_get(LIMIT)[LIMIT] == original_limit
    assert not r.exists(pubsub.LIMIT_LOCK) and not r.exists(pubsub.LIMIT_STASH)


def test_nb01_pubsub_claims_exercises_cleanup_and_rerun(lab, r, ref_value):
    original_limit = r.config_get(LIMIT)[LIMIT]
    with run_notebook("01") as tb:
        _assert_measured(ref_value(tb, "measured"), original_limit)
        prefix = tb.value("ns.prefix")
        # the flood stops on purpose: its bar says why (STOPPED), not as a failure
        flood = tb.cell_output_text("exp-slow-flood")
        assert "[STOPPED] PUBLISH 1 kB messages:" in flood and "stopped on purpose" in flood, flood
        assert "FAILED" not in flood

        # exercises: stubs report "not attempted"; the solutions pass checks that use real traffic
        for name, sol in (("gaps", "01_gaps"), ("pattern", "01_pattern")):
            assert tb.value(f"check_{name}.status") == "not-attempted"
            tb.inject(solution(sol), pop=True)
            tb.execute_cell(f"check-{name}")
            assert tb.value(f"check_{name}.status") == "pass", tb.value(f"str(check_{name})")

        # cleanup removes the run's keys and clients and restores the setting (again)
        tb.execute_cell("cleanup")
        assert ref_value(tb, "measured")["limit_restored"] is True
        _no_leftovers(r, prefix, original_limit)

        # Run All a second time in the same kernel: same outcomes, stubs back to "not attempted"
        rerun_all(tb)
        _assert_measured(ref_value(tb, "measured"), original_limit)
        assert tb.value("check_gaps.status") == "not-attempted"
        assert tb.value("check_pattern.status") == "not-attempted"
        _no_leftovers(r, tb.value("ns.prefix"), original_limit)
    assert r.config_get(LIMIT)[LIMIT] == original_limit


# --- the checks themselves can fail (run here against the real server, without the notebook) -------
@pytest.fixture
def ns(r):
    ns = config.namespace("nb01")
    yield ns
    assert list(r.scan_iter(match=ns.prefix + "*")) == []


def test_gap_check_rejects_wrong_answers(r, ns):
    assert checks01.gap_detector(lambda seqs: [], r, ns).status == "not-yet"
    assert checks01.gap_detector(lambda seqs: sorted(seqs), r, ns).status == "not-yet"
    # a detector that also reports a spurious number past the end fails
    assert checks01.gap_detector(lambda seqs: _solution_gaps(seqs) + [max(seqs) + 1], r, ns).status == "not-yet"
    assert checks01.gap_detector(_solution_gaps, r, ns).status == "pass"


def _solution_gaps(seqs):
    scope = {}
    exec(solution("01_gaps"), scope)  # noqa: S102  (the solution file the notebook test injects)
    return scope["find_gaps"](seqs)


@pytest.mark.parametrize("subscribe, why", [
    (lambda p, prefix: p.psubscribe("*orders:*:created"), "not anchored: receives another run's channel"),
    (lambda p, prefix: p.psubscribe(prefix + "orders:*"), "too wide: cancellations and retries too"),
    (lambda p, prefix: p.subscribe(prefix + "orders:eu:created"), "one exact channel: misses regions"),
    (lambda p, prefix: (p.psubscribe(prefix + "orders:*:created"), p.subscribe(prefix + "orders:eu:created")),
     "receives eu twice"),
    (lambda p, prefix: None, "subscribes to nothing"),
])
def test_pattern_check_rejects_wrong_subscriptions(r, ns, subscribe, why):
    assert checks01.pattern_subscription(subscribe, ns).status == "not-yet", why


def test_limit_experiment_restores_after_an_error(r):
    original = r.config_get(LIMIT)[LIMIT]
    with pytest.raises(RuntimeError), pubsub.limit_experiment(r) as pubsub_class:
        r.config_set(LIMIT, "pubsub 256kb 64kb 1")
        assert "262144" in r.config_get(LIMIT)[LIMIT]
        raise RuntimeError("the experiment failed half-way")
    assert pubsub_class == pubsub.pubsub_class(original)
    assert r.config_get(LIMIT)[LIMIT] == original
    assert not r.exists(pubsub.LIMIT_LOCK) and not r.exists(pubsub.LIMIT_STASH)


def test_raw_message_parser_keeps_only_complete_messages():
    one = b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$8\r\n00000007\r\n"
    assert pubsub._messages(one * 2 + one[:-5]) == [b"00000007", b"00000007"]
