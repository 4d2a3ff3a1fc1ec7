"""Notebook 09's live page in a real headless Chromium (Debian's ``chromium``, driven by Playwright).

A generator and a processor process run on a fresh topic (in a test namespace); the page is served
by :mod:`helpers.dashboard` on 127.0.0.1. Asserted: the page loads, shows numbers, the numbers
change while events flow (pushed through Redis Pub/Sub -> Server-Sent Events), the orders it shows
match the Redis view once the generator pauses, a write from the page is refused, and the page
requests nothing outside its own 127.0.0.1 address (every other request is aborted and recorded).
Screenshots: ``test-artifacts/nb09/``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest
from conftest import ROOT

pytestmark = pytest.mark.browser

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]
ARTIFACTS = ROOT / "test-artifacts" / "nb09"


def chromium_path() -> str:
    """Debian's chromium, installed with apt-get when missing and allowed (root or sudo -n).
    (The `ui` branch brings a shared harness for this; switch to it once it is on main.)"""
    found = shutil.which("chromium") or ("/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None)
    if found:
        return found
    prefix = [] if os.geteuid() == 0 else (["sudo", "-n"] if shutil.which("sudo") else None)
    if prefix is None or not shutil.which("apt-get"):
        pytest.fail("chromium is not installed: run `sudo apt-get install chromium`, then `make test` again.")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(prefix + ["apt-get", "update", "-qq"], env=env, capture_output=True, timeout=600)
    res = subprocess.run(prefix + ["apt-get", "install", "-y", "-qq", "chromium"], env=env,
                         capture_output=True, text=True, timeout=1200)
    found = shutil.which("chromium")
    if not found:
        pytest.fail(f"`apt-get install chromium` failed: {res.stderr.strip()[-400:]}")
    return found


@pytest.fixture
def pipeline_running(lab, r, kafka_admin):
    """A generator + processor on a fresh topic, and the page; everything removed afterwards."""
    from helpers import clients, config, dashboard, groups, pipeline, workers

    ns = config.namespace("nb09", run_id="pagetest")
    clients.cleanup_redis(r, ns)
    clients.cleanup_kafka(kafka_admin, ns)
    topic = groups.create_topic(kafka_admin, ns.topic("orders"), 3)
    view, control = ns.key("view"), ns.key("generator")
    r.hset(control, mapping={"rate": 30, "produced": 0})
    common = dict(topic=topic, bootstrap=config.kafka_bootstrap(), max_seconds=180, lifetime=180)
    gen = workers.ProcessWorker("helpers.pipeline_workers:generator", name="pagetest-generator", redis_url=config.redis_url(),
                                control=control, **common).start()
    proc = workers.ProcessWorker("helpers.pipeline_workers:processor", name="pagetest-processor", group=ns.group("processor"),
                                 sink_url=config.redis_url(), report_url=config.redis_url(), view=view,
                                 report=ns.key("processor"), **common).start()
    page = dashboard.serve(config.redis_url(), view, title="Page test")
    try:
        yield {"ns": ns, "page": page, "view": view, "control": control, "topic": topic, "group": ns.group("processor")}
    finally:
        page.stop()
        pipeline.stop(r, control, gen, timeout=15)
        pipeline.stop(r, ns.key("processor"), proc, timeout=15)
        clients.cleanup_redis(r, ns)
        clients.cleanup_kafka(kafka_admin, ns)


def number(page, element_id: str) -> float:
    text = page.locator(f"#{element_id}").inner_text()
    return float(text.replace("$", "").replace(",", "")) if text.strip() not in ("", "-") else -1.0


def test_live_page_in_chromium(pipeline_running, r, kafka_admin):
    from playwright.sync_api import sync_playwright

    from helpers import pipeline

    board, own = pipeline_running["page"], urlparse(pipeline_running["page"].url).netloc
    assert urlparse(board.url).hostname == "127.0.0.1"
    requested, foreign = [], []

    def route(rt):
        url = rt.request.url
        requested.append(url)
        if urlparse(url).netloc == own or url.startswith(("data:", "blob:", "about:")):
            rt.continue_()
        else:
            foreign.append(url)
            rt.abort()

    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1100, "height": 720})
            context.route("**/*", route)
            context.on("request", lambda req: None if urlparse(req.url).netloc == own or req.url in foreign
                       or req.url.startswith(("data:", "blob:", "about:")) else foreign.append(req.url))
            page = context.new_page()
            errors = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(board.url, wait_until="load", timeout=20_000)
            page.wait_for_function("document.getElementById('status').textContent === 'LIVE'", timeout=20_000)
            page.wait_for_function("Number(document.getElementById('updates').textContent.replace(/,/g, '')) > 5",
                                   timeout=30_000)
            first = {k: number(page, k) for k in ("orders", "revenue", "updates")}
            rows_first = page.locator("#products tbody tr").count()
            page.screenshot(path=str(ARTIFACTS / "page-1.png"))
            time.sleep(3)
            second = {k: number(page, k) for k in ("orders", "revenue", "updates")}
            page.screenshot(path=str(ARTIFACTS / "page-2.png"))
            assert first["orders"] > 0 and first["revenue"] > 0 and rows_first > 0, first
            assert all(second[k] > first[k] for k in first), (first, second)   # the numbers moved

            # pause the generator: once the processor has caught up, the page shows the Redis view exactly
            pipeline.pause(r, pipeline_running["control"])
            pipeline.wait_caught_up(kafka_admin, r, pipeline_running["group"], pipeline_running["topic"],
                                    pipeline_running["ns"].key("processor"))
            view = pipeline.read_view(r, pipeline_running["view"])
            page.wait_for_function(f"document.getElementById('orders').textContent.replace(/,/g, '') === '{view['orders']}'",
                                   timeout=10_000)
            shown = {row.get_attribute("data-product"): int(row.locator("td").nth(2).inner_text())
                     for row in page.locator("#products tbody tr").all()}
            assert shown == view["sold"], (shown, view["sold"])
            assert number(page, "revenue") == pytest.approx(sum(view["revenue"].values()) / 100)

            # the page cannot write back
            status = page.evaluate("fetch('/snapshot', {method: 'POST', body: '{}'}).then(r => r.status)")
            assert status == 405
            page.screenshot(path=str(ARTIFACTS / "page-final.png"), full_page=True)
        finally:
            browser.close()
    assert errors == [], errors
    assert foreign == [], f"the page requested hosts other than {own}: {foreign}"
    assert any(u.endswith("/events") for u in requested) and any(u.endswith("/snapshot") for u in requested)
    assert board.stats["streams_opened"] >= 1 and board.stats["events_sent"] > 0, board.stats
    assert Path(ARTIFACTS / "page-2.png").stat().st_size > 0
