"""Shared fixtures: the real services once per session, and notebook execution helpers.

Every notebook test runs the notebook end to end from a fresh kernel (testbook / nbclient) with
``COURSE_QUICK=1`` and a per-cell timeout, then asserts measured outcomes via ``tb.ref``.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
SOLUTIONS = NOTEBOOKS / "solutions"
CELL_TIMEOUT = int(os.environ.get("COURSE_CELL_TIMEOUT", "240"))

# "gw0", "gw1", ... in a worker of `pytest -n N` (pytest-xdist), "" in a plain run
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")

os.environ.setdefault("COURSE_QUICK", "1")
# tests neither add figures to the learner's claims ledger nor share a namespace with the learner's
# own open notebooks (each notebook's setup removes earlier runs of the same learner)
os.environ.setdefault("COURSE_LEARNER", "pytest")
os.environ.setdefault("COURSE_RESULTS", os.path.join(tempfile.mkdtemp(prefix="streamslab-results-"), "results.jsonl"))
if WORKER:
    # a worker inherits the controller's environment: give each worker a learner name and a results
    # file of its own, so parallel runs of one notebook never share names or read each other's figures
    os.environ["COURSE_LEARNER"] = f"{os.environ['COURSE_LEARNER']}-{WORKER}"
    os.environ["COURSE_RESULTS"] = os.path.join(tempfile.mkdtemp(prefix=f"streamslab-results-{WORKER}-"),
                                                "results.jsonl")
# the kernel must be this interpreter (the project's venv), whatever `python` is on PATH
os.environ["PATH"] = str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")
os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")


# --- parallel runs (pytest-xdist): see "Parallel and serial tests" in CONTRIBUTING.md -------------
SERIAL_REASON = ("marked serial (not safe beside other tests): run it without -n; "
                 "`make test` runs it in its second, one-at-a-time pass")


def pytest_collection_modifyitems(config, items):
    """Under ``pytest -n N --dist loadfile`` (``make test``'s parallel pass) a module runs on one
    worker, so a notebook its module-scoped fixture executes runs once. A ``serial`` test is skipped
    in a worker: it must not run beside other tests.

    The queue order is a heuristic for a short tail (a free worker takes the next module): modules
    that execute notebooks first, later notebooks first (they run longer), then the rest in
    collection order. The order is the same in every worker, as xdist requires."""
    for item in items:
        if WORKER and item.get_closest_marker("serial"):
            item.add_marker(pytest.mark.skip(reason=SERIAL_REASON))
    first_seen = {name: i for i, name in enumerate(dict.fromkeys(item.module.__name__ for item in items))}
    notebooks = {item.module.__name__ for item in items if item.get_closest_marker("notebook")}
    items.sort(key=lambda item: (0, -first_seen[item.module.__name__]) if item.module.__name__ in notebooks
               else (1, first_seen[item.module.__name__]))


@pytest.fixture(scope="session")
def lab():
    """The course's services, brought up once (idempotent: already-running ones are reused)."""
    from helpers.services import get_lab

    lab = get_lab()
    lab.up()
    return lab


@pytest.fixture(scope="session")
def r(lab):
    from helpers.clients import require_redis

    return require_redis()


@pytest.fixture(scope="session")
def kafka_admin(lab):
    from helpers.clients import require_kafka

    return require_kafka()


@pytest.fixture(scope="session")
def browser_artifacts():
    """``test-artifacts/browser/``, emptied once per session (every browser test saves its screenshots there)."""
    import shutil

    from browser import ARTIFACTS

    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    return ARTIFACTS


@pytest.fixture(scope="module")
def chromium(browser_artifacts):
    """Debian's headless Chromium driven by Playwright (installed with apt-get when missing and allowed),
    one per test module: see ``tests/browser.py``."""
    from browser import launch
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = launch(pw)
        yield browser
        browser.close()


def notebook_path(name: str) -> Path:
    """``notebook_path("00")`` -> notebooks/00_*.ipynb (exactly one must match)."""
    matches = sorted(NOTEBOOKS.glob(f"{name}_*.ipynb"))
    assert len(matches) == 1, f"expected one notebook for {name}, found {matches}"
    return matches[0]


def run_notebook(name: str, execute=True):
    """A testbook context that executes the notebook from a fresh kernel (cwd = notebooks/);
    ``execute`` may also be a list of cell indexes or tags (e.g. every cell but the cleanup)."""
    from testbook import testbook

    return testbook(str(notebook_path(name)), execute=execute, timeout=CELL_TIMEOUT,
                    kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}})


def solution(name: str) -> str:
    """The code of ``notebooks/solutions/<name>.py``, to inject in place of an exercise stub."""
    return (SOLUTIONS / f"{name}.py").read_text()


def cell_tags(path: Path) -> list[str]:
    nb = json.loads(path.read_text())
    return [t for c in nb["cells"] for t in c.get("metadata", {}).get("tags", [])]


def plain(tb, expr: str):
    """``expr`` evaluated in the kernel, returned as plain JSON data."""
    return tb.value(f"__import__('json').loads(__import__('json').dumps({expr}, default=str))")


@pytest.fixture
def ref_value():
    """The :func:`plain` evaluator as a fixture: ``ref_value(tb, "measured")``."""
    return plain


def module_notebook(name: str):
    """A module-scoped fixture: the notebook executed once from a fresh kernel, shared by the module's tests
    (``nb = module_notebook("03")``)."""

    @pytest.fixture(scope="module")
    def nb(lab):
        with run_notebook(name) as tb:
            yield tb

    return nb


def cleanup_then_rerun(tb, r) -> str:
    """Run the cleanup cell (asserting no key of the notebook is left), then Run All again in the same
    kernel (asserting it took a new namespace). Returns the notebook's key prefix."""
    prefix = tb.value("ns.notebook_prefix")
    tb.execute_cell("cleanup")
    assert list(r.scan_iter(match=prefix + "*")) == []
    first_run = tb.value("ns.prefix")
    rerun_all(tb)
    assert tb.value("ns.prefix") != first_run
    return prefix


def rerun_all(tb) -> None:
    """Run every code cell again, in order, in the SAME kernel (the 'Run All twice' check)."""
    for index, cell in enumerate(tb.cells):
        if cell.cell_type == "code":
            tb.execute_cell(index)


def plain_redis_server(data_dir: Path, first_port: int, *args: str, password: str | None = None):
    """A redis-server the course did NOT start (no persistence, data in ``data_dir``) on the first
    free port from ``first_port``, ready: returns ``(port, Popen)``. A port another test took between
    the check and the bind (tests run in parallel) is detected by the server's pid and skipped."""
    import subprocess
    import time

    import redis

    from helpers.services.process import free_port
    from helpers.services.redis_server import find_redis_server

    port = first_port
    for _ in range(5):
        port = free_port(port)
        proc = subprocess.Popen([find_redis_server(), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                 "--dir", str(data_dir), *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=port, password=password, socket_timeout=2, socket_connect_timeout=2)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if client.info("server").get("process_id") == proc.pid:
                    return port, proc
                break  # another process answers on this port: ours cannot bind it
            except redis.RedisError:
                time.sleep(0.05)
        proc.kill()
        proc.wait(5)
        port += 1
    raise AssertionError(f"could not start a redis-server on a free port from {first_port}")


@pytest.fixture(scope="session")
def scratch_course(lab, tmp_path_factory):
    """A second, throwaway course (its own ``COURSE_DIR`` with its own Redis and Kafka, the broker
    jars shared) for tests that kill a server or change a server-wide setting. Notebooks find it
    with ``env={"COURSE_DIR": str(scratch_course.home)}``, through its state files."""
    from helpers.errors import ServiceSetupError
    from helpers.services import Lab
    from helpers.services.process import free_port

    home = tmp_path_factory.mktemp("scratch-course")
    (home / "kafka").mkdir()
    (home / "kafka" / "libs").symlink_to(lab.kafka.libs)
    for attempt in range(3):  # a worker of a parallel run may start its own scratch course at the same time
        kafka_port = free_port(29092 + 10 * attempt)
        while free_port(kafka_port + 1) != kafka_port + 1:  # the broker port and its controller port
            kafka_port = free_port(kafka_port + 2)
        # ports away from the ranges the course and its tests pick by default: a killed server's port
        # must still be free when the test restarts it (pinned: the supervisor never moves them)
        scratch = Lab(home, redis_port=free_port(26379 + 10 * attempt), kafka_port=kafka_port, log=lambda *_: None)
        try:
            scratch.up()
            break
        except ServiceSetupError:  # a port taken between the check and the bind: other ports
            scratch.down()
            if attempt == 2:
                raise
    yield scratch
    scratch.down()
