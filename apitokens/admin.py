"""API tokens in the admin: every staff user sees, creates and revokes their own; a
superuser sees and revokes everyone's.

A new token's text is shown on the page that answers the add form, once: it is
not put in a message (those may be kept in the session, in the database).
"""

from typing import cast

from django import forms
from django.contrib import admin
from django.contrib.auth.models import User
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils.cache import add_never_cache_headers

from apitokens.models import ApiToken
from apitokens.services import DEFAULT_EXPIRY_DAYS, MAX_EXPIRY_DAYS, token_create, token_revoke

SHOWN_FIELDS = ["name", "user", "prefix", "created", "last_used", "expires"]


class ApiTokenCreateForm(forms.ModelForm):
    expires_days = forms.IntegerField(
        min_value=1,
        max_value=MAX_EXPIRY_DAYS,
        initial=DEFAULT_EXPIRY_DAYS,
        help_text=f"Days until the token expires (1 to {MAX_EXPIRY_DAYS}).",
    )

    class Meta:
        model = ApiToken
        fields = ["name"]


class SuperuserApiTokenCreateForm(ApiTokenCreateForm):
    never_expires = forms.BooleanField(
        required=False, help_text="A token that never expires (the days above are ignored)."
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.is_bound and self["never_expires"].data:
            # Ignored, so never an error: the field takes its initial value.
            self.fields["expires_days"].disabled = True


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["name", "prefix", "user", "created", "last_used", "expires"]
    list_select_related = ["user"]
    search_fields = ["name"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[ApiToken]:
        tokens = super().get_queryset(request)
        return tokens if request.user.is_superuser else tokens.filter(user=request.user.pk)

    # The admin site lets in active staff only; each of them manages their own
    # tokens, with no model permission to grant.
    def has_module_permission(self, request: HttpRequest) -> bool:
        return True

    def has_view_permission(self, request: HttpRequest, obj: ApiToken | None = None) -> bool:
        return self._may_manage(request, obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return True

    def has_change_permission(self, request: HttpRequest, obj: ApiToken | None = None) -> bool:
        return False  # a token is revoked and made anew, never edited

    def has_delete_permission(self, request: HttpRequest, obj: ApiToken | None = None) -> bool:
        return self._may_manage(request, obj)

    @staticmethod
    def _may_manage(request: HttpRequest, obj: ApiToken | None) -> bool:
        return obj is None or request.user.is_superuser or obj.user_id == request.user.pk

    def get_form(self, request: HttpRequest, obj: ApiToken | None = None, change=False, **kwargs):
        if obj is None:
            superuser = request.user.is_superuser
            kwargs["form"] = SuperuserApiTokenCreateForm if superuser else ApiTokenCreateForm
        return super().get_form(request, obj, change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: ApiToken | None = None):
        if obj is not None:
            return SHOWN_FIELDS
        return (
            ["name", "expires_days", "never_expires"]
            if request.user.is_superuser
            else [
                "name",
                "expires_days",
            ]
        )

    def get_readonly_fields(self, request: HttpRequest, obj: ApiToken | None = None):
        return SHOWN_FIELDS if obj is not None else []

    def save_model(self, request: HttpRequest, obj: ApiToken, form, change: bool) -> None:
        """Create through the service, for the logged-in user; keep the text for the answer."""
        never = form.cleaned_data.get("never_expires", False)
        created, text = token_create(
            user=cast(User, request.user),
            name=obj.name,
            expires_days=None if never else form.cleaned_data["expires_days"],
        )
        # The admin goes on with `obj` (its log entry, the answer): make it the saved row.
        for field in ApiToken._meta.concrete_fields:
            setattr(obj, field.attname, getattr(created, field.attname))
        obj._state = created._state
        obj.text = text  # type: ignore[attr-defined]

    def response_add(self, request: HttpRequest, obj: ApiToken, post_url_continue=None):
        """The page showing the new token's text, this once (never cached)."""
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "API token created",
            "token": obj,
            "text": obj.text,  # type: ignore[attr-defined]
        }
        response = TemplateResponse(request, "admin/apitokens/apitoken/created.html", context)
        add_never_cache_headers(response)
        return response

    def delete_model(self, request: HttpRequest, obj: ApiToken) -> None:
        token_revoke(token=obj)
