"""Helpers shared by the tests and the benchmarks.

Free ports, HTTP Basic credentials, polling, and the real processes of end-to-end
and fault tests: the Deno counter server and dispatchers.
"""

import base64
import datetime
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from django.db import connection, transaction

ROOT = Path(__file__).resolve().parents[1]
# The monitoring credential the tests set as METRICS_TOKEN (the `with_token` fixture).
METRICS_TOKEN = "metrics-token-" + "x" * 20
DENO = ROOT / "node_modules" / ".bin" / "deno"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def basic_auth(username: str, password: str) -> str:
    """The Authorization header value of HTTP Basic credentials."""
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def basic_client(username: str, password: str):
    """A DRF test client that sends these HTTP Basic credentials, as a script would."""
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=basic_auth(username, password))
    return client


def builtin_destination():
    """The built-in destination (COUNTER_SERVER_URL's), which every test database has."""
    from broadcast.models import Destination

    return Destination.objects.builtin().get()


def counter_deliveries():
    """The built-in destination's deliveries: with no other destination, one per event."""
    from broadcast.models import Delivery, Destination

    return Delivery.objects.filter(destination__in=Destination.objects.builtin())


def http_get(url: str, timeout: float = 10) -> tuple[int, dict, bytes]:
    """GET `url`: its status, headers and body, error statuses included (no exception)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def port_is_free(port: int) -> bool:
    """Whether nothing listens on 127.0.0.1:`port` any more."""
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def wait_for(condition, *, timeout: float, interval: float = 0.05, message: str = "") -> None:
    """Poll `condition` until it is true; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message or condition}")
        time.sleep(interval)


class CounterServer:
    """counters_server.js under the real Deno, on a port of its own.

    `data`: its SQLite file (`--data`, with read and write permission on it only);
    `dedupe_days`: `--dedupe-days`; `env`: variables added to its environment, readable by
    it (`--allow-env`) unless `allow_env` is false.
    """

    def __init__(
        self,
        port: int,
        log_path: Path,
        *,
        data: Path | None = None,
        dedupe_days: float | None = None,
        env: dict[str, str] | None = None,
        allow_env: bool = True,
    ) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}/"
        self.log_path = log_path
        self.data = data
        self.dedupe_days = dedupe_days
        self.env = env or {}
        self.allow_env = allow_env
        self.process: subprocess.Popen | None = None

    def command(self) -> list[str]:
        """The deno command line, with the least permissions the options need."""
        permissions = ["--allow-net"]
        options = [str(self.port)]
        if self.data is not None:
            permissions += [f"--allow-read={self.data}", f"--allow-write={self.data}"]
            options += ["--data", str(self.data)]
        if self.env and self.allow_env:
            permissions.append("--allow-env=" + ",".join(self.env))
        if self.dedupe_days is not None:
            options += ["--dedupe-days", str(self.dedupe_days)]
        return [str(DENO), "run", *permissions, "counters_server.js", *options]

    def start(self) -> "CounterServer":
        assert DENO.exists(), "Deno is missing: run `make install` (npm ci)"
        log = self.log_path.open("a")
        self.process = subprocess.Popen(
            self.command(),
            cwd=ROOT,
            env={**os.environ, **self.env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        wait_for(self._answers, timeout=30, message="the counter server to listen")
        return self

    def stop(self, sig: int = signal.SIGTERM) -> int | None:
        """Stop it with `sig` (SIGKILL: as a crash would); its exit code."""
        if self.process is None:
            return None
        return stop(self.process, sig)

    def _answers(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"the counter server exited at start:\n{self.log()}")
        try:
            self.counts()
        except OSError:
            return False
        return True

    def counts(self) -> dict:
        with urllib.request.urlopen(self.url, timeout=2) as response:
            return json.load(response)

    def log(self) -> str:
        """Its log so far. Buffered (flushed at least every 100 ms and at exit): while it
        runs, poll with `wait_for` for lines expected; `final_log()` for absent ones."""
        return self.log_path.read_text()

    def final_log(self) -> str:
        """Stop it (SIGTERM, which flushes its buffered log) and return its whole log."""
        self.stop()
        return self.log()

    def arrival(self, key) -> datetime.datetime | None:
        """When the event with Idempotency-Key `key` was counted (its log line), if it was.

        A read of the log as it is: poll it with `wait_for` while the server runs.
        """
        for line in self.log().splitlines():
            if line.endswith(f"(key {key})"):
                return datetime.datetime.fromisoformat(line.split(" ", 1)[0])
        return None


def test_database_url() -> str:
    """DATABASE_URL of the test database, for processes started by a test."""
    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{settings['NAME']}"
    return (
        f"postgres://{settings['USER']}:{settings['PASSWORD']}@{settings['HOST'] or '127.0.0.1'}"
        f":{settings['PORT'] or 5432}/{settings['NAME']}"
    )


class DatabaseThread(threading.Thread):
    """`target()` in a thread, on a database connection of its own, closed when it ends.

    `connected` is set once the connection is open, with `backend_pid` its
    PostgreSQL backend (for `waits_on_a_lock`); `result()` joins the thread and
    gives what `target` returned, or raises what it raised.
    """

    def __init__(self, target) -> None:
        super().__init__(daemon=True)
        self.work = target
        self.connected = threading.Event()
        self.backend_pid: int | None = None
        self.value = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            connection.ensure_connection()
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_backend_pid()")
                    self.backend_pid = cursor.fetchone()[0]
            self.connected.set()
            self.value = self.work()
        except BaseException as error:  # handed to the test by result()
            self.error = error
        finally:
            connection.close()

    def result(self, timeout: float = 60):
        """Wait (at most `timeout` seconds) for the thread; its target's return value."""
        self.join(timeout)
        assert not self.is_alive(), f"the thread still runs after {timeout}s"
        if self.error is not None:
            raise self.error
        return self.value


def waits_on_a_lock(backend_pid: int | None) -> bool:
    """Whether that PostgreSQL backend is waiting for a lock (a row another holds, say)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [backend_pid])
        row = cursor.fetchone()
    return row is not None and row[0] == "Lock"


def second_behind_first(first, second, *, timeout: float = 60) -> tuple:
    """Run `second()` while `first()`'s transaction holds its locks; both results.

    `first()` runs in a thread inside `transaction.atomic()`, kept open until
    `second()`, in another thread and connection, waits for a lock (PostgreSQL:
    a row `first` locked); then `first` commits and `second` goes on. The order
    is made by events and the server's own lock wait, never by sleeping.
    """
    holding, release = threading.Event(), threading.Event()

    def hold():
        with transaction.atomic():
            value = first()
            holding.set()
            release.wait(timeout)
        return value

    first_thread, second_thread = DatabaseThread(hold), DatabaseThread(second)
    try:
        first_thread.start()
        if not holding.wait(timeout):
            first_thread.result(timeout)  # raises what first() raised, if it did
            raise AssertionError(f"first() did not end within {timeout}s")
        second_thread.start()
        assert second_thread.connected.wait(timeout), "the second thread did not connect"
        pid = second_thread.backend_pid
        wait_for(lambda: waits_on_a_lock(pid), timeout=timeout, message="second() to wait")
    finally:
        release.set()
    return first_thread.result(timeout), second_thread.result(timeout)


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
    """Send `sig` to `process` unless it has exited; its exit code."""
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
