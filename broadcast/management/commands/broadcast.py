"""Run a broadcast dispatcher: deliver outbox events to the counter server."""

import signal

from django.core.management.base import BaseCommand

from broadcast import checks, metrics
from broadcast.conf import Config
from broadcast.dispatch.loop import Dispatcher


class Command(BaseCommand):
    help = (
        "Deliver broadcast events to the counter server until SIGTERM/SIGINT "
        "(then finish what is in flight and exit 0). --once delivers what is due and exits."
    )

    # Only the dispatcher's own checks. The others (admin, URLs, templates) are
    # the web processes', which run them, and importing what they check, the
    # whole web side, was a third of a dispatcher's start-up.
    requires_system_checks = [checks.TAG]

    def add_arguments(self, parser) -> None:
        parser.add_argument("--once", action="store_true", help="Deliver what is due, then exit.")
        parser.add_argument(
            "--url", help="The built-in destination's URL (default: COUNTER_SERVER_URL)."
        )
        parser.add_argument("--concurrency", type=int, help="Requests in flight at most.")
        parser.add_argument("--poll-interval", type=float, help="Seconds between idle polls.")
        parser.add_argument("--lease", type=float, help="Seconds a claim lasts.")

    def handle(self, *args, **options) -> None:
        # The dispatcher's first round points the built-in destination at its URL.
        config = Config.from_settings(
            url=options["url"],
            concurrency=options["concurrency"],
            poll_interval=options["poll_interval"],
            lease=options["lease"],
        )
        dispatcher = Dispatcher(config)

        def on_signal(signum, frame) -> None:
            # Every signal only asks for a clean stop: a process manager that
            # signals twice (honcho signals the process and its group) must not
            # kill the dispatcher while it winds down.
            dispatcher.stop()

        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, on_signal)
        server = metrics.serve_from_settings()  # BROADCAST_METRICS_PORT, if set
        try:
            dispatcher.run(once=options["once"])
        finally:
            if server is not None:
                server.shutdown()
