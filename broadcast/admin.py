"""Read-only admin over the outbox: counts, the pause switch, and re-queueing failures."""

import logging

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db.models import BigIntegerField, Count, OuterRef, Subquery
from django.db.models.fields.json import KT
from django.db.models.functions import Cast
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import path, reverse
from django.views.decorators.http import require_POST

from broadcast.control import pause, pause_state, resume
from broadcast.models import Event, EventQuerySet, Status
from broadcast.replay import requeue_failed

PAUSE_PERMISSION = "broadcast.pause_broadcast"

logger = logging.getLogger(__name__)


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "event",
        "status",
        "attempts",
        "created_at",
        "due_or_delivered",
        "short_error",
    ]
    list_display_links = ["id", "event"]
    list_filter = ["status"]
    search_fields = ["key", "last_error"]
    ordering = ["-id"]
    show_full_result_count = False
    actions = ["requeue"]
    readonly_fields = [f.name for f in Event._meta.fields]
    # The pause state and its buttons above the list (templates/admin/broadcast/event/).
    change_list_template = "admin/broadcast/event/change_list.html"

    class Media:
        # Times and short cells on one line: the list fits 1280 px (tests/browser/).
        css = {"all": ["broadcast/admin.css"]}

    def get_queryset(self, request: HttpRequest):
        """The events with their user's name (Event.__str__), in the page's one query.

        The payload holds the user's id only, as the counter server's protocol has it.
        """
        users = get_user_model()._default_manager.filter(pk=OuterRef("payload_user"))
        username = users.values(get_user_model().USERNAME_FIELD)[:1]
        return (
            super()
            .get_queryset(request)
            .annotate(payload_user=Cast(KT("payload__user"), BigIntegerField()))
            .annotate(username=Subquery(username))
        )

    @admin.display(description="event")
    def event(self, obj: Event) -> str:
        return obj.summary

    @admin.display(description="last error")
    def short_error(self, obj: Event) -> str:
        return obj.last_error[:80]

    @admin.display(description="due or delivered")
    def due_or_delivered(self, obj: Event):
        """A pending event's next attempt, a delivered one's delivery (one column: 1280 px)."""
        if obj.status == Status.PENDING:
            return obj.available_at
        return obj.delivered_at

    def changelist_view(self, request: HttpRequest, extra_context=None):
        counts = dict(Event.objects.values_list("status").annotate(n=Count("id")).order_by())
        extra_context = {
            **(extra_context or {}),
            "title": _counts_title(counts),
            "pause_state": pause_state(),
            "can_pause": request.user.has_perm(PAUSE_PERMISSION),
        }
        return super().changelist_view(request, extra_context)

    def get_urls(self):
        """The pause and resume buttons' targets: POST only, CSRF-checked by admin_view."""
        view = self.admin_site.admin_view
        own = [
            path("pause/", view(require_POST(self.pause_view)), name="broadcast_pause"),
            path("resume/", view(require_POST(self.resume_view)), name="broadcast_resume"),
        ]
        return own + super().get_urls()

    def pause_view(self, request: HttpRequest) -> HttpResponseRedirect:
        """Pause every dispatcher, with the form's reason; who paused goes to the log only.

        Not into the reason: /ready shows it to anyone, and a staff username is
        what the login lockout is keyed on.
        """
        _check_pause_permission(request)
        reason = request.POST.get("reason", "").strip()[:1000] or "paused in the admin"
        pause(reason=reason)
        logger.warning(
            "Broadcast paused in the admin by %s: %s", request.user.get_username(), reason
        )
        self.message_user(request, "Broadcast paused.", messages.WARNING)
        return HttpResponseRedirect(reverse("admin:broadcast_event_changelist"))

    def resume_view(self, request: HttpRequest) -> HttpResponseRedirect:
        """Resume the dispatchers."""
        _check_pause_permission(request)
        resume()
        logger.warning("Broadcast resumed in the admin by %s", request.user.get_username())
        self.message_user(request, "Broadcast resumed.", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:broadcast_event_changelist"))

    @admin.action(description="Re-queue selected failed events")
    def requeue(self, request: HttpRequest, queryset: EventQuerySet) -> None:
        count = requeue_failed(events=queryset, using=queryset.db)
        self.message_user(request, f"{count} failed event(s) re-queued.", messages.SUCCESS)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


def _check_pause_permission(request: HttpRequest) -> None:
    if not request.user.has_perm(PAUSE_PERMISSION):
        raise PermissionDenied


def _counts_title(counts: dict[str, int]) -> str:
    parts = [f"{counts.get(status, 0)} {label.lower()}" for status, label in Status.choices]
    return "Broadcast events: " + ", ".join(parts)
