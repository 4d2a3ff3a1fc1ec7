"""Run a course notebook in a kernel of its own, cell by cell, with its own environment.

For the tests that need more control than testbook gives: several kernels at once (each in its own
thread, with its own ``COURSE_LEARNER``), a hook before each cell (to kill a server or the kernel
mid-run), the time each cell ended, and a copy of a notebook with its exercise stubs rewritten.
Everything a run does (start, every cell, every value) happens in the thread that created it.
"""

from __future__ import annotations

import ast
import json
import os
import re
import threading
import time

import nbformat
from conftest import CELL_TIMEOUT, NOTEBOOKS, notebook_path
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def in_thread(fn, *args) -> threading.Thread:
    """Run ``fn(*args)`` in a daemon thread (a NotebookRun is driven from the thread that made it);
    an exception ends the thread quietly: the caller asserts on what the run recorded."""
    def target():
        try:
            fn(*args)
        except Exception:  # noqa: BLE001  (a killed kernel ends its run with an error: expected here)
            pass

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread


def tags(cell) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


class NotebookRun:
    """``with NotebookRun("02", env={...}) as run: run.run_all()`` -- one kernel, one notebook."""

    def __init__(self, name: str, env: dict | None = None, nb=None, timeout: int = CELL_TIMEOUT,
                 cwd=None):
        self.nb = nb if nb is not None else nbformat.read(str(notebook_path(name)), as_version=4)
        self.env = {**os.environ, **(env or {})}
        self.client = NotebookClient(self.nb, timeout=timeout, kernel_name="python3",
                                     resources={"metadata": {"path": str(cwd or NOTEBOOKS)}})
        self.ended: dict[int, float] = {}   # cell index -> time.monotonic() when it finished
        self.error: Exception | None = None
        self.failed_index: int | None = None

    def __enter__(self) -> NotebookRun:
        self.client.km = self.client.create_kernel_manager()
        self.client.start_new_kernel(env=self.env)
        self.client.start_new_kernel_client()
        return self

    def __exit__(self, *exc) -> None:
        self.client._cleanup_kernel()

    @property
    def pid(self) -> int:
        return self.client.km.provisioner.process.pid

    def index(self, tag: str) -> int:
        return next(i for i, c in enumerate(self.nb.cells) if tag in tags(c))

    def run_cells(self, start: int = 0, stop: int | None = None, before=None) -> bool:
        """Execute code cells ``start``..``stop``-1; ``before(index, cell)`` runs first for each.
        Returns False (and keeps the error) when a cell raised."""
        for index in range(start, len(self.nb.cells) if stop is None else stop):
            cell = self.nb.cells[index]
            if cell.cell_type != "code":
                continue
            if before:
                before(index, cell)
            try:
                self.client.execute_cell(cell, index)
            except (CellExecutionError, CellTimeoutError, DeadKernelError) as exc:
                self.ended[index] = time.monotonic()
                self.error, self.failed_index = exc, index
                return False
            self.ended[index] = time.monotonic()
        return True

    def run_all(self, before=None) -> bool:
        return self.run_cells(0, None, before)

    def execute(self, code: str) -> list:
        """Run ``code`` in the kernel (not part of the notebook); returns its outputs."""
        cell = nbformat.v4.new_code_cell(code)
        self.nb.cells.append(cell)
        try:
            self.client.execute_cell(cell, len(self.nb.cells) - 1)
        finally:
            self.nb.cells.pop()
        return cell.outputs

    def value(self, expr: str):
        """``expr`` evaluated in the kernel, as plain JSON data."""
        outputs = self.execute(f"print(__import__('json').dumps({expr}, default=str))")
        text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
        return json.loads(text.strip().splitlines()[-1])

    def error_output(self, index: int) -> dict:
        """The error output of cell ``index``: ename, evalue and the traceback lines without colour."""
        out = next(o for o in self.nb.cells[index].outputs if o.get("output_type") == "error")
        return {"ename": out["ename"], "evalue": out["evalue"],
                "traceback": [ANSI.sub("", line) for line in out["traceback"]]}


STUB_BODY = ast.parse("import time\nwhile True:\n    time.sleep(1)").body


def hanging_stubs(name: str):
    """Notebook ``name`` with the body of every function in its exercise cells replaced by
    ``while True: time.sleep(1)`` (a learner's answer that never returns)."""
    nb = nbformat.read(str(notebook_path(name)), as_version=4)
    replaced = 0
    for cell in nb.cells:
        if not any(t.startswith("exercise-") for t in tags(cell)):
            continue
        tree = ast.parse(cell.source)
        for node in tree.body:
            if isinstance(node, ast.FunctionDef):
                node.body = STUB_BODY
                replaced += 1
        cell.source = ast.unparse(tree)
    assert replaced, f"notebook {name} has no exercise function to replace"
    return nb
