"""Issue 13, learner copies: ``make student`` (tools/student.py) writes every notebook as the learner gets it.

What is new in a learner copy, and what these tests check:
- the folder: every course notebook, no outputs, no ``solutions/`` (unless asked), no sentence pointing
  at a solution file that is not there, a README; code cells byte for byte the course's, so the notebook
  tests' Run All of ``notebooks/`` (each asserts its stubs NOT ATTEMPTED, then injects every solution and
  asserts PASS) is a Run All of the learner's code; ``test_every_exercise_is_run_by_its_notebook_test``
  keeps that true for every exercise;
- a solution pasted into a course notebook stops the build;
- a learner copy runs from the folder itself, without ``solutions/`` beside it: Run All, no error, every
  exercise NOT ATTEMPTED; then each solution file through the same check cells: PASS. By default for
  notebook 00 (the others' code is the course's, run by their notebook tests);
  ``COURSE_STUDENT_NOTEBOOKS=all`` (or ``01,04``) runs more.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import time

import pytest
from conftest import NOTEBOOKS, ROOT, SOLUTIONS

sys.path.insert(0, str(ROOT / "tools"))
import student  # noqa: E402

COURSE = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
RUN = os.environ.get("COURSE_STUDENT_NOTEBOOKS", "00")
RUN_NUMBERS = [p.name[:2] for p in COURSE] if RUN == "all" else [n.strip() for n in RUN.split(",") if n.strip()]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    out = tmp_path_factory.mktemp("student")
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "student.py"), "--out", str(out)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert f"{len(COURSE)} learner notebooks" in done.stdout
    return out


def load(path):
    return json.loads(path.read_text())


def solution_files(number: str) -> dict[str, str]:
    """``{function name: solution file}`` for notebook ``number``'s solutions."""
    defined = {}
    for path in sorted(SOLUTIONS.glob(f"{number}_*.py")):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef):
                defined[node.name] = path
    return defined


def test_learner_copies_carry_the_course_code_and_no_answer(bundle):
    assert sorted(p.name for p in bundle.glob("*.ipynb")) == [p.name for p in COURSE]
    assert not (bundle / "solutions").exists()
    readme = (bundle / "README.md").read_text()
    assert all(p.name in readme for p in COURSE) and "COURSE_LEARNER" in readme
    total = 0
    for path in COURSE:
        course, copy = load(path), load(bundle / path.name)
        code = [(c["source"] if isinstance(c["source"], str) else "".join(c["source"]), c["metadata"].get("tags"))
                for c in course["cells"] if c["cell_type"] == "code"]
        copied = [(student.source(c), c["metadata"].get("tags"))
                  for c in copy["cells"] if c["cell_type"] == "code"]
        assert copied == code, f"{path.name}: a code cell differs from the course's"
        assert all(c["outputs"] == [] and c["execution_count"] is None
                   for c in copy["cells"] if c["cell_type"] == "code")
        assert "widgets" not in copy["metadata"]
        prose = "\n".join(student.source(c) for c in copy["cells"] if c["cell_type"] == "markdown")
        assert "solutions/" not in prose, f"{path.name} points at a solution file the copy does not have"
        found = student.exercises(copy)
        assert found, f"{path.name} has no exercise"
        total += len(found)
    assert total >= 2 * len(COURSE) - 2


def test_with_solutions_every_exercise_has_its_file(tmp_path):
    student.build(tmp_path, with_solutions=True)
    for path in COURSE:
        number, copy = path.name[:2], load(tmp_path / path.name)
        files = solution_files(number)
        for name, info in student.exercises(copy).items():
            for fn in info["functions"]:
                assert fn in files, f"{path.name} exercise {name}: no solutions/{number}_*.py defines {fn}()"
                assert (tmp_path / "solutions" / files[fn].name).exists()
        prose = "\n".join(student.source(c) for c in copy["cells"] if c["cell_type"] == "markdown")
        assert "solutions/" in prose and student.NO_SOLUTIONS not in prose


def test_a_solution_in_a_course_notebook_stops_the_build(tmp_path):
    src, out = tmp_path / "notebooks", tmp_path / "out"
    src.mkdir()
    nb = load(COURSE[0])
    cell = next(c for c in nb["cells"] if any(t.startswith("exercise-") for t in c["metadata"].get("tags", [])))
    name = student.stub_functions(student.source(cell))[0]
    cell["source"] = (SOLUTIONS / solution_files(COURSE[0].name[:2])[name].name).read_text()
    (src / COURSE[0].name).write_text(json.dumps(nb))
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "student.py"), "--out", str(out),
                           "--source", str(src)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and COURSE[0].name in done.stderr and f"{name}()" in done.stderr, done.stderr
    assert not out.exists()
    cell["source"] = "def f():\n    raise NotImplementedError\n"
    for c in nb["cells"]:
        c["metadata"]["tags"] = [t for t in c["metadata"].get("tags", []) if not t.startswith("check-")]
    with pytest.raises(student.LeakedSolution, match="no check cell"):
        student.learner_copy(nb, with_solutions=False)


def test_every_exercise_is_run_by_its_notebook_test():
    """The notebook tests are the Run All of every learner copy: each must assert a stub NOT ATTEMPTED
    and inject every solution file of its notebook (``solution("NN_name")``, the name as a literal)."""
    for path in COURSE:
        number = path.name[:2]
        tests = "".join(t.read_text() for t in (ROOT / "tests").glob(f"test_nb{number}_*.py"))
        assert "not-attempted" in tests or "not_attempted" in tests, f"no test of {path.name} checks a stub"
        for file in set(solution_files(number).values()):
            assert re.search(rf"""["']{file.stem}["']""", tests), f"no test of {path.name} injects {file.name}"


@pytest.mark.notebook
@pytest.mark.parametrize("number", RUN_NUMBERS)
def test_learner_copy_runs_from_its_folder(bundle, number, lab):
    """Run All of the learner copy, in the bundle folder (no solutions/ there): no error, every check
    NOT ATTEMPTED; then, before the cleanup cell runs (as a learner does the exercises), every solution
    file of the notebook through the same check cells: PASS; then the cleanup cell."""
    import nbformat
    from nbrun import NotebookRun

    path = next(bundle.glob(f"{number}_*.ipynb"))
    nb = nbformat.read(str(path), as_version=4)
    found = student.exercises(load(path))
    files = solution_files(number)
    t0 = time.monotonic()
    with NotebookRun(number, nb=nb, cwd=bundle, env={"COURSE_LEARNER": "student-copy"}) as run:
        cleanup = run.index("cleanup")              # as a learner does: the exercises before the cleanup
        assert run.run_cells(0, cleanup), f"{path.name} failed in cell {run.failed_index}: {run.error}"
        statuses = {name: run.value(f"{info['check_var']}.status") for name, info in found.items()}
        assert set(statuses.values()) == {"not-attempted"}, statuses
        for info in found.values():
            for file in sorted({files[fn] for fn in info["functions"]}):
                run.execute(file.read_text())
            assert run.run_cells(info["check_cell"], info["check_cell"] + 1), run.error
            result = run.value(f"str({info['check_var']})")
            assert run.value(f"{info['check_var']}.status") == "pass", result
        assert run.run_cells(cleanup), run.error    # the cleanup cell and whatever follows it
    print(f"learner copy {number}: {time.monotonic() - t0:.1f} s")
