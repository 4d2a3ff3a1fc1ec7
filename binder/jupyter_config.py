"""Give Binder's notebook server the course's JupyterLab set-up (run by binder/postBuild).

Binder starts its own server (``binder/start`` execs Binder's command), not ``make lab``'s, so
the course's options are written as a Jupyter config file instead of command-line flags. They are
taken from the options ``make lab`` passes (``helpers.services.jupyter_server.JupyterLab``), so
the two cannot drift apart: the course settings (``services/jupyter/settings``: no news prompt,
Markdown opened as a preview, the kernel started without asking), no update check, build clutter
hidden, and the welcome page of the learner's workspace as the default URL (relative to the
repository, which is the server's root on Binder).

    python binder/jupyter_config.py [ETC_JUPYTER]     # default: <sys.prefix>/etc/jupyter

writes jupyter_server_config.json and jupyter_lab_config.json there (merged with what they hold).
"""

from __future__ import annotations

import ast
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from helpers import workspace  # noqa: E402
from helpers.config import PROJECT_ROOT  # noqa: E402
from helpers.services.jupyter_server import JupyterLab  # noqa: E402

CARRIED = ("LabApp.", "ContentsManager.")


def course_config() -> dict:
    """The course's LabApp / ContentsManager options (as ``make lab`` passes them) and the default URL."""
    lab = JupyterLab("jupyter", Path(tempfile.mkdtemp()), 8888)
    config: dict = {}
    for arg in lab.command():
        if not arg.startswith("--") or "=" not in arg:
            continue
        key, value = arg[2:].split("=", 1)
        if not key.startswith(CARRIED):
            continue
        try:
            value = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            pass  # a plain string (a path, a class name)
        section, name = key.split(".", 1)
        config.setdefault(section, {})[name] = value
    welcome = (workspace.workspace_dir() / workspace.WELCOME).relative_to(PROJECT_ROOT)
    for section in ("ServerApp", "LabApp"):  # Binder may start `jupyter lab` or a plain server
        config.setdefault(section, {})["default_url"] = f"/lab/tree/{welcome.as_posix()}"
    return config


def main(argv: list[str]) -> int:
    etc = Path(argv[1]) if len(argv) > 1 else Path(sys.prefix) / "etc" / "jupyter"
    etc.mkdir(parents=True, exist_ok=True)
    config = course_config()
    # The server reads jupyter_server_config, `jupyter lab` (LabApp) reads jupyter_lab_config (plain
    # files: traitlets reads no *.d/ folder for options). Whatever the files hold already is kept.
    for name, sections in (("jupyter_server_config.json", config),
                           ("jupyter_lab_config.json", {"LabApp": config["LabApp"]})):
        dest = etc / name
        current = json.loads(dest.read_text()) if dest.exists() else {}
        for section, values in sections.items():
            current.setdefault(section, {}).update(values)
        dest.write_text(json.dumps(current, indent=2) + "\n")
        print(f"wrote {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
