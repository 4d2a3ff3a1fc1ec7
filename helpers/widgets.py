"""Widgets where a click beats an edit: a prediction box, a re-run control, a live view.

Each one draws ipywidgets in a live JupyterLab page (:func:`helpers.ui.interactive`) and has a
plain fallback everywhere else (nbclient, testbook, ``make site``), so a notebook runs headless
and its rendered copy still reads well:

- :func:`predict` asks before an experiment and keeps the answer in the results file;
  :func:`compare` sets it beside the measured figure in the observe step.
- :func:`rerun` runs an experiment for one parameter now, and again for each click.
- :class:`LiveView` redraws a table or chart while a background experiment runs.
"""

from __future__ import annotations

import html
import re
import time
from collections.abc import Callable, Sequence
from typing import Any

from IPython.display import display

from . import results, ui
from .live import LiveView  # noqa: F401  (widgets.LiveView: the live view lives in helpers/live.py)


class _Note:
    """A line of HTML with a badge, and its plain-text twin (``[WORD] text``) for logs and tests."""

    def __init__(self, text_html: str, word: str | None = None):
        self.text_html, self.word = text_html, word

    def _repr_html_(self) -> str:
        mark = ui.badge_html(self.word) + " " if self.word else ""
        return f'<div style="font:13px/1.5 sans-serif">{mark}{self.text_html}</div>'

    def __repr__(self) -> str:
        text = html.unescape(re.sub(r"<br\s*/?>", " ", re.sub(r"<(?!br)[^>]+>", "", self.text_html)))
        return f"{ui.badge_text(self.word)} {text}" if self.word else text


def _plain(text_html: str, word: str | None = None) -> _Note:
    return _Note(text_html, word)


class Prediction:
    """A learner's prediction: ``guess.value`` is None until saved (a click, or ``guess.set(x)``)."""

    def __init__(self, key: str, question: str, *, notebook: str, options: Sequence | None = None,
                 unit: str = "", claim: str | None = None, metric: str | None = None):
        self.key, self.question, self.notebook = key, question, notebook
        self.options, self.unit, self.claim, self.metric = list(options) if options else None, unit, claim, metric
        self.value: Any = None
        self._status = None  # the widget's status line, when drawn

    def set(self, value) -> Prediction:
        """Save ``value`` as the prediction (kept in the results file)."""
        if self.options is not None and value not in self.options:
            raise ValueError(f"choose one of {self.options}, not {value!r}")
        self.value = value
        results.record_prediction(self.key, value, notebook=self.notebook, question=self.question,
                                  claim=self.claim, metric=self.metric, unit=self.unit)
        if self._status is not None:
            self._status.value = ui.badge_html("SAVED") + html.escape(f" your prediction: {self._shown(value)}")
        return self

    def _shown(self, value) -> str:
        return f"{value:g} {self.unit}".strip() if isinstance(value, (int, float)) else str(value)

    def _ipython_display_(self) -> None:
        if not ui.interactive():
            how = "pick one of " + ", ".join(map(str, self.options)) if self.options else "a number"
            saved = "NO PREDICTION" if self.value is None else "SAVED"
            display(_plain(f"<b>Predict:</b> {html.escape(self.question)}<br><i>In JupyterLab you answer in a "
                           f"box here; in a plain run call <code>.set(...)</code> on this prediction with "
                           f"{html.escape(how)}.</i>", saved))
            return
        import ipywidgets as w

        if self.options:
            field = w.RadioButtons(options=self.options, value=None, layout=w.Layout(width="auto"))
        else:
            field = w.Text(placeholder="a number", layout=w.Layout(width="140px"))
        button = w.Button(description="Save my prediction", button_style="primary", icon="check",
                          layout=w.Layout(width="auto"))
        self._status = w.HTML(ui.badge_html("NO PREDICTION") + " nothing saved yet")

        def save(_):
            value = field.value
            if not self.options:
                try:
                    value = float(str(value).replace(",", "").replace("_", "").strip())
                    value = int(value) if value.is_integer() else value
                except ValueError:
                    value = None
            if value is None:
                self._status.value = ui.badge_html("NO PREDICTION") + (
                    " choose an answer first" if self.options else " type a number first")
                return
            self.set(value)

        button.on_click(save)
        question = w.HTML(f"<b>Predict:</b> {html.escape(self.question)}")
        if self.options:  # the choices in a column, the button under them
            display(w.VBox([question, field, button, self._status]))
        else:
            unit = [w.Label(self.unit)] if self.unit else []
            display(w.VBox([question, w.HBox([field, *unit, button]), self._status]))


def predict(key: str, question: str, *, notebook: str, options: Sequence | None = None, unit: str = "",
            claim: str | None = None, metric: str | None = None) -> Prediction:
    """A prediction box to show before an experiment (end the cell with it).

    >>> guess = widgets.predict("nb01-missed", "How many messages will the dashboard miss?",
    ...                         notebook="01", unit="messages", claim="C03")
    """
    return Prediction(key, question, notebook=notebook, options=options, unit=unit, claim=claim, metric=metric)


def outcome(predicted, measured, *, tolerance: float = 0.1, close: float = 2.0) -> str:
    """"as predicted" (within ``tolerance``, relative), "close" (within a factor ``close``),
    "surprise", or "no prediction". Non-numbers must be equal to count as predicted."""
    if predicted is None:
        return "no prediction"
    if isinstance(predicted, (int, float)) and isinstance(measured, (int, float)):
        p, m = float(predicted), float(measured)
        if abs(p - m) <= tolerance * max(abs(m), 1e-12) or p == m:
            return "as predicted"
        same_sign = (p > 0) == (m > 0) and p != 0 and m != 0
        return "close" if same_sign and max(p / m, m / p) <= close else "surprise"
    return "as predicted" if predicted == measured else "surprise"


class Comparison:
    """The prediction beside the measured figure; displays as one line with a badge."""

    def __init__(self, prediction: Prediction, measured, verdict: str, note: str = ""):
        self.prediction, self.measured, self.outcome, self.note = prediction, measured, verdict, note

    def _text(self) -> str:
        p = self.prediction
        said = "no prediction saved" if p.value is None else f"you predicted {p._shown(p.value)}"
        return f"{said}; measured {p._shown(self.measured)}. {self.note}".strip()

    def __repr__(self) -> str:
        return f"{ui.badge_text(self.outcome)} {self._text()}"

    def _repr_html_(self) -> str:
        return _plain(html.escape(self._text()), self.outcome)._repr_html_()


def compare(prediction: Prediction, measured, *, tolerance: float = 0.1, close: float = 2.0,
            note: str = "") -> Comparison:
    """The observe step: the learner's prediction next to ``measured``, kept in the results file.

    >>> widgets.compare(guess, len(missed), note="Pub/Sub keeps nothing for an absent subscriber.")
    """
    verdict = outcome(prediction.value, measured, tolerance=tolerance, close=close)
    if prediction.value is not None:
        results.record_prediction(prediction.key, prediction.value, notebook=prediction.notebook,
                                  question=prediction.question, claim=prediction.claim,
                                  metric=prediction.metric, unit=prediction.unit, measured=measured,
                                  outcome=verdict)
    return Comparison(prediction, measured, verdict, note)


class Rerun:
    """An experiment run for one parameter: ``.value``, ``.result``, ``.history``; ``.run(v)`` again."""

    def __init__(self, fn: Callable[[Any], Any], *, value, options: Sequence | None = None,
                 low: float | None = None, high: float | None = None, step: float | None = None,
                 label: str = "value", button: str = "Run again"):
        if options is None and (low is None or high is None):
            raise ValueError("give options=[...] (a dropdown) or low= and high= (a slider)")
        self.fn, self.options, self.low, self.high, self.step = fn, options, low, high, step
        self.label, self.button_text = label, button
        self.history: list[tuple[Any, Any, float]] = []
        self._out = None
        self.run(value)

    @property
    def value(self):
        return self.history[-1][0]

    @property
    def result(self):
        return self.history[-1][1]

    def run(self, value) -> Any:
        """Run the experiment with ``value`` (what a click does) and return its result."""
        t0 = time.perf_counter()
        result = self.fn(value)
        self.history.append((value, result, time.perf_counter() - t0))
        return result

    def _shown(self) -> tuple:
        """The result as the objects to display (a tuple result shows each item: a chart and a table)."""
        return self.result if isinstance(self.result, tuple) else (self.result,)

    def _caption(self) -> str:
        value, _, seconds = self.history[-1]
        return f"{self.label} = {value} (run {len(self.history)}, {seconds:.1f} s)"

    def _ipython_display_(self) -> None:
        if not ui.interactive():
            display(_plain(html.escape(self._caption()) + "<br><i>In JupyterLab a control here re-runs it "
                           "with another value.</i>"), *self._shown())
            return
        import ipywidgets as w

        if self.options is not None:
            control = w.Dropdown(options=list(self.options), value=self.value, description=self.label,
                                 style={"description_width": "initial"})
        else:
            kind = w.IntSlider if all(isinstance(v, int) for v in (self.low, self.high, self.step or 1)) else w.FloatSlider
            control = kind(value=self.value, min=self.low, max=self.high, step=self.step or 1,
                           description=self.label, style={"description_width": "initial"})
        button = w.Button(description=self.button_text, button_style="primary", icon="refresh")
        caption, out = w.HTML(html.escape(self._caption())), w.Output()
        with out:
            display(*self._shown())

        def click(_):
            button.disabled, button.description = True, "Running..."
            try:
                self.run(control.value)
                out.clear_output(wait=True)
                with out:
                    display(*self._shown())
                caption.value = html.escape(self._caption())
            except Exception as exc:  # shown in the widget: a click has no cell to raise into
                caption.value = ui.badge_html("FAILED") + html.escape(f" {type(exc).__name__}: {exc}")
            finally:
                button.disabled, button.description = False, self.button_text

        button.on_click(click)
        display(w.VBox([w.HBox([control, button]), caption, out]))


def rerun(fn: Callable[[Any], Any], *, value, options: Sequence | None = None, low: float | None = None,
          high: float | None = None, step: float | None = None, label: str = "value",
          button: str = "Run again") -> Rerun:
    """Run ``fn(value)`` now and offer a dropdown (``options``) or slider (``low``/``high``) plus a
    button to run it again with another value. End the cell with the returned control. ``fn``
    returns what to show: one object, or a tuple of them (a chart and its table).

    >>> ctl = widgets.rerun(lambda s: run_disconnect(window=s), value=1.0, options=[0.5, 1.0, 2.0],
    ...                     label="disconnect window (s)")
    """
    return Rerun(fn, value=value, options=options, low=low, high=high, step=step, label=label, button=button)
