"""The soak's books: what the outbox holds against what reached each destination,
what the database holds, what each counter server counts, and what the clients were told.

Each destination is balanced on its own (`DestinationBooks`): it must have received,
after deduplication by key, every event of an action it subscribes to exactly once
and nothing else, and each of its deliveries in the database must be delivered.
The outbox as a whole is balanced against the database and the clients' answers.

`check` is a pure function of those records (tests/soak/test_ledger.py feeds it
made-up books); `summary_line` is the last line a soak prints per database.
"""

import json
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from soak.faults import DB_RESTART
from soak.load import CREATE, DELETE

SHOWN = 5  # problems described per kind and destination


@dataclass
class DestinationBooks:
    """One destination's records: what it should get, what was sent to it, what it kept."""

    name: str
    actions: tuple[str, ...]  # the actions it subscribes to (what the soak made it with)
    deliveries: list[tuple[str, str]]  # (event key, status) of its deliveries in the database
    forwarded: list  # soak.proxy.Forwarded by its proxy, in order
    counts: dict  # its counter server's GET /: {"<user>": {"create": n, "delete": m}}
    # Its counter server's own record (its --data file's seen_keys): key -> (user, action).
    counter_keys: dict[str, tuple[int, str]] | None = None
    # The attempt log of its deliveries: event key -> (attempts recorded, whether the last
    # one succeeded). None: not checked.
    attempts: dict[str, tuple[int, bool]] | None = None


@dataclass
class Books:
    events: list[tuple[str, dict]]  # (key, payload) of every outbox event
    destinations: list[DestinationBooks]
    defects: dict[int, int]  # defects in the database per user id
    defect_ids: set[int]  # ids of the defects in the database
    answers: list  # soak.load.Answer
    orm_ops: list  # soak.load.OrmOp
    users: list[int]  # every user of the run, the deleted one included
    web_windows: list[tuple[str, float, float]]  # (fault kind, start, end) of web-path faults


@dataclass
class DestinationFigures:
    """One destination's share of the figures."""

    name: str
    actions: tuple[str, ...]
    events: int = 0  # the outbox events it subscribes to
    lost: int = 0  # one of those it did not get (no 2xx, not in its record, no delivery)
    phantom: int = 0  # it got (or has a delivery for) one it does not subscribe to, or none
    wrong: int = 0
    left: int = 0  # its deliveries still pending or failed
    duplicates: int = 0  # requests it received again for a key (deduplicated by it)
    mismatches: int = 0  # its counts (GET /) against the outbox's, per user and action
    unlogged: int = 0  # deliveries with no attempt recorded, or delivered by no recorded success


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
    unlogged: int = 0
    client_failures: int = 0  # 5xx or no answer where no web fault excuses it
    errors_inside: Counter = field(default_factory=Counter)  # status -> answers
    errors_outside: Counter = field(default_factory=Counter)
    destinations: list[DestinationFigures] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # the first few, for the report

    def problem(self, text: str) -> None:
        if len(self.problems) < 40:
            self.problems.append(text)

    @property
    def ok(self) -> bool:
        failures = (self.lost, self.phantom, self.wrong, self.left, self.ledger_mismatches,
                    self.unlogged)  # fmt: skip
        return not any(failures) and not self.client_failures


def check(books: Books) -> Figures:
    """Balance the books; every discrepancy is counted and the first ones described."""
    figures = Figures(ops=len(books.answers) + len(books.orm_ops), events=len(books.events))
    for destination in books.destinations:
        mine = _destination(books, destination, figures)
        figures.destinations.append(mine)
        figures.lost += mine.lost
        figures.phantom += mine.phantom
        figures.wrong += mine.wrong
        figures.left += mine.left
        figures.duplicates += mine.duplicates
        figures.ledger_mismatches += mine.mismatches
        figures.unlogged += mine.unlogged
    _per_user(books, figures)
    _client_answers(books, figures)
    _client_errors(books, figures)
    return figures


def _destination(books: Books, dest: DestinationBooks, figures: Figures) -> DestinationFigures:
    """What `dest` got against what it subscribes to: every such event once, nothing else."""
    mine = DestinationFigures(dest.name, tuple(dest.actions))
    payloads = dict(books.events)  # every event's, to tell a wrong payload from a phantom
    expected = {key for key, payload in books.events if payload["action"] in dest.actions}
    mine.events = len(expected)
    where = f"at {dest.name}"
    delivered = set()
    reached: Counter[str] = Counter()
    for sent in dest.forwarded:
        if sent.key not in payloads:
            continue  # a phantom, below
        if _parsed(sent.body) != payloads[sent.key]:
            mine.wrong += 1
            figures.problem(f"wrong payload {where} for {sent.key}: {sent.body!r}")
        elif 200 <= sent.status < 300:
            delivered.add(sent.key)
        if sent.status:
            reached[sent.key] += 1
    rows = {key for key, _ in dest.deliveries}  # one per event at most (a unique constraint)
    got = {sent.key for sent in dest.forwarded} | rows
    lost = (expected - delivered) | (expected - rows)
    if dest.counter_keys is not None:  # and what the counter server itself recorded
        got |= dest.counter_keys.keys()
        lost |= expected - dest.counter_keys.keys()
        for key, (user, action) in dest.counter_keys.items():
            if key in payloads and {"user": user, "action": action} != payloads[key]:
                mine.wrong += 1
                figures.problem(f"wrong {where}: it recorded {key} as {user} {action}")
    phantoms = got - expected
    mine.phantom = len(phantoms)
    for key in sorted(phantoms, key=str)[:SHOWN]:
        if key in payloads:
            figures.problem(
                f"phantom {where}: event {key} {payloads[key]} reached it or has a delivery "
                f"to it, which subscribes to {', '.join(dest.actions)} only"
            )
        else:
            figures.problem(f"phantom {where}: {key} reached it, not in the outbox")
    mine.lost = len(lost)
    for key in sorted(lost)[:SHOWN]:
        how = "has no delivery to it" if key not in rows else "never got a 2xx or was not recorded"
        figures.problem(f"lost {where}: event {key} {payloads[key]} {how}")
    mine.duplicates = sum(n - 1 for n in reached.values())
    left = [(key, status) for key, status in dest.deliveries if status != "delivered"]
    mine.left = len(left)
    for key, status in left[:SHOWN]:
        figures.problem(f"left {where}: its delivery of event {key} is {status}")
    _counts(books, dest, mine, figures)
    _attempt_log(dest, mine, figures)
    return mine


def _attempt_log(dest: DestinationBooks, mine: DestinationFigures, figures: Figures) -> None:
    """Every delivery has an attempt on the record, and a delivered one's last succeeded."""
    if dest.attempts is None:
        return
    for key, status in dest.deliveries:
        made, last_succeeded = dest.attempts.get(key, (0, False))
        if made and (last_succeeded or status != "delivered"):
            continue
        mine.unlogged += 1
        if mine.unlogged <= SHOWN:
            why = "no attempt recorded" if not made else "its last attempt recorded failed"
            figures.problem(f"unlogged at {dest.name}: event {key} is {status}, {why}")


def _counts(
    books: Books, dest: DestinationBooks, mine: DestinationFigures, figures: Figures
) -> None:
    """Its counter server's counts (GET /) equal the outbox's, per user and subscribed action
    (and none for an action it does not subscribe to)."""
    outbox = _outbox_counts(books)
    users = set(books.users) | outbox.keys() | {int(user) for user in dest.counts}
    for user in sorted(users):
        counted = dest.counts.get(str(user), {})
        for action in (CREATE, DELETE):
            want = outbox[user][action] if action in dest.actions else 0
            if counted.get(action, 0) != want:
                mine.mismatches += 1
                figures.problem(
                    f"ledger: {dest.name} counts user {user} {action} "
                    f"{counted.get(action, 0)}, the outbox {want}"
                )


def _parsed(body: bytes):
    try:
        return json.loads(body)
    except ValueError:
        return None


def _outbox_counts(books: Books) -> dict[int, Counter]:
    counts: dict[int, Counter] = defaultdict(Counter)
    for _, payload in books.events:
        counts[payload["user"]][payload["action"]] += 1
    return counts


def _mismatch(figures: Figures, text: str) -> None:
    figures.ledger_mismatches += 1
    figures.problem(f"ledger: {text}")


def _per_user(books: Books, figures: Figures) -> None:
    """Per user: outbox creates - deletes = defects in the database."""
    outbox = _outbox_counts(books)
    for user in sorted(set(books.users) | outbox.keys()):
        derived = outbox[user][CREATE] - outbox[user][DELETE]
        if derived != books.defects.get(user, 0):
            _mismatch(
                figures,
                f"user {user}: {derived} defects by the outbox, "
                f"{books.defects.get(user, 0)} in the database",
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


# --- Isolation: how long each destination waited while only another one was faulted -------

# Seconds after a fault's end during which it may still delay deliveries: a killed
# dispatcher's leases (5 s in the soak), retries (up to 2 s), a request's timeout (2 s).
AFTERMATH = 10.0
BEFORE = 2.0  # seconds before a fault during which a request then in flight may meet it


@dataclass
class Delays:
    """One destination's delays (its event's creation to its first 2xx there, seconds): of
    the events created while no fault could touch the deliveries (`quiet`), and of those
    created while another destination was faulted and nothing touched this one (`others`).
    A destination's fault must not delay the others: both should look alike."""

    name: str
    quiet: list[float] = field(default_factory=list)
    others: list[float] = field(default_factory=list)


def delays(
    books: Books,
    created: dict[str, float],
    counter_windows: list[tuple[int, float, float]],
    shared_windows: list[tuple[float, float]],
) -> list[Delays]:
    """Each destination's `Delays`. `created`: each event's creation (time.time());
    `counter_windows`: (the destination's index in books.destinations, start, end) of the
    faults of one destination; `shared_windows`: (start, end) of the faults that touch
    every destination (a dispatcher killed, the database restarted)."""

    def near(at: float, start: float, end: float) -> bool:
        return start - BEFORE <= at <= end + AFTERMATH

    result = []
    for index, dest in enumerate(books.destinations):
        mine = Delays(dest.name)
        first: dict[str, float] = {}
        for sent in dest.forwarded:
            if 200 <= sent.status < 300 and sent.key not in first:
                first[sent.key] = sent.at
        for key, at in first.items():
            if key not in created:
                continue
            born = created[key]
            own = [(s, e) for i, s, e in counter_windows if i == index]
            if any(near(born, s, e) for s, e in [*own, *shared_windows]):
                continue
            others = [(s, e) for i, s, e in counter_windows if i != index]
            if any(near(born, s, e) for s, e in others):
                mine.others.append(at - born)
            else:
                mine.quiet.append(at - born)
        result.append(mine)
    return result


def describe_delays(mine: Delays) -> str:
    """`mine` as the report shows it: count, median, 99th percentile and maximum of each."""

    def stats(values: list[float]) -> str:
        if not values:
            return "none"
        ordered = sorted(values)
        p50 = ordered[len(ordered) // 2]
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
        return f"{len(ordered)} events, p50 {p50:.2f} s, p99 {p99:.2f} s, max {ordered[-1]:.2f} s"

    return (
        f"{mine.name}: creation to 2xx while no fault touched it: {stats(mine.quiet)}; "
        f"while only another destination was faulted: {stats(mine.others)}"
    )


def summary_line(database: str, figures: Figures, faults: int) -> str:
    """The last line of a soak, one per database: the totals, then each destination's."""
    line = (
        f"soak: db={database} ops={figures.ops} events={figures.events} faults={faults} "
        f"lost={figures.lost} phantom={figures.phantom} wrong={figures.wrong} "
        f"left={figures.left} duplicates={figures.duplicates} "
        f"ledger_mismatches={figures.ledger_mismatches} unlogged={figures.unlogged}"
    )
    return "; ".join([line, *map(destination_figures, figures.destinations)])


def destination_figures(mine: DestinationFigures) -> str:
    """One destination's figures, as the summary line and the report show them."""
    return (
        f"{mine.name} [{'+'.join(mine.actions)}]: events={mine.events} lost={mine.lost} "
        f"phantom={mine.phantom} wrong={mine.wrong} left={mine.left} "
        f"duplicates={mine.duplicates} mismatches={mine.mismatches} unlogged={mine.unlogged}"
    )
