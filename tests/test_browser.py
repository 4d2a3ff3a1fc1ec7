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
import secrets
import shutil
import subprocess
from pathlib import Path

import pytest
from browser import RequestLog, shot
from conftest import NOTEBOOKS, ROOT, notebook_path

# serial: a browser beside the parallel workers times out, and notebook 01's flood (run here through
# the UI) lowers the shared Redis's client-output-buffer-limit for every other test's subscribers
pytestmark = [pytest.mark.notebook, pytest.mark.browser, pytest.mark.serial]
RUN_ALL_TIMEOUT = 240_000  # ms, per notebook (quick mode runs each in well under a minute)
UI_TIMEOUT = 60_000


def git_status() -> str:
    return subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=ROOT,
                          capture_output=True, text=True, timeout=30).stdout


@pytest.fixture(scope="module")
def learner_lab(lab, tmp_path_factory):
    """JupyterLab as `make lab` runs it, serving a temporary workspace inside the git-ignored
    ``workspace/`` (so `git status` sees whatever the lab or its kernels write into the repo)."""
    from helpers import workspace
    from helpers.services.jupyter_server import JupyterLab
    from helpers.services.process import free_port

    made_parent = not (ROOT / "workspace").exists()
    ws = ROOT / "workspace" / f"_browser-test-{secrets.token_hex(3)}"
    home = tmp_path_factory.mktemp("jupyter")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("COURSE_WORKSPACE", str(ws))
        server = JupyterLab("jupyter", home, free_port(8890))
        server.start({"JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
                      "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces")})
        try:
            assert sorted(p.name for p in ws.glob("*.ipynb")) == [p.name for p in workspace.course_notebooks()]
            yield server, ws
        finally:
            server.stop()
            shutil.rmtree(ws, ignore_errors=True)
            if made_parent:
                shutil.rmtree(ROOT / "workspace", ignore_errors=True)


def open_notebook(page, name: str) -> None:
    page.locator(f".jp-DirListing-item[title^='Name: {name}']").first.dblclick()
    page.wait_for_selector(".jp-NotebookPanel:has(.jp-Notebook) >> nth=-1", timeout=UI_TIMEOUT)
    page.wait_for_selector(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook-ExecutionIndicator[data-status='idle']",
                           timeout=UI_TIMEOUT)


STARTED = """() => [...document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputArea-prompt')]
                    .some(p => /\\[(\\*|\\d+)\\]/.test(p.textContent))"""


def run_all(page) -> None:
    """Run > Run All Cells (again if a click landed before the kernel was connected), then wait until
    every code cell has an execution count."""
    page.wait_for_selector(".jp-StatusBar-TextItem:text-matches('Idle$')", timeout=UI_TIMEOUT)
    for attempt in range(3):
        page.wait_for_timeout(1000)
        page.click(".lm-MenuBar-itemLabel:text-is('Run')")
        page.click(".lm-Menu-itemLabel:text-is('Run All Cells')")
        try:
            page.wait_for_function(STARTED, timeout=10_000)
            break
        except Exception:
            if attempt == 2:
                raise
    page.wait_for_function("""() => {
        const nb = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
        const prompts = [...nb.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')].map(p => p.textContent);
        return prompts.length > 0 && prompts.every(t => /\\[\\d+\\]/.test(t));
    }""", timeout=RUN_ALL_TIMEOUT)
    page.wait_for_timeout(1500)  # the last widget views and charts attach


def save(page) -> None:
    page.keyboard.press("Control+s")
    page.wait_for_function("() => !document.querySelector('.lm-TabBar-tab.jp-mod-current.jp-mod-dirty')",
                           timeout=UI_TIMEOUT)


def screen_problems(page) -> list[str]:
    """Error outputs and broken renders in the visible notebook."""
    found = page.evaluate("""() => {
        const nb = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
        const out = [];
        for (const el of nb.querySelectorAll('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'))
            out.push('stderr: ' + el.textContent.slice(0, 300));
        for (const el of nb.querySelectorAll('.jp-OutputArea-output'))
            if (/Traceback|Error displaying widget|Error loading script|model not found/.test(el.textContent))
                out.push('error: ' + el.textContent.slice(0, 300));
        return out;
    }""")
    return found


def charts_on_screen(page) -> tuple[int, int]:
    """(charts, charts drawn): each Altair chart is a vega-embed with an SVG or a canvas inside."""
    return tuple(page.evaluate("""() => {
        const nb = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
        const embeds = [...nb.querySelectorAll('.vega-embed')];
        const drawn = embeds.filter(e => { const g = e.querySelector('canvas, svg.marks');
                                           return g && g.getBoundingClientRect().width > 50; });
        return [embeds.length, drawn.length];
    }"""))


def saved_outputs(path: Path) -> tuple[list, int]:
    """(error outputs, chart outputs) of a saved notebook."""
    nb = json.loads(path.read_text())
    outputs = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]
    errors = [o for o in outputs if o["output_type"] == "error"
              or (o["output_type"] == "stream" and o["name"] == "stderr")]
    charts = [o for o in outputs if "".join(o.get("data", {}).get("text/plain", "")).startswith("Chart:")]
    return errors, len(charts)


def clean_up_after_click(saved: Path, notebook: str = "nb00", kafka: bool = True) -> None:
    """Delete what a notebook's re-run button (00's by default) created after its cleanup cell had run
    (its run's namespace, read from the saved setup cell's output)."""
    from helpers import clients, config

    nb = json.loads(saved.read_text())
    setup = next(c for c in nb["cells"] if "setup" in c.get("metadata", {}).get("tags", []))
    prefix = "".join(setup["outputs"][-1]["data"]["text/plain"]).strip("'\"")
    ns = config.Namespace(notebook, run_id=prefix.rstrip(":").split(":")[-1])
    assert ns.prefix == prefix, (ns.prefix, prefix)
    clients.cleanup_redis(clients.require_redis(), ns)
    if kafka:
        clients.cleanup_kafka(clients.require_kafka(), ns)


def shoot_each(page, selector: str, prefix: str, limit: int = 6) -> list[Path]:
    paths = []
    for i, el in enumerate(page.locator(selector).all()[:limit]):
        el.scroll_into_view_if_needed()
        page.wait_for_timeout(300)
        paths.append(shot(page, f"{prefix}-{i}"))
    return paths


def test_learner_runs_and_saves_notebooks_in_jupyterlab(learner_lab, chromium):
    server, ws = learner_lab
    before = git_status()
    results = Path(os.environ["COURSE_RESULTS"])
    context = chromium.new_context(viewport={"width": 1400, "height": 1000})
    requests = RequestLog(f"127.0.0.1:{server.port}")
    requests.attach(context)
    page = context.new_page()
    try:
        # the welcome page opens rendered (not raw Markdown), with no news prompt and no build clutter
        page.goto(server.url)
        page.wait_for_selector(".jp-RenderedMarkdown h1:text('Welcome to Streams Lab')", timeout=UI_TIMEOUT)
        page.wait_for_selector(".jp-DirListing-item[title^='Name: 00_environment_check.ipynb']", timeout=UI_TIMEOUT)
        page.wait_for_timeout(1000)
        shot(page, "lab-welcome")
        listing = " ".join(page.locator(".jp-DirListing-itemText").all_inner_texts())
        assert "egg-info" not in listing and "solutions" in listing
        assert page.locator("text=/Jupyter news/i").count() == 0

        # notebook 00: Run All, then answer the prediction box and re-run with another value
        open_notebook(page, "00_environment_check.ipynb")
        run_all(page)
        assert screen_problems(page) == []
        charts, drawn = charts_on_screen(page)
        assert charts >= 1 and drawn == charts, (charts, drawn)
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
        page.select_option(".widget-dropdown select", label="1")
        page.click("button:has-text('Run again')")
        page.wait_for_selector("text=/messages per model = 1 \\(run 2/", timeout=UI_TIMEOUT)
        page.wait_for_timeout(1000)
        rerun_output = page.locator(".jp-OutputArea-output:has(button:has-text('Run again'))")
        assert rerun_output.locator(".vega-embed canvas, .vega-embed svg.marks").count() == 1
        assert "1 round trips per model" in rerun_output.inner_text()
        rerun_output.scroll_into_view_if_needed()
        shot(page, "nb00-rerun-clicked")
        page.locator(".jp-OutputArea-output:has-text('All set: go on to notebook 01.')").scroll_into_view_if_needed()
        shot(page, "nb00-preflight-table")
        save(page)
        errors, _ = saved_outputs(ws / notebook_path("00").name)  # its chart lives in the re-run widget
        assert errors == []
        clean_up_after_click(ws / notebook_path("00").name)  # the re-run wrote after the cleanup cell ran

        # notebooks 01 (the flood that stops on purpose) and 04 (charts, Kafka's CLI tools)
        for name, feature in (("01", "text=/stopped on purpose/"), ("04", "text=/\\$ kafka-get-offsets/")):
            open_notebook(page, notebook_path(name).name)
            run_all(page)
            assert screen_problems(page) == [], name
            save(page)
            charts, drawn = charts_on_screen(page)
            errors, saved_charts = saved_outputs(ws / notebook_path(name).name)
            assert errors == [] and charts == saved_charts >= 2 and drawn == charts, (name, charts, drawn)
            shoot_each(page, ".jp-NotebookPanel:not(.lm-mod-hidden) .vega-embed", f"nb{name}-chart")
            page.locator(feature).first.scroll_into_view_if_needed()
            shot(page, f"nb{name}-feature")  # 01: the flood's bar stopped on purpose; 04: Kafka's CLI
            if name == "01":  # the deliberate stop is drawn blue (info), never red (danger)
                flood = page.locator(".jp-OutputArea-output:has-text('PUBLISH 1 kB messages') .progress-bar")
                assert flood.count() == 1 and "progress-bar-info" in flood.get_attribute("class")
                # the disconnect window's re-run control measures another window (Pub/Sub creates no keys)
                window = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) "
                                      ".jp-OutputArea-output:has(button:has-text('Run again'))")
                window.locator(".widget-dropdown select").select_option(label="0.25")
                window.locator("button:has-text('Run again')").click()
                page.wait_for_selector("text=/disconnect window \\(s\\) = 0.25 \\(run 2/", timeout=UI_TIMEOUT)
                assert "The dashboard missed 50 prices: exactly those." in window.inner_text()
                window.scroll_into_view_if_needed()
                shot(page, "nb01-window-rerun-clicked")
    finally:
        shot(page, "lab-last-state")  # what the screen showed at the end (or when a step failed)
        page.close()
        context.close()

    assert requests.foreign == [], requests.foreign[:10]
    assert any(u.startswith(f"http://127.0.0.1:{server.port}/") for u in requests.urls)
    after = git_status()  # saving the learner's copies left the repository as it was
    assert set(after.splitlines()) ^ set(before.splitlines()) == set(), (before, after)
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
