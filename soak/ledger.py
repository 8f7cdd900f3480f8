"""The soak's books: what the outbox holds against what reached the counter server,
what the database holds, what the counter server counts, and what the clients were told.

`check` is a pure function of those records (tests/soak/test_ledger.py feeds it
made-up books); `summary_line` is the last line a soak prints per database.
"""

import json
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from soak.faults import DB_RESTART
from soak.load import CREATE, DELETE


@dataclass
class Books:
    events: list[tuple[str, dict, str]]  # (key, payload, status) of every outbox event
    forwarded: list  # soak.proxy.Forwarded, in order
    counts: dict  # the counter server's GET /: {"<user>": {"create": n, "delete": m}}
    defects: dict[int, int]  # defects in the database per user id
    defect_ids: set[int]  # ids of the defects in the database
    answers: list  # soak.load.Answer
    orm_ops: list  # soak.load.OrmOp
    users: list[int]  # every user of the run, the deleted one included
    web_windows: list[tuple[str, float, float]]  # (fault kind, start, end) of web-path faults
    # The counter server's own record (its --data file's seen_keys): key -> (user, action).
    counter_keys: dict[str, tuple[int, str]] | None = None


@dataclass
class Figures:
    ops: int = 0
    events: int = 0
    lost: int = 0
    phantom: int = 0
    wrong: int = 0
    left: int = 0
    duplicates: int = 0
    ledger_mismatches: int = 0
    client_failures: int = 0  # 5xx or no answer where no web fault excuses it
    errors_inside: Counter = field(default_factory=Counter)  # status -> answers
    errors_outside: Counter = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)  # the first few, for the report

    def problem(self, text: str) -> None:
        if len(self.problems) < 20:
            self.problems.append(text)

    @property
    def ok(self) -> bool:
        failures = (self.lost, self.phantom, self.wrong, self.left, self.ledger_mismatches)
        return not any(failures) and not self.client_failures


def check(books: Books) -> Figures:
    """Balance the books; every discrepancy is counted and the first ones described."""
    figures = Figures(ops=len(books.answers) + len(books.orm_ops), events=len(books.events))
    _deliveries(books, figures)
    _per_user(books, figures)
    _client_answers(books, figures)
    _client_errors(books, figures)
    return figures


def _deliveries(books: Books, figures: Figures) -> None:
    """Every event 2xx with its exact payload, nothing else sent, how often each was sent."""
    payloads = {key: payload for key, payload, _ in books.events}
    delivered = set()
    reached = Counter()
    for sent in books.forwarded:
        if sent.key not in payloads:
            continue
        if _parsed(sent.body) != payloads[sent.key]:
            figures.wrong += 1
            figures.problem(f"wrong payload for {sent.key}: {sent.body!r}")
        elif 200 <= sent.status < 300:
            delivered.add(sent.key)
        if sent.status:
            reached[sent.key] += 1
    phantoms = {sent.key for sent in books.forwarded} - payloads.keys()
    lost = payloads.keys() - delivered
    if books.counter_keys is not None:  # and what the counter server itself recorded
        phantoms |= books.counter_keys.keys() - payloads.keys()
        lost |= payloads.keys() - books.counter_keys.keys()
        for key, (user, action) in books.counter_keys.items():
            if key in payloads and {"user": user, "action": action} != payloads[key]:
                figures.wrong += 1
                figures.problem(f"wrong: the counter server recorded {key} as {user} {action}")
    figures.phantom = len(phantoms)
    for key in sorted(phantoms, key=str)[:5]:
        figures.problem(f"phantom: {key} reached the counter server, not in the outbox")
    figures.lost = len(lost)
    for key in sorted(lost)[:5]:
        figures.problem(f"lost: event {key} {payloads[key]} never got a 2xx or was not recorded")
    figures.duplicates = sum(n - 1 for n in reached.values())
    left = [(key, status) for key, _, status in books.events if status != "delivered"]
    figures.left = len(left)
    for key, status in left[:5]:
        figures.problem(f"left: event {key} is {status}")


def _parsed(body: bytes):
    try:
        return json.loads(body)
    except ValueError:
        return None


def _outbox_counts(books: Books) -> dict[int, Counter]:
    counts: dict[int, Counter] = defaultdict(Counter)
    for _, payload, _ in books.events:
        counts[payload["user"]][payload["action"]] += 1
    return counts


def _mismatch(figures: Figures, text: str) -> None:
    figures.ledger_mismatches += 1
    figures.problem(f"ledger: {text}")


def _per_user(books: Books, figures: Figures) -> None:
    """Per user: outbox creates - deletes = defects; counter server counts = outbox counts."""
    outbox = _outbox_counts(books)
    users = set(books.users) | outbox.keys() | {int(user) for user in books.counts}
    for user in sorted(users):
        derived = outbox[user][CREATE] - outbox[user][DELETE]
        if derived != books.defects.get(user, 0):
            _mismatch(
                figures,
                f"user {user}: {derived} defects by the outbox, "
                f"{books.defects.get(user, 0)} in the database",
            )
        counted = books.counts.get(str(user), {})
        for action in (CREATE, DELETE):
            if counted.get(action, 0) != outbox[user][action]:
                _mismatch(
                    figures,
                    f"user {user} {action}: counter server {counted.get(action, 0)}, "
                    f"outbox {outbox[user][action]}",
                )


def _client_answers(books: Books, figures: Figures) -> None:
    """Every 201 and 204 (and every committed ORM change) has its event, and no more events
    exist than changes the clients may have made without hearing so."""
    outbox = _outbox_counts(books)
    sure: dict[int, Counter] = defaultdict(Counter)  # changes known to have committed
    maybe: dict[int, Counter] = defaultdict(Counter)  # changes that may have committed
    deleted_ids = set()
    for answer in books.answers:
        if answer.status in (201, 204):
            sure[answer.user][answer.op] += 1
        elif answer.status == 0 or answer.status >= 500:
            maybe[answer.user][answer.op] += 1
        if answer.op == DELETE and answer.status != 404:
            deleted_ids.add(answer.defect)
    for op in books.orm_ops:
        action = CREATE if op.kind == "bulk_create" else DELETE
        deleted_ids.update(op.ids if action == DELETE else ())
        if op.error:
            maybe[op.user][action] += len(op.ids)
        else:
            sure[op.user][action] += len(op.ids) if action == CREATE else op.deleted
    for user in sorted(set(books.users) | outbox.keys()):
        for action in (CREATE, DELETE):
            low, high = sure[user][action], sure[user][action] + maybe[user][action]
            if not low <= outbox[user][action] <= high:
                _mismatch(
                    figures,
                    f"user {user} {action}: {outbox[user][action]} events for {low} certain "
                    f"and {high - low} possible changes",
                )
    for answer in books.answers:
        if answer.status == 201 and answer.defect not in books.defect_ids | deleted_ids:
            _mismatch(figures, f"defect {answer.defect} (201) is gone, deleted by no one")
        if answer.status == 204 and answer.defect in books.defect_ids:
            _mismatch(figures, f"defect {answer.defect} (204) is still in the database")


def _in_window(books: Books, at: float, kinds: set[str] | None = None) -> bool:
    return any(
        start <= at <= end and (kinds is None or kind in kinds)
        for kind, start, end in books.web_windows
    )


def _client_errors(books: Books, figures: Figures) -> None:
    """Errors by status inside and outside the web faults' windows; which ones fail the run.

    Inside a worker kill a client may lose its connection (status 0); inside a
    database restart it may be answered 503 (never 500); anywhere else neither.
    """
    for answer in books.answers:
        if 0 < answer.status < 400:
            continue  # (a 404 is expected: an ORM path deleted the defect meanwhile)
        inside = _in_window(books, answer.at)
        (figures.errors_inside if inside else figures.errors_outside)[answer.status] += 1
        lost_connection = answer.status == 0 and inside
        outage = answer.status == 503 and _in_window(books, answer.at, {DB_RESTART})
        expected = lost_connection or outage
        if (answer.status == 0 or answer.status >= 500) and not expected:
            figures.client_failures += 1
            at = time.strftime("%H:%M:%S", time.localtime(answer.at))
            figures.problem(f"client: {answer.op} by user {answer.user} at {at}: {answer.status}")


def summary_line(database: str, figures: Figures, faults: int) -> str:
    """The last line of a soak, one per database."""
    return (
        f"soak: db={database} ops={figures.ops} events={figures.events} faults={faults} "
        f"lost={figures.lost} phantom={figures.phantom} wrong={figures.wrong} "
        f"left={figures.left} duplicates={figures.duplicates} "
        f"ledger_mismatches={figures.ledger_mismatches}"
    )
