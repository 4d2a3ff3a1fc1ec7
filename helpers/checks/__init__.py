"""Exercise checks: inspect real server state and say pass / not yet / not attempted, kindly.

A check function returns a :class:`CheckResult`; in a notebook it renders as one line with an
emoji and, when not passed, a hint. Tests read ``.status``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

PASS, NOT_YET, NOT_ATTEMPTED = "pass", "not-yet", "not-attempted"
_ICONS = {PASS: "✅", NOT_YET: "❌", NOT_ATTEMPTED: "📝"}


@dataclass
class CheckResult:
    status: str
    message: str
    hint: str = ""

    @property
    def passed(self) -> bool:
        return self.status == PASS

    def __str__(self) -> str:
        text = f"{_ICONS[self.status]} {self.message}"
        return text + (f"\n   hint: {self.hint}" if self.hint and not self.passed else "")

    __repr__ = __str__

    def _repr_html_(self) -> str:
        colour = {PASS: "#1a7f37", NOT_YET: "#cf222e", NOT_ATTEMPTED: "#6e7781"}[self.status]
        hint = f"<br><small>hint: {self.hint}</small>" if self.hint and not self.passed else ""
        return f'<div style="color:{colour};font-weight:600">{_ICONS[self.status]} {self.message}{hint}</div>'


def passed(message: str) -> CheckResult:
    return CheckResult(PASS, message)


def not_yet(message: str, hint: str = "") -> CheckResult:
    return CheckResult(NOT_YET, message, hint)


def not_attempted(message: str = "Not attempted yet: edit the exercise cell above, run it, then run this check again.",
                  hint: str = "") -> CheckResult:
    return CheckResult(NOT_ATTEMPTED, message, hint)


def check(fn):
    """Decorator for a check: an unexpected error becomes a 'not yet' with the error as the hint."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs) -> CheckResult:
        try:
            return fn(*args, **kwargs)
        except NotImplementedError:
            return not_attempted()
        except Exception as exc:  # a learner's half-done code must not crash the notebook
            return not_yet(f"The check could not finish: {type(exc).__name__}: {exc}",
                           "run the exercise cell again and read its error first")

    return wrapper


@check
def stream_checkin(check_in, r, key: str, learner: str) -> CheckResult:
    """Notebook 00's exercise: ``check_in`` adds one entry with field ``learner`` to the stream ``key``."""
    check_in(r, key, learner)  # a stub raises NotImplementedError -> "not attempted"
    if not r.exists(key):
        return not_yet(f"check_in ran but {key} does not exist.", "use r.xadd(stream_key, {...})")
    if r.type(key) != "stream":
        return not_yet(f"{key} exists but is a {r.type(key)}, not a stream.", "use XADD, not SET or LPUSH")
    entries = r.xrange(key)
    mine = [eid for eid, fields in entries if fields.get("learner") == learner]
    if not mine:
        return not_yet(f"{key} has {len(entries)} entries, none with learner={learner!r}.",
                       "XADD a field named 'learner' whose value is the learner argument")
    return passed(f"Stream {key} holds your check-in as entry {mine[-1]}: "
                  "Redis gave it a time-based id (milliseconds-sequence).")
