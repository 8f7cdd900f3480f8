"""The soak's ledger on made-up books: balanced books pass, each kind of discrepancy is caught."""

import json

from soak.faults import DB_RESTART, WEB_WORKER_KILL
from soak.ledger import Books, DestinationBooks, check, delays, describe_delays, summary_line
from soak.load import CREATE, DELETE, Answer, OrmOp
from soak.proxy import Forwarded

USER = 7
BUILTIN, SECOND = 0, 1  # books.destinations: both actions, creations only


def received(events: list[tuple[str, dict]], actions: tuple[str, ...]) -> DestinationBooks:
    """A destination of `actions` that got each such event once, with a 2xx, all delivered."""
    mine = [(key, payload) for key, payload in events if payload["action"] in actions]
    counts = {CREATE: 0, DELETE: 0}
    for _, payload in mine:
        counts[payload["action"]] += 1
    return DestinationBooks(
        name="+".join(actions),
        actions=actions,
        deliveries=[(key, "delivered") for key, _ in mine],
        forwarded=[Forwarded(1.0, key, json.dumps(payload).encode(), 200) for key, payload in mine],
        counts={str(USER): counts},
    )


def balanced() -> Books:
    """User 7 created defects 1 and 2 through the API, deleted 1; a bulk_create made 3.
    The first destination takes both actions, the second creations only."""
    events = [
        ("k1", {"user": USER, "action": CREATE}),
        ("k2", {"user": USER, "action": CREATE}),
        ("k3", {"user": USER, "action": DELETE}),
        ("k4", {"user": USER, "action": CREATE}),
    ]
    return Books(
        events=events,
        destinations=[received(events, (CREATE, DELETE)), received(events, (CREATE,))],
        defects={USER: 2},
        defect_ids={2, 3},
        answers=[
            Answer(10.0, USER, CREATE, 201, 1),
            Answer(11.0, USER, CREATE, 201, 2),
            Answer(12.0, USER, DELETE, 204, 1),
        ],
        orm_ops=[OrmOp(13.0, "bulk_create", USER, ids=[3])],
        users=[USER],
        web_windows=[(WEB_WORKER_KILL, 100.0, 105.0), (DB_RESTART, 200.0, 210.0)],
    )


def builtin(books: Books) -> DestinationBooks:
    return books.destinations[BUILTIN]


def second(books: Books) -> DestinationBooks:
    return books.destinations[SECOND]


def test_balanced_books_pass():
    figures = check(balanced())
    assert figures.ok, figures.problems
    assert (figures.ops, figures.events, figures.duplicates) == (4, 4, 0)
    assert [(d.name, d.events) for d in figures.destinations] == [
        ("create+delete", 4),
        ("create", 3),
    ]
    assert summary_line("sqlite", figures, 5) == (
        "soak: db=sqlite ops=4 events=4 faults=5 lost=0 phantom=0 wrong=0 left=0 "
        "duplicates=0 ledger_mismatches=0 unlogged=0; "
        "create+delete [create+delete]: events=4 lost=0 phantom=0 wrong=0 left=0 "
        "duplicates=0 mismatches=0 unlogged=0; "
        "create [create]: events=3 lost=0 phantom=0 wrong=0 left=0 duplicates=0 mismatches=0 "
        "unlogged=0"
    )


def forwarded(key: str, payload: dict, status: int = 200, at: float = 2.0) -> Forwarded:
    return Forwarded(at, key, json.dumps(payload).encode(), status)


def test_an_event_never_answered_2xx_is_lost():
    books = balanced()
    sent = builtin(books).forwarded
    sent[0] = Forwarded(1.0, "k1", sent[0].body, 503)
    figures = check(books)
    assert figures.lost == 1 and not figures.ok
    assert [d.lost for d in figures.destinations] == [1, 0]


def test_a_key_not_in_the_outbox_is_a_phantom():
    books = balanced()
    builtin(books).forwarded.append(forwarded("k9", {"user": 7, "action": CREATE}))
    assert check(books).phantom == 1


def test_a_payload_other_than_the_event_is_wrong():
    books = balanced()
    builtin(books).forwarded.append(forwarded("k1", {"user": 8, "action": CREATE}))
    figures = check(books)
    assert figures.wrong == 1 and not figures.ok


def test_repeats_that_reached_the_counter_server_are_duplicates():
    books = balanced()
    sent = builtin(books).forwarded
    sent += [sent[0], sent[0]]
    sent.append(Forwarded(3.0, "k2", sent[1].body, 0))  # never arrived
    figures = check(books)
    assert figures.duplicates == 2 and figures.ok


def test_a_pending_delivery_is_left():
    books = balanced()
    builtin(books).deliveries[3] = ("k4", "pending")
    figures = check(books)
    assert (figures.left, figures.lost) == (1, 0) and not figures.ok


def test_counter_counts_other_than_the_outbox_mismatch():
    books = balanced()
    builtin(books).counts = {str(USER): {CREATE: 4, DELETE: 1}}
    assert check(books).ledger_mismatches == 1


def test_defects_other_than_creates_minus_deletes_mismatch():
    books = balanced()
    books.defects = {USER: 3}
    assert check(books).ledger_mismatches == 1


def test_a_201_without_its_event_mismatches():
    books = balanced()
    books.answers.append(Answer(14.0, USER, CREATE, 201, 5))
    books.defect_ids.add(5)
    books.defects = {USER: 3}
    figures = check(books)
    # Creates lack an event, and the database holds one more than the outbox says.
    assert figures.ledger_mismatches == 2 and not figures.ok


def test_an_unanswered_create_may_have_committed():
    books = balanced()
    books.answers.append(Answer(101.0, USER, CREATE, 0, None))
    books.events.append(("k5", {"user": USER, "action": CREATE}))
    books.destinations = [received(books.events, d.actions) for d in books.destinations]
    books.defects = {USER: 3}
    figures = check(books)
    assert figures.ok, figures.problems


def test_a_204_for_a_defect_still_there_mismatches():
    books = balanced()
    books.answers[2] = Answer(12.0, USER, DELETE, 204, 2)
    assert check(books).ledger_mismatches >= 1


def test_a_500_outside_fault_windows_fails_the_run():
    books = balanced()
    books.answers.append(Answer(50.0, USER, CREATE, 500, None))
    books.events.append(("k5", {"user": USER, "action": CREATE}))
    books.destinations = [received(books.events, d.actions) for d in books.destinations]
    figures = check(books)
    assert figures.client_failures == 1 and figures.errors_outside == {500: 1}


def test_a_503_inside_a_database_restart_is_expected_a_500_is_not():
    books = balanced()
    books.answers.append(Answer(205.0, USER, CREATE, 503, None))
    assert check(books).ok
    books.answers.append(Answer(206.0, USER, CREATE, 500, None))
    figures = check(books)
    assert figures.client_failures == 1 and figures.errors_inside == {503: 1, 500: 1}


def test_a_lost_connection_is_expected_only_inside_a_web_fault():
    books = balanced()
    books.answers.append(Answer(102.0, USER, DELETE, 0, 2))
    books.answers.append(Answer(150.0, USER, DELETE, 0, 3))
    figures = check(books)
    assert figures.client_failures == 1
    assert (figures.errors_inside, figures.errors_outside) == ({0: 1}, {0: 1})


def counter_keys(books: Books, actions: tuple[str, ...] = (CREATE, DELETE)) -> dict:
    return {
        key: (payload["user"], payload["action"])
        for key, payload in books.events
        if payload["action"] in actions
    }


def with_counter_keys(books: Books) -> Books:
    """Each destination's counter server recorded exactly the events it subscribes to."""
    for destination in books.destinations:
        destination.counter_keys = counter_keys(books, destination.actions)
    return books


def test_the_counter_servers_own_record_balances_too():
    assert check(with_counter_keys(balanced())).ok


def test_a_key_the_counter_server_forgot_is_lost_one_it_invented_a_phantom():
    books = with_counter_keys(balanced())
    keys = builtin(books).counter_keys
    assert keys is not None
    del keys["k2"]
    keys["k9"] = (USER, CREATE)
    figures = check(books)
    assert (figures.lost, figures.phantom) == (1, 1)


def test_a_key_the_counter_server_recorded_for_another_user_is_wrong():
    books = with_counter_keys(balanced())
    builtin(books).counter_keys = counter_keys(books) | {"k1": (USER + 1, CREATE)}
    assert check(books).wrong == 1


# --- Each destination on its own: every event it subscribes to once, nothing else ---------


def test_a_deletion_received_by_the_create_only_destination_fails_the_run():
    books = with_counter_keys(balanced())
    mine = second(books)
    mine.forwarded.append(forwarded("k3", {"user": USER, "action": DELETE}))
    mine.counts = {str(USER): {CREATE: 3, DELETE: 1}}
    figures = check(books)
    assert not figures.ok
    assert [(d.phantom, d.mismatches) for d in figures.destinations] == [(0, 0), (1, 1)]
    assert (figures.phantom, figures.ledger_mismatches) == (1, 1)
    assert any("phantom at create: event k3" in problem for problem in figures.problems)
    assert "create [create]: events=3 lost=0 phantom=1 " in summary_line("sqlite", figures, 0)


def test_a_deletion_the_create_only_counter_server_recorded_is_a_phantom():
    books = with_counter_keys(balanced())
    keys = second(books).counter_keys
    assert keys is not None
    keys["k3"] = (USER, DELETE)
    figures = check(books)
    assert [d.phantom for d in figures.destinations] == [0, 1] and not figures.ok


def test_a_delivery_of_a_deletion_to_the_create_only_destination_is_a_phantom():
    """The fan-out gave it a delivery of an action it does not subscribe to (never sent)."""
    books = balanced()
    second(books).deliveries.append(("k3", "pending"))
    figures = check(books)
    assert [(d.phantom, d.left) for d in figures.destinations] == [(0, 0), (1, 1)]


def test_a_creation_missing_at_the_second_destination_fails_the_run():
    books = with_counter_keys(balanced())
    mine = second(books)
    mine.forwarded = [sent for sent in mine.forwarded if sent.key != "k2"]
    assert mine.counter_keys is not None
    del mine.counter_keys["k2"]
    mine.counts = {str(USER): {CREATE: 2, DELETE: 0}}
    mine.deliveries = [("k1", "delivered"), ("k2", "failed"), ("k4", "delivered")]
    figures = check(books)
    assert not figures.ok
    assert [(d.lost, d.left, d.mismatches) for d in figures.destinations] == [
        (0, 0, 0),
        (1, 1, 1),
    ]
    assert any(problem.startswith("lost at create: event k2") for problem in figures.problems)


def test_a_creation_with_no_delivery_to_the_second_destination_is_lost():
    """The fan-out gave it no delivery: the event never reaches it."""
    books = balanced()
    mine = second(books)
    mine.deliveries = [row for row in mine.deliveries if row[0] != "k4"]
    mine.forwarded = [sent for sent in mine.forwarded if sent.key != "k4"]
    mine.counts = {str(USER): {CREATE: 2, DELETE: 0}}
    figures = check(books)
    assert [d.lost for d in figures.destinations] == [0, 1]
    assert "lost at create: event k4 {'user': 7, 'action': 'create'} has no delivery to it" in (
        figures.problems
    )


def test_an_event_delivered_to_one_destination_only_is_lost_at_the_other():
    """Each destination's 2xx counts for itself: the other's does not stand in for it."""
    books = balanced()
    mine = builtin(books)
    mine.forwarded = [
        Forwarded(sent.at, sent.key, sent.body, 503 if sent.key == "k1" else sent.status)
        for sent in mine.forwarded
    ]
    figures = check(books)
    assert [d.lost for d in figures.destinations] == [1, 0]


def test_duplicates_are_counted_per_destination():
    books = balanced()
    sent = second(books).forwarded
    sent += [sent[0], sent[2]]
    figures = check(books)
    assert figures.ok, figures.problems
    assert ([d.duplicates for d in figures.destinations], figures.duplicates) == ([0, 2], 2)


# --- Isolation: the delays of one destination while another is faulted ---------------------


def timed_books() -> tuple[Books, dict[str, float]]:
    """Events created at 100, 200, 300 and 400 s, each at each destination 0.5 s later,
    but for k4 at the first destination (creations and deletions), 3 s later."""
    books = balanced()
    created = {"k1": 100.0, "k2": 200.0, "k3": 300.0, "k4": 400.0}
    for index, destination in enumerate(books.destinations):
        destination.forwarded = [
            Forwarded(created[sent.key] + (3.0 if (index, sent.key) == (0, "k4") else 0.5),
                      sent.key, sent.body, sent.status)
            for sent in destination.forwarded
        ]  # fmt: skip
    return books, created


def test_delays_sort_events_by_the_faults_around_their_creation():
    books, created = timed_books()
    # The second destination faulted around k2, the first around k4, every one around k3
    # (a dispatcher killed).
    first, second_ = delays(
        books, created, counter_windows=[(1, 198.0, 203.0), (0, 399.0, 401.0)],
        shared_windows=[(299.0, 301.0)],
    )  # fmt: skip
    assert (first.quiet, first.others) == ([0.5], [0.5])  # k1 quiet, k2 while the other was down
    assert (second_.quiet, second_.others) == ([0.5], [0.5])  # k1, and k4 (its creations only)


def test_delays_show_a_destination_delayed_by_anothers_fault():
    books, created = timed_books()
    first, _ = delays(books, created, counter_windows=[(1, 398.0, 402.0)], shared_windows=[])
    assert first.others == [3.0] and sorted(first.quiet) == [0.5, 0.5, 0.5]
    assert describe_delays(first) == (
        "create+delete: creation to 2xx while no fault touched it: 3 events, p50 0.50 s, "
        "p99 0.50 s, max 0.50 s; while only another destination was faulted: 1 events, "
        "p50 3.00 s, p99 3.00 s, max 3.00 s"
    )


def test_delays_count_the_first_2xx_only():
    books, created = timed_books()
    mine = second(books)
    mine.forwarded.insert(0, forwarded("k1", {"user": USER, "action": CREATE}, 503, at=100.05))
    mine.forwarded.append(forwarded("k1", {"user": USER, "action": CREATE}, 200, at=150.0))
    _, second_ = delays(books, created, counter_windows=[], shared_windows=[])
    assert sorted(second_.quiet) == [0.5, 0.5, 0.5] and second_.others == []


def test_a_delivery_with_no_attempt_or_delivered_with_no_recorded_success_is_unlogged():
    books = balanced()
    keys = [key for key, _ in builtin(books).deliveries]
    builtin(books).attempts = {key: (1, True) for key in keys}
    assert check(books).ok and check(books).unlogged == 0

    builtin(books).attempts = {keys[0]: (2, False), **{key: (1, True) for key in keys[2:]}}
    figures = check(books)  # keys[0]'s last attempt failed; keys[1] has none
    assert (figures.unlogged, figures.ok) == (2, False)
    assert "unlogged=2" in summary_line("sqlite", figures, 0)
