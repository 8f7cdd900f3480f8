"""A counter server answering 200 only after 2 s: `python -m bench.slow_server PORT`."""

import asyncio
import sys

from aiohttp import web

DELAY = 2.0


async def answer(request: web.Request) -> web.Response:
    await request.read()
    await asyncio.sleep(DELAY)
    return web.json_response({"status": "counted"})


def main() -> None:
    app = web.Application()
    app.router.add_route("*", "/", answer)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)


if __name__ == "__main__":
    main()
