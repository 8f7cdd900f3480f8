"""Query-string filters of the listing (django-filter); they compose with the pagination."""

import datetime

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django_filters.rest_framework import DjangoFilterBackend

from defect.models import Defect

MAX_ID = 2**63 - 1


class UTCDateTimeField(django_filters.fields.IsoDateTimeField):
    """ISO 8601, naive taken as UTC; a time outside the representable range is invalid.

    Converting to UTC here, not in the database adapter, turns an overflow such
    as `0001-01-01T00:00:00+01:00` into a 400 instead of a 500.
    """

    def to_python(self, value):
        value = super().to_python(value)
        if value is None:
            return None
        try:
            return value.astimezone(datetime.UTC)
        except OverflowError:
            raise ValidationError("Date and time out of range.", code="overflow") from None


class UTCDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UTCDateTimeField


class IdFilter(django_filters.Filter):
    field_class = forms.IntegerField


class DefectFilter(django_filters.FilterSet):
    user = IdFilter(
        field_name="user_id",
        min_value=0,
        max_value=MAX_ID,
        label="Only the defects created by the user with this id.",
    )
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
    search = django_filters.CharFilter(
        field_name="comment",
        lookup_expr="icontains",
        max_length=1000,
        label="Only defects whose comment contains this text (case-insensitive).",
    )

    class Meta:
        model = Defect
        fields = ["user", "since", "until", "search"]


class DefectFilterBackend(DjangoFilterBackend):
    """DjangoFilterBackend that skips building the filter form when no filter is asked for.

    Building the FilterSet and its form costs about a millisecond per request,
    a large share of the unfiltered listing, which is the common case.
    """

    def filter_queryset(self, request, queryset, view):
        filterset_class = self.get_filterset_class(view, queryset)
        params = request.query_params
        if filterset_class and not any(name in params for name in filterset_class.base_filters):
            return queryset
        return super().filter_queryset(request, queryset, view)
