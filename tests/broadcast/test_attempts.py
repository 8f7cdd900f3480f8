"""The attempt log: every attempt to deliver an event to a destination, as it was made."""

import datetime
import signal
import threading

import pytest
from django.db import IntegrityError
from django.utils import timezone

from broadcast import store
from broadcast.destinations import destination_create, destination_delete
from broadcast.dispatch.loop import Dispatcher
from broadcast.dispatch.policy import Decision, Verdict
from broadcast.models import Attempt, Delivery, Status
from defect.services import defect_create
from tests.broadcast.conftest import Answer, FakeClock, deliver_once, make_config, no_jitter
from tests.helpers import counter_deliveries, free_port, start_dispatcher, stop, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def log_of(delivery) -> list[tuple]:
    """(number, status code, succeeded, started_at) of each of its attempts, first first."""
    return list(
        Attempt.objects.filter(delivery=delivery)
        .order_by("id")
        .values_list("number", "status_code", "succeeded", "started_at")
    )


def test_an_event_that_failed_twice_then_succeeded_has_three_attempts(scripted_server, user):
    long_body = b"overloaded " + b"x" * 3000
    scripted_server.script = [Answer(500, body=long_body), Answer(503, delay=0.3), Answer(200)]
    defect_create(user=user, comment="a")
    clock = FakeClock()
    starts = []
    for wait in (0, 1, 2):  # the first attempt, then each retry when it is due
        clock.advance(wait)
        starts.append(clock.now)
        deliver_once(scripted_server.url, clock=clock, rand=no_jitter)

    delivery = counter_deliveries().get()
    assert (delivery.status, delivery.attempts) == (Status.DELIVERED, 3)
    assert log_of(delivery) == [(1, 500, False, starts[0]), (2, 503, False, starts[1]),
                                (3, 200, True, starts[2])]  # fmt: skip
    first, second, third = Attempt.objects.filter(delivery=delivery).order_by("id")
    assert first.response == long_body[:1024].decode()
    assert first.error.startswith("HTTP 500: overloaded x")
    assert second.duration_ms >= 300
    assert (second.response, second.error) == ('{"status": 503}', 'HTTP 503: {"status": 503}')
    assert (third.response, third.error) == ('{"status": 200}', "")
    assert {a.destination_id for a in (first, second, third)} == {delivery.destination_id}


def test_an_attempt_that_got_no_answer_has_no_status(user):
    defect_create(user=user, comment="a")
    deliver_once(f"http://127.0.0.1:{free_port()}/", rand=no_jitter)
    (attempt,) = Attempt.objects.all()
    assert (attempt.number, attempt.status_code, attempt.succeeded) == (1, None, False)
    assert attempt.error.startswith("ConnectError: ")
    assert attempt.response == ""


def test_with_successes_off_only_failed_attempts_are_logged(scripted_server, user):
    scripted_server.script = [Answer(500)]
    defect_create(user=user, comment="a")
    defect_create(user=user, comment="b")
    deliver_once(scripted_server.url, log_successes=False, rand=no_jitter)
    assert counter_deliveries().filter(status=Status.DELIVERED).count() == 1
    assert list(Attempt.objects.values_list("status_code", "succeeded")) == [(500, False)]


def claimed_delivery(user) -> store.Claimed:
    defect_create(user=user, comment="a")
    destination = counter_deliveries().get().destination_id
    (claimed,) = store.claim(owner="me", limits={destination: 1}, lease=60)
    return claimed


def an_attempt(claimed: store.Claimed, status: int) -> store.Attempted:
    return store.Attempted(
        delivery=claimed.id, number=1,
        started_at=timezone.now(), duration_ms=12, status_code=status, succeeded=status == 200,
        error="" if status == 200 else f"HTTP {status}: no", response="é\u2603\U0001F600",
    )  # fmt: skip


# Without a claim, and with one (on PostgreSQL, one statement).
@pytest.mark.parametrize("limit", [0, 5])
def test_an_exchange_logs_the_attempts_with_their_outcomes(user, limit):
    claimed = claimed_delivery(user)
    attempt = an_attempt(claimed, 200)
    store.exchange(owner="me", outcomes=[(claimed, Decision(Verdict.DELIVERED))],
                   attempts=[attempt], limits={claimed.destination: limit}, lease=60)  # fmt: skip
    logged = Attempt.objects.get()
    assert (logged.delivery_id, logged.status_code, logged.succeeded, logged.response,
            logged.started_at, logged.duration_ms) == (claimed.id, 200, True, "é\u2603\U0001F600",
                                                       attempt.started_at, 12)  # fmt: skip
    assert counter_deliveries().get().status == Status.DELIVERED


@pytest.mark.parametrize("limit", [0, 5])
def test_the_log_is_written_with_the_outcomes_or_not_at_all(user, limit):
    claimed = claimed_delivery(user)
    delivered = [(claimed, Decision(Verdict.DELIVERED))]
    attempt = an_attempt(claimed, 200)
    refused = attempt._replace(number=-1)  # by the column's check, after the outcomes
    limits = {claimed.destination: limit}
    with pytest.raises(IntegrityError):
        store.exchange(owner="me", outcomes=delivered, attempts=[attempt, refused],
                       limits=limits, lease=60)  # fmt: skip
    assert not Attempt.objects.exists()
    assert counter_deliveries().get().status == Status.PENDING
    # The round's outcomes and attempts are kept for the next, which logs them once.
    store.exchange(owner="me", outcomes=delivered, attempts=[attempt], limits=limits, lease=60)
    assert Attempt.objects.count() == 1
    assert counter_deliveries().get().status == Status.DELIVERED


@pytest.mark.parametrize("limit", [0, 5])
def test_the_attempts_of_a_delivery_deleted_while_it_was_sent_are_left_out(user, limit):
    """Its destination deleted, say: the round records the rest, and so do those after it.
    Its attempt would otherwise be refused by the foreign key, and with it every round."""
    defect_create(user=user, comment="a")
    defect_create(user=user, comment="b")
    destination = counter_deliveries().first().destination_id
    kept, gone = store.claim(owner="me", limits={destination: 2}, lease=60)
    Delivery.objects.filter(pk=gone.id).delete()
    outcomes = [(d, Decision(Verdict.DELIVERED)) for d in (kept, gone)]
    attempts = [an_attempt(d, 200) for d in (kept, gone)]
    store.exchange(owner="me", outcomes=outcomes, attempts=attempts,
                   limits={kept.destination: limit}, lease=60)  # fmt: skip
    assert list(Attempt.objects.values_list("delivery_id", flat=True)) == [kept.id]
    assert list(counter_deliveries().values_list("status", flat=True)) == [Status.DELIVERED]


def test_deleting_a_destination_deletes_its_attempts_and_no_other(user):
    """An attempt's destination is its delivery's, held by the delivery's foreign key
    alone (no second constraint in the database): Django's cascade deletes them."""
    planning, _ = destination_create(name="planning", url="https://planning.example/")
    defect_create(user=user, comment="a")
    counter = counter_deliveries().get().destination_id
    claimed = store.claim(owner="me", limits={planning.pk: 1, counter: 1}, lease=60)
    attempts = [an_attempt(delivery, 503) for delivery in claimed]
    outcomes = [(delivery, Decision(Verdict.RETRY, delay=1)) for delivery in claimed]
    store.exchange(owner="me", outcomes=outcomes, attempts=attempts, limits={}, lease=60)
    assert Attempt.objects.count() == 2

    destination_delete(destination=planning)
    assert list(Attempt.objects.values_list("destination_id", flat=True)) == [counter]


@pytest.mark.postgres
def test_deleting_a_destination_while_a_round_logs_its_attempt_waits_and_succeeds(user):
    """The round has marked the delivery delivered and logged its attempt, and not yet
    committed, when the destination is deleted: the deletion waits for it, then deletes
    the attempt too. Before, it deleted the attempts it could see, then failed at commit
    on the round's, which referred to a delivery it had deleted."""
    from tests.helpers import second_behind_first

    planning, _ = destination_create(name="planning", url="https://planning.example/")
    defect_create(user=user, comment="a")
    (claimed,) = store.claim(owner="me", limits={planning.pk: 1}, lease=60)

    def round_records_it():
        store.exchange(owner="me", outcomes=[(claimed, Decision(Verdict.DELIVERED))],
                       attempts=[an_attempt(claimed, 200)], limits={}, lease=60)  # fmt: skip

    _, pending = second_behind_first(
        round_records_it, lambda: destination_delete(destination=planning)
    )
    assert pending == 0  # delivered by the round, before the deletion read it
    assert not Delivery.objects.filter(pk=claimed.id).exists()
    assert not Attempt.objects.exists()


@pytest.mark.postgres
def test_a_round_that_logs_an_attempt_while_its_destination_is_deleted_fails_then_goes_on(user):
    """The other order: the deletion holds the deliveries when the round's single statement
    (attempts, deliveries and claim) runs. It read the delivery before the deletion
    committed, so that round fails at commit on the attempt (docs/broadcast.md); the next,
    with the same outcomes and attempts, leaves the deleted delivery's attempt out."""
    from tests.helpers import second_behind_first

    planning, _ = destination_create(name="planning", url="https://planning.example/")
    defect_create(user=user, comment="a")
    counter = counter_deliveries().get().destination_id
    (claimed,) = store.claim(owner="me", limits={planning.pk: 1}, lease=60)
    outcomes = [(claimed, Decision(Verdict.DELIVERED))]
    attempts = [an_attempt(claimed, 200)]

    def round_records_it():  # and claims for the other destination: one statement
        return store.exchange(owner="me", outcomes=outcomes, attempts=attempts,
                              limits={counter: 5}, lease=60)  # fmt: skip

    with pytest.raises(IntegrityError):
        second_behind_first(lambda: destination_delete(destination=planning), round_records_it)
    assert [d.destination for d in round_records_it()] == [counter]
    assert not Delivery.objects.filter(pk=claimed.id).exists()
    assert not Attempt.objects.exists()


def test_a_dispatcher_goes_on_when_a_delivery_is_deleted_while_it_is_sent(scripted_server, user):
    """The case above through a running dispatcher: both requests are in flight when one
    delivery is deleted. The dispatcher records the other and ends (`--once`); before,
    every round failed on the deleted one's attempt, and it never ended."""
    defect_create(user=user, comment="a")
    defect_create(user=user, comment="b")
    gone, kept = counter_deliveries().order_by("id")
    scripted_server.script = [Answer(delay=1.0), Answer(delay=1.0)]
    dispatcher = Dispatcher(make_config(scripted_server.url))
    runner = threading.Thread(target=dispatcher.run, kwargs={"once": True})
    runner.start()
    try:
        wait_for(lambda: scripted_server.in_flight == 2, timeout=10, message="not both sent")
        Delivery.objects.filter(pk=gone.pk).delete()
        runner.join(timeout=30)
        ended = not runner.is_alive()
    finally:
        dispatcher.stop()
        runner.join(timeout=30)
    assert ended
    assert list(Attempt.objects.values_list("delivery_id", flat=True)) == [kept.pk]
    assert list(counter_deliveries().values_list("status", flat=True)) == [Status.DELIVERED]


@pytest.mark.e2e
def test_the_real_counter_servers_answer_is_logged(counter_server, user, tmp_path):
    defect_create(user=user, comment="a")
    process = start_dispatcher(counter_server.url, tmp_path / "dispatcher.log")
    try:
        wait_for(lambda: Attempt.objects.exists(), timeout=30, message="no attempt logged")
    finally:
        stop(process, signal.SIGTERM)
    (attempt,) = Attempt.objects.all()
    assert (attempt.number, attempt.status_code, attempt.succeeded, attempt.error) == (
        1, 200, True, "")  # fmt: skip
    assert attempt.started_at <= timezone.now()
    assert timezone.now() - attempt.started_at < datetime.timedelta(minutes=1)
