"""Query-string filters of the listing (django-filter); they compose with the pagination."""

import datetime

import django_filters
from django import forms
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema_field

from defect.models import Defect
from railfleet.api import MAX_ID, ValueRequired, reject_empty


class UTCDateTimeField(django_filters.fields.IsoDateTimeField):
    """ISO 8601, naive taken as UTC, converted to UTC here rather than in the database adapter.

    A time whose offset pushes it past the first or last representable instant
    (`0001-01-01T00:00:00+01:00`) is clamped to that instant: as a bound it
    selects the same defects, and the adapter would otherwise fail (a 500).
    """

    def to_python(self, value):
        reject_empty(value)
        value = super().to_python(value)
        if value is None:
            return None
        try:
            return value.astimezone(datetime.UTC)
        except OverflowError:
            if value.year == 1:
                return datetime.datetime.min.replace(tzinfo=datetime.UTC)
            return datetime.datetime.max.replace(tzinfo=datetime.UTC)


class UTCDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UTCDateTimeField


class IdField(ValueRequired, forms.IntegerField):
    pass


USER_HELP = "Only the defects created by the user with this id."


# The schema states the bounds, so that a fuzzer knows which ids are in range.
@extend_schema_field({"type": "integer", "minimum": 0, "maximum": MAX_ID, "description": USER_HELP})
class UserFilter(django_filters.Filter):
    field_class = IdField


SEARCH_HELP = "Only defects whose comment contains this text (case-insensitive); no NUL character."


# Django's form field refuses a NUL character (a 400): the schema says so.
@extend_schema_field({"type": "string", "pattern": "^[^\\u0000]*$", "description": SEARCH_HELP})
class SearchFilter(django_filters.CharFilter):
    pass


class DefectFilter(django_filters.FilterSet):
    user = UserFilter(field_name="user_id", min_value=0, max_value=MAX_ID, label=USER_HELP)
    since = UTCDateTimeFilter(
        field_name="timestamp",
        lookup_expr="gte",
        label="Only defects with a timestamp at or after this time (ISO 8601).",
    )
    until = UTCDateTimeFilter(
        field_name="timestamp",
        lookup_expr="lt",
        label="Only defects with a timestamp before this time (ISO 8601).",
    )
    search = SearchFilter(field_name="comment", lookup_expr="icontains", label=SEARCH_HELP)

    class Meta:
        model = Defect
        fields = ["user", "since", "until", "search"]


class DefectFilterBackend(DjangoFilterBackend):
    """DjangoFilterBackend that skips building the filter form when no filter is asked for.

    Building the FilterSet and its form is a measurable share of the unfiltered
    listing, which is the common case (the profiles in BENCHMARKS.md).
    """

    def filter_queryset(self, request, queryset, view):
        filterset_class = self.get_filterset_class(view, queryset)
        params = request.query_params
        if filterset_class and not any(name in params for name in filterset_class.base_filters):
            return queryset
        return super().filter_queryset(request, queryset, view)
