"""Pause the broadcast, or one destination: nothing is claimed or sent until broadcast_resume."""

from django.core.management.base import BaseCommand, CommandError

from broadcast.control import pause
from broadcast.destinations import destination_pause
from broadcast.models import Destination


class Command(BaseCommand):
    help = (
        "Pause the broadcast: every dispatcher stops claiming and sending within a second "
        "(requests in flight finish); events keep accumulating as pending. With "
        "--destination NAME, only that destination's deliveries wait."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--reason", default="paused by an operator", help="Why (shown in the admin, /ready)."
        )
        parser.add_argument("--destination", metavar="NAME", help="Pause only this destination.")

    def handle(self, *args, reason: str, destination: str | None, **options) -> None:
        if destination is not None:
            row = named(destination)
            destination_pause(destination=row, reason=reason)
            self.stdout.write(
                f"Destination {row.name} paused: {reason}\n"
                f"Resume with: python manage.py broadcast_resume --destination {row.name}"
            )
            return
        state = pause(reason=reason)
        self.stdout.write(
            f"Broadcast paused since {state.since:%Y-%m-%dT%H:%M:%S%z}: {state.reason}\n"
            "Resume with: python manage.py broadcast_resume"
        )


def named(name: str) -> Destination:
    """The destination called `name`, or a CommandError listing those there are."""
    row = Destination.objects.filter(name=name).first()
    if row is None:
        names = ", ".join(Destination.objects.order_by("name").values_list("name", flat=True))
        raise CommandError(f"No destination is named {name!r} (there are: {names or 'none'}).")
    return row
