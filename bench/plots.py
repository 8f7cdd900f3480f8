"""The plots of BENCHMARKS.md, written to bench/results/*.png."""

import statistics

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from bench.config import RESULTS
from bench.targets import LABELS, per_rep


def all_plots(runs: dict, scenarios: list[tuple[str, str]]) -> dict[str, str]:
    """Every plot; their paths by name."""
    return {
        "throughput": plot_throughput(runs, scenarios),
        "latency": plot_latency(runs, scenarios),
        "sizes": plot_sizes(runs),
        "delivery": plot_delivery(runs),
        "drain": plot_drain(runs),
    }


def plot_latency(runs: dict, scenarios: list) -> str:
    fig, axes = plt.subplots(1, len(runs), figsize=(7 * len(runs), 5), squeeze=False)
    for ax, (db, run) in zip(axes[0], runs.items(), strict=True):
        names = [n for n, _ in scenarios if run["scenarios"].get(n)]
        width = 0.27
        for i, key in enumerate(("p50_ms", "p90_ms", "p99_ms")):
            values = [statistics.median(per_rep(run, n, key)) for n in names]
            ax.bar([x + (i - 1) * width for x in range(len(names))], values, width, label=key[:-3])
        ax.set_xticks(range(len(names)), names, rotation=35, ha="right")
        ax.set_yscale("log")
        ax.set_ylabel("latency (ms, median of reps)")
        ax.set_title(f"{LABELS[db]}: latency percentiles")
        ax.legend()
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return save(fig, "latency_percentiles.png")


def plot_throughput(runs: dict, scenarios: list) -> str:
    fig, axes = plt.subplots(1, len(runs), figsize=(7 * len(runs), 5), squeeze=False)
    for ax, (db, run) in zip(axes[0], runs.items(), strict=True):
        names = [n for n, _ in scenarios[:7] if run["scenarios"].get(n)]
        stats = [_mmm(per_rep(run, n, "rps")) for n in names]
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
            ax.plot(
                x,
                [p[name]["p50_ms"] for p in points],
                style,
                marker="o",
                label=f"{LABELS[db]} {name}",
            )
    ax.set_xscale("symlog", linthresh=1000)
    ax.set_ylim(bottom=0)
    return finish(fig, ax, "list_by_size.png")


def plot_delivery(runs: dict) -> str:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for (db, run), color in zip(runs.items(), ("tab:blue", "tab:orange"), strict=False):
        for name, style, what in (
            ("api_create_on", "-", "under load"),
            ("steady_latency", "--", "steady"),
        ):
            for i, rep in enumerate(run["scenarios"].get(name, [])):
                q = rep.get("arrival_ms", rep).get("quantiles")
                if q:
                    ax.plot(
                        q,
                        range(101),
                        style,
                        color=color,
                        alpha=0.8,
                        label=f"{LABELS[db]}, {what}" if i == 0 else None,
                    )
    ax.axvline(50, color="red", linestyle=":", label="p99 target under load, 50 ms")
    ax.axvline(25, color="purple", linestyle=":", label="p99 target steady, 25 ms")
    ax.axhline(99, color="0.5", linestyle=":", linewidth=0.8)
    ax.set_xscale("log")
    return finish(fig, ax, "delivery_latency.png")


def plot_drain(runs: dict) -> str:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for (db, run), color in zip(runs.items(), ("tab:blue", "tab:orange"), strict=False):
        for name, style in (("drain_1", "-"), ("drain_2", "--")):
            for i, rep in enumerate(run["scenarios"].get(name, [])):
                t, pending = zip(*rep["curve"], strict=True)
                label = f"{LABELS[db]}, {name[-1]} dispatcher(s)" if i == 0 else None
                ax.plot(t, pending, style, color=color, alpha=0.8, label=label)
    return finish(fig, ax, "drain.png")


# Title, x label and y label of each line plot.
TITLES = {
    "list_by_size.png": (
        "List latency against table size",
        "defects in the table",
        "first page (200 rows), p50 latency (ms)",
    ),
    "delivery_latency.png": (
        "Commit to arrival (one line per rep)",
        "ms from created_at to arrival at the counter server",
        "percentile",
    ),
    "drain.png": ("Drain of the backlog (one line per rep)", "seconds", "pending events"),
}


def finish(fig, ax, name: str) -> str:
    """Label a line plot (TITLES), then save it."""
    title, xlabel, ylabel = TITLES[name]
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


def _mmm(values: list[float]) -> tuple[float, float, float]:
    return min(values), statistics.median(values), max(values)
