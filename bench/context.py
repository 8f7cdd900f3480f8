"""One database's run: the environment its processes get, the processes, the results.

The runner (bench/run.py) starts this process with the bench's whole
environment (database, settings, secrets); nothing here changes os.environ.
Each child process gets that environment plus what is its own, explicitly.
"""

import contextlib
import json
import time
from pathlib import Path

from bench import config, procs
from bench.loadgen import CONNECTIONS, wrk
from tests.helpers import CounterServer, free_port


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


class Bench:
    """The scenarios' handle on one database's run."""

    def __init__(self, db: str, env: dict) -> None:
        self.db = db
        self.env = dict(env)  # this process's environment, given to its children
        self.out: dict = {"database": db, "scenarios": {}, "phase_seconds": {}}
        self.counter = None  # the shared counter server (start_shared)
        self.web = None
        self.base = ""
        self.user_id = 0
        self.token = ""
        self.filled = 0  # bulk fixture defects so far (bench/scenarios/lists.py)

    # --- results ------------------------------------------------------------------

    def record(self, name: str, result: dict) -> None:
        """Append one repetition's `result` to scenario `name`."""
        self.out["scenarios"].setdefault(name, []).append(result)
        rps = result.get("rps")
        log(f"{self.db} {name}: " + (f"{rps:,.0f} req/s" if rps else json.dumps(result)[:200]))

    def log_rep(self, rep: int) -> None:
        log(f"{self.db} repetition {rep + 1}/{config.REPS}")

    @contextlib.contextmanager
    def phase(self, name: str):
        """Time a phase of the run (printed, and reported in BENCHMARKS.md)."""
        started = time.monotonic()
        try:
            yield
        finally:
            spent = time.monotonic() - started
            self.out["phase_seconds"][name] = round(spent, 1)
            log(f"{self.db} phase {name}: {spent:.0f} s")

    def path(self, name: str) -> Path:
        """A log or scratch file of this run, under bench/results/tmp/."""
        return config.TMP / f"{self.db}-{name}"

    # --- processes ----------------------------------------------------------------

    def start_counter(self, name: str):
        """A fresh counters_server.js (in memory, as the brief runs it) on a free port."""
        port = free_port()
        log_path = self.path(f"{name}.log")
        args = CounterServer(port, log_path).command()
        proc = procs.start(args, env=self.env, log=log_path)
        procs.wait_port(port, proc=proc)
        proc.url = f"http://127.0.0.1:{port}/"
        return proc

    def start_web(self, name: str = "web", token: str | None = None, **env: str):
        """gunicorn serving bench.settings with 2 gthread workers on a free port, warmed up
        with `token` (else the run's), and `env` added to its environment.

        With the production configuration (railfleet/gunicorn.py: the workers'
        metrics added up across them, in a directory of this server's own).
        """
        token = token or self.token
        port = free_port()
        proc = procs.start(
            [
                config.GUNICORN,
                "railfleet.wsgi:application",
                "--config=python:railfleet.gunicorn",
                f"--workers={config.WEB_WORKERS}",
                "--worker-class=gthread",
                f"--threads={config.WEB_THREADS}",
                f"--bind=127.0.0.1:{port}",
                "--keep-alive=30",
                # Each worker holds at most its share of wrk's keep-alive connections:
                # left free, one worker often accepts all 8 and serves them on one
                # core while the other idles (runs then halve, at random).
                f"--worker-connections={CONNECTIONS // config.WEB_WORKERS}",
                "--log-level=warning",
            ],
            env={**self.env, **env},
            log=self.path(f"{name}.log"),
        )
        procs.wait_port(port, proc=proc)
        proc.base = f"http://127.0.0.1:{port}"
        # Warm both workers' imports and connections, the API's create included (its
        # first requests on a fresh worker cost tens of times a warm one's).
        for page, with_token in (("/floor/list", None), ("/health", None), ("/api/defects", token)):
            wrk(proc.base + page, seconds=1, token=with_token)
        wrk(proc.base + "/api/defects", seconds=1, method="POST", token=token,
            body=json.dumps({"comment": "warm-up"}))  # fmt: skip
        return proc

    def dispatcher_env(self, url: str, name: str) -> dict:
        """A dispatcher's environment: its counter server, metrics port and PostgreSQL name.

        Never PROMETHEUS_MULTIPROC_DIR: that is the web processes' (a dispatcher refuses it).
        """
        return {
            **{k: v for k, v in self.env.items() if k != "PROMETHEUS_MULTIPROC_DIR"},
            "COUNTER_SERVER_URL": url,
            "BROADCAST_CONCURRENCY": str(config.CONCURRENCY),
            "BROADCAST_METRICS_PORT": str(free_port()),
            "PGAPPNAME": f"bench-{name}",  # how bench/cpu.py finds its backends
        }

    def start_dispatcher(self, url: str, name: str, *, once: bool = False, env: dict | None = None):
        """`manage.py broadcast` (`--once`: until nothing is due) delivering to `url`,
        with `env` added to its environment (BROADCAST_* settings)."""
        env = self.dispatcher_env(url, name) | (env or {})
        proc = procs.start(
            [config.PY, "manage.py", "broadcast", *(["--once"] if once else [])],
            env=env,
            log=self.path(f"dispatcher-{name}.log"),
        )
        proc.application_name = env["PGAPPNAME"] if self.db == "postgresql" else None
        proc.metrics_url = f"http://127.0.0.1:{env['BROADCAST_METRICS_PORT']}/metrics"
        if not once:
            procs.wait_log(proc, "delivering (built-in destination:")
        return proc

    def py_spy(self, out: Path, *args: str, env: dict | None = None):
        """py-spy record, 200 Hz, raw collapsed stacks to `out` (summarised by bench/profiles)."""
        return procs.start(
            [config.PYSPY, "record", "--rate", "200", "--format", "raw", "--output", str(out),
             *args],
            env=env or self.env,
            log=out.with_suffix(".log"),
        )  # fmt: skip


def scrape(url: str, token: str | None = None) -> int | str:
    """The HTTP status of one GET of a /metrics endpoint, or why there was none.

    Recorded with each run, so a reader sees whether metrics were really on.
    """
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError as error:
        return type(error).__name__
