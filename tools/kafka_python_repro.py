"""Reproductions of three kafka-python 3.0.12 bugs the course works around, for an upstream report.

Each runs against the course's broker (``config.kafka_bootstrap()``, started by ``make services-up``)
with PLAIN kafka-python objects (``KafkaConsumer``, ``KafkaProducer``, ``KafkaAdminClient``), not the
course's factories, so what it shows is the library's own behaviour. Topics and groups carry the
course namespace (``streamslab.<learner>.repro.<run id>.``) and are deleted at the end of each run.
Every wait has a timeout. One line per run, then a summary line.

    .venv/bin/python tools/kafka_python_repro.py leader-drop  [--runs N] [--poll-ms 100] [--gap-ms 200]
    .venv/bin/python tools/kafka_python_repro.py pause-resume [--runs N]
    .venv/bin/python tools/kafka_python_repro.py auto-create  [--runs N]

leader-drop   two group members poll(timeout_ms=--poll-ms) and sleep --gap-ms between polls; the topic
              gains partitions (3 -> 6). The group *leader* rejoins; if its join completes between two
              polls, it never collects it: revoked, never assigned again, while the broker lists it
              with partitions, until the broker removes it (no heartbeats) after session.timeout.ms.
              Probabilistic. ``--poll-ms 5000`` is the course's workaround (a poll that waits out the
              rebalance collects the join itself): rarer, not impossible (1 of 9 runs here).
pause-resume  one consumer, two assigned partitions, max_poll_records=5: poll returns part of one
              partition's fetched batch; pause it; read the other partition; resume it. The resumed
              partition is never fetched again (its position stays put, it is not paused). No group
              and no rebalance needed.
auto-create   KafkaProducer(allow_auto_create_topics=False).partitions_for(<missing topic>): the broker
              (auto.create.topics.enable=true, Kafka's default) creates the topic, because the
              MetadataRequest says allowAutoTopicCreation=true. Control: the same producer with the
              setting copied into the ClusterMetadata that builds the requests creates nothing.

Exit status: 0 when the runs completed (whatever they showed), 2 when Kafka is not reachable.
"""

from __future__ import annotations

import argparse
import random
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kafka import (ConsumerRebalanceListener, KafkaAdminClient, KafkaConsumer,  # noqa: E402
                   KafkaProducer, TopicPartition)
from kafka.admin import NewPartitions, NewTopic  # noqa: E402
from kafka.errors import KafkaError, KafkaTimeoutError  # noqa: E402

from helpers import config, kafka_security  # noqa: E402

NOTEBOOK = "repro"  # the namespace's notebook id: streamslab.<learner>.repro.<run id>.<name>


def client_opts() -> dict:
    """Connection settings only (servers, timeouts, the course's KAFKA_* security settings): nothing
    that changes how the clients behave in the reproductions."""
    bootstrap = config.kafka_bootstrap()
    opts = dict(bootstrap_servers=bootstrap, request_timeout_ms=15000)
    opts.update(kafka_security.kafka_for(bootstrap).kafka_python())
    return opts


def wait_until(predicate, timeout: float, every: float = 0.05) -> bool:
    """True as soon as ``predicate()`` is; False after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(every)
    return True


class Session:
    """The admin client and namespace of one CLI invocation; deletes what each run created."""

    def __init__(self):
        self.opts = client_opts()
        try:
            self.admin = KafkaAdminClient(client_id="streamslab-repro-admin", bootstrap_timeout_ms=5000,
                                          **self.opts)
        except (KafkaError, OSError) as exc:
            raise SystemExit(f"no Kafka broker answers at {self.opts['bootstrap_servers']} "
                             f"({type(exc).__name__}): run `make services-up` first.") from None
        self.ns = config.namespace(NOTEBOOK)

    def create_topic(self, topic: str, partitions: int) -> None:
        self.admin.create_topics([NewTopic(topic, partitions, 1)])
        if not wait_until(lambda: topic in self.admin.list_topics(), 10, 0.1):
            raise TimeoutError(f"topic {topic} not listed 10 s after it was created")

    def delete(self, topics=(), groups=()) -> None:
        """Delete ``topics`` and ``groups`` of a run (they are all in this session's namespace)."""
        from helpers import clients

        for name in (*topics, *groups):
            assert name.startswith(self.ns.kafka_prefix), name
        groups = [g for g in groups if g in self._groups()]
        if groups:
            self.admin.delete_groups(groups)
        present = [t for t in topics if t in self.admin.list_topics()]
        if present:
            self.admin.delete_topics(present)
        # a topic the broker created again after the delete (auto-create) is deleted again there
        clients.cleanup_kafka(self.admin, self.ns, wait=15)

    def _groups(self) -> set[str]:
        return {g.get("group_id") if isinstance(g, dict) else g[0] for g in self.admin.list_groups()}

    def close(self) -> None:
        from helpers import clients

        clients.cleanup_kafka(self.admin, self.ns, previous_runs=True, wait=15)
        self.admin.close()


# --- leader-drop ----------------------------------------------------------------------------------

class Member:
    """One group member in a thread: subscribe, then poll(timeout_ms=poll_ms) + sleep(gap_ms) until stopped.
    A ConsumerRebalanceListener records (time, "revoked"/"assigned", partitions)."""

    def __init__(self, session: Session, topic: str, group: str, name: str, poll_ms: int, gap_ms: int):
        self.name, self.events, self.error = name, [], None
        self.stop = threading.Event()
        self.was_leader = None
        self.consumer = KafkaConsumer(
            group_id=group, client_id=name, enable_auto_commit=False, auto_offset_reset="earliest",
            metadata_max_age_ms=500, session_timeout_ms=6000, heartbeat_interval_ms=500,
            allow_auto_create_topics=False, **session.opts)
        member = self

        class Listener(ConsumerRebalanceListener):
            def on_partitions_revoked(self, revoked):
                member.events.append((time.monotonic(), "revoked", sorted(tp.partition for tp in revoked)))

            def on_partitions_assigned(self, assigned):
                member.events.append((time.monotonic(), "assigned", sorted(tp.partition for tp in assigned)))

        self.consumer.subscribe([topic], listener=Listener())
        self.thread = threading.Thread(target=self._run, args=(poll_ms, gap_ms), name=name, daemon=True)
        self.thread.start()

    def _run(self, poll_ms: int, gap_ms: int) -> None:
        # out of step by a random offset, as consumers doing real work are: two loops started together
        # with the same period stay in step, and then the follower's JoinGroup (sent at the start of its
        # poll) always completes the leader's join while the leader is inside a poll too
        self.stop.wait(random.uniform(0, (poll_ms + gap_ms) / 1000))
        try:
            while not self.stop.is_set():
                self.consumer.poll(timeout_ms=poll_ms)
                if gap_ms:
                    self.stop.wait(gap_ms / 1000)
        except Exception as exc:  # noqa: BLE001  (reported in the run's line)
            self.error = exc
        finally:
            # diagnostic only: the coordinator's own flag (set by _perform_assignment)
            self.was_leader = getattr(getattr(self.consumer, "_coordinator", None), "_is_leader", None)
            try:
                self.consumer.close(autocommit=False, timeout_ms=5000)
            except Exception:  # noqa: BLE001
                pass

    def holds(self) -> list[int] | None:
        """The partitions the member's listener was last given (None: revoked and not given new ones yet)."""
        last = [e for e in self.events if e[1] in ("revoked", "assigned")]
        return last[-1][2] if last and last[-1][1] == "assigned" else None

    def after(self, t0: float, kind: str) -> tuple | None:
        return next((e for e in self.events if e[0] >= t0 and e[1] == kind), None)

    def finish(self) -> None:
        self.stop.set()
        self.thread.join(15)


def broker_view(admin, group: str) -> tuple[str, dict[str, list[int]]]:
    """The group's state and each member's (by client id) assigned partitions, as the broker keeps them."""
    desc = admin.describe_groups([group])[group]
    owned = {}
    for m in desc["members"]:
        owned[m["client_id"]] = sorted(p for a in (m.get("member_assignment") or {}).get("assigned_partitions", [])
                                       for p in a["partitions"])
    return desc["group_state"], owned


def leader_drop_run(session: Session, i: int, args) -> str:
    """One run; returns "left", "ok" or "inconclusive" and prints its line."""
    topic, group = session.ns.topic(f"leader-drop-{i}"), session.ns.group(f"leader-drop-{i}")
    session.create_topic(topic, 3)
    members = []
    try:
        members = [Member(session, topic, group, f"{session.ns.kafka_prefix}m{i}-{k}", args.poll_ms, args.gap_ms)
                   for k in (1, 2)]
        short = {m.name: m.name.rsplit(".", 1)[1] for m in members}
        if not wait_until(lambda: all(m.holds() for m in members)
                          and sorted(sum((m.holds() for m in members), [])) == [0, 1, 2], 30):
            print(f"run {i}: inconclusive: the two members did not share partitions 0-2 within 30 s "
                  f"({ {short[m.name]: m.holds() for m in members} })")
            return "inconclusive"
        t_change = time.monotonic()
        session.admin.create_partitions({topic: NewPartitions(6)})
        seen_with_parts: dict[str, tuple[float, list[int]]] = {}   # client id -> first Stable sample after its revoke
        removed_at: dict[str, float] = {}

        def sample() -> None:
            try:
                state, owned = broker_view(session.admin, group)
            except KafkaError:
                return
            now = time.monotonic()
            for m in members:
                revoked = m.after(t_change, "revoked")
                if m.name in owned and state == "Stable" and owned[m.name] and revoked and m.name not in seen_with_parts:
                    seen_with_parts[m.name] = (now, owned[m.name])
                if m.name in seen_with_parts and m.name not in owned and m.name not in removed_at:
                    removed_at[m.name] = now

        def settled() -> bool:
            sample()
            now = time.monotonic()
            for m in members:
                revoked = m.after(t_change, "revoked")
                if revoked is None:
                    if now - t_change < args.wait + 5:
                        return False
                    continue                            # never revoked: reported below
                if m.after(revoked[0], "assigned") is None and now - revoked[0] < args.wait:
                    return False
            return True

        wait_until(settled, args.wait + 10, 0.25)
        left, lines = [], []
        for m in members:
            revoked = m.after(t_change, "revoked")
            assigned = m.after(revoked[0], "assigned") if revoked else None
            if revoked is None:
                lines.append(f"{short[m.name]} saw no rebalance")
            elif assigned is not None:
                lines.append(f"{short[m.name]} revoked +{revoked[0] - t_change:.1f} s, "
                             f"assigned {assigned[2]} +{assigned[0] - t_change:.1f} s")
            else:
                left.append(m)
        # the broker's view of a member left without partitions, until it removes it (session.timeout.ms)
        if left:
            wait_until(lambda: (sample(), all(m.name in removed_at for m in left))[1], 12, 0.25)
        for m in members:
            m.finish()
        for m in left:
            revoked = m.after(t_change, "revoked")
            seen = seen_with_parts.get(m.name)
            gone = removed_at.get(m.name)
            lines.append(
                f"{short[m.name]} (leader: {m.was_leader}) revoked +{revoked[0] - t_change:.1f} s, never assigned "
                f"within {args.wait:.0f} s; broker: "
                + (f"holds {seen[1]} (Stable) +{seen[0] - t_change:.1f} s" if seen else "never listed it with partitions")
                + (f", removed it +{gone - t_change:.1f} s" if gone else ", still lists it"))
        errors = [f"{short[m.name]} raised {m.error!r}" for m in members if m.error]
        verdict = "left" if any(m.name in seen_with_parts for m in left) else ("inconclusive" if left or errors else "ok")
        word = {"left": "MEMBER LEFT WITHOUT PARTITIONS", "ok": "ok", "inconclusive": "inconclusive"}[verdict]
        print(f"run {i}: {word}: " + "; ".join(lines + errors), flush=True)
        return verdict
    finally:
        for m in members:
            m.finish()
        session.delete(topics=[topic], groups=[group])


# --- pause-resume ---------------------------------------------------------------------------------

def pause_resume_run(session: Session, i: int, args) -> str:
    topic = session.ns.topic(f"pause-resume-{i}")
    session.create_topic(topic, 2)
    per_partition = 20
    consumer = None
    try:
        producer = KafkaProducer(allow_auto_create_topics=False, max_block_ms=10000, **session.opts)
        try:
            for n in range(2 * per_partition):
                producer.send(topic, value=b"record-%d" % n, partition=n % 2)
            producer.flush(timeout=10)
        finally:
            producer.close(timeout=5)
        tps = [TopicPartition(topic, 0), TopicPartition(topic, 1)]
        consumer = KafkaConsumer(enable_auto_commit=False, auto_offset_reset="earliest", max_poll_records=5,
                                 allow_auto_create_topics=False, **session.opts)
        consumer.assign(tps)
        got = {0: set(), 1: set()}

        def poll() -> None:
            fetcher = consumer._fetcher
            if args.clear_drained and fetcher._next_partition_records is not None and not fetcher._next_partition_records:
                # what a fix would do: a drained in-line slot counts as free, so the records parked for a
                # partition that has been resumed are restored (Fetcher._fetched_records tests `is None`)
                fetcher._next_partition_records = None
            for tp, records in consumer.poll(timeout_ms=100).items():
                got[tp.partition].update(r.offset for r in records)

        # 1. the first records: part of one partition's fetched batch (max_poll_records=5)
        if not wait_until(lambda: (poll(), any(got.values()))[1], 15, 0):
            print(f"run {i}: inconclusive: no record within 15 s")
            return "inconclusive"
        first = next(p for p in (0, 1) if got[p])
        other = 1 - first
        x, y = tps[first], tps[other]
        # 2. pause it, 3. read the other partition to its end
        consumer.pause(x)
        if not wait_until(lambda: (poll(), len(got[other]) >= per_partition)[1], 15, 0):
            print(f"run {i}: inconclusive: partition {other} not read to its end within 15 s")
            return "inconclusive"
        before = len(got[first])
        # 4. resume it and read on
        consumer.resume(x)
        wait_until(lambda: (poll(), len(got[first]) >= per_partition)[1], args.wait, 0)
        position, end = consumer.position(x, timeout_ms=10000), consumer.end_offsets([x], timeout_ms=10000)[x]
        parked = x in getattr(getattr(consumer, "_fetcher", None), "_paused_partition_records", {})
        stuck = len(got[first]) < per_partition
        print(f"run {i}: {'RESUMED PARTITION NEVER FETCHED AGAIN' if stuck else 'ok'}: partition {first} "
              f"read {before} before pause, {len(got[first]) - before} in {args.wait:.0f} s after resume "
              f"(of {end}); position {position}, end offset {end}, in paused(): {x in consumer.paused()}, "
              f"records parked in Fetcher._paused_partition_records: {parked}; partition {other}: "
              f"{len(got[other])} of {per_partition}", flush=True)
        return "stuck" if stuck else "ok"
    finally:
        if consumer is not None:
            consumer.close(autocommit=False, timeout_ms=5000)
        session.delete(topics=[topic])


# --- auto-create ----------------------------------------------------------------------------------

def asks_for(session: Session, topic: str, copy_setting: bool) -> tuple[bool, float]:
    """A KafkaProducer(allow_auto_create_topics=False) asks for ``topic``'s partitions (max_block_ms
    3 s); returns whether the broker then lists the topic, and how long the call took."""
    producer = KafkaProducer(allow_auto_create_topics=False, max_block_ms=3000, **session.opts)
    try:
        if copy_setting:  # the course's workaround (helpers/kafka_clients.py _honour_auto_create)
            producer._metadata.config["allow_auto_create_topics"] = producer.config["allow_auto_create_topics"]
        t0 = time.monotonic()
        try:
            producer.partitions_for(topic)
        except KafkaTimeoutError:
            pass
        took = time.monotonic() - t0
    finally:
        producer.close(timeout=5)
    time.sleep(0.5)  # a creation the request triggered is listed by now
    return topic in session.admin.list_topics(), took


def auto_create_run(session: Session, i: int, args) -> str:
    plain, fixed = session.ns.topic(f"auto-create-{i}"), session.ns.topic(f"auto-create-{i}-control")
    try:
        created, took = asks_for(session, plain, copy_setting=False)
        control, took2 = asks_for(session, fixed, copy_setting=True)
    finally:
        session.delete(topics=[plain, fixed])
    print(f"run {i}: {'TOPIC CREATED' if created else 'not created'}: "
          f"KafkaProducer(allow_auto_create_topics=False).partitions_for(missing topic) -> the broker "
          f"{'created' if created else 'did not create'} it ({took:.1f} s); control with the setting copied "
          f"to its ClusterMetadata: {'created' if control else 'not created'} ({took2:.1f} s)", flush=True)
    if not created and not control:
        print("   (the broker created neither: is auto.create.topics.enable false on this broker? "
              "Then this bug cannot show here.)")
    return ("created" if created else "not-created") + ("+control-created" if control else "")


# --- CLI ------------------------------------------------------------------------------------------

BUGS = {
    "leader-drop": (leader_drop_run, "left", "member left without partitions"),
    "pause-resume": (pause_resume_run, "stuck", "resumed partition never fetched again"),
    "auto-create": (auto_create_run, "created",
                    "broker created a topic for a producer with allow_auto_create_topics=False"),
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bug", choices=sorted(BUGS))
    parser.add_argument("--runs", type=int, default=None, help="runs (default: 9 for leader-drop, 3 otherwise)")
    parser.add_argument("--poll-ms", type=int, default=100, help="leader-drop: poll(timeout_ms=...) (default 100)")
    parser.add_argument("--gap-ms", type=int, default=200, help="leader-drop: sleep between polls (default 200)")
    parser.add_argument("--wait", type=float, default=None,
                        help="seconds a member may go without partitions after a revoke (leader-drop, default 10) "
                             "or a resumed partition without records (pause-resume, default 5)")
    parser.add_argument("--clear-drained", action="store_true",
                        help="pause-resume: treat the fetcher's drained in-line slot as free at resume (shows the cause)")
    args = parser.parse_args(argv)
    runs = args.runs or (9 if args.bug == "leader-drop" else 3)
    if args.wait is None:
        args.wait = 10.0 if args.bug == "leader-drop" else 5.0
    run, counted, what = BUGS[args.bug]
    session = Session()
    import kafka

    setting = f" (poll {args.poll_ms} ms, gap {args.gap_ms} ms)" if args.bug == "leader-drop" else (
        " (--clear-drained)" if args.bug == "pause-resume" and args.clear_drained else "")
    print(f"{args.bug}: kafka-python {kafka.__version__}, broker {session.opts['bootstrap_servers']}, "
          f"{runs} run(s){setting}", flush=True)
    outcomes, controls = [], 0
    try:
        for i in range(1, runs + 1):
            outcome = run(session, i, args)
            outcomes.append(outcome.split("+")[0])
            controls += outcome.endswith("+control-created")
    finally:
        session.close()
    extra = ""
    if outcomes.count("inconclusive"):
        extra = f" ({outcomes.count('inconclusive')} inconclusive)"
    if args.bug == "auto-create":
        extra += f"; control (setting copied to the ClusterMetadata): created in {controls} of {runs}"
    print(f"summary: {what} in {outcomes.count(counted)} of {runs} runs{setting}{extra}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
