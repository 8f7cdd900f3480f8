"""Resume the broadcast after broadcast_pause (or a 410 Gone from the counter server)."""

from django.core.management.base import BaseCommand

from broadcast.control import pause_state, resume


class Command(BaseCommand):
    help = "Resume the broadcast: the dispatchers claim and send again within a second."

    def handle(self, *args, **options) -> None:
        was = pause_state()
        resume()
        if was.paused:
            self.stdout.write(f"Broadcast resumed (it was paused: {was.reason}).")
        else:
            self.stdout.write("Broadcast was not paused; nothing to do.")
