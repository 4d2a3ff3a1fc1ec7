"""The learner's workspace: their own copies of the notebooks, outside the tracked files.

``make lab`` opens JupyterLab in ``workspace/`` (git-ignored; ``COURSE_WORKSPACE`` moves it).
:func:`sync` copies every course notebook from ``notebooks/`` that the workspace does not have
yet (a notebook added to the course later is copied on the next start; a learner's copy is never
overwritten), copies ``solutions/`` so ``%load solutions/03_drain.py`` works as in ``notebooks/``,
and writes a welcome page. :func:`restore` puts one notebook back to the course version, keeping
the learner's copy under ``.backup/``. The tests keep running the pristine ``notebooks/``.

    python -m helpers.workspace sync | restore 03 | path
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

from .config import PROJECT_ROOT

COURSE_NOTEBOOKS = PROJECT_ROOT / "notebooks"
WELCOME = "README.md"


def workspace_dir() -> Path:
    """Where the learner's copies live (``COURSE_WORKSPACE``, default ``<project>/workspace``)."""
    return Path(os.environ.get("COURSE_WORKSPACE") or PROJECT_ROOT / "workspace").resolve()


def course_notebooks() -> list[Path]:
    return sorted(COURSE_NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def _title(path: Path) -> str:
    import json

    try:
        first = json.loads(path.read_text())["cells"][0]["source"]
        line = ("".join(first) if isinstance(first, list) else first).splitlines()[0]
        return line.lstrip("# ").strip()
    except (OSError, ValueError, KeyError, IndexError):
        return path.stem


def welcome_text(notebooks: list[Path]) -> str:
    rows = "\n".join(f"| [{p.name}]({p.name}) | {_title(p)} |" for p in notebooks)
    return f"""# Welcome to Streams Lab

Your own copies of the course notebooks are in this folder: run them, change them, save them.
They are yours — updating the course (`git pull`) never touches them, and a notebook the course
adds later appears here the next time you start `make lab`.

| notebook | what it measures |
| --- | --- |
{rows}

Start with **00**: it checks that Redis and Kafka are running on this machine.

- **Stuck in an exercise?** The solutions are in `solutions/` (`%load solutions/01_gaps.py` in a new cell).
- **Want a fresh copy of a notebook?** In a terminal at the project root: `make restore NB=03`
  (your version is kept in `.backup/`).
- **Services:** `make services-status`, `make services-down`; this page is written by the course
  each time the lab starts.
"""


def _copy_solutions(ws: Path) -> None:
    """``solutions/`` is the course's: refreshed on every sync (a learner's notebooks never are)."""
    src = COURSE_NOTEBOOKS / "solutions"
    if src.is_dir():
        shutil.copytree(src, ws / "solutions", dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


def sync(ws: Path | None = None) -> list[Path]:
    """Copy the course notebooks the workspace lacks; returns the copies made (never overwrites)."""
    ws = ws or workspace_dir()
    ws.mkdir(parents=True, exist_ok=True)
    copied = []
    for nb in course_notebooks():
        dest = ws / nb.name
        if not dest.exists():
            shutil.copy2(nb, dest)
            copied.append(dest)
    _copy_solutions(ws)
    (ws / WELCOME).write_text(welcome_text(course_notebooks()))
    return copied


def find(number: str, folder: Path) -> Path | None:
    matches = sorted(folder.glob(f"{number.zfill(2)}_*.ipynb"))
    return matches[0] if matches else None


def restore(number: str, ws: Path | None = None) -> tuple[Path, Path | None]:
    """Put notebook ``number`` (``"03"``) back to the course version. Returns (restored copy,
    backup of the learner's version or None)."""
    ws = ws or workspace_dir()
    course = find(number, COURSE_NOTEBOOKS)
    if course is None:
        raise SystemExit(f"there is no course notebook {number!r}; the notebooks are "
                         + ", ".join(p.name[:2] for p in course_notebooks()))
    dest, backup = ws / course.name, None
    if dest.exists():
        backup = ws / ".backup" / f"{dest.stem}.{time.strftime('%Y%m%d-%H%M%S')}.ipynb"
        backup.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(dest, backup)
    ws.mkdir(parents=True, exist_ok=True)
    shutil.copy2(course, dest)
    return dest, backup


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.workspace", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("sync", help="copy new course notebooks into the workspace (never overwrites)")
    rest = sub.add_parser("restore", help="put one notebook back to the course version")
    rest.add_argument("notebook", help="its number, e.g. 03")
    sub.add_parser("path", help="print the workspace folder")
    args = parser.parse_args(argv)
    if args.cmd == "sync":
        copied = sync()
        print(f"workspace {workspace_dir()}: {len(copied)} new notebook(s) copied"
              + "".join(f"\n  {p.name}" for p in copied))
    elif args.cmd == "restore":
        dest, backup = restore(args.notebook)
        print(f"restored {dest} from the course" + (f"; your version is kept as {backup}" if backup else ""))
    else:
        print(workspace_dir())
    return 0


if __name__ == "__main__":
    sys.exit(main())
