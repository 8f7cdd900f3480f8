"""A faulty destination for the bench: `python -m bench.slow_server PORT [options]`.

By default a counter server answering 200 only after 2 s (target 4, "slow").
`--delay S` sets the wait; `--status 503 --retry-after S` answers that status at
once (after `--delay`, if given) with a Retry-After header, as an overloaded
destination does (target 12).
"""

import argparse
import asyncio

from aiohttp import web

DELAY = 2.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("port", type=int)
    parser.add_argument("--delay", type=float, help=f"seconds before answering (default {DELAY:g}, "
                        "or 0 with --status)")  # fmt: skip
    parser.add_argument("--status", type=int, default=200)
    parser.add_argument("--retry-after", type=int, help="a Retry-After header, in seconds")
    args = parser.parse_args()
    delay = args.delay if args.delay is not None else (DELAY if args.status == 200 else 0.0)
    headers = {"Retry-After": str(args.retry_after)} if args.retry_after is not None else {}

    async def answer(request: web.Request) -> web.Response:
        await request.read()
        await asyncio.sleep(delay)
        if args.status == 200:
            return web.json_response({"status": "counted"})
        return web.json_response({"status": "overloaded"}, status=args.status, headers=headers)

    app = web.Application()
    app.router.add_route("*", "/", answer)
    web.run_app(app, host="127.0.0.1", port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
