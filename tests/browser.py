"""Headless Chromium (Debian's ``chromium``, driven by Playwright) for the learner's-screen tests.

Playwright's PyPI package bundles its driver; its own browser downloads are never used: the
browser is Debian's, installed here through apt-get when missing and allowed (root or ``sudo -n``),
as ``make test`` does for redis-server. The ``chromium`` fixture in ``conftest.py`` launches it once per
test module; :class:`RequestLog` records (and aborts) requests to other hosts; :func:`shot` saves screenshots.

The JupyterLab tests (``test_browser.py``, ``test_nb03_browser.py``, ``test_nb10_browser.py``) share the
rest: the :func:`learner_lab` fixture (JupyterLab as ``make lab`` starts it, one per test module that
imports it), :func:`lab_page` (a page of that lab, checked afterwards for foreign requests and an
unchanged ``git status``), :func:`run_on_screen` (open a notebook, Run All Cells, no error output,
every chart drawn), :func:`save_checked`, and the smaller page helpers they are made of.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

import pytest

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]
ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts" / "browser"


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None


def ensure_chromium(log=print) -> str:
    """Path of Debian's chromium, installed with apt-get when missing and we may (root or sudo -n)."""
    # the same apt-get path as Java and Maven
    from helpers.services.kafka_server import require_tool

    return find_chromium() or require_tool("chromium", "chromium", "install Debian's chromium for the browser "
                                           "tests (`sudo apt-get install chromium`)", log)


class RequestLog:
    """Every request a page makes, and the ones that went to a host other than the allowed one.

    Requests to other hosts are aborted (so an offline machine and a connected one behave the
    same) and recorded as ``foreign``; ``data:``/``blob:`` URLs are local by definition.
    """

    def __init__(self, allowed_netloc: str | None):
        self.allowed = allowed_netloc
        self.urls: list[str] = []
        self.foreign: list[str] = []

    def is_local(self, url: str) -> bool:
        parsed = urlparse(url)
        if parsed.scheme in ("data", "blob", "about", "chrome-error"):
            return True
        if parsed.scheme == "file":
            return self.allowed is None
        return parsed.scheme in ("http", "https", "ws", "wss") and parsed.netloc == self.allowed

    def attach(self, context) -> None:
        def route(r):
            url = r.request.url
            self.urls.append(url)
            if self.is_local(url):
                r.continue_()
            else:
                self.foreign.append(url)
                r.abort()

        context.route("**/*", route)
        context.on("request", lambda req: None if self.is_local(req.url) or req.url in self.foreign
                   else self.foreign.append(req.url))
        context.on("websocket", lambda ws: None if self.is_local(ws.url) else self.foreign.append(ws.url))


def launch(playwright):
    return playwright.chromium.launch(executable_path=ensure_chromium(), headless=True, args=CHROMIUM_ARGS)


def shot(page, name: str, **options) -> Path:
    """A screenshot as ``test-artifacts/browser/<name>.png`` (``full_page=True`` for the whole page)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), **options)
    return path


# --- JupyterLab as the learner sees it -----------------------------------------------------------
RUN_ALL_TIMEOUT = 240_000  # ms, per notebook (quick mode runs each in well under a minute)
UI_TIMEOUT = 60_000
PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"  # the notebook on screen


def git_status() -> str:
    return subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=ROOT,
                          capture_output=True, text=True, timeout=30).stdout


@pytest.fixture(scope="module")
def learner_lab(lab, tmp_path_factory):
    """JupyterLab as `make lab` runs it, serving a temporary workspace inside the git-ignored
    ``workspace/`` (so `git status` sees whatever the lab or its kernels write into the repo).
    A test module imports it (``from browser import learner_lab``) and gets a lab of its own."""
    from helpers import workspace
    from helpers.services.jupyter_server import JupyterLab
    from helpers.services.process import free_port

    # the lab's kernels inherit this process's environment: forced static, they draw no chart and no widget
    assert os.environ.get("COURSE_DISPLAY", "") != "static", \
        "COURSE_DISPLAY=static is set in the test process: unset it (the lab's kernels would draw no chart)"
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


@contextmanager
def lab_page(chromium, server, last_shot: str):
    """A page of ``server``'s lab at its start URL, every request recorded (those to another host
    aborted). On the way out, the screen is saved as ``<last_shot>.png`` (also when a step failed);
    when the block succeeded, no request went to another host, the lab's own served the page, and
    `git status` is as it was (the learner's copies went into the git-ignored workspace)."""
    before = git_status()
    context = chromium.new_context(viewport={"width": 1400, "height": 1000})
    requests = RequestLog(f"127.0.0.1:{server.port}")
    requests.attach(context)
    page = context.new_page()
    try:
        page.goto(server.url)
        yield page
    finally:
        shot(page, last_shot)  # what the screen showed at the end (or when a step failed)
        page.close()
        context.close()
    assert requests.foreign == [], requests.foreign[:10]
    assert any(u.startswith(f"http://127.0.0.1:{server.port}/") for u in requests.urls)
    after = git_status()
    assert set(after.splitlines()) ^ set(before.splitlines()) == set(), (before, after)


def open_notebook(page, name: str) -> None:
    page.locator(f".jp-DirListing-item[title^='Name: {name}']").first.dblclick()
    page.wait_for_selector(".jp-NotebookPanel:has(.jp-Notebook) >> nth=-1", timeout=UI_TIMEOUT)
    page.wait_for_selector(f"{PANEL} .jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=UI_TIMEOUT)


STARTED = f"""() => [...document.querySelectorAll('{PANEL} .jp-CodeCell .jp-InputArea-prompt')]
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
    page.wait_for_function(f"""() => {{
        const nb = document.querySelector('{PANEL}');
        const prompts = [...nb.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')].map(p => p.textContent);
        return prompts.length > 0 && prompts.every(t => /\\[\\d+\\]/.test(t));
    }}""", timeout=RUN_ALL_TIMEOUT)
    page.wait_for_timeout(1500)  # the last widget views and charts attach


def save(page) -> None:
    page.keyboard.press("Control+s")
    page.wait_for_function("() => !document.querySelector('.lm-TabBar-tab.jp-mod-current.jp-mod-dirty')",
                           timeout=UI_TIMEOUT)


def screen_problems(page) -> list[str]:
    """Error outputs and broken renders in the visible notebook."""
    return page.evaluate(f"""() => {{
        const nb = document.querySelector('{PANEL}');
        const out = [];
        for (const el of nb.querySelectorAll('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'))
            out.push('stderr: ' + el.textContent.slice(0, 300));
        for (const el of nb.querySelectorAll('.jp-OutputArea-output'))
            if (/Traceback|Error displaying widget|Error loading script|model not found/.test(el.textContent))
                out.push('error: ' + el.textContent.slice(0, 300));
        return out;
    }}""")


def charts_on_screen(page) -> tuple[int, int]:
    """(charts, charts drawn): each Altair chart is a vega-embed with an SVG or a canvas inside."""
    return tuple(page.evaluate(f"""() => {{
        const nb = document.querySelector('{PANEL}');
        const embeds = [...nb.querySelectorAll('.vega-embed')];
        const drawn = embeds.filter(e => {{ const g = e.querySelector('canvas, svg.marks');
                                           return g && g.getBoundingClientRect().width > 50; }});
        return [embeds.length, drawn.length];
    }}"""))


def run_on_screen(page, name: str, min_charts: int) -> int:
    """Open ``name`` from the file browser, Run All Cells, and check the screen: no error output, at
    least ``min_charts`` charts and every one drawn. Returns how many charts are on screen."""
    page.wait_for_selector(f".jp-DirListing-item[title^='Name: {name}']", timeout=UI_TIMEOUT)
    open_notebook(page, name)
    run_all(page)
    assert screen_problems(page) == [], name
    charts, drawn = charts_on_screen(page)
    assert charts >= min_charts and drawn == charts, (name, charts, drawn)
    return charts


def rerun_control(page, button: str, choice: str, echo: str):
    """The output on screen holding a re-run control (a dropdown and ``button``): pick ``choice``,
    click, and wait until it reports ``<echo> = <choice> (run 2``; returns that output's locator."""
    control = page.locator(f"{PANEL} .jp-OutputArea-output:has(button:has-text('{button}'))")
    control.locator(".widget-dropdown select").select_option(label=choice)
    control.locator(f"button:has-text('{button}')").click()
    pattern = re.sub(r"([\\^$.|?*+()\[\]{}/])", r"\\\1", f"{echo} = {choice} (run 2")
    page.wait_for_selector(f"{PANEL} >> text=/{pattern}/", timeout=UI_TIMEOUT)
    page.wait_for_timeout(1000)  # the re-drawn chart attaches
    return control


def saved_outputs(path: Path) -> tuple[list, int]:
    """(error outputs, chart outputs) of a saved notebook."""
    nb = json.loads(path.read_text())
    outputs = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]
    errors = [o for o in outputs if o["output_type"] == "error"
              or (o["output_type"] == "stream" and o["name"] == "stderr")]
    charts = [o for o in outputs if "".join(o.get("data", {}).get("text/plain", "")).startswith("Chart:")]
    return errors, len(charts)


def save_checked(page, copy: Path) -> int:
    """Save the notebook on screen (the learner's ``copy``) and check the saved file has no error
    output; returns how many chart outputs it holds."""
    save(page)
    errors, charts = saved_outputs(copy)
    assert errors == [], (copy.name, errors[:3])
    return charts


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
