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

os.environ.setdefault("COURSE_QUICK", "1")
# tests neither add figures to the learner's claims ledger nor share a namespace with the learner's
# own open notebooks (each notebook's setup removes earlier runs of the same learner)
os.environ.setdefault("COURSE_LEARNER", "pytest")
os.environ.setdefault("COURSE_RESULTS", os.path.join(tempfile.mkdtemp(prefix="streamslab-results-"), "results.jsonl"))
# the kernel must be this interpreter (the project's venv), whatever `python` is on PATH
os.environ["PATH"] = str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")
os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")


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


@pytest.fixture(scope="session")
def scratch_course(lab, tmp_path_factory):
    """A second, throwaway course (its own ``COURSE_DIR`` with its own Redis and Kafka, the broker
    jars shared) for tests that kill a server or change a server-wide setting. Notebooks find it
    with ``env={"COURSE_DIR": str(scratch_course.home)}``, through its state files."""
    from helpers.services import Lab
    from helpers.services.process import free_port

    home = tmp_path_factory.mktemp("scratch-course")
    (home / "kafka").mkdir()
    (home / "kafka" / "libs").symlink_to(lab.kafka.libs)
    kafka_port = free_port(29092)
    while free_port(kafka_port + 1) != kafka_port + 1:  # the broker port and its controller port
        kafka_port = free_port(kafka_port + 2)
    # ports away from the ranges the course and its tests pick by default: a killed server's port
    # must still be free when the test restarts it
    scratch = Lab(home, redis_port=free_port(26379), kafka_port=kafka_port, log=lambda *_: None)
    scratch.up()
    yield scratch
    scratch.down()
