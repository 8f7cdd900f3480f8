"""Operating the broadcast: the admin's view of events, re-queueing, pruning, --once."""

import datetime

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from broadcast.models import Event, Status
from defect.services import defect_create


@pytest.fixture
def events(db, user):
    for i in range(4):
        defect_create(user=user, comment=str(i))
    pending, failed, delivered, old_delivered = Event.objects.order_by("id")
    Event.objects.filter(pk=failed.pk).update(
        status=Status.FAILED, attempts=1, last_error="HTTP 400: bad"
    )
    Event.objects.filter(pk=delivered.pk).update(
        status=Status.DELIVERED, delivered_at=timezone.now()
    )
    Event.objects.filter(pk=old_delivered.pk).update(
        status=Status.DELIVERED, delivered_at=timezone.now() - datetime.timedelta(days=30)
    )
    return {"pending": pending, "failed": failed, "delivered": delivered, "old": old_delivered}


def test_admin_lists_events_with_state_and_counts(admin_client, events):
    response = admin_client.get(reverse("admin:broadcast_event_changelist"))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Broadcast events: 1 pending, 2 delivered, 1 failed" in page
    assert "HTTP 400: bad" in page


def test_admin_is_read_only(admin_client, events):
    assert admin_client.get(reverse("admin:broadcast_event_add")).status_code == 403
    url = reverse("admin:broadcast_event_delete", args=[events["pending"].pk])
    assert admin_client.post(url, {"post": "yes"}).status_code == 403
    assert Event.objects.count() == 4


def test_admin_requeues_only_failed_events(admin_client, events):
    response = admin_client.post(
        reverse("admin:broadcast_event_changelist"),
        {
            "action": "requeue",
            "_selected_action": [events["failed"].pk, events["delivered"].pk],
        },
    )
    assert response.status_code == 302
    failed, delivered = events["failed"], events["delivered"]
    failed.refresh_from_db()
    delivered.refresh_from_db()
    assert failed.status == Status.PENDING and failed.available_at <= timezone.now()
    assert delivered.status == Status.DELIVERED


def test_prune_deletes_only_old_delivered_events(events):
    call_command("broadcast_prune", days=7)
    assert set(Event.objects.values_list("pk", flat=True)) == {
        events["pending"].pk,
        events["failed"].pk,
        events["delivered"].pk,
    }


def test_prune_refuses_a_negative_age(db):
    with pytest.raises(CommandError):
        call_command("broadcast_prune", days=-1)


@pytest.mark.django_db(transaction=True)
def test_broadcast_once_command_delivers_what_is_due(scripted_server, user):
    defect_create(user=user, comment="a")
    call_command("broadcast", once=True, url=scripted_server.url)
    assert Event.objects.get().status == Status.DELIVERED
    assert len(scripted_server.received) == 1
