"""Notebook 09: generator -> Kafka -> processor -> Redis view, and four failure drills counted.

The notebook runs once from a fresh kernel (COURSE_QUICK=1) for the module. Asserted: the live view
equals a recount from the topic; after a real SIGKILL between "apply" and "commit" the idempotent
view equals the recount (the redelivered batch skipped) while the naive view counts exactly that
batch twice; a wiped view rebuilt by replay equals the recount (and a write-back is gone); a Redis
outage loses nothing while Kafka keeps accepting orders; compaction keeps about one record per key
and rebuilds the totals; the page refuses writes; results are recorded; the exercises pass with
their solutions and not with wrong answers; cleanup leaves nothing and Run All again is green.
"""

import json
import re

import pytest
from conftest import cleanup_then_rerun, module_notebook, plain, solution

pytestmark = pytest.mark.notebook

nb = module_notebook("09")

NAIVE_APPLY = """
def apply_order(r, keys, partition, offset, event):
    r.hincrby(keys["revenue"], event["product"], event["cents"])    # no memory of offsets
    r.zincrby(keys["sold"], event["qty"], event["product"])
    r.hincrby(keys["per_minute"], pipeline.minute_of(event["ts"]), 1)
"""

FIRST_VALUE = """
def latest_per_key(topic):
    seen = {}
    for rec in pipeline.read_topic(admin, topic):
        seen.setdefault(rec.key.decode(), json.loads(rec.value))   # keeps the OLDEST value
    return seen
"""


def output_text(tb, tag: str) -> str:
    cell = next(c for c in tb.cells if tag in c.metadata.get("tags", []))
    return json.dumps([o.get("data", o.get("text", "")) for o in cell.outputs])


def assert_drills(m: dict) -> None:
    live = m["live"]
    assert live["equal"] and live["extra_cents"] == 0 and live["produced"] == live["in_topic"] > 0, live
    low, high = (live["phases"][k]["orders/s measured"] for k in ("first half", "second half"))
    assert high > 1.5 * low > 0, live["phases"]              # the rate control really changed the flow
    assert live["pushed_to_probe"] > 0, live                 # the page's event stream pushed updates

    kill = m["kill"]
    idem, naive = kill["processor"], kill["naive"]
    assert idem["returncode"] == naive["returncode"] == -9, kill
    assert idem["stalled_batch"] > 0 and naive["stalled_batch"] > 0, kill
    assert idem["skipped_after_restart"] == idem["stalled_batch"], idem     # the batch was redelivered
    assert idem["equal"] and idem["extra_orders"] == idem["extra_cents"] == 0, idem
    assert naive["extra_orders"] == naive["stalled_batch"], naive           # counted twice, exactly
    assert naive["extra_cents"] == naive["stalled_cents"] > 0 and not naive["equal"], naive

    rebuild = m["rebuild"]
    assert rebuild["writeback_extra_cents"] == 1000, rebuild
    assert rebuild["missing_after_wipe"] > 0 and rebuild["wiped_keys"] == 4, rebuild
    assert rebuild["reset_errors"] == ["NoError"], rebuild
    assert rebuild["equal"] and rebuild["extra_cents"] == 0 and rebuild["replayed"] == rebuild["orders_view"], rebuild

    out = m["outage"]
    assert out["appended"] > 0 and out["produced"] > 0, out                 # Kafka kept accepting
    assert out["redis_errors"] > 0, out                                      # the processor really hit the outage
    assert out["equal"] and out["lost"] == 0, out

    comp = m["compaction"]
    assert comp["keys"] == 8 and comp["equal"], comp
    assert comp["kept"] <= comp["keys"] + 1 < comp["written"], comp        # one per key + the active segment
    assert sorted(set(comp["keys_in_records"])) == sorted(
        ["bagel", "cookie", "croissant", "espresso", "latte", "muffin", "sandwich", "tea"]), comp

    assert m["one_way"] == {"post_status": 405, "refused_writes": 1}, m["one_way"]


def test_drills_counted(nb):
    assert_drills(plain(nb, "measured"))


def test_rate_control_and_predictions(nb, r):
    """The rate control's first run set the notebook's rate and measured a flow; once the cleanup cell
    has stopped the generator, a click says so and writes nothing. Every drill asked for a prediction."""
    tried = plain(nb, "rate_ctl.tried")
    assert tried[0]["rate set (orders/s)"] == nb.value("RATE") == nb.value("rate_ctl.history[0][0]")
    assert tried[0]["orders/s measured"] > 0, tried
    assert nb.value("generator.alive") is False                          # the cleanup cell ran
    assert nb.value("str(rate_ctl.run(55))").startswith("[STOPPED] the generator is not running")
    assert r.exists(nb.value("CONTROL")) == 0 and len(plain(nb, "rate_ctl.tried")) == len(tried)
    keys = plain(nb, "[g.key for g in (guess_live, guess_kill, guess_rebuild, guess_outage, guess_compact)]")
    assert len(set(keys)) == 5 and all(k.startswith("nb09-") for k in keys), keys


def test_sentences_come_from_the_measurement(nb):
    m = plain(nb, "measured")
    kill = output_text(nb, "exp-kill-explain")
    assert f"skipped **{m['kill']['processor']['skipped_after_restart']}**" in kill
    assert f"counts **{m['kill']['naive']['extra_orders']}** orders too many" in kill
    assert f"left the view **{m['rebuild']['missing_after_wipe']}** orders short" in output_text(nb, "exp-rebuild-explain")
    assert f"appended **{m['outage']['appended']}**" in output_text(nb, "exp-outage-explain")
    assert f"left **{m['compaction']['kept']}**" in output_text(nb, "exp-compact-explain")


def test_generated_markdown_has_no_bare_dollar(nb):
    """JupyterLab reads two `$` in a Markdown output as LaTeX: amounts are written `\\$`."""
    texts = ["".join(o.get("data", {}).get("text/markdown", "")) for c in nb.cells if c.cell_type == "code"
             for o in c.outputs]
    assert any("\\$" in t for t in texts)
    assert [t for t in texts if re.search(r"(?<!\\)\$", t)] == []


def test_results_recorded_against_claims(nb):
    rows = plain(nb, "[r for r in results.load().to_dict('records') if str(r['notebook']) == '09']")
    by_claim = {(row["claim"], row["metric"]): row for row in rows}
    assert by_claim[("C23", "view_equal_after_rebuild_by_replay")]["verdict"] == "confirmed"
    assert by_claim[("C23", "live_view_equal_to_recount")]["verdict"] == "confirmed"
    kept = by_claim[("C23", "records_kept_by_compaction")]
    assert kept["verdict"] == "confirmed" and kept["value"] < kept["details"]["written"]
    assert by_claim[("C22", "redelivered_after_sigkill")]["value"] > 0
    assert by_claim[("C12", "orders_accepted_while_redis_down")]["verdict"] == "confirmed"
    assert by_claim[("C14", "new_group_view_equal_to_recount")]["verdict"] == "confirmed"


def test_exercises_stub_wrong_and_solution(nb, r):
    assert nb.value("check_idempotent.status") == "not-attempted"
    assert nb.value("check_latest.status") == "not-attempted"
    nb.inject(NAIVE_APPLY, pop=True)
    nb.execute_cell("check-idempotent")
    assert nb.value("check_idempotent.status") == "not-yet"
    assert "counted twice" in nb.value("check_idempotent.message")
    nb.inject(solution("09_idempotent_apply"), pop=True)
    nb.execute_cell("check-idempotent")
    assert nb.value("check_idempotent.status") == "pass", nb.value("str(check_idempotent)")
    nb.inject(FIRST_VALUE, pop=True)
    nb.execute_cell("check-latest")
    assert nb.value("check_latest.status") == "not-yet"
    nb.inject(solution("09_latest_per_key"), pop=True)
    nb.execute_cell("check-latest")
    assert nb.value("check_latest.status") == "pass", nb.value("str(check_latest)")
    assert list(r.scan_iter(match=nb.value("ns.prefix") + "check-*")) == []   # the checks clean up


def test_cleanup_and_rerun_in_same_kernel(nb, r, kafka_admin):
    pids = plain(nb, "[w.pid for w in [generator, *running.values()]]")
    prefix = cleanup_then_rerun(nb, r)
    assert_drills(plain(nb, "measured"))
    assert nb.value("check_idempotent.status") == "not-attempted"        # the stub cells ran again
    nb.execute_cell("cleanup")
    kprefix = nb.value("ns.kafka_notebook_prefix")
    assert list(r.scan_iter(match=prefix + "*")) == []
    assert [t for t in kafka_admin.list_topics() if t.startswith(kprefix)] == []
    assert [g["group_id"] for g in kafka_admin.list_groups() if g["group_id"].startswith(kprefix)] == []
    assert nb.value("workers.stop_all()") == 0 and nb.value("dashboard.stop_all()") == 0
    assert nb.value("scratch.running") is False                           # the throwaway Redis is stopped
    import psutil
    assert [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE] == []
