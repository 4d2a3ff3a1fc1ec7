"""Notebook 10 in a real browser: the ledger, the chart and the decision form answer in JupyterLab.

JupyterLab is started as ``make lab`` starts it, on a temporary learner workspace (the fixture and page
helpers of ``tests/browser.py``), with ``COURSE_RESULTS`` pointing at the synthetic results file of
``test_nb10_ledger`` (8 claims missing). Notebook 10 runs through the UI (Run > Run All Cells) and is
saved. Asserted: no error output, every chart drawn, the ledger table with exactly 8 NOT YET MEASURED
badges, the decision form answering a changed retention and an unticked per-message acknowledgement,
the scenario control answering a click, no request to another host, ``git status`` unchanged (the
export went into the git-ignored workspace). Screenshots: ``test-artifacts/browser/nb10-*.png``.
"""

from __future__ import annotations

import pytest
from browser import (  # noqa: F401  (learner_lab: a fixture, one lab for this module)
    PANEL,
    UI_TIMEOUT,
    lab_page,
    learner_lab,
    rerun_control,
    run_on_screen,
    save_checked,
    saved_outputs,
    shot,
)
from conftest import notebook_path
from test_nb10_ledger import MISSING, write_results

pytestmark = [pytest.mark.notebook, pytest.mark.browser, pytest.mark.serial]  # serial: as test_browser.py


@pytest.fixture(scope="module", autouse=True)
def synthetic_results(tmp_path_factory):
    """The lab (started after this) and its kernels read the synthetic results file."""
    path = tmp_path_factory.mktemp("nb10-browser") / "results.jsonl"
    write_results(path)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("COURSE_RESULTS", str(path))
        yield path


def test_ledger_chart_and_decision_form_in_jupyterlab(learner_lab, chromium):  # noqa: F811
    server, ws = learner_lab
    with lab_page(chromium, server, "nb10-last-state") as page:
        run_on_screen(page, notebook_path("10").name, min_charts=1)

        ledger_table = page.locator(f"{PANEL} .jp-OutputArea-output table:has(th:text-is('claim text'))")
        assert ledger_table.count() == 1
        assert ledger_table.locator("td:text-is('NOT YET MEASURED')").count() == len(MISSING)
        ledger_table.scroll_into_view_if_needed()
        shot(page, "nb10-ledger")
        page.locator(f"{PANEL} .vega-embed").first.scroll_into_view_if_needed()
        shot(page, "nb10-chart")

        form = page.locator(f"{PANEL} .jp-OutputArea-output:has-text('Your requirements')")
        assert "Recommended: Redis Streams (consumer groups)" in form.inner_text()
        form.locator(".widget-dropdown:has-text('retention and replay') select").select_option(
            label="weeks or months: audit, backfill, rebuild")
        form.locator("text=Recommended: Kafka (share groups)").wait_for(timeout=UI_TIMEOUT)
        form.locator(".widget-checkbox:has-text('per-message acknowledgement') input").uncheck()
        form.locator("text=Recommended: Kafka (consumer groups)").wait_for(timeout=UI_TIMEOUT)
        assert "not measured yet — run notebook" in form.inner_text()
        form.scroll_into_view_if_needed()
        shot(page, "nb10-form-changed")

        explain = rerun_control(page, "Explain", "cache invalidation across app servers", "scenario")
        assert "Recommended: Redis Pub/Sub" in explain.inner_text()
        explain.scroll_into_view_if_needed()
        shot(page, "nb10-scenario-clicked")
        save_checked(page, ws / notebook_path("10").name)
        assert sorted(p.name for p in (ws / "ledger").iterdir()) == ["claims-ledger.csv", "claims-ledger.md"]

    assert saved_outputs(notebook_path("10")) == ([], 0)
