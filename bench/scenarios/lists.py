"""Listing against the table's size, then deep pages (target 3) over the full table.

The table is filled in SQL (bench/fixtures.py) in steps to DEFECTS defects,
64 per timestamp; at each size wrk loads the floor's list and the API's first
page. Then one client follows `next` DEEP_PAGES times, and wrk loads the first
page and the page reached, alternately.
"""

import logging
import time

import httpx

from bench import config
from bench.context import log
from bench.fixtures import add_defects
from bench.loadgen import wrk

TITLE = "list by size and deep pages (target 3)"
DATABASES = ("sqlite", "postgresql")
NEEDS_WEB = True


def run(bench) -> None:
    by_size(bench)
    deep_pages(bench)


def by_size(bench) -> None:
    """First-page latency of the floor and the API at each table size."""
    from defect.models import Defect

    points = []
    for size in [0, *(s for s in (10_000, 100_000, config.DEFECTS) if s <= config.DEFECTS)]:
        if size > bench.filled:
            add_defects(size - bench.filled, user_id=bench.user_id, start=bench.filled)
            bench.filled = size
        point = {"defects": Defect.objects.count()}
        for name, path, token in (("floor_list", "/floor/list", None),
                                  ("api_list", "/api/defects", bench.token)):  # fmt: skip
            result = wrk(bench.web.base + path, seconds=config.SHORT_SECONDS, token=token)
            point[name] = {k: result[k] for k in ("rps", "p50_ms", "p90_ms", "p99_ms")}
        log(f"{bench.db} list at {point['defects']:,} defects: {point}")
        points.append(point)
    bench.out["list_by_size"] = points


def deep_pages(bench) -> None:
    """Target 3: follow `next` DEEP_PAGES times, then compare that page with the first."""
    from defect.models import Defect

    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per page otherwise
    walk = []
    first = url = bench.web.base + "/api/defects"
    headers = {"Authorization": f"Token {bench.token}"}
    with httpx.Client(headers=headers, timeout=30) as client:
        started = time.monotonic()
        for _ in range(config.DEEP_PAGES):
            t = time.perf_counter()
            response = client.get(url)
            walk.append((time.perf_counter() - t) * 1000)
            response.raise_for_status()
            url = response.json()["next"]
            if url is None or time.monotonic() - started > 300:
                raise RuntimeError("the walk ended before DEEP_PAGES pages")
    bench.out["deep_walk_ms"] = {
        "pages": len(walk),
        "defects": Defect.objects.count(),
        "per_page": [round(v, 2) for v in walk],
    }
    for _ in range(config.REPS):
        for name, target in (("page_first", first), ("page_deep", url)):
            bench.record(name, wrk(target, seconds=config.SHORT_SECONDS, token=bench.token))
