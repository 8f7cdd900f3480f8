"""Delivery latency in normal operation: commit to arrival at the counter server.

`make bench` measures delivery latency while wrk saturates the web workers
(target 5). This script answers the broadcast issue's own question, "when the
counter server is healthy, an event reaches it within 100 ms of the commit
(p99)", at a steady, moderate rate: it creates defects through the service
(`--rate` a second for `--seconds`), with one real dispatcher process and the
real counter server, then joins each event's `created_at` with the arrival time
the counter server logs for its Idempotency-Key.

    .venv/bin/python -m bench.delivery_latency            # SQLite, its own file
    DATABASE_URL=postgres://.../railfleet_latency .venv/bin/python -m bench.delivery_latency

Bounded: loopback only, at most `--rate` x `--seconds` events, every process
stopped at the end. `created_at` is stamped just before the INSERT, so the
figure slightly over-estimates commit-to-arrival.
"""

import argparse
import datetime
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ARRIVAL = re.compile(r"^(\S+Z) user \d+ \w+ \(key (\S+)\)$")


def percentile(values: list[float], share: float) -> float:
    return values[min(len(values) - 1, int(len(values) * share))]


def arrivals(log: Path) -> dict[str, datetime.datetime]:
    """Arrival time per Idempotency-Key, from the counter server's log."""
    seen = {}
    for line in log.read_text().splitlines():
        match = ARRIVAL.match(line)
        if match:
            seen.setdefault(match[2], datetime.datetime.fromisoformat(match[1]))
    return seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=20.0, help="defects a second (20)")
    parser.add_argument("--seconds", type=float, default=15.0, help="how long (15 s)")
    parser.add_argument("--port", type=int, default=8866, help="counter server port (8866)")
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="railfleet-latency-"))
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{scratch / 'latency.sqlite3'}")
    os.environ.update(
        DJANGO_SETTINGS_MODULE="railfleet.settings",
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY=os.environ.get("DJANGO_SECRET_KEY", "bench-" + "x" * 50),
        COUNTER_SERVER_URL=f"http://127.0.0.1:{args.port}/",
    )
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from broadcast.models import Event
    from defect.services import defect_create

    call_command("migrate", verbosity=0)
    Event.objects.all().delete()
    user, _ = get_user_model().objects.get_or_create(username="latency")

    log = scratch / "counter.log"
    deno = ROOT / "node_modules" / ".bin" / "deno"
    with log.open("w") as out:
        counter = subprocess.Popen(
            [str(deno), "run", "--allow-net", "counters_server.js", str(args.port)],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    dispatcher = subprocess.Popen(
        [sys.executable, "manage.py", "broadcast"], cwd=ROOT, stderr=subprocess.DEVNULL
    )
    try:
        time.sleep(3)  # both listening
        interval, created = 1 / args.rate, 0
        end = time.monotonic() + args.seconds
        while time.monotonic() < end:
            defect_create(user=user, comment="latency probe")
            created += 1
            time.sleep(interval)
        time.sleep(2)  # the last events arrive
    finally:
        for process in (dispatcher, counter):
            process.terminate()
            process.wait(timeout=30)

    stamped = {str(key): at for key, at in Event.objects.values_list("key", "created_at")}
    arrived = arrivals(log)
    latencies = sorted(
        (arrived[key] - at).total_seconds() * 1000 for key, at in stamped.items() if key in arrived
    )
    vendor = os.environ["DATABASE_URL"].split(":", 1)[0]
    print(
        f"{vendor}: {created} events at {args.rate:g}/s, {len(latencies)} arrived; "
        f"commit to arrival p50 {percentile(latencies, 0.5):.1f} ms, "
        f"p90 {percentile(latencies, 0.9):.1f} ms, p99 {percentile(latencies, 0.99):.1f} ms, "
        f"max {latencies[-1]:.1f} ms"
    )


if __name__ == "__main__":
    main()
