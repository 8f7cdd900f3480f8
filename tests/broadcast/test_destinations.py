"""broadcast/destinations.py: creating, changing, deleting destinations, their secrets, and
the built-in destination kept in step with COUNTER_SERVER_URL."""

import base64
import datetime

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.utils import timezone

from broadcast.destinations import (
    NO_URL_REASON,
    destination_create,
    destination_delete,
    destination_disable,
    destination_rotate_secret,
    destination_signing_secrets,
    destination_update,
    sync_builtin_destination,
)
from broadcast.models import Delivery, Destination, DestinationSecret
from broadcast.services import event_enqueue
from broadcast.signing import parse_secret

pytestmark = pytest.mark.django_db

T = datetime.datetime(2026, 12, 7, 3, 0, tzinfo=datetime.UTC)
PAYLOAD = {"user": 1, "action": "create"}


def builtin() -> Destination | None:
    return Destination.objects.filter(managed=True).first()


def test_a_new_destination_has_a_secret_of_its_own_in_the_standard_webhooks_form():
    destination, secret = destination_create(name="planning", url="https://planning.example/")

    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    assert parse_secret(secret)  # what the dispatcher's signer takes
    assert destination_signing_secrets(destination=destination) == [secret]
    assert destination.actions == ["create", "delete"]
    assert (destination.format, destination.enabled, destination.max_rate) == ("counter", True, 0)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"name": "counter-server"}, "name"),  # the built-in destination's
        ({"url": "ftp://files.example/"}, "url"),
        ({"url": "planning.example/hooks"}, "url"),
        ({"url": "http://"}, "url"),
        ({"url": "http://host:99999/"}, "url"),
        ({"url": "http://bad host/"}, "url"),
        ({"actions": []}, "actions"),
        ({"actions": ["update"]}, "actions"),
        ({"format": "xml"}, "format"),
        ({"max_rate": -1}, "max_rate"),
    ],
)
def test_bad_input_is_refused_naming_the_field(fields, field):
    with pytest.raises(ValidationError) as refused:
        destination_create(**{"name": "planning", "url": "https://planning.example/", **fields})

    assert set(refused.value.message_dict) == {field}
    assert not Destination.objects.filter(managed=False).exists()


def test_a_single_label_host_is_a_url_as_good_as_any():
    destination, _ = destination_create(name="beside", url="http://planning:8080/hooks")
    assert destination.url == "http://planning:8080/hooks"


def test_names_are_unique():
    destination_create(name="planning", url="https://planning.example/")
    with pytest.raises(ValidationError) as refused:
        destination_create(name="planning", url="https://other.example/")
    assert set(refused.value.message_dict) == {"name"}


def test_at_most_max_destinations_the_built_in_one_included(settings):
    settings.BROADCAST = {**settings.BROADCAST, "MAX_DESTINATIONS": 3}
    destination_create(name="one", url="https://one.example/")
    destination_create(name="two", url="https://two.example/")

    with pytest.raises(ValidationError, match="already 3 destinations"):
        destination_create(name="three", url="https://three.example/")
    assert Destination.objects.count() == 3


def test_rotating_keeps_the_previous_secret_signing_for_the_overlap(settings):
    settings.BROADCAST = {**settings.BROADCAST, "SECRET_OVERLAP_HOURS": 24}
    destination, first = destination_create(name="planning", url="https://planning.example/")

    second = destination_rotate_secret(destination=destination, now=T)
    third = destination_rotate_secret(destination=destination, now=T + datetime.timedelta(hours=1))

    def signing(hours: float) -> list[str]:
        now = T + datetime.timedelta(hours=hours)
        return destination_signing_secrets(destination=destination, now=now)

    assert len({first, second, third}) == 3
    assert signing(2) == [third, second, first]
    assert signing(24.5) == [third, second]  # the first's overlap ended 24 h after T
    assert signing(25.5) == [third]


def test_disabling_keeps_pending_deliveries_and_enabling_clears_the_reason():
    destination, _ = destination_create(name="planning", url="https://planning.example/")
    event_enqueue(payload=PAYLOAD, action="create")
    destination_disable(destination=destination, reason="410 Gone from https://planning.example/")
    event_enqueue(payload=PAYLOAD, action="create")

    assert destination.deliveries.count() == 1
    destination_update(destination=destination, enabled=True)
    destination.refresh_from_db()
    assert (destination.enabled, destination.disabled_reason) == (True, "")


def test_deleting_drops_its_deliveries_pending_ones_included():
    destination, _ = destination_create(name="planning", url="https://planning.example/")
    event_enqueue(payload=PAYLOAD, action="create")
    event_enqueue(payload=PAYLOAD, action="create")

    assert destination_delete(destination=destination) == 2
    assert not Delivery.objects.filter(destination_id=destination.pk).exists()
    assert not DestinationSecret.objects.exists()
    assert Delivery.objects.filter(destination=builtin()).count() == 2  # the others keep theirs


# --- The built-in destination ------------------------------------------------------------


def test_after_migrate_the_built_in_destination_follows_counter_server_url(settings):
    row = builtin()
    assert (row.name, row.url, row.managed) == ("counter-server", settings.COUNTER_SERVER_URL, True)
    assert (row.actions, row.format, row.enabled) == (["create", "delete"], "counter", True)

    row.delete()
    call_command("migrate", verbosity=0)
    assert builtin().url == settings.COUNTER_SERVER_URL


def test_it_follows_the_setting_and_keeps_what_an_operator_set(settings):
    row = builtin()
    destination_update(destination=row, paused=True, paused_reason="counter maintenance")
    settings.COUNTER_SERVER_URL = "http://counter:8888/"

    synced = sync_builtin_destination()

    assert (synced.pk, synced.url, synced.paused) == (row.pk, "http://counter:8888/", True)
    assert Destination.objects.filter(managed=True).count() == 1


def test_an_empty_url_disables_it_and_keeps_its_deliveries_until_it_comes_back(settings):
    event_enqueue(payload=PAYLOAD, action="create")
    Destination.objects.filter(pk=builtin().pk).update(  # failing for days, then unset
        failing_since=timezone.now() - datetime.timedelta(days=4), failing_attempts=50
    )
    url = settings.COUNTER_SERVER_URL
    settings.COUNTER_SERVER_URL = ""

    row = sync_builtin_destination()
    assert (row.enabled, row.disabled_reason) == (False, NO_URL_REASON)
    event_enqueue(payload=PAYLOAD, action="create")
    assert row.deliveries.count() == 1
    with pytest.raises(ValidationError) as refused:
        destination_update(destination=row, enabled=True)
    assert set(refused.value.message_dict) == {"enabled"}

    settings.COUNTER_SERVER_URL = url
    row = sync_builtin_destination()
    assert (row.enabled, row.disabled_reason) == (True, "")
    row.refresh_from_db()
    assert (row.failing_since, row.failing_attempts) == (None, 0)  # its clock starts again


def test_an_empty_url_and_no_row_makes_none(settings):
    builtin().delete()
    settings.COUNTER_SERVER_URL = ""
    assert sync_builtin_destination() is None
    assert not Destination.objects.exists()


def test_an_operators_disabling_survives_the_sync(settings):
    row = builtin()
    destination_disable(destination=row, reason="counter server retired")
    assert sync_builtin_destination().enabled is False


@pytest.mark.parametrize(("field", "value"), [("name", "counter"), ("url", "http://other/")])
def test_its_name_and_url_are_the_settings(field, value):
    with pytest.raises(ValidationError) as refused:
        destination_update(destination=builtin(), **{field: value})
    assert set(refused.value.message_dict) == {field}


def test_it_cannot_be_deleted_nor_its_secret_rotated(settings):
    settings.BROADCAST = {**settings.BROADCAST, "SIGNING_SECRETS": ["whsec_" + "A" * 43]}
    row = builtin()
    for refuse in (destination_delete, destination_rotate_secret):
        with pytest.raises(ValidationError) as refused:
            refuse(destination=row)
        assert set(refused.value.message_dict) == {"managed"}
    assert destination_signing_secrets(destination=row) == ["whsec_" + "A" * 43]


@pytest.mark.django_db(transaction=True)
def test_the_dispatcher_syncs_it_at_start(scripted_server, settings):
    builtin().delete()
    # Its first round points the built-in destination at the dispatcher's URL (--url) ...
    call_command("broadcast", once=True, url=scripted_server.url)
    assert (builtin().url, builtin().managed) == (scripted_server.url, True)
    # ... which is COUNTER_SERVER_URL's by default (nothing is due: nothing is sent there).
    call_command("broadcast", once=True)
    assert builtin().url == settings.COUNTER_SERVER_URL
    assert Destination.objects.filter(managed=True).count() == 1


# --- manage.py broadcast_destinations ------------------------------------------------------


def test_the_command_lists_destinations_with_their_pending_counts(capsys, settings):
    planning, secret = destination_create(
        name="planning", url="https://planning.example/", actions=["delete"], format="event"
    )
    event_enqueue(payload=PAYLOAD, action="create")
    event_enqueue(payload=PAYLOAD, action="create")
    event_enqueue(payload=PAYLOAD, action="delete")
    destination_disable(destination=planning, reason="410 Gone")

    call_command("broadcast_destinations")

    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["NAME", "URL", "ACTIONS", "FORMAT", "PENDING", "STATE"]
    assert lines[1].split() == [
        "counter-server", settings.COUNTER_SERVER_URL, "create,delete", "counter", "3", "enabled",
        "(managed)",
    ]  # fmt: skip
    assert lines[2].split() == [
        "planning", "https://planning.example/", "delete", "event", "1", "disabled:", "410", "Gone"
    ]  # fmt: skip
    assert secret not in "\n".join(lines)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_deletion_waits_for_a_fan_out_to_the_destination_and_both_succeed(user):
    from defect.services import defect_create
    from tests.helpers import second_behind_first

    planning, _ = destination_create(name="planning", url="http://127.0.0.1:9/")
    defect, pending = second_behind_first(
        lambda: defect_create(user=user, comment="written while it is deleted"),
        lambda: destination_delete(destination=planning),
    )
    assert pending == 1  # the delivery written first, deleted with it
    assert not Destination.objects.filter(pk=planning.pk).exists()
    assert list(Delivery.objects.filter(event__subject=defect.pk).values_list(
        "destination__name", flat=True)) == ["counter-server"]  # fmt: skip


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_fan_out_waits_for_a_deletion_and_writes_nothing_to_it(user):
    from defect.services import defect_create
    from tests.helpers import second_behind_first

    planning, _ = destination_create(name="planning", url="http://127.0.0.1:9/")
    pending, defect = second_behind_first(
        lambda: destination_delete(destination=planning),
        lambda: defect_create(user=user, comment="written while it is deleted"),
    )
    assert pending == 0
    assert list(Delivery.objects.filter(event__subject=defect.pk).values_list(
        "destination__name", flat=True)) == ["counter-server"]  # fmt: skip
