"""defect/services.py: the delete rule, and the admin writing through the services."""

import pytest
from django.contrib.auth import get_user_model

from broadcast.models import Event
from defect.models import Defect
from defect.services import can_delete, defect_create, defect_delete

pytestmark = pytest.mark.django_db


@pytest.fixture
def superuser(db):
    return get_user_model().objects.create_superuser("root", "root@example.com", "root-password")


def test_the_creator_may_delete(user):
    defect = defect_create(user=user, comment="Mine")
    assert can_delete(user=user, defect=defect)
    assert can_delete(user=user, defect=defect, superuser_may=True)


def test_another_user_may_not_delete(user, other_user):
    defect = defect_create(user=user, comment="Not bob's")
    assert not can_delete(user=other_user, defect=defect)
    assert not can_delete(user=other_user, defect=defect, superuser_may=True)


def test_a_superuser_may_delete_only_where_the_caller_says_so(user, superuser):
    defect = defect_create(user=user, comment="Alice's")
    assert not can_delete(user=superuser, defect=defect)
    assert can_delete(user=superuser, defect=defect, superuser_may=True)


def _spy(monkeypatch, module, name: str) -> list[dict]:
    """Record the keyword arguments of every call to `module.name`, which still runs."""
    calls: list[dict] = []
    real = getattr(module, name)

    def spy(**kwargs):
        calls.append(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(module, name, spy)
    return calls


def test_the_admin_creates_and_updates_through_the_services(client, staff_user, monkeypatch):
    from django.urls import reverse

    from defect import admin as defect_admin

    creates = _spy(monkeypatch, defect_admin, "defect_create")
    updates = _spy(monkeypatch, defect_admin, "defect_update")
    client.force_login(staff_user)
    form = {"timestamp_0": "2024-05-01", "timestamp_1": "08:30:00"}
    response = client.post(reverse("admin:defect_defect_add"), {"comment": "Horn", **form})
    assert response.status_code == 302
    defect = Defect.objects.get()
    assert [c["user"] for c in creates] == [staff_user]
    assert response["Location"] == reverse("admin:defect_defect_changelist")
    change = reverse("admin:defect_defect_change", args=[defect.pk])
    assert client.post(change, {"comment": "Horn fixed", **form}).status_code == 302
    assert [u["comment"] for u in updates] == ["Horn fixed"]
    defect.refresh_from_db()
    assert defect.comment == "Horn fixed"


def test_the_admin_deletes_through_the_service(client, staff_user, monkeypatch):
    from django.urls import reverse

    from defect import admin as defect_admin

    deletes = _spy(monkeypatch, defect_admin, "defect_delete")
    defect = defect_create(user=staff_user, comment="Mine")
    client.force_login(staff_user)
    url = reverse("admin:defect_defect_delete", args=[defect.pk])
    assert client.post(url, {"post": "yes"}).status_code == 302
    assert [d["defect"].comment for d in deletes] == ["Mine"]
    assert not Defect.objects.exists()


def test_defect_delete_reports_what_it_deleted(user):
    defect = defect_create(user=user, comment="taken twice")
    first, second = Defect.objects.get(pk=defect.pk), Defect.objects.get(pk=defect.pk)
    assert defect_delete(defect=first) == 1
    assert defect_delete(defect=second) == 0
    assert list(Event.objects.values_list("payload__action", flat=True)) == ["create", "delete"]


def test_the_admin_delete_view_over_a_defect_deleted_meanwhile(
    client, staff_user, deleted_meanwhile
):
    from django.urls import reverse

    defect = defect_create(user=staff_user, comment="Mine")
    client.force_login(staff_user)
    deleted_meanwhile(Defect.objects.get(pk=defect.pk))
    url = reverse("admin:defect_defect_delete", args=[defect.pk])
    assert client.post(url, {"post": "yes"}).status_code == 302
    assert list(Event.objects.values_list("payload__action", flat=True)) == ["create", "delete"]
    assert not Defect.objects.exists()
