"""What a notebook says: its Markdown as one string, its outputs' text, emoji found in either, and the
predictions a run kept in the results file (notebooks 00 and 01's tests)."""

from __future__ import annotations

import json
import os
import re

from conftest import notebook_path

# pictographs, dingbats (the pencil and check marks), symbols and the emoji variation selector
EMOJI = re.compile("[\U0001F000-\U0001FAFF\u2600-\u27BF\u2B00-\u2BFF\uFE0F]")


def markdown_text(name: str) -> str:
    """The notebook's Markdown cells as one string, line breaks folded to spaces."""
    nb = json.loads(notebook_path(name).read_text())
    return " ".join(" ".join("".join(c["source"]).split()) for c in nb["cells"] if c["cell_type"] == "markdown")


def _texts(nb) -> list[tuple[str, str]]:
    """(where, text) for every cell source and every textual output of ``nb`` (a dict or an nbformat node)."""
    found = []
    for i, cell in enumerate(nb["cells"]):
        found.append((f"cell {i} source", "".join(cell["source"])))
        for out in cell.get("outputs", []):
            if "text" in out:
                found.append((f"cell {i} {out['output_type']}", "".join(out["text"])))
            for mime, data in out.get("data", {}).items():
                if mime.startswith("text/"):
                    found.append((f"cell {i} {mime}", "".join(data) if isinstance(data, list) else str(data)))
    return found


def assert_no_emoji(nb) -> None:
    """No emoji in any cell source or output: status is a coloured word (a badge), never a pictograph."""
    hits = [(where, EMOJI.findall(text)) for where, text in _texts(nb) if EMOJI.search(text)]
    assert hits == [], hits


def predictions_kept(key: str) -> list[dict]:
    """Every prediction record with ``key`` in this session's results file, oldest first."""
    with open(os.environ["COURSE_RESULTS"]) as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    return [row for row in rows if row.get("kind") == "prediction" and row.get("key") == key]
