"""defect/events.py: each event carries both formats (the counter server's body and the
Standard Webhooks envelope), the defect's id as its subject, and its deliveries."""

import datetime

import pytest
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from broadcast.models import Delivery, Event
from defect.models import Defect
from defect.services import defect_create, defect_delete
from tests.helpers import basic_client

pytestmark = pytest.mark.django_db

FOUND = datetime.datetime(2026, 11, 28, 9, 15, tzinfo=datetime.UTC)


def as_the_api_shows_it(defect: Defect) -> dict:
    body = basic_client("alice", "alice-password").get(f"/api/defects/{defect.pk}").json()
    return {key: body[key] for key in ("id", "user", "comment", "timestamp")}


def test_a_creation_carries_both_formats_and_the_defects_id(user):
    before = timezone.now()
    defect = defect_create(user=user, comment="Horn silent", timestamp=FOUND)

    event = Event.objects.get()
    assert event.payload == {"user": user.pk, "action": "create"}
    assert event.subject == defect.pk
    assert event.envelope["type"] == "defect.created"
    assert event.envelope["data"] == as_the_api_shows_it(defect)
    assert event.envelope["data"]["timestamp"] == "2026-11-28T09:15:00Z"
    changed = parse_datetime(event.envelope["timestamp"])
    assert event.envelope["timestamp"].endswith("Z")
    assert before <= changed <= event.created_at


def test_a_deletion_carries_the_defect_as_it_was(user):
    defect = defect_create(user=user, comment="Door stuck", timestamp=FOUND)
    shown = as_the_api_shows_it(defect)
    defect_delete(defect=defect)

    event = Event.objects.order_by("id").last()
    assert event.payload == {"user": user.pk, "action": "delete"}
    assert (event.envelope["type"], event.envelope["data"]) == ("defect.deleted", shown)
    assert event.subject == shown["id"]


def test_a_bulk_creation_carries_each_defects_own(user):
    defects = Defect.objects.bulk_create(
        [Defect(user=user, comment=f"Wheel flat {n}", timestamp=FOUND) for n in range(3)]
    )

    events = Event.objects.order_by("id")
    assert [e.subject for e in events] == [d.pk for d in defects]
    assert [e.envelope["data"]["comment"] for e in events] == [d.comment for d in defects]
    assert {e.envelope["type"] for e in events} == {"defect.created"}


def test_each_event_is_delivered_to_the_built_in_destination(user):
    defect = defect_create(user=user, comment="Horn silent")
    defect_delete(defect=defect)
    Defect.objects.bulk_create([Defect(user=user, comment="Wheel flat")])

    for event in Event.objects.all():
        assert list(Delivery.objects.filter(event=event).values_list("destination__name")) == [
            ("counter-server",)
        ]
