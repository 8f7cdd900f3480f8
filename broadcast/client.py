"""The HTTP client that POSTs events to the counter server.

aiohttp rather than httpx: in our measurement (BENCHMARKS.md) it sustains
several times more small POSTs per second on one core over keep-alive
connections, which is what draining a backlog needs.
"""

import json
from dataclasses import dataclass
from enum import StrEnum

import aiohttp

from broadcast.retry import parse_retry_after

# 408 Request Timeout and 429 Too Many Requests say "later", as do 5xx.
RETRYABLE_STATUSES = frozenset({408, 429})


class Result(StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"
    FAILED = "failed"  # permanent: retrying the same request cannot succeed


@dataclass(frozen=True, slots=True)
class Outcome:
    result: Result
    error: str = ""
    retry_after: float | None = None


DELIVERED = Outcome(Result.DELIVERED)


def classify(status: int, retry_after: str | None, body: str) -> Outcome:
    """Turn the counter server's answer into delivered / retry / permanent failure."""
    if 200 <= status < 300:
        return DELIVERED
    error = f"HTTP {status}: {body[:200]}".strip()
    if status in RETRYABLE_STATUSES or status >= 500:
        return Outcome(Result.RETRY, error, parse_retry_after(retry_after))
    return Outcome(Result.FAILED, error)


class CounterClient:
    """POSTs events over a pool of keep-alive connections. Use as an async context manager."""

    def __init__(self, url: str, *, timeout: float, max_connections: int) -> None:
        self.url = url
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> "CounterClient":
        connector = aiohttp.TCPConnector(limit=self._max_connections, keepalive_timeout=60)
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=self._timeout, raise_for_status=False
        )
        return self

    async def __aexit__(self, *exc_info) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def send(self, *, key: str, payload: dict) -> Outcome:
        """POST one event; never raises for network trouble, it becomes a RETRY outcome."""
        assert self._session is not None, "use CounterClient as an async context manager"
        headers = {"Content-Type": "application/json", "Idempotency-Key": key}
        body = json.dumps(payload, separators=(",", ":")).encode()
        try:
            async with self._session.post(
                self.url, data=body, headers=headers, allow_redirects=False
            ) as response:
                text = await response.text(errors="replace")
                return classify(response.status, response.headers.get("Retry-After"), text)
        except TimeoutError:
            return Outcome(Result.RETRY, "timed out")
        except aiohttp.ClientError as exc:
            return Outcome(Result.RETRY, f"{type(exc).__name__}: {exc}")
