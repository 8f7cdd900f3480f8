"""Read-only admin over the outbox, with counts and a re-queue action for failures."""

from django.contrib import admin, messages
from django.db import transaction
from django.db.models import Count
from django.http import HttpRequest
from django.utils import timezone

from broadcast.models import Event, EventQuerySet, Status


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "payload",
        "status",
        "attempts",
        "next_attempt",
        "short_error",
        "created_at",
        "delivered_at",
    ]
    list_filter = ["status"]
    search_fields = ["key", "last_error"]
    ordering = ["-id"]
    show_full_result_count = False
    actions = ["requeue"]
    readonly_fields = [f.name for f in Event._meta.fields]

    @admin.display(description="last error")
    def short_error(self, obj: Event) -> str:
        return obj.last_error[:80]

    @admin.display(description="next attempt")
    def next_attempt(self, obj: Event):
        return obj.available_at if obj.status == Status.PENDING else None

    def changelist_view(self, request: HttpRequest, extra_context=None):
        counts = dict(Event.objects.values_list("status").annotate(n=Count("id")).order_by())
        extra_context = {**(extra_context or {}), "title": _counts_title(counts)}
        return super().changelist_view(request, extra_context)

    @admin.action(description="Re-queue selected failed events")
    def requeue(self, request: HttpRequest, queryset: EventQuerySet) -> None:
        with transaction.atomic(using=queryset.db):  # on SQLite: queued on the write lock
            count = queryset.failed().update(
                status=Status.PENDING, available_at=timezone.now(), claimed_by=""
            )
        self.message_user(request, f"{count} failed event(s) re-queued.", messages.SUCCESS)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


def _counts_title(counts: dict[str, int]) -> str:
    parts = [f"{counts.get(status, 0)} {label.lower()}" for status, label in Status.choices]
    return "Broadcast events: " + ", ".join(parts)
