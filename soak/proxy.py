"""A fault-injecting HTTP proxy between the dispatchers and the counter server.

It forwards each POST (body and Idempotency-Key) to the counter server and
records it, so the ledger knows exactly what reached the counter server and what
it answered. On command it answers an error status without forwarding (with a
Retry-After when asked: the dispatcher then holds that destination back), answers
only after a delay longer than the dispatchers' request timeout (the counter
server has then counted the event: the retry must be recognised as a duplicate),
or refuses connections. Each destination has its own proxy. Built on aiohttp:
only the fault logic is ours.
"""

import asyncio
import threading
import time
from dataclasses import dataclass

import aiohttp
from aiohttp import web

PASS = "pass"
REFUSE = "refuse"
SLOW = "slow"
HOP_HEADERS = {"host", "content-length", "connection", "keep-alive", "transfer-encoding"}


@dataclass(frozen=True, slots=True)
class Forwarded:
    """One request the counter server received through the proxy, and its answer."""

    at: float  # time.time()
    key: str | None
    body: bytes
    status: int  # the counter server's; 0 when it could not be reached


class FaultProxy:
    """The proxy, on its own event loop in a thread; `set_mode` switches its behaviour."""

    def __init__(self, upstream: str, port: int, *, slow_seconds: float) -> None:
        self.upstream = upstream
        self.port = port
        self.url = f"http://127.0.0.1:{port}/"
        self.slow_seconds = slow_seconds
        self.forwarded: list[Forwarded] = []
        self.injected = 0  # answers made up by the proxy (error statuses)
        self._mode: tuple[str, int | None] = (PASS, None)
        self._retry_after: int | None = None  # seconds, with an injected status
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._session: aiohttp.ClientSession | None = None

    # --- control, from any thread -------------------------------------------------

    def start(self) -> "FaultProxy":
        """Listen on 127.0.0.1:port, passing every request."""
        threading.Thread(target=self._loop.run_forever, name="soak-proxy", daemon=True).start()
        self._call(self._start())
        return self

    def stop(self) -> None:
        """Close the listener, the connections and the loop."""
        self._call(self._stop())
        self._loop.call_soon_threadsafe(self._loop.stop)

    def set_mode(
        self, mode: str, status: int | None = None, retry_after: int | None = None
    ) -> None:
        """PASS, REFUSE, SLOW, or "status" with the status to answer (503, 500, 429...)
        and, if given, a Retry-After (seconds) with it."""
        self._call(self._set_mode(mode, status, retry_after))

    @property
    def mode(self) -> tuple[str, int | None]:
        return self._mode

    def _call(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=30)

    # --- on the proxy's loop --------------------------------------------------------

    async def _start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        app = web.Application()
        app.router.add_post("/", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await self._listen()

    async def _listen(self) -> None:
        assert self._runner is not None, "started first"
        self._site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
        await self._site.start()

    async def _stop(self) -> None:
        assert self._runner is not None and self._session is not None, "started first"
        await self._runner.cleanup()
        await self._session.close()

    async def _set_mode(self, mode: str, status: int | None, retry_after: int | None) -> None:
        refusing = self._mode[0] == REFUSE
        self._mode = (mode, status)
        self._retry_after = retry_after
        if mode == REFUSE and not refusing:
            assert self._site is not None, "started first"
            await self._site.stop()  # new connections are refused; kept-alive ones are cut
        elif mode != REFUSE and refusing:
            await self._listen()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        mode, status = self._mode
        body = await request.read()
        if mode == REFUSE:
            if request.transport is not None:
                request.transport.close()  # a kept-alive connection opened before the refusal
            return web.Response(status=503)  # never reaches the client
        if mode == "status" and status is not None:
            self.injected += 1
            retry_after = self._retry_after
            headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
            return web.json_response(
                {"error": "injected by the soak"}, status=status, headers=headers
            )
        key = request.headers.get("Idempotency-Key")
        answer, text = await self._forward(key, body, request.headers)
        if mode == SLOW:
            await asyncio.sleep(self.slow_seconds)
        return web.Response(status=answer, text=text, content_type="application/json")

    async def _forward(self, key: str | None, body: bytes, received) -> tuple[int, str]:
        # The event's own headers (Idempotency-Key, signatures...), not the connection's.
        headers = {k: v for k, v in received.items() if k.lower() not in HOP_HEADERS}
        assert self._session is not None, "started first"
        try:
            async with self._session.post(self.upstream, data=body, headers=headers) as response:
                text = await response.text()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            status, text = 0, f'{{"error": "counter server unreachable: {type(exc).__name__}"}}'
        self.forwarded.append(Forwarded(time.time(), key, body, status))
        return (status or 502), text
