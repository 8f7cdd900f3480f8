"""HTTP client comparison: how many event POSTs per second one Python process sends.

`python -m bench.clients KIND URL SECONDS CONCURRENCY` prints one JSON line.
KIND is pycurl (libcurl's CurlMulti driven from one thread, as the dispatcher
does), pyreqwest (Rust reqwest bindings, asyncio), aiohttp, httpx or raw (a bare
asyncio socket loop, the ceiling of any client on this loop), the asyncio ones
with an optional `+uvloop` suffix. Each of CONCURRENCY requests in flight POSTs
the dispatcher's payload with an Idempotency-Key over a keep-alive connection,
in a closed loop, for SECONDS. The figure that chose the dispatcher's client is
`cpu_ms_per_request` (the process's user + system time per request): on a busy
machine throughput measures the neighbours, CPU per request measures the client.
"""

import asyncio
import json
import os
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


async def _pyreqwest(url: str, until: float, concurrency: int) -> int:
    from pyreqwest.client import ClientBuilder

    done = 0
    builder = ClientBuilder().max_connections(concurrency).http1_only().no_proxy()
    async with builder.build() as client:

        async def worker():
            nonlocal done
            while time.monotonic() < until:
                request = client.post(url).headers(_headers(str(uuid.uuid4()))).body_bytes(BODY)
                response = await request.build().send()
                await response.bytes()
                assert response.status == 200, response.status
                done += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done


async def _pycurl(url: str, until: float, concurrency: int) -> int:
    """Not asyncio: one thread drives CurlMulti, as broadcast/client.py does."""
    import pycurl

    multi = pycurl.CurlMulti()
    done = 0

    def start(handle) -> None:
        key = str(uuid.uuid4())
        handle.setopt(pycurl.HTTPHEADER, [f"{k}: {v}" for k, v in _headers(key).items()])
        multi.add_handle(handle)

    for _ in range(concurrency):
        handle = pycurl.Curl()
        handle.setopt(pycurl.URL, url)
        handle.setopt(pycurl.POSTFIELDS, BODY)
        handle.setopt(pycurl.PROXY, "")
        handle.setopt(pycurl.NOSIGNAL, 1)
        handle.setopt(pycurl.WRITEFUNCTION, len)  # read and drop the body
        start(handle)
    active = concurrency
    while active:
        multi.select(0.1)
        while multi.perform()[0] == pycurl.E_CALL_MULTI_PERFORM:
            pass
        while True:
            queued, ok, failed = multi.info_read()
            assert not failed, failed
            for handle in ok:
                multi.remove_handle(handle)
                assert handle.getinfo(pycurl.RESPONSE_CODE) == 200
                done += 1
                if time.monotonic() < until:
                    start(handle)
                else:
                    active -= 1
            if not queued:
                break
    return done


CLIENTS = {
    "aiohttp": _aiohttp,
    "httpx": _httpx,
    "raw": _raw,
    "pyreqwest": _pyreqwest,
    "pycurl": _pycurl,
}


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
    # The figures are out: end without the interpreter's finalization, during
    # which pyreqwest's runtime threads now and then still touch the GIL and
    # abort the process ("PyGILState_Release: thread state ... must be current"),
    # which failed the whole benchmark.
    sys.stdout.flush()
    os._exit(0)
