"""Exercise checks: inspect real server state and say PASS / NOT YET / NOT ATTEMPTED / TIME LIMIT.

A check function returns a :class:`CheckResult`; in a notebook it renders as a coloured badge with a
word (:mod:`helpers.ui`) and a sentence, and, when the learner's code raised, the learner's own
traceback lines (their cell, line number and source line). Tests read ``.status``.

Every check calls the learner's code through :func:`call` (see :mod:`helpers.checks.harness`): a
time limit of at most 20 s that even ``while True: time.sleep(1)`` cannot escape, and the clients
the code created are closed afterwards, so the kernel stays usable and nothing is left behind.
"""

from __future__ import annotations

import functools
import html
from dataclasses import dataclass, field

from .. import errors, ui
from .harness import TimeLimit, learner_lines, time_limit
from .harness import run as _run

PASS, NOT_YET, NOT_ATTEMPTED, TIME_LIMIT = "pass", "not-yet", "not-attempted", "time-limit"
WORDS = {PASS: "PASS", NOT_YET: "NOT YET", NOT_ATTEMPTED: "NOT ATTEMPTED", TIME_LIMIT: "TIME LIMIT"}


@dataclass
class CheckResult:
    status: str
    message: str
    hint: str = ""
    details: list[str] = field(default_factory=list)  # the learner's traceback lines, when their code raised

    @property
    def passed(self) -> bool:
        return self.status == PASS

    def __str__(self) -> str:
        text = f"{ui.badge_text(WORDS[self.status])} {self.message}"
        text += "".join(f"\n    {line}" for line in self.details)
        return text + (f"\n   hint: {self.hint}" if self.hint and not self.passed else "")

    __repr__ = __str__

    def _repr_html_(self) -> str:
        details = (f'<pre style="margin:4px 0 0 0;padding:4px 8px;background:#f6f8fa">'
                   f"{html.escape(chr(10).join(self.details))}</pre>") if self.details else ""
        hint = f"<br><small>hint: {html.escape(self.hint)}</small>" if self.hint and not self.passed else ""
        return f"<div>{ui.badge_html(WORDS[self.status])} {html.escape(self.message)}{details}{hint}</div>"


def passed(message: str) -> CheckResult:
    return CheckResult(PASS, message)


def not_yet(message: str, hint: str = "", details: list[str] | None = None) -> CheckResult:
    return CheckResult(NOT_YET, message, hint, list(details or []))


def not_attempted(message: str = "Not attempted yet: edit the exercise cell above, run it, then run this check again.",
                  hint: str = "") -> CheckResult:
    return CheckResult(NOT_ATTEMPTED, message, hint)


def time_limited(name: str, limit: float) -> CheckResult:
    return CheckResult(TIME_LIMIT, f"{name}: your function did not return within {limit:g} s, so the check "
                                   "stopped it.", "look for a loop that never ends, or a blocking call "
                                   "without a timeout (block=, timeout=, timeout_ms=)")


class _Verdict(Exception):
    """Ends a check early with a result (raised by :func:`call`)."""

    def __init__(self, result: CheckResult):
        super().__init__(result.message)
        self.result = result


def _service_sentence(exc: BaseException) -> str | None:
    return errors.explain(exc) if errors.suspects(exc) or isinstance(exc, errors.ServiceDown) else None


def call(fn, *args, **kwargs):
    """Call the learner's ``fn`` within the time limit and return what it returned.

    Ends the check (inside :func:`check`) with NOT ATTEMPTED when it raises NotImplementedError (the
    stub), TIME LIMIT when it does not return in time, NOT YET with the learner's own traceback lines
    when it raises; a server that went away raises the course's one sentence instead.
    """
    name = getattr(fn, "__name__", "your function")
    try:
        return _run(fn, *args, **kwargs)
    except TimeLimit:
        raise _Verdict(time_limited(name, time_limit())) from None
    except NotImplementedError:
        raise _Verdict(not_attempted()) from None
    except Exception as exc:
        sentence = _service_sentence(exc)
        if sentence:
            raise errors.ServiceUnavailable(sentence) from None
        raise _Verdict(not_yet(f"{name} raised {type(exc).__name__}: {exc}", details=learner_lines(exc))) from None


def learner_redis(r):
    """A fresh client like ``r`` for the learner's code (its own connections, closed by :func:`call`),
    so nothing the learner's code does to a connection reaches the notebook's ``r``."""
    import redis

    pool = r.connection_pool
    clone = redis.Redis(connection_pool=type(pool)(connection_class=pool.connection_class, **pool.connection_kwargs))
    clone._check_clone = True
    return clone


def check(fn):
    """Decorator for a check: turns :func:`call`'s verdicts into results; a server that went away
    raises the course's one sentence; any other unexpected error becomes NOT YET naming it."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs) -> CheckResult:
        try:
            return fn(*args, **kwargs)
        except _Verdict as verdict:
            return verdict.result
        except NotImplementedError:
            return not_attempted()
        except errors.CourseError:
            raise
        except Exception as exc:
            sentence = _service_sentence(exc)
            if sentence:
                raise errors.ServiceUnavailable(sentence) from None
            return not_yet(f"The check could not finish: {type(exc).__name__}: {exc}")

    return wrapper


@check
def stream_checkin(check_in, r, key: str, learner: str) -> CheckResult:
    """Notebook 00's exercise: ``check_in`` adds ONE entry with field ``learner`` to the stream ``key``.

    Only what this call added counts (entries after the newest one before it), so an entry left by an
    earlier attempt cannot make a function that adds nothing pass."""
    newest = r.xrevrange(key, count=1) if r.exists(key) and r.type(key) == "stream" else []
    after = newest[0][0] if newest else "0-0"
    call(check_in, learner_redis(r), key, learner)  # the stub raises NotImplementedError -> "not attempted"
    if not r.exists(key):
        return not_yet(f"check_in ran but {key} does not exist.", "use r.xadd(stream_key, {...})")
    if r.type(key) != "stream":
        return not_yet(f"{key} exists but is a {r.type(key)}, not a stream.", "use XADD, not SET or LPUSH")
    added = r.xrange(key, min=f"({after}") if after != "0-0" else r.xrange(key)
    if not added:
        return not_yet(f"check_in ran but added no entry to {key}.", "call r.xadd(stream_key, {...}) once")
    if len(added) > 1:
        return not_yet(f"check_in added {len(added)} entries to {key}; the exercise asks for one.",
                       "call XADD once")
    (eid, fields), = added
    if fields.get("learner") != learner:
        return not_yet(f"check_in added entry {eid} with fields {fields}, not learner={learner!r}.",
                       "XADD a field named 'learner' whose value is the learner argument")
    return passed(f"Stream {key} holds your check-in as entry {eid}: "
                  "Redis gave it a time-based id (milliseconds-sequence).")
