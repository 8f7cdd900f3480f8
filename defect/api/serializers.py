"""The defect's JSON representation and the validation of what clients send."""

import datetime
import functools
from typing import cast

from django.core.validators import RegexValidator
from django.db.models import F
from django.urls import get_script_prefix, get_urlconf, reverse
from rest_framework import serializers

from defect.models import COMMENT_MAX_LENGTH, Defect
from defect.services import defect_create, defect_update
from railfleet.api import StrictCharField


class CommentText(RegexValidator):
    """Not only whitespace (Python's idea of it, as the model's), and no NUL character.

    The pattern says both, so that the schema (drf-spectacular shows it) tells
    clients the whole rule. A NUL is reported by DRF's own validator, which
    every CharField has, in its words: this one does not say "blank" for it too.
    """

    regex = r"^[^\x00]*[^\s\x00][^\x00]*$"
    message = "This field may not be blank."
    code = "blank"

    def __call__(self, value) -> None:
        if "\x00" not in str(value):
            super().__call__(value)


@functools.lru_cache(maxsize=64)
def _defect_list_path(urlconf: str | None, script_prefix: str) -> str:
    """reverse("defect-list") for this URLconf and script prefix (both its inputs).

    Cached: resolving it costs more than serializing the created defect it is for.
    """
    return reverse("defect-list", urlconf=urlconf)


def _as_row(defect: Defect | dict) -> dict:
    """A Defect as the dict `DefectSerializer.values()` would give for it."""
    if not isinstance(defect, Defect):
        return defect
    return {
        "id": defect.pk,
        "comment": defect.comment,
        "timestamp": defect.timestamp,
        "user_id": defect.user_id,
        "username": defect.user.username,
    }


class DefectListSerializer(serializers.ListSerializer):
    def to_representation(self, data) -> list[dict]:
        return cast("DefectSerializer", self.child).represent_rows(data)


class DefectSerializer(serializers.Serializer):
    """A defect. `user` (the creator's id) and `username` are set by the server."""

    # The declared fields validate input and describe the schema. Output goes
    # through the hand-written `represent_rows` below, on `.values()` dicts for
    # the listing: it serializes up to 200 defects per request, and model
    # instances plus DRF's generic per-field loop (and one `reverse()` per row
    # for `url`) cost more (BENCHMARKS.md). test_fast_representation_matches_the_
    # declared_fields (tests/defect/test_api_input.py) checks that both agree.

    id = serializers.IntegerField(read_only=True)
    url = serializers.HyperlinkedIdentityField(view_name="defect-detail")
    comment = StrictCharField(
        max_length=COMMENT_MAX_LENGTH,
        trim_whitespace=False,
        validators=[CommentText()],
        help_text="What is wrong: at most 10,000 characters, not only whitespace, "
        "no NUL character.",
    )
    timestamp = serializers.DateTimeField(
        required=False,
        default_timezone=datetime.UTC,
        help_text="When the defect was found (ISO 8601); defaults to now on creation. "
        "A time without an offset is taken as UTC.",
    )
    user = serializers.IntegerField(
        source="user_id",
        read_only=True,
        help_text="Id of the user who created the defect; never changes.",
    )
    username = serializers.CharField(
        source="user.username", read_only=True, help_text="Username of the creator."
    )

    class Meta:
        list_serializer_class = DefectListSerializer

    def to_representation(self, instance: Defect | dict) -> dict:
        """Serialize a Defect, or a row of `DefectSerializer.values()`."""
        return self.represent_rows([instance])[0]

    def represent_rows(self, rows) -> list[dict]:
        """Serialize Defects or `DefectSerializer.values()` rows, in one tight loop."""
        prefix = self._detail_url_prefix()
        utc = datetime.UTC
        return [
            {
                "id": row["id"],
                "url": f"{prefix}{row['id']}",
                "comment": row["comment"],
                # isoformat() of a UTC time ends with "+00:00"; DRF writes that as "Z".
                "timestamp": row["timestamp"].astimezone(utc).isoformat()[:-6] + "Z",
                "user": row["user_id"],
                "username": row["username"],
            }
            for row in map(_as_row, rows)
        ]

    @staticmethod
    def values(queryset):
        """The rows the listing serializes: plain dicts, no model instances to build."""
        return queryset.values(
            "id", "comment", "timestamp", "user_id", username=F("user__username")
        )

    def _detail_url_prefix(self) -> str:
        """The absolute URL of a defect without its id."""
        request = self.context.get("request")
        prefix = _defect_list_path(get_urlconf(), get_script_prefix()) + "/"
        return request.build_absolute_uri(prefix) if request else prefix

    def create(self, validated_data: dict) -> Defect:
        # The view passes user=request.user through serializer.save().
        return defect_create(
            user=validated_data["user"],
            comment=validated_data["comment"],
            timestamp=validated_data.get("timestamp"),
        )

    def update(self, instance: Defect, validated_data: dict) -> Defect:
        return defect_update(
            defect=instance,
            comment=validated_data.get("comment"),
            timestamp=validated_data.get("timestamp"),
        )


class ValidationErrorSerializer(serializers.Serializer):
    """A 400: each field at fault with its messages; a body that is not JSON gets `detail`."""

    detail = serializers.CharField(required=False, help_text="Set when the body is unreadable.")
    non_field_errors = serializers.ListField(child=serializers.CharField(), required=False)
    comment = serializers.ListField(child=serializers.CharField(), required=False)
    timestamp = serializers.ListField(child=serializers.CharField(), required=False)
