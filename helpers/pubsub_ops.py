"""What an operator sees of notebook 01's Pub/Sub experiments, and the per-subscriber accounting of
its flood (section 4): the plumbing around the lesson's own PUBLISH / CLIENT LIST calls.

- :func:`feed_accounting` -- one stuck subscriber's feed: what PUBLISH counted for it, what it read,
  what it had been sent but never read when the server cut it, what was published after the cut.
- :func:`cut_log` -- the Redis log's "output buffer limits" lines as rows (client, omem at the cut).
- :func:`omem_chart` -- the ``omem`` that CLIENT LIST reported for each subscriber after every batch.
- :func:`monitor` -- ``redis-cli MONITOR`` while an action runs, keeping the lines that match.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from . import cli


# --- the flood, per stuck subscriber --------------------------------------------------------------
def feed_accounting(replies: list[int], read: list[int]) -> dict:
    """One subscriber's own feed (a channel only it subscribes to).

    ``replies`` is PUBLISH's reply for every message of the feed, by sequence number (1: the server
    counted it for the subscriber, 0: the subscriber was gone); ``read`` the sequence numbers the
    subscriber read. "Unread at the cut" = counted for it but never read: what the server dropped
    with the connection. ``last_counted`` is None when PUBLISH never counted a message for it.
    """
    sent = [seq for seq, n in enumerate(replies) if n]
    got = set(read)
    unread = [seq for seq in sent if seq not in got]
    return {"published": len(replies), "sent": len(sent), "read": len(got), "unread_at_cut": len(unread),
            "unread_first": unread[0] if unread else None, "unread_last": unread[-1] if unread else None,
            "last_counted": sent[-1] if sent else None, "published_after_cut": len(replies) - len(sent),
            "read_prefix": sorted(got) == list(range(len(got))),
            "replies_step_down": all(a >= b for a, b in zip(replies, replies[1:], strict=False))}


def omem_rows(published: dict[str, int], clients: list[dict], prefix: str = "") -> list[dict]:
    """The omem trace after one batch: for each subscriber still in CLIENT LIST (``clients``), the
    messages published on its feed so far and the bytes Redis holds for it (``omem``, ``obl``, ``oll``)."""
    seen = {c["name"]: c for c in clients}
    return [{"subscriber": name.removeprefix(prefix), "messages published": n,
             "omem (kB)": round(int(seen[name]["omem"]) / 1024, 1), "obl": int(seen[name]["obl"]),
             "oll": int(seen[name]["oll"])} for name, n in published.items() if name in seen]


def omem_chart(trace: list[dict], *, hard_kb: float, soft_kb: float, title: str = ""):
    """One line per subscriber: the bytes Redis held for it after each batch, with the limits as rules."""
    import pandas as pd

    from .charts import alt

    df = pd.DataFrame(trace)
    lines = alt.Chart(df).mark_line(point=True).encode(
        x=alt.X("messages published:Q"), y=alt.Y("omem (kB):Q"), color=alt.Color("subscriber:N"),
        tooltip=list(df.columns))
    limits = pd.DataFrame({"limit": [f"hard limit {hard_kb:g} kB", f"soft limit {soft_kb:g} kB"],
                           "omem (kB)": [hard_kb, soft_kb]})
    rules = alt.Chart(limits).mark_rule(color="firebrick", strokeDash=[4, 3]).encode(
        y="omem (kB):Q", tooltip=["limit", "omem (kB):Q"])
    labels = alt.Chart(limits).mark_text(align="left", dx=4, dy=-6, color="firebrick", fontSize=11).encode(
        y="omem (kB):Q", x=alt.value(0), text="limit:N")
    return (lines + rules + labels).properties(title=title, width=460, height=230)


# --- the server's evidence -----------------------------------------------------------------------
def _field(line: str, key: str) -> str | None:
    return next((f.split("=", 1)[1] for f in line.split() if f.startswith(key + "=")), None)


def cut_log(lines: list[str], prefix: str) -> list[dict]:
    """The Redis log's "scheduled to be closed ASAP for overcoming of output buffer limits" lines as rows:
    when, which client (name without ``prefix``), and its output buffers' memory (``omem``) at the cut."""
    rows = []
    for line in lines:
        name = _field(line, "name") or "?"
        omem = _field(line, "omem")
        rows.append({"logged at": line.split(" # ")[0].split(" ")[-1], "client": name.removeprefix(prefix),
                     "omem at the cut (bytes)": int(omem) if omem and omem.isdigit() else None,
                     "redis log says": line[line.index("scheduled"):] if "scheduled" in line else line})
    return rows


def _monitors(r) -> int:
    return sum("O" in row.get("flags", "") for row in r.client_list())


def monitor(r, action: Callable[[], object], *, seconds: float = 1.5, match: str = "") -> tuple[cli.Result, object]:
    """``redis-cli MONITOR`` (stopped after ``seconds``) while ``action()`` runs, started once the
    MONITOR connection is registered. Returns (the lines that contain ``match``, shown as the command
    ``... MONITOR | grep <match>``; what ``action`` returned)."""
    box: dict = {}
    before = _monitors(r)
    thread = threading.Thread(target=lambda: box.setdefault("result", cli.redis("MONITOR", timeout=seconds)),
                              daemon=True, name="streamslab-monitor")
    thread.start()
    deadline = time.monotonic() + min(5.0, seconds)
    while _monitors(r) <= before and time.monotonic() < deadline and thread.is_alive():
        time.sleep(0.02)
    returned = action()
    thread.join(seconds + 15)
    result: cli.Result = box.get("result") or cli.Result("redis-cli MONITOR", "(no output)", None, seconds, True)
    if not match or not result.ok:  # a refused MONITOR (an ACL on a shared server) keeps its own message
        return result, returned
    kept = [line for line in result.lines if match in line]
    return cli.Result(f"{result.command} | grep {match}", "\n".join(kept), result.returncode, result.seconds,
                      result.timed_out), returned
