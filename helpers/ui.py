"""Status marks that do not depend on a font: a coloured badge with a word.

``badge("OK")`` renders as a green pill reading OK in JupyterLab and in the rendered site, and as
``[OK]`` in plain text (a terminal, a log, a test). No emoji: without a colour-emoji font they
become empty boxes and "ok" looks like "failed".
"""

from __future__ import annotations

import html
import os

#: word -> (background, text colour); every status word the course shows
STYLES = {
    "OK": ("#1a7f37", "#ffffff"),
    "PASS": ("#1a7f37", "#ffffff"),
    "CONFIRMED": ("#1a7f37", "#ffffff"),
    "SLOW": ("#9a6700", "#ffffff"),
    "DEPENDS": ("#9a6700", "#ffffff"),
    "INCONCLUSIVE": ("#6639ba", "#ffffff"),
    "TIME LIMIT": ("#bc4c00", "#ffffff"),
    "NOT YET": ("#cf222e", "#ffffff"),
    "FAILED": ("#cf222e", "#ffffff"),
    "ERROR REPLY": ("#cf222e", "#ffffff"),
    "REFUTED": ("#cf222e", "#ffffff"),
    "NOT ATTEMPTED": ("#57606a", "#ffffff"),
    "NOT MEASURED": ("#57606a", "#ffffff"),
    "STOPPED": ("#0969da", "#ffffff"),
    "SAVED": ("#0969da", "#ffffff"),
    "AS PREDICTED": ("#1a7f37", "#ffffff"),
    "CLOSE": ("#9a6700", "#ffffff"),
    "SURPRISE": ("#6639ba", "#ffffff"),
    "NO PREDICTION": ("#57606a", "#ffffff"),
}


def _style(word: str) -> tuple[str, str]:
    return STYLES.get(word.upper(), ("#57606a", "#ffffff"))


def badge_html(word: str) -> str:
    """The HTML of one badge (inline styles only, so it survives nbconvert and sanitisers)."""
    bg, fg = _style(word)
    return (f'<span style="display:inline-block;padding:1px 7px;border-radius:9px;background:{bg};'
            f'color:{fg};font:600 11px/16px sans-serif;letter-spacing:.03em;white-space:nowrap">'
            f"{html.escape(word.upper())}</span>")


def badge_text(word: str) -> str:
    return f"[{word.upper()}]"


class Badge:
    """A badge with an optional message beside it; HTML in Jupyter, ``[WORD] message`` as text."""

    def __init__(self, word: str, message: str = ""):
        self.word, self.message = word.upper(), message

    def __str__(self) -> str:
        return f"{badge_text(self.word)} {self.message}".rstrip()

    __repr__ = __str__

    def _repr_html_(self) -> str:
        return f"{badge_html(self.word)} {html.escape(self.message)}"


def badge(word: str, message: str = "") -> Badge:
    """``badge("FAILED", "Kafka is not reachable")`` -> a displayable badge."""
    return Badge(word, message)


def style_status(df, column: str = "status"):
    """A pandas Styler that draws ``column`` (status words) as badges; the text stays the word,
    so a copy, a CSV or a test still reads ``OK`` / ``SLOW`` / ``FAILED``."""
    def cell_css(value) -> str:
        bg, fg = _style(str(value))
        return (f"background-color:{bg};color:{fg};font-weight:600;text-align:center;"
                "border-radius:9px;white-space:nowrap")

    styler = df.style.hide(axis="index")
    mapper = getattr(styler, "map", None) or styler.applymap  # pandas < 2.1 has only applymap
    return mapper(cell_css, subset=[column])


_seen_live_frontend = False


def interactive() -> bool:
    """True when a live JupyterLab (or Notebook 7) page sent the code being run, so widgets draw.

    False under nbclient / testbook / ``nbconvert --execute`` / ``make site`` (no frontend: charts
    become static SVG and widgets their plain fallback), in a terminal, and when
    ``COURSE_DISPLAY=static``; ``COURSE_DISPLAY=interactive`` forces True. JupyterLab marks each
    execute request with the cell's id (``metadata.cellId``) and widget clicks arrive as
    ``comm_msg``; headless runners send neither. Once seen, a live frontend is remembered for the
    kernel's life (a widget callback or a background thread has no cell of its own).
    """
    global _seen_live_frontend
    forced = os.environ.get("COURSE_DISPLAY", "").strip().lower()
    if forced in {"static", "interactive"}:
        return forced == "interactive"
    if _seen_live_frontend:
        return True
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    kernel = getattr(get_ipython(), "kernel", None)
    if kernel is None:
        return False
    try:
        parent = kernel.get_parent() or {}
    except Exception:  # an old ipykernel without get_parent(): assume a plain run
        return False
    header = parent.get("header") or {}
    metadata = parent.get("metadata") or {}
    if header.get("msg_type") == "comm_msg" or "cellId" in metadata:
        _seen_live_frontend = True
    return _seen_live_frontend
