"""API token authentication as it was before issue #27: DRF's authtoken keys in clear,
looked up by one SQL statement (the code of `c530585`'s railfleet/authentication.py).

Only the benchmark uses it, on a second web server (bench/settings.py with
BENCH_LEGACY_TOKENS=1), so that `bench/scenarios/tokens.py` measures the hashed
tokens against it in the same run (BENCHMARKS.md, target 15).
"""

import functools

from django.contrib.auth import get_user_model
from django.db import connections, router
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions
from rest_framework.authtoken.models import Token


class TokenAuthentication(authentication.TokenAuthentication):
    """`Authorization: Token <key>`, as DRF's, answering exactly as it does."""

    def authenticate_credentials(self, key: str) -> tuple:
        """The user and token for `key`; AuthenticationFailed if none or the user is inactive."""
        if self.get_model() is not Token or get_user_model()._meta.parents:
            # Another token model, or a user model whose columns span several
            # tables (multi-table inheritance): the one statement does not fit.
            return super().authenticate_credentials(key)
        alias = router.db_for_read(Token)
        users = get_user_model().objects.using(alias).raw(_lookup_sql(alias), [key])
        user = next(iter(users), None)
        if user is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        if not user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        # Its `created` stays deferred (loaded only if read): nothing here needs it.
        token = Token.from_db(alias, ["key", "user_id"], [key, user.pk])
        token.user = user
        return user, token


@functools.cache
def _lookup_sql(alias: str) -> str:
    """SELECT the user's columns, joined to the token with the key given as the parameter."""
    quote = connections[alias].ops.quote_name
    user_model = get_user_model()
    columns = ", ".join(f"u.{quote(f.column)}" for f in user_model._meta.concrete_fields)
    token_user = Token._meta.get_field("user")
    # Only quoted table and column names from the models go into the text; the
    # key is always a parameter.
    return (
        f"SELECT {columns} FROM {quote(user_model._meta.db_table)} u "
        f"INNER JOIN {quote(Token._meta.db_table)} t "
        f"ON t.{quote(token_user.column)} = u.{quote(user_model._meta.pk.column)} "
        f"WHERE t.{quote(Token._meta.pk.column)} = %s"
    )
