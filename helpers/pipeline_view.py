"""What notebook 09 shows of its pipeline: the view as a table and a chart, the view beside the
recount, the generator's rate control, and the outage as lines.

Charts come from :mod:`helpers.charts` (offline in JupyterLab, inline SVG headless) and the rate
control is a shared :func:`helpers.widgets.rerun` slider; the plumbing they read lives in
:mod:`helpers.pipeline`.
"""

from __future__ import annotations

from . import charts, pipeline, ui, widgets


def view_table(view: dict):
    """The view as a table: one row per product, best seller first (units, revenue in dollars)."""
    import pandas as pd

    rows = [{"product": p, "units": view["sold"].get(p, 0), "revenue $": view["revenue"].get(p, 0) / 100}
            for p in view["revenue"]]
    df = pd.DataFrame(rows, columns=["product", "units", "revenue $"])
    return df.sort_values(["units", "product"], ascending=[False, True]).reset_index(drop=True)


def view_chart(view: dict, *, title: str = ""):
    """Units sold per product as bars, titled with the totals (what the live view redraws)."""
    head = f"{view['orders']:,} orders, ${sum(view['revenue'].values()) / 100:,.2f}"
    return charts.bars(view_table(view), "product", "units", title=f"{title} {head}".strip(), width=380, height=180)


def compare_table(view: dict, truth: dict):
    """The view beside the recount, one row per product, with an OK / FAILED badge per row."""
    import pandas as pd

    rows = []
    for p in sorted(set(view["revenue"]) | set(truth["revenue"])):
        row = {"product": p, "units (Redis)": view["sold"].get(p, 0), "units (recount)": truth["sold"].get(p, 0),
               "revenue $ (Redis)": view["revenue"].get(p, 0) / 100,
               "revenue $ (recount)": truth["revenue"].get(p, 0) / 100}
        same = row["units (Redis)"] == row["units (recount)"] and row["revenue $ (Redis)"] == row["revenue $ (recount)"]
        rows.append({**row, "status": "OK" if same else "FAILED"})
    return ui.style_status(pd.DataFrame(rows)).format(precision=2)


def rate_control(r, control: str, generator, *, value: int, high: int = 200, seconds: float = 2.0) -> widgets.Rerun:
    """A slider + button (the shared re-run control) that sets the generator's rate while it runs and
    shows the rate Kafka then acknowledged, one bar per setting tried. Runs once with ``value`` now.
    Once the generator has stopped (the cleanup cell) a click only says so and writes nothing."""
    import pandas as pd

    tried: list[dict] = []

    def apply(per_second):
        if not generator.alive:
            return ui.badge("STOPPED", "the generator is not running (the cleanup cell stopped it): "
                                       "run the notebook from the top to start it again")
        flow = pipeline.measure_rate(r, control, per_second, seconds)
        tried.append({"setting": f"{len(tried) + 1}: {per_second}/s", **flow})
        line = ui.badge("OK", f"rate set to {per_second} orders/s; Kafka acknowledged "
                              f"{flow['orders/s measured']} orders/s over the next {seconds:g} s")
        return line, charts.bars(pd.DataFrame(tried), "setting", "orders/s measured", width=60 + 50 * len(tried),
                                 height=160, title="Orders per second acknowledged, per setting")

    rate = widgets.rerun(apply, value=value, low=0, high=high, step=5, label="orders / s", button="Set rate")
    rate.tried = tried  # every setting that reached a running generator, with the rate measured
    return rate


def outage_chart(samples):
    """Orders appended to Kafka since the kill beside the outage group's lag, while Redis is down
    (``samples``: rows with ``s``, ``appended since the kill`` and ``lag of the outage group``)."""
    import pandas as pd

    long = pd.DataFrame([{"s": row["s"], "series": column, "orders": row[column]} for row in samples
                         for column in ("appended since the kill", "lag of the outage group")],
                        columns=["s", "series", "orders"])
    return charts.lines(long, "s", "orders", "series", title="Redis down: Kafka keeps appending, the lag grows")
