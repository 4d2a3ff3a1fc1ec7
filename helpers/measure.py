"""Timing and summary statistics for the experiments."""

from __future__ import annotations

import math
import time
from contextlib import contextmanager


def percentiles(samples, points=(50, 90, 99)) -> dict:
    """p50/p90/p99/max/mean/count of ``samples`` (nearest-rank), e.g. latencies in ms."""
    values = sorted(float(v) for v in samples)
    if not values:
        return {"count": 0}
    out = {f"p{p}": values[min(len(values), max(1, math.ceil(p / 100 * len(values)))) - 1]
           for p in points}
    out.update(max=values[-1], min=values[0], mean=sum(values) / len(values), count=len(values))
    return out


@contextmanager
def stopwatch():
    """``with stopwatch() as t: ...`` then ``t()`` is the elapsed seconds (also while running)."""
    start = time.perf_counter()
    end = None

    def elapsed() -> float:
        return (end or time.perf_counter()) - start

    try:
        yield elapsed
    finally:
        end = time.perf_counter()


def now_ms() -> float:
    """Wall-clock milliseconds, for stamping messages whose latency another process measures."""
    return time.time() * 1000.0
