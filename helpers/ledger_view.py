"""What notebook 10 shows of the ledger: the badge-styled table, the measured-vs-article chart, and the
sentences generated from the records (never written ahead of them)."""

from __future__ import annotations

import pandas as pd

from . import claims_map, ui
from .charts import alt
from .ledger import shown

#: the article's stated range per claim: (low, high, unit, words); "sub-millisecond" is drawn from 0.01 ms
ARTICLE_RANGES = {
    "C02": (0.01, 1.0, "ms", "sub-millisecond"),
    "C17": (0.01, 1.0, "ms", "sub-millisecond"),
    "C15": (5.0, 50.0, "ms", "typically 5-50 ms"),
    "C09": (10_000.0, 99_999.0, "ops/s", "tens of thousands per second"),
    "C16": (100_000.0, 10_000_000.0, "records/s", "hundreds of thousands to millions per second"),
}
PANELS = {"ms": "latency (ms, log scale)", "per second": "throughput per second (log scale)"}


def claims_table(ledger):
    """The ledger, one row per claim, its ``status`` column drawn as badges (the text stays the word)."""
    df = pd.DataFrame(ledger.claims_rows()).drop(columns=["lines"])
    cols = ["claim", "claim text", "measured here", "status", "marks", "condition", "your predictions", "experiment"]
    return ui.style_status(df[cols]).set_properties(**{"text-align": "left", "vertical-align": "top"})


def figures_table(ledger) -> pd.DataFrame:
    """Every figure with its reference (the line of its record) and marks."""
    cols = ["claim", "notebook", "section", "metric", "shown", "verdict", "marks", "line", "time"]
    return pd.DataFrame(ledger.figure_rows(), columns=cols + ["value", "unit", "host", "headline"])[cols]


def predictions_table(ledger):
    """Your predictions beside what was measured, the outcome as a badge."""
    df = pd.DataFrame(ledger.prediction_rows(), columns=["claim", "notebook", "question", "you predicted",
                                                         "measured", "status", "line"])
    return ui.style_status(df) if len(df) else df


def _panel(unit: str) -> str:
    return "ms" if unit == "ms" else "per second"


def range_rows(ledger) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(article ranges, measured points)`` for the chart; points only from recorded figures."""
    ranges, points = [], []
    for claim, (low, high, unit, words) in ARTICLE_RANGES.items():
        ranges.append({"claim": claim, "low": low, "high": high, "article": words, "panel": _panel(unit)})
        for f in ledger.by_claim.get(claim, []):
            if isinstance(f.value, (int, float)) and not isinstance(f.value, bool) and f.value > 0:
                points.append({"claim": claim, "value": f.value, "shown": shown(f.value, f.unit), "notebook": f.notebook,
                               "metric": f.metric, "line": f.line, "panel": _panel(unit),
                               "marks": "; ".join(f.marks) or "none"})
    return pd.DataFrame(ranges), pd.DataFrame(points, columns=["claim", "value", "shown", "notebook", "metric", "line",
                                                               "panel", "marks"])


def range_chart(ledger):
    """Your latency and throughput figures (dots) against the ranges the article states (bars), log scales."""
    ranges, points = range_rows(ledger)
    panels = []
    for panel, title in PANELS.items():
        r, p = ranges[ranges.panel == panel], points[points.panel == panel]
        axis = alt.Axis(format="~s" if panel == "per second" else "~g", labelOverlap=True)
        x = alt.X("low:Q", scale=alt.Scale(type="log"), title=title, axis=axis)
        y = alt.Y("claim:N", sort=list(r.claim), title=None)
        bars = alt.Chart(r).mark_bar(height=14, opacity=0.35, color="#0969da").encode(
            x=x, x2="high:Q", y=y, tooltip=["claim", "article", "low", "high"])
        layer = [bars]
        if len(p):
            layer.append(alt.Chart(p).mark_point(filled=True, size=90, color="#cf222e", opacity=0.9).encode(
                x=alt.X("value:Q", scale=alt.Scale(type="log"), axis=axis), y=y,
                shape=alt.Shape("notebook:N", title="notebook"),
                tooltip=["claim", "metric", "shown", "notebook", "line", "marks"]))
        panels.append(alt.layer(*layer).properties(width=460, height=28 * len(r)))
    return alt.vconcat(*panels).properties(
        title="Measured here (red dots) vs the article's stated ranges (blue bars)")


def range_sentences(ledger) -> list[str]:
    """One sentence per charted claim, from the records: inside, below or above the article's range."""
    out = []
    _, points = range_rows(ledger)
    for claim, (low, high, _unit, words) in ARTICLE_RANGES.items():
        mine = points[points.claim == claim]
        if not len(mine):
            out.append(f"**{claim}** ({words}): not measured yet — run notebook "
                       f"{', '.join(claims_map.notebooks_for(claim))}.")
            continue
        said = []
        for _, p in mine.iterrows():
            where = "inside" if low <= p.value <= high else "below" if p.value < low else "above"
            if claim in ("C02", "C17") and p.value < low:
                where = "inside"   # sub-millisecond has no lower bound; the bar starts at 0.01 ms only to draw it
            said.append(f"{p.shown} (notebook {p.notebook}, line {p.line}) is {where} it")
        out.append(f"**{claim}** ({words}): " + "; ".join(said) + ".")
    return out


def summary(ledger) -> str:
    """The ledger in one paragraph of Markdown, generated from the verdicts."""
    counts: dict[str, list[str]] = {}
    for claim, (word, _) in ledger.verdicts.items():
        counts.setdefault(word.upper(), []).append(claim)
    order = ["CONFIRMED", "DEPENDS", "REFUTED", "INCONCLUSIVE", "NO VERDICT", "NOT YET MEASURED"]
    parts = [f"**{w}** {len(counts[w])} ({', '.join(counts[w])})" for w in order if w in counts]
    quick = sorted({f.claim for f in ledger.figures if "QUICK" in f.marks})
    stale = sorted({f.claim for f in ledger.figures if any(m.startswith("STALE") for m in f.marks)})
    text = (f"Of the article's {len(ledger.verdicts)} claims: " + "; ".join(parts) + ". "
            f"{len(ledger.figures)} figures from `{ledger.path.name}`.")
    if quick:
        text += f" Quick-mode figures (read with care): {', '.join(quick)}."
    if stale:
        text += f" Stale figures (old, or from another machine): {', '.join(stale)}."
    return text
