"""The learner's screen in a real browser (Debian's headless Chromium, driven by Playwright).

JupyterLab is started as ``make lab`` starts it (same class and command line, on a free port,
against a temporary learner workspace synced from ``notebooks/``); notebooks 00, 01 and 04 are
opened from that workspace and run through the UI (Run > Run All Cells), a widget is clicked, and
each notebook is saved. Asserted: no error output, every chart drawn (an SVG or canvas inside each
chart), the prediction box and the re-run control answer clicks, no request to any host but the
lab's own (every other request is aborted and recorded), and ``git status`` unchanged after saving.
The ``make site`` pages are then opened from disk in the same browser with every request but
``file:`` refused, and each chart must be an inline SVG. Screenshots: ``test-artifacts/browser/``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from browser import (  # noqa: F401  (learner_lab: a fixture, one lab for this module)
    PANEL,
    UI_TIMEOUT,
    RequestLog,
    clean_up_after_click,
    lab_page,
    learner_lab,
    rerun_control,
    run_on_screen,
    save_checked,
    saved_outputs,
    shoot_each,
    shot,
)
from conftest import NOTEBOOKS, ROOT, notebook_path

# serial: a browser beside the parallel workers times out, and notebook 01's flood (run here through
# the UI) lowers the shared Redis's client-output-buffer-limit for every other test's subscribers
pytestmark = [pytest.mark.notebook, pytest.mark.browser, pytest.mark.serial]


def test_learner_runs_and_saves_notebooks_in_jupyterlab(learner_lab, chromium):  # noqa: F811
    server, ws = learner_lab
    results = Path(os.environ["COURSE_RESULTS"])
    with lab_page(chromium, server, "lab-last-state") as page:
        # the welcome page opens rendered (not raw Markdown), with no news prompt and no build clutter
        page.wait_for_selector(".jp-RenderedMarkdown h1:text('Welcome to Streams Lab')", timeout=UI_TIMEOUT)
        page.wait_for_selector(".jp-DirListing-item[title^='Name: 00_environment_check.ipynb']", timeout=UI_TIMEOUT)
        page.wait_for_timeout(1000)
        shot(page, "lab-welcome")
        listing = " ".join(page.locator(".jp-DirListing-itemText").all_inner_texts())
        assert "egg-info" not in listing and "solutions" in listing
        assert page.locator("text=/Jupyter news/i").count() == 0

        # notebook 00: Run All, then answer the prediction box and re-run with another value
        run_on_screen(page, notebook_path("00").name, min_charts=1)
        shot(page, "nb00-top")
        down_box = page.locator(".jp-OutputArea-output:has(.widget-text)").filter(has_text="Save my prediction")
        down_box.locator("input").fill("2")
        down_box.locator("button:has-text('Save my prediction')").click()
        page.wait_for_selector("text=your prediction: 2 s", timeout=UI_TIMEOUT)
        slowest_box = page.locator(".jp-OutputArea-output:has(.widget-radio-box)")
        slowest_box.locator(".widget-radio-box label:has-text('Kafka topic')").click()
        slowest_box.locator("button:has-text('Save my prediction')").click()
        page.wait_for_selector("text=your prediction: Kafka topic", timeout=UI_TIMEOUT)
        kept = [json.loads(line) for line in results.read_text().splitlines() if '"nb00-slowest"' in line]
        assert kept and kept[-1]["value"] == "Kafka topic" and kept[-1]["kind"] == "prediction"
        shot(page, "nb00-prediction-saved")
        rerun_output = rerun_control(page, "Run again", "1", "messages per model")
        assert rerun_output.locator(".vega-embed canvas, .vega-embed svg.marks").count() == 1
        assert "1 round trips per model" in rerun_output.inner_text()
        rerun_output.scroll_into_view_if_needed()
        shot(page, "nb00-rerun-clicked")
        page.locator(".jp-OutputArea-output:has-text('All set: go on to notebook 01.')").scroll_into_view_if_needed()
        shot(page, "nb00-preflight-table")
        save_checked(page, ws / notebook_path("00").name)  # its chart lives in the re-run widget
        clean_up_after_click(ws / notebook_path("00").name)  # the re-run wrote after the cleanup cell ran

        # notebooks 01 (the flood that stops on purpose) and 04 (charts, Kafka's CLI tools)
        for name, feature in (("01", "text=/stopped on purpose/"), ("04", "text=/\\$ kafka-get-offsets/")):
            charts = run_on_screen(page, notebook_path(name).name, min_charts=2)
            assert save_checked(page, ws / notebook_path(name).name) == charts, name
            shoot_each(page, f"{PANEL} .vega-embed", f"nb{name}-chart")
            page.locator(feature).first.scroll_into_view_if_needed()
            shot(page, f"nb{name}-feature")  # 01: the flood's bar stopped on purpose; 04: Kafka's CLI
            if name == "01":  # the deliberate stop is drawn blue (info), never red (danger)
                flood = page.locator(".jp-OutputArea-output:has-text('PUBLISH 1 kB messages') .progress-bar")
                assert flood.count() == 1 and "progress-bar-info" in flood.get_attribute("class")
                # the disconnect window's re-run control measures another window (Pub/Sub creates no keys)
                window = rerun_control(page, "Run again", "0.25", "disconnect window (s)")
                assert "The dashboard missed 50 prices: exactly those." in window.inner_text()
                window.scroll_into_view_if_needed()
                shot(page, "nb01-window-rerun-clicked")

    for name in ("00", "01", "04"):  # the course's notebooks are untouched; the learner's copies hold outputs
        assert saved_outputs(notebook_path(name)) == ([], 0)


def test_site_pages_render_their_charts_offline(lab, chromium, tmp_path):
    """`make site`'s builder renders pages whose charts are inline SVG and that load nothing remote."""
    import sys

    sys.path.insert(0, str(ROOT / "tools"))
    from build_site import build

    display = os.environ.get("COURSE_DISPLAY")
    pages = build(tmp_path / "site", [NOTEBOOKS / notebook_path(n).name for n in ("00", "01")], timeout=240)
    # only the build's kernels draw statically: a lab started later in this process (test_nb10_browser's)
    # passed a leaked COURSE_DISPLAY=static on to its kernels, which then drew no chart and no widget
    assert os.environ.get("COURSE_DISPLAY") == display
    context = chromium.new_context(viewport={"width": 1200, "height": 900})
    requests = RequestLog(None)  # file: only
    requests.attach(context)
    page = context.new_page()
    try:
        for path in pages:
            page.goto(path.as_uri())
            page.wait_for_load_state("load")
            svg_outputs = page.locator(".jp-RenderedSVG")
            total = svg_outputs.count()
            drawn = page.locator(".jp-RenderedSVG > svg.marks").count()
            assert drawn == total >= (1 if path.name.startswith("00") else 2), (path.name, total, drawn)
            assert page.locator(".jp-RenderedSVG svg.marks title").count() > 0  # hover tooltips
            assert "Traceback" not in page.inner_text("body")
            shot(page, f"site-{path.stem}-top")
            shoot_each(page, ".jp-RenderedSVG", f"site-{path.stem}-chart", limit=3)
    finally:
        page.close()
        context.close()
    assert requests.foreign == [], requests.foreign[:10]
