"""The soak's ledger on made-up books: balanced books pass, each kind of discrepancy is caught."""

import json

from soak.faults import DB_RESTART, WEB_WORKER_KILL
from soak.ledger import Books, check, summary_line
from soak.load import CREATE, DELETE, Answer, OrmOp
from soak.proxy import Forwarded

USER = 7


def balanced() -> Books:
    """User 7 created defects 1 and 2 through the API, deleted 1; a bulk_create made 3."""
    events = [
        ("k1", {"user": USER, "action": CREATE}, "delivered"),
        ("k2", {"user": USER, "action": CREATE}, "delivered"),
        ("k3", {"user": USER, "action": DELETE}, "delivered"),
        ("k4", {"user": USER, "action": CREATE}, "delivered"),
    ]
    return Books(
        events=events,
        forwarded=[
            Forwarded(1.0, key, json.dumps(payload).encode(), 200) for key, payload, _ in events
        ],
        counts={str(USER): {CREATE: 3, DELETE: 1}},
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


def test_balanced_books_pass():
    figures = check(balanced())
    assert figures.ok, figures.problems
    assert (figures.ops, figures.events, figures.duplicates) == (4, 4, 0)
    assert summary_line("sqlite", figures, 5) == (
        "soak: db=sqlite ops=4 events=4 faults=5 lost=0 phantom=0 wrong=0 left=0 "
        "duplicates=0 ledger_mismatches=0"
    )


def test_an_event_never_answered_2xx_is_lost():
    books = balanced()
    books.forwarded[0] = Forwarded(1.0, "k1", books.forwarded[0].body, 503)
    figures = check(books)
    assert figures.lost == 1 and not figures.ok


def test_a_key_not_in_the_outbox_is_a_phantom():
    books = balanced()
    books.forwarded.append(Forwarded(2.0, "k9", b'{"user": 7, "action": "create"}', 200))
    assert check(books).phantom == 1


def test_a_payload_other_than_the_event_is_wrong():
    books = balanced()
    books.forwarded.append(Forwarded(2.0, "k1", b'{"user": 8, "action": "create"}', 200))
    figures = check(books)
    assert figures.wrong == 1 and not figures.ok


def test_repeats_that_reached_the_counter_server_are_duplicates():
    books = balanced()
    books.forwarded += [books.forwarded[0], books.forwarded[0]]
    books.forwarded.append(Forwarded(3.0, "k2", books.forwarded[1].body, 0))  # never arrived
    figures = check(books)
    assert figures.duplicates == 2 and figures.ok


def test_a_pending_event_is_left():
    books = balanced()
    books.events[3] = ("k4", books.events[3][1], "pending")
    assert check(books).left == 1


def test_counter_counts_other_than_the_outbox_mismatch():
    books = balanced()
    books.counts = {str(USER): {CREATE: 4, DELETE: 1}}
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
    events = [*books.events, ("k5", {"user": USER, "action": CREATE}, "delivered")]
    books.events = events
    books.forwarded.append(Forwarded(101.0, "k5", json.dumps(events[-1][1]).encode(), 200))
    books.counts = {str(USER): {CREATE: 4, DELETE: 1}}
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
    books.events.append(("k5", {"user": USER, "action": CREATE}, "delivered"))
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


def counter_keys(books: Books) -> dict:
    return {key: (payload["user"], payload["action"]) for key, payload, _ in books.events}


def test_the_counter_servers_own_record_balances_too():
    books = balanced()
    books.counter_keys = counter_keys(books)
    assert check(books).ok


def test_a_key_the_counter_server_forgot_is_lost_one_it_invented_a_phantom():
    books = balanced()
    books.counter_keys = counter_keys(books)
    del books.counter_keys["k2"]
    books.counter_keys["k9"] = (USER, CREATE)
    figures = check(books)
    assert (figures.lost, figures.phantom) == (1, 1)


def test_a_key_the_counter_server_recorded_for_another_user_is_wrong():
    books = balanced()
    books.counter_keys = counter_keys(books) | {"k1": (USER + 1, CREATE)}
    assert check(books).wrong == 1
