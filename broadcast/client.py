"""The HTTP client that POSTs deliveries to their destinations: libcurl's multi interface.

pycurl (libcurl) rather than pyreqwest or aiohttp: measured with
`bench/clients.py` (docs/broadcast.md, "Choosing the HTTP client"), it spends
the least CPU per small POST over keep-alive connections, several times less
than aiohttp, and CPU per request is what bounds a dispatcher. libcurl does
the HTTP/1.1: connections, keep-alive pooling, timeouts, parsing. What is
written here is only the driving: a fixed set of reusable handles (one per
request in flight, so at most `max_connections` at once), started by `send()`
and collected by `wait()`, which the dispatcher calls from its one loop thread.
"""

import select
from dataclasses import dataclass, field
from typing import Any

import pycurl

from broadcast.dispatch.policy import Answer
from broadcast.models import RESPONSE_EXCERPT_BYTES
from broadcast.retry import parse_retry_after

CONTENT_TYPE = "Content-Type: application/json"
# libcurl's transport errors that mean "could not reach the server".
CONNECT_ERRORS = frozenset({pycurl.E_COULDNT_CONNECT, pycurl.E_COULDNT_RESOLVE_HOST})


@dataclass(slots=True)
class _Answer:
    """A handle's answer: its header lines, and the start of its body (at most
    RESPONSE_EXCERPT_BYTES: the attempt log's excerpt, and a failure's explanation)."""

    headers: list[bytes] = field(default_factory=list)
    body: bytearray = field(default_factory=bytearray)

    def clear(self) -> None:
        self.headers.clear()
        self.body.clear()

    def write(self, data: bytes) -> None:
        """libcurl's write callback: keep the start of the body, read and drop the rest."""
        room = RESPONSE_EXCERPT_BYTES - len(self.body)
        if room > 0:
            self.body += data[:room]

    @property
    def excerpt(self) -> str:
        return as_text(bytes(self.body))


def as_text(raw: bytes) -> str:
    """Bytes as received, as text a database column takes: UTF-8, anything else (a
    character cut at the excerpt's end) replaced, and no NUL, which PostgreSQL's text refuses."""
    return raw.decode(errors="replace").replace("\0", "\ufffd")


def http_answer(status: int, retry_after: str | None, body: str, duration: float) -> Answer:
    """An HTTP answer as the delivery policy reads it (broadcast/dispatch/policy.py)."""
    if 200 <= status < 300:
        return Answer(status, response=body, duration=duration)
    error = f"HTTP {status}: {body[:200]}".strip()
    return Answer(status, error, parse_retry_after(retry_after), body, duration)


def transport_error(errno: int, message: str, duration: float) -> Answer:
    """A request that got no answer (refused, reset, timed out): status 0."""
    if errno == pycurl.E_OPERATION_TIMEDOUT:
        return Answer(0, "timed out", duration=duration)
    kind = "ConnectError" if errno in CONNECT_ERRORS else f"curl error {errno}"
    return Answer(0, f"{kind}: {as_text(message.encode())}", duration=duration)


class CounterClient:
    """POSTs deliveries over libcurl's pool of keep-alive connections, driven by the caller.

    `send(url, key, body, token)` starts a request on a free handle (`free` says
    how many there are); `wait(timeout, wakeup_fd)` waits for network activity,
    the timeout or `wakeup_fd` to become readable, and returns the finished
    requests as (token, Answer) pairs. Use as a context manager: it closes the handles.
    """

    def __init__(self, *, timeout: float, max_connections: int) -> None:
        self._timeout_ms = max(1, int(timeout * 1000))
        self._multi = pycurl.CurlMulti()
        # Each handle writes its answer into its own buffers, set up once.
        self._answers: dict[pycurl.Curl, _Answer] = {}
        self._idle: list[pycurl.Curl] = []
        self._busy: dict[pycurl.Curl, Any] = {}
        self._unstarted = False  # requests added since libcurl last ran
        self.reserve(max_connections)

    def reserve(self, connections: int) -> None:
        """At least `connections` requests may be in flight at once (one handle each)."""
        have = len(self._idle) + len(self._busy)
        if connections <= have:
            return
        self._idle += [self._handle() for _ in range(connections - have)]
        self._multi.setopt(pycurl.M_MAX_TOTAL_CONNECTIONS, connections)
        self._multi.setopt(pycurl.M_MAXCONNECTS, connections)

    def _handle(self) -> pycurl.Curl:
        handle = pycurl.Curl()
        answer = self._answers[handle] = _Answer()
        handle.setopt(pycurl.TIMEOUT_MS, self._timeout_ms)
        handle.setopt(pycurl.NOSIGNAL, 1)  # no SIGALRM: the loop is not the main thread in tests
        handle.setopt(pycurl.PROXY, "")  # never an http_proxy from the environment
        handle.setopt(pycurl.FOLLOWLOCATION, 0)  # a redirect is an answer, not followed
        handle.setopt(pycurl.HEADERFUNCTION, answer.headers.append)
        handle.setopt(pycurl.WRITEFUNCTION, answer.write)
        return handle

    def __enter__(self) -> "CounterClient":
        return self

    def __exit__(self, *exc_info) -> None:
        for handle in list(self._busy):
            self._multi.remove_handle(handle)
        for handle in [*self._idle, *self._busy]:
            handle.close()
        self._busy.clear()
        self._idle.clear()
        self._answers.clear()
        self._multi.close()

    @property
    def free(self) -> int:
        """How many more requests may start now."""
        return len(self._idle)

    @property
    def in_flight(self) -> int:
        return len(self._busy)

    def send(
        self, url: str, key: str, body: bytes, token: Any, headers: list[str] | None = None
    ) -> None:
        """Start POSTing `body` to `url` with `key` as Idempotency-Key (and `headers`,
        "Name: value"). `wait()` returns `token` with its outcome.
        """
        handle = self._idle.pop()
        self._answers[handle].clear()
        handle.setopt(pycurl.URL, url)
        lines = [CONTENT_TYPE, "Idempotency-Key: " + key]
        if headers:
            lines += headers
        handle.setopt(pycurl.HTTPHEADER, lines)
        handle.setopt(pycurl.POSTFIELDS, body)
        self._busy[handle] = token
        self._multi.add_handle(handle)
        self._unstarted = True

    def wait(
        self, timeout: float, wakeup_fd: int, *, answers: bool = True
    ) -> tuple[list[tuple[Any, Answer]], bool]:
        """Wait at most `timeout` s; return the requests finished and whether `wakeup_fd` woke us.

        Requests sent since the last wait are written first, without waiting.
        With `answers` false, an answer arriving does not end the wait (the
        requests are still written, connected and timed out as they need): the
        caller collects the answers in at its next wait, so that a trickle of
        them costs one wake-up rather than one each.
        """
        multi = self._multi
        if self._unstarted:
            # Their requests are written now (on a kept-alive connection, at once),
            # not at a wake-up of their own when select() finds the sockets writable.
            running = self._perform()
            if answers and running < len(self._busy):
                timeout = 0  # some ended meanwhile (timed out, refused): return them now
        curl_timeout = multi.timeout()  # ms libcurl wants to be called back in, -1 for none
        if curl_timeout >= 0:
            timeout = min(timeout, curl_timeout / 1000)
        # select(): libcurl's own fd_set API, so every descriptor is below FD_SETSIZE anyway.
        readers, writers, errors = multi.fdset()
        if self._busy and not (readers or writers):
            # libcurl is busy with nothing a select() can watch: its manual
            # says to call it again soon anyway (100 ms, unless it asks sooner).
            timeout = min(timeout, 0.1)
        watched = [*readers, wakeup_fd] if answers else [wakeup_fd]
        readable, _, _ = select.select(watched, writers, errors, max(timeout, 0))
        self._perform()
        return self._finished(), wakeup_fd in readable

    def _perform(self) -> int:
        """Let libcurl do what it can now (write, read, connect, time out); the number
        of requests still running."""
        self._unstarted = False
        while True:
            status, running = self._multi.perform()
            if status != pycurl.E_CALL_MULTI_PERFORM:
                return running

    def _finished(self) -> list[tuple[Any, Answer]]:
        finished = []
        while True:
            queued, succeeded, failed = self._multi.info_read()
            for handle in succeeded:
                finished.append((self._release(handle), self._answer(handle)))
            for handle, errno, message in failed:
                duration = handle.getinfo(pycurl.TOTAL_TIME)
                finished.append((self._release(handle), transport_error(errno, message, duration)))
            if not queued:
                return finished

    def _release(self, handle: pycurl.Curl) -> Any:
        self._multi.remove_handle(handle)
        self._idle.append(handle)
        return self._busy.pop(handle)

    def _answer(self, handle: pycurl.Curl) -> Answer:
        status = handle.getinfo(pycurl.RESPONSE_CODE)
        answer, duration = self._answers[handle], handle.getinfo(pycurl.TOTAL_TIME)
        retry_after = None
        if not 200 <= status < 300:
            for line in answer.headers:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"retry-after":
                    retry_after = value.decode("latin-1").strip()
        return http_answer(status, retry_after, answer.excerpt, duration)
