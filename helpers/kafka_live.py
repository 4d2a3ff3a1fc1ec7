"""The live machinery of notebook 07's Kafka experiments: threads that keep working while a broker
is killed. :class:`SeqProducer` sends numbered records and keeps every acknowledgement and failure;
:class:`LeaderWatch` records each change of a partition's leader and ISR.

A record's value is its sequence number (``b"17"``). "Acknowledged" means the producer's future
succeeded: for ``acks=0`` that only says the record was handed to the socket; for ``acks=1`` the
leader wrote it to its log; for ``acks=all`` every in-sync replica did. Counting what the log kept
(``tally``), the probes and the tables are in :mod:`helpers.kafka_durability`, which re-exports both
classes (the notebook calls ``kd.SeqProducer``, ``kd.LeaderWatch``).
"""

from __future__ import annotations

import threading
import time

from kafka import KafkaProducer


class SeqProducer:
    """A background thread sending ``0, 1, 2, ...`` to partition 0 of ``topic`` with ``acks``.

    ``acked`` maps seq -> (offset, ack time); ``failed`` maps seq -> error class name. It sends at
    most ``rate`` records per second (a steady load that leaves CPU for the brokers of a 2-core
    machine) and keeps at most ``window`` records unanswered, so a dead leader stalls it instead of
    filling memory. Unanswered records are retried for up to ``delivery_timeout_ms`` (60 s: longer
    than a broker restart), and a lost connection is tried again at least once a second
    (``reconnect_backoff_max_ms``; kafka-python's default lets the wait grow to 30 s during an
    outage). ``t0`` is the shared clock origin (``time.monotonic()``) for charts.
    """

    def __init__(self, bootstrap: str, topic: str, acks, *, label: str | None = None, t0: float | None = None,
                 window: int = 200, rate: float = 2000.0, **overrides):
        self.topic, self.acks, self.label = topic, acks, label or f"acks={acks}"
        self.t0 = t0 if t0 is not None else time.monotonic()
        self.window, self.rate = window, rate
        opts = dict(bootstrap_servers=bootstrap, acks=acks, linger_ms=2, request_timeout_ms=5000,
                    delivery_timeout_ms=60000, retry_backoff_ms=100, max_block_ms=10000,
                    metadata_max_age_ms=5000, bootstrap_timeout_ms=10000, reconnect_backoff_max_ms=1000,
                    client_id=f"streamslab-{self.label}")
        if acks != "all":
            opts["enable_idempotence"] = False  # idempotence needs acks=all; say so instead of a warning
        opts.update(overrides)
        self.producer = KafkaProducer(**opts)
        self.sent: dict[int, float] = {}
        self.acked: dict[int, tuple[int, float]] = {}
        self.failed: dict[int, str] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"seq-{self.label}", daemon=True)

    def now(self) -> float:
        return time.monotonic() - self.t0

    def _ok(self, seq: int, meta) -> None:
        with self._lock:
            self.acked[seq] = (meta.offset, self.now())

    def _err(self, seq: int, exc) -> None:
        with self._lock:
            self.failed[seq] = type(exc).__name__

    def _run(self) -> None:
        seq, start = 0, time.monotonic()
        while not self._stop.is_set():
            ahead = start + seq / self.rate - time.monotonic()
            if ahead > 0:  # on schedule: wait for the next record's turn
                time.sleep(min(ahead, 0.05))
                continue
            with self._lock:
                open_now = len(self.sent) - len(self.acked) - len(self.failed)
            if open_now >= self.window:
                time.sleep(0.01)  # a dead leader answers nothing: wait without spinning
                continue
            self.sent[seq] = self.now()
            try:
                future = self.producer.send(self.topic, value=str(seq).encode(), partition=0)
            except Exception as exc:  # e.g. KafkaTimeoutError: metadata unavailable for max_block_ms
                self._err(seq, exc)
            else:
                future.add_callback(self._ok, seq).add_errback(self._err, seq)
            seq += 1

    def start(self) -> SeqProducer:
        self._thread.start()
        return self

    def stop(self, timeout: float = 70.0) -> SeqProducer:
        """Stop sending, wait for the answers still due (each ends by delivery timeout), close."""
        from kafka.errors import KafkaTimeoutError

        self._stop.set()
        self._thread.join(10)
        try:
            self.producer.flush(timeout=timeout)
        except KafkaTimeoutError:  # records still unanswered stay neither acknowledged nor failed;
            self.producer._sender.force_close()  # kafka-python's close() would flush (and raise) again
            self.producer._unregister_cleanup()
            return self
        self.producer.close(timeout=5)
        return self

    def ack_times(self) -> list[float]:
        """When each acknowledgement arrived (clock seconds), a snapshot taken under the lock."""
        with self._lock:
            return [t for _, t in self.acked.values()]

    def last_offset(self) -> int:
        """The log offset of the latest acknowledgement (-1 if none, or with acks=0)."""
        with self._lock:
            return max(self.acked.values(), key=lambda v: v[1], default=(-1, 0.0))[0]

    def counts(self) -> tuple[int, int, int]:
        """``(acknowledged, failed, sent)`` so far, a snapshot taken under the lock."""
        with self._lock:
            return len(self.acked), len(self.failed), len(self.sent)

    def acked_between(self, start: float, end: float) -> int:
        return sum(1 for t in self.ack_times() if start <= t < end)


class LeaderWatch:
    """Polls a cluster's view of ``topics`` every ``every`` s in a thread; keeps each change as
    ``{"t", "topic", "leader", "isr"}`` (leader None = no leader)."""

    def __init__(self, cluster, topics: list[str], *, t0: float, every: float = 0.1):
        self.cluster, self.topics, self.t0, self.every = cluster, topics, t0, every
        self.changes: list[dict] = []
        self._last: dict[str, tuple] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="leader-watch", daemon=True)

    def _run(self) -> None:
        admin = self.cluster.admin(request_timeout_ms=3000)
        try:
            while not self._stop.is_set():
                for topic in self.topics:
                    try:
                        part = self.cluster.partitions(topic, admin)[0]
                    except Exception:
                        continue  # a broker just died: ask again next round
                    state = (part["leader"] if part["leader"] >= 0 else None, tuple(sorted(part["isr"])))
                    if self._last.get(topic) != state:
                        self._last[topic] = state
                        self.changes.append({"t": time.monotonic() - self.t0, "topic": topic,
                                             "leader": state[0], "isr": list(state[1])})
                self._stop.wait(self.every)
        finally:
            admin.close()

    def start(self) -> LeaderWatch:
        self._thread.start()
        return self

    def stop(self) -> list[dict]:
        self._stop.set()
        self._thread.join(10)
        return self.changes

    def first(self, topic: str, after: float, test) -> dict | None:
        """The first change of ``topic`` after clock time ``after`` whose state passes ``test``."""
        return next((c for c in self.changes if c["topic"] == topic and c["t"] >= after and test(c)), None)
