"""Start, wait for and stop the processes a benchmark needs; each in its own process group."""

import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from tests.helpers import free_port  # noqa: F401 - re-exported for the scenarios

ROOT = Path(__file__).resolve().parent.parent
_started: list[subprocess.Popen] = []


def start(args: list[str], *, env: dict, log: Path) -> subprocess.Popen:
    """Start `args` in a new session, stdout and stderr to `log` (truncated)."""
    out = open(log, "wb")  # noqa: SIM115 - owned by the child, closed when it is stopped
    proc = subprocess.Popen(
        args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
    )
    proc.log_file = out
    proc.log_path = log
    _started.append(proc)
    return proc


def wait_port(port: int, timeout: float = 30.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{proc.args[:3]} exited ({proc.returncode}), see {proc.log_path}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def wait_log(proc: subprocess.Popen, text: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in proc.log_path.read_text(errors="replace"):
            return
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[:3]} exited ({proc.returncode}), see {proc.log_path}")
        time.sleep(0.05)
    raise TimeoutError(f"{text!r} not in {proc.log_path} after {timeout}s")


def stop(proc: subprocess.Popen, timeout: float = 15.0) -> int | None:
    """SIGTERM the process group, SIGKILL it if it lingers; return the exit code."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # anything left in the group
    proc.log_file.close()
    if proc in _started:
        _started.remove(proc)
    return proc.returncode


def stop_all() -> None:
    for proc in reversed(list(_started)):
        stop(proc)


def has_exited(proc: subprocess.Popen) -> bool:
    """Whether `proc` has exited, leaving it unreaped: its /proc entry (a zombie) stays
    readable, final CPU times included, until reap()."""
    return os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None


def reap(proc: subprocess.Popen) -> tuple[int, float] | None:
    """(exit code, ru_maxrss in MB from wait4()) if `proc` has exited, else None.

    ru_maxrss survives exec(): it is at least the forking parent's peak RSS, so
    it is no measure of a child's own memory (sample /proc's VmHWM instead).

    Only for processes nothing else waits for (never call proc.poll() before).
    """
    pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
    if not pid:
        return None
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage.ru_maxrss / 1024


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


MEMORY_FIELDS = {
    "VmRSS": "rss_mb",
    "VmHWM": "peak_rss_mb",
    # RSS = anonymous (the process's own heap) + file-backed pages (code, and the
    # SQLite database file mapped by PRAGMA mmap_size) + shared memory.
    "RssAnon": "rss_anon_mb",
    "RssFile": "rss_file_mb",
}


def memory_mb(pid: int) -> dict:
    """Resident memory of a process in MB: now, peak, and now split by kind."""
    fields = {}
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return fields
    for line in lines:
        name, _, value = line.partition(":")
        if name in MEMORY_FIELDS:
            fields[MEMORY_FIELDS[name]] = int(value.split()[0]) / 1024
    return fields
