"""Progress bars whose deliberate early stop looks deliberate.

tqdm's notebook bar turns red whenever it closes short of its total, which is right for a crash
and wrong for an experiment that stops on purpose (a flood that ends once the server has cut off
its subscribers). :func:`bar` says why it stopped, in blue, with a STOPPED badge:

>>> with progress.bar(40_000, "PUBLISH 1 kB messages", unit="msg") as bar:
...     while ...:
...         bar.update(200)
...         if both_cut_off:
...             bar.stop("the server cut off both subscribers")
...             break

In a live JupyterLab page it is tqdm's widget bar; in a headless run (nbclient, ``make site``)
one summary line is printed at the end instead of a bar frozen at 0 %.
"""

from __future__ import annotations

import time

from IPython.display import display

from . import ui


class Bar:
    """A progress bar with :meth:`stop` for an expected early end (use as a context manager)."""

    def __init__(self, total: int, desc: str, unit: str = "it"):
        self.total, self.desc, self.unit = total, desc, unit
        self.n = 0
        self.reason: str | None = None
        self.failed = False
        self._t0 = time.monotonic()
        self._bar = None
        if ui.interactive():
            from tqdm.notebook import tqdm

            self._bar = tqdm(total=total, desc=desc, unit=unit, unit_scale=True)

    def update(self, n: int = 1) -> None:
        self.n += n
        if self._bar is not None:
            self._bar.update(n)

    def stop(self, reason: str) -> None:
        """Mark the end as intended: the bar says ``reason`` and is not drawn as a failure."""
        self.reason = reason

    def summary(self) -> ui.Badge:
        seconds = time.monotonic() - self._t0
        done = f"{self.desc}: {self.n:,} of {'at most ' if self.reason else ''}{self.total:,} {self.unit} in {seconds:.1f} s"
        if self.failed:
            return ui.badge("FAILED", f"{done}, interrupted by an error")
        if self.reason:
            return ui.badge("STOPPED", f"{done}; stopped on purpose: {self.reason}")
        return ui.badge("OK" if self.n >= self.total else "STOPPED", done)

    def close(self) -> None:
        bar, self._bar = self._bar, None
        if bar is None:
            display(self.summary())
            return
        if self.failed or not self.reason:
            bar.close()  # tqdm's own colours: green when complete, red when short (a real failure)
            return
        bar.set_postfix_str(f"stopped on purpose: {self.reason}", refresh=False)
        super(type(bar), bar).close()  # tqdm's plain close, without the notebook bar's "short = red"
        bar.disp(bar_style="info", check_delay=False)
        display(self.summary())

    def __enter__(self) -> Bar:
        return self

    def __exit__(self, exc_type, *_) -> None:
        self.failed = exc_type is not None and not issubclass(exc_type, GeneratorExit)
        self.close()


def bar(total: int, desc: str, unit: str = "it") -> Bar:
    """A progress bar for ``total`` steps; call ``.stop(reason)`` before leaving early on purpose."""
    return Bar(total, desc, unit)
