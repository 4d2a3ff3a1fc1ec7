"""The live view of :mod:`helpers.widgets`: a table or chart redrawn while an experiment runs.

One display handle is updated every ``every`` seconds from a background thread while the cell that
opened it runs (nbclient applies those updates too, so a headless run shows the last frame); in a
live JupyterLab an Altair chart is drawn once as a widget and then only its spec changes.
Use it as ``widgets.LiveView``.
"""

from __future__ import annotations

import html
import threading
from collections.abc import Callable
from typing import Any

from IPython.display import HTML, display

from . import ui


def _failed(message: str) -> HTML:
    return HTML(f'<div style="font:13px/1.5 sans-serif">{ui.badge_html("FAILED")} {html.escape(message)}</div>')


def _starting() -> HTML:
    return HTML('<div style="font:13px/1.5 sans-serif">starting ...</div>')


class LiveView:
    """Redraws ``render()`` (a DataFrame, chart or anything displayable) every ``every`` seconds
    while an experiment runs, through one display handle (works headless too, while the cell runs).

    >>> with widgets.LiveView(lambda: pending_table(r, STREAM, GROUP), every=0.5) as view:
    ...     wait_for_experiment()
    """

    def __init__(self, render: Callable[[], Any], *, every: float = 0.5, title: str = ""):
        self.render, self.every, self.title = render, every, title
        self.frames = 0
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._handle = None
        self._chart = None  # the one JupyterChart a live lab updates in place

    def _draw(self, final: bool = False) -> None:
        try:
            obj = self.render()
        except Exception as exc:  # keep the last good frame, say what went wrong, stop redrawing
            self.error = exc
            self._stop.set()
            obj = _failed(f"live view stopped: {type(exc).__name__}: {exc}")
        import altair as alt

        if isinstance(obj, alt.TopLevelMixin) and ui.interactive():
            if self._chart is None:
                alt.JupyterChart.enable_offline(True)
                self._chart = alt.JupyterChart(chart=obj)
                obj = self._chart
            else:
                self._chart.chart = obj
                obj = None
        if obj is not None and self._handle is not None:
            self._handle.update(obj)
        elif obj is not None and final:  # no display handles (a plain Python run): the last frame only
            display(obj)
        self.frames += 1

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            self._draw()

    def start(self) -> LiveView:
        if self.title:
            display(HTML(f"<b>{html.escape(self.title)}</b>"))
        self._handle = display(_starting(), display_id=True)
        self._draw()
        self._thread = threading.Thread(target=self._loop, name="live-view", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> LiveView:
        """Stop redrawing and draw the final frame (from the calling cell)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=max(5.0, 3 * self.every))
        if self.error is None:
            self._draw(final=True)
        return self

    def __enter__(self) -> LiveView:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
