"""List the broadcast's destinations with their pending deliveries (never their secrets)."""

from django.core.management.base import BaseCommand

from broadcast.models import Destination


class Command(BaseCommand):
    help = (
        "List the destinations: name, URL, actions, format, state and pending deliveries "
        "(the built-in one, kept in step with COUNTER_SERVER_URL, is marked managed)."
    )

    def handle(self, *args, **options) -> None:
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
