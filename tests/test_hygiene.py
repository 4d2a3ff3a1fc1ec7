"""Repository hygiene: clean notebooks, fixed anatomy, no FLUSHALL, every notebook tested."""

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def test_there_are_notebooks():
    assert NOTEBOOKS, "no notebooks found"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_committed_without_outputs(path):
    nb = json.loads(path.read_text())
    dirty = [i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code"
             and (c.get("outputs") or c.get("execution_count") is not None)]
    assert not dirty, f"{path.name}: cells {dirty} carry outputs; run `make strip`"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_anatomy(path):
    nb = json.loads(path.read_text())
    tags = [t for c in nb["cells"] for t in c.get("metadata", {}).get("tags", [])]
    first = "".join(nb["cells"][0]["source"])
    assert first.startswith("# ") and "objectives" in first.lower() and "time" in first.lower()
    assert tags.count("setup") == 1 and tags.count("cleanup") == 1
    exercises = {t.split("-", 1)[1] for t in tags if t.startswith("exercise-")}
    checks = {t.split("-", 1)[1] for t in tags if t.startswith("check-")}
    assert exercises and exercises == checks, "each exercise needs its check cell"
    for name in exercises:
        assert list((ROOT / "notebooks" / "solutions").glob(f"{path.name[:2]}_*.py")), f"no solution for {name}"
    source = "\n".join("".join(c["source"]) for c in nb["cells"]).lower()
    assert "flushall" not in source and "flushdb" not in source


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_notebook_is_executed_by_a_test(path):
    tests = list((ROOT / "tests").glob(f"test_nb{path.name[:2]}_*.py"))
    assert tests, f"no tests/test_nb{path.name[:2]}_*.py for {path.name}"
    calls = (f'run_notebook("{path.name[:2]}"', f'module_notebook("{path.name[:2]}")')
    assert any(call in t.read_text() for t in tests for call in calls)


def test_helpers_never_flush_everything():
    for path in (ROOT / "helpers").rglob("*.py"):
        code = path.read_text().lower()
        assert not re.search(r"\bflush(all|db)\b", code), f"{path} calls FLUSHALL/FLUSHDB"
