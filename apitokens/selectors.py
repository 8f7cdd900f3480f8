"""Reading API tokens: the lookup every token-authenticated request makes, and the lists."""

import functools
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from django.contrib.auth import get_user_model
from django.db import connections, router
from django.db.models import QuerySet

from apitokens import text
from apitokens.models import ApiToken
from apitokens.services import LAST_USED_RESOLUTION

if TYPE_CHECKING:
    from django.contrib.auth.models import User


@dataclass(frozen=True, slots=True)
class TokenMatch:
    """A usable token, with its user loaded, and whether its last use should be recorded."""

    token: ApiToken
    stale: bool  # last used more than LAST_USED_RESOLUTION before `now`, or never


def token_for_text(token_text: str, *, now: datetime) -> TokenMatch | None:
    """The usable token whose text this is, with its user; None for any other.

    A malformed text (a wrong checksum) costs no query; otherwise one query by
    the text's hash (unique index) with the user joined. Unknown, expired and
    inactive users' tokens all give None: callers answer all alike. Nothing is
    cached, so a revoked token or a deactivated user is refused at once.

    The query is SQL written once per database (`_lookup_sql`) and run through
    `User.objects.raw()`, which converts the user's columns as the ORM does:
    every token-authenticated request makes it, and building the ORM's
    `select_related().get()` was about a tenth of an API create's CPU
    (BENCHMARKS.md, target 1). The expiry and the staleness of the last use are
    decided in the query, so that the token's own columns need no conversion.
    """
    if not text.is_well_formed(token_text):
        return None
    alias = router.db_for_read(ApiToken)
    adapt = connections[alias].ops.adapt_datetimefield_value
    since = now - LAST_USED_RESOLUTION
    params = [adapt(since), text.digest(token_text), adapt(now)]
    user = next(iter(get_user_model().objects.using(alias).raw(_lookup_sql(alias), params)), None)
    if user is None or not user.is_active:
        return None
    # The token's other columns stay deferred (loaded only if read).
    # raw()'s extra columns are attributes of the user.
    token_pk, stale = getattr(user, "token_pk"), getattr(user, "token_stale")  # noqa: B009
    token = ApiToken.from_db(alias, ["id", "user_id"], [token_pk, user.pk])
    token.user = user
    return TokenMatch(token, bool(stale))


@functools.cache
def _lookup_sql(alias: str) -> str:
    """The user's columns, the token's id and whether its last use is stale, for the token
    whose digest is the parameter and that has not expired. Only quoted table and column
    names from the models go into the text; every value is a parameter."""
    quote = connections[alias].ops.quote_name
    user_model = get_user_model()
    columns = ", ".join(f"u.{quote(f.column)}" for f in user_model._meta.concrete_fields)
    token = {field.name: quote(field.column) for field in ApiToken._meta.concrete_fields}
    return (
        f"SELECT {columns}, t.{token['id']} AS token_pk, "  # noqa: S608
        f"CASE WHEN t.{token['last_used']} IS NULL OR t.{token['last_used']} <= %s "
        "THEN 1 ELSE 0 END AS token_stale "
        f"FROM {quote(user_model._meta.db_table)} u "
        f"INNER JOIN {quote(ApiToken._meta.db_table)} t "
        f"ON t.{token['user']} = u.{quote(user_model._meta.pk.column)} "
        f"WHERE t.{token['digest']} = %s "
        f"AND (t.{token['expires']} IS NULL OR t.{token['expires']} > %s)"
    )


def token_list(*, user: "User") -> QuerySet[ApiToken]:
    """`user`'s tokens, newest first."""
    return ApiToken.objects.filter(user=user)
