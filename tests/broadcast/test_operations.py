"""Operating the broadcast: the admin's view of events and deliveries, re-queueing, pruning,
--once."""

import datetime

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from broadcast.models import Delivery, Event, Status
from defect.services import defect_create
from tests.helpers import counter_deliveries


@pytest.fixture
def events(db, user):
    """Four events, their deliveries to the built-in destination pending, failed, delivered,
    and delivered a month ago (the event written then)."""
    for i in range(4):
        defect_create(user=user, comment=str(i))
    pending, failed, delivered, old_delivered = Event.objects.order_by("id")
    deliveries = counter_deliveries()
    deliveries.filter(event=failed).update(
        status=Status.FAILED, attempts=1, last_error="HTTP 400: bad"
    )
    deliveries.filter(event=delivered).update(status=Status.DELIVERED, delivered_at=timezone.now())
    month_ago = timezone.now() - datetime.timedelta(days=30)
    Event.objects.filter(pk=old_delivered.pk).update(created_at=month_ago)
    deliveries.filter(event=old_delivered).update(
        status=Status.DELIVERED, created_at=month_ago, delivered_at=month_ago
    )
    return {"pending": pending, "failed": failed, "delivered": delivered, "old": old_delivered}


def delivery(event: Event) -> Delivery:
    """`event`'s delivery to the built-in destination."""
    return counter_deliveries().get(event=event)


def test_admin_lists_events_with_state_and_counts(admin_client, events):
    response = admin_client.get(reverse("admin:broadcast_event_changelist"))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Broadcast deliveries: 1 pending, 2 delivered, 1 failed" in page
    assert '<td class="field-deliveries">1 failed</td>' in page
    assert page.count('<td class="field-deliveries">1 delivered</td>') == 2
    assert '<td class="field-deliveries">1 pending</td>' in page
    deliveries = admin_client.get(reverse("admin:broadcast_delivery_changelist"))
    assert deliveries.status_code == 200
    assert "HTTP 400: bad" in deliveries.content.decode()


def test_admin_is_read_only(admin_client, events):
    assert admin_client.get(reverse("admin:broadcast_event_add")).status_code == 403
    url = reverse("admin:broadcast_event_delete", args=[events["pending"].pk])
    assert admin_client.post(url, {"post": "yes"}).status_code == 403
    assert Event.objects.count() == 4
    assert admin_client.get(reverse("admin:broadcast_delivery_add")).status_code == 403
    url = reverse("admin:broadcast_delivery_delete", args=[delivery(events["pending"]).pk])
    assert admin_client.post(url, {"post": "yes"}).status_code == 403
    assert Delivery.objects.count() == 4


def test_admin_requeues_only_failed_events(admin_client, events):
    failed, delivered = delivery(events["failed"]), delivery(events["delivered"])
    response = admin_client.post(
        reverse("admin:broadcast_delivery_changelist"),
        {"action": "requeue", "_selected_action": [failed.pk, delivered.pk]},
    )
    assert response.status_code == 302
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
    assert set(Delivery.objects.values_list("event", flat=True)) == {
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
    assert counter_deliveries().get().status == Status.DELIVERED
    assert len(scripted_server.received) == 1
