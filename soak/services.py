"""The soak's processes: gunicorn (2 workers), 2 dispatchers and the counter server.

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
        if not self.running:
            return False
        os.kill(self.proc.pid, signum)
        self.proc.soak_signal = signum
        if signum == signal.SIGKILL:
            self.proc.wait(10)
        self.retired.append(self.proc)
        return True

    def restart_if_down(self) -> bool:
        """Start a new incarnation unless one runs (a SIGTERMed one may still wind down)."""
        if self.running:
            return False
        self.start()
        return True

    def stop(self) -> None:
        """Stop every incarnation still running (SIGTERM, then SIGKILL)."""
        for proc in {*self.retired, self.proc} - {None}:
            procs.stop(proc)  # also closes its log file when it has exited


class Services:
    """Every process of one soak run, on 127.0.0.1."""

    def __init__(self, env: dict, logs: Path, proxy_url: str) -> None:
        self.env = env
        self.logs = logs
        self.counter_port = procs.free_port()
        self.counter_url = f"http://127.0.0.1:{self.counter_port}/"
        self.web_port = procs.free_port()
        self.base = f"http://127.0.0.1:{self.web_port}"
        self.counter_data = logs / "counts.sqlite3"
        self.counter = Slot("counter", self._counter_args(), env, logs)
        self.web = Slot("web", self._web_args(), env, logs)
        dispatcher_env = {**env, "COUNTER_SERVER_URL": proxy_url}
        dispatch = [PY, "manage.py", "broadcast"]
        self.dispatchers = [
            Slot(f"dispatcher-{n}", dispatch, dispatcher_env, logs) for n in range(DISPATCHERS)
        ]

    def _counter_args(self) -> list[str]:
        data = self.counter_data if counter_supports_data() else None
        return CounterServer(self.counter_port, self.logs, data=data).command()

    def _web_args(self) -> list[str]:
        # The Procfile's web line (sync workers), with 2 workers on a port of our own.
        return [
            GUNICORN, "railfleet.wsgi", f"--bind=127.0.0.1:{self.web_port}",
            f"--workers={WEB_WORKERS}", "--graceful-timeout=20", "--no-control-socket",
            "--log-level=warning",
        ]  # fmt: skip

    def start(self) -> None:
        """Start everything and wait until each listens (dispatchers: until they deliver)."""
        procs.wait_port(self.counter_port, proc=self.counter.start())
        procs.wait_port(self.web_port, proc=self.web.start())
        for slot in self.dispatchers:
            procs.wait_log(slot.start(), STARTED)

    def web_workers(self) -> list[int]:
        """The pids of gunicorn's workers right now."""
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
        self.counter.restart_if_down()
        for slot in self.dispatchers:
            slot.restart_if_down()
        procs.wait_port(self.counter_port, timeout, proc=self.counter.proc)
        deadline = time.monotonic() + timeout
        while len(self.web_workers()) < WEB_WORKERS and time.monotonic() < deadline:
            time.sleep(0.1)

    def stop(self) -> None:
        """Stop every process of the run."""
        for slot in [*self.dispatchers, self.web, self.counter]:
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
            if proc.soak_signal == signal.SIGTERM
            and proc.returncode != 0
            and not terminated_while_starting(proc)
        ]


def terminated_while_starting(proc: subprocess.Popen) -> bool:
    """Whether `proc` died of SIGTERM before it logged that it was delivering."""
    log = Path(proc.log_path).read_text(errors="replace")
    return proc.returncode == -signal.SIGTERM and STARTED not in log
