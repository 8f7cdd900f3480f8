"""List the broadcast's destinations with their pending deliveries (never their secrets);
enable one again (after a 410 Gone, say)."""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from broadcast.destinations import destination_update
from broadcast.management.commands.broadcast_pause import named
from broadcast.models import Destination


class Command(BaseCommand):
    help = (
        "List the destinations: name, URL, actions, format, state and pending deliveries "
        "(those the settings keep, the built-in and the alerts ones, are marked managed)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--enable", metavar="NAME",
            help="Enable this disabled destination (its pending deliveries are then sent).",
        )  # fmt: skip

    def handle(self, *args, enable: str | None, **options) -> None:
        if enable is not None:
            disabled = named(enable)
            try:
                destination_update(destination=disabled, enabled=True)
            except ValidationError as error:
                raise CommandError("; ".join(error.messages)) from None
            self.stdout.write(f"Destination {disabled.name} enabled.")
        destinations = list(Destination.objects.with_pending().order_by("name"))
        if not destinations:
            self.stdout.write("No destinations.")
            return
        rows = [("NAME", "URL", "ACTIONS", "FORMAT", "PENDING", "STATE")]
        rows += [
            (d.name, d.url, ",".join(d.actions), d.format, str(getattr(d, "pending", 0)), state(d))
            for d in destinations
        ]
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
        for row in rows:
            cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
            self.stdout.write("  ".join([*cells, row[-1]]).rstrip())


def state(destination: Destination) -> str:
    """Its state as listed: enabled, disabled or paused (with the reason), and whether the
    settings manage it."""
    if not destination.enabled:
        text = f"disabled: {destination.disabled_reason}".rstrip(": ")
    elif destination.paused:
        text = f"paused: {destination.paused_reason}".rstrip(": ")
    else:
        text = "enabled"
    return f"{text} (managed)" if destination.managed else text
