"""Keyset pagination of /api/defects: sizes, order, complete walks, ties, bad cursors."""

import base64
import datetime
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from defect.models import Defect
from defect.services import defect_create
from tests.defect.conftest import reset_rate_limits

pytestmark = pytest.mark.django_db

T0 = datetime.datetime(2026, 11, 28, 9, 0, tzinfo=datetime.UTC)


def make_defects(user, count, *, same_time=False):
    """`count` defects, one second apart (or all at T0), inserted in random-ish id order."""
    times = [
        T0 if same_time else T0 + datetime.timedelta(seconds=(i * 7919) % count)
        for i in range(count)
    ]
    return Defect.objects.bulk_create(
        [Defect(user=user, comment=f"Defect {i}", timestamp=t) for i, t in enumerate(times)]
    )


def expected_order():
    return list(Defect.objects.order_by("-timestamp", "-id").values_list("id", flat=True))


def walk(client, url, *, link="next", between=None):
    """Follow `link` from `url` to the end; returns the pages (each a list of ids)."""
    pages = []
    while url:
        reset_rate_limits()
        response = client.get(url)
        assert response.status_code == 200, response.content
        body = response.json()
        assert set(body) == {"next", "previous", "results"}
        pages.append([d["id"] for d in body["results"]])
        url = body[link]
        if between:
            between(len(pages))
    return pages


@pytest.mark.parametrize(
    ("count", "sizes"),
    [(0, [0]), (1, [1]), (200, [200]), (201, [200, 1]), (450, [200, 200, 50])],
)
def test_walk_with_the_default_page_size(count, sizes, user, alice_client):
    make_defects(user, count)
    pages = walk(alice_client, "/api/defects")
    assert [len(p) for p in pages] == sizes
    ids = [i for page in pages for i in page]
    assert ids == expected_order()  # newest first, every defect once, no duplicate
    assert len(set(ids)) == count


def test_first_and_last_page_links(user, alice_client):
    make_defects(user, 201)
    first = alice_client.get("/api/defects").json()
    assert alice_client.get("/api/defects?cursor=").json() == first
    assert first["previous"] is None
    assert first["next"].startswith("http://testserver/api/defects?cursor=")
    last = alice_client.get(first["next"]).json()
    assert last["next"] is None
    assert len(last["results"]) == 1
    assert alice_client.get(last["previous"]).json() == first


@pytest.mark.parametrize(
    ("asked", "served"), [(1, 1), (10, 10), (200, 200), (201, 200), (10**6, 200), (10**40, 200)]
)
def test_page_size_is_capped_at_200(asked, served, user, alice_client):
    make_defects(user, 250)
    body = alice_client.get(f"/api/defects?page_size={asked}").json()
    assert len(body["results"]) == served
    assert parse_qs(urlsplit(body["next"]).query)["page_size"] == [str(asked)]


@pytest.mark.parametrize("value", ["0", "-3", "abc", "1.5", "", "9" * 5000])
def test_invalid_page_size_is_400_naming_it(value, alice_client):
    response = alice_client.get(f"/api/defects?page_size={value}")
    assert response.status_code == 400
    assert list(response.json()) == ["page_size"]


def encoded(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "abc",
        "!!!",
        encoded("x|2026-11-28T09:00:00+00:00|1"),  # unknown direction
        encoded("n|2026-11-28T09:00:00|1"),  # naive time
        encoded("n|yesterday|1"),
        encoded("n|0001-01-01T00:00:00+01:00|1"),  # before year 1 in UTC
        encoded("n|2026-11-28T09:00:00+00:00|-1"),
        encoded("n|2026-11-28T09:00:00+00:00|99999999999999999999"),
        encoded("n|2026-11-28T09:00:00+00:00"),
        encoded("p|2026-11-28T09:00:00+00:00|1|2"),
        base64.urlsafe_b64encode(b"\xff\xfe|").decode(),
    ],
)
def test_invalid_cursor_is_400_naming_it(cursor, user, alice_client):
    response = alice_client.get(f"/api/defects?cursor={cursor}")
    assert response.status_code == 400, response.content
    assert list(response.json()) == ["cursor"]


def test_a_valid_cursor_made_by_hand_works(user, alice_client):
    make_defects(user, 3)
    newest = Defect.objects.newest_first().first()
    position = f"n|{newest.timestamp.isoformat()}|{newest.pk}"
    body = alice_client.get(f"/api/defects?cursor={encoded(position)}").json()
    assert [d["id"] for d in body["results"]] == expected_order()[1:]


def test_thousands_of_equal_timestamps_page_by_position(user, alice_client):
    make_defects(user, 1000, same_time=True)
    pages = walk(alice_client, "/api/defects?page_size=150")
    assert [len(p) for p in pages] == [150] * 6 + [100]
    assert [i for page in pages for i in page] == expected_order()


def test_ties_across_page_boundaries(user, alice_client):
    # Ten groups of 25 equal timestamps, pages of 20: every page boundary falls inside a group.
    Defect.objects.bulk_create(
        Defect(user=user, comment=f"d{i}", timestamp=T0 + datetime.timedelta(minutes=i // 25))
        for i in range(250)
    )
    pages = walk(alice_client, "/api/defects?page_size=20")
    assert [i for page in pages for i in page] == expected_order()


def test_walking_backwards_visits_the_same_pages(user, alice_client):
    make_defects(user, 95)
    Defect.objects.bulk_create(Defect(user=user, comment="tie", timestamp=T0) for _ in range(30))
    forward = walk(alice_client, "/api/defects?page_size=20")
    last_url = None
    url = "/api/defects?page_size=20"
    while url:  # find the last page's URL
        last_url, url = url, alice_client.get(url).json()["next"]
    backward = walk(alice_client, last_url, link="previous")
    assert backward == list(reversed(forward))
    assert alice_client.get(last_url).json()["previous"] is not None


def test_walk_sees_every_defect_that_exists_throughout_exactly_once(user, other_user, alice_client):
    make_defects(user, 60)
    Defect.objects.bulk_create(Defect(user=user, comment="tie", timestamp=T0) for _ in range(20))
    order = expected_order()
    deleted = set()

    def meddle(pages_read):
        # Between requests: new defects (newest, and tied with unseen ones), deletions
        # of seen and unseen ones.
        defect_create(user=other_user, comment="newest")
        defect_create(user=other_user, comment="tied", timestamp=T0)
        for index in (pages_read * 10 - 1, -pages_read):
            victim = order[index] if index < len(order) else None
            if Defect.objects.filter(pk=victim).delete()[0]:
                deleted.add(victim)

    pages = walk(alice_client, "/api/defects?page_size=10", between=meddle)
    seen = [i for page in pages for i in page]
    assert len(seen) == len(set(seen)), "a defect was served twice"
    survivors = [i for i in order if i not in deleted]
    assert [i for i in seen if i in set(order)] == [
        i for i in order if i in set(seen)
    ]  # still newest first
    assert set(survivors) <= set(seen), "a defect that existed throughout was skipped"


def page_queries(client, url):
    """The body of the page at `url`, and how many SQL statements answering it took."""
    reset_rate_limits()
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, response.content
    assert not any("OFFSET" in q["sql"].upper() for q in queries.captured_queries)
    return response.json(), len(queries)


def test_deep_pages_cost_what_the_first_costs(user, token_client):
    make_defects(user, 300, same_time=True)
    make_defects(user, 300)
    page_queries(token_client, "/api/defects?page_size=1")  # the token's first use is recorded
    first, first_count = page_queries(token_client, "/api/defects?page_size=25")
    assert first_count == 2  # the token, the page
    url, forward = first["next"], []
    while url:
        body, count = page_queries(token_client, url)
        forward.append(count)
        # The page the cursor came from exists: known from the cursor, not asked for.
        assert body["previous"] is not None
        url, previous = body["next"], body["previous"]
    backward, url = [], previous  # back from the last page to the first
    while url:
        body, count = page_queries(token_client, url)
        backward.append(count)
        assert body["next"] is not None
        url = body["previous"]
    assert body == first
    assert len(forward) == len(backward) == 23
    # One seek on PostgreSQL (a row-value comparison). SQLite seeks the rows tied with
    # the cursor's timestamp, then (if the page is not full) the older ones: pages among
    # the 300 ties need the first seek only.
    if connection.vendor == "postgresql":
        assert set(forward) == set(backward) == {first_count}
    else:
        assert set(forward) == set(backward) == {first_count, first_count + 1}


def test_a_page_past_the_end_asks_whether_there_is_one_before(user, alice_client):
    make_defects(user, 2)
    oldest = Defect.objects.newest_first().last()
    position = f"{oldest.timestamp.isoformat()}|{oldest.pk}"
    body = alice_client.get(f"/api/defects?cursor={encoded('n|' + position)}").json()
    assert body["results"] == [] and body["next"] is None
    assert [d["id"] for d in alice_client.get(body["previous"]).json()["results"]] == (
        expected_order()[:1]
    )
    # With no defect on either side of the position, an empty page links nowhere.
    Defect.objects.exclude(pk=oldest.pk).delete()
    for direction in "np":
        body = alice_client.get(f"/api/defects?cursor={encoded(direction + '|' + position)}")
        assert body.json() == {"next": None, "previous": None, "results": []}


def test_filters_compose_with_pagination(user, other_user, alice_client):
    make_defects(user, 30)
    make_defects(other_user, 30)
    pages = walk(alice_client, f"/api/defects?user={other_user.pk}&page_size=7")
    ids = [i for page in pages for i in page]
    assert ids == [i for i in expected_order() if Defect.objects.get(pk=i).user_id == other_user.pk]
    assert len(ids) == 30
