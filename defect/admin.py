"""The defects admin: the creator is set from the logged-in person and never changes.

Writes go through the services (defect/services.py) and the delete rule is
`can_delete`'s, with the admin's superuser exception.
"""

from typing import cast

from django.contrib import admin
from django.contrib.auth.models import User
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from defect.models import Defect
from defect.services import can_delete, defect_create, defect_delete, defect_update


@admin.register(Defect)
class DefectAdmin(admin.ModelAdmin):
    list_display = ["id", "short_comment", "user", "timestamp"]
    list_display_links = ["id", "short_comment"]
    list_select_related = ["user"]
    list_filter = ["user", "timestamp"]
    search_fields = ["comment", "user__username"]
    date_hierarchy = "timestamp"
    ordering = ["-timestamp", "-id"]
    # Counting millions of rows on every page view is what makes admins slow.
    show_full_result_count = False

    @admin.display(description="comment", ordering="comment")
    def short_comment(self, obj: Defect) -> str:
        return str(obj)

    def formfield_for_dbfield(self, db_field, request: HttpRequest, **kwargs):
        """The timestamp's inputs say their time zone, which the list shows with each time."""
        field = super().formfield_for_dbfield(db_field, request, **kwargs)
        if db_field.name == "timestamp" and field is not None:
            field.help_text = f"Time zone: {timezone.get_current_timezone_name()}."
        return field

    def get_fields(self, request: HttpRequest, obj: Defect | None = None):
        # The add form has no user field at all; the change form shows it read-only.
        return ["comment", "timestamp"] if obj is None else ["comment", "timestamp", "user"]

    def get_readonly_fields(self, request: HttpRequest, obj: Defect | None = None) -> list[str]:
        return [] if obj is None else ["user"]

    def save_model(self, request: HttpRequest, obj: Defect, form, change: bool) -> None:
        """Save through the services; a new defect belongs to whoever is logged in."""
        if change:
            defect_update(defect=obj, comment=obj.comment, timestamp=obj.timestamp)
            return
        # The admin's views let in only logged-in staff: request.user is a User here.
        user = cast(User, request.user)
        created = defect_create(user=user, comment=obj.comment, timestamp=obj.timestamp)
        # The admin goes on with `obj` (its log entry, the redirect): make it the saved row.
        obj.pk, obj.user, obj._state = created.pk, created.user, created._state

    def delete_model(self, request: HttpRequest, obj: Defect) -> None:
        defect_delete(defect=obj)

    def has_delete_permission(self, request: HttpRequest, obj: Defect | None = None) -> bool:
        """The delete rule (`can_delete`, a superuser may delete any) behind Django's own.

        Both the delete view and the bulk "delete selected" ask this for every
        defect, so a selection holding someone else's defect is refused as a whole.
        """
        if not super().has_delete_permission(request, obj):
            return False
        return obj is None or self._may_delete(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        """Defence in depth behind has_delete_permission: delete only what the rule allows."""
        allowed = [d.pk for d in queryset.only("pk", "user") if self._may_delete(request, d)]
        super().delete_queryset(request, queryset.filter(pk__in=allowed))

    @staticmethod
    def _may_delete(request: HttpRequest, defect: Defect) -> bool:
        return can_delete(user=request.user, defect=defect, superuser_may=True)
