"""Notebook 01's server-wide experiment: lowering (and restoring) the ``client-output-buffer-limit
pubsub`` setting safely on a server other runs may share, and reading the Redis log lines that show a
subscriber cut off by it.

The setting is changed only through :class:`helpers.serverlock.ServerSetting` (a lock refreshed while
held, the original stored beside it, a crashed run repaired by the next one). Notebooks call these
as ``pubsub.<name>``: :mod:`helpers.pubsub` re-exports every public name.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from pathlib import Path

import redis

from . import config
from .serverlock import ServerSetting

#: server-wide keys that serialise the output-buffer experiment between concurrent runs (a setting
#: is global to the server, so its guard cannot live in one run's namespace). Both are deleted again.
LIMIT_NAME = "pubsub-limit"
LIMIT_LOCK = f"{config.COURSE}:_server:{LIMIT_NAME}:lock"
LIMIT_STASH = f"{config.COURSE}:_server:{LIMIT_NAME}:original"
_PUBSUB_CLASS = re.compile(r"pubsub\s+(\S+)\s+(\S+)\s+(\S+)")


def output_limit(r: redis.Redis) -> str:
    """The whole ``client-output-buffer-limit`` setting (CONFIG GET)."""
    return r.config_get("client-output-buffer-limit")["client-output-buffer-limit"]


def pubsub_class(setting: str) -> str:
    """The ``pubsub <hard> <soft> <seconds>`` part of a ``client-output-buffer-limit`` value."""
    m = _PUBSUB_CLASS.search(setting)
    if not m:
        raise ValueError(f"no pubsub class in {setting!r}")
    return "pubsub " + " ".join(m.groups())


def limit_setting(r: redis.Redis) -> ServerSetting:
    """The ``pubsub`` class of ``client-output-buffer-limit`` as a locked server-wide setting."""
    return ServerSetting(r, LIMIT_NAME, "client-output-buffer-limit",
                         read=lambda c: pubsub_class(output_limit(c)),
                         write=lambda c, value: c.config_set("client-output-buffer-limit", value))


def original_output_limit(r: redis.Redis) -> str:
    """The whole setting as it is when no run has lowered it: repaired first if a run died with it
    lowered; while a live run has it lowered, the original that run stored (never the lowered value)."""
    return _PUBSUB_CLASS.sub(limit_setting(r).original(), output_limit(r), count=1)


def recover_output_limit(r: redis.Redis) -> str | None:
    """Restore a setting left lowered by a run that died mid-experiment; returns the restored class."""
    return limit_setting(r).repair()


def limit_holder(r: redis.Redis) -> str | None:
    """The learner whose run is lowering the setting right now, or None."""
    who = limit_setting(r).holder()
    return who.get("learner", "?") if who else None


@contextmanager
def limit_experiment(r: redis.Redis, wait: float = 60.0):
    """``with limit_experiment(r) as original:`` -> the ``pubsub ...`` class to set back afterwards.

    Concurrent runs take turns (a lock refreshed while held); the original is stored beside the
    lock before anything changes and restored on exit, and a run that dies mid-experiment is
    repaired by the next one (see :mod:`helpers.serverlock`).
    """
    with limit_setting(r).changed(wait) as original:
        yield original



def restore_output_limit(r: redis.Redis) -> str:
    """The cleanup cell's check: repair a crashed run's change, then return the setting on the server
    (lower than the original only while another live run holds the experiment's lock)."""
    recover_output_limit(r)
    return output_limit(r)


def log_size(path: Path | str | None) -> int:
    try:
        return Path(path).stat().st_size if path else 0
    except OSError:
        return 0


def log_lines(path: Path | str | None, since: int, *needles: str) -> list[str]:
    """Lines appended to the redis log after byte ``since`` that contain every needle."""
    if not path or not Path(path).exists():
        return []
    with open(path, "rb") as fh:
        fh.seek(since)
        text = fh.read().decode(errors="replace")
    return [line for line in text.splitlines() if all(n in line for n in needles)]
