"""``make student``: the learner copies of every course notebook, as a folder an instructor hands out.

The course notebooks already ARE the learner version: each exercise cell (tag ``exercise-<name>``)
holds a stub whose functions ``raise NotImplementedError``, its check cell (``check-<name>``) follows,
and the solutions live apart in ``notebooks/solutions/``. This tool writes a clean copy of that for a
room, and refuses to write one that would hand out an answer:

- every notebook ``notebooks/NN_*.ipynb``, outputs, execution counts and widget state removed;
- each exercise verified: every function its cell defines only raises ``NotImplementedError`` (a
  solution pasted into a course notebook stops the build, naming the notebook and cell), and its
  check cell is there;
- ``solutions/`` left out unless ``--solutions`` (``make student SOLUTIONS=1``): then the "Stuck?"
  sentences keep pointing at it; without it they say to ask the instructor;
- a ``README.md`` for the learner: what to open first, the environment variables of a classroom.

Code cells are copied byte for byte, so the notebook tests (which Run All ``notebooks/`` and check
every stub and solution) run exactly the code the learner gets; ``tests/test_student.py`` checks
that and runs a learner copy from the folder itself.

    python tools/student.py [--out student] [--solutions] [--source notebooks]
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "notebooks"
STUCK = re.compile(r"Stuck\? The solutions? (?:is|are) in .*?in a new cell\)\.", re.S)
NO_SOLUTIONS = "Stuck? Ask your instructor: the solutions are not part of this copy."


class LeakedSolution(Exception):
    """A course notebook's exercise cell holds more than a stub."""


def tags(cell: dict) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


def source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _is_stub_body(body: list[ast.stmt]) -> bool:
    """True for a body of (docstring / pass / ...)* then ``raise NotImplementedError[(...)]``."""
    *head, last = body
    if not isinstance(last, ast.Raise) or last.exc is None:
        return False
    exc = last.exc.func if isinstance(last.exc, ast.Call) else last.exc
    if not (isinstance(exc, ast.Name) and exc.id == "NotImplementedError"):
        return False
    return all(isinstance(s, ast.Pass) or (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))
               for s in head)


def stub_functions(code: str) -> list[str]:
    """Names of the functions an exercise cell defines; raises :class:`LeakedSolution` when one of
    them does more than ``raise NotImplementedError`` (or the cell defines none)."""
    tree = ast.parse(code)
    functions = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    if not functions:
        raise LeakedSolution("defines no function for the learner to write")
    for fn in functions:
        if not _is_stub_body(fn.body):
            raise LeakedSolution(f"function {fn.name}() does more than `raise NotImplementedError`")
    return [fn.name for fn in functions]


def exercises(nb: dict) -> dict[str, dict]:
    """``{name: {"cell": i, "functions": [...], "check_var": "check_name", "check_cell": j}}`` for
    every exercise of ``nb``;
    raises :class:`LeakedSolution` for a stub that is not one, or an exercise without its check."""
    found: dict[str, dict] = {}
    checks: dict[str, tuple[str | None, int]] = {}
    for index, cell in enumerate(nb["cells"]):
        for tag in tags(cell):
            if tag.startswith("exercise-"):
                name = tag.split("-", 1)[1]
                try:
                    found[name] = {"cell": index, "functions": stub_functions(source(cell))}
                except LeakedSolution as exc:
                    raise LeakedSolution(f"cell {index} ({tag}) {exc}") from None
            elif tag.startswith("check-"):
                first = ast.parse(source(cell)).body[0]
                target = first.targets[0].id if isinstance(first, ast.Assign) else None
                checks[tag.split("-", 1)[1]] = (target, index)
    for name, info in found.items():
        if not checks.get(name, (None,))[0]:
            raise LeakedSolution(f"exercise {name!r} has no check cell (tag check-{name})")
        info["check_var"], info["check_cell"] = checks[name]
    return found


def learner_copy(nb: dict, with_solutions: bool) -> dict:
    """The learner's copy of one notebook (a new dict): no outputs, no widget state, stubs verified."""
    nb = json.loads(json.dumps(nb))
    exercises(nb)
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
        elif cell["cell_type"] == "markdown" and not with_solutions:
            cell["source"] = STUCK.sub(NO_SOLUTIONS, source(cell))
        cell.get("metadata", {}).pop("execution", None)
    nb.get("metadata", {}).pop("widgets", None)
    return nb


def welcome(notebooks: list[Path], with_solutions: bool) -> str:
    rows = "\n".join(f"| [{p.name}]({p.name}) |" for p in notebooks)
    stuck = ("The solutions are in `solutions/` (`%load solutions/01_gaps.py` in a new cell)."
             if with_solutions else "The solutions are not in this copy: ask your instructor.")
    return f"""# Streams Lab: your copies of the notebooks

Open them in order, starting with **00** (it checks that Redis and Kafka answer). Each exercise
cell is yours to fill in; the check cell under it says NOT ATTEMPTED until you do, then PASS or
NOT YET with a hint. {stuck}

| notebook |
| --- |
{rows}

In a classroom your instructor gives you three settings (the kernel reads them when it starts):
`REDIS_URL` (the room's Redis), `KAFKA_BOOTSTRAP` (the room's Kafka) and `COURSE_LEARNER` (your
name: every key, topic and group you create carries it, so you never touch a classmate's).
"""


def build(out: Path, with_solutions: bool = False, src: Path = SOURCE) -> list[Path]:
    """Write the learner copies into ``out`` (created; notebooks and README replaced, other files
    kept, ``solutions/`` removed unless ``with_solutions``). Returns the notebooks written."""
    notebooks = sorted(src.glob("[0-9][0-9]_*.ipynb"))
    if not notebooks:
        raise SystemExit(f"no course notebooks in {src}")
    copies = {}
    for path in notebooks:
        try:
            copies[path.name] = learner_copy(json.loads(path.read_text()), with_solutions)
        except LeakedSolution as exc:
            raise LeakedSolution(f"{path.name}: {exc}; the course notebook must ship the stub "
                                 f"(the solution belongs in {src.name}/solutions/)") from None
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, nb in copies.items():
        (out / name).write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
        written.append(out / name)
    shutil.rmtree(out / "solutions", ignore_errors=True)
    if with_solutions:
        shutil.copytree(src / "solutions", out / "solutions",
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    (out / "README.md").write_text(welcome(written, with_solutions))
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python tools/student.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(ROOT / "student"), help="folder to write (default: student/)")
    parser.add_argument("--solutions", action="store_true", help="include solutions/ (default: left out)")
    parser.add_argument("--source", default=str(SOURCE), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    out = Path(args.out).resolve()
    try:
        written = build(out, args.solutions, Path(args.source))
    except LeakedSolution as exc:
        print(f"make student: not written: {exc}", file=sys.stderr)
        return 1
    count = sum(len(exercises(json.loads(p.read_text()))) for p in written)
    print(f"{len(written)} learner notebooks ({count} exercises, stubs verified) written to {out}; "
          + ("solutions/ included" if args.solutions else "solutions/ left out (SOLUTIONS=1 includes them)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
