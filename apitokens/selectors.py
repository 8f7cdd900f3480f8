"""Reading API tokens: the lookup every token-authenticated request makes, and the lists."""

from datetime import datetime
from typing import TYPE_CHECKING

from django.db.models import QuerySet

from apitokens import text
from apitokens.models import ApiToken

if TYPE_CHECKING:
    from django.contrib.auth.models import User


def token_for_text(token_text: str, *, now: datetime) -> ApiToken | None:
    """The usable token whose text this is, with its user; None for any other.

    A malformed text (a wrong checksum) costs no query; otherwise one query by
    the text's hash (unique index) with the user joined. Unknown, expired and
    inactive users' tokens all give None: callers answer all alike. Nothing is
    cached, so a revoked token or a deactivated user is refused at once.
    """
    if not text.is_well_formed(token_text):
        return None
    try:
        token = ApiToken.objects.select_related("user").get(digest=text.digest(token_text))
    except ApiToken.DoesNotExist:
        return None
    if token.expires is not None and token.expires <= now:
        return None
    if not token.user.is_active:
        return None
    return token


def token_list(*, user: "User") -> QuerySet[ApiToken]:
    """`user`'s tokens, newest first."""
    return ApiToken.objects.filter(user=user)
