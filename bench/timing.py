"""Percentiles of timings, computed the same way by every bench."""

import statistics


def percentiles(seconds):
    """{"n", "p50", "p95", "p99", "max"} in milliseconds of the given timings in seconds: p50 the
    median, the others by nearest rank; None for each figure when there are no timings."""
    if not seconds:
        return {"n": 0, "p50": None, "p95": None, "p99": None, "max": None}
    ms = sorted(s * 1000 for s in seconds)

    def rank(fraction):
        return round(ms[min(len(ms) - 1, round(fraction * (len(ms) - 1)))], 2)

    return {"n": len(ms), "p50": round(statistics.median(ms), 2), "p95": rank(0.95), "p99": rank(0.99),
            "max": round(ms[-1], 2)}
