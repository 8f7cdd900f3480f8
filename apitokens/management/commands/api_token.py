"""`manage.py api_token create|list|revoke`: operators' view of every user's API tokens."""

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from apitokens.models import ApiToken
from apitokens.services import DEFAULT_EXPIRY_DAYS, MAX_EXPIRY_DAYS, token_create, token_revoke


class Command(BaseCommand):
    help = "Create, list and revoke API tokens."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        create = actions.add_parser(
            "create", help="Create a token; only its text is printed on stdout (shown this once)."
        )
        create.add_argument("username")
        create.add_argument("--name", required=True, help='What it is for, e.g. "CI pipeline".')
        expiry = create.add_mutually_exclusive_group()
        expiry.add_argument(
            "--expires-days",
            type=int,
            default=DEFAULT_EXPIRY_DAYS,
            help=f"Days until it expires, 1 to {MAX_EXPIRY_DAYS} (default {DEFAULT_EXPIRY_DAYS}).",
        )
        expiry.add_argument(
            "--never-expires", action="store_true", help="A token that never expires."
        )
        listing = actions.add_parser("list", help="List tokens (never their text).")
        listing.add_argument("username", nargs="?", help="Only this user's tokens.")
        revoke = actions.add_parser("revoke", help="Revoke tokens by id (see list).")
        revoke.add_argument("ids", nargs="+", type=int, metavar="ID")

    def handle(self, *args, action: str, **options) -> None:
        getattr(self, f"handle_{action}")(**options)

    def handle_create(
        self, *, username: str, name: str, expires_days: int, never_expires: bool, **options
    ) -> None:
        user = self._user(username)
        try:
            token, text = token_create(
                user=user, name=name, expires_days=None if never_expires else expires_days
            )
        except ValidationError as error:
            raise CommandError("; ".join(error.messages)) from None
        expires = token.expires.isoformat() if token.expires else "never"
        self.stderr.write(
            f"Created token {token.pk} ({token.name}) for {username}, expires {expires}. "
            "Its text, below, is shown this once."
        )
        self.stdout.write(text)

    def handle_list(self, *, username: str | None, **options) -> None:
        tokens = ApiToken.objects.select_related("user").order_by("user__username", "id")
        if username:
            tokens = tokens.filter(user=self._user(username))
        self.stdout.write("id\tuser\tname\tprefix\tcreated\tlast used\texpires")
        for token in tokens:
            self.stdout.write(
                "\t".join(
                    [
                        str(token.pk),
                        token.user.get_username(),
                        token.name,
                        token.prefix,
                        token.created.isoformat(),
                        token.last_used.isoformat() if token.last_used else "never",
                        token.expires.isoformat() if token.expires else "never",
                    ]
                )
            )

    def handle_revoke(self, *, ids: list[int], **options) -> None:
        # An id outside the primary key's range names no token (and the database would
        # refuse it in the query).
        low, high = connection.ops.integer_field_range(ApiToken._meta.pk.get_internal_type())
        possible = [pk for pk in ids if low <= pk <= high]
        tokens = {token.pk: token for token in ApiToken.objects.filter(pk__in=possible)}
        missing = [str(pk) for pk in ids if pk not in tokens]
        for pk, token in tokens.items():
            token_revoke(token=token)
            self.stdout.write(f"Revoked token {pk} ({token.name}).")
        if missing:
            raise CommandError(f"No token with id {', '.join(missing)}.")

    @staticmethod
    def _user(username: str):
        User = get_user_model()
        try:
            return User.objects.get_by_natural_key(username)
        except User.DoesNotExist:
            raise CommandError(f"No user {username}.") from None
