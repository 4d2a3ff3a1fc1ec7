"""Run a learner's function for a check: with a time limit, and nothing left behind.

:func:`run` calls the function with a limit of :func:`time_limit` seconds (``COURSE_CHECK_TIMEOUT``,
at most 20). On the kernel's main thread (where notebook cells and their checks run) the limit is a
``SIGALRM`` timer whose handler raises :class:`TimeLimit`: it interrupts ``time.sleep``, blocking
socket reads and lock waits, so even ``while True: time.sleep(1)`` ends. ``TimeLimit`` is a
BaseException, so a learner's ``except Exception`` cannot swallow it. Elsewhere (a thread), the
function runs in a helper thread that receives :class:`TimeLimit` asynchronously.

Clients the function creates (redis-py clients and PubSubs, kafka-python consumers, producers and
admin clients) are tracked and closed afterwards, except the one it returns: a stopped or failed
attempt leaves no connection and no client thread behind.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sysconfig
import threading
import time
import traceback
from contextlib import contextmanager, suppress
from pathlib import Path

MAX_LIMIT = 20.0
_HELPERS = str(Path(__file__).resolve().parent.parent)
_LIBRARY = tuple({sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")})


class TimeLimit(BaseException):
    """The learner's function ran past the check's time limit."""


def time_limit() -> float:
    """Seconds a learner's function may run: ``COURSE_CHECK_TIMEOUT`` (default and maximum 20)."""
    try:
        value = float(os.environ.get("COURSE_CHECK_TIMEOUT", MAX_LIMIT))
    except ValueError:
        value = MAX_LIMIT
    return min(max(value, 0.1), MAX_LIMIT)


# --- clients the learner's code creates -----------------------------------------------------------
def _client_classes() -> list[type]:
    import kafka
    import redis

    return [redis.Redis, redis.client.PubSub, kafka.KafkaConsumer, kafka.KafkaProducer, kafka.KafkaAdminClient]


@contextmanager
def _tracking(owner: dict):
    """Record every client object built by the thread ``owner["ident"]`` while the block runs."""
    created: list = []
    patched = []
    for cls in _client_classes():
        own = "__init__" in cls.__dict__
        original = cls.__init__

        def init(self, *args, __original=original, **kwargs):
            if threading.get_ident() == owner.get("ident"):
                created.append(self)  # before __init__: a half-built client is closed too
            __original(self, *args, **kwargs)

        cls.__init__ = init
        patched.append((cls, own, original))
    try:
        yield created
    finally:
        for cls, own, original in patched:
            if own:
                cls.__init__ = original
            else:
                del cls.__init__


def close_client(obj) -> None:
    """Close a redis-py or kafka-python client quickly, whatever state it is in."""
    name = type(obj).__name__
    with suppress(Exception):
        if name == "KafkaConsumer":
            obj.close(autocommit=False, timeout_ms=2000)
        elif name == "KafkaProducer":
            obj.close(timeout=2)
        elif hasattr(obj, "connection_pool") and getattr(obj, "_check_clone", False):
            obj.connection_pool.disconnect()
        else:
            obj.close()


def _keep(value) -> set[int]:
    items = value.values() if isinstance(value, dict) else value if isinstance(value, (list, tuple)) else ()
    return {id(value), *(id(v) for v in items)}


# --- the time limit -------------------------------------------------------------------------------
def _limited_main(fn, args, kwargs, limit: float):
    armed = {"on": True}

    def on_alarm(signum, frame):
        if armed["on"]:
            raise TimeLimit

    def disarm():
        if not armed["on"]:
            return
        armed["on"] = False
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer[0] > 0:  # give back what remains of a timer someone else had set (e.g. pytest-timeout)
            signal.setitimer(signal.ITIMER_REAL, max(outer[0] - (time.monotonic() - started), 0.001), outer[1])

    started = time.monotonic()
    previous = signal.signal(signal.SIGALRM, on_alarm)
    outer = signal.setitimer(signal.ITIMER_REAL, limit, 0.5)  # repeats, in case a bare `except:` swallowed one
    try:
        try:
            return fn(*args, **kwargs)
        finally:
            disarm()
    except TimeLimit:
        armed["on"] = True  # the alarm may have fired inside the first disarm(): finish it
        disarm()
        raise


def _limited_thread(fn, args, kwargs, limit: float, owner: dict):
    box: dict = {}

    def target():
        owner["ident"] = threading.get_ident()
        try:
            box["value"] = fn(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001  (handed back to the caller)
            box["error"] = exc

    thread = threading.Thread(target=target, name="streamslab-check", daemon=True)
    thread.start()
    thread.join(limit)
    if thread.is_alive():  # raise TimeLimit inside it (takes effect at its next Python instruction)
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread.ident), ctypes.py_object(TimeLimit))
        thread.join(2.0)
        raise TimeLimit
    if "error" in box:
        raise box["error"]
    return box.get("value")


def run(fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` within :func:`time_limit` seconds; closes the clients it created (and
    the check's clones among ``args``) except its return value. Raises TimeLimit or fn's own error."""
    limit = time_limit()
    owner = {"ident": threading.get_ident()}
    with _tracking(owner) as created:
        value = None
        try:
            if threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer"):
                value = _limited_main(fn, args, kwargs, limit)
            else:
                value = _limited_thread(fn, args, kwargs, limit, owner)
            return value
        finally:
            keep = _keep(value)
            for obj in [*created, *(a for a in args if getattr(a, "_check_clone", False))]:
                if id(obj) not in keep:
                    close_client(obj)


# --- what to show when the learner's code raised ---------------------------------------------------
def _cell_name(filename: str) -> str | None:
    with suppress(Exception):
        from IPython import get_ipython

        named = get_ipython().compile.format_code_name(filename)
        if named:
            return " ".join(named)
    return None


def learner_lines(exc: BaseException) -> list[str]:
    """The traceback lines from the learner's own code (cell and line, then the source line), then
    the error itself; frames of the course's helpers and of installed libraries are left out."""
    lines = []
    for fs in traceback.extract_tb(exc.__traceback__):
        path = os.path.abspath(fs.filename) if not fs.filename.startswith("<") else fs.filename
        if path.startswith(_HELPERS) or path.startswith(_LIBRARY) or path.startswith("<frozen"):
            continue
        where = _cell_name(fs.filename) or f"File {fs.filename}"
        lines.append(f"{where}, line {fs.lineno}, in {fs.name}")
        if fs.line:
            lines.append(f"    {fs.line.strip()}")
    return [*lines, f"{type(exc).__name__}: {exc}"]
