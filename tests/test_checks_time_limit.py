"""Issue 7, checks that cannot hang: every exercise check of notebooks 00-05 stops a learner's function
that never returns, says so, and leaves the kernel usable with no thread behind.

Each notebook is copied with every exercise function's body replaced by ``while True: time.sleep(1)``
and run to the end (three kernels at a time) with a 1 s limit (``COURSE_CHECK_TIMEOUT``); every
check must report TIME LIMIT. Before the harness, 10 of the 11 checks hung the kernel here.
"""

import re
from concurrent.futures import ThreadPoolExecutor

import pytest
from nbrun import NotebookRun, hanging_stubs, tags

# parallel-safe: notebook 01's flood (Run All) lowers the shared Redis's output buffer limit only as
# test_nb01_pubsub.py explains
pytestmark = pytest.mark.notebook

LIMIT = "1"
NOTEBOOKS = ["05", "04", "01", "02", "03", "00"]  # the longest first


def run_with_hanging_stubs(name: str) -> dict:
    with NotebookRun(name, env={"COURSE_CHECK_TIMEOUT": LIMIT}, nb=hanging_stubs(name), timeout=90) as run:
        finished = run.run_all()
        report = {"finished": finished, "failed": run.failed_index,
                  "error": str(run.error)[-1500:] if run.error else None, "checks": {}}
        if not finished:
            return report
        for cell in run.nb.cells:
            if any(t.startswith("check-") for t in tags(cell)):
                var = re.search(r"^(check_\w+)\s*=", cell.source, re.M).group(1)
                report["checks"][var] = run.value(f"[{var}.status, {var}.message, str({var})]")
        report["usable"] = run.value("sum(range(5))")
        report["threads"] = run.value("[t.name for t in __import__('threading').enumerate()]")
        return report


@pytest.fixture(scope="module")
def reports(lab):
    with ThreadPoolExecutor(max_workers=3) as pool:
        return dict(zip(NOTEBOOKS, pool.map(run_with_hanging_stubs, NOTEBOOKS), strict=True))


def test_every_notebook_runs_to_the_end(reports):
    stuck = {name: (r["failed"], r["error"]) for name, r in reports.items() if not r["finished"]}
    assert not stuck


def test_every_check_reports_the_time_limit(reports):
    checks = {f"{name}:{var}": status for name, r in reports.items() for var, status in r["checks"].items()}
    assert len(checks) == 11, checks
    for where, (status, message, text) in checks.items():
        assert status == "time-limit", (where, message)
        assert f"your function did not return within {LIMIT} s" in message, (where, message)
        assert text.startswith("[TIME LIMIT] "), (where, text)


def test_the_kernel_stays_usable_with_no_check_thread_left(reports):
    for name, r in reports.items():
        assert r["usable"] == 10, name
        assert not [t for t in r["threads"] if t.startswith("streamslab-check")], (name, r["threads"])
