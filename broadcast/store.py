"""The dispatcher's database side: claim due deliveries, record outcomes, release claims.

Synchronous Django database code, run by the dispatcher's rounds: on its database
thread, or on the loop's own when it has nothing to send meanwhile (broadcast/dbcalls.py).
Transactions are short and never wait on the network: claim, then send outside
any transaction, then record. A dispatcher's round records the last outcomes
and claims the next events (`exchange`) in one transaction on SQLite, so that
it queues for the write lock once per round; on PostgreSQL the deliveries and
the claim are one statement in autocommit (retries and failures are recorded
in a transaction of their own first).

Every timestamp is the caller's `now` (the dispatcher's injected clock), so a
schedule can be asserted exactly.

The SQL written by hand (the claim, the record of deliveries) is literal SQL in
broadcast/queries.py, which says why; everything else is the ORM.
"""

import contextlib
import datetime
import itertools
import json
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import NamedTuple

from django.db import connection, transaction
from django.db.backends.utils import CursorWrapper
from django.utils import timezone

from broadcast import queries
from broadcast.dispatch.policy import Decision, Verdict
from broadcast.models import Delivery, Status
from broadcast.services import wake_dispatchers


class Claimed(NamedTuple):
    """A claimed delivery, as the claim returns it: its event's key and bodies are ready
    to send."""

    id: int  # the delivery's
    destination: int  # the destination's id
    key: str  # the Idempotency-Key, the event's UUID in its hyphenated text form
    body: str  # the `counter` format's body (the event's payload), its JSON text as stored
    envelope: str | None  # the `event` format's body, its JSON text (None: not written)
    attempts: int
    # When the event was created (Unix seconds), in the transaction of the change it
    # announces: the nearest the database has to its commit time, for the delivery latency.
    created: float

    @property
    def payload(self) -> dict:
        return json.loads(self.body)


class Attempted(NamedTuple):
    """One attempt, as the attempt log keeps it (broadcast/models.py `Attempt`)."""

    delivery: int  # its destination is read from the delivery's row (queries.py)
    number: int  # 1 for the delivery's first
    started_at: datetime.datetime
    duration_ms: int
    status_code: int | None  # None: no answer
    succeeded: bool
    error: str
    response: str  # the start of the body


# A sent delivery, and the delivery policy's decision about it (broadcast/dispatch/policy.py).
Answered = tuple[Claimed, Decision]
Outcomes = Iterable[Answered]
# How many due deliveries to claim at most, per destination id.
Limits = Mapping[int, int]


def claim(
    *, owner: str, limits: Limits, lease: float, now: datetime.datetime | None = None
) -> list[Claimed]:
    """Claim, for `owner` until the lease runs out, up to `limits[d]` due deliveries to each
    destination `d`.

    A claim pushes `available_at` forward by the lease: if the owner dies, the
    delivery becomes due again when the lease expires. On PostgreSQL concurrent
    dispatchers skip each other's locked rows (FOR UPDATE SKIP LOCKED); on
    SQLite the IMMEDIATE transaction serialises claimers.
    """
    limits = _wanted(limits)
    if not limits:
        return []
    now = now or timezone.now()
    # A cheap read first: idle polling must not take SQLite's write lock (a
    # transaction already holds it: an exchange's, which has just recorded).
    idle_check = connection.vendor == "sqlite" and not connection.in_atomic_block
    if idle_check and not _due_exists(limits, now):
        return []
    with _writing(), connection.cursor() as cursor:
        return _claim_with(cursor, owner=owner, limits=limits, lease=lease, now=now)


def _wanted(limits: Limits) -> dict[int, int]:
    """The destinations to claim for: those with a limit above 0."""
    return {destination: limit for destination, limit in limits.items() if limit > 0}


def _claim_with(
    cursor: CursorWrapper, *, owner: str, limits: dict[int, int], lease: float,
    now: datetime.datetime,
) -> list[Claimed]:  # fmt: skip
    """The claim's statement, run on `cursor`."""
    leased_until, at = _lease_end(now, lease), _db_time(now)
    if connection.vendor == "sqlite":
        due = [(dest, Status.PENDING, at, limit) for dest, limit in limits.items()]
        cursor.execute(
            queries.sqlite_claim(len(limits)),
            [leased_until, owner, *itertools.chain.from_iterable(due)],
        )
        return _claimed([(id_, dest, str(uuid.UUID(key)), *rest) for id_, dest, key, *rest
                         in cursor.fetchall()])  # fmt: skip
    cursor.execute(
        queries.POSTGRESQL_CLAIM,
        [list(limits), list(limits.values()), Status.PENDING, at, leased_until, owner],
    )
    return _claimed(cursor.fetchall())


def _claimed(rows: list) -> list[Claimed]:
    """The rows an UPDATE ... RETURNING gave, oldest delivery first (RETURNING has no order)."""
    rows.sort()
    return list(map(Claimed._make, rows))


def _due_exists(limits: dict[int, int], now: datetime.datetime) -> bool:
    """Whether a delivery is due to one of the destinations (the probe's question, here on
    Django's connection): it runs at every idle claim."""
    with connection.cursor() as cursor:
        cursor.execute(queries.SQLITE_DUE_TO_ANY,
                       [json.dumps(list(limits)), Status.PENDING, _db_time(now)])  # fmt: skip
        return cursor.fetchone() is not None


def _db_time(value: datetime.datetime):
    """A datetime as this database stores it (SQLite: text in UTC)."""
    return connection.ops.adapt_datetimefield_value(value)


def _lease_end(now: datetime.datetime, lease: float):
    """When a claim made at `now` runs out, as this database stores it."""
    return _db_time(now + datetime.timedelta(seconds=lease))


def record(
    *, owner: str, outcomes: Outcomes, attempts: Sequence[Attempted] = (),
    now: datetime.datetime | None = None,
) -> None:  # fmt: skip
    """Store the decisions about sent deliveries: delivered, to retry (after a delay), or
    failed; and the attempts in the attempt log.

    Retries and failures only touch rows still claimed by `owner`, so a
    dispatcher whose lease ran out cannot undo another's delivery. Every attempt
    is logged (one made after its lease ran out was made all the same) but those of
    deliveries deleted meanwhile, which have no log left to add to.
    """
    with _recording(owner, *_split(outcomes), attempts, now or timezone.now()):
        pass


@contextlib.contextmanager
def _recording(
    owner: str, delivered: list[int], unfinished: list[Answered], attempts: Sequence[Attempted],
    now: datetime.datetime,
) -> Iterator[CursorWrapper]:  # fmt: skip
    """A write transaction that records the outcomes and the attempts, and yields its
    cursor for what the round runs next (its claim). Retries and failures lock their
    rows, and the log is written with the outcomes or not at all: in a transaction."""
    with transaction.atomic(savepoint=False) if unfinished or attempts else _writing():
        if unfinished:
            _record_unfinished(owner, unfinished, now)
        with connection.cursor() as cursor:
            if delivered:
                _record_delivered(cursor, delivered, now)
            if attempts:
                _log_attempts(cursor, attempts)
            yield cursor


def _log_attempts(cursor: CursorWrapper, attempts: Sequence[Attempted]) -> None:
    """Add `attempts` to the log, in one statement from one JSON text on both databases
    (each with its own text for the start times)."""
    if connection.vendor == "sqlite":
        cursor.execute(queries.SQLITE_LOG_ATTEMPTS, [_attempts_json(attempts, _db_time)])
    else:
        cursor.execute(queries.POSTGRESQL_LOG_ATTEMPTS, [_attempts_json(attempts)])


def _rows(attempts: Sequence[Attempted], as_text) -> list[tuple]:
    """The attempts as rows, each start time turned into text by `as_text` once: a
    round's attempts share a few (one per batch of sends)."""
    started = {at: as_text(at) for at in {row.started_at for row in attempts}}
    return [(*row[:2], started[row.started_at], *row[3:]) for row in attempts]


# The attempts' JSON keys, which queries.POSTGRESQL_LOG_ATTEMPTS and SQLITE_LOG_ATTEMPTS read.
_JSON_KEYS = ("d", "n", "s", "ms", "c", "ok", "e", "r")


def _attempts_json(attempts: Sequence[Attempted], as_text=datetime.datetime.isoformat) -> str:
    """The attempts as one JSON text (`[]` for none), each start time turned into text by
    `as_text` (the database's own spelling on SQLite).

    One text parameter rather than an array per column: psycopg escapes every
    element of a text array in Python, which was most of the log's cost to a
    drain's database thread (BENCHMARKS.md, target 14).
    """
    rows = _rows(attempts, as_text)
    return json.dumps([dict(zip(_JSON_KEYS, row, strict=True)) for row in rows])


def _split(outcomes: Outcomes) -> tuple[list[int], list[Answered]]:
    """The ids of the delivered deliveries, and the other outcomes (retries, failures)."""
    delivered, unfinished = [], []
    for item in outcomes:
        if item[1].verdict == Verdict.DELIVERED:
            delivered.append(item[0].id)
        else:
            unfinished.append(item)
    return delivered, unfinished


def _record_delivered(cursor: CursorWrapper, ids: list[int], now: datetime.datetime) -> None:
    """Mark deliveries delivered, on `cursor` (one statement: it runs at every round)."""
    if connection.vendor == "sqlite":  # the ids as one JSON array: one literal statement
        sql, batch = queries.SQLITE_DELIVERED, json.dumps(ids)
        cursor.execute(sql, [Status.DELIVERED, _db_time(now), batch, Status.DELIVERED])
    else:
        sql = queries.POSTGRESQL_DELIVERED
        cursor.execute(sql, [Status.DELIVERED, _db_time(now), ids, Status.DELIVERED])


def _record_unfinished(owner: str, unfinished: list, now: datetime.datetime) -> None:
    """Retries (due again after their delay) and permanent failures: each row gets the
    status and the delay its decision says, if it is still ours (pending and claimed by
    `owner`), in one statement run for each (the database driver's loop)."""
    rows = [
        (decision.status, _db_time(now + datetime.timedelta(seconds=decision.delay)),
         decision.error, claimed.id, owner, Status.PENDING)
        for claimed, decision in unfinished
    ]  # fmt: skip
    with connection.cursor() as cursor:
        cursor.executemany(queries.RECORD_UNFINISHED, rows)


def exchange(
    *,
    owner: str,
    outcomes: list[Answered],
    limits: Limits,
    lease: float,
    attempts: Sequence[Attempted] = (),
    now: datetime.datetime | None = None,
) -> list[Claimed]:
    """Record `outcomes` and log `attempts` (as `record`), then claim due deliveries as
    `claim` does.

    On SQLite in one transaction; on PostgreSQL the attempts, the deliveries and
    the claim in one statement (`_deliver_and_claim`), after any retries and
    failures, and with no claim (no limit above 0) as on SQLite.
    """
    now = now or timezone.now()
    if not outcomes and not attempts:
        return claim(owner=owner, limits=limits, lease=lease, now=now)
    delivered, unfinished = _split(outcomes)
    limits = _wanted(limits)
    if connection.vendor == "postgresql" and limits:
        if unfinished:  # again, harmlessly, if the statement below fails: no longer ours then
            with transaction.atomic(savepoint=False):
                _record_unfinished(owner, unfinished, now)
        return _deliver_and_claim(owner=owner, delivered=delivered, attempts=attempts,
                                  limits=limits, lease=lease, now=now)  # fmt: skip
    # One transaction and one cursor for the round: Django's nested atomic blocks
    # and cursors were a fifth of a warm round's CPU (bench/ANALYSIS.md).
    with _recording(owner, delivered, unfinished, attempts, now) as cursor:
        if not limits:
            return []
        return _claim_with(cursor, owner=owner, limits=limits, lease=lease, now=now)


def _deliver_and_claim(
    *, owner: str, delivered: list[int], attempts: Sequence[Attempted], limits: dict[int, int],
    lease: float, now: datetime.datetime,
) -> list[Claimed]:  # fmt: skip
    """PostgreSQL: log `attempts`, mark `delivered` and claim the next deliveries in one
    statement.

    Under a steady load a round carries a few, so its cost is its statements'
    (round trip, parse, plan, commit): one instead of three.
    """
    at = _db_time(now)
    with connection.cursor() as cursor:
        cursor.execute(
            queries.POSTGRESQL_DELIVER_AND_CLAIM,
            [_attempts_json(attempts), Status.DELIVERED, at, delivered, Status.DELIVERED,
             list(limits), list(limits.values()), Status.PENDING, at,
             _lease_end(now, lease), owner],
        )  # fmt: skip
        return _claimed(cursor.fetchall())


def _writing():
    """What one of the dispatcher's writes runs in.

    On SQLite, a transaction: it then queues on the write lock of the
    railfleet.sqlite backend rather than on SQLite's busy wait, and a round's
    record and claim share one turn. On PostgreSQL, nothing: each is a single
    statement, atomic by itself, and autocommit saves the round trips of BEGIN
    and COMMIT (a round every 20 ms under a steady load).
    """
    if connection.vendor == "sqlite":
        return transaction.atomic(savepoint=False)
    return contextlib.nullcontext()


def release(
    *, owner: str, now: datetime.datetime | None = None, ids: list[int] | None = None
) -> int:
    """Make `owner`'s unfinished claims (or those of them in `ids`) due again at once."""
    claims = Delivery.objects.pending().filter(claimed_by=owner)
    if ids is not None:
        claims = claims.filter(id__in=ids)
    with transaction.atomic():  # on SQLite: queued on the write lock, not on SQLite's busy wait
        released = claims.update(available_at=now or timezone.now(), claimed_by="")
        if released:  # due again now: the other dispatchers hear of it at commit
            wake_dispatchers()
    return released
