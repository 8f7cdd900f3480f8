"""The dispatcher's database side: claim due events, record outcomes, release claims.

Synchronous Django database code, run by the dispatcher on one dedicated thread.
Transactions are short and never wait on the network: claim, then send outside
any transaction, then record. A dispatcher's round records the last outcomes
and claims the next events (`exchange`) in one transaction on SQLite, so that
it queues for the write lock once per round; on PostgreSQL the deliveries and
the claim are one statement in autocommit (retries and failures are recorded
in a transaction of their own first).

Every timestamp is the caller's `now` (the dispatcher's injected clock), so a
schedule can be asserted exactly.

SQL written by hand, and why (everything else is the ORM): the claim, which the
ORM cannot say (on PostgreSQL one UPDATE ... RETURNING over a MATERIALIZED CTE
with SKIP LOCKED; on SQLite the due rows as one row of JSON, then an UPDATE of
their ids), built around `EventQuerySet.due()` compiled once, so "due" has one
definition; and the record of delivered events, which the ORM can say but whose
compilation at every round dominated a trickle's py-spy profile (BENCHMARKS.md has
the dispatcher's profiles).
"""

import contextlib
import datetime
import functools
import json
from collections.abc import Iterable, Iterator
from typing import NamedTuple

from django.core.exceptions import ImproperlyConfigured
from django.db import connection, transaction
from django.db.backends.utils import CursorWrapper
from django.utils import timezone

from broadcast import sessions
from broadcast.dispatch.policy import Decision, Verdict
from broadcast.models import Event, Status
from broadcast.services import wake_dispatchers


class Claimed(NamedTuple):
    """A claimed event, as the claim returns it: its key and body are ready to send."""

    id: int
    key: str  # the Idempotency-Key, the UUID in its hyphenated text form
    body: str  # the payload's JSON text, as stored
    attempts: int
    # When the event was created (Unix seconds), in the transaction of the change it
    # announces: the nearest the database has to its commit time, for the delivery latency.
    created: float

    @property
    def payload(self) -> dict:
        return json.loads(self.body)


# A sent event, and the delivery policy's decision about it (broadcast/dispatch/policy.py).
Answered = tuple[Claimed, Decision]
Outcomes = Iterable[Answered]


def claim(
    *, owner: str, limit: int, lease: float, now: datetime.datetime | None = None
) -> list[Claimed]:
    """Claim up to `limit` due events for `owner` until the lease runs out.

    A claim pushes `available_at` forward by the lease: if the owner dies, the
    event becomes due again when the lease expires. On PostgreSQL concurrent
    dispatchers skip each other's locked rows (FOR UPDATE SKIP LOCKED); on
    SQLite the IMMEDIATE transaction serialises claimers.
    """
    if limit <= 0:
        return []
    now = now or timezone.now()
    # A cheap read first: idle polling must not take SQLite's write lock (a
    # transaction already holds it: an exchange's, which has just recorded).
    if connection.vendor == "sqlite" and not connection.in_atomic_block and not _due_exists(now):
        return []
    with _writing(), connection.cursor() as cursor:
        return _claim_with(cursor, owner=owner, limit=limit, lease=lease, now=now)


def _claim_with(
    cursor: CursorWrapper, *, owner: str, limit: int, lease: float, now: datetime.datetime
) -> list[Claimed]:
    """The claim's statement (two on SQLite), run on `cursor`."""
    leased_until = _lease_end(now, lease)
    if connection.vendor == "sqlite":
        return _claim_on_sqlite(cursor, owner, limit, leased_until, now)
    cursor.execute(
        _postgresql_claim_sql(), [Status.PENDING, _db_time(now), limit, leased_until, owner]
    )
    return _claimed(cursor.fetchall())


def _claim_on_sqlite(
    cursor: CursorWrapper, owner: str, limit: int, leased_until, now: datetime.datetime
) -> list[Claimed]:
    """SQLite: read the due events as one row of JSON, then lease them by id.

    The sqlite3 module lets go of the GIL for every row a statement returns;
    with the loop thread sending meanwhile, each is a hand-off between the two
    threads, a futex wait and a wake-up (bench/ANALYSIS.md). One row instead of
    one per event. Both statements run in the round's write transaction, so no
    other writer comes between them.
    """
    pick, lease = _sqlite_claim_sql()
    cursor.execute(pick, [Status.PENDING, _db_time(now), limit])
    ids, rows = cursor.fetchone()
    if ids == "[]":
        return []
    cursor.execute(lease, [leased_until, owner, ids])
    rows = json.loads(rows)
    rows.sort()  # json_group_array() keeps no order
    # The key's 32 hex digits hyphenated here: substr() and || in the SELECT
    # cost more per event (bench/ANALYSIS.md).
    return [
        Claimed(id_, f"{key[:8]}-{key[8:12]}-{key[12:16]}-{key[16:20]}-{key[20:]}", *rest)
        for id_, key, *rest in rows
    ]


def _claimed(rows: list) -> list[Claimed]:
    """The rows of PostgreSQL's RETURNING, oldest event first (RETURNING has no order)."""
    rows.sort()
    return list(map(Claimed._make, rows))


def _table() -> str:
    """The outbox table's quoted name, for the statements written by hand."""
    return connection.ops.quote_name(Event._meta.db_table)


def _due_exists(now: datetime.datetime) -> bool:
    """`Event.objects.due(now).exists()`, from due()'s SQL compiled once: it runs at every poll."""
    with connection.cursor() as cursor:
        cursor.execute(f"{due_sql(connection.vendor)} LIMIT 1", [Status.PENDING, _db_time(now)])
        return cursor.fetchone() is not None


@functools.cache
def due_sql(vendor: str) -> str:
    """`Event.objects.due(now)`'s SELECT of ids, compiled once; its parameters: status, now.

    Also the question of the dispatcher's SQLite probe (broadcast/probe.py).
    """
    sentinel = datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC)
    sql, params = Event.objects.due(sentinel).values("id").query.sql_with_params()
    if list(params) != [Status.PENDING, _db_time(sentinel)]:
        raise ImproperlyConfigured(f"EventQuerySet.due() changed its parameters: {params!r}")
    return sql


@functools.cache
def _postgresql_claim_sql() -> str:
    """PostgreSQL's claim: one statement that picks the due events in order and leases them.

    The events are picked in a MATERIALIZED common table expression, which
    runs once: PostgreSQL may run a subquery under `IN (...)` again for each
    row it updates, and each run would lock more rows than the LIMIT (a known
    trap of SKIP LOCKED queues). The UPDATE finds them by primary key (`= ANY` of
    their array): as a join, `IN (SELECT ...)` was planned as a scan of the whole
    table once the claim's LIMIT was a sizeable share of it (bench/ANALYSIS.md).
    It returns the key as text in the UUID's hyphenated form, the payload as
    its JSON text and the creation time as Unix seconds (a float), so that
    nothing is decoded per event to send it or to time its delivery. Only the
    model's own table and column names are interpolated; every value is a parameter.
    """
    # EXTRACT alone gives a numeric (a Decimal in Python): a float is cheaper.
    created = "CAST(EXTRACT(EPOCH FROM created_at) AS double precision)"
    return (
        f"WITH picked AS MATERIALIZED ({due_sql('postgresql')} LIMIT %s FOR UPDATE SKIP LOCKED) "  # noqa: S608
        f"UPDATE {_table()} SET available_at = %s, claimed_by = %s "
        "WHERE id = ANY(ARRAY(SELECT id FROM picked)) "
        f"RETURNING id, CAST(key AS text), CAST(payload AS text), attempts, {created}"
    )


@functools.cache
def _sqlite_claim_sql() -> tuple[str, str]:
    """SQLite's claim: a SELECT of the due events' ids and rows as two JSON arrays
    (parameters: status, now, limit), then the UPDATE that leases those ids
    (parameters: the lease's end, the owner, the ids' JSON).

    The rows are `_postgresql_claim_sql`'s RETURNING columns but for the key, which
    SQLite stores as its 32 hex digits (`_claim_on_sqlite` hyphenates it); JSON is
    stored as text (a JSON string here) and a datetime as UTC text.
    """
    table = _table()
    # julianday() rather than unixepoch(..., 'subsec'), which needs SQLite 3.42; it
    # keeps milliseconds, finer than the latency histogram's smallest bucket.
    created = "(julianday(created_at) - 2440587.5) * 86400.0"
    pick = (
        f"WITH picked AS MATERIALIZED ({due_sql('sqlite')} LIMIT %s) "  # noqa: S608
        "SELECT json_group_array(id), "
        f"json_group_array(json_array(id, key, payload, attempts, {created})) "
        f"FROM {table} WHERE id IN (SELECT id FROM picked)"
    )
    lease = (
        f"UPDATE {table} SET available_at = %s, claimed_by = %s "  # noqa: S608
        "WHERE id IN (SELECT value FROM json_each(%s))"
    )
    return pick, lease


def _db_time(value: datetime.datetime):
    """A datetime as this database stores it (SQLite: text in UTC)."""
    return connection.ops.adapt_datetimefield_value(value)


def _lease_end(now: datetime.datetime, lease: float):
    """When a claim made at `now` runs out, as this database stores it."""
    return _db_time(now + datetime.timedelta(seconds=lease))


def record(*, owner: str, outcomes: Outcomes, now: datetime.datetime | None = None) -> None:
    """Store the decisions about sent events: delivered, to retry (after a delay), or failed.

    Retries and failures only touch rows still claimed by `owner`, so a
    dispatcher whose lease ran out cannot undo another's delivery.
    """
    with _recording(owner, *_split(outcomes), now or timezone.now()):
        pass


@contextlib.contextmanager
def _recording(
    owner: str, delivered: list[int], unfinished: list[Answered], now: datetime.datetime
) -> Iterator[CursorWrapper]:
    """A write transaction that records the outcomes, and yields its cursor for what
    the round runs next (its claim). Retries and failures lock their rows: always in
    a transaction."""
    with transaction.atomic(savepoint=False) if unfinished else _writing():
        if unfinished:
            _record_unfinished(owner, unfinished, now)
        with connection.cursor() as cursor:
            if delivered:
                _record_delivered(cursor, delivered, now)
            yield cursor


def _split(outcomes: Outcomes) -> tuple[list[int], list[Answered]]:
    """The ids of the delivered events, and the other outcomes (retries, failures)."""
    delivered, unfinished = [], []
    for item in outcomes:
        if item[1].verdict == Verdict.DELIVERED:
            delivered.append(item[0].id)
        else:
            unfinished.append(item)
    return delivered, unfinished


def _record_delivered(cursor: CursorWrapper, ids: list[int], now: datetime.datetime) -> None:
    """Mark events delivered, on `cursor`: by hand, as the claim, since it also runs at
    every round."""
    table = _table()
    for start in range(0, len(ids), 500):  # within every database's parameter limit
        batch = ids[start : start + 500]
        cursor.execute(
            f"UPDATE {table} SET status = %s, delivered_at = %s, "  # noqa: S608
            "attempts = attempts + 1, claimed_by = '', last_error = '' "
            f"WHERE id IN ({', '.join(['%s'] * len(batch))}) AND status <> %s",
            [Status.DELIVERED, _db_time(now), *batch, Status.DELIVERED],
        )


def _record_unfinished(owner: str, unfinished: list, now: datetime.datetime) -> None:
    """Retries (due again after their delay) and permanent failures, in one UPDATE:
    each row gets the status and the delay its decision says."""
    still_mine = set(
        Event.objects.pending()
        .filter(claimed_by=owner, id__in=[claimed.id for claimed, _ in unfinished])
        .select_for_update()
        .values_list("id", flat=True)
    )
    rows = [
        Event(
            id=claimed.id,
            status=decision.status,
            available_at=now + datetime.timedelta(seconds=decision.delay),
            # Still ours, so nobody changed it since the claim read it.
            attempts=claimed.attempts + 1,
            claimed_by="",
            last_error=decision.error,
        )
        for claimed, decision in unfinished
        if claimed.id in still_mine
    ]
    Event.objects.bulk_update(
        rows, ["status", "available_at", "attempts", "claimed_by", "last_error"], batch_size=500
    )


def exchange(
    *,
    owner: str,
    outcomes: list[Answered],
    limit: int,
    lease: float,
    now: datetime.datetime | None = None,
) -> list[Claimed]:
    """Record `outcomes`, then claim up to `limit` due events.

    On SQLite in one transaction; on PostgreSQL the deliveries and the claim in
    one statement (`_deliver_and_claim`), after any retries and failures, and
    with no claim (`limit` 0) as on SQLite.
    """
    now = now or timezone.now()
    if not outcomes:
        return claim(owner=owner, limit=limit, lease=lease, now=now)
    delivered, unfinished = _split(outcomes)
    if connection.vendor == "postgresql" and limit > 0:
        if unfinished:
            with transaction.atomic(savepoint=False):
                _record_unfinished(owner, unfinished, now)
        return _deliver_and_claim(
            owner=owner, delivered=delivered, limit=limit, lease=lease, now=now
        )
    # One transaction and one cursor for the round: Django's nested atomic blocks
    # and cursors were a fifth of a warm round's CPU (bench/ANALYSIS.md).
    with _recording(owner, delivered, unfinished, now) as cursor:
        if limit <= 0:
            return []
        return _claim_with(cursor, owner=owner, limit=limit, lease=lease, now=now)


def _deliver_and_claim(
    *, owner: str, delivered: list[int], limit: int, lease: float, now: datetime.datetime
) -> list[Claimed]:
    """PostgreSQL: mark `delivered` and claim the next events in one statement.

    Under a steady load a round carries a few events, so its cost is its
    statements' (round trip, parse, plan, commit): one instead of two. The two
    parts never touch the same row (a statement must not update a row twice):
    the claim leaves out the delivered ids, which are still leased to us anyway.
    """
    cursor = sessions.kept_cursor()  # it runs at every round
    at = _db_time(now)
    cursor.execute(
        _deliver_and_claim_sql(),
        [Status.DELIVERED, at, delivered, Status.DELIVERED,
         Status.PENDING, at, limit, _lease_end(now, lease), owner],
    )  # fmt: skip
    return _claimed(cursor.fetchall())


@functools.cache
def _deliver_and_claim_sql() -> str:
    """_postgresql_claim_sql() with the record of deliveries as a data-modifying CTE.

    The claim leaves out the ids that CTE returns, through a subquery that
    PostgreSQL hashes once (a round's few hundred ids fit in `work_mem`);
    `id <> ALL(<the ids>)` compared each row claimed with every id in turn
    (bench/ANALYSIS.md). A data-modifying CTE runs to completion whether or
    not the query reads it, so the deliveries are recorded even when nothing
    is due.
    """
    table = _table()
    claim = _postgresql_claim_sql().removeprefix("WITH ")
    returning = claim.index(" RETURNING ")
    return (
        f"WITH delivered AS (UPDATE {table} SET status = %s, delivered_at = %s, "  # noqa: S608
        "attempts = attempts + 1, claimed_by = '', last_error = '' "
        "WHERE id = ANY(%s::bigint[]) AND status <> %s RETURNING id), "
        f"{claim[:returning]} AND id NOT IN (SELECT id FROM delivered){claim[returning:]}"
    )


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
    claims = Event.objects.pending().filter(claimed_by=owner)
    if ids is not None:
        claims = claims.filter(id__in=ids)
    with transaction.atomic():  # on SQLite: queued on the write lock, not on SQLite's busy wait
        released = claims.update(available_at=now or timezone.now(), claimed_by="")
        if released:  # due again now: the other dispatchers hear of it at commit
            wake_dispatchers()
    return released


def close() -> None:
    """Close this thread's database connection (the dispatcher's DB thread, at exit)."""
    connection.close()
