"""Helpers shared by the tests and the benchmarks.

Free ports, HTTP Basic credentials, polling, and the real processes of end-to-end
and fault tests: the Deno counter server and dispatchers.
"""

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from django.db import connection

ROOT = Path(__file__).resolve().parents[1]
DENO = ROOT / "node_modules" / ".bin" / "deno"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def basic_auth(username: str, password: str) -> str:
    """The Authorization header value of HTTP Basic credentials."""
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def wait_for(condition, *, timeout: float, interval: float = 0.05, message: str = "") -> None:
    """Poll `condition` until it is true; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message or condition}")
        time.sleep(interval)


class CounterServer:
    """counters_server.js under the real Deno, on a port of its own."""

    def __init__(self, port: int, log_path: Path) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}/"
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    def start(self) -> "CounterServer":
        assert DENO.exists(), "Deno is missing: run `make install` (npm ci)"
        log = self.log_path.open("a")
        self.process = subprocess.Popen(
            [str(DENO), "run", "--allow-net", "counters_server.js", str(self.port)],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        wait_for(self._answers, timeout=30, message="the counter server to listen")
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)

    def _answers(self) -> bool:
        try:
            self.counts()
        except OSError:
            return False
        return True

    def counts(self) -> dict:
        with urllib.request.urlopen(self.url, timeout=2) as response:
            return json.load(response)

    def log(self) -> str:
        return self.log_path.read_text()


def test_database_url() -> str:
    """DATABASE_URL of the test database, for processes started by a test."""
    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{settings['NAME']}"
    return (
        f"postgres://{settings['USER']}:{settings['PASSWORD']}@{settings['HOST'] or '127.0.0.1'}"
        f":{settings['PORT'] or 5432}/{settings['NAME']}"
    )


def start_dispatcher(url: str, log_path: Path, **env: str) -> subprocess.Popen:
    """`manage.py broadcast` in its own process, on the test database."""
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "railfleet.settings",
        "DATABASE_URL": test_database_url(),
        "COUNTER_SERVER_URL": url,
        "BROADCAST_POLL_INTERVAL": "0.01",
        "BROADCAST_RETRY_BASE_SECONDS": "0.2",
        "BROADCAST_RETRY_MAX_SECONDS": "1",
        **env,
    }
    return subprocess.Popen(
        [sys.executable, "manage.py", "broadcast"],
        cwd=ROOT,
        env=environment,
        stdout=log_path.open("a"),
        stderr=subprocess.STDOUT,
    )


def stop(process: subprocess.Popen, sig: int = signal.SIGTERM) -> int:
    if process.poll() is None:
        process.send_signal(sig)
    return process.wait(timeout=30)


def http_request(
    url: str, *, method: str = "GET", headers: dict | None = None, body: bytes | None = None
) -> tuple[int, dict, bytes]:
    """One HTTP request: (status, headers, body), error statuses included."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


class WebServer:
    """The web app under gunicorn (Procfile's configuration module), debug off, on its own port."""

    def __init__(self, database_url: str, log_path: Path, *, workers: int = 1, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.workers = workers
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PROMETHEUS"))},
            "DJANGO_SETTINGS_MODULE": "railfleet.settings",
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": "test-web-server-" + "k" * 50,
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DATABASE_URL": database_url,
            **env,
        }
        self.process: subprocess.Popen | None = None

    def start(self) -> "WebServer":
        gunicorn = Path(sys.executable).with_name("gunicorn")
        self.process = subprocess.Popen(
            [str(gunicorn), "railfleet.wsgi", "--config", "python:railfleet.gunicorn",
             "--bind", f"127.0.0.1:{self.port}", "--workers", str(self.workers),
             "--no-control-socket"],
            cwd=ROOT,
            env=self.env,
            stdout=self.log_path.open("a"),
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        wait_for(self._answers, timeout=60, interval=0.1, message="gunicorn to answer /health")
        return self

    def _answers(self) -> bool:
        assert self.process.poll() is None, f"gunicorn exited:\n{self.log()}"
        try:
            return self.request("/health")[0] == 200
        except OSError:
            return False

    def request(self, path: str, **kwargs) -> tuple[int, dict, bytes]:
        return http_request(self.url + path, **kwargs)

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)

    def log(self) -> str:
        return self.log_path.read_text()
