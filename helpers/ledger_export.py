"""The claims ledger on paper: Markdown for a report or a classroom discussion, CSV for a spreadsheet.

Both carry, for every figure, the line of its record in the results file, so a reader can check it.
The CSV has one row per figure (the recorded value as JSON, exactly as recorded) and one row per
claim not yet measured (empty value, the notebook to run).
"""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

from . import claims_map, results

CSV_COLUMNS = ["claim", "claim_text", "status", "condition", "notebook", "section", "metric", "value", "unit",
               "verdict", "marks", "time", "host", "results_line"]


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown_table(rows: list[dict], columns: list[str]) -> str:
    head = "| " + " | ".join(columns) + " |\n|" + "---|" * len(columns) + "\n"
    return head + "".join("| " + " | ".join(_cell(r.get(c, "")) for c in columns) + " |\n" for r in rows)


def markdown(ledger) -> str:
    """The whole ledger as one Markdown document (claims, figures with their record lines, predictions)."""
    claims = [{**r, "status": f"**{r['status']}**"} for r in ledger.claims_rows()]
    parts = [
        "# Streams Lab: claims ledger\n",
        f"Generated {time.strftime('%Y-%m-%d %H:%M %Z')} from `{ledger.path}`. Every figure is the newest record "
        "of its metric; `line` is its line in that file. Marks: QUICK = measured in quick mode (small sizes); "
        f"STALE = older than {ledger.stale_days:g} days or measured on another machine.\n",
        "## Claims\n",
        markdown_table(claims, ["claim", "claim text", "status", "condition", "measured here", "marks",
                                "your predictions"]),
        "\n## Figures\n",
        markdown_table(ledger.figure_rows(), ["claim", "notebook", "section", "metric", "shown", "verdict", "marks",
                                              "line", "time"]),
    ]
    if ledger.predictions:
        parts += ["\n## Your predictions\n", markdown_table(ledger.prediction_rows(), [
            "claim", "notebook", "question", "you predicted", "measured", "status", "line"])]
    if ledger.not_measured:
        parts += ["\n## Not yet measured\n", "".join(
            f"- **{c}**: run notebook {', '.join(claims_map.notebooks_for(c))}\n" for c in ledger.not_measured)]
    if ledger.bad_lines:
        parts.append(f"\nUnreadable lines in the results file (skipped): {ledger.bad_lines}\n")
    return "\n".join(parts)


def csv_rows(ledger) -> list[dict]:
    """The CSV's rows: one per figure, one per claim not yet measured."""
    out = []
    for claim, figs in ledger.by_claim.items():
        word, condition = ledger.verdicts[claim]
        base = {"claim": claim, "claim_text": results.CLAIMS[claim], "status": word.upper(), "condition": condition}
        if not figs:
            out.append({**base, "notebook": ", ".join(claims_map.notebooks_for(claim)), "section": "", "metric": "",
                        "value": "", "unit": "", "verdict": "", "marks": "", "time": "", "host": "", "results_line": ""})
        for f in figs:
            out.append({**base, "notebook": f.notebook, "section": f.section, "metric": f.metric,
                        "value": json.dumps(f.value), "unit": f.unit, "verdict": f.verdict or "",
                        "marks": "; ".join(f.marks), "time": f.time, "host": f.host, "results_line": f.line})
    return out


def export(ledger, folder: Path) -> dict[str, Path]:
    """Write ``claims-ledger.md`` and ``claims-ledger.csv`` into ``folder``; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    md, table = folder / "claims-ledger.md", folder / "claims-ledger.csv"
    md.write_text(markdown(ledger))
    with open(table, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        writer.writerows(csv_rows(ledger))
    return {"markdown": md, "csv": table}


def export_dir() -> Path:
    """Where exports go: the learner's workspace when the notebook runs there (git-ignored), otherwise
    a ``ledger/`` folder beside the results file (``.course/ledger``, git-ignored)."""
    from .workspace import workspace_dir

    ws, here = workspace_dir(), Path.cwd().resolve()
    if here == ws or ws in here.parents:
        return ws / "ledger"
    return results.results_path().parent / "ledger"
