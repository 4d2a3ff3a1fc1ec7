"""Stand-ins for the shared UI helpers notebook 08 needs (a prediction box, the observe-step
comparison, a re-run control, a swimlane chart) until ``helpers.widgets`` and
``charts.swimlane`` land on main. Same call signatures, so switching is an import change; each is
one small function with a plain fallback for headless runs.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from typing import Any

from . import ui


def _interactive() -> bool:
    try:
        from IPython import get_ipython

        return get_ipython() is not None and get_ipython().__class__.__name__ == "ZMQInteractiveShell"
    except ImportError:
        return False


class Prediction:
    """A learner's guess: ``.value`` (None until typed); shows a text box in JupyterLab."""

    def __init__(self, key: str, question: str, *, notebook: str, options: Sequence | None = None,
                 unit: str = "", claim: str | None = None, metric: str | None = None):
        self.key, self.question, self.notebook, self.options = key, question, notebook, options
        self.unit, self.claim, self.metric, self.value = unit, claim, metric, None

    def _ipython_display_(self) -> None:
        from IPython.display import HTML, display

        display(HTML(f"<b>Predict:</b> {html.escape(self.question)}"))
        if not _interactive():
            return
        import ipywidgets as w

        box = (w.Dropdown(options=["(choose)", *self.options]) if self.options
               else w.Text(placeholder=f"your guess {self.unit}".strip()))

        def keep(change):
            raw = change["new"]
            try:
                self.value = float(raw) if not self.options else (None if raw == "(choose)" else raw)
            except ValueError:
                self.value = raw or None

        box.observe(keep, names="value")
        display(box)


def predict(key: str, question: str, *, notebook: str, options: Sequence | None = None, unit: str = "",
            claim: str | None = None, metric: str | None = None) -> Prediction:
    """A prediction box to show before an experiment (end the cell with it)."""
    return Prediction(key, question, notebook=notebook, options=options, unit=unit, claim=claim, metric=metric)


def compare(prediction: Prediction, measured, *, tolerance: float = 0.1, close: float = 2.0, note: str = ""):
    """The observe step: the prediction beside the measured figure, as a badge and one sentence."""
    p = prediction.value
    if p is None:
        word = "no prediction"
    elif isinstance(p, (int, float)) and isinstance(measured, (int, float)):
        ratio = max(abs(p), 1e-12) / max(abs(measured), 1e-12)
        word = ("as predicted" if abs(p - measured) <= tolerance * max(abs(measured), 1e-12)
                else "close" if 1 / close <= ratio <= close else "surprise")
    else:
        word = "as predicted" if p == measured else "surprise"
    said = "no prediction saved" if p is None else f"you predicted {p} {prediction.unit}".rstrip()
    return ui.badge(word, f"{said}; measured {measured} {prediction.unit}. {note}".strip())


class Rerun:
    """``fn(value)`` run now; in JupyterLab a dropdown and a button run it again with another value."""

    def __init__(self, fn: Callable[[Any], Any], *, value, options: Sequence, label: str = "value"):
        self.fn, self.options, self.label = fn, list(options), label
        self.history: list[tuple[Any, Any]] = []
        self.run(value)

    @property
    def value(self):
        return self.history[-1][0]

    @property
    def result(self):
        return self.history[-1][1]

    def run(self, value):
        self.history.append((value, self.fn(value)))
        return self.result

    def _shown(self) -> tuple:
        return self.result if isinstance(self.result, tuple) else (self.result,)

    def _ipython_display_(self) -> None:
        from IPython.display import display

        if not _interactive():
            display(ui.badge("OK", f"{self.label} = {self.value}"), *self._shown())
            return
        import ipywidgets as w

        control = w.Dropdown(options=self.options, value=self.value, description=self.label,
                             style={"description_width": "initial"})
        button, out = w.Button(description="Run again", button_style="primary"), w.Output()
        with out:
            display(*self._shown())

        def click(_):
            button.disabled = True
            try:
                self.run(control.value)
                out.clear_output(wait=True)
                with out:
                    display(*self._shown())
            finally:
                button.disabled = False

        button.on_click(click)
        display(w.VBox([w.HBox([control, button]), out]))


def rerun(fn: Callable[[Any], Any], *, value, options: Sequence, label: str = "value") -> Rerun:
    """Run ``fn(value)`` now and offer a control to run it again (end the cell with it)."""
    return Rerun(fn, value=value, options=options, label=label)


def swimlane(events, *, lane: str = "worker", time: str = "t", event: str = "event",
             kills: dict[str, float] | None = None, title: str = "", width: int = 560, lane_height: int = 40):
    """One lane per consumer, its events as marks on a time axis, each kill a red rule and cross."""
    import altair as alt
    import pandas as pd

    df = pd.DataFrame(events)
    lanes = list(dict.fromkeys(df[lane].astype(str)))
    y = alt.Y(f"{lane}:N", sort=lanes, title=None)
    x = alt.X(f"{time}:Q", title="seconds since the start")
    marks = alt.Chart(df).mark_point(filled=True, size=70, opacity=0.85).encode(
        x=x, y=y, color=alt.Color(f"{event}:N", title="event"), shape=alt.Shape(f"{event}:N", title="event"),
        tooltip=list(df.columns))
    kdf = pd.DataFrame([{lane: k, time: t, "label": f"SIGKILL {k}"} for k, t in (kills or {}).items()],
                       columns=[lane, time, "label"])
    rule = alt.Chart(kdf).mark_rule(color="#cf222e", strokeDash=[5, 3], strokeWidth=2).encode(x=x)
    cross = alt.Chart(kdf).mark_point(shape="cross", size=240, filled=True, color="#cf222e").encode(
        x=x, y=y, tooltip=["label", f"{time}:Q"])
    return alt.layer(marks, rule, cross).properties(
        title=title, width=width, height=max(lane_height * max(len(lanes), 1), 60))
