"""The broadcast in the admin: the outbox, read-only (its events and their deliveries,
counts, the pause switch, re-queueing failures, each delivery's attempts), and the
destinations, managed through broadcast/destinations.py, each linked to its failed
deliveries and its last attempts.

A new destination's signing secret, and a rotated one, is shown on the page that
answers the form or the action, once: never in a message (those may be kept in
the session, in the database), as the API tokens' admin does.
"""

import logging
from typing import cast

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import BigIntegerField, Count, OuterRef, Q, QuerySet, Subquery
from django.db.models.fields.json import KT
from django.db.models.functions import Cast
from django.http import HttpRequest, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import formats, timezone
from django.utils.cache import add_never_cache_headers
from django.utils.html import format_html, format_html_join
from django.views.decorators.http import require_POST

from broadcast.control import pause, pause_state, resume
from broadcast.destinations import (
    ALERTS_FIELDS,
    EDITABLE,
    MANAGED_FIELDS,
    destination_check,
    destination_create,
    destination_delete,
    destination_disable,
    destination_pause,
    destination_resume,
    destination_rotate_secret,
    destination_update,
)
from broadcast.models import (
    Action,
    Attempt,
    Delivery,
    DeliveryQuerySet,
    Destination,
    DestinationQuerySet,
    DestinationSecret,
    Event,
    Status,
)
from broadcast.replay import requeue_failed

PAUSE_PERMISSION = "broadcast.pause_broadcast"

logger = logging.getLogger(__name__)


class DeliveryInline(admin.TabularInline):
    """An event's deliveries, one per destination, on its page (read-only)."""

    model = Delivery
    fields = ["destination", "status", "attempts", "available_at", "delivered_at", "last_error"]
    readonly_fields = ["destination", "status", "attempts", "available_at", "delivered_at",
                       "last_error"]  # fmt: skip
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


class ReadOnlyAdmin(admin.ModelAdmin):
    """The outbox's own records: shown to staff with the view permission, changed by nobody."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    """The outbox's events: what happened, and how each destination's delivery stands."""

    list_display = ["id", "event", "subject", "deliveries", "created_at"]
    list_display_links = ["id", "event"]
    # `subject__exact`: a search for a defect's id finds its events (a word that is not a
    # number finds none, rather than an error).
    search_fields = ["key", "subject__exact"]
    ordering = ["-id"]
    show_full_result_count = False
    readonly_fields = [f.name for f in Event._meta.fields]
    inlines = [DeliveryInline]
    # The pause state and its buttons above the list (templates/admin/broadcast/event/).
    change_list_template = "admin/broadcast/event/change_list.html"

    class Media:
        # Times and short cells on one line: the list fits 1280 px (tests/browser/).
        css = {"all": ["broadcast/admin.css"]}

    def get_queryset(self, request: HttpRequest):
        """The events with their user's name (Event.__str__) and their deliveries' counts
        by status, in the page's one query.

        The payload holds the user's id only, as the counter server's protocol has it.
        """
        users = get_user_model()._default_manager.filter(pk=OuterRef("payload_user"))
        username = users.values(get_user_model().USERNAME_FIELD)[:1]
        counts = {
            f"deliveries_{status}": Count("deliveries", filter=Q(deliveries__status=status))
            for status in Status.values
        }
        return (
            super()
            .get_queryset(request)
            .annotate(payload_user=Cast(KT("payload__user"), BigIntegerField()))
            .annotate(username=Subquery(username), **counts)
        )

    @admin.display(description="event")
    def event(self, obj: Event) -> str:
        return obj.summary

    @admin.display(description="deliveries")
    def deliveries(self, obj: Event) -> str:
        """Its deliveries by status: "1 delivered, 1 pending" ("none": no destination)."""
        parts = [f"{n} {status}" for status in Status.values
                 if (n := getattr(obj, f"deliveries_{status}", 0))]  # fmt: skip
        return ", ".join(parts) or "none"

    def changelist_view(self, request: HttpRequest, extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "title": _counts_title(_delivery_counts()),
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


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    """Each event's delivery to each destination: its state, and re-queueing failures."""

    list_display = ["id", "event_link", "destination", "status", "attempts", "created_at",
                    "due_or_delivered", "short_error"]  # fmt: skip
    list_display_links = ["id"]
    list_filter = ["status", "destination"]
    search_fields = ["event__key", "last_error", "event__subject__exact"]
    list_select_related = ["event", "destination"]
    ordering = ["-id"]
    show_full_result_count = False
    actions = ["requeue"]
    readonly_fields = [*(f.name for f in Delivery._meta.fields), "attempt_table"]

    class Media:
        css = {"all": ["broadcast/admin.css"]}

    @admin.display(description="attempts, newest first")
    def attempt_table(self, obj: Delivery) -> str:
        """Its last ATTEMPTS_SHOWN attempts (the (delivery, id) index serves them), and a
        link to all of them in the attempts' list."""
        attempts = obj.attempt_log.order_by("-id")[:ATTEMPTS_SHOWN]
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{} ms</td><td>{}</td><td><code>{}</code>"
            "</td></tr>",
            ((a.number, _when(a), _outcome(a), a.duration_ms, a.error, a.response)
             for a in attempts),
        )  # fmt: skip
        if not rows:
            return "None recorded."
        url = _filtered(Attempt, delivery__id__exact=obj.pk)
        return format_html(
            '<table class="attempt-log"><thead><tr><th>attempt</th><th>started</th>'
            "<th>status</th><th>duration</th><th>error</th><th>response (its first KiB)</th>"
            '</tr></thead><tbody>{}</tbody></table><p><a href="{}">All its attempts</a></p>',
            rows,
            url,
        )

    @admin.display(description="event")
    def event_link(self, obj: Delivery) -> str:
        url = reverse("admin:broadcast_event_change", args=[obj.event_id])
        return format_html('<a href="{}">{}</a>', url, obj.event.summary)

    @admin.display(description="last error")
    def short_error(self, obj: Delivery) -> str:
        return obj.last_error[:80]

    @admin.display(description="due or delivered")
    def due_or_delivered(self, obj: Delivery):
        """A pending delivery's next attempt, a delivered one's time (one column: 1280 px)."""
        if obj.status == Status.PENDING:
            return obj.available_at
        return obj.delivered_at

    def changelist_view(self, request: HttpRequest, extra_context=None):
        title = _counts_title(_delivery_counts())
        extra_context = {**(extra_context or {}), "title": title}
        return super().changelist_view(request, extra_context)

    @admin.action(description="Re-queue selected failed deliveries")
    def requeue(self, request: HttpRequest, queryset: DeliveryQuerySet) -> None:
        count = requeue_failed(deliveries=queryset, using=queryset.db)
        self.message_user(request, f"{count} failed deliveries re-queued.", messages.SUCCESS)


# The attempts a delivery's page lists; the attempts' list has them all.
ATTEMPTS_SHOWN = 50


def _when(attempt: Attempt) -> str:
    return formats.localize(timezone.localtime(attempt.started_at))


def _outcome(attempt: Attempt) -> str:
    """ "200, succeeded", "503, failed", "no answer, failed"."""
    code = attempt.status_code if attempt.status_code is not None else "no answer"
    return f"{code}, {'succeeded' if attempt.succeeded else 'failed'}"


def _filtered(model, **lookups) -> str:
    """The admin's list of `model` filtered by `lookups` (its query string)."""
    url = reverse(f"admin:broadcast_{model._meta.model_name}_changelist")
    return url + "?" + "&".join(f"{k}={v}" for k, v in lookups.items())


@admin.register(Attempt)
class AttemptAdmin(ReadOnlyAdmin):
    """The attempt log, read-only: every attempt to deliver an event to a destination."""

    list_display = ["id", "delivery_link", "destination", "number", "started_at", "outcome",
                    "duration", "short_error", "short_response"]  # fmt: skip
    list_display_links = ["id"]
    list_filter = ["succeeded", "destination"]
    list_select_related = ["destination"]
    ordering = ["-id"]
    show_full_result_count = False
    readonly_fields = [f.name for f in Attempt._meta.fields]

    class Media:
        css = {"all": ["broadcast/admin.css"]}

    @admin.display(description="delivery")
    def delivery_link(self, obj: Attempt) -> str:
        url = reverse("admin:broadcast_delivery_change", args=[obj.delivery_id])
        return format_html('<a href="{}">{}</a>', url, obj.delivery_id)

    @admin.display(description="status")
    def outcome(self, obj: Attempt) -> str:
        return _outcome(obj)

    @admin.display(description="duration", ordering="duration_ms")
    def duration(self, obj: Attempt) -> str:
        return f"{obj.duration_ms} ms"

    @admin.display(description="error")
    def short_error(self, obj: Attempt) -> str:
        return obj.error[:80]

    @admin.display(description="response")
    def short_response(self, obj: Attempt) -> str:
        return obj.response[:80]


def _check_pause_permission(request: HttpRequest) -> None:
    if not request.user.has_perm(PAUSE_PERMISSION):
        raise PermissionDenied


def _delivery_counts() -> dict[str, int]:
    return dict(Delivery.objects.values_list("status").annotate(n=Count("id")).order_by())


def _counts_title(counts: dict[str, int]) -> str:
    parts = [f"{counts.get(status, 0)} {label.lower()}" for status, label in Status.choices]
    return "Broadcast deliveries: " + ", ".join(parts)


# --- Destinations ----------------------------------------------------------------------


class DestinationForm(forms.ModelForm):
    actions = forms.MultipleChoiceField(
        choices=Action.choices,
        initial=[Action.CREATE, Action.DELETE],
        widget=forms.CheckboxSelectMultiple,
        help_text="What it subscribes to.",
    )

    class Meta:
        model = Destination
        fields = ["name", "url", "format", "enabled", "max_rate", "paused", "paused_reason"]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            self.initial["actions"] = self.instance.actions
        if self.instance.on_alert:  # the alerts destination: what it receives is not a choice
            for name in ALERTS_FIELDS:
                self.fields[name].disabled, self.fields[name].required = True, False

    def clean(self):
        """The services' own rules (the limit, the built-in destination's), as form errors."""
        super().clean()
        cleaned = self.cleaned_data
        existing = self.instance if self.instance.pk is not None else None
        changes = {f: cleaned[f] for f in self.changed_data if f in cleaned}
        try:
            destination_check(destination=existing, changes=changes)
        except ValidationError as error:
            self.add_error(None, error)
        return cleaned


SHOWN_STATE = ["disabled_reason", "managed", "created_at", "delivery_log"]


@admin.register(Destination)
class DestinationAdmin(admin.ModelAdmin):
    form = DestinationForm
    # What fits 1280 px (tests/browser/test_admin_pages.py): no filter sidebar; `managed`
    # says which one the settings keep (its page says how).
    list_display = [
        "name",
        "url",
        "subscribed",
        "enabled",
        "paused",
        "disabled_reason",
        "pending",
        "managed",
    ]
    search_fields = ["name", "url"]
    actions = ["disable", "pause_selected", "resume_selected", "rotate_secret"]
    fields = ["name", "url", "actions", "format", "enabled", "max_rate", "paused",
              "paused_reason", *SHOWN_STATE]  # fmt: skip

    def get_queryset(self, request: HttpRequest):
        return cast(DestinationQuerySet, super().get_queryset(request)).with_pending()

    def get_fields(self, request: HttpRequest, obj: Destination | None = None):
        return [f for f in self.fields if obj is not None or f not in SHOWN_STATE]

    def get_readonly_fields(self, request: HttpRequest, obj: Destination | None = None):
        if obj is None:
            return []
        return [*SHOWN_STATE, *(MANAGED_FIELDS if obj.managed else ())]

    @admin.display(description="actions")
    def subscribed(self, obj: Destination) -> str:
        return ", ".join(obj.actions)

    @admin.display(description="pending", ordering="pending")
    def pending(self, obj: Destination) -> int:
        """Its pending deliveries."""
        return getattr(obj, "pending", 0)

    @admin.display(description="delivery log")
    def delivery_log(self, obj: Destination) -> str:
        """Links to its failed deliveries (counted) and its last attempts."""
        failed = obj.deliveries.failed().count()
        failed_url = _filtered(Delivery, destination__id__exact=obj.pk, status__exact=Status.FAILED)
        attempts_url = _filtered(Attempt, destination__id__exact=obj.pk)
        return format_html(
            '<a href="{}">{} failed deliveries</a> · <a href="{}">its last attempts</a>',
            failed_url,
            failed,
            attempts_url,
        )

    def save_model(self, request: HttpRequest, obj: Destination, form, change: bool) -> None:
        """Create or change through the services; a new one's secret is kept for the answer."""
        data = form.cleaned_data
        if change:
            current = Destination.objects.get(pk=obj.pk)
            changes = {f: data[f] for f in form.changed_data if f in EDITABLE and f in data}
            saved = destination_update(destination=current, **changes)
        else:
            saved, secret = destination_create(**{f: data[f] for f in EDITABLE if f in data})
            obj.secret = secret  # type: ignore[attr-defined]
        # The admin goes on with `obj` (its log entry, the answer): make it the saved row.
        for field in Destination._meta.concrete_fields:
            setattr(obj, field.attname, getattr(saved, field.attname))

    def response_add(self, request: HttpRequest, obj: Destination, post_url_continue=None):
        return self._secret_page(request, [(obj, obj.secret)])  # type: ignore[attr-defined]

    def _secret_page(self, request: HttpRequest, secrets: list[tuple[Destination, str]]):
        """The page showing new signing secrets, this once (never cached)."""
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Signing secret" if len(secrets) == 1 else "Signing secrets",
            "secrets": secrets,
        }
        response = TemplateResponse(request, "admin/broadcast/destination/secrets.html", context)
        add_never_cache_headers(response)
        return response

    def has_delete_permission(self, request: HttpRequest, obj: Destination | None = None) -> bool:
        # A destination the settings keep follows its setting: "" disables it.
        return super().has_delete_permission(request, obj) and not (obj is not None and obj.managed)

    def get_deleted_objects(self, objs, request: HttpRequest):
        """What a deletion takes, counted rather than listed: a destination's deliveries
        may be many thousands, which Django's confirmation would list one by one."""
        destinations = list(objs)
        allowed = all(self.has_delete_permission(request, d) for d in destinations)
        deliveries = Delivery.objects.filter(destination__in=destinations)
        counts = {
            "destinations": len(destinations),
            "deliveries": deliveries.count(),
            "signing secrets": DestinationSecret.objects.filter(
                destination__in=destinations
            ).count(),
        }
        perms_needed = set() if allowed else {self.opts.verbose_name}
        return [str(d) for d in destinations], counts, perms_needed, []

    def delete_view(self, request: HttpRequest, object_id: str, extra_context=None):
        # None for an id that names no destination (or is no id): Django's view answers it.
        destination = self.get_object(request, unquote(object_id))
        pending = destination.deliveries.pending().count() if destination else 0
        extra_context = {**(extra_context or {}), "pending": pending}
        return super().delete_view(request, object_id, extra_context)

    def delete_model(self, request: HttpRequest, obj: Destination) -> None:
        destination_delete(destination=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Destination]) -> None:
        # Django's delete_selected stops at its confirmation page when a managed one is
        # selected (has_delete_permission refuses them); kept out here all the same.
        for destination in queryset.filter(managed=False):
            destination_delete(destination=destination)

    @admin.action(description="Disable selected destinations", permissions=["change"])
    def disable(self, request: HttpRequest, queryset: QuerySet[Destination]) -> None:
        for destination in queryset.filter(enabled=True):
            destination_disable(destination=destination, reason="disabled in the admin")
        self.message_user(request, "Disabled: they get no new deliveries.", messages.SUCCESS)

    @admin.action(description="Pause selected destinations", permissions=["change"])
    def pause_selected(self, request: HttpRequest, queryset: QuerySet[Destination]) -> None:
        for destination in queryset:
            destination_pause(destination=destination, reason="paused in the admin")
        self.message_user(request, "Paused: their deliveries wait.", messages.WARNING)

    @admin.action(description="Resume selected destinations", permissions=["change"])
    def resume_selected(self, request: HttpRequest, queryset: QuerySet[Destination]) -> None:
        for destination in queryset:
            destination_resume(destination=destination)
        self.message_user(request, "Resumed.", messages.SUCCESS)

    @admin.action(description="Rotate the signing secret of selected destinations",
                  permissions=["change"])  # fmt: skip
    def rotate_secret(self, request: HttpRequest, queryset: QuerySet[Destination]):
        """New secrets, shown on the answer's page; the previous ones sign beside them for
        BROADCAST_SECRET_OVERLAP_HOURS. The built-in destination's are the settings'."""
        if queryset.filter(managed=True).exists():
            self.message_user(
                request,
                "The built-in destination is signed with BROADCAST_SIGNING_SECRETS: "
                "rotate them in the settings.",
                messages.WARNING,
            )
        secrets = [
            (destination, destination_rotate_secret(destination=destination))
            for destination in queryset.filter(managed=False)
        ]
        return self._secret_page(request, secrets) if secrets else None
