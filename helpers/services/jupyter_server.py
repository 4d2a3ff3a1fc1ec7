"""JupyterLab as a course-managed background process on 127.0.0.1 (``make lab``).

It serves the learner's workspace (:mod:`helpers.workspace`, synced from ``notebooks/`` just
before it starts), opens on the rendered welcome page, and takes the course's settings from
``services/jupyter/settings/overrides.json`` (no news prompt, Markdown opened as a preview, every
cell attached so outputs are drawn as the page loads). Nothing is fetched from the internet.

Containers: ``COURSE_LAB_HOST=0.0.0.0`` binds every interface of the container (Docker's port
mapping cannot reach 127.0.0.1 inside it; docker-compose.yml publishes the port on the host's
127.0.0.1 only); ``COURSE_LAB_PUBLIC_PORT`` is the port the browser uses when Docker publishes
JupyterLab on another one. ``JUPYTER_TOKEN``, when set and not empty, is the token; an empty or
unset one never turns the token off.
"""

from __future__ import annotations

import os
import secrets
import sys
from dataclasses import dataclass

from .. import workspace
from ..config import PROJECT_ROOT
from .process import ManagedProcess, port_open

SETTINGS = PROJECT_ROOT / "services" / "jupyter" / "settings"


@dataclass
class JupyterLab(ManagedProcess):
    """``jupyter lab`` serving the learner's workspace, bound to 127.0.0.1, with a token kept in its state."""

    env_port_var = "COURSE_LAB_PORT"
    ready_timeout = 60.0
    log_name = "jupyter.log"

    def __post_init__(self):
        self.host = os.environ.get("COURSE_LAB_HOST") or self.host

    @property
    def token(self) -> str:
        if os.environ.get("JUPYTER_TOKEN"):
            return os.environ["JUPYTER_TOKEN"]
        path = self.home / "token"
        if not path.exists():
            self.home.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_hex(16))
            path.chmod(0o600)
        return path.read_text().strip()

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        port = os.environ.get("COURSE_LAB_PUBLIC_PORT") or self.port
        return f"http://{host}:{port}/lab/tree/{workspace.WELCOME}?token={self.token}"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--ip={self.host}",
                f"--port={self.port}", "--port-retries=0", f"--ServerApp.root_dir={workspace.workspace_dir()}",
                f"--IdentityProvider.token={self.token}", f"--ServerApp.default_url=/lab/tree/{workspace.WELCOME}",
                f"--LabApp.default_url=/lab/tree/{workspace.WELCOME}",  # `jupyter lab` sets the server's from this one
                f"--LabApp.app_settings_dir={SETTINGS}", "--LabApp.news_url=None",
                "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
                "--ContentsManager.hide_globs=['__pycache__', '*.pyc', '*.egg-info', '.ipynb_checkpoints', '.backup']",
                "--ServerApp.log_level=INFO", *(["--allow-root"] if os.geteuid() == 0 else [])]

    @property
    def stdout_path(self):
        return self.log_path

    def start(self, env: dict | None = None) -> float:
        # the kernel must be this interpreter (the project's venv) whatever `python` is on PATH
        path = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
        if not self.running:
            workspace.sync()  # new course notebooks are copied in; the learner's copies are kept
        return super().start({"JUPYTER_PLATFORM_DIRS": "1", "PATH": path, **(env or {})})

    def is_ready(self) -> bool:
        return port_open(self.port, "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host)

    def version(self) -> str:
        try:
            from jupyterlab import __version__

            return __version__
        except ImportError:
            return "not installed"
