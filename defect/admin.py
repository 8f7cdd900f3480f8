"""The defects admin: the creator is set from the logged-in person and never changes."""

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from defect.models import Defect


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

    def get_fields(self, request: HttpRequest, obj: Defect | None = None) -> list[str]:
        # The add form has no user field at all; the change form shows it read-only.
        return ["comment", "timestamp"] if obj is None else ["comment", "timestamp", "user"]

    def get_readonly_fields(self, request: HttpRequest, obj: Defect | None = None) -> list[str]:
        return [] if obj is None else ["user"]

    def save_model(self, request: HttpRequest, obj: Defect, form, change: bool) -> None:
        """A new defect belongs to whoever is logged in, whatever the POST carried."""
        if not change:
            obj.user = request.user
        # Defect.save() writes the broadcast event in the same transaction.
        super().save_model(request, obj, form, change)

    def has_delete_permission(self, request: HttpRequest, obj: Defect | None = None) -> bool:
        """As in the API: only the creator deletes a defect; a superuser may delete any.

        Django's bulk "delete selected" asks this for every selected defect, so a
        selection holding someone else's defect is refused as a whole.
        """
        if not super().has_delete_permission(request, obj):
            return False
        return obj is None or request.user.is_superuser or obj.user_id == request.user.pk

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        # Defence in depth behind has_delete_permission: never delete others' defects.
        if not request.user.is_superuser:
            queryset = queryset.filter(user=request.user)
        super().delete_queryset(request, queryset)
