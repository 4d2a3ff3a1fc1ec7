"""A course-managed server process: start detached, track by pid + start time, stop, kill -9.

Ownership is recorded in ``<home>/<name>.state.json`` (pid and the process's create time), so
``down`` and ``kill`` touch only the process the course started, never another server that
happens to use the same port or a recycled pid.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from ..errors import PortTaken, ServiceSetupError


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.3) -> bool:
    """True when something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def port_owner(port: int) -> str:
    """'pid 123 (redis-server)' for the process listening on ``port``, or 'an unknown process'."""
    try:
        for conn in psutil.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
                try:
                    return f"pid {conn.pid} ({psutil.Process(conn.pid).name()})"
                except psutil.Error:
                    return f"pid {conn.pid}"
    except psutil.Error:
        pass
    return "an unknown process"


def free_port(start: int, avoid: set[int] | None = None, span: int = 200) -> int:
    """The first port from ``start`` on which nothing listens (and not in ``avoid``)."""
    avoid = avoid or set()
    for port in range(start, start + span):
        if port not in avoid and not port_open(port):
            return port
    raise ServiceSetupError(f"no free port in {start}-{start + span - 1}; free one or set the port explicitly.")


def exited(pid: int) -> bool:
    """True when ``pid`` is gone or a zombie. A server started by another process (a notebook kernel)
    stays a zombie after it exits until that process reaps it, and ``waitpid`` works for its parent
    only: here it counts as exited (and is reaped when it is our own child)."""
    try:
        if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
            return False
    except psutil.Error:
        return True
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    return True


def wait_exited(pid: int, timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for :func:`exited`; False if it is still running."""
    deadline = time.monotonic() + timeout
    while not exited(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def tail(path: Path, lines: int = 20) -> str:
    try:
        with open(path, errors="replace") as fh:
            return "".join(deque(fh, maxlen=lines))
    except OSError:
        return "(no log yet)"


@dataclass
class ManagedProcess:
    """One server process that the course starts and may kill (subclasses add readiness)."""

    name: str
    home: Path
    port: int
    host: str = "127.0.0.1"
    _popen: subprocess.Popen | None = field(default=None, repr=False)

    # --- subclasses override -------------------------------------------------------------
    def command(self) -> list[str]:
        raise NotImplementedError

    def is_ready(self) -> bool:
        return port_open(self.port, self.host)

    def extra_ports(self) -> list[int]:
        return []

    env_port_var = "COURSE_PORT"
    ready_timeout = 30.0
    log_name = "server.log"

    # --- state -----------------------------------------------------------------------------
    @property
    def log_path(self) -> Path:
        return self.home / self.log_name

    @property
    def stdout_path(self) -> Path:
        return self.home / f"{self.name}.stdout.log"

    @property
    def state_path(self) -> Path:
        return self.home / f"{self.name}.state.json"

    def _state(self) -> dict:
        try:
            return json.loads(self.state_path.read_text())
        except (OSError, ValueError):
            return {}

    @property
    def pid(self) -> int | None:
        """The pid of the running course-managed process, or None."""
        st = self._state()
        pid = st.get("pid")
        if not pid:
            return None
        if self._popen is not None and self._popen.pid == pid and self._popen.poll() is not None:
            return None
        try:
            proc = psutil.Process(pid)
            if abs(proc.create_time() - st.get("create_time", 0)) > 1.0:
                return None
            if exited(pid):
                return None
        except psutil.Error:
            return None
        return pid

    @property
    def running(self) -> bool:
        return self.pid is not None

    # --- lifecycle ---------------------------------------------------------------------------
    def check_ports(self) -> None:
        """Raise :class:`PortTaken` when a port we need is held by somebody else."""
        for port in [self.port, *self.extra_ports()]:
            if port_open(port, self.host):
                raise PortTaken(
                    f"port {port} is already taken by {port_owner(port)}, which the course did not start; "
                    f"stop it or choose another port with {self.env_port_var}=<port>."
                )

    def start(self, env: dict | None = None) -> float:
        """Start the process detached and wait until ready. Returns seconds to ready."""
        if self.running:
            return 0.0
        self.check_ports()
        self.home.mkdir(parents=True, exist_ok=True)
        from .. import watchdog

        watchdog.expect_up(self.host, self.port)
        t0 = time.monotonic()
        with open(self.stdout_path, "ab") as out:
            self._popen = subprocess.Popen(
                self.command(), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                cwd=self.home, env={**os.environ, **(env or {})}, start_new_session=True,
            )
        create_time = psutil.Process(self._popen.pid).create_time()
        self.state_path.write_text(json.dumps({"pid": self._popen.pid, "create_time": create_time,
                                               "port": self.port, "host": self.host, "started_at": time.time()}))
        self.wait_ready(t0)
        return time.monotonic() - t0

    def wait_ready(self, t0: float | None = None) -> None:
        t0 = t0 or time.monotonic()
        while time.monotonic() - t0 < self.ready_timeout:
            if not self.running:
                raise ServiceSetupError(
                    f"{self.name} exited during start-up; last lines of {self.log_path}:\n{tail(self.log_path)}"
                    f"{tail(self.stdout_path, 10) if self.stdout_path != self.log_path else ''}"
                )
            if self.is_ready():
                return
            time.sleep(0.1)
        raise ServiceSetupError(
            f"{self.name} was not ready within {self.ready_timeout:.0f} s; last lines of {self.log_path}:\n"
            f"{tail(self.log_path)}\nsee the troubleshooting section of README.md."
        )

    def signal(self, sig: int) -> int | None:
        pid = self.pid
        if pid is not None:
            if sig in (signal.SIGKILL, signal.SIGTERM):  # on purpose: no "server went away" alarm
                from .. import watchdog

                watchdog.expect_down(self.host, self.port)
            os.kill(pid, sig)
        return pid

    def _wait_exit(self, pid: int, timeout: float) -> bool:
        if self._popen is not None and self._popen.pid == pid:
            try:
                self._popen.wait(timeout)
                return True
            except subprocess.TimeoutExpired:
                return False
        return wait_exited(pid, timeout)  # not our child: it may linger as another process's zombie

    def kill(self) -> int | None:
        """SIGKILL: a real crash, no chance to flush. Returns the pid killed (None if not running)."""
        pid = self.signal(signal.SIGKILL)
        if pid is not None:
            self._wait_exit(pid, 10)
        return pid

    def stop(self, timeout: float = 20.0) -> int | None:
        """Graceful stop (SIGTERM), escalating to SIGKILL after ``timeout``."""
        pid = self.signal(signal.SIGTERM)
        if pid is not None and not self._wait_exit(pid, timeout):
            os.kill(pid, signal.SIGKILL)
            self._wait_exit(pid, 10)
        return pid

    def restart(self) -> float:
        self.stop()
        return self.start()
