"""Print a new signing secret for BROADCAST_SIGNING_SECRETS."""

from django.core.management.base import BaseCommand

from broadcast.signing import new_secret


class Command(BaseCommand):
    help = (
        "Print a new Standard Webhooks signing secret (whsec_ + base64 of 32 random bytes) "
        "for BROADCAST_SIGNING_SECRETS and the counter server's COUNTER_SIGNING_SECRETS."
    )

    def handle(self, *args, **options) -> None:
        self.stdout.write(new_secret())
