"""Notebook 06's charts (log-scale latency histogram, percentile curve, curves with log axes) and
its one re-run control panel. Each chart builder returns an Altair chart and shows nothing.

The panel is plain ipywidgets in one function (:func:`rerun_panel`), so it can move to a shared
widgets module later; without a frontend (nbclient, a test, ``make site``) it shows a sentence
saying which call re-runs the experiment, and the notebook runs that call once itself.
"""

from __future__ import annotations

import math

NINES = [0.5, 0.9, 0.99, 0.999]


def _alt():
    import altair as alt

    return alt


def log_bins(values, per_decade: int = 10) -> list[float]:
    """Bin edges spaced evenly on a log scale (HDR-style: equal relative width) covering ``values``."""
    lo, hi = max(min(values), 1e-3), max(values)
    start, stop = math.floor(math.log10(lo) * per_decade), math.ceil(math.log10(hi) * per_decade) + 1
    return [10 ** (i / per_decade) for i in range(start, stop + 1)]


def latency_histogram(samples: dict, *, title: str = "", width: int = 520, height: int = 240):
    """One step line per series: how many messages took each (log-spaced) latency; x on a log scale.
    ``samples`` maps a series name (e.g. "Redis Pub/Sub") to its latencies in ms."""
    import pandas as pd

    alt = _alt()
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
        color=alt.Color("series:N", title=None), tooltip=["series", alt.Tooltip("latency_ms:Q", format=".3f"),
                                                           "messages"],
    ).properties(title=title, width=width, height=height)


def percentile_curve(samples: dict, *, title: str = "", width: int = 520, height: int = 240):
    """The HDR "percentile distribution": latency (log y) at each percentile, with the x axis
    stretched towards the tail (1 / (1 - q)), so p99 and p99.9 get as much room as the median."""
    import pandas as pd

    alt = _alt()
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
    axis = alt.Axis(values=ticks, labelExpr="datum.value <= 2 ? '50%' : datum.value <= 10 ? '90%' : "
                                            "datum.value <= 100 ? '99%' : '99.9%'")
    return alt.Chart(df).mark_line().encode(
        x=alt.X("x:Q", scale=alt.Scale(type="log"), axis=axis, title="percentile"),
        y=alt.Y("latency_ms:Q", scale=alt.Scale(type="log"), title="latency (ms, log scale)"),
        color=alt.Color("series:N", title=None), tooltip=["series", "percentile", alt.Tooltip("latency_ms:Q", format=".3f")],
    ).properties(title=title, width=width, height=height)


def curves(df, x: str, y: str, series: str | None = None, *, title: str = "", log_x: bool = False,
           log_y: bool = False, width: int = 420, height: int = 220):
    """Lines with points; either axis on a log scale (pipelining depth, linger, records/s)."""
    alt = _alt()
    log = alt.Scale(type="log")
    enc = {"x": alt.X(f"{x}:Q", title=x, scale=log if log_x else alt.Undefined),
           "y": alt.Y(f"{y}:Q", title=y, scale=log if log_y else alt.Undefined), "tooltip": list(df.columns)}
    if series:
        enc["color"] = alt.Color(f"{series}:N")
    return alt.Chart(df).mark_line(point=True).encode(**enc).properties(title=title, width=width, height=height)


class Panel:
    """A widget box whose plain-text form (no frontend) is a sentence, not ``VBox(children=...)``."""

    def __init__(self, box, fallback: str):
        self.box, self.fallback = box, fallback

    def _repr_mimebundle_(self, **kwargs):
        bundle = self.box._repr_mimebundle_(**kwargs) if self.box is not None else None
        bundle = dict(bundle or {})
        bundle["text/plain"] = self.fallback
        return bundle

    def __repr__(self) -> str:
        return self.fallback


def rerun_panel(run, call: str, **choices) -> Panel:
    """Dropdowns for each ``name=[options]`` (the first is the default), a Run button and an output
    area that shows ``run(**values)``. ``call`` is the code a learner types without widgets."""
    fallback = f"Re-run controls need JupyterLab; without them, run: {call}"
    try:
        import ipywidgets as w
        from IPython.display import display
    except ImportError:
        return Panel(None, fallback)
    pickers = {name: w.Dropdown(options=opts, value=opts[0], description=name,
                                style={"description_width": "initial"}) for name, opts in choices.items()}
    button = w.Button(description="Run", button_style="primary", tooltip="run the experiment with these values")
    out = w.Output()

    def clicked(_):
        button.disabled = True
        out.clear_output()
        with out:
            try:
                display(run(**{n: p.value for n, p in pickers.items()}))
            finally:
                button.disabled = False

    button.on_click(clicked)
    return Panel(w.VBox([w.HBox(list(pickers.values()) + [button]), out]), fallback)
