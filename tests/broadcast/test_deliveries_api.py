"""A destination's delivery log in the API: its deliveries and attempts listed newest first,
resending one delivery, replaying a window; staff only, 404 for what is not the destination's,
bad input a 400 naming the field."""

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from broadcast.destinations import destination_create
from broadcast.models import Attempt, Delivery, Destination, Event, Status
from tests.broadcast.conftest import log_attempt
from tests.helpers import builtin_destination

pytestmark = pytest.mark.django_db

DAY = datetime.datetime(2026, 11, 30, tzinfo=datetime.UTC)
HOUR = datetime.timedelta(hours=1)
DELIVERY_FIELDS = {"id", "event", "payload", "subject", "status", "attempts", "next_attempt_at",
                   "delivered_at", "last_error", "created_at"}  # fmt: skip
ATTEMPT_FIELDS = {"id", "delivery", "event", "attempt", "started_at", "duration_ms",
                  "status_code", "succeeded", "error", "response"}  # fmt: skip


@pytest.fixture
def planning() -> Destination:
    return destination_create(name="planning", url="https://planning.example/hooks")[0]


def delivery(destination: Destination, status: str, created: datetime.datetime,
             attempts: int = 3) -> Delivery:  # fmt: skip
    """A delivery in `status`, of a new event created at `created`, after `attempts` attempts."""
    event = Event.objects.create(payload={"user": 7, "action": "create"}, created_at=created)
    return Delivery.objects.create(
        event=event,
        destination=destination,
        status=status,
        created_at=created,
        available_at=created + HOUR,
        attempts=attempts,
        last_error="HTTP 400: bad" if status == Status.FAILED else "",
        delivered_at=created if status == Status.DELIVERED else None,
    )


def attempt(row: Delivery, number: int, status_code: int | None, **fields) -> Attempt:
    return log_attempt(row, number, status_code, started_at=row.created_at + number * HOUR,
                       duration_ms=10 * number, **fields)  # fmt: skip


@pytest.fixture
def log(planning) -> dict[str, Delivery]:
    """Planning's deliveries: failed (before, at the start, inside and at the end of 30 Nov),
    delivered and pending inside it; one failed delivery to the built-in destination inside it.
    The delivered one failed twice, then succeeded."""
    rows = {
        "before": delivery(planning, Status.FAILED, DAY - HOUR),
        "start": delivery(planning, Status.FAILED, DAY),
        "inside": delivery(planning, Status.FAILED, DAY + 12 * HOUR),
        "end": delivery(planning, Status.FAILED, DAY + 24 * HOUR),
        "delivered": delivery(planning, Status.DELIVERED, DAY + 13 * HOUR),
        "pending": delivery(planning, Status.PENDING, DAY + 14 * HOUR, attempts=0),
        "other": delivery(builtin_destination(), Status.FAILED, DAY + 12 * HOUR),
    }
    attempt(rows["delivered"], 1, None, error="timed out after 10.0 s")
    attempt(rows["delivered"], 2, 503, error="HTTP 503", response="busy")
    attempt(rows["delivered"], 3, 200, response='{"status": 200}')
    attempt(rows["other"], 1, 400, error="HTTP 400", response="bad")
    return rows


def statuses(rows: dict[str, Delivery]) -> dict[str, str]:
    return {name: Delivery.objects.get(pk=row.pk).status for name, row in rows.items()}


def every_route(pk, delivery_id) -> list[tuple[str, str]]:
    return [
        ("get", f"/api/destinations/{pk}/deliveries"),
        ("get", f"/api/destinations/{pk}/attempts"),
        ("post", f"/api/destinations/{pk}/deliveries/{delivery_id}/resend"),
        ("post", f"/api/destinations/{pk}/replay"),
    ]


REPLAY = {"since": "2026-11-30T00:00:00Z", "until": "2026-12-01T00:00:00Z"}


# --- Who may -------------------------------------------------------------------------------


def test_without_credentials_every_route_is_a_401(api_client, planning, log):
    for method, path in every_route(planning.pk, log["delivered"].pk):
        response = getattr(api_client, method)(path, REPLAY, format="json")
        assert response.status_code == 401, (method, path)
        assert response["WWW-Authenticate"] == 'Basic realm="api"'
    assert statuses(log)["delivered"] == Status.DELIVERED


def test_a_user_who_is_not_staff_gets_a_403_on_every_route(alice, planning, log):
    for method, path in every_route(planning.pk, log["delivered"].pk):
        response = getattr(alice, method)(path, REPLAY, format="json")
        assert (response.status_code, set(response.json())) == (403, {"detail"}), (method, path)
    assert statuses(log)["delivered"] == Status.DELIVERED
    assert Delivery.objects.failed().count() == 5


@pytest.mark.parametrize("pk", ["4711", "abc"])
def test_an_unknown_destination_is_a_json_404_on_every_route(staff, log, pk):
    for method, path in every_route(pk, log["delivered"].pk):
        response = getattr(staff, method)(path, REPLAY, format="json")
        assert (response.status_code, set(response.json())) == (404, {"detail"}), (method, path)


@pytest.mark.parametrize("slash", ["", "/"])
def test_every_route_answers_with_and_without_a_trailing_slash(staff, planning, log, slash):
    base = f"/api/destinations/{planning.pk}"
    assert staff.get(f"{base}/deliveries{slash}").status_code == 200
    assert staff.get(f"{base}/attempts{slash}").status_code == 200
    resend = f"{base}/deliveries/{log['pending'].pk}/resend{slash}"
    assert staff.post(resend).status_code == 202
    replay = staff.post(f"{base}/replay{slash}", {**REPLAY, "dry_run": True}, format="json")
    assert replay.status_code == 200


# --- GET .../deliveries --------------------------------------------------------------------


def test_the_deliveries_are_listed_newest_first_with_their_event(staff, planning, log):
    response = staff.get(f"/api/destinations/{planning.pk}/deliveries")

    assert response.status_code == 200
    listed = response.json()["results"]
    mine = [log[n] for n in ("before", "start", "inside", "end", "delivered", "pending")]
    assert [d["id"] for d in listed] == [row.pk for row in reversed(mine)]
    assert set(listed[0]) == DELIVERY_FIELDS
    delivered = next(d for d in listed if d["id"] == log["delivered"].pk)
    row = log["delivered"]
    assert delivered == {
        "id": row.pk, "event": str(row.event.key), "payload": {"user": 7, "action": "create"},
        "subject": None, "status": "delivered", "attempts": 3, "next_attempt_at": None,
        "last_error": "", "delivered_at": "2026-11-30T13:00:00Z",
        "created_at": "2026-11-30T13:00:00Z",
    }  # fmt: skip


def test_a_deliverys_payload_is_what_its_destination_is_sent_in_its_format(staff, user):
    from defect.services import defect_create

    feed, _ = destination_create(name="feed", url="https://feed.example/hooks", format="event")
    defect = defect_create(user=user, comment="brake pad worn")
    event = Event.objects.get(subject=defect.pk)

    def listed(destination: Destination) -> dict:
        (only,) = staff.get(f"/api/destinations/{destination.pk}/deliveries").json()["results"]
        return only

    assert listed(feed)["payload"] == event.envelope
    assert event.envelope["type"] == "defect.created"
    assert event.envelope["data"]["id"] == defect.pk
    assert listed(builtin_destination())["payload"] == {"user": user.pk, "action": "create"}
    assert listed(feed)["subject"] == listed(builtin_destination())["subject"] == defect.pk


def test_a_page_of_deliveries_costs_the_same_queries_whatever_its_length(staff, planning):
    def queries_for_a_page_of(count: int) -> int:
        for i in range(count - Delivery.objects.filter(destination=planning).count()):
            delivery(planning, Status.FAILED, DAY + i * HOUR)
        with CaptureQueriesContext(connection) as queries:
            listed = staff.get(f"/api/destinations/{planning.pk}/deliveries").json()
        assert len(listed["results"]) == count
        return len(queries)

    assert queries_for_a_page_of(2) == queries_for_a_page_of(20)


def test_the_deliveries_filtered_by_subject_or_by_event_key(staff, user):
    from defect.services import defect_create, defect_delete

    wanted = defect_create(user=user, comment="wanted")
    wanted_id = wanted.pk
    defect_create(user=user, comment="another")
    defect_delete(defect=wanted)
    base = f"/api/destinations/{builtin_destination().pk}/deliveries"

    by_subject = staff.get(base, {"subject": wanted_id}).json()["results"]
    assert [d["payload"]["action"] for d in by_subject] == ["delete", "create"]
    assert {d["subject"] for d in by_subject} == {wanted_id}
    key = by_subject[1]["event"]
    assert [d["event"] for d in staff.get(base, {"event": key}).json()["results"]] == [key]


@pytest.mark.parametrize(
    ("query", "field"),
    [("subject=", "subject"), ("subject=abc", "subject"), ("subject=-1", "subject"),
     ("subject=9223372036854775808", "subject"), ("event=", "event"),
     ("event=not-a-key", "event")],
)  # fmt: skip
def test_a_bad_subject_or_event_key_is_a_400_naming_it(staff, planning, query, field):
    response = staff.get(f"/api/destinations/{planning.pk}/deliveries?{query}")
    assert (response.status_code, set(response.json())) == (400, {field})


def test_next_attempt_at_is_a_pending_deliverys_due_time_and_null_otherwise(staff, planning, log):
    listed = staff.get(f"/api/destinations/{planning.pk}/deliveries").json()["results"]
    due = {d["id"]: d["next_attempt_at"] for d in listed}
    assert due[log["pending"].pk] == "2026-11-30T15:00:00Z"  # its available_at
    assert due[log["inside"].pk] is None and due[log["delivered"].pk] is None


@pytest.mark.parametrize(
    ("status", "names"),
    [("failed", ["end", "inside", "start", "before"]), ("delivered", ["delivered"]),
     ("pending", ["pending"])],
)  # fmt: skip
def test_the_deliveries_filtered_by_status(staff, planning, log, status, names):
    response = staff.get(f"/api/destinations/{planning.pk}/deliveries", {"status": status})
    assert [d["id"] for d in response.json()["results"]] == [log[n].pk for n in names]


def test_the_deliveries_are_paginated_by_cursor(staff, planning, log):
    path = f"/api/destinations/{planning.pk}/deliveries?status=failed&page_size=3"
    first = staff.get(path).json()
    assert set(first) == {"next", "previous", "results"}
    second = staff.get(first["next"]).json()
    assert second["next"] is None
    ids = [d["id"] for page in (first, second) for d in page["results"]]
    assert ids == [log[n].pk for n in ("end", "inside", "start", "before")]
    assert [d["id"] for d in staff.get(second["previous"]).json()["results"]] == ids[:3]


@pytest.mark.parametrize(
    ("query", "field"),
    [("deliveries?status=sent", "status"), ("deliveries?status=succeeded", "status"),
     ("attempts?status=delivered", "status"), ("attempts?status=", "status"),
     ("deliveries?status=", "status"), ("deliveries?cursor=nonsense", "cursor"),
     ("attempts?cursor=nonsense", "cursor"), ("deliveries?page_size=0", "page_size"),
     ("attempts?page_size=%C2%B3", "page_size")],
)  # fmt: skip
def test_a_bad_filter_cursor_or_page_size_is_a_400_naming_it(staff, planning, query, field):
    response = staff.get(f"/api/destinations/{planning.pk}/{query}")
    assert (response.status_code, set(response.json())) == (400, {field})


# --- GET .../attempts ----------------------------------------------------------------------


def test_the_attempts_are_listed_newest_first_with_what_came_back(staff, planning, log):
    response = staff.get(f"/api/destinations/{planning.pk}/attempts")

    listed = response.json()["results"]
    assert [a["attempt"] for a in listed] == [3, 2, 1]  # the built-in destination's not here
    assert set(listed[0]) == ATTEMPT_FIELDS
    row = log["delivered"]
    assert listed[2] == {
        "id": listed[2]["id"], "delivery": row.pk, "event": str(row.event.key), "attempt": 1,
        "started_at": "2026-11-30T14:00:00Z", "duration_ms": 10, "status_code": None,
        "succeeded": False, "error": "timed out after 10.0 s", "response": "",
    }  # fmt: skip
    assert (listed[1]["status_code"], listed[1]["response"]) == (503, "busy")
    assert (listed[0]["status_code"], listed[0]["succeeded"]) == (200, True)


@pytest.mark.parametrize(("status", "numbers"), [("failed", [2, 1]), ("succeeded", [3])])
def test_the_attempts_filtered_by_outcome(staff, planning, log, status, numbers):
    response = staff.get(f"/api/destinations/{planning.pk}/attempts", {"status": status})
    assert [a["attempt"] for a in response.json()["results"]] == numbers


def test_the_attempts_are_paginated_by_cursor(staff, planning, log):
    first = staff.get(f"/api/destinations/{planning.pk}/attempts?page_size=2").json()
    second = staff.get(first["next"]).json()
    assert [a["attempt"] for a in first["results"] + second["results"]] == [3, 2, 1]
    assert second["next"] is None


# --- POST .../deliveries/<id>/resend -------------------------------------------------------


@pytest.mark.parametrize("name", ["delivered", "inside"])
def test_resend_makes_a_delivered_or_failed_delivery_pending_and_due_now(staff, planning, log,
                                                                         name):  # fmt: skip
    row = log[name]
    attempts_before = Attempt.objects.filter(delivery=row).count()
    before = timezone.now()

    response = staff.post(f"/api/destinations/{planning.pk}/deliveries/{row.pk}/resend")

    assert response.status_code == 202
    body = response.json()
    assert (body["id"], body["status"], body["attempts"], body["delivered_at"]) == (
        row.pk, "pending", 3, None,
    )  # fmt: skip
    row.refresh_from_db()
    assert (row.status, row.attempts, row.delivered_at) == (Status.PENDING, 3, None)
    assert before <= row.available_at <= timezone.now()  # due now
    assert body["next_attempt_at"] is not None
    assert Attempt.objects.filter(delivery=row).count() == attempts_before  # the log kept
    assert statuses(log)["start"] == Status.FAILED  # no other touched


def test_resend_of_another_destinations_or_an_unknown_delivery_is_a_404(staff, planning, log):
    for delivery_id in (log["other"].pk, 4711, "abc"):
        path = f"/api/destinations/{planning.pk}/deliveries/{delivery_id}/resend"
        response = staff.post(path)
        assert (response.status_code, set(response.json())) == (404, {"detail"}), delivery_id
    assert statuses(log)["other"] == Status.FAILED


# --- POST .../replay -----------------------------------------------------------------------


def test_replay_dry_run_counts_the_window_and_changes_nothing(staff, planning, log):
    path = f"/api/destinations/{planning.pk}/replay"
    response = staff.post(path, {**REPLAY, "dry_run": True}, format="json")

    assert (response.status_code, response.json()) == (200, {"count": 2})  # start, inside
    assert Delivery.objects.failed().count() == 5


def test_replay_makes_the_windows_failed_deliveries_pending_and_due_now(staff, planning, log):
    before = timezone.now()
    response = staff.post(f"/api/destinations/{planning.pk}/replay", REPLAY, format="json")

    assert (response.status_code, response.json()) == (202, {"count": 2})
    pending = {name for name, status in statuses(log).items() if status == Status.PENDING}
    assert pending == {"start", "inside", "pending"}  # not "other": another destination's
    inside = Delivery.objects.get(pk=log["inside"].pk)
    assert before <= inside.available_at <= timezone.now()
    assert (inside.attempts, inside.last_error) == (3, "HTTP 400: bad")


@pytest.mark.parametrize(
    ("body", "count", "replayed"),
    [({"status": "delivered"}, 1, {"delivered"}),
     ({"status": "all"}, 3, {"start", "inside", "delivered"}),
     ({"until": None, "status": "failed"}, 3, {"start", "inside", "end"})],
)  # fmt: skip
def test_replay_of_delivered_or_all_and_an_open_end(staff, planning, log, body, count, replayed):
    request = {k: v for k, v in {**REPLAY, **body}.items() if v is not None}
    response = staff.post(f"/api/destinations/{planning.pk}/replay", request, format="json")

    assert response.json() == {"count": count}
    pending = {name for name, status in statuses(log).items() if status == Status.PENDING}
    assert pending == replayed | {"pending"}


def test_more_than_broadcast_replay_max_is_a_400_saying_so(staff, planning, log, settings):
    settings.BROADCAST = {**settings.BROADCAST, "REPLAY_MAX": 2}
    path = f"/api/destinations/{planning.pk}/replay"
    body = {**REPLAY, "status": "all"}  # 3 match

    for dry_run in (True, False):
        response = staff.post(path, {**body, "dry_run": dry_run}, format="json")
        assert response.status_code == 400
        (message,) = response.json()["non_field_errors"]
        assert "3 deliveries match" in message and "BROADCAST_REPLAY_MAX (2)" in message
    assert statuses(log)["delivered"] == Status.DELIVERED
    assert Delivery.objects.failed().count() == 5

    assert staff.post(path, REPLAY, format="json").json() == {"count": 2}  # at the cap: done


@pytest.mark.parametrize(
    ("body", "field"),
    [({"until": REPLAY["until"]}, "since"),
     ({**REPLAY, "since": "yesterday"}, "since"),
     ({**REPLAY, "since": "2026-13-01T00:00:00Z"}, "since"),
     ({**REPLAY, "since": 20261130}, "since"),
     ({**REPLAY, "until": "2026-11-30T25:00:00Z"}, "until"),
     ({**REPLAY, "until": REPLAY["since"]}, "until"),
     ({"since": REPLAY["until"], "until": REPLAY["since"]}, "until"),
     ({**REPLAY, "status": "pending"}, "status"),
     ({**REPLAY, "status": "everything"}, "status"),
     ({**REPLAY, "dry_run": "maybe"}, "dry_run")],
)  # fmt: skip
def test_bad_replay_input_is_a_400_naming_the_field(staff, planning, log, body, field):
    response = staff.post(f"/api/destinations/{planning.pk}/replay", body, format="json")

    assert (response.status_code, set(response.json())) == (400, {field})
    assert Delivery.objects.failed().count() == 5


def test_a_malformed_or_form_replay_body_is_refused(staff, planning):
    path = f"/api/destinations/{planning.pk}/replay"
    malformed = staff.post(path, "{", content_type="application/json")
    form = staff.post(path, REPLAY)  # multipart
    assert (malformed.status_code, set(malformed.json())) == (400, {"detail"})
    assert (form.status_code, set(form.json())) == (415, {"detail"})
