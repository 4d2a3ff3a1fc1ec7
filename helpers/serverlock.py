"""Change a server-wide Redis setting on a shared server: locked, restored, repaired after a crash.

A ``CONFIG SET`` affects every learner on the server, so :class:`ServerSetting` changes it only under
a lock, and keeps the ORIGINAL value on the server beside the lock for as long as the setting is
changed:

- ``streamslab:_server:<name>:lock`` -- who holds it (a token), with a short TTL that a daemon thread
  of the holder refreshes; a SIGKILLed holder's lock expires within :data:`TTL` seconds.
- ``streamslab:_server:<name>:original`` -- the value before the first change, written BEFORE the
  change and deleted only AFTER the restore; it has no TTL.

So the original is never re-read from the server while it is changed: :meth:`ServerSetting.original`
returns the stored one while it exists, and the next run to take the lock after a crash restores it
first (:meth:`ServerSetting.repair`).
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import threading
import time
from contextlib import contextmanager

from . import config

TTL = 10.0  # seconds a lock lives without a refresh
_RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"
_REFRESH = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0"


class LockBusy(TimeoutError):
    """Another live run holds the setting's lock (the message says who)."""


class ServerSetting:
    """One server-wide setting: ``get()`` reads it, ``original()`` is what it is when nobody changed it.

    ``read``/``write`` default to ``CONFIG GET``/``CONFIG SET`` of ``parameter``; pass functions to
    manage one part of a compound setting (e.g. the ``pubsub`` class of ``client-output-buffer-limit``).
    """

    def __init__(self, r, name: str, parameter: str, *, read=None, write=None, ttl: float = TTL):
        self.r, self.name, self.parameter, self.ttl = r, name, parameter, ttl
        self.lock_key = f"{config.COURSE}:_server:{name}:lock"
        self.original_key = f"{config.COURSE}:_server:{name}:original"
        self._read = read or (lambda r: r.config_get(parameter)[parameter])
        self._write = write or (lambda r, value: r.config_set(parameter, value))
        self._token: str | None = None
        self._stop = threading.Event()

    # --- reading ---------------------------------------------------------------------------
    def get(self) -> str:
        """The value on the server now (changed or not)."""
        return self._read(self.r)

    def stored_original(self) -> str | None:
        """The original kept on the server while the setting is changed (None when it is not)."""
        value = self.r.get(self.original_key)
        return value.decode() if isinstance(value, bytes) else value

    def holder(self) -> dict | None:
        """Who holds the lock now ({"learner", "pid", "host", ...}), or None."""
        raw = self.r.get(self.lock_key)
        try:
            return json.loads(raw)["who"] if raw else None
        except (ValueError, KeyError, TypeError):
            return {"learner": "?"}

    def original(self) -> str:
        """The setting as it is when no run has changed it: repaired first if a dead run left it changed."""
        self.repair()
        stored = self.stored_original()
        return stored if stored is not None else self.get()

    # --- the lock ----------------------------------------------------------------------------
    def _try_lock(self) -> bool:
        token = json.dumps({"token": secrets.token_hex(8), "who": {
            "learner": config.learner(), "pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}})
        if self.r.set(self.lock_key, token, nx=True, px=int(self.ttl * 1000)):
            self._token = token
            self._stop.clear()
            threading.Thread(target=self._refresh, args=(token,), daemon=True,
                             name=f"streamslab-lock-{self.name}").start()
            return True
        return False

    def _refresh(self, token: str) -> None:
        while not self._stop.wait(self.ttl / 4):
            try:
                if not self.r.eval(_REFRESH, 1, self.lock_key, token, int(self.ttl * 1000)):
                    return
            except Exception:  # noqa: BLE001  (server gone: the lock expires by itself)
                return

    def _unlock(self) -> None:
        self._stop.set()
        if self._token is not None:
            self.r.eval(_RELEASE, 1, self.lock_key, self._token)
            self._token = None

    def _restore_stored(self) -> str | None:
        """Holding the lock: set the stored original back, then forget it. Returns it (or None)."""
        stored = self.stored_original()
        if stored is not None:
            self._write(self.r, stored)
            self.r.delete(self.original_key)
        return stored

    def repair(self) -> str | None:
        """If a run died with the setting changed (original stored, nobody holds the lock), restore it
        now. Returns the restored value, or None (nothing to repair, or a live run holds the lock)."""
        if self.stored_original() is None or not self._try_lock():
            return None
        try:
            return self._restore_stored()
        finally:
            self._unlock()

    def acquire(self, wait: float = 60.0) -> str:
        """Take the lock (waiting up to ``wait`` s for other runs), repair a crashed run's change, store
        the original beside the lock and return it. Release with :meth:`release`."""
        deadline = time.monotonic() + wait
        while not self._try_lock():
            if time.monotonic() > deadline:
                who = self.holder() or {}
                raise LockBusy(f"the server-wide setting {self.parameter} is being changed by another run "
                               f"(learner {who.get('learner', '?')!r}) for more than {wait:.0f} s; "
                               "try this cell again in a minute.")
            time.sleep(0.2)
        try:
            original = self._restore_stored()
            original = self.get() if original is None else original
            self.r.set(self.original_key, original)
        except BaseException:
            self._unlock()
            raise
        return original

    def release(self) -> str:
        """Set the original back, forget it, release the lock. Returns the value on the server."""
        try:
            self._restore_stored()
        finally:
            self._unlock()
        return self.get()

    @contextmanager
    def changed(self, wait: float = 60.0):
        """``with setting.changed() as original:`` -- change the setting inside; restored on exit."""
        original = self.acquire(wait)
        try:
            yield original
        finally:
            self.release()
