"""Remove outputs and execution counts from notebooks (they are committed clean)."""

import json
import sys
from pathlib import Path


def strip(path: Path) -> bool:
    nb = json.loads(path.read_text())
    changed = False
    for cell in nb["cells"]:
        if cell["cell_type"] == "code" and (cell.get("outputs") or cell.get("execution_count") is not None):
            cell["outputs"], cell["execution_count"] = [], None
            changed = True
    if changed:
        path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    return changed


if __name__ == "__main__":
    for folder in sys.argv[1:] or ["notebooks"]:
        for p in sorted(Path(folder).rglob("*.ipynb")):
            if ".ipynb_checkpoints" not in p.parts and strip(p):
                print(f"stripped {p}")
