"""``make site``: execute the course notebooks headless and render a static site that needs no network.

Each notebook runs from a fresh kernel (cwd ``notebooks/``) against the real services, then is
rendered with the ``streamslab`` template (``tools/site_template``): nbconvert's lab look with
nothing fetched from a CDN. Charts are inline SVG (``helpers.charts`` renders them so when no live
frontend is attached); a widget shows its plain-text fallback. ``index.html`` links the pages.

    python tools/build_site.py [--out site] [notebooks/00_*.ipynb ...]
"""

from __future__ import annotations

import argparse
import html
import os
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
TEMPLATES = Path(__file__).resolve().parent / "site_template"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def widget_text(states: dict, model_id: str) -> str | None:
    """A widget's final state as text (a progress bar as ``desc: 100%|##########| 800/800 [...]``),
    from the state nbclient recorded; None for a widget that has no text form here."""
    model = states.get(model_id, {})
    name, state = model.get("model_name", ""), model.get("state", {})
    if name in ("HTMLModel", "LabelModel", "HTMLMathModel"):
        return html.unescape(re.sub(r"<[^>]+>", "", str(state.get("value", "")))).strip()
    if name in ("FloatProgressModel", "IntProgressModel"):
        share = min(max(float(state.get("value", 0)) / (float(state.get("max", 1)) or 1), 0.0), 1.0)
        return "|" + "#" * round(10 * share) + " " * (10 - round(10 * share)) + "|"
    if name in ("HBoxModel", "VBoxModel", "BoxModel"):
        parts = [widget_text(states, child.removeprefix("IPY_MODEL_")) for child in state.get("children", [])]
        return " ".join(p for p in parts if p) or None
    return None


def drop_widget_views(nb) -> int:
    """Replace widget outputs by their final state as text (or their text fallback) and drop the
    widget state, which would need ipywidgets' JavaScript from a CDN; returns how many."""
    states = nb.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {}).get("state", {})
    dropped = 0
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if WIDGET_VIEW in data:
                text = widget_text(states, data.pop(WIDGET_VIEW).get("model_id", ""))
                if text:
                    data["text/plain"] = text
                data.setdefault("text/plain", "")
                dropped += 1
    nb.metadata.pop("widgets", None)
    return dropped


def render(nb) -> str:
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="streamslab", extra_template_basedirs=[str(TEMPLATES)])
    body, _ = exporter.from_notebook_node(nb)
    return body


def execute(path: Path, timeout: int, env: dict | None = None):
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOKS)}}).execute(env=env)
    return nb


def index_page(pages: list[tuple[str, str]]) -> str:
    items = "\n".join(f'<li><a href="{html.escape(href)}">{html.escape(title)}</a></li>' for href, title in pages)
    return (f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Streams Lab</title></head>"
            f"<body style=\"font:16px/1.5 sans-serif;max-width:46em;margin:2em auto\"><h1>Streams Lab</h1>"
            f"<p>The course notebooks, executed on {html.escape(time.strftime('%Y-%m-%d %H:%M'))}.</p>"
            f"<ul>{items}</ul></body></html>\n")


def build(out: Path, notebooks: list[Path], timeout: int = 600, log=print) -> list[Path]:
    """Execute and render ``notebooks`` into ``out``; returns the pages written."""
    # no frontend here: charts as SVG, widgets as text. Only the kernels get it: this process's own
    # environment stays as it was (a JupyterLab started later by the caller would pass it on to its kernels)
    env = {**os.environ, "COURSE_DISPLAY": "static"}
    out.mkdir(parents=True, exist_ok=True)
    written, pages = [], []
    for path in notebooks:
        t0 = time.monotonic()
        nb = execute(path, timeout, env)
        dropped = drop_widget_views(nb)
        page = out / f"{path.stem}.html"
        page.write_text(render(nb))
        title = next((c.source.splitlines()[0].lstrip("# ") for c in nb.cells if c.cell_type == "markdown"), path.stem)
        pages.append((page.name, title))
        written.append(page)
        log(f"{page} ({time.monotonic() - t0:.0f} s{f', {dropped} widget(s) as text' if dropped else ''})")
    (out / "index.html").write_text(index_page(pages))
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(ROOT / "site"))
    parser.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    parser.add_argument("notebooks", nargs="*", type=Path)
    args = parser.parse_args(argv)
    notebooks = args.notebooks or sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    build(Path(args.out), [p.resolve() for p in notebooks], args.timeout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
