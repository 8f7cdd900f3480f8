"""/api/destinations: staff manage where events are delivered.

Staff only: anonymous 401 (with `WWW-Authenticate`, as every route of the API),
an authenticated user who is not staff 403. The views validate, call a service
of broadcast/destinations.py and serialize. A destination's signing secret is
in the answer that made it (POST) or rotated it, and in no other answer.

The OpenAPI helpers (`answers`, the common errors) are the project's
(railfleet/api.py), as every API's.
"""

import math

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import generics, serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.pagination import CursorPagination
from rest_framework.parsers import JSONParser
from rest_framework.permissions import IsAdminUser, IsAuthenticated
from rest_framework.response import Response

from broadcast.destinations import (
    destination_create,
    destination_delete,
    destination_rotate_secret,
    destination_update,
)
from broadcast.models import (
    NAME_MAX_LENGTH,
    URL_MAX_LENGTH,
    Action,
    Destination,
    Format,
    validate_http_url,
)
from railfleet.api import RETRY_AFTER, WITH_A_BODY, ErrorSerializer, StrictCharField, answers
from railfleet.api_errors import BodySizeLimitMixin

REASON_MAX_LENGTH = 1000


def validate_url(value: str) -> None:
    """The model's URL rule, as a 400 naming the field."""
    try:
        validate_http_url(value)
    except DjangoValidationError as error:
        raise serializers.ValidationError(error.messages) from None


def validate_finite(value: float) -> None:
    if not math.isfinite(value):
        raise serializers.ValidationError("A finite number is required.")


class DestinationSerializer(serializers.Serializer):
    """A destination as listed and shown: never its secrets."""

    id = serializers.IntegerField(read_only=True)
    name = StrictCharField(max_length=NAME_MAX_LENGTH, help_text="Unique, 1 to 100 characters.")
    url = StrictCharField(
        max_length=URL_MAX_LENGTH,
        validators=[validate_url],
        help_text="Where deliveries are POSTed: an absolute http or https URL.",
    )
    actions = serializers.ListField(
        child=serializers.ChoiceField(choices=Action.choices),
        min_length=1,
        max_length=len(Action.choices),
        default=[Action.CREATE.value, Action.DELETE.value],
        help_text='What it subscribes to: a non-empty subset of ["create", "delete"].',
    )
    format = serializers.ChoiceField(
        choices=Format.choices,
        default=Format.COUNTER.value,
        help_text='"counter": {"user", "action"}, the counter server\'s body; "event": a '
        'Standard Webhooks envelope {"type", "timestamp", "data"}.',
    )
    enabled = serializers.BooleanField(
        default=True, help_text="A disabled destination gets no new deliveries."
    )
    max_rate = serializers.FloatField(
        min_value=0,
        default=0.0,
        validators=[validate_finite],
        help_text="Deliveries per second at most, from every dispatcher together; 0: unlimited.",
    )
    paused = serializers.BooleanField(
        default=False, help_text="A paused destination's deliveries wait."
    )
    paused_reason = StrictCharField(
        max_length=REASON_MAX_LENGTH, allow_blank=True, default="", trim_whitespace=False
    )
    disabled_reason = serializers.CharField(
        read_only=True, help_text="Why it was disabled; empty while enabled."
    )
    created_at = serializers.DateTimeField(read_only=True)
    managed = serializers.BooleanField(
        read_only=True,
        help_text="The built-in destination, kept in step with COUNTER_SERVER_URL: its "
        "name and URL cannot be changed here, and it is signed with BROADCAST_SIGNING_SECRETS.",
    )

    def validate_actions(self, actions: list[str]) -> list[str]:
        if len(set(actions)) != len(actions):
            raise serializers.ValidationError("Each action at most once.")
        return actions


class DestinationCreatedSerializer(DestinationSerializer):
    """A new destination, with its signing secret: in the answer to its creation only."""

    secret = serializers.CharField(
        read_only=True, help_text="Its signing secret (whsec_...): shown this once, never again."
    )


class SecretSerializer(serializers.Serializer):
    secret = serializers.CharField(
        help_text="The new signing secret (whsec_...): shown this once, never again."
    )


class DestinationErrorSerializer(serializers.Serializer):
    """A 400: each field at fault with its messages; `non_field_errors` for the limit."""

    detail = serializers.CharField(required=False, help_text="Set when the body is unreadable.")
    non_field_errors = serializers.ListField(child=serializers.CharField(), required=False)
    name = serializers.ListField(child=serializers.CharField(), required=False)
    url = serializers.ListField(child=serializers.CharField(), required=False)
    actions = serializers.JSONField(
        required=False,
        help_text="Its messages: a list, or for actions at fault an object of lists keyed by "
        'their position (`{"0": ["..."]}`).',
    )


class DestinationPagination(CursorPagination):
    """{"next", "previous", "results"} as the defects' listing, oldest destination first,
    with its 400s: a cursor it did not make, a `page_size` that is not a positive integer.

    DRF's own cursor pagination suffices here: ordered by the id alone, its cursor
    needs no offset among ties (the reason the defects have their own).
    """

    ordering = "id"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200

    def decode_cursor(self, request):
        try:
            return super().decode_cursor(request)
        except NotFound:
            raise serializers.ValidationError(
                {self.cursor_query_param: ["Invalid cursor."]}, code="invalid"
            ) from None

    def get_page_size(self, request) -> int:
        value = request.query_params.get(self.page_size_query_param)
        if value is None:
            return self.page_size
        # ASCII digits only: str.isdigit() also takes "³", which int() refuses.
        if not (value.isascii() and value.isdigit()) or int(value) < 1:
            raise serializers.ValidationError(
                {self.page_size_query_param: ["A positive integer is required."]},
                code="invalid",
            )
        return min(int(value), self.max_page_size)


BAD_REQUEST = OpenApiResponse(DestinationErrorSerializer, description="Invalid input.")
NOT_FOUND = OpenApiResponse(ErrorSerializer, description="No destination with this id.")
NOT_STAFF = {
    403: OpenApiResponse(
        ErrorSerializer,
        description="Not a staff user, or session authentication without its CSRF token.",
    )
}
NO_STORE = {"Cache-Control": "no-store"}
# What PUT and PATCH answer.
CHANGED = answers(
    {200: DestinationSerializer, 404: NOT_FOUND}, WITH_A_BODY, {400: BAD_REQUEST}, NOT_STAFF
)


class DestinationAPIView(BodySizeLimitMixin, generics.GenericAPIView):
    parser_classes = [JSONParser]
    permission_classes = [IsAuthenticated, IsAdminUser]
    serializer_class: type[serializers.Serializer] = DestinationSerializer
    queryset = Destination.objects.all()


@extend_schema_view(
    get=extend_schema(
        summary="List destinations (staff only), oldest first",
        parameters=[RETRY_AFTER],
        responses=answers({200: DestinationSerializer(many=True), 400: BAD_REQUEST}, NOT_STAFF),
    ),
    post=extend_schema(
        summary="Create a destination (its signing secret is in this answer only)",
        parameters=[RETRY_AFTER],
        responses=answers(
            {201: DestinationCreatedSerializer}, WITH_A_BODY, {400: BAD_REQUEST}, NOT_STAFF
        ),
    ),
)
class DestinationList(DestinationAPIView, generics.ListAPIView):
    pagination_class = DestinationPagination

    def post(self, request, *args, **kwargs):
        serializer = DestinationSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        destination, secret = destination_create(**serializer.validated_data)
        body = {**DestinationSerializer(destination).data, "secret": secret}
        return Response(body, status=status.HTTP_201_CREATED, headers=NO_STORE)


@extend_schema_view(
    get=extend_schema(
        summary="Retrieve a destination (staff only)",
        parameters=[RETRY_AFTER],
        responses=answers({200: DestinationSerializer, 404: NOT_FOUND}, NOT_STAFF),
    ),
    put=extend_schema(
        summary="Replace a destination's settings (enabled: true clears its disabled reason)",
        parameters=[RETRY_AFTER],
        responses=CHANGED,
    ),
    patch=extend_schema(
        summary="Change some of a destination's settings (enabled: true clears its "
        "disabled reason)",
        parameters=[RETRY_AFTER],
        responses=CHANGED,
    ),
    delete=extend_schema(
        summary="Delete a destination and its deliveries, pending ones included",
        parameters=[RETRY_AFTER],
        responses=answers({204: None, 400: BAD_REQUEST, 404: NOT_FOUND}, NOT_STAFF),
    ),
)
class DestinationDetail(DestinationAPIView, generics.RetrieveUpdateDestroyAPIView):
    def update(self, request, *args, **kwargs):
        partial = kwargs.pop("partial", False)
        destination = self.get_object()
        serializer = DestinationSerializer(destination, data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        destination = destination_update(destination=destination, **serializer.validated_data)
        return Response(DestinationSerializer(destination).data)

    def perform_destroy(self, instance: Destination) -> None:
        destination_delete(destination=instance)


@extend_schema_view(
    post=extend_schema(
        summary="Rotate a destination's signing secret (the new one is in this answer only)",
        description="The new secret signs from now on; the previous one keeps signing "
        "beside it for BROADCAST_SECRET_OVERLAP_HOURS (default 24), then stops.",
        request=None,
        parameters=[RETRY_AFTER],
        responses=answers({200: SecretSerializer, 400: BAD_REQUEST, 404: NOT_FOUND}, NOT_STAFF),
    ),
)
class DestinationRotateSecret(DestinationAPIView):
    serializer_class = SecretSerializer

    def post(self, request, *args, **kwargs):
        secret = destination_rotate_secret(destination=self.get_object())
        return Response({"secret": secret}, headers=NO_STORE)
