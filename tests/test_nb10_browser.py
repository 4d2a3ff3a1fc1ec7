"""Notebook 10 in a real browser: the ledger, the chart and the decision form answer in JupyterLab.

JupyterLab is started as ``make lab`` starts it, on a temporary learner workspace (the fixture and page
helpers of ``tests/test_browser.py``), with ``COURSE_RESULTS`` pointing at the synthetic results file of
``test_nb10_ledger`` (8 claims missing). Notebook 10 runs through the UI (Run > Run All Cells) and is
saved. Asserted: no error output, every chart drawn, the ledger table with exactly 8 NOT YET MEASURED
badges, the decision form answering a changed retention and an unticked per-message acknowledgement,
the scenario control answering a click, no request to another host, ``git status`` unchanged (the
export went into the git-ignored workspace). Screenshots: ``test-artifacts/browser/nb10-*.png``.
"""

from __future__ import annotations

import pytest
from browser import RequestLog, shot
from conftest import notebook_path
from test_browser import (  # noqa: F401
    UI_TIMEOUT,
    charts_on_screen,
    git_status,
    learner_lab,
    open_notebook,
    run_all,
    save,
    saved_outputs,
    screen_problems,
)
from test_nb10_ledger import MISSING, write_results

pytestmark = [pytest.mark.notebook, pytest.mark.browser, pytest.mark.serial]  # serial: as test_browser.py
PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"


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
    before = git_status()
    context = chromium.new_context(viewport={"width": 1400, "height": 1000})
    requests = RequestLog(f"127.0.0.1:{server.port}")
    requests.attach(context)
    page = context.new_page()
    try:
        page.goto(server.url)
        page.wait_for_selector(".jp-DirListing-item[title^='Name: 10_choosing.ipynb']", timeout=UI_TIMEOUT)
        open_notebook(page, notebook_path("10").name)
        run_all(page)
        assert screen_problems(page) == []
        charts, drawn = charts_on_screen(page)
        assert charts >= 1 and drawn == charts, (charts, drawn)

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

        explain = page.locator(f"{PANEL} .jp-OutputArea-output:has(button:has-text('Explain'))")
        explain.locator(".widget-dropdown select").select_option(label="cache invalidation across app servers")
        explain.locator("button:has-text('Explain')").click()
        page.wait_for_selector("text=/scenario = cache invalidation across app servers \\(run 2/", timeout=UI_TIMEOUT)
        assert "Recommended: Redis Pub/Sub" in explain.inner_text()
        explain.scroll_into_view_if_needed()
        shot(page, "nb10-scenario-clicked")
        save(page)
        errors, _ = saved_outputs(ws / notebook_path("10").name)
        assert errors == []
        assert sorted(p.name for p in (ws / "ledger").iterdir()) == ["claims-ledger.csv", "claims-ledger.md"]
    finally:
        shot(page, "nb10-last-state")
        page.close()
        context.close()

    assert requests.foreign == [], requests.foreign[:10]
    after = git_status()
    assert set(after.splitlines()) ^ set(before.splitlines()) == set(), (before, after)
    assert saved_outputs(notebook_path("10")) == ([], 0)
