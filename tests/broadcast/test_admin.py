"""The events admin: each event says what it is, in the list and on its own page."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from broadcast.models import Event, Status
from broadcast.services import event_enqueue

pytestmark = pytest.mark.django_db


def test_an_event_says_what_it_is_by_user_id_outside_the_admin(user):
    event = event_enqueue(payload={"user": user.pk, "action": "create"}, action="create")
    assert str(event) == f"create by user {user.pk}, pending"


def test_a_payload_of_another_shape_is_shown_as_compact_json():
    event = Event(payload={"kind": "test", "n": [1, 2]}, status=Status.FAILED)
    assert str(event) == '{"kind":"test","n":[1,2]}, failed'


def test_the_events_page_is_titled_with_the_event_and_its_users_name(admin_client, user):
    event = event_enqueue(payload={"user": user.pk, "action": "create"}, action="create")
    Event.objects.filter(pk=event.pk).update(status=Status.DELIVERED)
    response = admin_client.get(reverse("admin:broadcast_event_change", args=[event.pk]))
    html = response.content.decode()
    assert "<title>create by alice, delivered | View event |" in html
    assert "<h2>create by alice, delivered</h2>" in html


def _listed(client) -> tuple[list[str], int]:
    """The events as the list shows them, and how many queries the page took."""
    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse("admin:broadcast_event_changelist"))
    return [str(e) for e in response.context["cl"].result_list], len(queries)


def test_the_list_names_each_events_user_with_no_query_per_event(admin_client, user, other_user):
    event_enqueue(payload={"user": user.pk, "action": "create"}, action="create")
    _, queries_for_one = _listed(admin_client)
    event_enqueue(payload={"user": other_user.pk, "action": "delete"}, action="delete")
    event_enqueue(payload={"user": user.pk, "action": "delete"}, action="delete")
    events, queries_for_three = _listed(admin_client)
    assert events == [
        "delete by alice, pending",
        "delete by bob, pending",
        "create by alice, pending",
    ]
    assert queries_for_three == queries_for_one


def test_an_event_of_a_deleted_user_names_the_id(admin_client):
    event = event_enqueue(payload={"user": 4711, "action": "delete"}, action="delete")
    response = admin_client.get(reverse("admin:broadcast_event_change", args=[event.pk]))
    assert "<h2>delete by user 4711, pending</h2>" in response.content.decode()
