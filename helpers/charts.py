"""Altair chart builders, and the renderer that draws them with no network.

Importing this module enables the course's Altair renderer (``"streamslab"``) for the kernel, so
every Altair chart displayed afterwards draws offline, whoever built it:

- in a live JupyterLab page (:func:`helpers.ui.interactive`) it is Altair's ``JupyterChart``
  widget in offline mode: Vega's JavaScript comes from vl-convert inside the widget's own module,
  tooltips and zoom work, and the page requests nothing from any host but the lab's own;
- anywhere else (nbclient, testbook, ``make site``) it is a static SVG made by vl-convert, with a
  ``<title>`` on every mark so the browser still shows a tooltip on hover.

The builders return charts; nothing is shown here.
"""

from __future__ import annotations

import re

import altair as alt

from . import ui

RENDERER = "streamslab"
KILL_COLOR = "#cf222e"
#: swimlane marks with a fixed ``order``: Vega's dark2 colours, and every point shape but the kill's cross
LANE_COLORS = ["#1b9e77", "#d95f02", "#7570b3", "#66a61e", "#e6ab02", "#a6761d", "#666666", "#e7298a"]
LANE_SHAPES = ["circle", "square", "triangle-up", "diamond", "triangle-down", "triangle-right", "triangle-left"]


def _title_of(spec: dict) -> str:
    title = spec.get("title") or ""
    if isinstance(title, dict):
        title = title.get("text", "")
    return " ".join(title) if isinstance(title, list) else str(title)


def svg(chart) -> str:
    """The chart (an Altair chart or a Vega-Lite dict) as SVG, each mark carrying a ``<title>``
    tooltip made from Vega's own label for it (``"partition: 2; events: 210"``)."""
    try:
        import vl_convert as vlc
    except ImportError as exc:  # pragma: no cover - a broken environment, not a code path
        raise ImportError("vl-convert-python is missing: run `make setup` (pip install -e '.[dev]')") from exc
    spec = chart if isinstance(chart, dict) else chart.to_dict()
    drawn = vlc.vegalite_to_svg(spec)
    return re.sub(r'<(path|line|text|rect)(\s[^>]*?aria-label="([^"]*)"[^>]*?)/>',
                  lambda m: f"<{m[1]}{m[2]}><title>{m[3]}</title></{m[1]}>", drawn)


def render(spec: dict, **metadata) -> dict:
    """The Altair renderer: a JupyterChart widget in a live lab, an SVG everywhere else."""
    label = f"Chart: {_title_of(spec) or 'untitled'}"
    if ui.interactive():
        alt.JupyterChart.enable_offline(True)  # Vega bundled into the widget's module by vl-convert
        bundle = alt.JupyterChart(chart=alt.Chart.from_dict(spec),
                                  embed_options=metadata.get("embed_options"))._repr_mimebundle_()
        bundle = bundle[0] if isinstance(bundle, tuple) else bundle
        return {**bundle, "text/plain": label}
    return {"image/svg+xml": svg(spec), "text/plain": label}


def enable() -> None:
    """Register and enable the course renderer (idempotent; done when this module is imported)."""
    if RENDERER not in alt.renderers.names():
        alt.renderers.register(RENDERER, render)
    if alt.renderers.active != RENDERER:
        alt.renderers.enable(RENDERER)


enable()


def bars(df, x: str, y: str, *, title: str = "", color: str | None = None, width: int = 420, height: int = 220):
    """A bar chart of ``y`` per ``x`` (e.g. messages received per subscriber)."""
    enc = {"x": alt.X(f"{x}:N", sort=None, title=x), "y": alt.Y(f"{y}:Q", title=y), "tooltip": list(df.columns)}
    if color:
        enc["color"] = alt.Color(f"{color}:N")
    return alt.Chart(df).mark_bar().encode(**enc).properties(title=title, width=width, height=height)


def histogram(df, value: str, *, title: str = "", bins: int = 40, log_y: bool = False, width: int = 420,
              height: int = 220, rules: dict | None = None):
    """A histogram of ``value`` with optional vertical rules, e.g. ``rules={"p50": 0.2, "p99": 0.9}``."""
    import pandas as pd

    y = alt.Y("count():Q", scale=alt.Scale(type="symlog") if log_y else alt.Undefined, title="count")
    chart = alt.Chart(df).mark_bar().encode(x=alt.X(f"{value}:Q", bin=alt.Bin(maxbins=bins), title=value), y=y)
    if rules:
        rdf = pd.DataFrame({"label": list(rules), value: list(rules.values())})
        chart = chart + alt.Chart(rdf).mark_rule(color="firebrick").encode(
            x=f"{value}:Q", tooltip=["label", f"{value}:Q"])
    return chart.properties(title=title, width=width, height=height)


def field(name: str) -> str:
    """A column name as a Vega-Lite field: ``.`` and brackets escaped, so ``"linger.ms"`` is one column,
    not the field ``ms`` nested in ``linger`` (which draws an empty chart)."""
    return re.sub(r"([.\[\]])", r"\\\1", name)


def lines(df, x: str, y: str, series: str | None = None, *, title: str = "", log_x: bool = False,
          log_y: bool = False, width: int = 460, height: int = 240):
    """One line per ``series`` (e.g. consumer-group lag over time), or one line without ``series``;
    either axis on a log scale when it spans magnitudes (pipeline depth, records/s). Column names may
    contain dots (``"linger.ms"``)."""
    log = alt.Scale(type="log")
    enc = {"x": alt.X(field(x), type="quantitative", title=x, scale=log if log_x else alt.Undefined),
           "y": alt.Y(field(y), type="quantitative", title=y, scale=log if log_y else alt.Undefined),
           "tooltip": [alt.Tooltip(field(c), title=c) for c in df.columns]}
    if series:
        enc["color"] = alt.Color(field(series), type="nominal", title=series)
    return alt.Chart(df).mark_line(point=True).encode(**enc).properties(title=title, width=width, height=height)


def strip(df, value: str, category: str, *, title: str = "", log: bool = True, width: int = 460,
          height: int = 200):
    """One dot per measurement of ``value`` in a row per ``category``, with each row's median as a
    tick (e.g. round-trip times per messaging model, on a log axis when they span magnitudes)."""
    x = alt.X(f"{value}:Q", title=value, scale=alt.Scale(type="log") if log else alt.Undefined)
    y = alt.Y(f"{category}:N", title=None, sort=None)
    dots = alt.Chart(df).mark_circle(size=38, opacity=0.55).encode(
        x=x, y=y, color=alt.Color(f"{category}:N", legend=None), tooltip=list(df.columns))
    medians = alt.Chart(df).mark_tick(color="black", thickness=2, size=22).encode(
        x=alt.X(f"median({value}):Q"), y=y, tooltip=[alt.Tooltip(f"median({value}):Q", title="median")])
    return (dots + medians).properties(title=title, width=width, height=height)


def swimlane(events, *, lane: str = "worker", time: str = "t", event: str = "event",
             kills: dict[str, float] | None = None, kill_events: tuple[str, ...] = ("killed", "SIGKILL"),
             title: str = "", width: int = 560, lane_height: int = 46, order: list[str] | None = None):
    """One lane per worker/consumer, its events as marks on a time axis, each kill marked in red.

    ``events`` is a DataFrame with a row per event: ``lane`` (``"worker-1"``), ``time`` (seconds
    from the start) and ``event`` (``"popped"``, ``"done"``, ``"claimed"`` ...), plus any columns
    for the tooltip (a job id). A kill is either a row whose event is in ``kill_events`` or an
    entry of ``kills={"worker-1": 3.2}``; it is drawn as a red dashed rule with a label.
    ``order`` (the event names, in legend order) gives each event the same colour and shape in
    every chart that passes it, and no event the kill's cross.
    """
    import pandas as pd

    df = pd.DataFrame(events).copy()
    found = df[df[event].isin(kill_events)] if len(df) else df
    marks = df[~df.index.isin(found.index)]
    kill_rows = [{lane: str(w), time: float(t), "label": f"SIGKILL {w}"} for w, t in (kills or {}).items()]
    kill_rows += [{lane: str(row[lane]), time: float(row[time]), "label": f"{row[event]} {row[lane]}"}
                  for _, row in found.iterrows()]
    kdf = pd.DataFrame(kill_rows, columns=[lane, time, "label"])
    lanes = list(dict.fromkeys([*(map(str, df[lane]) if len(df) else []), *kdf[lane]]))
    y = alt.Y(f"{lane}:N", sort=lanes, title=None, scale=alt.Scale(domain=lanes))
    x = alt.X(f"{time}:Q", title="seconds since the start")
    color_scale, shape_scale = alt.Scale(scheme="dark2"), alt.Undefined
    if order is not None:  # a fixed colour and shape per event name, listed in the legend only when drawn
        names = list(dict.fromkeys([*order, *map(str, marks[event])]))
        drawn = [e for e in names if e in set(map(str, marks[event]))]
        color_scale = alt.Scale(domain=drawn, range=[LANE_COLORS[names.index(e) % len(LANE_COLORS)] for e in drawn])
        shape_scale = alt.Scale(domain=drawn, range=[LANE_SHAPES[names.index(e) % len(LANE_SHAPES)] for e in drawn])
    extent = df.groupby(lane)[time].agg(["min", "max"]).reset_index() if len(df) else pd.DataFrame(
        columns=[lane, "min", "max"])
    layers = [
        alt.Chart(extent).mark_rule(color="#d0d7de", strokeWidth=6).encode(
            y=y, x=alt.X("min:Q", title="seconds since the start"), x2="max:Q"),
        alt.Chart(marks).mark_point(filled=True, size=70, opacity=0.85).encode(
            x=x, y=y, color=alt.Color(f"{event}:N", title="event", scale=color_scale),
            shape=alt.Shape(f"{event}:N", title="event", scale=shape_scale),
            tooltip=[c for c in marks.columns]),
    ]
    if len(kdf):
        layers += [
            alt.Chart(kdf).mark_rule(color=KILL_COLOR, strokeDash=[5, 3], strokeWidth=2).encode(
                x=x, tooltip=["label", f"{time}:Q"]),
            alt.Chart(kdf).mark_point(shape="cross", size=260, filled=True, color=KILL_COLOR).encode(
                x=x, y=y, tooltip=["label", f"{time}:Q"]),
            alt.Chart(kdf).mark_text(color=KILL_COLOR, align="left", dx=6, dy=-14, fontWeight="bold").encode(
                x=x, y=y, text="label:N"),
        ]
    return alt.layer(*layers).properties(
        title=title or "Timeline: one lane per worker, the kill in red",
        width=width, height=max(lane_height * max(len(lanes), 1), 60))
