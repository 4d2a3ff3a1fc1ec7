"""A cell whose server goes away ends within seconds, with one sentence, whatever it was waiting on.

Client libraries retry for a long time when a server dies (kafka-python re-connects and re-sends for
up to its delivery timeout; a wait loop polls until its own deadline). The watchdog checks, while a
notebook cell runs, that the servers this kernel required still accept connections. When one has
refused connections for about a second, it interrupts the kernel's main thread with a signal whose
handler raises :class:`~helpers.errors.ServiceDown` carrying the course's sentence: blocking socket
calls, ``time.sleep`` and lock waits all return on a signal, so the cell ends at once. It fires only
while a notebook cell's own code is on the main thread's stack, and at most once per cell.

Installed by ``require_redis()`` / ``require_kafka()`` when they run on the main thread of an IPython
kernel; a supervisor kill of a course server (``lab.redis.kill()``) is announced with
:func:`expect_down`, so a lesson that crashes a server on purpose is not interrupted.
"""

from __future__ import annotations

import signal
import threading
import time

from . import errors

SIGNAL = signal.SIGUSR1
PERIOD = 0.5      # seconds between probes while a cell runs
REFUSED_FOR = 1.0  # a server refusing connections this long is down
SILENT_FOR = 5.0   # a server not answering at all (timeouts) this long is down

_state = {"installed": False, "running": False, "fired": False, "pending": None, "main": None}
_watched: set[str] = set()
_expected: dict[tuple[str, int], float] = {}  # addresses the supervisor took down on purpose -> since
_lock = threading.Lock()


def expect_down(host: str, port: int) -> None:
    """The course is stopping the server at host:port on purpose: do not interrupt cells for it."""
    with _lock:
        _expected[(host, port)] = time.monotonic()


def expect_up(host: str, port: int) -> None:
    """The server at host:port is meant to be up again."""
    with _lock:
        _expected.pop((host, port), None)


def _expected_down(service: str) -> bool:
    try:
        points = errors.endpoints(service)
    except Exception:  # noqa: BLE001
        return False
    with _lock:
        return any(p in _expected or (p[0] in ("localhost", "127.0.0.1") and ("127.0.0.1", p[1]) in _expected)
                   for p in points)


def _cell_on_stack(frame) -> bool:
    """True when a notebook cell's code is on this stack (an exception raised here reaches IPython)."""
    try:
        from IPython import get_ipython

        names = get_ipython().compile._filename_map
    except Exception:  # noqa: BLE001
        return False
    while frame is not None:
        if frame.f_code.co_filename in names:
            return True
        frame = frame.f_back
    return False


def _on_signal(signum, frame) -> None:
    sentence = _state["pending"]
    if sentence and _state["running"] and _cell_on_stack(frame):
        _state["pending"] = None
        raise errors.ServiceDown(sentence)


def _loop() -> None:
    import sys

    failing: dict[str, float] = {}
    while True:
        time.sleep(PERIOD)
        if not _state["running"] or _state["fired"]:
            failing.clear()
            continue
        for service in sorted(_watched):
            reason = None if _expected_down(service) else errors.probe(service, timeout=PERIOD)
            if reason is None:
                failing.pop(service, None)
                continue
            since = failing.setdefault(service, time.monotonic())
            limit = REFUSED_FOR if reason == "connection refused" else SILENT_FOR
            main = _state["main"]
            frame = sys._current_frames().get(main)
            if time.monotonic() - since >= limit and _state["running"] and _cell_on_stack(frame):
                _state["pending"] = errors.down_sentence(service, reason)
                _state["fired"] = True
                signal.pthread_kill(main, SIGNAL)
                break


def _pre_cell(*_args) -> None:
    _state.update(running=True, fired=False, pending=None)


def _post_cell(*_args) -> None:
    _state.update(running=False, pending=None)


def watch(service: str) -> bool:
    """Watch ``service`` ("redis" or "kafka") while cells run. Returns False when it cannot (not the
    main thread of an IPython kernel): the one-sentence errors then still come from the exception handler."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    if shell is None or threading.current_thread() is not threading.main_thread():
        return False
    _watched.add(service)
    if not _state["installed"]:
        signal.signal(SIGNAL, _on_signal)
        _state.update(installed=True, main=threading.main_thread().ident, running=True)
        shell.events.register("pre_run_cell", _pre_cell)
        shell.events.register("post_run_cell", _post_cell)
        threading.Thread(target=_loop, name="streamslab-watchdog", daemon=True).start()
    return True


def arm(service: str) -> None:
    """What ``require_redis()`` / ``require_kafka()`` do once ``service`` answered: note that this
    process uses it (:data:`helpers.errors.USED`), let IPython show the one-sentence error instead of a
    traceback, and watch the server while cells run."""
    errors.USED.add(service)
    errors.install_ipython_handler()
    watch(service)
