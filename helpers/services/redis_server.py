"""A real ``redis-server`` on 127.0.0.1, installed from the system package manager if missing."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field

from ..errors import ServiceSetupError
from .process import ManagedProcess

INSTALL_FIX = ("install it with `sudo apt-get install redis-server` (Debian/Ubuntu), "
               "`brew install redis` (macOS) or `conda install -c conda-forge redis-server`")


def find_redis_server() -> str | None:
    return shutil.which("redis-server") or next(
        (p for p in ("/usr/bin/redis-server", "/usr/local/bin/redis-server") if os.access(p, os.X_OK)), None)


def ensure_redis_installed(log=print) -> str:
    """Path of redis-server; installs Debian's package when missing and we may (root or sudo -n)."""
    path = find_redis_server()
    if path:
        return path
    if shutil.which("apt-get"):
        prefix = [] if os.geteuid() == 0 else (["sudo", "-n"] if shutil.which("sudo") else None)
        if prefix is not None:
            log("redis-server not found: installing Debian's redis-server package ...")
            env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
            for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "redis-server"]):
                res = subprocess.run(prefix + cmd, env=env, capture_output=True, text=True, timeout=600)
                if res.returncode != 0 and cmd[1] == "install":
                    raise ServiceSetupError(f"`apt-get install redis-server` failed ({res.stderr.strip()[-300:]}); "
                                            f"{INSTALL_FIX}.")
            path = find_redis_server()
            if path:
                return path
    raise ServiceSetupError(f"redis-server is not installed; {INSTALL_FIX}, then run `make services-up` again.")


def redis_version(binary: str) -> str:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10).stdout
    m = re.search(r"v=(\S+)", out)
    return m.group(1) if m else "?"


@dataclass
class RedisServer(ManagedProcess):
    """redis-server with its data dir and log under ``home``; persistence flags explicit."""

    appendonly: bool = False
    save: str = ""  # RDB snapshot rule, e.g. "60 1000"; "" disables snapshots
    binary: str | None = None
    options: dict = field(default_factory=dict)  # more settings, e.g. {"appendfsync": "always"}
    env_port_var = "COURSE_REDIS_PORT"
    ready_timeout = 10.0
    log_name = "redis.log"

    def command(self) -> list[str]:
        binary = self.binary or ensure_redis_installed()
        return [binary, "--port", str(self.port), "--bind", self.host, "--protected-mode", "yes",
                "--dir", str(self.home), "--logfile", str(self.log_path), "--daemonize", "no",
                "--save", self.save, "--appendonly", "yes" if self.appendonly else "no",
                "--dbfilename", "dump.rdb", "--appendfilename", "appendonly.aof",
                "--enable-debug-command", "local", "--maxmemory-policy", "noeviction",
                *(arg for key, value in self.options.items() for arg in (f"--{key}", str(value)))]

    def start(self, env: dict | None = None) -> float:
        """Install redis-server first if missing, so the returned ready time is the server's alone."""
        if not self.running:
            self.check_ports()
            self.binary = self.binary or ensure_redis_installed()
        return super().start(env)

    def is_ready(self) -> bool:
        """The server on our port answers PING (not while it still loads its data: that is an error
        reply) and it is the process we started (not another start that won a race for the same port
        while ours failed to bind and is about to exit)."""
        import redis

        try:
            client = redis.Redis(host=self.host, port=self.port, socket_timeout=1, socket_connect_timeout=1)
            if not client.ping():
                return False
            return self._popen is None or client.info("server").get("process_id") == self._popen.pid
        except (redis.RedisError, OSError):
            return False

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def version(self) -> str:
        binary = self.binary or find_redis_server()
        return redis_version(binary) if binary else "not installed"

    def client(self, **kwargs):
        from ..clients import redis_client

        return redis_client(self.url, **kwargs)
