"""A destination's delivery log, for staff: its deliveries and attempts, resending one delivery,
replaying many.

    GET  /api/destinations/<id>/deliveries?status=pending|delivered|failed
    GET  /api/destinations/<id>/attempts?status=failed|succeeded
    POST /api/destinations/<id>/deliveries/<delivery_id>/resend
    POST /api/destinations/<id>/replay

As /api/destinations (broadcast/api.py, whose base view, pagination and
documented errors these share): staff only, anonymous 401 with
`WWW-Authenticate`, other users 403, an unknown destination (or a delivery of
another destination) 404. Lists are newest first, by id, paginated by cursor.
The writes are broadcast/replay.py's services.
"""

import django_filters
from django import forms
from django.db.models import F
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import generics, serializers, status
from rest_framework.parsers import JSONParser
from rest_framework.permissions import IsAdminUser, IsAuthenticated
from rest_framework.response import Response
from rest_framework.settings import api_settings

from broadcast.api import NOT_FOUND, NOT_STAFF, DestinationPagination
from broadcast.models import Attempt, Delivery, Destination, Status
from broadcast.replay import Replayed, TooManyToReplay, delivery_resend, replay, replay_max
from railfleet.api import (
    MAX_ID,
    RETRY_AFTER,
    WITH_A_BODY,
    ErrorSerializer,
    ValueRequired,
    answers,
)
from railfleet.api_errors import BodySizeLimitMixin


class DeliverySerializer(serializers.Serializer):
    """A delivery of an event to the destination, as listed and as a resend answers it."""

    id = serializers.IntegerField(read_only=True)
    event = serializers.UUIDField(
        source="event.key",
        read_only=True,
        help_text="The event's key, sent as its Idempotency-Key and webhook-id.",
    )
    payload = serializers.SerializerMethodField(
        help_text="What the destination is sent for it, in its format: "
        '{"user": <id>, "action": "create"|"delete"} (`counter`), or the event\'s '
        'envelope {"type", "timestamp", "data"} (`event`).'
    )
    subject = serializers.IntegerField(
        source="event.subject",
        read_only=True,
        allow_null=True,
        help_text="The id of what changed: the defect's, for a defect's event.",
    )
    status = serializers.ChoiceField(choices=Status.choices, read_only=True)
    attempts = serializers.IntegerField(read_only=True, help_text="Attempts made so far.")
    next_attempt_at = serializers.SerializerMethodField(
        help_text="While pending, when it is next due: its next attempt, or, while a "
        "dispatcher is sending it, the end of that dispatcher's lease (when another would "
        "take it over). Null once delivered or failed."
    )
    delivered_at = serializers.DateTimeField(
        read_only=True,
        allow_null=True,
        help_text="When it was delivered; null while pending or failed.",
    )
    last_error = serializers.CharField(
        read_only=True, help_text="Its last failed attempt's error; empty once delivered."
    )
    created_at = serializers.DateTimeField(read_only=True, help_text="The event's creation.")

    @extend_schema_field(serializers.JSONField())
    def get_payload(self, delivery: Delivery) -> dict:
        return delivery.body()

    @extend_schema_field(serializers.DateTimeField(allow_null=True))
    def get_next_attempt_at(self, delivery: Delivery) -> str | None:
        if delivery.status != Status.PENDING:
            return None
        return serializers.DateTimeField().to_representation(delivery.available_at)


class AttemptSerializer(serializers.Serializer):
    """One attempt to deliver an event to the destination."""

    id = serializers.IntegerField(read_only=True)
    delivery = serializers.IntegerField(source="delivery_id", read_only=True)
    event = serializers.UUIDField(source="event_key", read_only=True, help_text="The event's key.")
    attempt = serializers.IntegerField(
        source="number", read_only=True, help_text="1 for the delivery's first attempt."
    )
    started_at = serializers.DateTimeField(read_only=True)
    duration_ms = serializers.IntegerField(read_only=True)
    status_code = serializers.IntegerField(
        read_only=True,
        allow_null=True,
        help_text="The HTTP status answered; null when no answer came (the connection "
        "failed, or the request timed out).",
    )
    succeeded = serializers.BooleanField(read_only=True, help_text="A 2xx came back.")
    error = serializers.CharField(read_only=True, help_text="Empty when it succeeded.")
    response = serializers.CharField(
        read_only=True, help_text="The start of the response body, at most 1 KiB, as received."
    )


class ReplaySerializer(serializers.Serializer):
    since = serializers.DateTimeField(
        help_text="Events created at or after this time (ISO 8601; without an offset, UTC)."
    )
    until = serializers.DateTimeField(
        required=False, help_text="Events created before this time (ISO 8601); default: now."
    )
    status = serializers.ChoiceField(
        choices=Replayed.choices,
        default=Replayed.FAILED.value,
        help_text='Which deliveries: "failed" (the default), "delivered", or "all" (failed '
        "and delivered: pending ones are queued already).",
    )
    dry_run = serializers.BooleanField(default=False, help_text="Count them, change nothing.")

    def validate(self, data: dict) -> dict:
        if "until" in data and data["since"] >= data["until"]:
            raise serializers.ValidationError({"until": ["Must be after since."]})
        return data


class CountSerializer(serializers.Serializer):
    count = serializers.IntegerField(
        help_text="The deliveries replayed (with dry_run: that would be)."
    )


class ListErrorSerializer(serializers.Serializer):
    """A listing's 400: each query parameter at fault with its messages."""

    cursor = serializers.ListField(child=serializers.CharField(), required=False)
    page_size = serializers.ListField(child=serializers.CharField(), required=False)
    status = serializers.ListField(child=serializers.CharField(), required=False)


class DeliveryListErrorSerializer(ListErrorSerializer):
    """The deliveries listing's 400, which also takes a defect's id and an event's key."""

    subject = serializers.ListField(child=serializers.CharField(), required=False)
    event = serializers.ListField(child=serializers.CharField(), required=False)


class ReplayErrorSerializer(serializers.Serializer):
    """A replay's 400: each field at fault with its messages; `non_field_errors` for the cap."""

    detail = serializers.CharField(required=False, help_text="Set when the body is unreadable.")
    non_field_errors = serializers.ListField(child=serializers.CharField(), required=False)
    since = serializers.ListField(child=serializers.CharField(), required=False)
    until = serializers.ListField(child=serializers.CharField(), required=False)
    status = serializers.ListField(child=serializers.CharField(), required=False)
    dry_run = serializers.ListField(child=serializers.CharField(), required=False)


class StatusField(ValueRequired, django_filters.fields.ChoiceField):
    pass


class StatusFilter(django_filters.ChoiceFilter):
    field_class = StatusField


SUBJECT_HELP = "Only the deliveries of events of what has this id (a defect's id)."


class SubjectField(ValueRequired, forms.IntegerField):
    pass


@extend_schema_field(
    {"type": "integer", "minimum": 0, "maximum": MAX_ID, "description": SUBJECT_HELP}
)
class SubjectFilter(django_filters.Filter):
    field_class = SubjectField


class KeyField(ValueRequired, forms.UUIDField):
    pass


class KeyFilter(django_filters.UUIDFilter):
    field_class = KeyField


class DeliveryFilter(django_filters.FilterSet):
    status = StatusFilter(choices=Status.choices, label="Only the deliveries in this status.")
    subject = SubjectFilter(
        field_name="event__subject", min_value=0, max_value=MAX_ID, label=SUBJECT_HELP
    )
    event = KeyFilter(field_name="event__key", label="Only the delivery of the event with this key")

    class Meta:
        model = Delivery
        fields = ["status", "subject", "event"]


class AttemptFilter(django_filters.FilterSet):
    status = StatusFilter(
        choices=[("failed", "failed"), ("succeeded", "succeeded")],
        method="by_outcome",
        label="Only the failed, or the successful, attempts.",
    )

    class Meta:
        model = Attempt
        fields = ["status"]

    def by_outcome(self, queryset, name: str, value: str):
        return queryset.succeeded() if value == "succeeded" else queryset.failed()


class NewestFirstPagination(DestinationPagination):
    """The destinations' pagination and its 400s, newest first: by id (the primary keys,
    and for failed attempts their (destination, id) index: broadcast/models.py `Attempt`)."""

    ordering = "-id"


LIST_BAD_REQUEST = OpenApiResponse(
    ListErrorSerializer, description="A cursor it did not make, a bad page_size or status."
)
DELIVERY_LIST_BAD_REQUEST = OpenApiResponse(
    DeliveryListErrorSerializer,
    description="A cursor it did not make, a bad page_size, status, subject or event.",
)
DESTINATION_ID = OpenApiParameter(
    "id", int, OpenApiParameter.PATH, description="The destination's id."
)
DELIVERY_ID = OpenApiParameter(
    "delivery_id", int, OpenApiParameter.PATH, description="The delivery's id."
)
DELIVERY_NOT_FOUND = OpenApiResponse(
    ErrorSerializer, description="No destination with this id, or no delivery of it with this id."
)


class DestinationLogView(BodySizeLimitMixin, generics.GenericAPIView):
    # As DestinationAPIView, but each view's queryset is of its own model (or none).
    parser_classes = [JSONParser]
    permission_classes = [IsAuthenticated, IsAdminUser]

    def destination(self) -> Destination:
        """The destination the path names; a 404 when there is none."""
        return generics.get_object_or_404(Destination.objects.all(), pk=self.kwargs["pk"])


def listing(what: str, serializer: type[serializers.Serializer], bad_request=LIST_BAD_REQUEST):
    """The schema of a list of the destination's `what`."""
    ok = {200: serializer(many=True), 400: bad_request, 404: NOT_FOUND}
    return extend_schema_view(
        get=extend_schema(
            summary=f"List a destination's {what} (staff only), newest first",
            parameters=[DESTINATION_ID, RETRY_AFTER],
            responses=answers(ok, NOT_STAFF),
        )
    )


class DestinationLogList(DestinationLogView, generics.ListAPIView):
    """The destination's rows of the class's `queryset` (whose model the schema takes),
    newest first."""

    pagination_class = NewestFirstPagination

    def get_queryset(self):
        queryset = super().get_queryset()
        if getattr(self, "swagger_fake_view", False):  # drf-spectacular's schema generation
            return queryset.none()
        return queryset.filter(destination=self.destination())


@listing("deliveries", DeliverySerializer, DELIVERY_LIST_BAD_REQUEST)
class DeliveryList(DestinationLogList):
    queryset = Delivery.objects.select_related("event", "destination")
    serializer_class = DeliverySerializer
    filterset_class = DeliveryFilter


@listing("delivery attempts", AttemptSerializer)
class AttemptList(DestinationLogList):
    queryset = Attempt.objects.annotate(event_key=F("delivery__event__key"))
    serializer_class = AttemptSerializer
    filterset_class = AttemptFilter


@extend_schema_view(
    post=extend_schema(
        summary="Send a delivery again: pending and due now, its attempts kept (staff only)",
        description="A delivered delivery is sent again (the receiver deduplicates by the "
        "event's key), its `delivered_at` cleared until then; a failed one is retried; a "
        "pending one is due now, unless a dispatcher is sending it at this moment.",
        request=None,
        parameters=[DESTINATION_ID, DELIVERY_ID, RETRY_AFTER],
        responses=answers({202: DeliverySerializer, 404: DELIVERY_NOT_FOUND}, NOT_STAFF),
    ),
)
class DeliveryResend(DestinationLogView):
    serializer_class = DeliverySerializer

    def post(self, request, *args, **kwargs):
        deliveries = Delivery.objects.filter(destination=self.destination())
        delivery = generics.get_object_or_404(deliveries, pk=kwargs["delivery_id"])
        resent = delivery_resend(delivery=delivery)
        return Response(DeliverySerializer(resent).data, status=status.HTTP_202_ACCEPTED)


@extend_schema_view(
    post=extend_schema(
        summary="Replay a destination's failed or delivered deliveries of a time window "
        "(staff only)",
        description="The deliveries in `status` of events created in [since, until) become "
        "pending and due now, their attempts kept: 202 with their count; with `dry_run`, "
        "200 with the count and nothing changed. More than BROADCAST_REPLAY_MAX (default "
        "100,000) is a 400 that says how many match, and changes nothing.",
        parameters=[DESTINATION_ID, RETRY_AFTER],
        request=ReplaySerializer,
        responses=answers(
            {
                200: OpenApiResponse(CountSerializer, description="A dry run: the count."),
                202: OpenApiResponse(CountSerializer, description="Replayed: the count."),
                400: OpenApiResponse(ReplayErrorSerializer, description="Invalid input."),
                404: NOT_FOUND,
            },
            WITH_A_BODY,
            NOT_STAFF,
        ),
    ),
)
class DestinationReplay(DestinationLogView):
    serializer_class = ReplaySerializer

    def post(self, request, *args, **kwargs):
        destination = self.destination()
        serializer = ReplaySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        window = serializer.validated_data
        try:
            count = replay(destination=destination, limit=replay_max(), **window)
        except TooManyToReplay as error:
            key = api_settings.NON_FIELD_ERRORS_KEY
            raise serializers.ValidationError({key: [str(error)]}) from None
        code = status.HTTP_200_OK if window["dry_run"] else status.HTTP_202_ACCEPTED
        return Response({"count": count}, status=code)
