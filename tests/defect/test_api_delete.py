"""DELETE /api/defects/<id> when another deleter takes the defect first: a 404, one event."""

import pytest

from broadcast.models import Event
from defect.models import Defect
from defect.services import defect_create
from tests.helpers import second_behind_first

pytestmark = pytest.mark.django_db

GONE = {"detail": "No Defect matches the given query."}  # as for an id that never existed


def actions() -> list[str]:
    return list(Event.objects.order_by("id").values_list("payload__action", flat=True))


def test_a_delete_answers_204_and_writes_its_event(token_client, user):
    defect = defect_create(user=user, comment="Horn silent")
    assert token_client.delete(f"/api/defects/{defect.pk}").status_code == 204
    assert actions() == ["create", "delete"]


def test_a_defect_deleted_after_the_api_read_it_is_404(token_client, user, deleted_meanwhile):
    defect = defect_create(user=user, comment="taken first")
    deleted_meanwhile(Defect.objects.get(pk=defect.pk))
    response = token_client.delete(f"/api/defects/{defect.pk}")
    assert (response.status_code, response.json()) == (404, GONE)
    assert actions() == ["create", "delete"]
    assert not Defect.objects.exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_on_postgresql_the_api_waits_for_a_bulk_delete_then_answers_404(token_client, user):
    defects = [defect_create(user=user, comment=f"bulk {i}") for i in range(2)]
    bulk_count, response = second_behind_first(
        lambda: Defect.objects.filter(user=user).delete()[0],
        lambda: token_client.delete(f"/api/defects/{defects[1].pk}"),
    )
    assert bulk_count == 2
    assert (response.status_code, response.json()) == (404, GONE)
    assert actions() == ["create", "create", "delete", "delete"]
