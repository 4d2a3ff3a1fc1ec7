"""The decision guide on screen: a form of requirements that answers as you change it.

:func:`guide` returns an object to end a cell with. In a live JupyterLab page
(:func:`helpers.ui.interactive`) it draws ipywidgets (sliders for latency and throughput, a retention
menu, three tick boxes, an operations menu) and redraws the recommendation on every change; headless
(nbclient, ``make site``) it shows the recommendation for its starting requirements as text. Each
reason carries the badge of its claim's status in the learner's ledger (CONFIRMED, DEPENDS, NOT YET
MEASURED ...). The logic is :func:`helpers.decision.recommend`; nothing here decides.
"""

from __future__ import annotations

import html
from dataclasses import replace

from IPython.display import HTML, display

from . import decision, ui


def _status(ledger, reason: decision.Reason) -> str:
    """The badge of a reason: its claim's status in the ledger, NOT YET MEASURED when the figure it
    cites is missing, ARTICLE for the article's own judgement."""
    if reason.claim is None:
        return "ARTICLE"
    if reason.figure is None or ledger is None:
        return "NOT YET MEASURED"
    return ledger.verdicts[reason.claim][0].upper()


class Explained:
    """A recommendation as HTML (badges) and as plain text (``[WORD] ...``)."""

    def __init__(self, rec: decision.Recommendation, req: decision.Requirements, ledger=None):
        self.rec, self.req, self.ledger = rec, req, ledger

    def _lines(self):
        for kind, reasons in (("because", self.rec.reasons), ("mind", self.rec.caveats)):
            for reason in reasons:
                yield kind, _status(self.ledger, reason), reason

    def __repr__(self) -> str:
        out = [f"Recommended: {self.rec.name}"]
        for kind, word, reason in self._lines():
            out.append(f"  {kind}: {ui.badge_text(word)} {reason.text}")
        return "\n".join(out)

    def _repr_html_(self) -> str:
        items = "".join(
            f'<li style="margin:3px 0">{"<i>mind:</i> " if kind == "mind" else ""}{ui.badge_html(word)} '
            f"{html.escape(reason.statement)}<br><small>{html.escape(reason.evidence)}</small></li>"
            for kind, word, reason in self._lines())
        return (f'<div style="font:13px/1.5 sans-serif"><b>Recommended: {html.escape(self.rec.name)}</b>'
                f'<ul style="margin:4px 0 0 0;padding-left:18px">{items}</ul></div>')


def explain(req: decision.Requirements, ledger=None) -> Explained:
    """The recommendation for ``req`` with its reasons, ready to display."""
    return Explained(decision.recommend(req, ledger), req, ledger)


def scenarios_table(ledger=None):
    """A DataFrame: each example scenario, the tool the guide picks, and how many of its reasons you measured."""
    import pandas as pd

    rows = []
    for name, req in decision.SCENARIOS.items():
        rec = decision.recommend(req, ledger)
        cited = [r for r in rec.reasons + rec.caveats if r.claim is not None]
        rows.append({"scenario": name, "recommended": rec.name,
                     "reasons measured": f"{sum(r.measured for r in cited)} of {len(cited)}",
                     "status": "OK" if all(r.measured for r in cited) else "NOT MEASURED"})
    return pd.DataFrame(rows)


class Guide:
    """The form (live) or its first answer (headless). ``.requirements``, ``.result`` and ``.set(**changes)``."""

    def __init__(self, ledger=None, requirements: decision.Requirements | None = None):
        self.ledger = ledger
        self.requirements = requirements or decision.Requirements()
        self.result = explain(self.requirements, ledger)
        self._out = None

    def set(self, **changes) -> Explained:
        """Change some requirements (what the form does) and return the new answer."""
        self.requirements = replace(self.requirements, **changes)
        self.result = explain(self.requirements, self.ledger)
        if self._out is not None:
            self._out.clear_output(wait=True)
            with self._out:
                display(self.result)
        return self.result

    def _ipython_display_(self) -> None:
        if not ui.interactive():
            display(HTML("<i>In JupyterLab a form here lets you change the requirements; the answer below is "
                         "for these: " + html.escape(_describe(self.requirements)) + ".</i>"), self.result)
            return
        import ipywidgets as w

        req, style, wide = self.requirements, {"description_width": "initial"}, w.Layout(width="auto")
        controls = {
            "latency_ms": w.FloatLogSlider(value=req.latency_ms, base=10, min=-1, max=3, step=0.1, style=style,
                                           description="latency target (ms)", readout_format=".3g"),
            "throughput": w.FloatLogSlider(value=req.throughput, base=10, min=1, max=7, step=0.1, style=style,
                                           description="events per second", readout_format=",.0f"),
            "retention": w.Dropdown(options=[(v, k) for k, v in decision.RETENTION.items()], value=req.retention,
                                    description="retention and replay", style=style, layout=wide),
            "independent_consumers": w.Checkbox(value=req.independent_consumers, indent=False, layout=wide,
                                                description="several services each need every event"),
            "per_message_ack": w.Checkbox(value=req.per_message_ack, indent=False, layout=wide,
                                          description="a job queue: per-message acknowledgement"),
            "loss_ok": w.Checkbox(value=req.loss_ok, indent=False, layout=wide,
                                  description="losing messages in a crash is acceptable"),
            "ops": w.Dropdown(options=[(v, k) for k, v in decision.OPS.items()], value=req.ops,
                              description="operations budget", style=style, layout=wide),
        }
        self._out = w.Output()
        with self._out:
            display(self.result)
        for name, control in controls.items():
            control.observe(lambda change, name=name: self.set(**{name: change["new"]}), names="value")
        display(w.VBox([w.HTML("<b>Your requirements</b>"), *controls.values(), self._out]))


def _describe(req: decision.Requirements) -> str:
    return (f"latency {req.latency_ms:g} ms, {req.throughput:,.0f} events/s, retention {req.retention}, "
            f"independent consumers {'yes' if req.independent_consumers else 'no'}, per-message ack "
            f"{'yes' if req.per_message_ack else 'no'}, loss {'acceptable' if req.loss_ok else 'not acceptable'}, "
            f"operations: {decision.OPS[req.ops]}")


def guide(ledger=None, **requirements) -> Guide:
    """The decision guide for ``ledger``, starting from ``Requirements(**requirements)``; end the cell with it."""
    return Guide(ledger, decision.Requirements(**requirements))
