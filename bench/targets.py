"""The targets of issues #11 to #27, computed from one database's results.

Each is a list of per-repetition values (ratios of two figures measured back
to back in the same repetition) and a threshold; the verdict is the median's.
"""

import statistics

LABELS = {"sqlite": "SQLite (WAL)", "postgresql": "PostgreSQL"}
# Target 12's faulty second destinations (bench/scenarios/isolation.py).
FAULTS = {
    "down": "down",
    "slow": "slow (10 s)",
    "overloaded": "503 + Retry-After",
}


def per_rep(run: dict, name: str, key: str) -> list[float]:
    """`key` of every repetition of scenario `name` that has it."""
    return [r[key] for r in run["scenarios"].get(name, []) if key in r]


def ratios(run: dict, num: str, den: str, key: str = "rps", den_key: str | None = None):
    """Per repetition: `num`'s `key` / `den`'s `den_key` (default: the same key)."""
    pairs = zip(per_rep(run, num, key), per_rep(run, den, den_key or key), strict=False)
    return [a / b for a, b in pairs if b]


def pooled_ratios(run: dict, num: str, den: str) -> list[float]:
    """Per repetition of several drains each (its results' `rep`): `num`'s events over its
    drains' seconds / `den`'s, for the repetitions both have. A result without `rep` is a
    repetition of its own."""

    def rates(name: str) -> dict[int, float]:
        pooled: dict[int, list[float]] = {}
        for i, result in enumerate(run["scenarios"].get(name, [])):
            events_seconds = pooled.setdefault(result.get("rep", i), [0.0, 0.0])
            # events_per_s counts what was delivered, not what was left pending.
            events_seconds[0] += result["events_per_s"] * result["seconds"]
            events_seconds[1] += result["seconds"]
        return {rep: events / seconds for rep, (events, seconds) in pooled.items() if seconds}

    a, b = rates(num), rates(den)
    return [a[rep] / b[rep] for rep in sorted(a.keys() & b.keys()) if b[rep]]


class Target:
    """One target on one database: its values per repetition and its threshold."""

    def __init__(self, number, db, what, values, threshold, higher=True, digits=2, unit="x"):
        self.number, self.db, self.what = number, db, what
        self.values, self.threshold, self.higher = values, threshold, higher
        self.digits, self.unit = digits, unit

    def ok(self, value: float) -> bool:
        return value >= self.threshold if self.higher else value <= self.threshold

    @property
    def met(self) -> bool:
        return bool(self.values) and self.ok(statistics.median(self.values))

    def cells(self) -> list[str]:
        """The row of the targets table."""
        if not self.values:
            return [str(self.number), LABELS[self.db], self.what, "", "", "not measured"]
        lo, med, hi = min(self.values), statistics.median(self.values), max(self.values)
        unit = "" if self.unit == "x" else self.unit
        d = self.digits
        figure = f"**{med:,.{d}f}{unit}** ({lo:,.{d}f} to {hi:,.{d}f})"
        every = all(self.ok(v) for v in self.values)
        verdict = ("**met**" if self.met else "**MISSED**") + (
            " (every rep)" if every else " (not every rep)" if self.met else ""
        )
        sign = ">=" if self.higher else "<="
        limit = f"{sign} {self.threshold:g}{unit}"
        return [str(self.number), LABELS[self.db], self.what, figure, limit, verdict]


def cpu_per_event(run: dict, name: str) -> list[float]:
    """Dispatcher CPU per delivered event (ms), its PostgreSQL backends' included."""
    return [
        r["dispatcher_cpu_ms_per_event"] + r.get("backend_cpu_ms_per_event", 0)
        for r in run["scenarios"].get(name, [])
        if "dispatcher_cpu_ms_per_event" in r
    ]


def targets(runs: dict) -> list[Target]:
    """Every target on every database that ran."""
    out = []
    for db, run in runs.items():
        s = run["scenarios"]

        def add(number, what, values, threshold, **kwargs):
            out.append(Target(number, db, what, values, threshold, **kwargs))  # noqa: B023

        add(
            1,
            "API create (on) / floor create (on)",
            ratios(run, "api_create_on", "floor_create_on"),
            0.7,
        )
        add(
            1,
            "API create (on) / floor create (no dispatcher)",
            ratios(run, "api_create_on", "floor_create"),
            0.7,
        )
        add(2, "API list 200 / floor list 200", ratios(run, "api_list", "floor_list"), 0.5)
        deep = ratios(run, "page_deep", "page_first", "p50_ms")
        add(3, "deep page p50 / first page p50", deep, 1.2, higher=False)
        for name, what in (("on", "healthy"), ("down", "counter down"), ("slow", "counter slow")):
            values = ratios(run, f"api_create_{name}", "api_create_off")
            add(4, f"API create, dispatcher on, {what} / broadcast off", values, 0.95)
        ms = {"higher": False, "digits": 1, "unit": " ms"}
        p99 = [
            r["arrival_ms"]["p99"]
            for r in s.get("api_create_on", [])
            if r.get("arrival_ms", {}).get("count")
        ]
        add(5, "delivery p99 (commit to arrival) under target 1's load", p99, 50, **ms)
        steady = [r["p99"] for r in s.get("steady_latency", []) if r.get("count")]
        add(5, "delivery p99 at a steady 20 creations/s", steady, 25, **ms)
        add(
            6,
            "drain, one dispatcher / counter capacity (wrk, same connections)",
            ratios(run, "drain_1", "counter_capacity", "events_per_s", "rps"),
            0.7,
        )
        if db == "postgresql":
            add(
                6,
                "drain: two dispatchers / one",
                ratios(run, "drain_2", "drain_1", "events_per_s"),
                1.3,
            )
            dups = [float(d) for d in per_rep(run, "drain_2", "duplicates")]
            add(6, "two dispatchers: events sent twice", dups, 0, higher=False, digits=0, unit="")
        peaks = [max(r["peak_rss_mb"]) for n in ("drain_1", "drain_2") for r in s.get(n, [])]
        mb = {"higher": False, "digits": 0, "unit": " MB"}
        add(7, "dispatcher peak RSS, draining the backlog", peaks, 150, **mb)
        web = [w["peak_rss_mb"] for w in run.get("web_workers_memory", [])]
        add(7, "web worker peak RSS after target 1's load", web, 150, **mb)
        cpu = {"higher": False, "digits": 3, "unit": " ms"}
        add(8, "dispatcher CPU per event, drain", cpu_per_event(run, "drain_1"), 0.1, **cpu)
        add(
            8,
            "dispatcher CPU per event, under target 1's load",
            cpu_per_event(run, "api_create_on"),
            0.3,
            **cpu,
        )
        add(
            9,
            "web CPU per API create: 8 clients / one at a time",
            ratios(run, "api_create_on", "api_create_one", "web_cpu_ms_per_create"),
            1.3,
            higher=False,
        )
        idle = per_rep(run, "idle", "cpu_ms_per_s")
        add(10, "idle dispatcher and its backends: CPU per second, no event", idle, 1.0, **cpu)
        add(
            11,
            "drain, deliveries/s: two destinations / one",
            ratios(run, "drain_dest_2", "drain_dest_1", "deliveries_per_s"),
            0.8,
        )
        for fault, what in FAULTS.items():
            values = ratios(run, f"isolation_{fault}", "isolation_alone", "p99")
            add(12, f"healthy destination's p99 at 20/s, second {what} / alone", values, 1.5,
                higher=False)  # fmt: skip
            p99 = per_rep(run, f"isolation_{fault}", "p99")
            add(12, f"healthy destination's p99 at 20/s, second {what}", p99, 50, **ms)
        add(
            13,
            "API create: five destinations / one (no dispatcher)",
            ratios(run, "api_create_dest_5", "api_create_dest_1"),
            0.9,
        )
        add(
            14,
            "drain, one dispatcher: attempt log on / successes not logged",
            pooled_ratios(run, "drain_log_on", "drain_log_off"),
            0.9,
        )
        for key, what in (("create", "API create (no dispatcher)"), ("list", "API list 200")):
            add(15, f"{what}: hashed tokens / authtoken's lookup (c530585)",
                per_rep(run, "tokens", key), 0.95)  # fmt: skip
    return out
