"""The claims ledger: every claim of the article (C01-C23) beside what THIS learner measured for it.

:func:`build` reads the results file (``helpers.results``; ``COURSE_RESULTS`` overrides its path) line
by line and keeps, per claim, the newest record of each (notebook, metric): its value and unit as
recorded, its verdict, and a reference to the record (``line`` in the file and ``time``) so anyone can
trace a figure back to the measurement. Nothing is computed or filled in: a claim without a record is
**NOT YET MEASURED** with the notebook(s) to run. Honest marks per figure:

- ``QUICK``: recorded in ``COURSE_QUICK`` mode (small sizes: a figure to read with care);
- ``STALE``: older than ``stale_days`` or measured on another machine (its host is not this one).

A claim's verdict comes from its figures' recorded verdicts: one verdict when they agree, ``depends``
when they disagree, with the condition read from the records (which metric said what). The learner's
predictions (``results.record_prediction``) sit beside the measurements.
"""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from . import claims_map, results

STALE_DAYS = 30
NOT_MEASURED = "NOT YET MEASURED"
NO_VERDICT = "NO VERDICT"
DECISIVE = ("confirmed", "refuted", "depends")


def read(path: Path | None = None) -> tuple[list[tuple[int, dict]], list[int]]:
    """``([(line number, record), ...], [unreadable line numbers])`` of the results file (1-based lines)."""
    path = Path(path) if path else results.results_path()
    rows, bad = [], []
    if not path.exists():
        return rows, bad
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            bad.append(number)
            continue
        if isinstance(row, dict):
            rows.append((number, row))
        else:
            bad.append(number)
    return rows, bad


def _when(text) -> datetime | None:
    try:
        return datetime.strptime(str(text), "%Y-%m-%dT%H:%M:%S%z")
    except ValueError:
        return None


def marks(row: dict, *, now: datetime, host: str, stale_days: float = STALE_DAYS) -> list[str]:
    """The honest marks of one record: ``QUICK``, ``STALE: 41 days old``, ``STALE: measured on <host>``."""
    machine = row.get("machine") or {}
    found = ["QUICK"] if machine.get("quick") else []
    when = _when(row.get("time"))
    if when is None:
        found.append("STALE: no readable time")
    elif (now - when).total_seconds() > stale_days * 86400:
        found.append(f"STALE: {(now - when).days} days old")
    if machine.get("host") != host:
        found.append(f"STALE: measured on {machine.get('host') or 'an unknown machine'}")
    return found


def shown(value, unit: str = "") -> str:
    """A recorded value as text, never rounded into another number than the one recorded."""
    if value is None:
        return "no value (the experiment could not measure it)"
    if isinstance(value, (list, tuple)):
        text = " / ".join(shown(v) for v in value)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        text = repr(value) if isinstance(value, float) and abs(value) < 1000 and not value.is_integer() else f"{value:,}"
    else:
        text = str(value)
    return f"{text} {unit}".strip()


@dataclass
class Figure:
    """One recorded figure as the ledger shows it, with the reference to its record."""
    line: int
    claim: str
    notebook: str
    section: str
    metric: str
    value: object
    unit: str
    verdict: str | None
    time: str
    host: str
    headline: bool
    marks: list[str] = field(default_factory=list)
    details: dict = field(default_factory=dict)

    @property
    def text(self) -> str:
        return shown(self.value, self.unit)


def figures(rows: list[tuple[int, dict]], *, now: datetime | None = None, host: str | None = None,
            stale_days: float = STALE_DAYS) -> list[Figure]:
    """The newest measurement per (claim, notebook, metric), in claim order then course order."""
    now = now or datetime.now(timezone.utc)
    host = host if host is not None else platform.node()
    newest: dict[tuple, tuple[int, dict]] = {}
    for number, row in rows:
        if row.get("kind", "measurement") != "measurement" or row.get("claim") not in results.CLAIMS:
            continue
        newest[(row["claim"], str(row.get("notebook")), str(row.get("metric")))] = (number, row)
    out = []
    for (claim, notebook, metric), (number, row) in newest.items():
        exp = claims_map.find(claim, notebook, metric)
        out.append(Figure(number, claim, notebook, exp.section if exp else "(not in the course map)", metric,
                          row.get("value"), str(row.get("unit") or ""), row.get("verdict"), str(row.get("time")),
                          str((row.get("machine") or {}).get("host")), bool(exp and exp.headline),
                          marks(row, now=now, host=host, stale_days=stale_days),
                          row.get("details") if isinstance(row.get("details"), dict) else {}))
    order = {e: i for i, e in enumerate(claims_map.EXPERIMENTS)}
    return sorted(out, key=lambda f: (f.claim, order.get(claims_map.find(f.claim, f.notebook, f.metric), 999),
                                      f.notebook, f.line))


def verdict(figs: list[Figure]) -> tuple[str, str]:
    """``(verdict, condition)`` of one claim from its figures' recorded verdicts.

    No figure: NOT YET MEASURED. Agreeing verdicts: that verdict. Confirmed here and refuted there (or
    a recorded ``depends``): ``depends``, with the condition read from the records. Only
    ``inconclusive``: inconclusive. Figures without any verdict: NO VERDICT.
    """
    if not figs:
        return NOT_MEASURED, ""
    said = [(f, f.verdict) for f in figs if f.verdict]
    decisive = {v for _, v in said if v in DECISIVE}

    def where(word: str) -> str:
        return "; ".join(f"{f.metric} ({f.notebook}: {f.text}{_scalars(f.details) if v == 'depends' else ''})"
                         for f, v in said if v == word)

    if len(decisive) == 1:
        word = decisive.pop()
        return word, (f"recorded as depends by {where('depends')}" if word == "depends" else "")
    if decisive:
        parts = [f"{w} by {where(w)}" for w in DECISIVE if w in decisive]
        return "depends", "; ".join(parts)
    if any(v == "inconclusive" for _, v in said):
        return "inconclusive", f"inconclusive by {where('inconclusive')}"
    return NO_VERDICT, "measured, but no record states a verdict"


def _scalars(details: dict, most: int = 4) -> str:
    """``", with p90 0.8, p99 1.9"``: the first plain numbers a record's details carry (what a 'depends' hinged on)."""
    items = [(k, v) for k, v in details.items() if isinstance(v, (int, float)) and not isinstance(v, bool)][:most]
    return (", with " + ", ".join(f"{k} {v:g}" for k, v in items)) if items else ""


def predictions(rows: list[tuple[int, dict]]) -> list[dict]:
    """The newest prediction per (notebook, key), each with the line of its record."""
    newest: dict[tuple, dict] = {}
    for number, row in rows:
        if row.get("kind") == "prediction":
            newest[(str(row.get("notebook")), row.get("key"))] = {**row, "line": number}
    return list(newest.values())


class Ledger:
    """The ledger built from one results file (see :func:`build`)."""

    def __init__(self, path: Path, rows, bad: list[int], *, now=None, host=None, stale_days=STALE_DAYS):
        self.path, self.bad_lines, self.stale_days = path, bad, stale_days
        self.figures = figures(rows, now=now, host=host, stale_days=stale_days)
        self.predictions = predictions(rows)
        self.by_claim = {c: [f for f in self.figures if f.claim == c] for c in results.CLAIMS}
        self.verdicts = {c: verdict(figs) for c, figs in self.by_claim.items()}

    @property
    def not_measured(self) -> list[str]:
        """The claims with no recorded figure, in order."""
        return [c for c, figs in self.by_claim.items() if not figs]

    def figure(self, claim: str, notebook: str | None = None, metric: str | None = None) -> Figure | None:
        """The figure a sentence should cite for ``claim``: the newest headline one (optionally only of
        ``notebook`` and/or a metric containing ``metric``), else the newest of any; None when unmeasured."""
        figs = [f for f in self.by_claim.get(claim, []) if (notebook is None or f.notebook == notebook)
                and (metric is None or metric in f.metric)]
        figs.sort(key=lambda f: (f.headline, f.line))
        return figs[-1] if figs else None

    def claims_rows(self) -> list[dict]:
        """One row per claim: text, experiment, figures (each with its record line), verdict, marks, predictions."""
        out = []
        for claim, figs in self.by_claim.items():
            word, condition = self.verdicts[claim]
            run = ", ".join(claims_map.notebooks_for(claim))
            shown_figs = "; ".join(f"{f.text} [{f.metric}, {f.notebook}, line {f.line}]" for f in figs)
            marks = sorted({m.split(":")[0] for f in figs for m in f.marks})
            guesses = [p for p in self.predictions if p.get("claim") == claim]
            out.append({
                "claim": claim, "claim text": results.CLAIMS[claim], "experiment": claims_map.experiment_text(claim),
                "measured here": shown_figs or f"not yet measured: run notebook {run}",
                "status": word.upper(), "condition": condition, "marks": ", ".join(marks),
                "your predictions": "; ".join(prediction_text(p) for p in guesses),
                "lines": [f.line for f in figs]})
        return out

    def figure_rows(self) -> list[dict]:
        """One row per figure (the newest record of each metric), with its reference."""
        return [{"claim": f.claim, "notebook": f.notebook, "section": f.section, "metric": f.metric,
                 "value": f.value, "unit": f.unit, "shown": f.text, "verdict": f.verdict or "", "time": f.time,
                 "host": f.host, "marks": "; ".join(f.marks), "line": f.line, "headline": f.headline}
                for f in self.figures]

    def prediction_rows(self) -> list[dict]:
        return [{"claim": p.get("claim") or "", "notebook": str(p.get("notebook")), "question": p.get("question", ""),
                 "you predicted": shown(p.get("value"), p.get("unit") or ""),
                 "measured": "" if p.get("measured") is None else shown(p.get("measured"), p.get("unit") or ""),
                 "status": (p.get("outcome") or "not compared yet").upper(), "line": p["line"]}
                for p in self.predictions]

    def export(self, folder: Path | str | None = None) -> dict[str, Path]:
        """Write the ledger as Markdown and CSV into ``folder`` (default ``ledger_export.export_dir()``)."""
        from . import ledger_export

        return ledger_export.export(self, Path(folder) if folder else ledger_export.export_dir())


def prediction_text(p: dict) -> str:
    said = f"predicted {shown(p.get('value'), p.get('unit') or '')}"
    if p.get("measured") is None:
        return f"{said} ({p.get('notebook')}, not compared yet)"
    return f"{said}, measured {shown(p.get('measured'), p.get('unit') or '')}: {p.get('outcome')} ({p.get('notebook')})"


def build(path: Path | str | None = None, *, now: datetime | None = None, host: str | None = None,
          stale_days: float = STALE_DAYS) -> Ledger:
    """The ledger of the results file ``path`` (default: the course's, ``COURSE_RESULTS`` overrides)."""
    path = Path(path) if path else results.results_path()
    rows, bad = read(path)
    return Ledger(path, rows, bad, now=now, host=host, stale_days=stale_days)
