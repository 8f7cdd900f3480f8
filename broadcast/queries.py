"""The broadcast's hand-written SQL, all of it, as literal SQL (as Procrastinate keeps its
`queries.sql`): the dispatcher's claim and record, and the fan-out of new events to
their destinations. Everything else the broadcast runs is the ORM.

Why by hand: the claim is one statement the ORM cannot say (an UPDATE of the
rows a locked, ordered, limited SELECT per destination picks, RETURNING them
ready to send with their event), and the rounds run them fifty times a second
under a steady load, where compiling a queryset each time dominated a
trickle's profile (BENCHMARKS.md).

"Due" has two spellings, `DeliveryQuerySet.due()` and `DUE` below, which every
claim is built from; tests/broadcast/test_queries.py checks that each statement
selects exactly what `due()` selects, and that the tables are the models'.

Placeholders are Django's (`%s`), every value a parameter; the deliveries are
returned with their event's key as the UUID's hyphenated text (PostgreSQL) or
its 32 hex digits (SQLite), the bodies as their JSON text and the creation time
as Unix seconds, so that nothing is decoded per delivery to send it or to time it
(but SQLite's key, hyphenated by the uuid module).
"""

import functools

from broadcast.models import ACTION_COLUMNS

# One destination's due deliveries, oldest first: every claim is built from it.
# Parameters: the destination's id, pending, now, limit.
DUE = """
SELECT id FROM broadcast_delivery
WHERE destination_id = %s AND status = %s AND available_at <= %s
ORDER BY available_at, id
LIMIT %s"""

# A retry or a permanent failure, if the delivery is still the owner's: run once per
# delivery by executemany, on both databases. Parameters: its status, its next attempt,
# its error; its id, the owner, pending.
RECORD_UNFINISHED = """
UPDATE broadcast_delivery
SET status = %s, available_at = %s, attempts = attempts + 1, claimed_by = '', last_error = %s
WHERE id = %s AND claimed_by = %s AND status = %s"""

# --- PostgreSQL --------------------------------------------------------------------

# What a claim returns of each delivery: its id and destination, its event's key
# and both bodies, its attempts, its creation time.
_CLAIMED = """d.id, d.destination_id, CAST(e.key AS text), CAST(e.payload AS text),
          CAST(e.envelope AS text), d.attempts,
          CAST(EXTRACT(EPOCH FROM d.created_at) AS double precision)"""

# The deliveries each destination may take, up to its own limit: DUE once per
# destination, through LATERAL over the arrays of destinations and limits, so that
# the statement is the same whatever their number. They are picked in a
# MATERIALIZED common table expression, which runs once: PostgreSQL may run a
# subquery under `IN (...)` again for each row it updates, and each run would lock
# more rows than the LIMIT (a known trap of SKIP LOCKED queues).
# Parameters: the destinations' ids (an array), their limits (an array), pending, now.
_PICKED = """picked AS MATERIALIZED (
    SELECT p.id FROM unnest(%s::bigint[], %s::int[]) AS w(destination_id, wanted)
    CROSS JOIN LATERAL (
        SELECT id FROM broadcast_delivery
        WHERE destination_id = w.destination_id AND status = %s AND available_at <= %s
        ORDER BY available_at, id LIMIT w.wanted FOR UPDATE SKIP LOCKED) p)"""

# The claim. The UPDATE finds the picked rows by primary key (`= ANY` of their
# array): as a join, `IN (SELECT ...)` was planned as a scan of the whole table
# once the LIMIT was a sizeable share of it (bench/ANALYSIS.md).
# Parameters: _PICKED's, then the lease's end, the owner.
POSTGRESQL_CLAIM = f"""
WITH {_PICKED}
UPDATE broadcast_delivery d SET available_at = %s, claimed_by = %s
FROM broadcast_event e
WHERE d.id = ANY(ARRAY(SELECT id FROM picked)) AND e.id = d.event_id
RETURNING {_CLAIMED}
"""  # noqa: S608 - literal SQL, no value interpolated

# Parameters: delivered, now, the ids (an array), delivered.
POSTGRESQL_DELIVERED = """
UPDATE broadcast_delivery
SET status = %s, delivered_at = %s, attempts = attempts + 1, claimed_by = '', last_error = ''
WHERE id = ANY(%s::bigint[]) AND status <> %s"""

# The attempt log's new rows (broadcast/store.py `Attempted`), each with its delivery's
# destination, read from the delivery's row: so an attempt's destination is its
# delivery's by construction (broadcast/models.py `Attempt`). The join also leaves out
# the attempts of deliveries that no longer exist: one deleted while it was being sent
# (its destination deleted, say) has no log to keep, and its attempt would fail the
# round on the foreign key, and every round after it.
_ATTEMPT_COLUMNS = """broadcast_attempt (delivery_id, destination_id, number, started_at,
                   duration_ms, status_code, succeeded, error, response)"""
# Parameters: the attempts, a JSON array of objects keyed by the short names below.
POSTGRESQL_LOG_ATTEMPTS = f"""
INSERT INTO {_ATTEMPT_COLUMNS}
SELECT a.d, dl.destination_id, a.n, a.s, a.ms, a.c, a.ok, a.e, a.r
FROM json_to_recordset(%s::json)
    AS a(d bigint, n int, s timestamptz, ms int, c int, ok boolean, e text, r text)
JOIN broadcast_delivery dl ON dl.id = a.d
"""  # noqa: S608 - literal SQL, no value interpolated

# A round's record of its attempts and deliveries and its claim, in one statement
# (a round under a steady load carries a few: its cost is its statements'). The
# claim leaves out the ids just delivered (a statement must not update a row
# twice), through a subquery PostgreSQL hashes once; data-modifying CTEs run to
# completion even when nothing is due, so the attempts and deliveries are always
# recorded. Parameters: POSTGRESQL_LOG_ATTEMPTS's; delivered, now, the delivered ids
# (an array), delivered; then the claim's: _PICKED's, the lease's end, the owner.
POSTGRESQL_DELIVER_AND_CLAIM = f"""
WITH logged AS ({POSTGRESQL_LOG_ATTEMPTS}),
delivered AS ({POSTGRESQL_DELIVERED} RETURNING id),
{_PICKED}
UPDATE broadcast_delivery d SET available_at = %s, claimed_by = %s
FROM broadcast_event e
WHERE d.id = ANY(ARRAY(SELECT id FROM picked)) AND d.id NOT IN (SELECT id FROM delivered)
  AND e.id = d.event_id
RETURNING {_CLAIMED}
"""  # noqa: S608 - literal SQL, no value interpolated

# --- SQLite --------------------------------------------------------------------------

# What a claim returns of each delivery, as _CLAIMED: the event's columns through
# scalar subqueries (SQLite's RETURNING cannot name an UPDATE ... FROM's other
# table). julianday() rather than unixepoch(..., 'subsec'), which needs SQLite 3.42;
# it keeps milliseconds, finer than the latency histogram's buckets.
_SQLITE_CLAIMED = ", ".join(
    [
        "id",
        "destination_id",
        *(
            f"(SELECT {column} FROM broadcast_event WHERE id = broadcast_delivery.event_id)"  # noqa: S608 - literal SQL
            for column in ("key", "payload", "envelope")
        ),
        "attempts",
        "(julianday(created_at) - 2440587.5) * 86400.0",
    ]
)


@functools.cache
def sqlite_claim(destinations: int) -> str:
    """The claim for `destinations` destinations, in the round's write transaction
    (SQLite serialises writers, so no lock is needed): DUE once per destination, in a
    UNION ALL (SQLite's LIMIT cannot read a column, so there is no LATERAL's single
    statement). Parameters: the lease's end, the owner; then DUE's for each destination."""
    picked = " UNION ALL ".join([f"SELECT id FROM ({DUE})"] * destinations)  # noqa: S608
    return f"""
UPDATE broadcast_delivery SET available_at = %s, claimed_by = %s
WHERE id IN ({picked})
RETURNING {_SQLITE_CLAIMED}
"""  # noqa: S608 - literal SQL, no value interpolated


# Parameters: delivered, now, the ids (a JSON array), delivered.
SQLITE_DELIVERED = """
UPDATE broadcast_delivery
SET status = %s, delivered_at = %s, attempts = attempts + 1, claimed_by = '', last_error = ''
WHERE id IN (SELECT value FROM json_each(%s)) AND status <> %s
"""

# The attempt log's new rows, as POSTGRESQL_LOG_ATTEMPTS: one statement for a round's
# attempts, from the same JSON text (json_extract rather than ->>, which needs SQLite
# 3.38). Parameters: the attempts, a JSON array of objects keyed by the short names.
SQLITE_LOG_ATTEMPTS = f"""
INSERT INTO {_ATTEMPT_COLUMNS}
SELECT dl.id, dl.destination_id, json_extract(a.value, '$.n'), json_extract(a.value, '$.s'),
       json_extract(a.value, '$.ms'), json_extract(a.value, '$.c'),
       json_extract(a.value, '$.ok'), json_extract(a.value, '$.e'), json_extract(a.value, '$.r')
FROM json_each(%s) AS a JOIN broadcast_delivery dl ON dl.id = json_extract(a.value, '$.d')
"""  # noqa: S608

# Is a delivery due to one of the destinations (a JSON array of their ids)? The
# idle claim's first, read-only question on SQLite, and the probe's (broadcast/probe.py,
# through the sqlite3 module's own placeholders). Parameters: the ids, pending, now.
_DUE_TO_ANY = """
SELECT 1 FROM broadcast_delivery
WHERE destination_id IN (SELECT value FROM json_each({p})) AND status = {p}
  AND available_at <= {p}
LIMIT 1"""
SQLITE_DUE_TO_ANY = _DUE_TO_ANY.format(p="%s")
SQLITE_PROBE = _DUE_TO_ANY.format(p="?")

# --- The fan-out (broadcast/services.py) -----------------------------------------------

# A new event's deliveries: one per enabled destination subscribed to its action, in one
# statement whatever the number of destinations (the ORM has no INSERT ... SELECT). The
# WHERE is `DestinationQuerySet.subscribed()`'s; tests/broadcast/test_fanout.py checks
# that both select the same destinations. One statement per action, so that the
# subscription's column is part of the literal SQL.
_DELIVERY_COLUMNS = """broadcast_delivery (event_id, destination_id, status, available_at,
                    claimed_by, attempts, last_error, created_at)"""

# What subscribes a destination to each kind of event: an action's column, or the alerts'.
ALERT = "alert"
_SUBSCRIBED = {str(action): column for action, column in ACTION_COLUMNS.items()}
_SUBSCRIBED[ALERT] = "on_alert"

# On PostgreSQL the fan-out locks the destinations it reads FOR KEY SHARE, the lock that
# the foreign key's check takes anyway, but now rather than at commit (Django's foreign
# keys are deferred): a destination's deletion waits for the transactions writing
# deliveries to it, and those that come after it see it gone. Without it, a deletion and
# a fan-out racing failed one of them at commit. The lock conflicts only with a deletion
# (or a change of the key), not with updates of a destination's other columns, which
# lock FOR NO KEY UPDATE.
_LOCK = " FOR KEY SHARE"

# One event, due at once, keyed by action (or ALERT). Parameters: the event's id,
# pending, its created_at (twice).
_FAN_OUT = """
INSERT INTO {columns}
SELECT %s, id, %s, %s, '', 0, '', %s FROM broadcast_destination
WHERE enabled AND {column}{lock}"""
POSTGRESQL_FAN_OUT = {
    kind: _FAN_OUT.format(columns=_DELIVERY_COLUMNS, column=column, lock=_LOCK)
    for kind, column in _SUBSCRIBED.items()
}
SQLITE_FAN_OUT = {
    kind: _FAN_OUT.format(columns=_DELIVERY_COLUMNS, column=column, lock="")
    for kind, column in _SUBSCRIBED.items()
}

# Many events (a bulk insert's), due at once, each with every subscribed destination. Parameters:
# pending, then the events' ids: a bigint[] array on PostgreSQL, a JSON array on SQLite.
_FAN_OUT_MANY = """
INSERT INTO {columns}
SELECT e.id, d.id, %s, e.created_at, '', 0, '', e.created_at
FROM broadcast_event e CROSS JOIN broadcast_destination d
WHERE e.id {ids} AND d.enabled AND d.{column}{lock}"""
POSTGRESQL_FAN_OUT_MANY = {
    action: _FAN_OUT_MANY.format(
        columns=_DELIVERY_COLUMNS,
        ids="= ANY(%s::bigint[])",
        column=column,
        lock=f"{_LOCK} OF d",
    )
    for action, column in ACTION_COLUMNS.items()
}
SQLITE_FAN_OUT_MANY = {
    action: _FAN_OUT_MANY.format(
        columns=_DELIVERY_COLUMNS,
        ids="IN (SELECT value FROM json_each(%s))",
        column=column,
        lock="",
    )
    for action, column in ACTION_COLUMNS.items()
}
