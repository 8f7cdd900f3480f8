"""`manage.py drf_create_token USER`, as DRF's authtoken had it, now making a hashed token.

DRF's authtoken app is no longer installed (apitokens replaces it), so this
command takes its name. It prints `Generated token <text> for user <user>` as
DRF's did; each run makes a new token (the text of an earlier one cannot be
shown again), named "created by drf_create_token", expiring after the default
90 days. `--reset` revokes that user's earlier tokens of this name first.
"""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from apitokens.services import DRF_CREATE_TOKEN_NAME, token_create, token_revoke


class Command(BaseCommand):
    help = "Create an API token for the given user and print it (shown this once)."

    def add_arguments(self, parser):
        parser.add_argument("username", help="The user the token authenticates as.")
        parser.add_argument(
            "-r",
            "--reset",
            action="store_true",
            help="First revoke the user's earlier tokens made by this command.",
        )

    def handle(self, *args, username: str, reset: bool, **options) -> None:
        User = get_user_model()
        try:
            user = User.objects.get_by_natural_key(username)
        except User.DoesNotExist:
            raise CommandError(f"Cannot create the Token: user {username} does not exist") from None
        if reset:
            for token in user.api_tokens.filter(name=DRF_CREATE_TOKEN_NAME):
                token_revoke(token=token)
        _, text = token_create(user=user, name=DRF_CREATE_TOKEN_NAME)
        self.stdout.write(f"Generated token {text} for user {username}")
