"""HTTP client comparison: how many event POSTs per second one Python process sends.

`python -m bench.clients KIND URL SECONDS CONCURRENCY` prints one JSON line.
KIND is aiohttp, httpx or raw (a bare asyncio socket loop, the ceiling of any
client on this loop), with an optional `+uvloop` suffix. Each of CONCURRENCY
coroutines POSTs the dispatcher's payload with an Idempotency-Key over a
keep-alive connection, in a closed loop, for SECONDS.
"""

import asyncio
import json
import resource
import sys
import time
import uuid

BODY = json.dumps({"user": 1, "action": "create"}, separators=(",", ":")).encode()


def _headers(key: str) -> dict:
    return {"Content-Type": "application/json", "Idempotency-Key": key}


async def _aiohttp(url: str, until: float, concurrency: int) -> int:
    import aiohttp

    done = 0
    connector = aiohttp.TCPConnector(limit=concurrency, keepalive_timeout=60)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker():
            nonlocal done
            while time.monotonic() < until:
                async with session.post(url, data=BODY, headers=_headers(str(uuid.uuid4()))) as r:
                    await r.text()
                    assert r.status == 200, r.status
                done += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done


async def _httpx(url: str, until: float, concurrency: int) -> int:
    import httpx

    done = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits) as client:

        async def worker():
            nonlocal done
            while time.monotonic() < until:
                r = await client.post(url, content=BODY, headers=_headers(str(uuid.uuid4())))
                assert r.status_code == 200, r.status_code
                done += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done


async def _raw(url: str, until: float, concurrency: int) -> int:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host, port = parts.hostname, parts.port or 80
    done = 0

    async def worker():
        nonlocal done
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while time.monotonic() < until:
                writer.write(
                    b"POST / HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\n"
                    b"Idempotency-Key: %s\r\nContent-Length: %d\r\n\r\n%s"
                    % (host.encode(), port, str(uuid.uuid4()).encode(), len(BODY), BODY)
                )
                head = await reader.readuntil(b"\r\n\r\n")
                assert head.startswith(b"HTTP/1.1 200"), head[:40]
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                await reader.readexactly(length)
                done += 1
        finally:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done


CLIENTS = {"aiohttp": _aiohttp, "httpx": _httpx, "raw": _raw}


def main() -> None:
    kind, url, seconds, concurrency = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
    name, _, loop = kind.partition("+")
    if loop == "uvloop":
        import uvloop

        uvloop.install()
    start = time.monotonic()
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    done = asyncio.run(CLIENTS[name](url, start + seconds, concurrency))
    elapsed = time.monotonic() - start
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    print(
        json.dumps(
            {
                "client": kind,
                "requests": done,
                "seconds": elapsed,
                "rps": done / elapsed,
                "cpu_ms_per_request": 1000 * cpu / max(done, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
