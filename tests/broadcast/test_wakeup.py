"""On PostgreSQL, the outbox's NOTIFY: once per statement, at commit, never on rollback.

The dispatcher's side (LISTEN, SQLite's doorbell) is tests/broadcast/test_announcers.py.
"""

import pytest
from django.db import connection

from broadcast.models import Event
from broadcast.services import NOTIFY_CHANNEL
from defect.services import defect_create
from tests.helpers import builtin_destination, counter_deliveries

pytestmark = [pytest.mark.postgres, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _listening_connection():
    """A connection of its own that LISTENs on the dispatchers' channel."""
    import psycopg

    params = connection.get_connection_params()
    keep = ("dbname", "user", "password", "host", "port")
    listening = psycopg.connect(**{k: v for k, v in params.items() if k in keep and v},
                                autocommit=True)  # fmt: skip
    listening.execute(f"LISTEN {NOTIFY_CHANNEL}")
    return listening


def _notifications(listening, seconds: float = 0.5) -> int:
    """The notifications that arrive within `seconds`."""
    return sum(1 for _ in listening.notifies(timeout=seconds))


def test_an_insert_notifies_once_per_statement_at_commit_and_never_on_rollback():
    from django.db import transaction

    from broadcast.services import event_enqueue, events_enqueue

    listening = _listening_connection()
    try:
        with transaction.atomic():
            # One INSERT into the outbox.
            events_enqueue(payloads=[{"user": 1, "action": "create"}] * 3, action="create")
            assert _notifications(listening, 0.2) == 0  # not before the commit
        assert _notifications(listening) == 1
        with pytest.raises(RuntimeError), transaction.atomic():
            event_enqueue(payload={"user": 1, "action": "create"}, action="create")
            raise RuntimeError("roll back")
        assert _notifications(listening) == 0
    finally:
        listening.close()


def test_a_release_a_requeue_and_a_resend_wake_the_dispatchers(user):
    from broadcast import store
    from broadcast.models import Status
    from broadcast.replay import delivery_resend, requeue_failed

    defect_create(user=user, comment="a")
    defect_create(user=user, comment="b")
    counter_deliveries().filter(event=Event.objects.latest("id")).update(status=Status.FAILED)
    store.claim(owner="A", limits={builtin_destination().pk: 10}, lease=60)
    listening = _listening_connection()
    try:
        assert store.release(owner="A") == 1
        assert _notifications(listening) == 1
        assert requeue_failed() == 1
        assert _notifications(listening) == 1
        delivered = counter_deliveries().first()
        counter_deliveries().filter(pk=delivered.pk).update(status=Status.DELIVERED)
        delivery_resend(delivery=delivered)
        assert _notifications(listening) == 1
    finally:
        listening.close()
