"""`make serve`, the production shape: gunicorn and the dispatcher, debug off, static files.

Runs the real Makefile target on a free port with its own SQLite database, as
the README says, and stops it with SIGTERM like Ctrl-C would.
"""

import os
import re
import signal
import subprocess
import time

import pytest

from tests.helpers import ROOT, free_port, wait_for
from tests.helpers import http_get as _get

pytestmark = pytest.mark.subprocess


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The base URL of a running `make serve`."""
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_"))},
        "DJANGO_SETTINGS_MODULE": "railfleet.settings",
        "DJANGO_SECRET_KEY": "test-serve-" + "k" * 50,
        "DATABASE_URL": f"sqlite:///{tmp_path_factory.mktemp('serve')}/db.sqlite3",
        "WEB_CONCURRENCY": "2",
        "COUNTER_SERVER_URL": f"http://127.0.0.1:{free_port()}/",
    }
    log = tmp_path_factory.mktemp("serve-log") / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            ["make", "--no-print-directory", "serve", f"PORT={port}"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"make serve exited with {process.returncode}:\n{log.read_text()}")
            try:
                if _get(base + "/health")[0] == 200:
                    break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail(f"make serve did not answer in 120 s:\n{log.read_text()}")
        yield base, log
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_health_endpoints_answer(served):
    base, _ = served
    status, _, body = _get(base + "/ready")
    assert status == 200
    assert body.startswith(b'{"database": "ok", "broadcast": {"pending": 0')


def test_debug_is_off(served):
    base, _ = served
    status, _, body = _get(base + "/no-such-page")
    assert status == 404
    assert b"URLconf" not in body and b"DEBUG" not in body


def test_static_files_are_served_compressed_and_cached(served):
    base, _ = served
    status, _, page = _get(base + "/admin/login/")
    assert status == 200
    css = re.search(rb'href="(/static/admin/css/base\.[0-9a-f]{12}\.css)"', page)
    assert css, "static URLs carry the manifest hash"
    status, headers, _ = _get(base + css.group(1).decode())
    assert status == 200
    assert "immutable" in headers["Cache-Control"]


def test_web_workers_and_dispatcher_run(served):
    _, log = served

    # The dispatcher, and the second worker, may start after the web answers: give them time.
    def booted() -> bool:
        text = log.read_text()
        return "Dispatcher" in text and text.count("Booting worker") >= 2

    wait_for(booted, timeout=60, interval=0.2, message="the dispatcher and two workers")
    text = log.read_text()
    assert text.count("Booting worker") >= 2
    assert "Dispatcher" in text
    assert "broadcast.1 started" in text and "web.1 started" in text
