"""Where the servers are, how big the experiments are, and the course namespace.

Endpoints come from, in order: the environment (``REDIS_URL``, ``KAFKA_BOOTSTRAP``); the state
file of the server the course started (``.course/redis/redis.state.json`` records its port, so a
missing or corrupt ``endpoints.json`` never sends the notebooks to somebody else's server); the
file ``.course/endpoints.json`` written by the services supervisor (which records a failed start
instead of an address: that sentence is raised); then the localhost defaults.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from .errors import ServiceUnavailable

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_KAFKA_BOOTSTRAP = "127.0.0.1:9092"
COURSE = "streamslab"


def course_dir() -> Path:
    """The runtime folder (git-ignored): data dirs, logs, jars, results."""
    return Path(os.environ.get("COURSE_DIR", PROJECT_ROOT / ".course")).resolve()


#: where the supervisor records what it started (kept in step with helpers.services.lab.Lab)
STATE_FILES = {"redis": Path("redis") / "redis.state.json", "kafka": Path("kafka") / "broker" / "kafka.state.json"}


def _read_json(path: Path) -> dict | None:
    """The JSON object in ``path``; None when the file does not exist; raises ValueError when corrupt."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path} is unreadable ({type(exc).__name__})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} does not hold a JSON object")
    return data


def _course_port(service: str) -> int | None:
    """The port of the server the course started for ``service`` (from its state file), or None."""
    path = course_dir() / STATE_FILES[service]
    try:
        state = _read_json(path)
    except ValueError as exc:
        raise ServiceUnavailable(f"the course's state file {exc}; run `make services-up` to start the "
                                 f"course's {service} and rewrite it.") from None
    port = (state or {}).get("port")
    return port if isinstance(port, int) and 0 < port < 65536 else None


def _recorded(name: str) -> str | None:
    """The address ``name`` recorded in endpoints.json; raises the recorded sentence when the
    supervisor's last start of that service failed (never an address where it is not)."""
    path = course_dir() / "endpoints.json"
    try:
        record = _read_json(path) or {}
    except ValueError as exc:
        raise ServiceUnavailable(f"{exc} and no course server state says where the servers are; "
                                 "run `make services-up` to rewrite it.") from None
    failed = record.get(f"{name.split('_')[0]}_failed")
    if isinstance(failed, str) and failed:
        raise ServiceUnavailable(failed)
    value = record.get(name)
    return value if isinstance(value, str) and value else None


def redis_url() -> str:
    """The Redis URL the notebooks use."""
    env = os.environ.get("REDIS_URL")
    if env:
        return env
    port = _course_port("redis")
    return f"redis://127.0.0.1:{port}/0" if port else _recorded("redis_url") or DEFAULT_REDIS_URL


def kafka_bootstrap() -> str:
    """The Kafka bootstrap servers (``host:port[,host:port]``) the notebooks use."""
    env = os.environ.get("KAFKA_BOOTSTRAP")
    if env:
        return env
    port = _course_port("kafka")
    return f"127.0.0.1:{port}" if port else _recorded("kafka_bootstrap") or DEFAULT_KAFKA_BOOTSTRAP


def is_external(service: str) -> bool:
    """True when the learner pointed the course at a server of their own (``REDIS_URL`` / ``KAFKA_BOOTSTRAP``)."""
    return bool(os.environ.get({"redis": "REDIS_URL", "kafka": "KAFKA_BOOTSTRAP"}[service]))


def mask_url(url: str) -> str:
    """``url`` with its password replaced by ``***`` (``redis://:s3cret@h:6379/0`` -> ``redis://:***@h:6379/0``).

    Every message that shows an address goes through here, so a secret never reaches the screen.
    """
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return re.sub(r"(//[^/@]*?:)[^/@]*@", r"\1***@", url)
    if not password:
        return url
    user = parts.username or ""
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit((parts.scheme, f"{user}:***@{host}", parts.path, parts.query, parts.fragment))


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


    def run_of(self, name: str) -> str | None:
        """The run id inside a Redis key or a Kafka topic/group of this notebook (None if not one)."""
        for prefix, sep in ((self.notebook_prefix, ":"), (self.kafka_notebook_prefix, ".")):
            if name.startswith(prefix):
                return name[len(prefix):].split(sep, 1)[0] or None
        return None


def namespace(notebook: str, run_id: str | None = None) -> Namespace:
    """The namespace for one run of ``notebook`` (e.g. ``namespace("nb03")``).

    The run is registered as live on the course's Redis (a heartbeat key this process refreshes,
    see :mod:`helpers.runs`), so another run's cleanup never deletes this run's names; a newer
    namespace for the same notebook in this process retires the previous one.
    """
    ns = Namespace(notebook, run_id)
    from . import runs

    runs.register(ns)
    return ns
