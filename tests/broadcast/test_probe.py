"""broadcast/probe.py: SQLite's "anything due?", asked on a connection of its own."""

import datetime
import sqlite3

import pytest
from django.utils import timezone

from broadcast import probe, store
from broadcast.destinations import destination_create
from defect.services import defect_create
from tests.helpers import builtin_destination

pytestmark = [pytest.mark.sqlite, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def due_probe():
    checker = probe.DueProbe()
    yield checker
    checker.close()


def test_the_probe_sees_what_is_due_and_nothing_else(due_probe, user):
    builtin = [builtin_destination().pk]
    assert due_probe.due(timezone.now(), builtin) is False
    defect_create(user=user, comment="a")  # committed by another connection: due now
    assert due_probe.due(timezone.now(), builtin) is True
    store.claim(owner="A", limits={builtin[0]: 10}, lease=60)  # leased for a minute
    now = timezone.now()
    assert due_probe.due(now, builtin) is False
    assert due_probe.due(now + datetime.timedelta(seconds=61), builtin) is True  # the lease is over


def test_the_probe_asks_only_about_the_destinations_it_is_given(due_probe, user):
    builtin = builtin_destination().pk
    other, _ = destination_create(name="b", url="http://127.0.0.1:9/")
    defect_create(user=user, comment="a")  # one delivery to each
    store.claim(owner="A", limits={other.pk: 10}, lease=60)  # b's, leased for a minute
    now = timezone.now()

    assert due_probe.due(now, [other.pk]) is False
    assert due_probe.due(now, [builtin]) is True
    assert due_probe.due(now, [other.pk, builtin]) is True
    assert due_probe.due(now, []) is False


def test_a_probe_that_cannot_read_says_yes_so_that_a_round_finds_out(due_probe, monkeypatch):
    builtin = [builtin_destination().pk]  # read before sqlite3 is broken

    def unreadable(*args, **kwargs):
        raise sqlite3.OperationalError("unable to open database file")

    monkeypatch.setattr(probe.sqlite3, "connect", unreadable)
    assert due_probe.due(timezone.now(), builtin) is True


def test_sqlite_has_a_probe():
    assert isinstance(probe.probe_for(), probe.DueProbe)
