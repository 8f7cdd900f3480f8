"""Run a broadcast dispatcher: deliver outbox events to the counter server."""

import asyncio
import signal

import uvloop
from django.core.management.base import BaseCommand

from broadcast.worker import Config, Dispatcher


class Command(BaseCommand):
    help = (
        "Deliver broadcast events to the counter server until SIGTERM/SIGINT "
        "(then finish what is in flight and exit 0). --once delivers what is due and exits."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--once", action="store_true", help="Deliver what is due, then exit.")
        parser.add_argument("--url", help="Counter server URL (default: COUNTER_SERVER_URL).")
        parser.add_argument("--concurrency", type=int, help="Requests in flight at most.")
        parser.add_argument("--poll-interval", type=float, help="Seconds between idle polls.")
        parser.add_argument("--lease", type=float, help="Seconds a claim lasts.")

    def handle(self, *args, **options) -> None:
        config = Config.from_settings(
            url=options["url"],
            concurrency=options["concurrency"],
            poll_interval=options["poll_interval"],
            lease=options["lease"],
        )
        # uvloop: the dispatcher's bound is per-request CPU in the event loop
        # and the HTTP client (BENCHMARKS.md); uvloop trims the loop's share.
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(self._run(Dispatcher(config), once=options["once"]))

    async def _run(self, dispatcher: Dispatcher, *, once: bool) -> None:
        loop = asyncio.get_running_loop()

        def on_signal(signum, frame) -> None:
            # Process-wide handlers, not loop.add_signal_handler(): a process
            # manager that signals twice (honcho signals the process and its
            # group) must not kill the dispatcher while it winds down.
            if not loop.is_closed():
                loop.call_soon_threadsafe(dispatcher.stop)

        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, on_signal)
        await dispatcher.run(once=once)
