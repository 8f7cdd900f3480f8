"""The soak's processes: gunicorn (2 workers), 2 dispatchers and two counter servers.

The counter servers are the destinations' (soak.faults.COUNTERS): the built-in
destination's, whose URL the dispatchers get as COUNTER_SERVER_URL, and a second
destination's, made in the database by the run. Each keeps its counts and keys
in a --data file of its own; one given its destination's signing secret checks
every request's signature with it (COUNTER_SIGNING_SECRETS), as a real receiver would.

Each is started with bench/procs.py (own process group, own log) and can be
killed and restarted by the fault driver. A process killed and restarted gets a
new log file per incarnation (`dispatcher-1.2.log`), so every log survives.
"""

import os
import signal
import subprocess
import time
from pathlib import Path

from bench import procs
from soak.faults import COUNTERS
from tests.helpers import CounterServer

ROOT = procs.ROOT
PY = str(ROOT / ".venv" / "bin" / "python")
GUNICORN = str(ROOT / ".venv" / "bin" / "gunicorn")
WEB_WORKERS = 2
DISPATCHERS = 2
# The dispatcher's log line once its signal handlers are in place (broadcast/dispatch/loop.py).
STARTED = "delivering (built-in destination:"


def counter_supports_data() -> bool:
    """Whether counters_server.js keeps its counts in a file (`--data`), across a SIGKILL."""
    return "--data" in (ROOT / "counters_server.js").read_text()


class Slot:
    """One restartable process: its command, its current incarnation, its retired ones."""

    def __init__(self, name: str, args: list[str], env: dict, logs: Path) -> None:
        self.name = name
        self.args = args
        self.env = env
        self.logs = logs
        self.proc: subprocess.Popen | None = None
        self.retired: list[subprocess.Popen] = []
        self.starts = 0

    @property
    def running(self) -> bool:
        """The current incarnation is alive and was sent no fault signal."""
        proc = self.proc
        return proc is not None and proc not in self.retired and proc.poll() is None

    def start(self) -> subprocess.Popen:
        """A new incarnation, logging to a file of its own."""
        self.starts += 1
        log = self.logs / f"{self.name}.{self.starts}.log"
        self.proc = procs.start(self.args, env=self.env, log=log)
        return self.proc

    def signal(self, signum: int) -> bool:
        """Send `signum` to the current incarnation; False when it was not running."""
        proc = self.proc
        if proc is None or not self.running:
            return False
        os.kill(proc.pid, signum)
        proc.soak_signal = signum  # type: ignore[attr-defined]
        if signum == signal.SIGKILL:
            proc.wait(10)
        self.retired.append(proc)
        return True

    def restart_if_down(self) -> bool:
        """Start a new incarnation unless one runs (a SIGTERMed one may still wind down)."""
        if self.running:
            return False
        self.start()
        return True

    def stop(self) -> None:
        """Stop every incarnation still running (SIGTERM, then SIGKILL)."""
        for proc in {*self.retired, self.proc}:
            if proc is not None:
                procs.stop(proc)  # also closes its log file when it has exited


class Counter:
    """One destination's counter server: its port, its --data file, its process slot.

    `secret`: its destination's signing secret, which it then requires of every POST.
    """

    def __init__(
        self, name: str, env: dict, logs: Path, *, stem: str, data: str, secret: str = ""
    ) -> None:
        self.name = name  # the destination's
        self.port = procs.free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.data = logs / data
        self.signed = bool(secret)
        signing = {"COUNTER_SIGNING_SECRETS": secret} if secret else {}
        kept = self.data if counter_supports_data() else None
        command = CounterServer(self.port, logs, data=kept, env=signing).command()
        self.slot = Slot(stem, command, {**env, **signing}, logs)


class Services:
    """Every process of one soak run, on 127.0.0.1.

    `proxy_url`: the built-in destination's URL (its counter server's proxy), for the
    dispatchers; `secrets`: a signing secret per counter server name, for those to check.
    """

    def __init__(
        self, env: dict, logs: Path, proxy_url: str, secrets: dict[str, str] | None = None
    ) -> None:
        self.env = env
        self.logs = logs
        secrets = secrets or {}
        # Log and data file names: the built-in's as before (counter.N.log, counts.sqlite3).
        self.counters = [
            Counter(
                name, env, logs, secret=secrets.get(name, ""),
                stem="counter" if n == 0 else name,
                data="counts.sqlite3" if n == 0 else f"{name}.sqlite3",
            )
            for n, name in enumerate(COUNTERS)
        ]  # fmt: skip
        self.web_port = procs.free_port()
        self.base = f"http://127.0.0.1:{self.web_port}"
        self.web = Slot("web", self._web_args(), env, logs)
        dispatcher_env = {**env, "COUNTER_SERVER_URL": proxy_url}
        dispatch = [PY, "manage.py", "broadcast"]
        self.dispatchers = [
            Slot(f"dispatcher-{n}", dispatch, dispatcher_env, logs) for n in range(DISPATCHERS)
        ]

    def _web_args(self) -> list[str]:
        # The Procfile's web line (sync workers), with 2 workers on a port of our own.
        return [
            GUNICORN, "railfleet.wsgi", f"--bind=127.0.0.1:{self.web_port}",
            f"--workers={WEB_WORKERS}", "--graceful-timeout=20", "--no-control-socket",
            "--log-level=warning",
        ]  # fmt: skip

    def start(self) -> None:
        """Start everything and wait until each listens (dispatchers: until they deliver)."""
        for counter in self.counters:
            procs.wait_port(counter.port, proc=counter.slot.start())
        procs.wait_port(self.web_port, proc=self.web.start())
        for slot in self.dispatchers:
            procs.wait_log(slot.start(), STARTED)

    def web_workers(self) -> list[int]:
        """The pids of gunicorn's workers right now."""
        assert self.web.proc is not None, "started first"
        return procs.children(self.web.proc.pid)

    def kill_web_worker(self, index: int) -> int | None:
        """SIGKILL one gunicorn worker (gunicorn starts another); its pid, or None."""
        workers = self.web_workers()
        if not workers:
            return None
        pid = workers[index % len(workers)]
        os.kill(pid, signal.SIGKILL)
        return pid

    def restore(self, timeout: float = 60) -> None:
        """After the faults: every process up and answering again."""
        for counter in self.counters:
            counter.slot.restart_if_down()
        for slot in self.dispatchers:
            slot.restart_if_down()
        for counter in self.counters:
            procs.wait_port(counter.port, timeout, proc=counter.slot.proc)
        deadline = time.monotonic() + timeout
        while len(self.web_workers()) < WEB_WORKERS and time.monotonic() < deadline:
            time.sleep(0.1)

    def stop(self) -> None:
        """Stop every process of the run."""
        for slot in [*self.dispatchers, self.web, *(counter.slot for counter in self.counters)]:
            slot.stop()

    def unclean_exits(self) -> list[str]:
        """Dispatchers sent SIGTERM that did not exit 0 (after `stop`).

        A dispatcher signalled while still starting, before `manage.py broadcast`
        installed its handler, dies of the signal: it had claimed nothing yet (its
        log has no STARTED line, written after the handler is in place), so
        that is a clean stop too.
        """
        return [
            f"{slot.name} exited {proc.returncode} after SIGTERM"
            for slot in self.dispatchers
            for proc in slot.retired
            if getattr(proc, "soak_signal", None) == signal.SIGTERM
            and proc.returncode != 0
            and not terminated_while_starting(proc)
        ]


def terminated_while_starting(proc: subprocess.Popen) -> bool:
    """Whether `proc` died of SIGTERM before it logged that it was delivering."""
    log = Path(proc.log_path).read_text(errors="replace")  # type: ignore[attr-defined]
    return proc.returncode == -signal.SIGTERM and STARTED not in log
