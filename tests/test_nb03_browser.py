"""Notebook 03 in a real browser (part of ``make test`` since its run took 31-37 s here; it was opt-in
while it took about 2 minutes).

JupyterLab is started as ``make lab`` starts it, on a temporary learner workspace (the fixture and
the page helpers of ``tests/browser.py``); notebook 03 runs through the UI (Run > Run All Cells)
and is saved. Asserted: no error output, every chart drawn, the live view's XPENDING table, a typed
prediction kept in the results file, the min-idle re-run control answering a click at 3000 ms with a
new swimlane and a second counted row, no request to another host, ``git status`` unchanged.
Screenshots: ``test-artifacts/browser/nb03-*.png``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from browser import (  # noqa: F401  (learner_lab: a fixture, one lab for this module)
    PANEL,
    UI_TIMEOUT,
    clean_up_after_click,
    lab_page,
    learner_lab,
    rerun_control,
    run_on_screen,
    save_checked,
    saved_outputs,
    shot,
)
from conftest import notebook_path

pytestmark = [pytest.mark.notebook, pytest.mark.browser, pytest.mark.serial]  # serial: as test_browser.py


def test_live_view_swimlanes_prediction_and_min_idle_control(learner_lab, chromium):  # noqa: F811
    server, ws = learner_lab
    results = Path(os.environ["COURSE_RESULTS"])
    with lab_page(chromium, server, "nb03-last-state") as page:
        run_on_screen(page, notebook_path("03").name, min_charts=4)   # bars, 2 swimlanes, lines
        page.locator(f"{PANEL} .jp-OutputArea-output:has-text('XPENDING per consumer, live')").first \
            .scroll_into_view_if_needed()
        table = page.locator(f"{PANEL} .jp-OutputArea-output table:has(th:text-is('max deliveries'))")
        assert table.count() == 1 and table.locator("tbody tr").count() == 4   # dead, fast, rescuer, slow
        shot(page, "nb03-live-view")
        box = page.locator(f"{PANEL} .jp-OutputArea-output:has-text('How many times will that entry be processed')")
        box.locator("input[type=text]").fill("2")
        box.locator("button:has-text('Save my prediction')").click()
        page.wait_for_selector("text=your prediction: 2 times", timeout=UI_TIMEOUT)
        kept = [json.loads(line) for line in results.read_text().splitlines() if '"nb03-slow-entry-runs"' in line]
        assert kept and kept[-1]["value"] == 2 and kept[-1]["kind"] == "prediction"
        control = rerun_control(page, "Run again", "3000", "min-idle (ms)")
        assert control.locator(".vega-embed canvas, .vega-embed svg.marks").count() == 1
        rows = control.locator("table tbody tr")
        assert rows.count() == 2                                        # min-idle 500 and 3000, counted
        # min-idle, claimed from dead, claimed from slow (alive): at 500 ms the live one lost its entry
        assert rows.nth(0).locator("td").all_inner_texts()[:3] == ["500", "3", "1"]
        assert rows.nth(1).locator("td").all_inner_texts()[:3] == ["3000", "3", "0"]
        control.scroll_into_view_if_needed()
        shot(page, "nb03-min-idle-rerun")
        page.locator(f"{PANEL} .jp-OutputArea-output:has-text('SIGKILLed holding')").first.scroll_into_view_if_needed()
        shot(page, "nb03-swimlane")
        save_checked(page, ws / notebook_path("03").name)
        clean_up_after_click(ws / notebook_path("03").name, "nb03", kafka=False)   # the click ran after cleanup
    assert saved_outputs(notebook_path("03")) == ([], 0)
