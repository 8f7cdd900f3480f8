"""broadcast/probe.py: SQLite's "anything due?", asked on a connection of its own."""

import datetime
import sqlite3

import pytest
from django.utils import timezone

from broadcast import probe, store
from defect.services import defect_create

pytestmark = [pytest.mark.sqlite, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def due_probe():
    checker = probe.DueProbe()
    yield checker
    checker.close()


def test_the_probe_sees_what_is_due_and_nothing_else(due_probe, user):
    assert due_probe.due(timezone.now()) is False
    defect_create(user=user, comment="a")  # committed by another connection: due now
    assert due_probe.due(timezone.now()) is True
    store.claim(owner="A", limit=10, lease=60)  # leased for a minute
    now = timezone.now()
    assert due_probe.due(now) is False
    assert due_probe.due(now + datetime.timedelta(seconds=61)) is True  # the lease is over


def test_a_probe_that_cannot_read_says_yes_so_that_a_round_finds_out(due_probe, monkeypatch):
    def unreadable(*args, **kwargs):
        raise sqlite3.OperationalError("unable to open database file")

    monkeypatch.setattr(probe.sqlite3, "connect", unreadable)
    assert due_probe.due(timezone.now()) is True


def test_sqlite_has_a_probe():
    assert isinstance(probe.probe_for(), probe.DueProbe)
