"""Re-queue failed (or delivered) deliveries of events created in a time window (replay after
fixing the cause), to every destination or one: the API's replay, with no cap."""

import datetime

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from broadcast.management.commands.broadcast_pause import named
from broadcast.replay import Replayed, replay


class Command(BaseCommand):
    help = (
        "Make failed deliveries (or, with --status, delivered ones, or both) of events "
        "created in [--since, --until) pending and due now (attempts and last error kept), "
        "to every destination or to --destination NAME. "
        "Prints the count first. ISO 8601 times; a time without an offset, or a bare date "
        "(midnight), is UTC."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--since", help="Oldest created_at included (ISO 8601).")
        parser.add_argument("--until", help="created_at before this (ISO 8601), excluded.")
        parser.add_argument(
            "--dry-run", action="store_true", help="Count what would be re-queued, change nothing."
        )
        parser.add_argument(
            "--destination", metavar="NAME", help="Only this destination's deliveries."
        )
        parser.add_argument(
            "--status", choices=[choice.value for choice in Replayed], default=Replayed.FAILED,
            help="Which deliveries: failed (the default), delivered, or all (both).",
        )  # fmt: skip

    def handle(
        self, *args, since: str | None, until: str | None, dry_run: bool,
        destination: str | None, status: str, **options,
    ) -> None:  # fmt: skip
        start = _parse_time(since, "--since")
        end = _parse_time(until, "--until")
        if start is not None and end is not None and start >= end:
            raise CommandError("--since must be before --until.")
        to = named(destination) if destination is not None else None
        count = replay(status=status, since=start, until=end, destination=to, dry_run=dry_run)
        verb = "would be re-queued (dry run, nothing changed)" if dry_run else "re-queued"
        where = f" to {to.name}" if to is not None else ""
        chosen = Replayed(status).label
        self.stdout.write(
            f"{count} {chosen} deliveries{where} {verb}, of events created {_window(start, end)}."
        )


def _parse_time(value: str | None, option: str) -> datetime.datetime | None:
    if value is None:
        return None
    try:
        parsed = parse_datetime(value)
        if parsed is None and (day := parse_date(value)) is not None:
            parsed = datetime.datetime.combine(day, datetime.time())
    except ValueError:
        parsed = None
    if parsed is None:
        raise CommandError(
            f"{option}: {value!r} is not an ISO 8601 date or time "
            "(e.g. 2026-11-30 or 2026-11-30T08:00:00Z)."
        )
    return parsed if timezone.is_aware(parsed) else parsed.replace(tzinfo=datetime.UTC)


def _window(start: datetime.datetime | None, end: datetime.datetime | None) -> str:
    if start is None and end is None:
        return "at any time"
    parts = [
        f"from {start.isoformat()}" if start else "",
        f"before {end.isoformat()}" if end else "",
    ]
    return " ".join(part for part in parts if part)
