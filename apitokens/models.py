"""An API token: its owner, its name, when it expires and was last used; never its text.

Why a model of our own and not django-rest-knox's AuthToken (knox 5.1): knox
looks a token up by the first 15 characters of its text (kept in clear), then
on every request reads all the user's other tokens and deletes the expired
ones (`TokenAuthentication._cleanup_token`), so each request costs a second
query and sometimes writes; it has no name, no last-used time and no checksum
in its text, takes one header keyword, and answers an inactive user with
another message than an unknown token. Meeting this service's rules would
mean replacing its model, its manager's `create` and its lookup: nothing of it
would be left but a table. Ours is looked up by the hash alone, one indexed
query with the user joined (apitokens/selectors.py).
"""

from django.conf import settings
from django.db import models

from apitokens import text

NAME_MAX_LENGTH = 100


class ApiToken(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=NAME_MAX_LENGTH, help_text="What the token is for.")
    # SHA-256 of the text (apitokens/text.py); unique, so indexed: the lookup's key.
    digest = models.CharField(max_length=64, unique=True, editable=False)
    prefix = models.CharField(
        max_length=text.DISPLAY_LENGTH,
        editable=False,
        help_text="The token's first characters, to recognise it.",
    )
    created = models.DateTimeField(editable=False)
    expires = models.DateTimeField(
        null=True, blank=True, editable=False, help_text="Empty: never (set by an administrator)."
    )
    last_used = models.DateTimeField(
        null=True, blank=True, editable=False, help_text="Updated at most once a minute."
    )

    class Meta:
        verbose_name = "API token"
        ordering = ["-created", "-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"
