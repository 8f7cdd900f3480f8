"""broadcast/services.py: events enter the outbox with a key of their own, their deliveries
pending."""

import pytest

from broadcast.models import Event, Status
from broadcast.services import event_enqueue, events_enqueue
from tests.helpers import counter_deliveries

pytestmark = pytest.mark.django_db


def test_events_have_unique_keys_and_pending_deliveries():
    event_enqueue(payload={"user": 1, "action": "create"}, action="create")
    events_enqueue(payloads=[{"user": 2, "action": "create"}] * 2, action="create")
    events = list(Event.objects.order_by("id"))
    assert [e.payload["user"] for e in events] == [1, 2, 2]
    # One delivery each, to the built-in destination (the only one), pending.
    deliveries = counter_deliveries().order_by("event_id")
    assert [d.event_id for d in deliveries] == [e.pk for e in events]
    assert {d.status for d in deliveries} == {Status.PENDING}
    assert len({e.key for e in events}) == 3


def test_an_empty_batch_writes_nothing():
    assert events_enqueue(payloads=[], action="create") == []
    assert not Event.objects.exists()
    assert not counter_deliveries().exists()
