"""Delete deliveries delivered longer ago than a given age, and the events no delivery is left
to, to keep the outbox small."""

from django.core.management.base import BaseCommand, CommandError
from django.template.defaultfilters import pluralize

from broadcast.retention import prune_delivered, retention_days


class Command(BaseCommand):
    help = (
        "Delete deliveries delivered more than --days ago (default: BROADCAST_RETENTION_DAYS, "
        "7) with their attempts, then the events older than that with no delivery left, in "
        "batches; and failed deliveries' attempts older than BROADCAST_FAILED_RETENTION_DAYS "
        "(30). Pending and failed deliveries, their events and pending ones' attempts, are "
        "kept; --days 0 deletes nothing. The dispatchers also do this on their own."
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
        pruned = prune_delivered(days=days, batch_size=batch_size)
        deliveries, events, attempts = pruned.deliveries, pruned.events, pruned.attempts
        self.stdout.write(
            f"Deleted {deliveries} deliver{pluralize(deliveries, 'y,ies')} delivered more "
            f"than {days:g} day{pluralize(days)} ago, {events} event{pluralize(events)} no "
            f"delivery needs any more and {attempts} attempt{pluralize(attempts)}."
        )
