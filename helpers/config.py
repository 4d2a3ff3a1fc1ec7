"""Where the servers are, how big the experiments are, and the course namespace.

Endpoints come from, in order: the environment (``REDIS_URL``, ``KAFKA_BOOTSTRAP``), the file
``.course/endpoints.json`` written by the services supervisor (it records a port the course had
to move to), then the localhost defaults.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_KAFKA_BOOTSTRAP = "127.0.0.1:9092"
COURSE = "streamslab"


def course_dir() -> Path:
    """The runtime folder (git-ignored): data dirs, logs, jars, results."""
    return Path(os.environ.get("COURSE_DIR", PROJECT_ROOT / ".course")).resolve()


def _recorded_endpoints() -> dict:
    path = course_dir() / "endpoints.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def redis_url() -> str:
    """The Redis URL the notebooks use."""
    return os.environ.get("REDIS_URL") or _recorded_endpoints().get("redis_url") or DEFAULT_REDIS_URL


def kafka_bootstrap() -> str:
    """The Kafka bootstrap servers (``host:port[,host:port]``) the notebooks use."""
    return (
        os.environ.get("KAFKA_BOOTSTRAP")
        or _recorded_endpoints().get("kafka_bootstrap")
        or DEFAULT_KAFKA_BOOTSTRAP
    )


def quick() -> bool:
    """True under test (``COURSE_QUICK=1``): experiments shrink so the suite stays fast."""
    return os.environ.get("COURSE_QUICK", "").strip().lower() in {"1", "true", "yes", "on"}


def size(full: int, quick_value: int) -> int:
    """The one size knob: ``full`` for the learner's run, ``quick_value`` under COURSE_QUICK=1."""
    return quick_value if quick() else full


def learner() -> str:
    """The learner's name from ``COURSE_LEARNER`` (a classroom shares one server), sanitised."""
    raw = os.environ.get("COURSE_LEARNER") or os.environ.get("USER") or "learner"
    return re.sub(r"[^a-z0-9-]", "-", raw.lower())[:32] or "learner"


class Namespace:
    """Names for one notebook run: every key, topic and group the notebook creates.

    Redis keys look like ``streamslab:alice:nb03:1a2b3c:jobs``; Kafka topics and groups (which
    may not contain ``:``) look like ``streamslab.alice.nb04.1a2b3c.orders``. Cleanup deletes
    only names under this notebook's prefix, never anything else on the server.
    """

    def __init__(self, notebook: str, run_id: str | None = None, who: str | None = None):
        if not re.fullmatch(r"[a-z0-9_-]+", notebook):
            raise ValueError(f"notebook id {notebook!r} must be lower-case letters, digits, - or _")
        self.notebook = notebook
        self.learner = who or learner()
        self.run_id = run_id or secrets.token_hex(3)

    @property
    def notebook_prefix(self) -> str:
        """Prefix shared by every run of this notebook for this learner (for stale cleanup)."""
        return f"{COURSE}:{self.learner}:{self.notebook}:"

    @property
    def prefix(self) -> str:
        return f"{self.notebook_prefix}{self.run_id}:"

    def key(self, name: str) -> str:
        """A Redis key in this run's namespace."""
        return self.prefix + name

    @property
    def kafka_notebook_prefix(self) -> str:
        return self.notebook_prefix.replace(":", ".")

    @property
    def kafka_prefix(self) -> str:
        return self.prefix.replace(":", ".")

    def topic(self, name: str) -> str:
        """A Kafka topic name in this run's namespace."""
        return self.kafka_prefix + name

    def group(self, name: str) -> str:
        """A Kafka consumer-group id in this run's namespace."""
        return self.kafka_prefix + name

    def __repr__(self) -> str:
        return f"Namespace({self.prefix!r})"


def namespace(notebook: str, run_id: str | None = None) -> Namespace:
    """The namespace for one run of ``notebook`` (e.g. ``namespace("nb03")``)."""
    return Namespace(notebook, run_id)
