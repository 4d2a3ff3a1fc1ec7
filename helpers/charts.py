"""Altair chart builders shared by the notebooks (each returns a chart; nothing is shown here)."""

from __future__ import annotations


def _alt():
    import altair as alt

    return alt


def bars(df, x: str, y: str, *, title: str = "", color: str | None = None, width: int = 420, height: int = 220):
    """A bar chart of ``y`` per ``x`` (e.g. messages received per subscriber)."""
    alt = _alt()
    enc = {"x": alt.X(f"{x}:N", sort=None, title=x), "y": alt.Y(f"{y}:Q", title=y), "tooltip": list(df.columns)}
    if color:
        enc["color"] = alt.Color(f"{color}:N")
    return alt.Chart(df).mark_bar().encode(**enc).properties(title=title, width=width, height=height)


def histogram(df, value: str, *, title: str = "", bins: int = 40, log_y: bool = False, width: int = 420,
              height: int = 220, rules: dict | None = None):
    """A histogram of ``value`` with optional vertical rules, e.g. ``rules={"p50": 0.2, "p99": 0.9}``."""
    alt = _alt()
    pd = __import__("pandas")
    y = alt.Y("count():Q", scale=alt.Scale(type="symlog") if log_y else alt.Undefined, title="count")
    chart = alt.Chart(df).mark_bar().encode(x=alt.X(f"{value}:Q", bin=alt.Bin(maxbins=bins), title=value), y=y)
    if rules:
        rdf = pd.DataFrame({"label": list(rules), value: list(rules.values())})
        chart = chart + alt.Chart(rdf).mark_rule(color="firebrick").encode(
            x=f"{value}:Q", tooltip=["label", f"{value}:Q"])
    return chart.properties(title=title, width=width, height=height)


def lines(df, x: str, y: str, series: str, *, title: str = "", width: int = 460, height: int = 240):
    """One line per ``series`` (e.g. consumer-group lag over time)."""
    alt = _alt()
    return alt.Chart(df).mark_line(point=True).encode(
        x=alt.X(f"{x}:Q", title=x), y=alt.Y(f"{y}:Q", title=y), color=alt.Color(f"{series}:N"),
        tooltip=list(df.columns)).properties(title=title, width=width, height=height)
