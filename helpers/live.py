"""Notebook 09's controls: the generator's rate slider, a prediction box and a live view.

``predict`` / ``compare`` / ``LiveView`` follow the API of the shared ``helpers.widgets`` being
built on the ``ui`` branch (same names and arguments), one small piece each, so the notebook can
switch to the shared ones with an import change when they land. Every piece works headless too
(nbclient, ``make site``): the text forms say what a click would do.
"""

from __future__ import annotations

import html
import threading
from collections.abc import Callable
from typing import Any

from IPython.display import HTML, display

from . import ui


def set_rate(r, control: str, per_second: float) -> float:
    """Tell the generator process (it reads ``HGET control rate``) how many orders per second to write."""
    r.hset(control, "rate", per_second)
    return per_second


def rate_slider(r, control: str, *, value: int = 20, high: int = 200):
    """A slider that sets the generator's rate while it runs (``set_rate`` is its headless form)."""
    import ipywidgets as w

    set_rate(r, control, value)
    slider = w.IntSlider(value=value, min=0, max=high, step=5, description="orders / s",
                         continuous_update=False, style={"description_width": "initial"})
    slider.observe(lambda change: set_rate(r, control, change["new"]), names="value")
    return slider


class Prediction:
    """A learner's prediction: ``.value`` is None until ``.set(x)`` (or a saved answer)."""

    def __init__(self, key: str, question: str, *, notebook: str, unit: str = "", claim: str | None = None):
        self.key, self.question, self.notebook, self.unit, self.claim = key, question, notebook, unit, claim
        self.value: Any = None

    def set(self, value) -> Prediction:
        self.value = value
        return self

    def _repr_html_(self) -> str:
        return (f"<div style='font:13px/1.5 sans-serif'>{ui.badge_html('PREDICT')} <b>{html.escape(self.question)}</b>"
                f"<br><i>Write your answer down, or record it: <code>{html.escape(self.key)}.set(...)</code> "
                "in a new cell.</i></div>")

    def __repr__(self) -> str:
        return f"[PREDICT] {self.question}"


def predict(key: str, question: str, *, notebook: str, unit: str = "", claim: str | None = None) -> Prediction:
    """A prediction to show before a drill (end the cell with it)."""
    return Prediction(key, question, notebook=notebook, unit=unit, claim=claim)


def compare(prediction: Prediction, measured, *, note: str = "") -> ui.Badge:
    """The observe step: the prediction (if any) beside the measured figure, as one badge line."""
    if prediction.value is None:
        return ui.badge("MEASURED", f"{measured} {prediction.unit}. {note}".strip())
    word = "AS PREDICTED" if prediction.value == measured else "SURPRISE"
    return ui.badge(word, f"you predicted {prediction.value}, measured {measured} {prediction.unit}. {note}".strip())


class LiveView:
    """Redraws ``render()`` every ``every`` seconds through one display handle while a cell runs.

    >>> with LiveView(lambda: table(r), every=0.5):
    ...     time.sleep(10)
    """

    def __init__(self, render: Callable[[], Any], *, every: float = 0.5, title: str = ""):
        self.render, self.every, self.title = render, every, title
        self.frames = 0
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._handle = None

    def _draw(self) -> None:
        try:
            self._handle.update(self.render())
            self.frames += 1
        except Exception as exc:  # keep the last frame, say why the view stopped
            self.error = exc
            self._stop.set()
            self._handle.update(ui.badge("FAILED", f"live view stopped: {type(exc).__name__}: {exc}"))

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            self._draw()

    def start(self) -> LiveView:
        if self.title:
            display(HTML(f"<b>{html.escape(self.title)}</b>"))
        self._handle = display(ui.badge("STARTING"), display_id=True)
        self._draw()
        self._thread = threading.Thread(target=self._loop, name="nb09-live-view", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> LiveView:
        """Stop redrawing and draw the final frame."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=max(5.0, 3 * self.every))
        if self.error is None:
            self._draw()
        return self

    def __enter__(self) -> LiveView:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def view_table(view: dict):
    """The view as a table: one row per product, best seller first (units, revenue in dollars)."""
    import pandas as pd

    rows = [{"product": p, "units": view["sold"].get(p, 0), "revenue $": view["revenue"].get(p, 0) / 100}
            for p in view["revenue"]]
    df = pd.DataFrame(rows, columns=["product", "units", "revenue $"])
    return df.sort_values(["units", "product"], ascending=[False, True]).reset_index(drop=True)


def view_chart(view: dict, *, title: str = ""):
    """Units sold per product as bars, titled with the totals (what the live view redraws)."""
    import altair as alt

    df = view_table(view)
    head = f"{view['orders']:,} orders, ${sum(view['revenue'].values()) / 100:,.2f}"
    return alt.Chart(df).mark_bar().encode(
        x=alt.X("product:N", sort=None), y=alt.Y("units:Q"),
        tooltip=[alt.Tooltip("product:N"), alt.Tooltip("units:Q"), alt.Tooltip("revenue $:Q", format=",.2f")],
    ).properties(title=f"{title} {head}".strip(), width=380, height=180)


def compare_table(view: dict, truth: dict):
    """The view beside the recount, one row per product, with an OK / FAILED badge per row."""
    import pandas as pd

    rows = []
    for p in sorted(set(view["revenue"]) | set(truth["revenue"])):
        row = {"product": p, "units (Redis)": view["sold"].get(p, 0), "units (recount)": truth["sold"].get(p, 0),
               "revenue $ (Redis)": view["revenue"].get(p, 0) / 100,
               "revenue $ (recount)": truth["revenue"].get(p, 0) / 100}
        same = row["units (Redis)"] == row["units (recount)"] and row["revenue $ (Redis)"] == row["revenue $ (recount)"]
        rows.append({**row, "status": "OK" if same else "FAILED"})
    return ui.style_status(pd.DataFrame(rows)).format(precision=2)


def swimlane(events, *, lane: str = "worker", time: str = "t", event: str = "event",
             kills: dict[str, float] | None = None, title: str = "", width: int = 560):
    """One lane per process, its events on a time axis, each kill a red rule (a stand-in with the
    signature of the shared ``charts.swimlane`` of the ``ui`` branch)."""
    import altair as alt
    import pandas as pd

    df = pd.DataFrame(events)
    kdf = pd.DataFrame([{lane: w, time: t, "label": f"SIGKILL {w}"} for w, t in (kills or {}).items()],
                       columns=[lane, time, "label"])
    lanes = list(dict.fromkeys([*df[lane], *kdf[lane]]))
    y = alt.Y(f"{lane}:N", sort=lanes, title=None)
    x = alt.X(f"{time}:Q", title="seconds since the drill started")
    marks = alt.Chart(df).mark_point(filled=True, size=70).encode(
        x=x, y=y, color=alt.Color(f"{event}:N", title="event"), shape=alt.Shape(f"{event}:N", title="event"),
        tooltip=list(df.columns))
    kill = alt.Chart(kdf).mark_rule(color="#cf222e", strokeDash=[5, 3], strokeWidth=2).encode(x=x, tooltip=["label"])
    label = alt.Chart(kdf).mark_text(color="#cf222e", align="left", dx=4, dy=-10, fontWeight="bold").encode(
        x=x, y=y, text="label:N")
    return alt.layer(marks, kill, label).properties(title=title or "Timeline: one lane per process, kills in red",
                                                    width=width, height=max(46 * len(lanes), 60))
