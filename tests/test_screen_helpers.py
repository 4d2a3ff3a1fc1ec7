"""The learner's-screen helpers without a browser: renderer choice, widgets' headless fallbacks,
prediction records, the expected-stop bar, the workspace and the CLI wrappers (real tools)."""

from __future__ import annotations

import re
import subprocess

import pandas as pd
import pytest

from helpers import charts, cli, progress, results, ui, widgets, workspace


@pytest.fixture
def results_file(tmp_path, monkeypatch):
    path = tmp_path / "results.jsonl"
    monkeypatch.setenv("COURSE_RESULTS", str(path))
    return path


def test_renderer_draws_svg_headless_and_a_jupyterchart_in_a_live_lab(monkeypatch):
    import altair as alt

    chart = charts.bars(pd.DataFrame({"k": ["a", "b"], "n": [3, 5]}), "k", "n", title="two bars")
    assert alt.renderers.active == charts.RENDERER
    monkeypatch.setenv("COURSE_DISPLAY", "static")
    bundle = chart._repr_mimebundle_()
    bundle = bundle[0] if isinstance(bundle, tuple) else bundle
    assert set(bundle) == {"image/svg+xml", "text/plain"} and bundle["text/plain"] == "Chart: two bars"
    assert bundle["image/svg+xml"].count("<title>") == 2 and "k: b; n: 5" in bundle["image/svg+xml"]
    assert "cdn" not in bundle["image/svg+xml"] and "http" not in bundle["image/svg+xml"].replace(
        "http://www.w3.org", "")
    monkeypatch.setenv("COURSE_DISPLAY", "interactive")
    bundle = chart._repr_mimebundle_()
    bundle = bundle[0] if isinstance(bundle, tuple) else bundle
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert alt.JupyterChart._is_offline  # Vega comes inside the widget's module, from vl-convert


def test_interactive_is_false_outside_a_kernel(monkeypatch):
    monkeypatch.delenv("COURSE_DISPLAY", raising=False)
    assert ui.interactive() is False


def test_swimlane_has_one_lane_per_worker_and_marks_each_kill(monkeypatch):
    monkeypatch.setenv("COURSE_DISPLAY", "static")
    events = pd.DataFrame([
        {"worker": "w1", "t": 0.1, "event": "popped", "job": 1}, {"worker": "w1", "t": 0.4, "event": "killed", "job": 1},
        {"worker": "w2", "t": 0.2, "event": "popped", "job": 2}, {"worker": "w2", "t": 1.0, "event": "claimed", "job": 1},
    ])
    svg = charts.svg(charts.swimlane(events, kills={"w3": 0.7}))
    assert ">SIGKILL w3<" in svg and ">killed w1<" in svg
    assert all(f">{lane}<" in svg for lane in ("w1", "w2", "w3"))
    assert svg.count(charts.KILL_COLOR) >= 4  # two rules and two crosses


def test_prediction_is_kept_and_compared_with_the_measurement(results_file, monkeypatch):
    monkeypatch.setenv("COURSE_DISPLAY", "static")
    guess = widgets.predict("nb99-missed", "How many?", notebook="99", unit="messages", claim="C03")
    assert "[NO PREDICTION]" in repr(widgets.compare(guess, 60))
    assert not results_file.exists()  # nothing to keep without a prediction
    guess.set(40)
    verdict = widgets.compare(guess, 60, note="They were published while it was away.")
    assert verdict.outcome == "close" and repr(verdict).startswith("[CLOSE] you predicted 40 messages; measured 60")
    table = results.predictions("99")
    assert table.to_dict("records")[0] | {"time": None} == {
        "notebook": "99", "key": "nb99-missed", "claim": "C03", "question": "How many?", "value": 40,
        "measured": 60, "unit": "messages", "outcome": "close", "time": None}
    results.record("C03", "missed", 60, "messages", notebook="99")
    assert results.latest("C03")["kind"] == "measurement"
    results.record_prediction("x", 1, notebook="99", claim="C03", metric="missed")
    assert results.latest("C03", "missed")["value"] == 60  # a prediction is never the latest figure
    with pytest.raises(ValueError):
        widgets.predict("k", "q", notebook="99", options=["a"]).set("b")  # not one of the options


@pytest.mark.parametrize("predicted, measured, expected", [
    (10, 10.5, "as predicted"), (10, 18, "close"), (10, 25, "surprise"), (-1, 5, "surprise"),
    ("Kafka topic", "Kafka topic", "as predicted"), ("Redis List", "Kafka topic", "surprise"), (None, 3, "no prediction")])
def test_outcome(predicted, measured, expected):
    assert widgets.outcome(predicted, measured) == expected


def test_rerun_runs_now_and_again_and_shows_a_plain_fallback(monkeypatch, capsys):
    monkeypatch.setenv("COURSE_DISPLAY", "static")
    ctl = widgets.rerun(lambda n: (n * 2, f"ran {n}"), value=3, options=[1, 3, 5], label="n")
    assert ctl.value == 3 and ctl.result == (6, "ran 3")
    assert ctl.run(5) == (10, "ran 5") and [h[0] for h in ctl.history] == [3, 5]
    ctl._ipython_display_()
    shown = capsys.readouterr().out
    assert "n = 5 (run 2" in shown and "10" in shown and "ran 5" in shown
    with pytest.raises(ValueError):
        widgets.rerun(lambda v: v, value=1)  # neither options nor a range


def test_live_view_redraws_while_the_experiment_runs_and_draws_the_last_frame(monkeypatch):
    import time

    monkeypatch.setenv("COURSE_DISPLAY", "static")
    state = {"n": 0}
    with widgets.LiveView(lambda: pd.DataFrame({"n": [state["n"]]}), every=0.05) as view:
        for _ in range(10):
            state["n"] += 1
            time.sleep(0.03)
    assert view.frames >= 4 and view.error is None
    broken = widgets.LiveView(lambda: 1 / 0, every=0.05).start()
    assert isinstance(broken.stop().error, ZeroDivisionError)


def test_progress_bar_says_why_it_stopped_and_reports_errors(monkeypatch):
    monkeypatch.setenv("COURSE_DISPLAY", "static")
    with progress.bar(40_000, "flood", unit="msg") as bar:
        bar.update(4200)
        bar.stop("both subscribers were cut off")
    assert str(bar.summary()).startswith("[STOPPED] flood: 4,200 of at most 40,000 msg")
    assert "stopped on purpose: both subscribers were cut off" in str(bar.summary())
    with pytest.raises(RuntimeError), progress.bar(10, "work") as failing:
        failing.update(3)
        raise RuntimeError("boom")
    assert str(failing.summary()).startswith("[FAILED]")
    done = progress.bar(2, "done")
    done.update(2)
    assert str(done.summary()).startswith("[OK]")


def test_workspace_copies_new_notebooks_never_overwrites_and_restores(tmp_path):
    ws = tmp_path / "ws"
    copied = workspace.sync(ws)
    names = [p.name for p in workspace.course_notebooks()]
    assert [p.name for p in copied] == names and (ws / "solutions" / "00_checkin.py").exists()
    assert "Welcome to Streams Lab" in (ws / "README.md").read_text()
    mine = ws / names[0]
    mine.write_text('{"learner": "my work"}')
    (ws / names[1]).unlink()                                   # as if the course added it later
    assert [p.name for p in workspace.sync(ws)] == [names[1]]   # only the missing one is copied
    assert mine.read_text() == '{"learner": "my work"}'
    restored, backup = workspace.restore(names[0][:2], ws)
    assert restored.read_bytes() == workspace.course_notebooks()[0].read_bytes()
    assert backup.read_text() == '{"learner": "my work"}' and backup.parent.name == ".backup"
    with pytest.raises(SystemExit):
        workspace.restore("97", ws)


def test_workspace_is_ignored_by_git():
    for path in ("workspace/00_environment_check.ipynb", "test-artifacts/browser/x.png"):
        assert subprocess.run(["git", "check-ignore", "-q", path], cwd=workspace.PROJECT_ROOT).returncode == 0


def test_mask_hides_passwords(monkeypatch):
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", "hunter22")
    text = cli.mask('redis://u:s3cr3t@h:1/0 password="x y" sasl password=abc hunter22')
    assert "s3cr3t" not in text and "hunter22" not in text and "abc" not in text and "x y" not in text


def test_redis_cli_runs_against_the_course_redis_and_stops_at_its_timeout(r):
    assert cli.redis("PING").output.strip() == "PONG"
    monitor = cli.redis("MONITOR", timeout=1)
    assert monitor.timed_out and monitor.ok and "[STOPPED]" in repr(monitor)
    refused = cli.redis("XADD", "streamslab:never", "MAXLEN", "x", "*", "a", "1")   # redis-cli exits 0 on this
    assert refused.returncode == 0 and not refused.ok and refused.error_reply == "ERR"
    assert "[ERROR REPLY]" in repr(refused) and "[OK]" not in repr(refused) and "ERROR REPLY" in refused._repr_html_()
    assert cli.redis("ECHO", "ERRAND").ok                                           # a value is not an error reply
    args, env = cli.redis_args("redis://alice:pw%21@10.0.0.9:7000/2")
    assert args == ["-h", "10.0.0.9", "-p", "7000", "-n", "2", "--user", "alice"] and env == {"REDISCLI_AUTH": "pw!"}


def test_kafka_console_script_and_python_api_run_the_real_tools(kafka_admin):
    from helpers import config

    listed = subprocess.run(["kafka-topics", "--bootstrap-server", config.kafka_bootstrap(), "--list"],
                            capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0 and "__consumer_offsets" in listed.stdout
    bad = cli.kafka("kafka-topics", "--describe", "--topic", "streamslab-no-such-topic")
    assert not bad.ok and "[FAILED]" in repr(bad)
    assert cli.kafka("kafka-topics", "--list").command.startswith(
        f"kafka-topics --bootstrap-server {config.kafka_bootstrap()} --list")
    with pytest.raises(ValueError):
        cli.java_command("kafka-no-such-tool", [])
    section = (workspace.PROJECT_ROOT / "pyproject.toml").read_text().split("[project.scripts]")[1].split("\n[")[0]
    scripts = dict(re.findall(r'^([\w-]+) = "([^"]+)"', section, flags=re.M))
    assert scripts == {tool: "helpers.cli:tool_main" for tool in cli.KAFKA_TOOLS}  # one console script each
