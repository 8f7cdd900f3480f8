"""defect/events.py: every way a defect comes or goes writes exactly its event, in the same
transaction."""

import pytest
from django.contrib.auth import get_user_model
from django.db import transaction
from django.urls import reverse

from broadcast.models import Event
from defect.models import Defect
from defect.services import defect_create, defect_delete, defect_update
from tests.helpers import second_behind_first

pytestmark = pytest.mark.django_db


def payloads() -> list[dict]:
    return list(Event.objects.order_by("id").values_list("payload", flat=True))


def created(user) -> dict:
    return {"user": user.pk, "action": "create"}


def deleted(user) -> dict:
    return {"user": user.pk, "action": "delete"}


def test_service_create_and_delete(user):
    defect = defect_create(user=user, comment="Horn silent")
    defect_delete(defect=defect)
    assert payloads() == [created(user), deleted(user)]


def test_orm_create_save_and_delete(user, other_user):
    defect = Defect.objects.create(user=user, comment="a")
    Defect(user=other_user, comment="b").save()
    defect.delete()
    assert payloads() == [created(user), created(other_user), deleted(user)]


def test_updates_send_nothing(user):
    defect = defect_create(user=user, comment="a")
    defect_update(defect=defect, comment="b")
    defect.comment = "c"
    defect.save()
    Defect.objects.filter(pk=defect.pk).update(comment="d")
    assert payloads() == [created(user)]


def test_bulk_create_writes_one_event_per_defect(user, other_user):
    Defect.objects.bulk_create(
        [Defect(user=user, comment="a"), Defect(user=other_user, comment="b")]
    )
    assert payloads() == [created(user), created(other_user)]


def test_bulk_create_with_conflict_handling_is_refused(user):
    with pytest.raises(ValueError, match="ignore_conflicts"):
        Defect.objects.bulk_create([Defect(user=user, comment="a")], ignore_conflicts=True)
    assert payloads() == [] and Defect.objects.count() == 0


def test_queryset_delete_writes_one_event_per_defect(user, other_user):
    Defect.objects.bulk_create(
        [Defect(user=user, comment="a"), Defect(user=other_user, comment="b")]
    )
    Event.objects.all().delete()
    Defect.objects.all().delete()
    assert sorted(p["user"] for p in payloads()) == sorted([user.pk, other_user.pk])
    assert {p["action"] for p in payloads()} == {"delete"}


def test_user_deletion_cascades_to_delete_events(user, other_user):
    defect_create(user=user, comment="a")
    defect_create(user=user, comment="b")
    defect_create(user=other_user, comment="c")
    Event.objects.all().delete()
    expected = deleted(user)
    user.delete()
    assert payloads() == [expected, expected]
    assert Defect.objects.count() == 1


def test_rolled_back_creation_sends_nothing(user):
    with pytest.raises(RuntimeError), transaction.atomic():
        defect_create(user=user, comment="never happened")
        raise RuntimeError("abort")
    assert payloads() == []
    assert Defect.objects.count() == 0


def test_rolled_back_deletion_sends_nothing(user):
    defect = defect_create(user=user, comment="stays")
    with pytest.raises(RuntimeError), transaction.atomic():
        defect.delete()
        raise RuntimeError("abort")
    assert payloads() == [created(user)]
    assert Defect.objects.count() == 1


def test_failed_insert_writes_no_event(user):
    with pytest.raises(Exception):  # noqa: B017 - the model refuses before any write
        Defect.objects.create(comment="no user")
    assert payloads() == []


def test_admin_add_delete_and_bulk_delete(client, user):
    admin = get_user_model().objects.create_superuser("root", password="root-password")
    client.force_login(admin)
    client.post(
        reverse("admin:defect_defect_add"),
        {"comment": "via admin", "timestamp_0": "2026-11-28", "timestamp_1": "10:00:00"},
    )
    defect = Defect.objects.get(comment="via admin")
    client.post(reverse("admin:defect_defect_delete", args=[defect.pk]), {"post": "yes"})
    others = [defect_create(user=user, comment=f"bulk {i}") for i in range(2)]
    client.post(
        reverse("admin:defect_defect_changelist"),
        {"action": "delete_selected", "_selected_action": [d.pk for d in others], "post": "yes"},
    )
    assert payloads() == [
        created(admin),
        deleted(admin),
        created(user),
        created(user),
        deleted(user),
        deleted(user),
    ]
    assert Defect.objects.count() == 0


# --- two deleters taking the same defect (found by the soak, docs/reliability.md) ---------


def test_a_stale_instance_deleted_again_writes_no_second_event(user):
    defect = defect_create(user=user, comment="taken twice")
    first, second = Defect.objects.get(pk=defect.pk), Defect.objects.get(pk=defect.pk)
    assert first.delete() == (1, {"defect.Defect": 1})
    assert second.delete() == (0, {})
    assert payloads() == [created(user), deleted(user)]


def test_queryset_delete_over_a_stale_selection(user, other_user, deleted_meanwhile):
    kept = defect_create(user=other_user, comment="not selected")
    mine = [defect_create(user=user, comment=f"mine {i}") for i in range(3)]
    Event.objects.all().delete()
    deleted_meanwhile(Defect.objects.get(pk=mine[1].pk))
    assert Defect.objects.filter(user=user).delete() == (2, {"defect.Defect": 2})
    assert payloads() == [deleted(user)] * 3
    assert list(Defect.objects.values_list("pk", flat=True)) == [kept.pk]


def test_user_cascade_over_a_defect_deleted_meanwhile(user, deleted_meanwhile):
    taken = defect_create(user=user, comment="taken first")
    defect_create(user=user, comment="cascaded")
    Event.objects.all().delete()
    deleted_meanwhile(Defect.objects.get(pk=taken.pk))
    expected = deleted(user)
    user.delete()
    assert payloads() == [expected] * 2
    assert not Defect.objects.exists()


def test_admin_bulk_delete_with_a_defect_deleted_meanwhile(client, user, deleted_meanwhile):
    admin = get_user_model().objects.create_superuser("root", password="root-password")
    client.force_login(admin)
    selected = [defect_create(user=user, comment=f"bulk {i}") for i in range(3)]
    Event.objects.all().delete()
    deleted_meanwhile(Defect.objects.get(pk=selected[0].pk))
    response = client.post(
        reverse("admin:defect_defect_changelist"),
        {"action": "delete_selected", "_selected_action": [d.pk for d in selected], "post": "yes"},
    )
    assert response.status_code == 302
    assert payloads() == [deleted(user)] * 3
    assert not Defect.objects.exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_on_postgresql_the_second_deleter_waits_for_the_first_and_writes_no_event(user):
    defect = defect_create(user=user, comment="taken twice")
    first, second = Defect.objects.get(pk=defect.pk), Defect.objects.get(pk=defect.pk)
    counts = second_behind_first(
        lambda: defect_delete(defect=first), lambda: defect_delete(defect=second)
    )
    assert counts == (1, 0)
    assert payloads() == [created(user), deleted(user)]
