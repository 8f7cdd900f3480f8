"""Write BENCHMARKS.md and its plots (bench/results/*.png) from bench/results/*.json.

`python -m bench.report` (the second half of `make bench`). Every target is a
ratio or a figure from one run: per repetition for ratios (the two figures of
a ratio are measured back to back), then min / median / max over repetitions.
The verdict is the median's; "every rep" says whether the worst one met it too.
"""

import json
import statistics
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
OUT = ROOT / "BENCHMARKS.md"
LABELS = {"sqlite": "SQLite (WAL)", "postgresql": "PostgreSQL"}
SCENARIOS = [
    ("floor_create", "floor: bare Django view inserting a defect"),
    ("floor_create_on", "floor create, dispatcher on (healthy counter server)"),
    ("api_create_off", "API create, broadcast off (no dispatcher running)"),
    ("api_create_on", "API create, broadcast on (dispatcher, healthy counter server)"),
    ("api_create_down", "API create, dispatcher on, counter server down"),
    ("api_create_slow", "API create, dispatcher on, counter server answering after 2 s"),
    ("floor_list", "floor: bare Django view returning 200 defects"),
    ("api_list", "API list, first page of 200 (token)"),
    ("page_first", "API list, first page, 1M-row table"),
    ("page_deep", "API list, page after 1,000 `next`, 1M-row table"),
]


def load() -> tuple[dict, dict]:
    machine = json.loads((RESULTS / "machine.json").read_text())
    runs = {}
    for db in LABELS:
        path = RESULTS / f"{db}.json"
        if path.exists():
            runs[db] = json.loads(path.read_text())
    return machine, runs


def mmm(values: list[float]) -> tuple[float, float, float]:
    return min(values), statistics.median(values), max(values)


def fmt(values: list[float], digits: int = 2, unit: str = "") -> str:
    lo, med, hi = mmm(values)
    return f"**{med:,.{digits}f}{unit}** ({lo:,.{digits}f} to {hi:,.{digits}f})"


def per_rep(run: dict, name: str, key: str) -> list[float]:
    return [r[key] for r in run["scenarios"].get(name, [])]


def peak_rss(drain: dict) -> list[float]:
    """Peak RSS of each dispatcher of a drain run: VmHWM sampled while it ran.

    Results written before VmHWM was sampled hold wait4()'s ru_maxrss instead,
    which Linux carries over from the forking parent; for those the largest
    RssAnon + largest RssFile seen (an upper bound of the sampled RSS) stands in.
    """
    if drain.get("peak_rss_sampled") or "peak_rss_anon_mb" not in drain:
        return drain["peak_rss_mb"]
    return [
        a + f for a, f in zip(drain["peak_rss_anon_mb"], drain["peak_rss_file_mb"], strict=True)
    ]


def arrival(rep: dict) -> dict:
    """Commit-to-arrival percentiles of an *on* run (older results: delivered_at-based)."""
    return rep.get("arrival_ms") or rep.get("delivery_ms") or {}


def ratios(run: dict, num: str, den: str, key: str = "rps") -> list[float]:
    return [a / b for a, b in zip(per_rep(run, num, key), per_rep(run, den, key), strict=True)]


class Target:
    def __init__(self, number, db, what, values, threshold, higher=True, digits=2, unit="x"):
        self.number, self.db, self.what = number, db, what
        self.values, self.threshold, self.higher = values, threshold, higher
        self.digits, self.unit = digits, unit

    def ok(self, value: float) -> bool:
        return value >= self.threshold if self.higher else value <= self.threshold

    @property
    def met(self) -> bool:
        return bool(self.values) and self.ok(statistics.median(self.values))

    def row(self) -> str:
        if not self.values:
            return f"| {self.number} | {LABELS[self.db]} | {self.what} | | | not measured |"
        every = all(self.ok(v) for v in self.values)
        sign = ">=" if self.higher else "<="
        verdict = ("**met**" if self.met else "**MISSED**") + (
            " (every rep)" if every else " (not every rep)" if self.met else ""
        )
        unit = self.unit if self.unit != "x" else ""
        figure = fmt(self.values, self.digits, unit)
        limit = f"{sign} {self.threshold:g}{'' if self.unit == 'x' else ' ' + self.unit.strip()}"
        cells = [str(self.number), LABELS[self.db], self.what, figure, limit, verdict]
        return "| " + " | ".join(cells) + " |"


def targets(runs: dict) -> list[Target]:
    out = []
    for db, run in runs.items():
        s = run["scenarios"]

        def add(number, what, values, threshold, **kwargs):
            out.append(Target(number, db, what, values, threshold, **kwargs))  # noqa: B023

        # Like for like: both with the dispatcher delivering their events (the
        # ratio is the API's own cost); then against the floor with none running.
        both_on = ratios(run, "api_create_on", "floor_create_on")
        add(1, "API create (on) / floor create (on)", both_on, 0.7)
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
            add(4, f"API create, dispatcher on, {what} / broadcast off", values, 0.9)
        p99 = [arrival(r)["p99"] for r in s.get("api_create_on", []) if arrival(r).get("count")]
        what = "delivery p99 (commit to arrival) under target 1's load"
        add(5, what, p99, 50, higher=False, digits=1, unit=" ms")
        one = per_rep(run, "drain_1", "events_per_s")
        if db == "sqlite":
            add(6, "drain 100k, one dispatcher", one, 5000, digits=0, unit=" ev/s")
        else:
            two = per_rep(run, "drain_2", "events_per_s")
            scaling = [a / b for a, b in zip(two, one, strict=True)]
            add(6, "drain: two dispatchers / one", scaling, 1)
            dups = [float(d) for d in per_rep(run, "drain_2", "duplicates")]
            add(6, "two dispatchers: events sent twice", dups, 0, higher=False, digits=0, unit="")
        peaks = [peak_rss(r) for n in ("drain_1", "drain_2") for r in run["scenarios"].get(n, [])]
        mb = {"higher": False, "digits": 0, "unit": " MB"}
        add(7, "dispatcher peak RSS, draining 100k", [max(p) for p in peaks], 150, **mb)
        web = [w["peak_rss_mb"] for w in run.get("web_workers_memory", [])]
        add(7, "web worker peak RSS after target 1's load", web, 150, **mb)
    return out


# --- plots ------------------------------------------------------------------------


def plot_latency(runs: dict) -> str:
    fig, axes = plt.subplots(1, len(runs), figsize=(7 * len(runs), 5), squeeze=False)
    for ax, (db, run) in zip(axes[0], runs.items(), strict=True):
        names = [n for n, _ in SCENARIOS if run["scenarios"].get(n)]
        width = 0.27
        for i, key in enumerate(("p50_ms", "p90_ms", "p99_ms")):
            values = [statistics.median(per_rep(run, n, key)) for n in names]
            ax.bar([x + (i - 1) * width for x in range(len(names))], values, width, label=key[:-3])
        ax.set_xticks(range(len(names)), names, rotation=35, ha="right")
        ax.set_yscale("log")
        ax.set_ylabel("latency (ms, median of reps)")
        ax.set_title(f"{LABELS[db]}: latency percentiles, 8 keep-alive clients")
        ax.legend()
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return save(fig, "latency_percentiles.png")


def plot_throughput(runs: dict) -> str:
    fig, axes = plt.subplots(1, len(runs), figsize=(7 * len(runs), 5), squeeze=False)
    for ax, (db, run) in zip(axes[0], runs.items(), strict=True):
        names = [n for n, _ in SCENARIOS[:7] if run["scenarios"].get(n)]
        stats = [mmm(per_rep(run, n, "rps")) for n in names]
        ax.bar(
            range(len(names)),
            [m for _, m, _ in stats],
            yerr=[[m - lo for lo, m, _ in stats], [hi - m for _, m, hi in stats]],
            capsize=4,
            color=["0.6" if n.startswith("floor") else "tab:blue" for n in names],
        )
        ax.set_xticks(range(len(names)), names, rotation=35, ha="right")
        ax.set_ylabel("requests/s (median, min-max bars)")
        ax.set_title(f"{LABELS[db]}: throughput (grey: floor)")
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return save(fig, "throughput.png")


def plot_sizes(runs: dict) -> str:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for db, run in runs.items():
        points = run.get("list_by_size", [])
        x = [p["defects"] for p in points]
        for name, style in (("floor_list", "--"), ("api_list", "-")):
            ax.plot(x, [p[name]["p50_ms"] for p in points], style, marker="o",
                    label=f"{LABELS[db]} {name}")  # fmt: skip
    ax.set_xscale("log")
    ax.set_ylim(bottom=0)
    return finish(fig, ax, "list_by_size.png", "List latency against table size",
                  "defects in the table", "first page (200 rows), p50 latency (ms)")  # fmt: skip


def plot_delivery(runs: dict) -> str:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for (db, run), color in zip(runs.items(), ("tab:blue", "tab:orange"), strict=False):
        for i, rep in enumerate(run["scenarios"].get("api_create_on", [])):
            q = arrival(rep).get("quantiles")
            if q:
                ax.plot(q, range(101), color=color, alpha=0.8,
                        label=f"{LABELS[db]}: arrival" if i == 0 else None)  # fmt: skip
            q = rep.get("recorded_ms", {}).get("quantiles")
            if q:
                ax.plot(q, range(101), "--", color=color, alpha=0.5, linewidth=1,
                        label=f"{LABELS[db]}: delivered_at" if i == 0 else None)  # fmt: skip
    ax.axvline(50, color="red", linestyle=":", label="target p99 50 ms")
    ax.axhline(99, color="0.5", linestyle=":", linewidth=0.8)
    ax.set_xscale("log")
    return finish(fig, ax, "delivery_latency.png",
                  "Delivery latency under API create load (one line per rep)",
                  "ms from created_at to arrival at the counter server (solid) "
                  "or to delivered_at (dashed)", "percentile")  # fmt: skip


def plot_drain(runs: dict) -> str:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    styles = {"drain_1": "-", "drain_2": "--"}
    for (db, run), color in zip(runs.items(), ("tab:blue", "tab:orange"), strict=False):
        for name, style in styles.items():
            for i, rep in enumerate(run["scenarios"].get(name, [])):
                t, pending = zip(*rep["curve"], strict=True)
                label = f"{LABELS[db]}, {name[-1]} dispatcher(s)" if i == 0 else None
                ax.plot(t, pending, style, color=color, alpha=0.8, label=label)
    drains = [r for run in runs.values() for r in run["scenarios"].get("drain_1", [])]
    events = drains[0]["events"] if drains else 0
    return finish(fig, ax, "drain.png", f"Drain of a {events:,}-event backlog (one line per rep)",
                  "seconds", "pending events")  # fmt: skip


def finish(fig, ax, name: str, title: str, xlabel: str, ylabel: str) -> str:
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save(fig, name)


def save(fig, name: str) -> str:
    fig.savefig(RESULTS / name, dpi=100)
    plt.close(fig)
    return f"bench/results/{name}"


# --- the document -------------------------------------------------------------------


def table(header: list[str], rows: list[list]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "|" + "|".join(" --- " for _ in header) + "|",
        *("| " + " | ".join(str(c) for c in row) + " |" for row in rows),
    ]


def scenario_rows(run: dict) -> list[list]:
    rows = []
    for name, what in SCENARIOS:
        reps = run["scenarios"].get(name)
        if not reps:
            continue
        rows.append([
            f"`{name}`", what, fmt(per_rep(run, name, "rps"), 0),
            *(f"{statistics.median(per_rep(run, name, k)):.1f}"
              for k in ("p50_ms", "p90_ms", "p99_ms")),
            sum(r["errors"] for r in reps),
        ])  # fmt: skip
    return rows


# Frames worth showing inclusively: the project's, and the costs they lead to.
INTERESTING = (
    "defect/",
    "broadcast/",
    "bench/",
    "authentication.py",
    "full_clean",
    "Atomic.",
    "Connection.wait",
    "aiohttp/client.py",
    "get_new_connection",
    "_start_transaction",
)


def profile_lines(profile: dict, title: str) -> list[str]:
    if not profile or not profile.get("samples"):
        return []
    total = profile["samples"]
    threads = ", ".join(f"{k} {v / total:.0%}" for k, v in profile["threads"].items())
    threads = f"; per thread: {threads}" if threads else ""
    lines = [f"**{title}**: {total:,} samples at 200 Hz{threads}", ""]
    rows = [[f"`{f}`", f"{n / total:.1%}"] for f, n in profile["self"][:12]]
    lines += table(["function (self time)", "share"], rows)
    lines.append("")
    keep = [(f, n) for f, n in profile["inclusive"] if any(m in f for m in INTERESTING)]
    rows = [[f"`{f}`", f"{n / total:.1%}"] for f, n in keep[:16]]
    lines += table(["function (inclusive: itself and what it calls)", "share"], rows)
    return [*lines, ""]


def machine_rows(m: dict, runs: dict) -> list[list[str]]:
    s = m["settings"]
    databases = f"SQLite {m['sqlite']} (WAL)"
    if "postgresql" in runs:
        databases += f"; PostgreSQL {runs['postgresql'].get('server_version')}"
    kind = s.get("web_worker_class", "gthread")
    threads = f" with {s['web_threads']} threads" if kind == "gthread" else ""
    server = f"{m['gunicorn']}, {s['web_workers']} workers, {kind} workers{threads}"
    load = f"{m['wrk']}; {s['connections']} keep-alive connections, {s['seconds']:g} s per run"
    return [
        ["CPU", f"{m['cpu']}, {m['cores']} cores (shared with other work)"],
        ["memory", f"{m['memory_gb']} GB"],
        ["load average at start", ", ".join(f"{x:.2f}" for x in m["load_average_at_start"])],
        ["OS", m["os"]],
        ["Python / Django / DRF", f"{m['python']} / {m['django']} / {m['drf']}"],
        ["server", server + ", debug off"],
        ["databases", databases],
        ["counter server", f"counters_server.js under {m['deno']}"],
        ["load generator", load],
    ]


def write(machine: dict, runs: dict) -> None:
    plots = {
        "throughput": plot_throughput(runs),
        "latency": plot_latency(runs),
        "sizes": plot_sizes(runs),
        "delivery": plot_delivery(runs),
        "drain": plot_drain(runs),
    }
    all_targets = targets(runs)
    s = machine["settings"]
    md = [
        "# Benchmarks",
        "",
        "Generated by `make bench` (`bench/run.py`, then `bench/report.py`) on "
        f"{machine['date']} at commit `{machine['commit']}`; raw figures in "
        "`bench/results/*.json`. "
        "Do not edit by hand: run `make bench` again.",
        "",
        "Every target is a ratio to the floor or to another figure **of the same run** (the "
        "machine is shared and noisy; absolute requests/s are only context). Figures are "
        f"**median** (min to max) of {s['reps']} repetitions (the drains of targets 6 and 7: "
        f"{s.get('drain_reps', s['reps'])}, see [What runs](#what-runs)); a ratio is taken per "
        "repetition from two measurements made back to back.",
        "",
        "## Targets",
        "",
        *table(["#", "database", "figure", "measured", "target", "verdict"], []),
        *[t.row() for t in all_targets],
        "",
    ]
    missed = [t for t in all_targets if t.values and not t.met]
    if missed:
        names = ", ".join(f"{t.number} ({LABELS[t.db]})" for t in missed)
        md += [f"Missed: {names}. What bounds each: [Analysis](#analysis-of-missed-targets).", ""]
    md += [
        "## Machine and versions",
        "",
        *table(["", ""], machine_rows(machine, runs)),
        "",
        "## What runs",
        "",
        "- **Server**: gunicorn with 2 worker processes (`gthread` workers, so that client "
        "connections are kept alive; 2 threads and `--worker-connections 4` each, so that wrk's "
        "8 connections split 4 and 4: left free, one worker often accepted all 8 and served "
        "them on one core while the other idled, which halved a run at random), "
        "`DJANGO_DEBUG=0`, a generated `DJANGO_SECRET_KEY`, "
        "`DJANGO_ALLOWED_HOSTS=127.0.0.1`, `DJANGO_SETTINGS_MODULE=bench.settings` (the project's "
        "settings plus the two floor URLs), and `API_THROTTLE_RATE=1000000/second`: the per-user "
        "throttle (100/s by default) would otherwise be what is measured. Its own database: "
        "`bench/results/tmp/bench.sqlite3` (WAL), or `railfleet_bench` on the PostgreSQL server "
        "`DATABASE_URL` names.",
        "- **Floor** (`bench/floor.py`): plain Django views, no DRF, no authentication, the same "
        "model. `POST /floor/create` saves a `Defect` through the model (which also writes its "
        "outbox event, as the API does) and answers 201; `GET /floor/list` answers the 200 newest "
        "defects as JSON. The floor's create runs twice per repetition: with no dispatcher "
        "(`floor_create`), and just before `api_create_on` under the same dispatcher "
        "(`floor_create_on`), whose events it delivers too. Target 1 gives both ratios: to "
        "the floor on, like for like (the API's own cost: DRF, the token, the serializer), "
        "and to the floor with no dispatcher (that cost and the broadcast's, target 4's, "
        "together).",
        "- **API clients** authenticate with a DRF token (`Authorization: Token ...`). HTTP Basic "
        "would hash the password on every request (Django's PBKDF2, hundreds of ms by design), "
        "which is what a benchmark must not measure and a script must not do.",
        "- **Load**: wrk, a closed loop of 8 keep-alive connections (2 threads) on 127.0.0.1, "
        "bounded in time; `bench/wrk.lua` sets method, body and token and prints the summary. "
        f"Create runs last {s['seconds']:g} s (targets 1, 4, 5), list runs "
        f"{s.get('list_seconds', s['seconds']):g} s (target 2; 70 to 200 requests/s, so "
        "hundreds of requests a run).",
        "- **Broadcast configurations** (target 4). *off*: no dispatcher runs (events are still "
        "written in the request's transaction: that is the request-path cost). *on*: one "
        "`manage.py broadcast` delivering to the real counter server. *down*: the dispatcher "
        "delivers to a port nothing listens on (connection refused, retries with backoff). "
        "*slow*: the dispatcher delivers to `bench/slow_server.py`, which answers 200 after 2 s. "
        "The outbox is emptied before each run.",
        "- **Delivery latency** (target 5): for each event created during an *on* run, its "
        "arrival time at the counter server minus its `created_at`. counters_server.js logs "
        "one line per event, prefixed with its arrival time (ISO 8601, milliseconds); the "
        "bench reads the lines written during the run, joins them by `Idempotency-Key` "
        "(the event's `key`) with the outbox rows, once every event is delivered, and takes "
        "each key's first arrival. Both clocks are this machine's. `created_at` is stamped "
        "just before the INSERT, so a little before the commit: the figure slightly "
        "**over-estimates** commit-to-arrival (by the INSERT and the COMMIT, well under a "
        "millisecond on an idle database, more under load); the log's millisecond "
        "truncation moves it by less than 1 ms the other way. The table also gives the "
        "former figure, `delivered_at - created_at` from the outbox, which adds the "
        "dispatcher's wait to record the 2xx (up to a round of its loop).",
        f"- **Deep pages** (target 3): the table is filled in SQL to {s['defects']:,} defects "
        "(64 per timestamp, so pages start among equal timestamps; this fixture bypasses the "
        "outbox on purpose) once per database, in three steps that the list-by-size runs "
        "measure; one client then follows `next` 1,000 times (200 rows a page), and wrk loads "
        "the first page and the page reached, alternately, 2 s each.",
        f"- **Drain** (targets 6, 7): {s['drain_events']:,} due events inserted in SQL, a fresh "
        "counter server, `manage.py broadcast --once` (one, or two at once on PostgreSQL) until "
        "nothing is due. Rate = events / wall time from start to the last exit (process "
        "start-up included). The counter server's log tells events counted and repeats seen "
        "(by `Idempotency-Key`). Peak RSS is the dispatcher's `VmHWM` sampled every 0.05 s; a "
        "web worker's is its `VmHWM` after the create runs. The backlog is counted every "
        f"0.5 s for the plot. On PostgreSQL each repetition runs one dispatcher, then two, "
        "back to back (their ratio is target 6 there).",
        "- **Counter server capacity**: wrk POSTing an event with 64 connections (the "
        "dispatcher's concurrency) straight to counters_server.js for 2 s: the ceiling for "
        "delivery.",
        f"- **Profiles**: py-spy at 200 Hz on one web worker during a {s['seconds']:g} s API "
        f"create run (broadcast on), and on one dispatcher draining "
        f"{s.get('profile_events', 30000):,} events (not counted in the targets).",
        *run_length(s, runs),
        "",
        "### Run time",
        "",
        *run_time(machine, runs),
        "",
        "## Throughput and latency",
        "",
        f"![throughput]({plots['throughput']})",
        "",
        f"![latency percentiles]({plots['latency']})",
        "",
    ]
    for db, run in runs.items():
        md += [f"### {LABELS[db]}", ""]
        md += table(["scenario", "what", "req/s", "p50 ms", "p90 ms", "p99 ms", "errors"],
                    scenario_rows(run))  # fmt: skip
        cap = per_rep(run, "counter_capacity", "rps")
        if cap:
            md += ["", f"Counter server capacity (wrk, 64 connections): {fmt(cap, 0)} events/s."]
        md.append("")
    md += ["## List latency against table size", "", f"![list by size]({plots['sizes']})", ""]
    for db, run in runs.items():
        rows = [
            [f"{p['defects']:,}", *(f"{p[n]['p50_ms']:.1f}" for n in ("floor_list", "api_list"))]
            for p in run.get("list_by_size", [])
        ]
        md += [f"{LABELS[db]} (one 2 s run per size):", ""]
        md += table(["defects", "floor list p50 ms", "API list p50 ms"], rows)
        walk = run.get("deep_walk_ms")
        if walk:
            per_page = walk["per_page"]
            md += ["", f"Walk of {walk['pages']:,} `next` links over {walk['defects']:,} defects, "
                   f"one client: median {statistics.median(per_page):.1f} ms a page, first 100 "
                   f"pages {statistics.median(per_page[:100]):.1f} ms, last 100 "
                   f"{statistics.median(per_page[-100:]):.1f} ms."]  # fmt: skip
        md.append("")
    md += ["## Delivery latency", "", f"![delivery]({plots['delivery']})", ""]
    rows = []
    for db, run in runs.items():
        for i, rep in enumerate(run["scenarios"].get("api_create_on", [])):
            d = arrival(rep)
            if d.get("count"):
                recorded = rep.get("recorded_ms", {})
                rows.append([LABELS[db], i + 1, f"{d['count']:,}", f"{d['p50']:.1f}",
                             f"{d['p90']:.1f}", f"{d['p99']:.1f}", f"{d['max']:.1f}",
                             f"{recorded['p50']:.1f}" if recorded.get("count") else "",
                             f"{recorded['p99']:.1f}" if recorded.get("count") else "",
                             d["undelivered"], rep.get("not_in_counter_log", "")])  # fmt: skip
    header = ["database", "rep", "events", "p50 ms", "p90 ms", "p99 ms", "max ms",
              "delivered_at p50 ms", "delivered_at p99 ms", "undelivered",
              "not in the counter's log"]  # fmt: skip
    md += ["Commit (`created_at`) to arrival at the counter server, per *on* run; the "
           "`delivered_at` columns are the outbox's `delivered_at - created_at` for the same "
           "events.", ""]  # fmt: skip
    md += table(header, rows)
    md += ["", "## Drain", "", f"![drain]({plots['drain']})", ""]
    rows = []
    for db, run in runs.items():
        for name in ("drain_1", "drain_2"):
            for i, rep in enumerate(run["scenarios"].get(name, [])):
                split = zip(rep.get("peak_rss_anon_mb", []), rep.get("peak_rss_file_mb", []),
                            strict=True)  # fmt: skip
                rows.append([LABELS[db], name[-1], i + 1, f"{rep['seconds']:.1f}",
                             f"{rep['events_per_s']:,.0f}", rep["counted"], rep["duplicates"],
                             rep["left_pending"],
                             " / ".join(f"{p:.0f}" for p in peak_rss(rep)),
                             " / ".join(f"{a:.0f} + {f:.0f}" for a, f in split)])  # fmt: skip
    md += table(["database", "dispatchers", "rep", "seconds", "events/s", "counted",
                 "sent twice", "left pending", "peak RSS MB", "anon + file MB"], rows)  # fmt: skip
    md += ["", "Peak RSS is the dispatcher's `VmHWM`, sampled every 0.1 s (not `wait4()`'s "
           "`ru_maxrss`: Linux carries the forking parent's peak across `exec`); *anon + file* "
           "are the largest `RssAnon` (the process's "
           "own memory) and `RssFile` (mapped files: code, and the SQLite database file mapped by "
           "`PRAGMA mmap_size`, 128 MB, shared page cache) seen while it ran."]  # fmt: skip
    keys = ("peak_rss_mb", "rss_mb", "rss_anon_mb", "rss_file_mb")
    rows = [
        [LABELS[db], i + 1, *(f"{w.get(k, 0):.0f}" for k in keys)]
        for db, run in runs.items()
        for i, w in enumerate(run.get("web_workers_memory", []))
    ]
    md += ["", "Web workers after the create runs:", ""]
    md += table(["database", "worker", "peak RSS MB", "RSS MB", "anon MB", "file MB"], rows)
    sqlite = runs.get("sqlite", {})
    clients = [(n.removeprefix("client_"), r) for n, r in sqlite.get("scenarios", {}).items()
               if n.startswith("client_")]  # fmt: skip
    if clients:
        md += [
            "",
            "### Which HTTP client",
            "",
            "Each client POSTs the dispatcher's payload with an `Idempotency-Key` to the same "
            "counter server, 64 coroutines on keep-alive connections, "
            f"{machine['settings'].get('client_seconds', 2):g} s per run, in one process "
            "(`bench/clients.py`); `raw` is a bare asyncio stream loop writing HTTP/1.1 by hand, "
            "the ceiling of any client on that event loop.",
            "",
        ]
        rows = [[n, fmt([r["rps"] for r in reps], 0),
                 f"{statistics.median(r['cpu_ms_per_request'] for r in reps):.3f}"]
                for n, reps in _group(clients)]  # fmt: skip
        md += table(["client", "requests/s", "CPU ms per request"], rows)
    md += ["", "## Profiles", ""]
    for db, run in runs.items():
        events = machine["settings"].get("profile_events", 30_000)
        md += profile_lines(run.get("profile_dispatcher"),
                            f"{LABELS[db]}: one dispatcher draining a {events:,}-event backlog "
                            "(py-spy, idle threads excluded, start-up included)")  # fmt: skip
        title = f"{LABELS[db]}: one web worker under API create load, broadcast on"
        md += profile_lines(run.get("profile_web"), title)
    analysis = ROOT / "bench" / "ANALYSIS.md"
    if analysis.exists():
        md += ["## Analysis of missed targets", "", analysis.read_text().strip(), ""]
    OUT.write_text("\n".join(md).rstrip() + "\n")


def run_length(s: dict, runs: dict) -> list[str]:
    """What `make bench` shortened to run in about 12 minutes, and what it did not."""
    drains = [r["seconds"] for run in runs.values() for n in ("drain_1", "drain_2")
              for r in run["scenarios"].get(n, [])]  # fmt: skip
    reps = s.get("drain_reps", s["reps"])
    if not drains:
        return []
    return [
        f"- **Run length**: kept at full size: {s['reps']} repetitions of every create, list "
        f"and page run, {s['seconds']:g} s create runs (target 5 needs their hundreds of "
        f"events), {s['drain_events']:,}-event drains, {s['defects']:,} defects. Shortened: "
        f"list runs {s.get('list_seconds', s['seconds']):g} s, page runs 2 s, counter "
        f"capacity 2 s, {s.get('client_seconds', 2):g} s per HTTP client run, a "
        f"{s.get('profile_events', 30000):,}-event profiled drain, and **{reps} drain "
        f"repetitions, not {s['reps']}**: a drain lasts as long as the dispatcher needs "
        f"(here {min(drains):.0f} to {max(drains):.0f} s, {sum(drains):.0f} s for the "
        f"{len(drains)} drains); nine drains at 1,000 to 1,700 events/s were half of the "
        f"previous 20-minute run. A third repetition would add about "
        f"{sum(drains) / reps:.0f} s; `BENCH_DRAIN_REPS=3` runs it.",
    ]


def run_time(machine: dict, runs: dict) -> list[str]:
    """Seconds per phase and database, and the whole run's minutes."""
    phases: list[str] = []
    for run in runs.values():
        phases += [p for p in run.get("phase_seconds", {}) if p not in phases]
    if not phases:
        return []

    def seconds(run: dict, name: str) -> str:
        spent = run.get("phase_seconds", {}).get(name)
        return "" if spent is None else f"{spent:.0f}"

    rows = [[name, *(seconds(run, name) for run in runs.values())] for name in phases]
    rows.append(["**total**", *(f"**{run['seconds']:.0f}**" for run in runs.values())])
    lines = table(["phase", *(f"{LABELS[db]} (s)" for db in runs)], rows)
    total = machine.get("run_seconds")
    if total:
        lines += ["", f"`bench/run.py` took **{total / 60:.1f} minutes** in all (then "
                  "`bench/report.py`, a few seconds)."]  # fmt: skip
    return lines


def _group(pairs: list[tuple[str, dict]]) -> list[tuple[str, list[dict]]]:
    groups: dict[str, list[dict]] = {}
    for name, reps in pairs:
        groups.setdefault(name, []).extend(reps)
    return list(groups.items())


def main() -> None:
    machine, runs = load()
    if not runs:
        raise SystemExit("no results: run `python -m bench.run` first")
    write(machine, runs)
    print(f"wrote {OUT.relative_to(ROOT)} and the plots in bench/results/")


if __name__ == "__main__":
    main()
