"""railfleet/devrun.py: closing the terminal of `make run` (SIGHUP) stops all its processes.

Runs the real `make run` on free ports with its own SQLite database, in a
session of its own as a terminal's, and sends SIGHUP to its process group as
the kernel does when the terminal closes.
"""

import contextlib
import os
import re
import signal
import subprocess

import pytest

from tests.helpers import ROOT, free_port, http_get, port_is_free, wait_for

pytestmark = [pytest.mark.subprocess, pytest.mark.e2e]


def _answers(url: str) -> bool:
    try:
        return http_get(url, timeout=2)[0] == 200
    except OSError:
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_sighup_stops_the_web_server_dispatcher_and_counter_server(tmp_path):
    port, counter_port = free_port(), free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_"))},
        "DJANGO_SETTINGS_MODULE": "railfleet.settings",
        "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3",
    }
    log = tmp_path / "run.log"
    with log.open("wb") as out:
        make = subprocess.Popen(
            ["make", "--no-print-directory", "run", f"PORT={port}", f"COUNTER_PORT={counter_port}"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        for url in (f"http://127.0.0.1:{port}/health", f"http://127.0.0.1:{counter_port}/"):
            wait_for(lambda url=url: _answers(url), timeout=120, interval=0.5, message=url)
        started = re.compile(r"\.1 started \(pid=(\d+)\)")
        # honcho prints each "started" line as it hears of it: wait for all three.
        wait_for(lambda: len(started.findall(log.read_text())) >= 3, timeout=60, message="the log")
        pids = [int(p) for p in started.findall(log.read_text())]
        assert len(pids) == 3, log.read_text()

        os.killpg(make.pid, signal.SIGHUP)

        wait_for(lambda: port_is_free(port) and port_is_free(counter_port), timeout=30)
        wait_for(lambda: not any(_alive(pid) for pid in pids), timeout=30, message=str(pids))
    finally:
        # If the test failed: what this test started and is still running (each its own group).
        groups = [make.pid, *map(int, re.findall(r"pid=(\d+)", log.read_text()))]
        for group in filter(_alive, groups):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(group, signal.SIGKILL)
        make.wait(timeout=30)
