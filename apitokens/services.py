"""Creating, revoking and recording the use of API tokens: the API, the admin and the
management commands all go through these functions."""

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.core.exceptions import ValidationError
from django.db.models import Q

from apitokens import clock, text
from apitokens.models import ApiToken

if TYPE_CHECKING:
    from django.contrib.auth.models import User

DEFAULT_EXPIRY_DAYS = 90
MAX_EXPIRY_DAYS = 365
# last_used is written at most this often per token, never once per request.
LAST_USED_RESOLUTION = timedelta(minutes=1)
DRF_CREATE_TOKEN_NAME = "created by drf_create_token"  # noqa: S105 - a name, not a secret


def token_create(
    *, user: "User", name: str, expires_days: int | None = DEFAULT_EXPIRY_DAYS
) -> tuple[ApiToken, str]:
    """A new token for `user` and its text, which is shown this once and never kept.

    `expires_days=None` makes a token that never expires: only administrators'
    paths pass it (the admin for a superuser, `manage.py api_token create
    --never-expires`).
    """
    if expires_days is not None and not 1 <= expires_days <= MAX_EXPIRY_DAYS:
        raise ValidationError(
            {"expires_days": f"Ensure this value is between 1 and {MAX_EXPIRY_DAYS}."}
        )
    token_text = text.generate()
    created = clock.now()
    token = ApiToken(
        user=user,
        name=name,
        digest=text.digest(token_text),
        prefix=text.display_prefix(token_text),
        created=created,
        expires=None if expires_days is None else created + timedelta(days=expires_days),
    )
    token.full_clean(exclude=["user"], validate_unique=False)
    token.save(force_insert=True)
    return token, token_text


def token_revoke(*, token: ApiToken) -> None:
    """Revoke a token: it is deleted, and refused from the next request on."""
    token.delete()


def token_record_use(*, token: ApiToken, now: datetime) -> None:
    """Set `last_used` to `now` unless it was set less than LAST_USED_RESOLUTION ago.

    Called only for a token whose lookup found its last use stale
    (apitokens/selectors.py); the condition is in the UPDATE too, so requests
    racing in other processes write the time once between them.
    """
    since = now - LAST_USED_RESOLUTION
    ApiToken.objects.filter(
        Q(last_used__isnull=True) | Q(last_used__lte=since), pk=token.pk
    ).update(last_used=now)
    token.last_used = now
