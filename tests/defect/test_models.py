import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError

from defect.models import Defect
from defect.services import defect_create

pytestmark = pytest.mark.django_db


def test_create_without_user_names_the_user_field():
    with pytest.raises(ValidationError) as excinfo:
        Defect.objects.create(comment="Brake pad worn")
    assert "user" in excinfo.value.message_dict
    assert Defect.objects.count() == 0


def test_blank_comment_is_refused(user):
    with pytest.raises(ValidationError) as excinfo:
        Defect.objects.create(user=user, comment="   ")
    assert "comment" in excinfo.value.message_dict


def test_database_refuses_empty_comment_even_past_the_model(user):
    with pytest.raises(IntegrityError):
        Defect.objects.bulk_create([Defect(user=user, comment="")])


def test_service_sets_the_creator(user):
    defect = defect_create(user=user, comment="Door sensor faulty")
    assert Defect.objects.get(pk=defect.pk).user == user


def test_str_shortens_long_comments(user):
    defect = defect_create(user=user, comment="x" * 200)
    assert len(str(defect)) <= 60
    assert str(defect).startswith("xxx")


def test_default_ordering_is_newest_first(user):
    from datetime import timedelta

    from django.utils import timezone

    now = timezone.now()
    old = defect_create(user=user, comment="old", timestamp=now - timedelta(days=1))
    new = defect_create(user=user, comment="new", timestamp=now)
    tie = defect_create(user=user, comment="tie", timestamp=now)
    assert list(Defect.objects.all()) == [tie, new, old]


def test_service_rejects_overlong_comment(user):
    with pytest.raises(ValidationError) as excinfo:
        defect_create(user=user, comment="x" * 10_001)
    assert "comment" in excinfo.value.message_dict
