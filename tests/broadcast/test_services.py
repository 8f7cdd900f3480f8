"""broadcast/services.py: events enter the outbox pending, each with a key of its own."""

import pytest

from broadcast.models import Event, Status
from broadcast.services import event_enqueue, events_enqueue

pytestmark = pytest.mark.django_db


def test_events_are_pending_with_unique_keys():
    event_enqueue(payload={"user": 1, "action": "create"}, action="create")
    events_enqueue(payloads=[{"user": 2, "action": "create"}] * 2, action="create")
    events = list(Event.objects.order_by("id"))
    assert [e.payload["user"] for e in events] == [1, 2, 2]
    assert {e.status for e in events} == {Status.PENDING}
    assert len({e.key for e in events}) == 3


def test_an_empty_batch_writes_nothing():
    assert events_enqueue(payloads=[], action="create") == []
    assert not Event.objects.exists()
