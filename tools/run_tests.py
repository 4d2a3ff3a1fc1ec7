"""`make test`: the whole suite in two pytest passes, then one summary.

1. every test NOT marked ``serial``, on ``--workers`` pytest-xdist workers (``--dist loadfile``: a
   module stays on one worker, in the order ``tests/conftest.py`` gives; not ``loadgroup``, which
   pytest-xdist 3.8 silently ignores under pytest 9.2: pytest-dev/pytest-xdist#1386);
2. the ``serial`` tests, one at a time, with nothing else of the suite running beside them.

Each pass prints its failures as pytest does; the last lines add both passes up (counts, wall time,
the id of every failed test). Exit status 0 only when both passes passed. ``--workers 0`` runs
everything in one plain pytest (no xdist), in collection order. Extra arguments after ``--`` go to
both passes (e.g. ``-- -x`` or ``-- -k nb03``); ``-m EXPR`` is combined with each pass's own filter.
See "Parallel and serial tests" in CONTRIBUTING.md.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NO_TESTS = 5  # pytest's exit status when the filter selected nothing


def marker(own: str, extra: str | None) -> str:
    return f"({extra}) and ({own})" if extra else own


def run_pass(title: str, args: list[str], junit: Path) -> tuple[int, float]:
    print(f"\n--- {title}", flush=True)
    t0 = time.monotonic()
    rc = subprocess.call([sys.executable, "-m", "pytest", *args, f"--junitxml={junit}",
                          "-o", "junit_family=xunit1"], cwd=ROOT)
    return rc, time.monotonic() - t0


def tally(junit: Path) -> dict:
    """Counts and failed test ids from a pass's JUnit XML (empty when the pass did not write it)."""
    found = {"passed": 0, "failed": 0, "error": 0, "skipped": 0, "ids": []}
    if not junit.exists():
        return found
    for case in ET.parse(junit).getroot().iter("testcase"):
        path = (case.get("file") or case.get("classname", "").replace(".", "/") + ".py")
        test_id = f"{path}::{case.get('name')}"
        outcome = next((child.tag for child in case if child.tag in ("failure", "error", "skipped")), "passed")
        outcome = {"failure": "failed"}.get(outcome, outcome)
        found[outcome] += 1
        if outcome in ("failed", "error"):
            found["ids"].append(f"{outcome.upper()} {test_id}")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=int(os.environ.get("TEST_WORKERS", "3")),
                        help="xdist workers for the parallel pass (default 3, or $TEST_WORKERS); 0: no xdist")
    parser.add_argument("-m", dest="markexpr", default=None, help="a marker expression for both passes")
    parser.add_argument("--durations", type=int, default=10, help="the slowest N tests of each pass")
    parser.add_argument("pytest_args", nargs="*", help="more pytest arguments (after --)")
    opts = parser.parse_args(argv)

    common = ["-q", f"--durations={opts.durations}", *opts.pytest_args]
    if opts.workers <= 0:
        passes = [("all tests, one at a time", [*common, *(["-m", opts.markexpr] if opts.markexpr else [])])]
    else:
        passes = [
            (f"parallel pass: tests not marked serial, {opts.workers} workers",
             [*common, "-n", str(opts.workers), "--dist", "loadfile", "--no-loadscope-reorder",
              "-m", marker("not serial", opts.markexpr)]),
            ("serial pass: tests marked serial, one at a time",
             [*common, "-p", "no:xdist", "-m", marker("serial", opts.markexpr)]),
        ]

    t0 = time.monotonic()
    total = {"passed": 0, "failed": 0, "error": 0, "skipped": 0, "ids": []}
    lines, failed = [], False
    with tempfile.TemporaryDirectory(prefix="streamslab-junit-") as tmp:
        for i, (title, args) in enumerate(passes):
            junit = Path(tmp) / f"pass{i}.xml"
            rc, seconds = run_pass(title, args, junit)
            counts = tally(junit)
            for key in total:
                total[key] += counts[key]
            failed |= rc not in (0, NO_TESTS)
            lines.append(f"{title}: {counts['passed']} passed, {counts['failed'] + counts['error']} failed, "
                         f"{counts['skipped']} skipped in {seconds:.0f} s (pytest exit {rc})")

    print("\n=== make test: " + ("FAILED" if failed else "passed") +
          f" -- {total['passed']} passed, {total['failed']} failed, {total['error']} errors, "
          f"{total['skipped']} skipped in {time.monotonic() - t0:.0f} s")
    for line in lines:
        print("    " + line)
    for test_id in total["ids"]:
        print("    " + test_id)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
