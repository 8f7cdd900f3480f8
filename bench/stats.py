"""Percentiles of measured values, small enough for the results JSON."""


def percentiles(values: list[float]) -> dict:
    """count, p50/p90/p99/max of `values`, and 101 quantiles (0..100) for the plots."""
    if not values:
        return {"count": 0}
    values = sorted(values)

    def q(p: float) -> float:
        return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]

    return {
        "count": len(values),
        "p50": q(50),
        "p90": q(90),
        "p99": q(99),
        "max": values[-1],
        "quantiles": [round(q(p), 3) for p in range(101)],
    }
