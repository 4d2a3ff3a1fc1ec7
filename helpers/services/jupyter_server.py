"""JupyterLab as a course-managed background process on 127.0.0.1 (``make lab``)."""

from __future__ import annotations

import os
import secrets
import sys
from dataclasses import dataclass

from ..config import PROJECT_ROOT
from .process import ManagedProcess, port_open


@dataclass
class JupyterLab(ManagedProcess):
    """``jupyter lab`` serving ``notebooks/``, bound to 127.0.0.1, with a token kept in its state."""

    env_port_var = "COURSE_LAB_PORT"
    ready_timeout = 60.0
    log_name = "jupyter.log"

    @property
    def token(self) -> str:
        path = self.home / "token"
        if not path.exists():
            self.home.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_hex(16))
            path.chmod(0o600)
        return path.read_text().strip()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/lab?token={self.token}"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--ip={self.host}",
                f"--port={self.port}", "--port-retries=0", f"--ServerApp.root_dir={PROJECT_ROOT}",
                f"--IdentityProvider.token={self.token}", "--ServerApp.default_url=/lab/tree/notebooks",
                "--ServerApp.log_level=INFO", *(["--allow-root"] if os.geteuid() == 0 else [])]

    @property
    def stdout_path(self):
        return self.log_path

    def start(self, env: dict | None = None) -> float:
        # the kernel must be this interpreter (the project's venv) whatever `python` is on PATH
        path = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
        return super().start({"JUPYTER_PLATFORM_DIRS": "1", "PATH": path, **(env or {})})

    def is_ready(self) -> bool:
        return port_open(self.port, self.host)

    def version(self) -> str:
        try:
            from jupyterlab import __version__

            return __version__
        except ImportError:
            return "not installed"
