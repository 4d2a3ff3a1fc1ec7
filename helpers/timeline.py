"""Swimlanes for crash experiments: one lane per actor (a producer, a broker, the controller),
time on the x axis, what each did as marks, the kill as a red rule.

Data first, drawing second: :func:`ack_spans` and :func:`leader_events` build tidy tables
(``lane, start, end, count`` and ``lane, t, event``) and :func:`swimlane` draws them with Altair,
so a shared swimlane builder can take the same tables later.
"""

from __future__ import annotations

import pandas as pd


def ack_spans(lane: str, ack_times: list[float], bin_s: float = 0.1) -> pd.DataFrame:
    """Acknowledgements per ``bin_s`` window as spans ``lane, start, end, count`` (empty windows omitted)."""
    if not ack_times:
        return pd.DataFrame(columns=["lane", "start", "end", "count"])
    bins = pd.Series(ack_times).floordiv(bin_s).value_counts().sort_index()
    return pd.DataFrame({"lane": lane, "start": bins.index * bin_s, "end": (bins.index + 1) * bin_s,
                         "count": bins.values})


def leader_events(changes: list[dict], topic: str, lane: str = "controller") -> pd.DataFrame:
    """One event per leader or ISR change of ``topic`` seen by a LeaderWatch (the first is the start state)."""
    rows = []
    for c in changes:
        if c["topic"] != topic:
            continue
        leader = "none (offline)" if c["leader"] is None else f"broker {c['leader']}"
        rows.append({"lane": lane, "t": c["t"], "event": f"leader {leader}, ISR {c['isr']}"})
    return pd.DataFrame(rows, columns=["lane", "t", "event"])


def swimlane(spans: pd.DataFrame, events: pd.DataFrame, *, kill_at: float | None = None, title: str = "",
             lanes: list[str] | None = None, width: int = 640):
    """An Altair swimlane: ``spans`` as bars shaded by ``count``, ``events`` as labelled points,
    ``kill_at`` as a red vertical rule."""
    import altair as alt

    order = lanes or list(dict.fromkeys([*spans["lane"], *events["lane"]]))
    y = alt.Y("lane:N", sort=order, title=None)
    layers = [alt.Chart(spans).mark_bar(height=14).encode(
        x=alt.X("start:Q", title="seconds since the producers started"), x2="end:Q", y=y,
        color=alt.Color("count:Q", title="acks per 0.1 s", scale=alt.Scale(scheme="greens")),
        tooltip=["lane", alt.Tooltip("start:Q", format=".1f"), "count:Q"])]
    if len(events):
        points = alt.Chart(events).encode(x="t:Q", y=y, tooltip=["lane", alt.Tooltip("t:Q", format=".2f"), "event"])
        layers += [points.mark_point(shape="diamond", size=90, filled=True, color="#0969da"),
                   points.mark_text(align="left", dx=7, dy=-9, fontSize=10).encode(text="event:N")]
    if kill_at is not None:
        rule = pd.DataFrame({"t": [kill_at], "what": ["kill -9"]})
        layers += [alt.Chart(rule).mark_rule(color="#cf222e", strokeWidth=2).encode(x="t:Q", tooltip=["what", "t:Q"]),
                   alt.Chart(rule).mark_text(color="#cf222e", align="left", dx=4, dy=-4, baseline="top")
                   .encode(x="t:Q", y=alt.value(0), text="what:N")]
    return alt.layer(*layers).properties(title=title, width=width, height=34 * len(order) + 20)
