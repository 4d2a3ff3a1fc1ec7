"""Notebook 09's helpers on their own (no notebook): nothing hangs, the page is self-contained and
read-only, the recount arithmetic, and the processor's outage handling (it commits nothing while
its Redis is unreachable, then catches up with nothing lost)."""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.error
import urllib.request

import pytest


def test_page_loads_nothing_from_other_hosts():
    from helpers.dashboard_page import PAGE

    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", PAGE), "the page references another host"
    assert "@import" not in PAGE and "url(" not in PAGE


def test_aggregate_compare_and_minute_buckets():
    from helpers import pipeline

    events = [{"product": "latte", "qty": 2, "cents": 760, "ts": 1_700_000_000_000},
              {"product": "tea", "qty": 1, "cents": 220, "ts": 1_700_000_059_000},
              {"product": "latte", "qty": 1, "cents": 380, "ts": 1_700_000_061_000}]
    view = pipeline.aggregate(events)
    assert view == {"revenue": {"latte": 1140, "tea": 220}, "sold": {"latte": 3, "tea": 1},
                    "per_minute": {"2023-11-14 22:13": 1, "2023-11-14 22:14": 2}, "orders": 3}  # 22:13:20, 22:14:19, 22:14:21
    doubled = pipeline.aggregate(events + events[:1])
    diff = pipeline.compare(doubled, view)
    assert not diff["equal"] and diff["extra_orders"] == 1 and diff["extra_cents"] == 760
    assert diff["products_wrong"] == ["latte"]


def test_dashboard_refuses_writes_and_stops_its_streams_promptly(lab):
    from helpers import config, dashboard

    page = dashboard.serve(config.redis_url(), "streamslab:pytest:nb09:helpertest:view")
    try:
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(urllib.request.Request(page.url + "snapshot", data=b"{}", method="PUT"), timeout=5)
        assert err.value.code == 405
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(page.url + "nothing-here", timeout=5)
        assert err.value.code == 404
        snap = json.loads(urllib.request.urlopen(page.url + "snapshot", timeout=5).read())
        assert snap["orders"] == 0 and snap["revenue"] == {}
        got = {}
        reader = threading.Thread(target=lambda: got.update(n=dashboard.probe(page.url, seconds=30)), daemon=True)
        reader.start()
        time.sleep(1.0)
        assert page.stats["streams_open"] == 1
    finally:
        t0 = time.monotonic()
        page.stop()
    reader.join(10)
    assert not reader.is_alive() and time.monotonic() - t0 < 5   # an open event stream does not block stop()
    assert dashboard.stop_all() == 0


def test_processor_commits_nothing_while_its_redis_is_down(lab, r, kafka_admin):
    """A processor whose sink Redis is down retries without committing; after the restart the view
    equals the recount. (The notebook's section 4 runs the same with a live generator.)"""
    from helpers import clients, config, groups, pipeline, workers

    ns = config.namespace("nb09", run_id="helpertest")
    clients.cleanup_redis(r, ns)
    clients.cleanup_kafka(kafka_admin, ns)
    sink = lab.extra_redis("nb09-helpertest", appendonly=True, options={"appendfsync": "always"})
    topic = groups.create_topic(kafka_admin, ns.topic("orders"), 2)
    proc = None
    try:
        producer = clients.kafka_producer()
        import random
        rng = random.Random(3)
        for i in range(60):
            e = pipeline.order_event(f"t-{i}", rng)
            producer.send(topic, key=e["product"].encode(), value=json.dumps(e).encode())
        producer.flush(timeout=10)
        sink.kill()
        group, report = ns.group("p"), ns.key("p")
        proc = workers.ProcessWorker("helpers.pipeline_workers:processor", name="helpertest-processor", topic=topic,
                                     group=group, bootstrap=config.kafka_bootstrap(), sink_url=sink.url,
                                     report_url=config.redis_url(), view=ns.key("view"), report=report,
                                     retry_s=0.2, lifetime=120).start()
        workers.wait_until(lambda: int(pipeline.status(r, report).get("redis_errors", 0)) >= 3, 40, "failed attempts")
        assert groups.committed(kafka_admin, group, topic) in ({}, {0: 0, 1: 0})   # nothing committed
        sink.start()
        pipeline.wait_caught_up(kafka_admin, r, group, topic, report, timeout=40)
        diff = pipeline.compare(pipeline.read_view(sink.client(), ns.key("view")), pipeline.recount(kafka_admin, topic))
        assert diff["equal"] and diff["orders_view"] == 60, diff
        producer.close(timeout=10)
    finally:
        if proc is not None and proc.alive:
            pipeline.stop(r, ns.key("p"), proc)
        if sink.running:
            clients.cleanup_redis(sink.client(), ns)
        sink.stop()
        clients.cleanup_redis(r, ns)
        clients.cleanup_kafka(kafka_admin, ns)


def test_rate_control_sets_a_running_generator(lab, r, kafka_admin):
    """The "Set rate" control: its first run and a later click (``.run``) each set the generator's rate and
    measure the flow Kafka acknowledged; once the generator has exited, a click says so and writes nothing."""
    from helpers import clients, config, groups, pipeline, pipeline_view, workers

    ns = config.namespace("nb09", run_id="ratetest")
    clients.cleanup_redis(r, ns)
    clients.cleanup_kafka(kafka_admin, ns)
    topic = groups.create_topic(kafka_admin, ns.topic("orders"), 1)
    control = ns.key("generator")
    r.hset(control, mapping={"rate": 0, "produced": 0})
    gen = workers.ProcessWorker("helpers.pipeline_workers:generator", name="ratetest-generator", topic=topic,
                                bootstrap=config.kafka_bootstrap(), redis_url=config.redis_url(), control=control,
                                lifetime=60, max_seconds=60).start()
    try:
        ctl = pipeline_view.rate_control(r, control, gen, value=20, seconds=1)
        assert r.hget(control, "rate") == "20" and ctl.tried[0]["orders/s measured"] > 0, ctl.tried
        line, chart = ctl.run(80)                                   # what a click on "Set rate" does
        assert r.hget(control, "rate") == "80" and len(ctl.tried) == 2, ctl.tried
        assert ctl.tried[1]["orders/s measured"] > 1.5 * ctl.tried[0]["orders/s measured"], ctl.tried
        assert str(line).startswith("[OK] rate set to 80 orders/s") and chart.to_dict()["data"]
        pipeline.stop(r, control, gen)
        r.delete(control)
        assert str(ctl.run(40)).startswith("[STOPPED]") and not r.exists(control) and len(ctl.tried) == 2
    finally:
        if gen.alive:
            pipeline.stop(r, control, gen)
        clients.cleanup_redis(r, ns)
        clients.cleanup_kafka(kafka_admin, ns)


def test_cleanup_of_a_throwaway_redis_spares_a_live_run(lab, r):
    """Notebook 09 cleans its keys on a throwaway Redis too (section 4's sink): a run is judged live or
    dead by its heartbeat on the COURSE Redis, so a live run's keys there survive, a dead run's go."""
    from helpers import clients, config, runs

    me = config.namespace("nb09", run_id="sparetest")            # registered: live, heartbeat on `r`
    other, dead = config.Namespace("nb09", run_id="otherlive"), config.Namespace("nb09", run_id="deadrun")
    r.set(runs.live_key(other), "{}", px=15_000)                  # another kernel's live run
    sink = lab.extra_redis("nb09-sparetest")
    s = sink.client()
    try:
        for ns in (me, other, dead):
            s.set(ns.key("view:revenue"), 1)
        assert clients.cleanup_redis(s, me, previous_runs=True) == 2
        assert s.exists(other.key("view:revenue")) == 1 and s.exists(dead.key("view:revenue")) == 0
    finally:
        r.delete(runs.live_key(other))
        clients.cleanup_redis(s, other)
        sink.stop()


def test_exercise_checks_stop_a_function_that_never_returns(lab, r, kafka_admin, monkeypatch):
    """Both checks of notebook 09 call the learner's function through the shared harness: a function
    that never returns ends as TIME LIMIT within the limit, one that raises as NOT YET naming it."""
    import time

    from helpers import checks, clients, config
    from helpers.checks import nb09

    monkeypatch.setenv("COURSE_CHECK_TIMEOUT", "1")
    ns = config.namespace("nb09", run_id="hangtest")

    def apply_order(r, keys, partition, offset, event):
        while True:
            time.sleep(1)

    def latest_per_key(topic):
        while True:
            time.sleep(1)

    def broken(r, keys, partition, offset, event):
        return keys["no such key"]

    try:
        t0 = time.monotonic()
        hung = [nb09.idempotent_apply(apply_order, r, ns), nb09.latest_per_key(latest_per_key, kafka_admin, ns)]
        assert [c.status for c in hung] == [checks.TIME_LIMIT] * 2, hung
        assert "apply_order: your function did not return within 1 s" in hung[0].message
        assert "latest_per_key: your function did not return within 1 s" in hung[1].message
        assert time.monotonic() - t0 < 30
        raised = nb09.idempotent_apply(broken, r, ns)
        assert raised.status == checks.NOT_YET and "broken raised KeyError" in raised.message, raised
        assert list(r.scan_iter(match=ns.prefix + "check-*")) == []
    finally:
        clients.cleanup_redis(r, ns)
        clients.cleanup_kafka(kafka_admin, ns)
