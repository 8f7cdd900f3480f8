"""Keyset pagination of the defect listing, newest first, on the position (timestamp, id).

Written by hand rather than with DRF's CursorPagination, because that class
keys on the first ordering field only: rows sharing a timestamp are told apart
by an offset inside the cursor, so a page among thousands of equal timestamps
costs a scan over all of them, and the offset goes stale when a tied row is
created or deleted between requests (a row is then skipped or repeated).

Here the cursor holds a full position: the (timestamp, id) of the row at the
edge of the page already seen, and a direction. The next page is the rows
strictly after that position in the order (-timestamp, -id); the previous page
the rows strictly before it. Each page is read by seeking the index on
(-timestamp, -id) (or (user, -timestamp, -id) when filtered by user) to the
position and reading on from there:

- on PostgreSQL, in one query: `(timestamp, id) < (t, pk)` is an index
  condition on the whole row value;
- on SQLite, which seeks a row value on its first column only (and would scan
  the rows tied with the position), with at most two seeks: the rows with the
  same timestamp and a lower (higher) id, then, if the page is not full, the
  rows with an older (newer) timestamp,

so page 10,000 costs what page 1 costs, ties or not. Whether there is a page
beyond comes with the page (one row more is read); whether there is one on the
cursor's side comes from the cursor, as in DRF's CursorPagination (see
`paginate_queryset`). Rows created or deleted between requests never shift the
position: following `next` visits every defect that exists during the whole
walk exactly once.
"""

import base64
import binascii
import datetime
from typing import NamedTuple

from django.db import connections
from django.db.models import F, QuerySet
from django.db.models.fields.tuple_lookups import TupleGreaterThan, TupleLessThan
from django.utils.dateparse import parse_datetime
from django.utils.timezone import is_aware
from rest_framework import serializers
from rest_framework.pagination import BasePagination
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

from railfleet.api import MAX_ID


class Position(NamedTuple):
    """A place in the listing: after (or before) the row with this timestamp and id."""

    timestamp: datetime.datetime  # aware
    id: int
    backwards: bool = False


def _position(row, backwards: bool = False) -> Position:
    """The position of a row, a model instance or a `.values()` dict."""
    if isinstance(row, dict):
        return Position(row["timestamp"], row["id"], backwards)
    return Position(row.timestamp, row.pk, backwards)


def _seeks_row_values(queryset: QuerySet) -> bool:
    """Whether the database seeks an index on a whole row value `(timestamp, id) < (t, pk)`.

    PostgreSQL does (the index condition is the row comparison). SQLite (3.40)
    seeks on the timestamp only and filters the ties, which costs a scan of the
    rows tied with the cursor's: there the two seeks stay.
    """
    return connections[queryset.db].vendor == "postgresql"


def _seek(queryset: QuerySet, position: Position, *, older: bool, limit: int) -> list:
    """Up to `limit` rows strictly older (or newer) than `position`, nearest first."""
    t, pk = position.timestamp, position.id
    order = ("-timestamp", "-id") if older else ("timestamp", "id")
    if _seeks_row_values(queryset):
        # Django's row-value lookups (django.db.models.fields.tuple_lookups, those of
        # composite primary keys) write `(timestamp, id) < (%s, %s)` on PostgreSQL.
        beyond = TupleLessThan if older else TupleGreaterThan
        seek = queryset.filter(beyond((F("timestamp"), F("id")), (t, pk)))
        return list(seek.order_by(*order)[:limit])
    if older:
        ties = queryset.filter(timestamp=t, id__lt=pk)
        beyond = queryset.filter(timestamp__lt=t)
    else:
        ties = queryset.filter(timestamp=t, id__gt=pk)
        beyond = queryset.filter(timestamp__gt=t)
    rows = list(ties.order_by(order[1])[:limit])
    if len(rows) < limit:
        rows.extend(beyond.order_by(*order)[: limit - len(rows)])
    return rows


def _exists(queryset: QuerySet, position: Position, *, older: bool) -> bool:
    return bool(_seek(queryset.values_list("id"), position, older=older, limit=1))


class KeysetPagination(BasePagination):
    """`?cursor=<opaque>&page_size=<1..200>`; see the module docstring for why and how."""

    cursor_query_param = "cursor"
    page_size_query_param = "page_size"
    page_size = 200
    max_page_size = 200

    # --- the cursor ---------------------------------------------------------

    @staticmethod
    def encode_cursor(position: Position) -> str:
        text = "{}|{}|{}".format(
            "p" if position.backwards else "n", position.timestamp.isoformat(), position.id
        )
        return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")

    def decode_cursor(self, request) -> Position | None:
        encoded = request.query_params.get(self.cursor_query_param)
        if not encoded:  # absent or empty: the first page
            return None
        try:
            padded = encoded + "=" * (-len(encoded) % 4)
            direction, timestamp_text, pk_text = (
                base64.urlsafe_b64decode(padded.encode("ascii")).decode().split("|")
            )
            timestamp, pk = parse_datetime(timestamp_text), int(pk_text)
            if not (
                direction in ("n", "p")
                and timestamp is not None
                and is_aware(timestamp)
                and 0 <= pk <= MAX_ID
            ):
                raise ValueError(encoded)
            # In UTC here: a time out of range is then a 400, not an error in the database adapter.
            timestamp = timestamp.astimezone(datetime.UTC)
        except (ValueError, TypeError, OverflowError, binascii.Error, UnicodeError):
            raise serializers.ValidationError(
                {self.cursor_query_param: ["Invalid cursor."]}, code="invalid"
            ) from None
        return Position(timestamp, pk, backwards=direction == "p")

    def get_page_size(self, request) -> int:
        """The `page_size` asked for, capped at 200; not a positive integer is a 400."""
        value = request.query_params.get(self.page_size_query_param)
        if value is None:
            return self.page_size
        try:
            size = int(value)
        except ValueError:
            size = 0
        if size < 1:
            raise serializers.ValidationError(
                {self.page_size_query_param: ["A positive integer is required."]}, code="invalid"
            )
        return min(size, self.max_page_size)

    # --- paging -------------------------------------------------------------

    def paginate_queryset(self, queryset, request, view=None):
        self.request = request
        size = self.get_page_size(request)
        position = self.decode_cursor(request)
        self.next_position = self.previous_position = None
        if position is None:
            rows = list(queryset.order_by("-timestamp", "-id")[: size + 1])
            if len(rows) > size:
                rows = rows[:size]
                self.next_position = _position(rows[-1])
            return rows

        older = not position.backwards
        rows = _seek(queryset, position, older=older, limit=size + 1)
        more_beyond = len(rows) > size
        rows = rows[:size]
        if position.backwards:
            rows.reverse()
        # The two edges of the page, as positions to continue from.
        first = _position(rows[0], backwards=True) if rows else position
        last = _position(rows[-1]) if rows else position
        # The far side of the page is known from the seek (its extra row). The
        # near side, the page the cursor came from, is known from the cursor
        # itself, as in DRF's CursorPagination: a `next` cursor was made from a
        # page that ends with a newer row, so there is a previous page (and a
        # `previous` cursor implies a next page). Only an empty page, whose
        # cursor may point past rows deleted since, asks the database.
        if older:
            has_next = more_beyond
            has_previous = bool(rows) or _exists(queryset, first, older=False)
        else:
            has_previous = more_beyond
            has_next = bool(rows) or _exists(queryset, last, older=True)
        if has_next:
            self.next_position = last._replace(backwards=False)
        if has_previous:
            self.previous_position = first._replace(backwards=True)
        return rows

    def _link(self, position: Position | None) -> str | None:
        if position is None:
            return None
        url = self.request.build_absolute_uri()
        return replace_query_param(url, self.cursor_query_param, self.encode_cursor(position))

    def get_next_link(self) -> str | None:
        return self._link(self.next_position)

    def get_previous_link(self) -> str | None:
        return self._link(self.previous_position)

    def get_paginated_response(self, data) -> Response:
        return Response(
            {
                "next": self.get_next_link(),
                "previous": self.get_previous_link(),
                "results": data,
            }
        )

    # --- OpenAPI ------------------------------------------------------------

    def get_paginated_response_schema(self, schema: dict) -> dict:
        link = {"type": "string", "format": "uri", "nullable": True}
        return {
            "type": "object",
            "required": ["next", "previous", "results"],
            "properties": {
                "next": {**link, "description": "The older page; null on the last."},
                "previous": {**link, "description": "The newer page; null on the first."},
                "results": schema,
            },
        }

    def get_schema_operation_parameters(self, view) -> list[dict]:
        return [
            {
                "name": self.cursor_query_param,
                "required": False,
                "in": "query",
                "description": "Opaque position in the listing: pass the one in the `next` or "
                "`previous` link as given (they carry it); any other is a 400.",
                # `format` names it for tools (tests/defect/test_api_fuzz.py makes real ones).
                "schema": {"type": "string", "format": "cursor", "pattern": "^[A-Za-z0-9_-]*$"},
            },
            {
                "name": self.page_size_query_param,
                "required": False,
                "in": "query",
                "description": f"Defects per page, default {self.page_size}; "
                f"larger values are capped at {self.max_page_size}.",
                "schema": {"type": "integer", "minimum": 1},
            },
        ]
