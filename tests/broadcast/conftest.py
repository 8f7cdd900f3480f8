"""A real HTTP server with scripted answers, standing in for the counter server.

It runs aiohttp's web server on a free loopback port in a thread of its own,
so the dispatcher under test talks real HTTP to it.
"""

import asyncio
import datetime
import signal
import threading
import time
from dataclasses import dataclass, field

import pytest
from aiohttp import web
from django.utils import timezone

from broadcast.conf import Config
from broadcast.dispatch.loop import Dispatcher
from tests.helpers import basic_client, start_dispatcher, stop


@dataclass
class Answer:
    status: int = 200
    headers: dict = field(default_factory=dict)
    delay: float = 0.0
    body: bytes | None = None  # None: {"status": <status>}


@dataclass
class Received:
    headers: dict
    body: bytes
    peer: tuple = ()  # the client's (address, port): one per connection
    at: float = 0.0  # time.monotonic() of its arrival


class ScriptedServer:
    """Answers each POST with the next scripted Answer (200 once the script runs out)."""

    def __init__(self) -> None:
        self.script: list[Answer] = []
        self.received: list[Received] = []
        self.in_flight = 0
        self.most_in_flight = 0  # requests answered at the same time, at most
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def _handle(self, request: web.Request) -> web.Response:
        peer = request.transport.get_extra_info("peername")
        body = await request.read()
        self.received.append(Received(dict(request.headers), body, peer, time.monotonic()))
        answer = self.script.pop(0) if self.script else Answer()
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            if answer.delay:
                await asyncio.sleep(answer.delay)
        finally:
            self.in_flight -= 1
        if answer.body is not None:
            return web.Response(body=answer.body, status=answer.status, headers=answer.headers)
        return web.json_response(
            {"status": answer.status}, status=answer.status, headers=answer.headers
        )

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/", self._handle)
        # Stopped at once at the end of a test, its answers still delayed (a slow server's)
        # cancelled rather than awaited.
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}/"

    def start(self) -> None:
        threading.Thread(target=self._loop.run_forever, daemon=True).start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)


class FakeClock:
    """The dispatcher's injected clock: stands still until the test moves it."""

    def __init__(self, now: datetime.datetime | None = None) -> None:
        self.now = now or timezone.now()

    def __call__(self) -> datetime.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += datetime.timedelta(seconds=seconds)


def no_jitter() -> float:
    """The retries' random source, in the middle of the jitter range: exactly the backoff."""
    return 0.5


@pytest.fixture
def staff(staff_user):
    """The API as a staff user (not a superuser), with HTTP Basic credentials."""
    return basic_client("carol", "carol-password")


@pytest.fixture
def alice(user):
    """The API as a user who is not staff."""
    return basic_client("alice", "alice-password")


@pytest.fixture
def dispatchers(tmp_path):
    """Start dispatcher processes (`manage.py broadcast`); every one still running is
    stopped at the end."""
    started = []

    def start(url: str, **env):
        process = start_dispatcher(url, tmp_path / f"dispatcher-{len(started)}.log", **env)
        started.append(process)
        return process

    yield start
    for process in started:
        stop(process, signal.SIGKILL)


@pytest.fixture
def scripted_server():
    server = ScriptedServer()
    server.start()
    yield server
    server.stop()


def log_attempt(
    delivery,
    number: int,
    status_code: int | None,
    *,
    started_at: datetime.datetime,
    duration_ms: int,
    **fields,
):
    """An attempt of `delivery` in the attempt log, as a dispatcher records one: succeeded
    for a 2xx; no status for no answer. `fields`: its error and response."""
    from broadcast.models import Attempt

    return Attempt.objects.create(
        delivery=delivery,
        destination_id=delivery.destination_id,
        number=number,
        started_at=started_at,
        duration_ms=duration_ms,
        status_code=status_code,
        succeeded=status_code is not None and 200 <= status_code < 300,
        **fields,
    )


def make_config(url: str, **overrides) -> Config:
    """A dispatcher configuration for tests: fast polls, short timeouts."""
    values = {
        "url": url,
        "concurrency": 8,
        "batch_size": 50,
        "poll_interval": 0.01,
        "lease": 60.0,
        "request_timeout": 2.0,
        "retry_base": 1.0,
        "retry_max": 300.0,
    }
    return Config(**{**values, **overrides})


def deliver_once(url: str, **overrides) -> Dispatcher:
    """Run one dispatcher until nothing is due, as `manage.py broadcast --once` does."""
    dispatcher = Dispatcher(make_config(url, **overrides))
    dispatcher.run(once=True)
    return dispatcher
