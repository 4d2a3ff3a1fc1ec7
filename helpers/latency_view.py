"""Notebook 06's latency charts: an HDR-style histogram (log-spaced bins, log x axis) and the
percentile curve (latency at each percentile, the tail stretched). Each builder returns an Altair
chart and shows nothing; ``alt`` comes from :mod:`helpers.charts`, so importing this module enables
the course's offline renderer (a widget in JupyterLab, an inline SVG headless and in ``make site``).
Curves with log axes are :func:`helpers.charts.lines` (``log_x=`` / ``log_y=``).
"""

from __future__ import annotations

import math

from .charts import alt

NINES = [0.5, 0.9, 0.99, 0.999]
LEGEND = alt.Legend(labelLimit=320)    # "Redis Stream (XADD / XREADGROUP)" in full


def log_bins(values, per_decade: int = 10) -> list[float]:
    """Bin edges spaced evenly on a log scale (HDR-style: equal relative width) covering ``values``."""
    lo, hi = max(min(values), 1e-3), max(values)
    start, stop = math.floor(math.log10(lo) * per_decade), math.ceil(math.log10(hi) * per_decade) + 1
    return [10 ** (i / per_decade) for i in range(start, stop + 1)]


def latency_histogram(samples: dict, *, title: str = "", width: int = 520, height: int = 240):
    """One step line per series: how many messages took each (log-spaced) latency; x on a log scale.
    ``samples`` maps a series name (e.g. "Redis Pub/Sub") to its latencies in ms."""
    import pandas as pd

    edges = log_bins([v for vs in samples.values() for v in vs])
    rows = []
    for name, values in samples.items():
        counts = pd.cut(pd.Series(values), edges, right=False).value_counts(sort=False)
        for interval, count in counts.items():
            rows.append({"series": name, "latency_ms": math.sqrt(interval.left * interval.right),
                         "share": count / max(1, len(values)), "messages": int(count)})
    df = pd.DataFrame(rows)
    return alt.Chart(df).mark_line(interpolate="step-after", point=False).encode(
        x=alt.X("latency_ms:Q", scale=alt.Scale(type="log"), title="latency (ms, log scale)"),
        y=alt.Y("share:Q", title="share of messages", axis=alt.Axis(format="%")),
        color=alt.Color("series:N", title=None, legend=LEGEND), tooltip=["series", alt.Tooltip("latency_ms:Q", format=".3f"),
                                                           "messages"],
    ).properties(title=title, width=width, height=height)


def percentile_curve(samples: dict, *, title: str = "", width: int = 520, height: int = 240):
    """The HDR "percentile distribution": latency (log y) at each percentile, with the x axis
    stretched towards the tail (1 / (1 - q)), so p99 and p99.9 get as much room as the median."""
    import pandas as pd

    rows = []
    for name, values in samples.items():
        ordered = sorted(values)
        n = len(ordered)
        qs = [1 - 10 ** (-k / 20) for k in range(0, 80)]           # 0 .. 99.99 %, log-spaced in the tail
        for q in qs:
            if n == 0 or q > 1 - 1 / n:
                break
            rows.append({"series": name, "percentile": round(q * 100, 3), "x": 1 / (1 - q),
                         "latency_ms": ordered[min(n - 1, math.ceil(q * n) - 1 if q > 0 else 0)]})
        if n:
            rows.append({"series": name, "percentile": 100.0, "x": float(n), "latency_ms": ordered[-1]})
    df = pd.DataFrame(rows)
    ticks = [1 / (1 - q) for q in NINES]
    axis = alt.Axis(values=ticks, labelExpr="datum.value < 3 ? '50%' : datum.value < 30 ? '90%' : "   # ticks 2, 10, 100,
                                            "datum.value < 300 ? '99%' : '99.9%'")                 # 1000 (+ rounding)
    return alt.Chart(df).mark_line().encode(
        x=alt.X("x:Q", scale=alt.Scale(type="log"), axis=axis, title="percentile"),
        y=alt.Y("latency_ms:Q", scale=alt.Scale(type="log"), title="latency (ms, log scale)"),
        color=alt.Color("series:N", title=None, legend=LEGEND), tooltip=["series", "percentile", alt.Tooltip("latency_ms:Q", format=".3f")],
    ).properties(title=title, width=width, height=height)
