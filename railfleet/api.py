"""What every API of the project shares: a strict text field, the refusal of an empty query
parameter, the error body, and how the errors every operation may answer are documented
(drf-spectacular).

The defects', the tokens' and the destinations' APIs each add their own 400 body
(the fields they take) to these.
"""

from django.core.exceptions import ValidationError
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import serializers

# The largest id a 64-bit signed integer column holds (a primary key, an event's subject):
# the bound of every id a query string takes, so that one past it is a 400, not the
# database's overflow.
MAX_ID = 2**63 - 1


class StrictCharField(serializers.CharField):
    """A CharField that takes only JSON strings (DRF's also turns numbers into text)."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


def reject_empty(value) -> None:
    """A query parameter given with no value (`?since=`) is invalid, not ignored (as an
    HTML form would have it): for the filters' fields to call before their own parsing."""
    if value == "":
        raise ValidationError("A value is required.", code="required")


class ValueRequired:
    """A filter's form field (mixed in before it) that calls `reject_empty` first."""

    def to_python(self, value):
        reject_empty(value)
        return super().to_python(value)  # type: ignore[misc]


class ErrorSerializer(serializers.Serializer):
    """The body of every error not about given fields (401, 403, 404, 405, 413, 415, 429, 503)."""

    detail = serializers.CharField()


# What every operation may answer, whatever its input (railfleet/api_errors.py,
# railfleet/security.py, railfleet/outage.py), beside its own answers.
ANY_OPERATION = {
    401: OpenApiResponse(
        ErrorSerializer,
        description="No or wrong credentials (with `WWW-Authenticate: Basic`). A browser "
        "asking for HTML without credentials is redirected to the login page instead.",
    ),
    429: OpenApiResponse(
        ErrorSerializer,
        description="Too many requests (`API_THROTTLE_RATE`), or a username locked after "
        "failed logins (then `code` is `locked_out`): retry after `Retry-After` seconds.",
    ),
    503: OpenApiResponse(
        ErrorSerializer, description="The database is unavailable: retry after `Retry-After`."
    ),
}
# What every operation with a request body may answer, beside its own 400.
WITH_A_BODY = {
    403: OpenApiResponse(
        ErrorSerializer, description="Session authentication without its CSRF token."
    ),
    413: OpenApiResponse(ErrorSerializer, description="Request body over 1 MiB."),
    415: OpenApiResponse(ErrorSerializer, description="Request body not `application/json`."),
}
RETRY_AFTER = OpenApiParameter(
    "Retry-After",
    type=int,
    location=OpenApiParameter.HEADER,
    response=[429, 503],
    description="Seconds to wait before retrying.",
)


def answers(ok: dict, *others: dict) -> dict:
    """An operation's documented responses: its success, its own errors, and ANY_OPERATION's."""
    return {**ok, **{k: v for other in others for k, v in other.items()}, **ANY_OPERATION}
