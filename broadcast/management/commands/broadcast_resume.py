"""Resume the broadcast after broadcast_pause, or one destination after broadcast_pause
--destination."""

from django.core.management.base import BaseCommand

from broadcast.control import pause_state, resume
from broadcast.destinations import destination_resume
from broadcast.management.commands.broadcast_pause import named


class Command(BaseCommand):
    help = (
        "Resume the broadcast: the dispatchers claim and send again within a second. With "
        "--destination NAME, resume that destination only."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--destination", metavar="NAME", help="Resume only this destination.")

    def handle(self, *args, destination: str | None, **options) -> None:
        if destination is not None:
            row = named(destination)
            was = row.paused_reason if row.paused else None
            destination_resume(destination=row)
            done = f"it was paused: {was}" if was is not None else "it was not paused"
            self.stdout.write(f"Destination {row.name} resumed ({done}).")
            return
        was_state = pause_state()
        resume()
        if was_state.paused:
            self.stdout.write(f"Broadcast resumed (it was paused: {was_state.reason}).")
        else:
            self.stdout.write("Broadcast was not paused; nothing to do.")
