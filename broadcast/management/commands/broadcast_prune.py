"""Delete delivered events older than a given age, to keep the outbox small."""

from django.core.management.base import BaseCommand, CommandError

from broadcast.retention import prune_delivered, retention_days


class Command(BaseCommand):
    help = (
        "Delete delivered broadcast events older than --days (default: "
        "BROADCAST_RETENTION_DAYS, 7), in batches. Pending and failed events are kept; "
        "--days 0 deletes nothing. The dispatchers also do this on their own."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--days", type=float, help="Age in days (default: BROADCAST_RETENTION_DAYS)."
        )
        parser.add_argument(
            "--batch-size", type=int, default=2000, help="Rows per transaction (default 2000)."
        )

    def handle(self, *args, days: float | None, batch_size: int, **options) -> None:
        days = retention_days() if days is None else days
        if days < 0:
            raise CommandError("--days must not be negative.")
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        deleted = prune_delivered(days=days, batch_size=batch_size)
        self.stdout.write(f"Deleted {deleted} delivered event(s) older than {days:g} day(s).")
