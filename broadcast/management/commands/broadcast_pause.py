"""Pause every broadcast dispatcher: nothing is claimed or sent until broadcast_resume."""

from django.core.management.base import BaseCommand

from broadcast.control import pause


class Command(BaseCommand):
    help = (
        "Pause the broadcast: every dispatcher stops claiming and sending within a second "
        "(requests in flight finish); events keep accumulating as pending."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--reason", default="paused by an operator", help="Why (shown in the admin, /ready)."
        )

    def handle(self, *args, reason: str, **options) -> None:
        state = pause(reason=reason)
        self.stdout.write(
            f"Broadcast paused since {state.since.isoformat()}: {state.reason}\n"
            "Resume with: python manage.py broadcast_resume"
        )
