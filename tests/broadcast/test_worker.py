"""The dispatcher against a real HTTP server with scripted answers."""

import datetime
import json
import statistics
import threading
import time

import pytest
from django.db import OperationalError, connection
from django.utils import timezone

from broadcast import store
from broadcast.dispatch import pacing
from broadcast.dispatch.loop import Dispatcher
from broadcast.dispatch.pacing import Pacer
from broadcast.models import Event, Status
from broadcast.probe import DueProbe
from defect.services import defect_create, defect_delete
from tests.broadcast.conftest import Answer, FakeClock, deliver_once, make_config, no_jitter
from tests.helpers import builtin_destination, counter_deliveries, free_port, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def make_due():
    counter_deliveries().update(available_at=timezone.now())


def test_delivers_exact_payloads_with_idempotency_keys(scripted_server, user, other_user):
    defect = defect_create(user=user, comment="a")
    defect_create(user=other_user, comment="b")
    defect_delete(defect=defect)

    deliver_once(scripted_server.url)

    bodies = [json.loads(r.body) for r in scripted_server.received]
    assert sorted(bodies, key=lambda b: (b["user"], b["action"])) == sorted(
        [
            {"user": user.pk, "action": "create"},
            {"user": other_user.pk, "action": "create"},
            {"user": user.pk, "action": "delete"},
        ],
        key=lambda b: (b["user"], b["action"]),
    )
    assert all(r.headers["Content-Type"] == "application/json" for r in scripted_server.received)
    keys = {r.headers["Idempotency-Key"] for r in scripted_server.received}
    assert keys == {str(k) for k in Event.objects.values_list("key", flat=True)}
    assert counter_deliveries().count() == 3
    assert set(counter_deliveries().values_list("status", "attempts")) == {(Status.DELIVERED, 1)}


def test_server_error_is_retried_with_the_same_key(scripted_server, user):
    scripted_server.script = [Answer(500), Answer(503)]
    defect_create(user=user, comment="a")
    clock = FakeClock()

    deliver_once(scripted_server.url, clock=clock, rand=no_jitter)
    delivery = counter_deliveries().get()
    assert (delivery.status, delivery.attempts) == (Status.PENDING, 1)
    assert "HTTP 500" in delivery.last_error
    # First retry after one second (the jitter's middle), then two.
    assert delivery.available_at == clock.now + datetime.timedelta(seconds=1)

    clock.advance(1)
    deliver_once(scripted_server.url, clock=clock, rand=no_jitter)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (Status.PENDING, 2)
    assert delivery.available_at == clock.now + datetime.timedelta(seconds=2)

    clock.advance(1.999)  # not due yet: nothing sent
    deliver_once(scripted_server.url, clock=clock, rand=no_jitter)
    assert len(scripted_server.received) == 2

    clock.advance(0.001)
    deliver_once(scripted_server.url, clock=clock, rand=no_jitter)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_error) == (Status.DELIVERED, 3, "")
    assert delivery.delivered_at == clock.now
    keys = {r.headers["Idempotency-Key"] for r in scripted_server.received}
    assert keys == {str(delivery.event.key)}


def test_the_jitter_comes_from_the_injected_random_source(scripted_server, user):
    scripted_server.script = [Answer(500)]
    defect_create(user=user, comment="a")
    clock = FakeClock()
    deliver_once(scripted_server.url, clock=clock, rand=lambda: 0.0, retry_base=10)
    # 10 s of backoff, 20 % early.
    assert counter_deliveries().get().available_at == clock.now + datetime.timedelta(seconds=8)


@pytest.mark.parametrize("status", [408, 429, 502])
def test_retryable_statuses(scripted_server, user, status):
    scripted_server.script = [Answer(status)]
    defect_create(user=user, comment="a")
    deliver_once(scripted_server.url)
    delivery = counter_deliveries().get()
    assert delivery.status == Status.PENDING and f"HTTP {status}" in delivery.last_error


def test_retry_after_is_honoured(scripted_server, user):
    scripted_server.script = [Answer(429, {"Retry-After": "120"})]
    defect_create(user=user, comment="a")
    clock = FakeClock()
    deliver_once(scripted_server.url, clock=clock, rand=no_jitter)
    delivery = counter_deliveries().get()
    assert delivery.available_at == clock.now + datetime.timedelta(seconds=120)


@pytest.mark.parametrize("status", [400, 404, 409, 422])
def test_other_client_errors_fail_permanently(scripted_server, user, status):
    scripted_server.script = [Answer(status)]
    defect_create(user=user, comment="a")
    deliver_once(scripted_server.url)
    delivery = counter_deliveries().get()
    assert (delivery.status, delivery.attempts) == (Status.FAILED, 1)
    assert f"HTTP {status}" in delivery.last_error

    make_due()
    deliver_once(scripted_server.url)
    assert len(scripted_server.received) == 1  # not retried blindly


def test_connection_refused_is_retried(user):
    defect_create(user=user, comment="a")
    deliver_once(f"http://127.0.0.1:{free_port()}/")  # nothing listens there
    delivery = counter_deliveries().get()
    assert (delivery.status, delivery.attempts) == (Status.PENDING, 1)
    assert "Connect" in delivery.last_error


def test_timeout_is_retried(scripted_server, user):
    scripted_server.script = [Answer(200, delay=1.0)]
    defect_create(user=user, comment="a")
    deliver_once(scripted_server.url, request_timeout=0.2)
    delivery = counter_deliveries().get()
    assert (delivery.status, delivery.last_error) == (Status.PENDING, "timed out")


def test_nothing_due_means_nothing_sent(scripted_server, user):
    defect_create(user=user, comment="a")
    counter_deliveries().update(available_at=timezone.now() + datetime.timedelta(minutes=5))
    deliver_once(scripted_server.url)
    assert scripted_server.received == []


def test_many_events_are_each_sent_once(scripted_server, user):
    from defect.models import Defect

    Defect.objects.bulk_create([Defect(user=user, comment=str(i)) for i in range(300)])
    deliver_once(scripted_server.url, concurrency=16, batch_size=40)
    keys = [r.headers["Idempotency-Key"] for r in scripted_server.received]
    assert len(keys) == 300 == len(set(keys))
    assert counter_deliveries().delivered().count() == 300


def test_answers_refill_the_queue_at_once_even_with_batches_smaller_than_concurrency(
    scripted_server, user
):
    from defect.models import Defect

    Defect.objects.bulk_create([Defect(user=user, comment=str(i)) for i in range(20)])
    started = time.monotonic()
    # Five batches of 4; waiting for the 5 s poll between them would take 25 s.
    deliver_once(scripted_server.url, concurrency=16, batch_size=4, poll_interval=5.0)
    assert counter_deliveries().delivered().count() == 20
    assert time.monotonic() - started < 4


def test_a_backlogs_rounds_each_record_as_many_answers_as_a_claim_takes(
    scripted_server, user, monkeypatch
):
    """A round costs much the same whatever it carries: in a drain, one per claim, not one
    per concurrency's worth of answers, and every one claims."""
    from defect.models import Defect

    recorded, limits = [], []  # each round's: answers recorded, deliveries it claims at most
    builtin = builtin_destination().pk
    exchange = store.exchange

    def counted_exchange(**kwargs):
        recorded.append(len(kwargs["outcomes"]))
        limits.append(kwargs["limits"].get(builtin, 0))
        return exchange(**kwargs)

    monkeypatch.setattr(store, "exchange", counted_exchange)
    Defect.objects.bulk_create([Defect(user=user, comment=str(i)) for i in range(400)])
    # A claim tops the queue up below 40 (half a batch); 4 in flight at a time.
    deliver_once(scripted_server.url, concurrency=4, batch_size=80, poll_interval=1.0)
    assert counter_deliveries().delivered().count() == 400
    assert sum(recorded) == 400
    assert statistics.median(recorded) >= 20  # recording every 4 answers: rounds of 4 to 8
    # Each also tops the queue up, so that it never runs dry while a round records.
    assert all(limit > 0 for limit, count in zip(limits, recorded, strict=True) if count)


def test_an_answer_is_read_before_its_timeout_even_with_a_longer_poll_interval(
    scripted_server, user
):
    defect_create(user=user, comment="a")
    config = make_config(scripted_server.url, poll_interval=3.0, request_timeout=1.0, lease=4)
    dispatcher = Dispatcher(config)
    thread = threading.Thread(target=dispatcher.run)
    thread.start()
    try:
        wait_for(lambda: counter_deliveries().delivered().exists(), timeout=10, message="the event")
    finally:
        dispatcher.stop()
        thread.join(15)
    delivery = counter_deliveries().get()
    assert (delivery.attempts, delivery.last_error) == (1, "")
    assert len(scripted_server.received) == 1


def test_an_event_whose_lease_would_expire_in_flight_is_not_sent(scripted_server, user):
    # One request at a time, each answered after 1.5 s, leases of 4 s and a 2 s
    # timeout: the third event would still be in flight when its lease ends.
    scripted_server.script = [Answer(200, delay=1.5) for _ in range(3)]
    for i in range(3):
        defect_create(user=user, comment=str(i))
    deliver_once(scripted_server.url, concurrency=1, batch_size=10, lease=4, request_timeout=2)
    assert len(scripted_server.received) == 2
    assert counter_deliveries().delivered().count() == 2
    left = counter_deliveries().pending().get()
    assert (left.attempts, left.claimed_by) == (0, "")  # released, due again at once
    assert left.available_at <= timezone.now()


def test_a_down_counter_server_is_probed_not_hammered(user):
    from defect.models import Defect

    url = f"http://127.0.0.1:{free_port()}/"  # nothing listens there
    Defect.objects.bulk_create([Defect(user=user, comment=str(i)) for i in range(300)])
    # A probe interval far longer than the run: after the first batch, the
    # breaker allows exactly one probe, then claims nothing more.
    deliver_once(url, concurrency=8, batch_size=50, probe_interval=60)
    attempted = counter_deliveries().filter(attempts__gt=0).count()
    assert 8 <= attempted <= 50 + 8  # the first batch, then a probe now and then
    assert attempted == 50 + 1
    assert counter_deliveries().pending().count() == 300  # nothing lost, nothing failed


def listening_per_wait_after_two_requests(scripted_server, monkeypatch, config, events):
    """Run a dispatcher until `events` are delivered (and, on PostgreSQL, LISTEN is back);
    for each of its waits that ended with the server having received two requests,
    whether LISTEN was in place then (read at the wait's end: the announcer's thread
    applies a change of the loop's asynchronously, and the requests a turn sends are
    written at the start of the wait that follows)."""
    from broadcast.client import CounterClient

    listening = []
    wait = CounterClient.wait

    def counted_wait(client, *args, **kwargs):
        result = wait(client, *args, **kwargs)
        if len(scripted_server.received) == 2:
            listening.append(dispatcher.announcer.listening.is_set())
        return result

    monkeypatch.setattr(CounterClient, "wait", counted_wait)
    dispatcher = Dispatcher(config)
    thread = threading.Thread(target=dispatcher.run)
    thread.start()
    try:
        wait_for(lambda: counter_deliveries().delivered().count() == events, timeout=10)
        wait_for(
            lambda: dispatcher.announcer.listening.is_set(), timeout=10, message="listening again"
        )
    finally:
        dispatcher.stop()
        thread.join(15)
    return listening


def test_an_open_breaker_leaves_the_loop_asleep_until_its_next_probe(
    scripted_server, user, monkeypatch
):
    """While the counter server looks down the loop wakes for the breaker's probes, not
    at every poll, and on PostgreSQL stops listening; the first success brings both back."""
    scripted_server.script = [Answer(503)] * 2  # open the breaker (concurrency 2)
    for i in range(2):
        defect_create(user=user, comment=str(i))
    config = make_config(
        scripted_server.url, concurrency=2, retry_base=1.0, poll_interval=0.01, rand=no_jitter
    )
    between_probes = listening_per_wait_after_two_requests(
        scripted_server, monkeypatch, config, events=2
    )
    assert len(scripted_server.received) == 4  # the two, the probe (a retry), the other
    # Polling every 0.01 s for the second until the probe would be about 100 waits; each
    # round (the record, the probe's claim, one more if a probe finds its retry not yet
    # due) adds the wait for its end on the database thread.
    assert 1 <= len(between_probes) <= 10
    assert not all(between_probes)  # not listening while the breaker was open


def test_a_full_queue_leaves_the_loop_asleep_until_answers_free_a_handle(
    scripted_server, user, monkeypatch
):
    """A slow counter server: with as many events queued as a round would top up, the
    loop waits for answers, not for each poll, and on PostgreSQL stops listening."""
    scripted_server.script = [Answer(200, delay=1.0)] * 2
    for i in range(6):
        defect_create(user=user, comment=str(i))
    # The first claim takes 4, sends 2 and queues 2: the low water mark, max(2, 4 // 2).
    config = make_config(scripted_server.url, concurrency=2, batch_size=4, poll_interval=0.01)
    while_full = listening_per_wait_after_two_requests(
        scripted_server, monkeypatch, config, events=6
    )
    # Polling every 0.01 s for the second the answers take would be about 100 waits
    # (each round adds the wait for its end on the database thread).
    assert 1 <= len(while_full) <= 10
    assert not all(while_full)  # not listening while the queue was full


def test_with_the_queue_full_answers_wait_to_be_recorded_until_a_claim_is_wanted(
    scripted_server, user, monkeypatch
):
    """A slow counter server's answers trickle in while the queue is full: no round
    records them a poll interval after each comes (it would claim little or nothing);
    the round that records them comes once the queue falls below the low water mark,
    a claim's worth of them waits, or the slow poll (1 s) comes."""
    scripted_server.script = [Answer(200, delay=0.1)] * 8
    for i in range(8):
        defect_create(user=user, comment=str(i))
    rounds = []  # (events queued, answers to record) as each round starts
    round_started = Pacer.round_started

    def noted(pacer, snapshot):
        rounds.append((snapshot.queued, snapshot.answers))
        round_started(pacer, snapshot)

    monkeypatch.setattr(Pacer, "round_started", noted)
    # The first claim takes 8, sends 2 and queues 6; the low water mark is 4, max(2, 8 // 2).
    deliver_once(scripted_server.url, concurrency=2, batch_size=8, poll_interval=0.01)

    assert counter_deliveries().delivered().count() == 8
    recording = [(queued, answers) for queued, answers in rounds if answers]
    assert recording
    # None while the queue was full, unless as many answers as a claim's worth waited.
    assert all(queued < 4 or answers >= 4 for queued, answers in recording), rounds


def test_a_dispatcher_survives_losing_its_database_connection(scripted_server, user, monkeypatch):
    dispatcher = Dispatcher(make_config(scripted_server.url))
    thread = threading.Thread(target=dispatcher.run)
    thread.start()
    try:
        defect_create(user=user, comment="before")
        wait_for(lambda: counter_deliveries().delivered().count() == 1, timeout=10)

        if connection.vendor == "postgresql":
            # What a database restart or a network cut does to its sessions.
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
        else:
            # A SQLite file has no server to lose: its failures are errors such as
            # "database is locked" past the timeout. Make the next round fail so.
            exchange = store.exchange
            failures = []

            def failing_once(**kwargs):
                if not failures:
                    failures.append(True)
                    raise OperationalError("database is locked")
                return exchange(**kwargs)

            monkeypatch.setattr(store, "exchange", failing_once)
        defect_create(user=user, comment="after")

        wait_for(lambda: counter_deliveries().delivered().count() == 2, timeout=10)
        keys = [r.headers["Idempotency-Key"] for r in scripted_server.received]
        assert sorted(keys) == sorted(str(k) for k in Event.objects.values_list("key", flat=True))
    finally:
        dispatcher.stop()
        thread.join(15)


def test_every_wake_up_ends_the_next_wait_even_right_after_a_clear():
    import select

    from broadcast.dispatch.wake import Waker

    waker = Waker()
    try:
        assert select.select([waker], [], [], 0)[0] == []
        waker.wake()
        waker.wake()
        assert select.select([waker], [], [], 0)[0] == [waker]
        waker.clear()
        assert select.select([waker], [], [], 0)[0] == []
        waker.wake()  # as a round ending just after the loop cleared
        assert select.select([waker], [], [], 0)[0] == [waker]
    finally:
        waker.close()


def test_a_commit_wakes_the_dispatcher_long_before_its_poll(scripted_server, user):
    """A commit's announcement (NOTIFY on PostgreSQL, the doorbell on SQLite) starts a
    round at once."""
    from broadcast.dispatch.wake import DoorbellWatch, PostgresListener

    dispatcher = Dispatcher(make_config(scripted_server.url, poll_interval=60))
    thread = threading.Thread(target=dispatcher.run)
    thread.start()
    try:
        wait_for(lambda: dispatcher.announcer.listening.is_set(), timeout=10, message="listening")
        expected = PostgresListener if connection.vendor == "postgresql" else DoorbellWatch
        assert isinstance(dispatcher.announcer, expected)
        time.sleep(0.2)  # past the start's rounds: only an announcement (or the poll) is left
        defect_create(user=user, comment="a")
        # Within 10 s, where the next poll is 60 s away.
        wait_for(lambda: len(scripted_server.received) == 1, timeout=10, message="the event")
    finally:
        dispatcher.stop()
        thread.join(15)
    assert counter_deliveries().get().status == Status.DELIVERED  # recorded on the way out


def test_while_listening_only_retries_and_the_slow_poll_start_rounds(
    scripted_server, user, monkeypatch
):
    """While commits are announced, no round every poll interval; a retry still goes out
    when it is due."""
    from broadcast.dispatch import pacing

    monkeypatch.setattr(pacing, "SAFETY_NET_POLL", 60.0)
    rounds = []
    exchange = store.exchange
    monkeypatch.setattr(store, "exchange", lambda **kw: rounds.append(1) or exchange(**kw))
    scripted_server.script = [Answer(503)]
    dispatcher = Dispatcher(make_config(scripted_server.url, retry_base=0.2, rand=no_jitter))
    thread = threading.Thread(target=dispatcher.run)
    thread.start()
    try:
        wait_for(lambda: dispatcher.announcer.listening.is_set(), timeout=10, message="listening")
        time.sleep(0.1)  # past the start's rounds
        quiet = len(rounds)
        time.sleep(0.3)  # 30 poll intervals of 10 ms
        assert len(rounds) - quiet <= 1  # the round of the catch-up wake-up at most
        defect_create(user=user, comment="a")  # announced: a round; the answer is a 503
        # The retry, due 0.2 s later, is polled for then, not at the next safety net (60 s).
        wait_for(lambda: len(scripted_server.received) == 2, timeout=10, message="the retry")
    finally:
        dispatcher.stop()
        thread.join(15)
    assert counter_deliveries().get().status == Status.DELIVERED


@pytest.mark.sqlite
def test_an_idle_dispatcher_on_sqlite_probes_and_starts_no_round(
    scripted_server, user, monkeypatch
):
    """Nothing due: after the start's, no round (no hand-off, no write lock), however many
    polls pass, each asking the probe; then an event is."""
    rounds, probes = [], []
    exchange, due = store.exchange, DueProbe.due
    monkeypatch.setattr(store, "exchange", lambda **kw: rounds.append(1) or exchange(**kw))
    monkeypatch.setattr(DueProbe, "due", lambda *args: probes.append(1) or due(*args))
    # The safety net's poll every 10 ms rather than 10 s: the polls the probe answers.
    monkeypatch.setattr(pacing, "SAFETY_NET_POLL", 0.01)
    dispatcher = Dispatcher(make_config(scripted_server.url, poll_interval=0.01))
    thread = threading.Thread(target=dispatcher.run)
    thread.start()
    try:
        wait_for(lambda: dispatcher.announcer.listening.is_set(), timeout=10, message="listening")
        time.sleep(0.1)  # past the start's rounds (its own, the doorbell's catch-up)
        quiet, asked = len(rounds), len(probes)
        assert quiet <= 2
        time.sleep(0.3)  # 30 poll intervals
        assert len(rounds) == quiet
        assert len(probes) - asked >= 10  # polled, and the probe said nothing was due
        defect_create(user=user, comment="a")
        wait_for(lambda: len(scripted_server.received) == 1, timeout=10, message="the event")
    finally:
        dispatcher.stop()
        thread.join(15)
    assert counter_deliveries().get().status == Status.DELIVERED


def test_a_trickles_answers_are_collected_together_not_each_at_a_wake_up(
    scripted_server, user, monkeypatch
):
    """Answers that would not fill a round end no wait: the loop collects them at the
    round's tick, one wake-up for all, and records them then."""
    from broadcast.client import CounterClient

    collected = []
    wait = CounterClient.wait

    def counted_wait(client, *args, **kwargs):
        finished, woken = wait(client, *args, **kwargs)
        if finished:
            collected.append(len(finished))
        return finished, woken

    monkeypatch.setattr(CounterClient, "wait", counted_wait)
    # Answered 0.3, 0.4 and 0.5 s after they came: each would be a wake-up of its own.
    # (On PostgreSQL the listener wakes the loop once LISTEN is up, well before.)
    scripted_server.script = [Answer(200, delay=delay) for delay in (0.3, 0.4, 0.5)]
    for i in range(3):
        defect_create(user=user, comment=str(i))
    dispatcher = Dispatcher(make_config(scripted_server.url, concurrency=8, poll_interval=1.0))
    thread = threading.Thread(target=dispatcher.run)
    thread.start()
    try:
        wait_for(
            lambda: counter_deliveries().delivered().count() == 3, timeout=10, message="3 events"
        )
    finally:
        dispatcher.stop()
        thread.join(15)
    assert collected == [3]


def test_a_round_with_nothing_to_send_meanwhile_runs_on_the_loop_the_others_on_the_db_thread(
    scripted_server, user, monkeypatch
):
    threads = []
    exchange = store.exchange
    monkeypatch.setattr(
        store, "exchange", lambda **kw: threads.append(threading.current_thread()) or exchange(**kw)
    )
    for i in range(30):
        defect_create(user=user, comment=str(i))
    # The first round: nothing to send until it ends. The next, with 2 events still
    # queued (a batch of 10, 8 requests in flight), while the loop sends them.
    deliver_once(scripted_server.url, batch_size=10, concurrency=8)
    assert counter_deliveries().delivered().count() == 30
    loop = threading.current_thread()
    assert threads[0] is loop
    assert {thread.name.split("_")[0] for thread in threads if thread is not loop} == {
        "broadcast-db"
    }
