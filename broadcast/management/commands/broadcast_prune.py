"""Delete delivered events older than a given age, to keep the outbox small."""

import datetime

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from broadcast.models import Event


class Command(BaseCommand):
    help = (
        "Delete delivered broadcast events older than --days (default 7). "
        "Pending and failed events are kept."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--days", type=float, default=7.0, help="Age in days (default 7).")

    def handle(self, *args, days: float, **options) -> None:
        if days < 0:
            raise CommandError("--days must not be negative.")
        cutoff = timezone.now() - datetime.timedelta(days=days)
        deleted, _ = Event.objects.delivered().filter(delivered_at__lt=cutoff).delete()
        self.stdout.write(f"Deleted {deleted} delivered event(s) older than {days:g} day(s).")
