"""Time each course notebook's Run All from a fresh kernel, as a learner would run it (or quick, as the tests).

Used for the per-notebook timings of ``docs/instructor.md``: run it on the room's machine before a
class. Each notebook runs with its own learner name (``timing``) and a throwaway results file, so a
learner's claims ledger is not touched; its cleanup cell removes what it created.

    python tools/time_notebooks.py [--quick] [--json out.jsonl] [00 01 ...]

Prints one row per notebook: seconds, the slowest cell, and the error if a cell failed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"


def execute(path: Path, env: dict | None = None, cwd: Path | None = None, timeout: int = 600,
            append: str | None = None) -> dict:
    """Run All of ``path`` in a fresh kernel (environment ``env`` on top of this one, working folder
    ``cwd``; ``append``: code run after the last cell, in the same kernel). Returns ``{"notebook", "seconds", "slowest_cell", "slowest_s", "error", "nb"}``; ``error``
    is ``None`` or ``"cell N: Name: message"``. The executed notebook is returned in ``nb``."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    nb = nbformat.read(str(path), as_version=4)
    if append:
        nb.cells.append(nbformat.v4.new_code_cell(append))
    ended: dict[int, float] = {}
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(cwd or path.parent)}},
                            on_cell_complete=lambda cell, cell_index: ended.__setitem__(cell_index, time.monotonic()))
    t0, error = time.monotonic(), None
    try:
        client.execute(env={**os.environ, **(env or {}),   # the kernel: this interpreter (the project's venv)
                            "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")})
    except (CellExecutionError, CellTimeoutError, DeadKernelError) as exc:
        index = max(ended) if ended else None
        error = f"cell {index}: {type(exc).__name__}: {str(exc).strip().splitlines()[-1][:300]}"
    seconds = time.monotonic() - t0
    marks = sorted(ended.items())
    spans = {i: t - (marks[k - 1][1] if k else t0) for k, (i, t) in enumerate(marks)}
    slowest = max(spans, key=spans.get) if spans else None
    return {"notebook": path.name, "seconds": round(seconds, 1), "slowest_cell": slowest,
            "slowest_s": round(spans[slowest], 1) if slowest is not None else None, "error": error, "nb": nb}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python tools/time_notebooks.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("numbers", nargs="*", help="notebook numbers (default: all)")
    parser.add_argument("--quick", action="store_true", help="COURSE_QUICK=1, the tests' size")
    parser.add_argument("--json", help="append one JSON line per notebook to this file")
    parser.add_argument("--results", help="the results file the notebooks use (default: a new, empty one; "
                                          "notebook 10 reads it)")
    args = parser.parse_args(argv)
    paths = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    if args.numbers:
        paths = [p for p in paths if p.name[:2] in {n.zfill(2) for n in args.numbers}]
    env = {"COURSE_QUICK": "1" if args.quick else "0", "COURSE_LEARNER": "timing",
           "COURSE_RESULTS": args.results or os.path.join(tempfile.mkdtemp(prefix="streamslab-timing-"),
                                                          "results.jsonl")}
    failed = 0
    print(f"{'notebook':40} {'seconds':>8}  slowest cell")
    for path in paths:
        row = execute(path, env)
        row.pop("nb")
        row.update(quick=args.quick, cores=os.cpu_count(), load1=round(os.getloadavg()[0], 1),
                   at=time.strftime("%Y-%m-%dT%H:%M:%S"))
        failed += bool(row["error"])
        print(f"{row['notebook']:40} {row['seconds']:8.1f}  {row['slowest_cell']} ({row['slowest_s']} s)"
              + (f"  FAILED {row['error']}" if row["error"] else ""), flush=True)
        if args.json:
            with open(args.json, "a") as fh:
                fh.write(json.dumps(row) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
