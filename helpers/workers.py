"""Background work that never blocks the kernel, with a stop handle.

- :func:`background` runs ``fn(stop_event, *args)`` in a thread; ``.stop()`` sets the event and
  joins with a timeout.
- :class:`ProcessWorker` runs ``package.module:function(**kwargs)`` in a separate Python process,
  so a crash experiment can SIGKILL it for real (``.kill()``). A worker process exits by itself
  when its parent dies or after ``max_seconds``, so nothing is left running by accident. Its
  keyword arguments reach it on stdin, never on its command line: a ``redis_url`` with a password
  must not show in ``ps``.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from . import config

_LIVE: list = []


class BackgroundTask:
    """A thread running ``fn(stop_event, *args, **kwargs)``; keeps its result or its error."""

    def __init__(self, fn, *args, name: str | None = None, **kwargs):
        self.stop_event = threading.Event()
        self.result = None
        self.error: BaseException | None = None
        self.name = name or getattr(fn, "__name__", "task")

        def run():
            try:
                self.result = fn(self.stop_event, *args, **kwargs)
            except BaseException as exc:  # kept for the notebook to show, not swallowed
                self.error = exc

        self.thread = threading.Thread(target=run, name=self.name, daemon=True)

    def start(self) -> BackgroundTask:
        self.thread.start()
        _LIVE.append(self)
        return self

    @property
    def running(self) -> bool:
        return self.thread.is_alive()

    def stop(self, timeout: float = 10.0):
        """Ask the loop to stop and wait up to ``timeout`` s. Re-raises the task's error, if any."""
        self.stop_event.set()
        self.thread.join(timeout)
        if self.thread.is_alive():
            raise TimeoutError(f"background task {self.name!r} did not stop within {timeout} s")
        if self.error is not None:
            raise self.error
        return self.result

    def __repr__(self) -> str:
        return f"<BackgroundTask {self.name} {'running' if self.running else 'stopped'}>"


def background(fn, *args, name: str | None = None, **kwargs) -> BackgroundTask:
    """Start ``fn(stop_event, *args, **kwargs)`` in a daemon thread and return its handle."""
    return BackgroundTask(fn, *args, name=name, **kwargs).start()


class ProcessWorker:
    """``target`` (``"pkg.module:function"``) called with ``kwargs`` in its own Python process."""

    def __init__(self, target: str, *, name: str | None = None, max_seconds: float = 600, **kwargs):
        if ":" not in target:
            raise ValueError("target must look like 'package.module:function'")
        self.target, self.kwargs, self.max_seconds = target, kwargs, max_seconds
        self.name = name or target.split(":")[1]
        self.proc: subprocess.Popen | None = None
        logs = config.course_dir() / "workers"
        logs.mkdir(parents=True, exist_ok=True)
        self.log_path = logs / f"{self.name}-{os.getpid()}-{id(self):x}.log"

    def start(self) -> ProcessWorker:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            [str(config.PROJECT_ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "helpers.workers", self.target, str(self.max_seconds), str(os.getpid())],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.PIPE, env=env)
        _LIVE.append(self)
        try:  # the kwargs (secrets included) travel through a pipe, not argv
            self.proc.stdin.write(json.dumps(self.kwargs).encode())
            self.proc.stdin.close()
        except BrokenPipeError:  # the process died at once: its log says why
            pass
        return self

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def returncode(self) -> int | None:
        return self.proc.poll() if self.proc else None

    def kill(self) -> int:
        """SIGKILL the worker process: a real crash. Returns its exit code (-9)."""
        self.proc.send_signal(signal.SIGKILL)
        return self.proc.wait(10)

    def terminate(self, timeout: float = 10.0) -> int:
        """SIGTERM, then SIGKILL if it has not exited within ``timeout``."""
        self.proc.terminate()
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return self.kill()

    def wait(self, timeout: float) -> int:
        """Wait for a normal exit; raises TimeoutError instead of blocking for ever."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise TimeoutError(f"worker {self.name!r} still running after {timeout} s") from None

    def output(self) -> str:
        return Path(self.log_path).read_text(errors="replace")

    def __repr__(self) -> str:
        return f"<ProcessWorker {self.name} pid={self.pid} {'alive' if self.alive else f'exit {self.returncode}'}>"


def wait_until(predicate, timeout: float, what: str, every: float = 0.02):
    """Poll ``predicate()`` until it returns something truthy and return that; after ``timeout``
    seconds raise TimeoutError naming ``what`` (a wait never blocks for ever)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise TimeoutError(f"waited {timeout} s for {what}")


def stop_all(timeout: float = 5.0) -> int:
    """Stop every thread and kill every worker process this kernel started. Returns the count."""
    count = 0
    while _LIVE:
        item = _LIVE.pop()
        if isinstance(item, ProcessWorker) and item.alive:
            item.terminate(timeout)
            count += 1
        elif isinstance(item, BackgroundTask) and item.running:
            item.stop_event.set()
            item.thread.join(timeout)
            count += 1
    return count


def heartbeat(redis_url: str, key: str, interval: float = 0.05) -> None:
    """A tiny worker used by the tests: INCR ``key`` until killed."""
    from .clients import redis_client

    r = redis_client(redis_url)
    while True:
        r.incr(key)
        time.sleep(interval)


def _watch_parent(parent: int, deadline: float) -> None:
    while time.monotonic() < deadline and os.getppid() == parent:
        time.sleep(0.5)
    os._exit(3)  # orphaned or over time: never linger


def _main(argv: list[str]) -> None:
    target, max_seconds, parent = argv[0], float(argv[1]), int(argv[2])
    kwargs = json.loads(sys.stdin.read() or "{}")
    threading.Thread(target=_watch_parent, args=(parent, time.monotonic() + max_seconds), daemon=True).start()
    module, func = target.split(":")
    getattr(importlib.import_module(module), func)(**kwargs)


if __name__ == "__main__":
    _main(sys.argv[1:])
