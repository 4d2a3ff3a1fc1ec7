"""Notebook 05, section 1: who computes a group's assignment, which partitions move, how long they wait.

Under Kafka's *classic* group protocol (kafka-python 3.0's) the coordinator picks one member as the
group *leader*; that client runs the assignor and the coordinator relays its result (SyncGroup).
:func:`recording` wraps an assignor so that the leader's instance records what it computed;
:func:`member` is a member thread that logs every record processed and every revoke/assign; a
:class:`Run` keeps one experiment's steps per assignor for :func:`analyse` and :func:`story`.
"""

from __future__ import annotations

import threading
import time

import pandas as pd
from kafka import ConsumerRebalanceListener

from . import groups


class Run:
    """What the members, the leaders and the broker reported during one assignment experiment."""

    def __init__(self, admin, topic: str, partitions: int):
        self.admin, self.topic, self.partitions = admin, topic, partitions
        self.leaders: list[dict] = []     # one entry per assignment a leader computed
        self.events: list[dict] = []      # revoked / assigned / commit-failed, per member
        self.processed: list[tuple] = []  # (time, group, member, partition, offset)
        self.owned: dict[tuple[str, str], list[int]] = {}  # (group, member) -> its consumer.assignment()
        self.steps: list[dict] = []
        self.lock = threading.Lock()

    def event(self, group: str, member: str, kind: str, partitions=()) -> None:
        with self.lock:
            self.events.append({"t": time.time(), "group": group, "member": member, "event": kind,
                                "partitions": sorted(tp.partition for tp in partitions)})

    def settled(self, label: str, assignor: str, group: str, t0: float, *, members: int, workers=(),
                timeout: float = 40.0) -> dict:
        """After a join/leave begun at ``t0``: wait until the broker reports ``group`` stable with
        ``members`` members owning every partition, then until every partition was processed again;
        record the step (the broker's table, the leader's last computation, what each member holds)."""
        table = groups.wait_stable(self.admin, group, members=members, partitions=self.partitions,
                                   timeout=timeout, workers=workers)
        t1 = time.time()
        groups.wait_for(lambda: self._resumed(group, t1), 20, f"every partition of {group} to be read again")
        by_id = {row["member_id"]: row["member"] for row in table}
        with self.lock:
            leader = next((e for e in reversed(self.leaders) if e["group"] == group), None)
            own = {m: list(p) for (g, m), p in self.owned.items() if g == group and m in by_id.values()}
        step = {"step": label, "assignor": assignor, "group": group, "t0": t0, "t1": t1,
                "broker": {row["member"]: row["partitions"] for row in table},
                "member_ids": {row["member"]: row["member_id"] for row in table},
                "leader": leader and leader["leader"],
                "leader_computed": leader and {by_id.get(mid, mid): p for mid, p in leader["assignment"].items()},
                "members_hold": own}
        self.steps.append(step)
        return step

    def _resumed(self, group: str, since: float) -> bool:
        with self.lock:
            done = {p for t, g, _, p, _ in self.processed if g == group and t > since}
        return len(done) == self.partitions

    def processed_by(self, group: str) -> list[tuple[int, int]]:
        with self.lock:
            return [(p, o) for _, g, _, p, o in self.processed if g == group]


def recording(assignor_cls, client_id: str, group: str, run: Run):
    """An instance of ``assignor_cls`` (same name, same protocol) that also records every assignment
    it computes. Only the group leader's instance is ever asked to assign."""

    class Recording(assignor_cls):
        def assign(self, cluster, members):
            result = super().assign(cluster, members)
            with run.lock:
                run.leaders.append({"t": time.time(), "group": group, "leader": client_id, "assignment": {
                    member_id: sorted(tp.partition for tp in a.partitions()) for member_id, a in result.items()}})
            return result

    Recording.__name__ = Recording.__qualname__ = f"Recording{assignor_cls.__name__}"
    return Recording()


class _Listener(ConsumerRebalanceListener):
    def __init__(self, run: Run, group: str, name: str):
        self.run, self.group, self.name = run, group, name

    def on_partitions_revoked(self, revoked):
        self.run.event(self.group, self.name, "revoked", revoked)

    def on_partitions_assigned(self, assigned):
        self.run.event(self.group, self.name, "assigned", assigned)


def member(stop_event, topic: str, group: str, name: str, *, run: Run, partition_assignment_strategy,
           **consumer_kw) -> int:
    """A member thread (``workers.background(rebalance.member, ...)``) using the given assignor
    classes, each wrapped by :func:`recording`. Logs every processed record and every rebalance
    callback in ``run``, commits after every batch, leaves the group cleanly when stopped."""
    from kafka.errors import CommitFailedError

    strategy = [recording(cls, name, group, run) for cls in partition_assignment_strategy]
    consumer = groups.subscribed(topic, group_id=group, client_id=name, listener=_Listener(run, group, name),
                                 partition_assignment_strategy=strategy, **consumer_kw)
    count = 0
    try:
        while not stop_event.is_set():
            polled = consumer.poll(timeout_ms=100)
            now = time.time()
            with run.lock:
                run.processed.extend((now, group, name, rec.partition, rec.offset)
                                     for batch in polled.values() for rec in batch)
                run.owned[(group, name)] = sorted(tp.partition for tp in consumer.assignment())
            count += sum(map(len, polled.values()))
            if polled:
                try:
                    consumer.commit()  # after processing the batch
                except CommitFailedError:  # the group rebalanced meanwhile: these records come again
                    run.event(group, name, "commit-failed")
    finally:
        consumer.close()
        with run.lock:
            run.owned.pop((group, name), None)
    return count


def round_robin_producer(stop_event, producer, topic: str, partitions: int, per_second: float) -> int:
    """Background thread: write to every partition in turn at about ``per_second`` records in all."""
    start, sent = time.monotonic(), 0
    while not stop_event.is_set():
        producer.send(topic, value=f"click-{sent}".encode(), partition=sent % partitions)
        sent += 1
        time.sleep(max(0.0, start + sent / per_second - time.monotonic()))
    producer.flush(timeout=10)
    return sent


def owners(assignment: dict[str, list[int]]) -> dict[int, str]:
    """{partition: member} from {member: [partitions]}."""
    return {p: m for m, parts in assignment.items() for p in parts}


def _pause(times: list[float], t0: float, t1: float) -> float | None:
    """Longest gap between two processings of one partition from its last one before ``t0`` until its
    first one after ``t1`` (the step's start and the moment the group was stable again)."""
    before = [t for t in times if t < t0]
    after = [t for t in times if t >= t0]
    resumed = next((t for t in after if t > t1), None)
    if not before or resumed is None:
        return None
    window = [before[-1]] + [t for t in after if t <= resumed]
    return round(max(b - a for a, b in zip(window, window[1:], strict=False)), 2)


def analyse(run: Run) -> pd.DataFrame:
    """One row per step and assignor: members, what moved (owner changed), how many partitions were
    revoked (taken from their owner, even if handed back), the longest processing pause of a moved
    and of a kept partition, and how long the group took to settle."""
    rows = []
    with run.lock:
        processed, events = list(run.processed), list(run.events)
    for assignor in dict.fromkeys(s["assignor"] for s in run.steps):
        before: dict[int, str] = {}
        for s in (s for s in run.steps if s["assignor"] == assignor):
            after = owners(s["broker"])
            moved = [(p, before[p], after[p]) for p in sorted(after) if p in before and before[p] != after[p]]
            revoked = sum(len(e["partitions"]) for e in events if e["group"] == s["group"]
                          and e["event"] == "revoked" and s["t0"] <= e["t"] <= s["t1"])
            times = {p: sorted(t for t, g, _, q, _ in processed if g == s["group"] and q == p) for p in after}
            pause = {p: _pause(times[p], s["t0"], s["t1"]) for p in after}
            moved_ps = {p for p, _, _ in moved}
            kept = [v for p, v in pause.items() if p not in moved_ps and v is not None]
            went = [v for p, v in pause.items() if p in moved_ps and v is not None]
            rows.append({"step": s["step"], "assignor": assignor, "members": len(s["broker"]),
                         "idle": ", ".join(m for m, parts in s["broker"].items() if not parts) or "none",
                         "moved": len(moved), "which moved": "; ".join(f"p{p} {a} → {b}" for p, a, b in moved) or "-",
                         "revoked": revoked, "leader": s["leader"],
                         "max pause moved (s)": max(went, default=None), "max pause kept (s)": max(kept, default=None),
                         "settled after (s)": round(s["t1"] - s["t0"], 2)})
            before = after
    return pd.DataFrame(rows)


def assignment_view(run: Run) -> pd.DataFrame:
    """Step x (assignor, member): the partitions the broker reports, a ``*`` on each that moved in this step."""
    cells, order = {}, []
    for assignor in dict.fromkeys(s["assignor"] for s in run.steps):
        before: dict[int, str] = {}
        for s in (s for s in run.steps if s["assignor"] == assignor):
            order.append(s["step"])
            after = owners(s["broker"])
            for m, parts in s["broker"].items():
                cells[(s["step"], (assignor, m))] = ", ".join(
                    f"{p}*" if p in before and before[p] != m else str(p) for p in parts) or "idle"
            cells[(s["step"], (assignor, "leader"))] = s["leader"] or "?"
            before = after
    df = pd.Series(cells).unstack()
    columns = sorted(df.columns, key=lambda c: (c[0] != "range", c[1] != "leader", c[1]))
    return df.reindex(index=list(dict.fromkeys(order)), columns=pd.MultiIndex.from_tuples(columns)).fillna("-")


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def story(run: Run, table: pd.DataFrame, heartbeat_s: float) -> str:
    """The observe step in Markdown, every figure read from ``table`` (:func:`analyse`) and ``run``."""
    row = {(r["step"], r["assignor"]): r for r in table.to_dict("records")}
    steps = list(dict.fromkeys(table.step))
    first, last, joins = steps[0], steps[-1], steps[1:-1]
    rng, coop = (lambda s: row[(s, "range")]), (lambda s: row[(s, "cooperative-sticky")])
    leaver = last.split()[0]
    out = []
    full = rng(joins[-1] if joins else first)
    if full["idle"] != "none":
        out.append(f"With {full['members']} consumers on {run.partitions} partitions, **{full['idle']}** had "
                   f"nothing to read (step *{full['step']}*): a partition is read by one member of a group, so "
                   f"a group reads with at most {run.partitions} members in parallel.")
    agree = sum(s["leader_computed"] == s["broker"] == s["members_hold"] for s in run.steps)
    leaders = ", ".join(s["leader"] or "?" for s in run.steps if s["assignor"] == "range")
    out.append(f"Every assignment was computed by one **consumer**, the group leader the coordinator picked "
               f"(range, step by step: {leaders}); the broker relayed it: in {agree} of {len(run.steps)} steps "
               f"the leader's computation, the broker's table and each member's own assignment agree.")
    before = [s for s in run.steps if s["assignor"] == "range" and s["step"] != last][-1]["broker"]
    lr, cl = rng(last), coop(last)
    ids = next(s["member_ids"] for s in run.steps if s["assignor"] == "range" and s["step"] == last)
    shown = ", ".join(f"`{mid[:len(m) + 9]}…`" for m, mid in sorted(ids.items(), key=lambda kv: kv[1]))
    who = (f"not only the leaver's: range lays the members out sorted by member id ({shown}: the client id and "
           f"a suffix the broker added) and deals the partitions out in that order, so the survivors' "
           f"partitions shifted too" if lr["moved"] > len(before.get(leaver, [])) else "only the leaver's")
    out.append(f"When {leaver} left, **range moved {lr['moved']} of {run.partitions} partitions** "
               f"({lr['which moved']}), {who}.")
    for j in joins:
        if rng(j)["revoked"] > rng(j)["moved"]:
            out.append(f"When *{j}*, range moved {_n(rng(j)['moved'], 'partition')} yet revoked {rng(j)['revoked']}: "
                       f"in an eager rebalance every member gives up all its partitions first "
                       f"(cooperative-sticky revoked {coop(j)['revoked']}).")
    total = table.groupby("assignor").revoked.sum()
    out.append(f"With **cooperative-sticky, {cl['moved']} of {run.partitions} moved** when {leaver} left "
               f"({cl['which moved']}); over all steps it revoked {_n(int(total['cooperative-sticky']), 'partition')}, "
               f"range {int(total['range'])}.")
    out.append(f"A moved partition waited up to {lr['max pause moved (s)']} s (range) and "
               f"{cl['max pause moved (s)']} s (cooperative-sticky) until its new owner read it; members hear "
               f"of a rebalance in their next heartbeat (every {heartbeat_s:g} s here).")
    kept = table.groupby("assignor")["max pause kept (s)"].max()
    if kept.notna().all():
        note = (" kafka-python's `poll()` returns no records while its own JoinGroup/SyncGroup round is in "
                "flight, and a cooperative move takes two rounds, so here cooperative-sticky saved revocations "
                "more than time." if kept["cooperative-sticky"] >= kept["range"] else "")
        out.append(f"A partition that stayed with its member paused up to {kept['range']} s under range and "
                   f"{kept['cooperative-sticky']} s under cooperative-sticky.{note}")
    return "\n\n".join(out)
