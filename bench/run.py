"""Run the benchmark suite and write bench/results/<database>.json (`make bench`).

`python -m bench.run` runs every scenario on SQLite, then on PostgreSQL when
DATABASE_URL names a PostgreSQL server (in a database of its own,
railfleet_bench), each in a child process with its own Django settings.
`python -m bench.run --db sqlite` runs one database only.

Knobs (environment): BENCH_SECONDS (5) per create run (list runs 3 s at
most), BENCH_REPS (3), BENCH_DRAIN_REPS (2), BENCH_DRAIN_EVENTS (100000),
BENCH_DEFECTS (1000000), BENCH_DEEP_PAGES (1000), BENCH_PROFILE (1).
Everything runs on 127.0.0.1, every loop is bounded, and every process
started is stopped at the end (bench/procs.py).
"""

import argparse
import contextlib
import datetime
import json
import logging
import os
import platform
import re
import secrets
import subprocess
import sys
import time
from pathlib import Path

from bench import procs
from bench.loadgen import CONNECTIONS, wrk
from bench.profiles import summarize

ROOT = procs.ROOT
RESULTS = ROOT / "bench" / "results"
TMP = RESULTS / "tmp"
PY = str(ROOT / ".venv" / "bin" / "python")
GUNICORN = str(ROOT / ".venv" / "bin" / "gunicorn")
PYSPY = str(ROOT / ".venv" / "bin" / "py-spy")
DENO = str(ROOT / "node_modules" / ".bin" / "deno")

SECONDS = float(os.environ.get("BENCH_SECONDS", "5"))
REPS = int(os.environ.get("BENCH_REPS", "3"))
# A 100,000-event drain takes 50 to 100 s at this machine's 1,000 to 2,000 events/s:
# two repetitions of each drain (not three) keep `make bench` near 12 minutes.
DRAIN_REPS = int(os.environ.get("BENCH_DRAIN_REPS", "2"))
DRAIN_EVENTS = int(os.environ.get("BENCH_DRAIN_EVENTS", "100000"))
DEFECTS = int(os.environ.get("BENCH_DEFECTS", "1000000"))
PROFILE = os.environ.get("BENCH_PROFILE", "1") == "1"
DEEP_PAGES = int(os.environ.get("BENCH_DEEP_PAGES", "1000"))
LIST_SECONDS = min(SECONDS, 3)  # list runs: 70 to 200 req/s, so 3 s is hundreds of requests
CLIENT_SECONDS = 1.0  # per HTTP client run (bench/clients.py), ~1,000 requests or more
PROFILE_EVENTS = min(DRAIN_EVENTS, 10_000)  # backlog drained under py-spy
WEB_WORKERS = 2
# gthread keeps client connections alive; sync (what `make serve` runs) closes each one.
WEB_WORKER_CLASS = os.environ.get("BENCH_WORKER_CLASS", "gthread")
# Two threads, and up to two more kept-alive connections waiting, per worker:
# gunicorn keeps alive at most worker_connections - threads idle connections.
WEB_THREADS = int(os.environ.get("BENCH_THREADS", "2")) if WEB_WORKER_CLASS == "gthread" else 1
CREATE_BODY = json.dumps({"comment": "Pantograph carbon strip worn, car 3"})
EVENT_BODY = json.dumps({"user": 1, "action": "create"})
CLIENTS = ["aiohttp", "aiohttp+uvloop", "httpx", "raw", "raw+uvloop"]
ARRIVAL = re.compile(r"^(\S+) (?:user \S+ \S+ \(key ([0-9a-f-]+)\)|duplicate ([0-9a-f-]+):)")


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def percentiles(values: list[float]) -> dict:
    """p50/p90/p99/max of `values` and 101 quantiles (0..100) for the plots."""
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


class Suite:
    """The scenarios of one database, run against one gunicorn and one counter server."""

    def __init__(self, db: str) -> None:
        self.db = db
        self.out: dict = {"database": db, "scenarios": {}, "phase_seconds": {}}
        self.env: dict = {}

    @contextlib.contextmanager
    def phase(self, name: str):
        """Time a phase of the run (reported in BENCHMARKS.md, "Run time")."""
        started = time.monotonic()
        try:
            yield
        finally:
            spent = time.monotonic() - started
            self.out["phase_seconds"][name] = round(spent, 1)
            log(f"{self.db} phase {name}: {spent:.0f} s")

    # --- set-up ---------------------------------------------------------------

    def setup_database(self) -> None:
        TMP.mkdir(parents=True, exist_ok=True)
        if self.db == "sqlite":
            path = TMP / "bench.sqlite3"
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            url = f"sqlite:///{path}"
        else:
            from bench.fixtures import postgres_bench_url, recreate_postgres

            url = postgres_bench_url(os.environ["DATABASE_URL"])
            recreate_postgres(os.environ["DATABASE_URL"])
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "bench.settings",
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
            "DATABASE_URL": url,
            # The per-user throttle (100/s by default) would cap the load: lifted here.
            "API_THROTTLE_RATE": "1000000/second",
            "PYTHONUNBUFFERED": "1",
        }
        os.environ.update(self.env)
        import django

        django.setup()
        logging.getLogger("httpx").setLevel(logging.WARNING)
        from django.core.management import call_command

        call_command("migrate", verbosity=0, interactive=False)
        from bench.fixtures import add_defects, bench_user_and_token

        self.user_id, self.token = bench_user_and_token()
        add_defects(1000, user_id=self.user_id, start=DEFECTS)  # newer than the bulk below
        self.filled = 0  # bulk fixture defects so far, numbered 0..DEFECTS-1

    def start_counter(self, name: str = "counter") -> tuple[object, str]:
        port = procs.free_port()
        proc = procs.start(
            [DENO, "run", "--allow-net", "counters_server.js", str(port)],
            env=self.env,
            log=TMP / f"{self.db}-{name}.log",
        )
        procs.wait_port(port, proc=proc)
        return proc, f"http://127.0.0.1:{port}/"

    def start_web(self) -> None:
        self.web_port = procs.free_port()
        self.web = procs.start(
            [
                GUNICORN,
                "railfleet.wsgi:application",
                f"--workers={WEB_WORKERS}",
                f"--worker-class={WEB_WORKER_CLASS}",
                f"--threads={WEB_THREADS}",
                f"--bind=127.0.0.1:{self.web_port}",
                "--keep-alive=30",
                # Each worker holds at most its share of wrk's keep-alive connections:
                # left free, one worker often accepts all 8 and serves them on one
                # core while the other idles (list runs then halve, at random).
                f"--worker-connections={CONNECTIONS // WEB_WORKERS}",
                "--log-level=warning",
            ],
            env={**self.env, "COUNTER_SERVER_URL": self.counter_url},
            log=TMP / f"{self.db}-web.log",
        )
        procs.wait_port(self.web_port, proc=self.web)
        self.base = f"http://127.0.0.1:{self.web_port}"
        for path in ("/floor/list", "/health"):  # warm both workers' imports and connections
            wrk(self.base + path, seconds=1)

    def start_dispatcher(self, url: str, name: str, *args: str):
        proc = procs.start(
            [PY, "manage.py", "broadcast", *args],
            env={**self.env, "COUNTER_SERVER_URL": url},
            log=TMP / f"{self.db}-{name}.log",
        )
        procs.wait_log(proc, "delivering to")
        return proc

    # --- scenarios ------------------------------------------------------------

    def record(self, name: str, result: dict) -> None:
        self.out["scenarios"].setdefault(name, []).append(result)
        rps = result.get("rps")
        log(f"{self.db} {name}: " + (f"{rps:,.0f} req/s" if rps else json.dumps(result)[:200]))

    def counter_capacity(self) -> None:
        for _ in range(REPS):
            result = wrk(
                self.counter_url, seconds=min(SECONDS, 2), method="POST", body=EVENT_BODY,
                connections=64,
            )  # fmt: skip
            self.record("counter_capacity", result)

    def client_comparison(self) -> None:
        for _ in range(REPS):
            for kind in CLIENTS:
                out = subprocess.run(
                    [PY, "-m", "bench.clients", kind, self.counter_url, str(CLIENT_SECONDS),
                     "64"],
                    cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=60,
                    check=True,
                )  # fmt: skip
                self.record(f"client_{kind}", json.loads(out.stdout))

    def create(self, name: str, path: str, **kwargs) -> dict:
        from bench.fixtures import clear_events

        clear_events()  # each create run starts with an empty outbox
        from django.utils import timezone

        started = timezone.now()
        result = wrk(self.base + path, seconds=SECONDS, method="POST", body=CREATE_BODY, **kwargs)
        result["window"] = [started, timezone.now()]
        return result

    def api_create_with(self, name: str, url: str | None, *, floor_too: bool = False) -> None:
        """API create with a dispatcher delivering to `url` (None: no dispatcher).

        With `floor_too`, the floor's create runs first under the same dispatcher
        (`floor_create_on`): target 1 then compares the two like for like.
        """
        dispatcher = self.start_dispatcher(url, f"dispatcher-{name}") if url else None
        try:
            if floor_too:
                floor = self.create("floor_create_on", "/floor/create")
                del floor["window"]
                self.record("floor_create_on", floor)
            log_offset = self.counter.log_path.stat().st_size
            result = self.create(name, "/api/defects", token=self.token)
            if name == "api_create_on":
                result.update(self.delivery(*result["window"], log_offset))
        finally:
            if dispatcher is not None:
                procs.stop(dispatcher)
        del result["window"]
        self.record(name, result)

    def delivery(self, since, until, log_offset: int) -> dict:
        """Commit-to-arrival latency of the events created in [since, until), in ms.

        `arrival_ms`: the arrival time the counter server logs for the event's
        Idempotency-Key (its first arrival) minus the event's `created_at`,
        stamped just before the INSERT, so slightly before the commit: a small
        over-estimate of commit-to-arrival. Both clocks are this machine's; the
        log has millisecond resolution (truncated). `recorded_ms`: delivered_at -
        created_at from the outbox, which also includes the dispatcher's wait to
        record the 2xx (the figure reported before arrival times were logged).
        """
        from bench.fixtures import pending_count
        from broadcast.models import Event, Status

        # wrk drops its in-flight requests at the end; the server still commits them,
        # so nothing pending is only final a second after the window closed.
        settled = time.monotonic() + 1
        deadline = time.monotonic() + 60
        while (pending_count() or time.monotonic() < settled) and time.monotonic() < deadline:
            time.sleep(0.1)
        rows = Event.objects.filter(created_at__gte=since, created_at__lt=until)
        events = {
            str(key): (created, delivered)
            for key, created, delivered in rows.filter(status=Status.DELIVERED).values_list(
                "key", "created_at", "delivered_at"
            )
        }
        arrivals: dict = {}
        deadline = time.monotonic() + 10  # the counter server logs before it answers
        while len(arrivals) < len(events) and time.monotonic() < deadline:
            arrivals = self.arrivals(self.counter.log_path, log_offset, events)
            if len(arrivals) < len(events):
                time.sleep(0.1)
        arrival = [(at - events[key][0]).total_seconds() * 1000 for key, at in arrivals.items()]
        recorded = [(d - c).total_seconds() * 1000 for c, d in events.values()]
        undelivered = rows.exclude(status=Status.DELIVERED).count()
        return {
            "arrival_ms": percentiles(arrival) | {"undelivered": undelivered},
            "recorded_ms": percentiles(recorded) | {"undelivered": undelivered},
            "not_in_counter_log": len(events) - len(arrivals),
        }

    @staticmethod
    def arrivals(path: Path, offset: int, keys) -> dict:
        """First arrival time (aware datetime) of each of `keys` in the counter server's log."""
        found: dict = {}
        with open(path, "rb") as lines:
            lines.seek(offset)
            for raw in lines:
                match = ARRIVAL.match(raw.decode(errors="replace"))
                key = match and (match[2] or match[3])
                if key in keys and key not in found:
                    found[key] = datetime.datetime.fromisoformat(match[1])
        return found

    def throughput(self) -> None:
        """Targets 1, 2, 4 and 5: each configuration once per repetition, interleaved."""
        from bench.fixtures import clear_events

        down_url = f"http://127.0.0.1:{procs.free_port()}/"  # nothing listens there
        slow_port = procs.free_port()
        slow = procs.start(
            [PY, "-m", "bench.slow_server", str(slow_port)], env=self.env,
            log=TMP / f"{self.db}-slow.log",
        )  # fmt: skip
        procs.wait_port(slow_port, proc=slow)
        try:
            for rep in range(REPS):
                log(f"{self.db} throughput repetition {rep + 1}/{REPS}")
                result = self.create("floor_create", "/floor/create")
                del result["window"]
                self.record("floor_create", result)
                self.api_create_with("api_create_off", None)
                self.api_create_with("api_create_on", self.counter_url, floor_too=True)
                self.api_create_with("api_create_down", down_url)
                self.api_create_with("api_create_slow", f"http://127.0.0.1:{slow_port}/")
                self.record("floor_list", wrk(self.base + "/floor/list", seconds=LIST_SECONDS))
                self.record(
                    "api_list",
                    wrk(self.base + "/api/defects", seconds=LIST_SECONDS, token=self.token),
                )
        finally:
            procs.stop(slow)
            clear_events()
        workers = procs.children(self.web.pid)
        self.out["web_workers_memory"] = [procs.memory_mb(pid) for pid in workers]
        log(f"{self.db} web workers after the create load: {self.out['web_workers_memory']}")

    def list_by_size(self) -> None:
        """First-page latency of the floor and the API against the table's size."""
        from bench.fixtures import add_defects
        from defect.models import Defect

        sizes = [s for s in (10_000, 100_000, DEFECTS) if s <= DEFECTS]
        points = []
        for size in [0, *sizes]:
            if size:
                add_defects(size - self.filled, user_id=self.user_id, start=self.filled)
                self.filled = size
            total = Defect.objects.count()
            point = {"defects": total}
            for name, path, token in (
                ("floor_list", "/floor/list", None),
                ("api_list", "/api/defects", self.token),
            ):
                result = wrk(self.base + path, seconds=min(SECONDS, 2), token=token)
                point[name] = {k: result[k] for k in ("rps", "p50_ms", "p90_ms", "p99_ms")}
            log(f"{self.db} list at {total:,} defects: {point}")
            points.append(point)
        self.out["list_by_size"] = points

    def deep_pages(self) -> None:
        """Target 3: follow `next` DEEP_PAGES times, then compare that page with the first."""
        import httpx

        from defect.models import Defect

        headers = {"Authorization": f"Token {self.token}"}
        walk = []
        with httpx.Client(headers=headers, timeout=30) as client:
            url = self.base + "/api/defects"
            first = url
            started = time.monotonic()
            for _ in range(DEEP_PAGES):
                t = time.perf_counter()
                response = client.get(url)
                walk.append((time.perf_counter() - t) * 1000)
                response.raise_for_status()
                url = response.json()["next"]
                if url is None or time.monotonic() - started > 300:
                    raise RuntimeError("the walk ended before DEEP_PAGES pages")
            deep = url
        self.out["deep_walk_ms"] = {
            "pages": len(walk),
            "defects": Defect.objects.count(),
            "per_page": [round(v, 2) for v in walk],
        }
        for _ in range(REPS):
            for name, target in (("page_first", first), ("page_deep", deep)):
                self.record(name, wrk(target, seconds=min(SECONDS, 2), token=self.token))

    def drains(self) -> None:
        """Targets 6 and 7: DRAIN_REPS repetitions; on PostgreSQL one and two dispatchers
        back to back in each (their ratio is target 6 there)."""
        from bench.fixtures import clear_events

        counts = (1, 2) if self.db == "postgresql" else (1,)
        try:
            for rep in range(DRAIN_REPS):
                for dispatchers in counts:
                    self.drain(dispatchers, rep)
        finally:
            clear_events()

    def drain(self, dispatchers: int, rep: int) -> None:
        """A backlog of DRAIN_EVENTS, `dispatchers` running --once until nothing is due."""
        from bench.fixtures import add_pending_events, clear_events, pending_count

        name = f"drain_{dispatchers}"
        clear_events()
        add_pending_events(DRAIN_EVENTS)
        counter, url = self.start_counter(f"counter-{name}-{rep}")
        try:
            curve = []
            started = time.monotonic()
            runners = [
                procs.start(
                    [PY, "manage.py", "broadcast", "--once"],
                    env={**self.env, "COUNTER_SERVER_URL": url},
                    log=TMP / f"{self.db}-dispatcher-{name}-{rep}-{i}.log",
                )
                for i in range(dispatchers)
            ]
            exits: dict = {}
            hwm, anon, file = ([0.0] * dispatchers for _ in range(3))
            next_count = started
            while len(exits) < len(runners) and time.monotonic() - started < 600:
                # The backlog is counted every 0.5 s (a COUNT competes with the
                # dispatcher for the 2 cores); exits and memory are read every 0.05 s.
                if time.monotonic() >= next_count:
                    curve.append((round(time.monotonic() - started, 3), pending_count()))
                    next_count += 0.5
                for i, runner in enumerate(runners):
                    memory = procs.memory_mb(runner.pid)
                    hwm[i] = max(hwm[i], memory.get("peak_rss_mb", 0))
                    anon[i] = max(anon[i], memory.get("rss_anon_mb", 0))
                    file[i] = max(file[i], memory.get("rss_file_mb", 0))
                    if runner.pid not in exits and (done := procs.reap(runner)):
                        exits[runner.pid] = (done, time.monotonic() - started)
                time.sleep(0.05)
            # Wall time from the start to the last dispatcher's exit.
            elapsed = max((t for _, t in exits.values()), default=time.monotonic() - started)
            for runner in runners:
                (code, _), _ = exits.get(runner.pid) or ((None, None), None)
                procs.stop(runner)
                if code != 0:
                    raise RuntimeError(f"dispatcher exited with {code}: {runner.log_path}")
            left = pending_count()
            curve.append((round(elapsed, 3), left))
            seen = self.counter_log(counter.log_path)
        finally:
            procs.stop(counter)
        result = {
            "events": DRAIN_EVENTS,
            "seconds": elapsed,
            "events_per_s": (DRAIN_EVENTS - left) / elapsed,
            "left_pending": left,
            # VmHWM sampled every 0.05 s (not wait4's ru_maxrss: Linux carries the
            # forking parent's peak across exec, so it reports this script's RSS).
            "peak_rss_mb": hwm,
            "peak_rss_sampled": True,
            "peak_rss_anon_mb": anon,
            "peak_rss_file_mb": file,
            "counted": seen["counted"],
            "duplicates": seen["duplicates"],
            "curve": curve,
        }
        self.record(name, result)

    @staticmethod
    def counter_log(path: Path) -> dict:
        """Events the counter server counted and repeats it saw (by Idempotency-Key)."""
        counted = duplicates = 0
        with open(path, errors="replace") as lines:
            for line in lines:
                event = line.split(" ", 1)[-1]  # after the arrival time
                if event.startswith("duplicate "):
                    duplicates += 1
                elif event.startswith("user "):
                    counted += 1
        return {"counted": counted, "duplicates": duplicates}

    # --- profiles ---------------------------------------------------------------

    def py_spy(self, out: Path, *args: str, env: dict | None = None):
        """py-spy record, 200 Hz, raw collapsed stacks to `out` (summarised by bench/profiles)."""
        return procs.start(
            [PYSPY, "record", "--rate", "200", "--format", "raw", "--output", str(out), *args],
            env=env or self.env,
            log=out.with_suffix(".log"),
        )

    def profile_dispatcher(self) -> None:
        """py-spy on one dispatcher draining a backlog (not counted in the targets)."""
        from bench.fixtures import add_pending_events, clear_events

        clear_events()
        add_pending_events(PROFILE_EVENTS)
        counter, url = self.start_counter("counter-profile")
        out = TMP / f"profile-dispatcher-{self.db}.txt"
        try:
            runner = self.py_spy(
                out, "--threads", "--", PY, "manage.py", "broadcast", "--once",
                env={**self.env, "COUNTER_SERVER_URL": url},
            )  # fmt: skip
            runner.wait(300)
            procs.stop(runner)
        finally:
            procs.stop(counter)
            clear_events()
        self.out["profile_dispatcher"] = summarize(out)
        log(f"{self.db} dispatcher profile: {out}")

    def profile_web(self) -> None:
        """py-spy on one web worker during API create load (broadcast on)."""
        from bench.fixtures import clear_events

        worker = procs.children(self.web.pid)[0]
        out = TMP / f"profile-web-{self.db}.txt"
        dispatcher = self.start_dispatcher(self.counter_url, "dispatcher-profile-web")
        try:
            spy = self.py_spy(
                out, "--pid", str(worker), "--duration", str(int(SECONDS)), "--nonblocking"
            )
            time.sleep(0.5)
            wrk(self.base + "/api/defects", seconds=SECONDS, method="POST", body=CREATE_BODY,
                token=self.token)  # fmt: skip
            spy.wait(60)
            procs.stop(spy)
        finally:
            procs.stop(dispatcher)
            clear_events()
        self.out["profile_web"] = summarize(out)
        log(f"{self.db} web profile: {out}")

    # --- all --------------------------------------------------------------------

    def run(self) -> dict:
        started = time.monotonic()
        try:
            with self.phase("setup"):
                self.setup_database()
                self.counter, self.counter_url = self.start_counter()
                self.start_web()
            with self.phase("counter capacity"):
                self.counter_capacity()
            if self.db == "sqlite":
                with self.phase("HTTP clients"):
                    self.client_comparison()
            with self.phase("create and list (targets 1, 2, 4, 5)"):
                self.throughput()
            if PROFILE:
                with self.phase("profile: web worker"):
                    self.profile_web()
            with self.phase("list by size (fills 1M defects)"):
                self.list_by_size()
            with self.phase("deep pages (target 3)"):
                self.deep_pages()
            procs.stop(self.web)
            with self.phase("drains (targets 6, 7)"):
                self.drains()
            if PROFILE:
                with self.phase("profile: dispatcher"):
                    self.profile_dispatcher()
        finally:
            procs.stop_all()
        self.out["seconds"] = time.monotonic() - started
        return self.out


def machine() -> dict:
    import django
    import rest_framework

    def version(args: list[str]) -> str:
        try:
            out = subprocess.run(args, capture_output=True, text=True, timeout=30, cwd=ROOT)
            return (out.stdout or out.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.SubprocessError):
            return "?"

    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        platform.processor(),
    )  # fmt: skip
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "load_average_at_start": os.getloadavg(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "django": django.get_version(),
        "drf": rest_framework.VERSION,
        "gunicorn": version([GUNICORN, "--version"]),
        "deno": version([DENO, "--version"]),
        "wrk": version(["wrk", "--version"]),
        "sqlite": __import__("sqlite3").sqlite_version,
        "commit": version(["git", "rev-parse", "--short", "HEAD"]),
        "settings": {
            "seconds": SECONDS,
            "reps": REPS,
            "drain_reps": DRAIN_REPS,
            "list_seconds": LIST_SECONDS,
            "client_seconds": CLIENT_SECONDS,
            "profile_events": PROFILE_EVENTS,
            "connections": CONNECTIONS,
            "web_workers": WEB_WORKERS,
            "web_worker_class": WEB_WORKER_CLASS,
            "web_threads": WEB_THREADS,
            "drain_events": DRAIN_EVENTS,
            "defects": DEFECTS,
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["all", "sqlite", "postgresql"], default="all")
    db = parser.parse_args().db
    RESULTS.mkdir(parents=True, exist_ok=True)
    if db != "all":
        out = Suite(db).run()
        if db == "postgresql":
            from django.db import connection

            connection.ensure_connection()
            out["server_version"] = connection.pg_version
        text = json.dumps(out, separators=(",", ":"), default=str)  # compact: it is committed
        (RESULTS / f"{db}.json").write_text(text + "\n")
        return
    databases = ["sqlite"]
    if os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
        databases.append("postgresql")
    else:
        (RESULTS / "postgresql.json").unlink(missing_ok=True)
        log("DATABASE_URL names no PostgreSQL server: SQLite only")
    (RESULTS / "machine.json").write_text(json.dumps(machine(), indent=1) + "\n")
    started = time.monotonic()
    for name in databases:
        subprocess.run([PY, "-m", "bench.run", "--db", name], cwd=ROOT, check=True)
    machine_json = json.loads((RESULTS / "machine.json").read_text())
    machine_json["run_seconds"] = round(time.monotonic() - started, 1)
    (RESULTS / "machine.json").write_text(json.dumps(machine_json, indent=1) + "\n")
    log(f"all databases: {machine_json['run_seconds'] / 60:.1f} minutes")


if __name__ == "__main__":
    sys.exit(main())
