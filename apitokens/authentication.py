"""`Authorization: Token <text>` and `Authorization: Bearer <text>` for the API.

DRF's TokenAuthentication parses the header; the lookup is ours
(apitokens/selectors.py `token_for_text`): one indexed query by the text's
hash, no cache. An unknown, revoked or expired token and one whose user is
inactive all get the same 401 `{"detail": "Invalid token."}`, so a caller
learns nothing about which.
"""

from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions

from apitokens import clock, schema  # noqa: F401 - schema: registers the Bearer scheme
from apitokens.models import ApiToken
from apitokens.selectors import token_for_text
from apitokens.services import token_record_use


class TokenAuthentication(authentication.TokenAuthentication):
    """`Authorization: Token <text>`, as DRF's authtoken took it."""

    model = ApiToken

    def authenticate_credentials(self, key: str) -> tuple:
        now = clock.now()
        match = token_for_text(key, now=now)
        if match is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        if match.stale:
            token_record_use(token=match.token, now=now)
        return match.token.user, match.token


class BearerTokenAuthentication(TokenAuthentication):
    """`Authorization: Bearer <text>`, the same tokens (RFC 6750's keyword)."""

    keyword = "Bearer"
