"""Notebook 09's live page in a real headless Chromium (the shared harness: ``tests/browser.py`` and
the ``chromium`` fixture in ``conftest.py``).

A generator and a processor process run on a fresh topic (in a test namespace); the page is served
by :mod:`helpers.dashboard` on 127.0.0.1. Asserted: the page loads, shows numbers, the numbers
change while events flow (pushed through Redis Pub/Sub -> Server-Sent Events), the orders it shows
match the Redis view once the generator pauses, a write from the page is refused, and the page
requests nothing outside its own 127.0.0.1 address (every other request is aborted and recorded).
Screenshots: ``test-artifacts/browser/nb09-page-*.png``.
"""

from __future__ import annotations

import time
from urllib.parse import urlparse

import pytest
from browser import RequestLog, shot

pytestmark = [pytest.mark.browser, pytest.mark.serial]  # serial: a browser beside the parallel workers times out


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


def test_live_page_in_chromium(pipeline_running, chromium, r, kafka_admin):
    from helpers import pipeline

    board, own = pipeline_running["page"], urlparse(pipeline_running["page"].url).netloc
    assert urlparse(board.url).hostname == "127.0.0.1"
    context = chromium.new_context(viewport={"width": 1100, "height": 720})
    requests = RequestLog(own)
    requests.attach(context)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(board.url, wait_until="load", timeout=20_000)
        page.wait_for_function("document.getElementById('status').textContent === 'LIVE'", timeout=20_000)
        page.wait_for_function("Number(document.getElementById('updates').textContent.replace(/,/g, '')) > 5",
                               timeout=30_000)
        first = {k: number(page, k) for k in ("orders", "revenue", "updates")}
        rows_first = page.locator("#products tbody tr").count()
        shot(page, "nb09-page-1")
        time.sleep(3)
        second = {k: number(page, k) for k in ("orders", "revenue", "updates")}
        shot(page, "nb09-page-2")
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
        shot(page, "nb09-page-final", full_page=True)
    finally:
        page.close()
        context.close()
    assert errors == [], errors
    assert requests.foreign == [], f"the page requested hosts other than {own}: {requests.foreign}"
    assert any(u.endswith("/events") for u in requests.urls) and any(u.endswith("/snapshot") for u in requests.urls)
    assert board.stats["streams_opened"] >= 1 and board.stats["events_sent"] > 0, board.stats
