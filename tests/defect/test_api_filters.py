"""Filters of the listing: user, since (inclusive), until (exclusive), search."""

import datetime
from urllib.parse import quote

import pytest

from defect.services import defect_create

pytestmark = pytest.mark.django_db

T = datetime.datetime(2026, 11, 28, 9, 0, tzinfo=datetime.UTC)


@pytest.fixture
def defects(user, other_user):
    return {
        "early": defect_create(user=user, comment="Brake PAD worn", timestamp=T),
        "middle": defect_create(
            user=other_user, comment="Door stuck", timestamp=T + datetime.timedelta(hours=1)
        ),
        "late": defect_create(
            user=user, comment="brake light out", timestamp=T + datetime.timedelta(hours=2)
        ),
    }


def names(client, query, defects):
    response = client.get("/api/defects?" + query)
    assert response.status_code == 200, response.content
    by_id = {d.pk: name for name, d in defects.items()}
    return [by_id[d["id"]] for d in response.json()["results"]]


def iso(moment):
    return quote(moment.isoformat())


def test_filter_by_user(defects, alice_client, user, other_user):
    assert names(alice_client, f"user={user.pk}", defects) == ["late", "early"]
    assert names(alice_client, f"user={other_user.pk}", defects) == ["middle"]
    assert names(alice_client, "user=999999", defects) == []


def test_since_is_inclusive_and_until_exclusive(defects, alice_client):
    middle = T + datetime.timedelta(hours=1)
    assert names(alice_client, f"since={iso(middle)}", defects) == ["late", "middle"]
    assert names(alice_client, f"until={iso(middle)}", defects) == ["early"]
    assert names(alice_client, f"since={iso(T)}&until={iso(middle)}", defects) == ["early"]


def test_since_accepts_offsets_and_naive_utc(defects, alice_client):
    assert names(alice_client, "since=2026-11-28T11:00:00%2B01:00", defects) == ["late", "middle"]
    assert names(alice_client, "since=2026-11-28T10:00:00", defects) == ["late", "middle"]
    assert names(alice_client, "since=2026-11-28T10:00:00Z", defects) == ["late", "middle"]


def test_search_is_a_case_insensitive_substring(defects, alice_client):
    assert names(alice_client, "search=brake", defects) == ["late", "early"]
    assert names(alice_client, "search=PAD%20W", defects) == ["early"]
    assert names(alice_client, "search=%25", defects) == []  # no wildcard
    assert names(alice_client, "search=", defects) == ["late", "middle", "early"]


def test_filters_combine(defects, alice_client, user):
    query = f"user={user.pk}&search=BRAKE&until={iso(T + datetime.timedelta(hours=2))}"
    assert names(alice_client, query, defects) == ["early"]


def test_times_beyond_the_representable_range_are_clamped(defects, alice_client):
    everything = ["late", "middle", "early"]
    assert names(alice_client, "since=0001-01-01T00:00:00%2B01:00", defects) == everything
    assert names(alice_client, "until=9999-12-31T23:59:59-01:00", defects) == everything
    assert names(alice_client, "since=9999-12-31T23:59:59-01:00", defects) == []
    assert names(alice_client, "until=0001-01-01T00:00:00%2B01:00", defects) == []


@pytest.mark.parametrize(
    "query",
    [
        "user=abc",
        "user=",
        "since=",
        "until=",
        "user=1.5",
        "user=-1",
        "user=99999999999999999999999",
        "since=yesterday",
        "since=2026-13-01T00:00:00Z",
        "search=nul%00byte",
    ],
)
def test_invalid_filter_values_are_400_naming_the_parameter(query, alice_client):
    response = alice_client.get("/api/defects?" + query)
    assert response.status_code == 400, response.content
    assert list(response.json()) == [query.split("=")[0]]
