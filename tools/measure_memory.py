#!/usr/bin/env python3
"""Memory of the whole course, idle and while notebooks run: what Binder's 1-2 GB must hold.

Starts the services with the course supervisor (Redis, Kafka and JupyterLab, as `make lab` and
binder/start do), waits for them to settle, then runs each notebook given from a fresh kernel (as a
learner's Run All would; full size unless --quick) and samples, twice a second, the resident memory
(RSS) of every course process: the servers the supervisor started (state files under .course/,
throwaway clusters included), JupyterLab, the kernel and every process the kernel started
(workers). This script runs the kernels in place of JupyterLab: its own RSS is shown apart and left
out of the total (on Binder JupyterLab, counted already, is the kernels' parent). RSS summed over processes counts shared pages more than once: an upper bound of what a
container's memory limit sees, not counting the page cache.

    .venv/bin/python tools/measure_memory.py 00 02 05 08 09 [--quick] [--out test-artifacts/memory.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


MEASURER = "measurer (this script; not counted)"


def kind(proc: psutil.Process) -> str:
    if proc.pid == os.getpid():
        # this script, standing in for JupyterLab as the kernel's parent: no such process on Binder
        return MEASURER
    try:
        cmd = " ".join(proc.cmdline())
        name = proc.name()
    except psutil.Error:
        return "gone"
    if "kafka.Kafka" in cmd:
        return "kafka (course broker)" if "/extra/" not in cmd else "kafka (throwaway cluster)"
    if "redis-server" in name or "redis-server" in cmd:
        return "redis"
    if "ipykernel" in cmd:
        return "kernel"
    if "jupyter-lab" in cmd or "jupyter lab" in cmd:  # `python -m jupyter lab` execs jupyter-lab
        return "jupyterlab"
    if "java" in name:
        return "java (tools)"
    return "workers/other"


def course_processes(course: Path, roots: list[int]) -> dict[int, psutil.Process]:
    procs: dict[int, psutil.Process] = {}
    for state in course.rglob("*.state.json"):
        try:
            pid = json.loads(state.read_text()).get("pid")
            if pid:
                procs[pid] = psutil.Process(pid)
        except (OSError, ValueError, psutil.Error):
            pass
    for pid in roots:
        try:
            root = psutil.Process(pid)
            for p in [root, *root.children(recursive=True)]:
                procs[p.pid] = p
        except psutil.Error:
            pass
    return procs


def sample(course: Path, roots: list[int]) -> dict[str, float]:
    out: dict[str, float] = {}
    for p in course_processes(course, roots).values():
        try:
            rss = p.memory_info().rss / 2**20
        except psutil.Error:
            continue
        k = kind(p)
        out[k] = out.get(k, 0.0) + rss
    out["total"] = sum(v for k, v in out.items() if k != MEASURER)
    return out


class Sampler:
    def __init__(self, course: Path, roots: list[int], every: float = 0.5):
        self.course, self.roots, self.every = course, roots, every
        self.peak: dict[str, float] = {"total": 0.0}
        self.peak_by_kind: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            s = sample(self.course, self.roots)
            if s["total"] > self.peak["total"]:
                self.peak = s
            for k, v in s.items():
                self.peak_by_kind[k] = max(self.peak_by_kind.get(k, 0.0), v)
            self._stop.wait(self.every)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def run_notebook(number: str, quick: bool, course: Path, jupyter_pid: int) -> dict:
    import nbformat
    from nbclient import NotebookClient

    path = sorted((ROOT / "notebooks").glob(f"{number}_*.ipynb"))[0]
    nb = nbformat.read(path, as_version=4)
    env_before = dict(os.environ)
    os.environ["COURSE_QUICK"] = "1" if quick else "0"
    client = NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
    t0 = time.monotonic()
    error = None
    try:
        with Sampler(course, [os.getpid(), jupyter_pid]) as sampler:
            client.execute()
    except Exception as exc:  # noqa: BLE001 - a failing cell is reported with the figures
        error = f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1][:200]}"
    finally:
        os.environ.clear()
        os.environ.update(env_before)
    return {"notebook": path.name, "seconds": round(time.monotonic() - t0, 1), "quick": quick, "error": error,
            "peak_total_mib": round(sampler.peak["total"]),
            "at_peak_mib": {k: round(v) for k, v in sorted(sampler.peak.items())},
            "max_by_kind_mib": {k: round(v) for k, v in sorted(sampler.peak_by_kind.items())}}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("notebooks", nargs="*", default=["00", "02"])
    ap.add_argument("--quick", action="store_true", help="COURSE_QUICK=1 (the test size), not the learner's")
    ap.add_argument("--settle", type=float, default=20.0, help="seconds to wait before the idle sample")
    ap.add_argument("--out", default=str(ROOT / "test-artifacts" / "memory.json"))
    args = ap.parse_args()

    from helpers.config import course_dir
    from helpers.services import get_lab

    lab = get_lab()
    lab.up(("redis", "kafka", "jupyter"))
    course = course_dir()
    time.sleep(args.settle)
    idle = sample(course, [lab.jupyter.pid])
    report = {"machine": {"cpus": psutil.cpu_count(), "memory_gib": round(psutil.virtual_memory().total / 2**30, 1)},
              "idle_mib": {k: round(v) for k, v in sorted(idle.items())}, "notebooks": []}
    print(f"idle: {report['idle_mib']}", flush=True)
    for number in args.notebooks:
        result = run_notebook(number, args.quick, course, lab.jupyter.pid)
        report["notebooks"].append(result)
        print(json.dumps(result), flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
